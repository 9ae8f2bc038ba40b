//! The sled store. Trees:
//!
//! - `meta`: the schema version;
//! - `run_ids`: one key per run, its id, written with the run's first commit; its value is the
//!   run's [`Anchor`] (journal length and last hash), rewritten by every commit after its
//!   bundle, so that a journal cut short is detected (empty for runs of older builds);
//! - `bundles`: one entry per commit, keyed `run \0 id` (sled's monotonic id, big-endian, so a
//!   run's commits iterate in order), holding what the commit wrote: its journal entries, the
//!   run record and the records of the steps it touched;
//! - `sources`: the workflow text each run started with, written with its first commit.
//!
//! A run's first commit is one transaction over `run_ids`, `bundles` and `sources`; every later
//! commit is an insert into `bundles` and one into `run_ids`. What a commit wrote is appended
//! to the commit log as one record, and the commit is durable once the log is synced, one
//! `fdatasync` ([`CommitLog`]); sled's own files are made durable by a checkpoint (`flush`,
//! never `flush_async`, then the syncs sled leaves out, [`DiskSync`]) when a log file is
//! full, before a process's first commit and when the store is closed. Opening the store
//! replays what the log holds.
//!
//! Reading is the other way round: a run's record is the one in its last bundle, its step
//! records the latest of each step across its bundles, its journal the bundles' entries in
//! order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::commit_log::{self, CommitLog, Record, Tree};
use super::format::{Bundle, RunOnly, decode, encode_bundle, key};
pub use super::format::{SCHEMA_VERSION, decode_bundle};
use super::group::GroupCommit;
use super::sync::DiskSync;
use super::{Anchor, Commit, Committing, JournalEntry, RunRecord, StepRecord, Store, StoreError};

/// A store in a directory, owned by this process while open.
pub struct SledStore {
    dir: PathBuf,
    db: sled::Db,
    run_ids: sled::Tree,
    bundles: sled::Tree,
    sources: sled::Tree,
    durability: std::sync::Arc<Durability>,
    /// Whether sled's id counter is durable as of this process's first id (see
    /// [`SledStore::ids_made_durable`]).
    ids_durable: std::sync::Mutex<bool>,
    group: std::sync::Arc<GroupCommit>,
    /// Each run's record as last written, kept as it is written: this process alone writes
    /// the store, and finding a run's record in its bundles costs a search and a decode.
    records: std::sync::Mutex<HashMap<String, RunRecord>>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking its schema version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(dir, LOCK_PATIENCE)
    }

    /// Opens the store, trying a locked one again for up to `patience` before it counts as in
    /// use by another process.
    pub fn open_waiting(dir: &Path, patience: Duration) -> Result<Self, StoreError> {
        let shown = dir.display().to_string();
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::Corrupt {
                dir: shown,
                reason: "it is a file, not a directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        // Before sled creates anything in it: nobody else may read the runs.
        super::private::tighten(dir).map_err(io)?;
        let path = dir.join("store");
        if let Some(stranger) = foreign_entry(&path) {
            return Err(StoreError::Corrupt {
                dir: shown,
                reason: format!(
                    "{} exists but is not a sled database (it holds {stranger})",
                    path.display()
                ),
            });
        }
        let corrupt = |reason: String| StoreError::Corrupt {
            dir: shown.clone(),
            reason,
        };
        let db = open_db(&path, patience).map_err(|e| match e {
            Opening::Locked => StoreError::Locked {
                dir: shown.clone(),
                holder: super::holder::holder(dir),
            },
            Opening::Failed(reason) => corrupt(reason),
        })?;
        let meta = db.open_tree("meta").map_err(io)?;
        let run_ids = db.open_tree("run_ids").map_err(io)?;
        let bundles = db.open_tree("bundles").map_err(io)?;
        let sources = db.open_tree("sources").map_err(io)?;
        match meta.get("schema_version").map_err(io)? {
            Some(v) if v.as_ref() == b"1" => {
                super::migrate::from_v1(&db, &meta, &run_ids, &bundles, &sources)
                    .map_err(corrupt)?;
                db.flush().map_err(io)?;
            }
            Some(v) if v.as_ref() == b"2" => {
                super::migrate::from_v2(&meta).map_err(io)?;
                db.flush().map_err(io)?;
            }
            Some(v) => {
                let found = String::from_utf8_lossy(&v).to_string();
                if found != SCHEMA_VERSION.to_string() {
                    return Err(StoreError::SchemaMismatch {
                        dir: shown,
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None if run_ids.is_empty() && !super::migrate::v1_holds_runs(&db) => {
                meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
            None => {
                return Err(corrupt("runs are stored but no schema version is".into()));
            }
        }
        // A migration cut off after its transaction leaves the old trees behind.
        super::migrate::drop_v1_trees(&db).map_err(io)?;
        let disk = DiskSync::open(&path)
            .map_err(|e| corrupt(format!("its log file cannot be opened: {e}")))?;
        let trees = Trees {
            run_ids: &run_ids,
            bundles: &bundles,
            sources: &sources,
        };
        let log = recover(&db, &trees, &disk, &path)
            .map_err(|e| corrupt(format!("its commit log cannot be replayed: {e}")))?;
        super::private::tighten(dir).map_err(io)?;
        let durability = std::sync::Arc::new(Durability {
            log,
            db: db.clone(),
            disk,
            checkpoints: std::sync::Mutex::default(),
        });
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            run_ids,
            bundles,
            sources,
            durability,
            ids_durable: std::sync::Mutex::new(false),
            group: std::sync::Arc::default(),
            records: std::sync::Mutex::default(),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bundles of `run_id`, oldest first.
    fn bundles(&self, run_id: &str) -> impl DoubleEndedIterator<Item = Result<Bundle, StoreError>> {
        self.bundles
            .scan_prefix(key(run_id, b""))
            .map(move |item| decode(run_id, &item.map_err(io)?.1))
    }
}

/// The first entry of the directory `path` that neither sled nor the commit log would have
/// put there, if any. sled creates the directory and `blobs/` before its files, so a drctl
/// killed while it creates its store leaves a directory holding only some of them: that is a
/// store to finish creating, not a stranger's directory.
fn foreign_entry(path: &Path) -> Option<String> {
    let entries = std::fs::read_dir(path).ok()?;
    entries.filter_map(Result::ok).find_map(|entry| {
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = matches!(name.as_str(), "blobs" | "conf" | "db")
            || name.starts_with("snap.")
            || commit_log::is_log_file(&name);
        (!ours).then_some(name)
    })
}

/// The trees a commit writes.
struct Trees<'a> {
    run_ids: &'a sled::Tree,
    bundles: &'a sled::Tree,
    sources: &'a sled::Tree,
}

/// Replays the commit log files a process left (it ended without its last checkpoint) into
/// sled, makes sled hold them durably, and removes them. Returns the log to append to.
fn recover(
    db: &sled::Db,
    trees: &Trees<'_>,
    disk: &DiskSync,
    path: &Path,
) -> Result<CommitLog, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let left = commit_log::files(path).map_err(|e| text(&e))?;
    for (_, file) in &left {
        let bytes = std::fs::read(file).map_err(|e| text(&e))?;
        for body in commit_log::records(&bytes) {
            let writes = commit_log::writes(body)
                .ok_or_else(|| format!("a record of {} is not a commit", file.display()))?;
            for put in writes {
                replay(trees, &put).map_err(|e| text(&e))?;
            }
        }
    }
    if !left.is_empty() {
        flush(db, disk)?;
        for (_, file) in &left {
            std::fs::remove_file(file).map_err(|e| text(&e))?;
        }
    }
    let next = left.last().map_or(1, |(number, _)| number + 1);
    Ok(CommitLog::new(path, next))
}

/// Writes one logged write again. Writing it twice is writing it once: a bundle, a source and
/// a run's id have one value; and an anchor never moves back (sled may hold a later one than
/// the log, written before a power cut took the record of it).
fn replay(trees: &Trees<'_>, put: &commit_log::Put<'_>) -> sled::Result<()> {
    let tree = match put.tree {
        Tree::Bundles => trees.bundles,
        Tree::Sources => trees.sources,
        Tree::RunIds => {
            let held = trees.run_ids.get(put.key)?;
            if held.is_some_and(|held| !anchor_not_before(put.value, &held)) {
                return Ok(());
            }
            trees.run_ids
        }
    };
    tree.insert(put.key, put.value)?;
    Ok(())
}

/// Whether the anchor `logged` is not before the anchor `held` (an empty one is before any).
fn anchor_not_before(logged: &[u8], held: &[u8]) -> bool {
    let len = |bytes: &[u8]| {
        serde_json::from_slice::<Anchor>(bytes)
            .ok()
            .map(|a| a.journal_len)
    };
    match (len(logged), len(held)) {
        (None, Some(_)) => false,
        (Some(logged), Some(held)) => logged >= held,
        (_, None) => true,
    }
}

enum Opening {
    Locked,
    Failed(String),
}

/// How long a locked database is retried before it counts as in use.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// Opens the sled database at `path`. A lock is retried for a moment: when a drctl is killed
/// while it spawns a step's process, the child holds a copy of the database's file descriptor
/// (and so its lock) until its exec closes it, a few milliseconds at most.
fn open_db(path: &Path, patience: Duration) -> Result<sled::Db, Opening> {
    let deadline = Instant::now() + patience;
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
            {
                if Instant::now() >= deadline {
                    return Err(Opening::Locked);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(Opening::Failed(e.to_string())),
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // A store closed leaves no commit log: sled holds it all. When the checkpoint fails
        // the log stays, and is replayed by the next open.
        self.durability.wait();
        if self.durability.checkpoint().is_ok() {
            let _ = self.durability.log.remove();
        }
        // Files sled created while open (snapshots, blobs) are made private too.
        let _ = super::private::tighten(&self.dir);
    }
}

impl SledStore {
    /// Writes `commit` into sled's memory (not yet durable).
    fn write(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let bundle = encode_bundle(commit.run.as_ref(), &commit.steps, &commit.journal)?;
        let id = self.db.generate_id().map_err(io)?;
        self.ids_made_durable()?;
        let bundle_key = key(run_id, &id.to_be_bytes());
        let first = commit.source.is_some() || !self.run_ids.contains_key(run_id).map_err(io)?;
        let anchor = match Anchor::of(commit) {
            Some(a) => serde_json::to_vec(&a).map_err(io)?,
            None => Vec::new(),
        };
        let source = commit.source.as_deref().unwrap_or_default();
        let mut record = Record::with_capacity(
            bundle_key.len() + bundle.len() + 2 * run_id.len() + anchor.len() + source.len() + 32,
        );
        record
            .put(Tree::Bundles, &bundle_key, &bundle)
            .map_err(io)?;
        if first || !anchor.is_empty() {
            record
                .put(Tree::RunIds, run_id.as_bytes(), &anchor)
                .map_err(io)?;
        }
        if commit.source.is_some() {
            record
                .put(Tree::Sources, run_id.as_bytes(), source.as_bytes())
                .map_err(io)?;
        }
        if first {
            (&self.run_ids, &self.bundles, &self.sources)
                .transaction(|(run_ids, bundles, sources)| {
                    run_ids.insert(run_id.as_bytes(), anchor.as_slice())?;
                    bundles.insert(bundle_key.as_slice(), bundle.as_slice())?;
                    if let Some(source) = &commit.source {
                        sources.insert(run_id.as_bytes(), source.as_bytes())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e: TransactionError<()>| io(format!("{e:?}")))?;
        } else {
            self.bundles.insert(bundle_key, bundle).map_err(io)?;
            // After the bundle in sled's log: a recovered log never holds the anchor
            // without the bundle it points to.
            if !anchor.is_empty() {
                self.run_ids.insert(run_id.as_bytes(), anchor).map_err(io)?;
            }
        }
        self.durability.log.append(record).map_err(io)?;
        if let Some(run) = &commit.run {
            self.remember(run.clone());
        }
        Ok(())
    }

    /// Makes sled's id counter durable before the first record of this process is logged.
    /// Bundles are keyed by sled's ids, and sled recovers its counter from its own files,
    /// where it is written at the first id of each block of a million: were the block this
    /// process draws from not on disk when it is killed, the next process would draw the
    /// same ids again, and its bundles would overwrite the ones the commit log replayed.
    fn ids_made_durable(&self) -> Result<(), StoreError> {
        let mut durable = self
            .ids_durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*durable {
            self.durability.checkpoint().map_err(io)?;
            *durable = true;
        }
        Ok(())
    }

    fn remember(&self, run: RunRecord) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(run.run_id.clone(), run);
    }

    fn remembered(&self, run_id: &str) -> Option<RunRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(run_id)
            .cloned()
    }
}

/// What makes commits durable: the commit log, and the checkpoints after which its full files
/// go.
struct Durability {
    log: CommitLog,
    db: sled::Db,
    disk: DiskSync,
    /// Checkpoints running on threads of their own.
    checkpoints: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Durability {
    /// Makes every commit written so far durable: the commit log synced. A full log file is
    /// then replaced by a new one, and removed by a checkpoint on a thread of its own, so
    /// that the commits after it do not wait for sled's flush.
    fn commits(self: &std::sync::Arc<Self>) -> Result<(), String> {
        let text = |e: std::io::Error| e.to_string();
        if self.log.sync().map_err(text)?
            && let Some(full) = self.log.replace_full().map_err(text)?
        {
            self.checkpoint_apart(full);
        }
        Ok(())
    }

    /// sled's flush, and the syncs it leaves out: sled holds durably what was written to it
    /// before.
    fn checkpoint(&self) -> Result<(), String> {
        flush(&self.db, &self.disk)
    }

    /// A checkpoint, then the removal of the log file `full`, on a thread of its own (in
    /// place when none can be started). When the checkpoint fails the file stays, and is
    /// replayed by the next open.
    fn checkpoint_apart(self: &std::sync::Arc<Self>, full: PathBuf) {
        let work = |durability: &Self, full: &Path| match durability.checkpoint() {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(full) {
                    tracing::warn!("the commit log file {} stays: {e}", full.display());
                }
            }
            Err(e) => tracing::warn!(
                "a checkpoint failed, the commit log file {} stays: {e}",
                full.display()
            ),
        };
        let mut running = self
            .checkpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|handle| !handle.is_finished());
        let this = std::sync::Arc::clone(self);
        let path = full.clone();
        match std::thread::Builder::new()
            .name("drctl-checkpoint".into())
            .spawn(move || work(&this, &full))
        {
            Ok(handle) => running.push(handle),
            Err(_) => work(self, &path),
        }
    }

    /// Waits for the checkpoints running.
    fn wait(&self) {
        let running = std::mem::take(
            &mut *self
                .checkpoints
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in running {
            let _ = handle.join();
        }
    }
}

/// Flushes sled's log and syncs what its flush leaves out (a checkpoint).
fn flush(db: &sled::Db, disk: &DiskSync) -> Result<(), String> {
    db.flush().map_err(|e| e.to_string())?;
    disk.after_flush().map_err(|e| e.to_string())
}

/// A commit whose shared flush failed.
fn not_durable(e: Option<String>) -> StoreError {
    io(e.unwrap_or_else(|| "the flush this commit shared failed; it may not be durable".into()))
}

impl Store for SledStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        self.write(run_id, commit)?;
        self.group.durable(|| self.durability.commits()).map_err(io)
    }

    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        Box::pin(async move {
            self.write(run_id, commit)?;
            // Commits of other runs written meanwhile share the flush (group commit).
            let durability = self.durability.clone();
            self.group
                .durable_async(move || durability.commits())
                .await
                .map_err(not_durable)
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        if let Some(run) = self.remembered(run_id) {
            return Ok(Some(run));
        }
        for item in self.bundles.scan_prefix(key(run_id, b"")).rev() {
            let bundle: RunOnly = decode(run_id, &item.map_err(io)?.1)?;
            if let Some(run) = bundle.run {
                self.remember(run.clone());
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = Vec::new();
        for item in &self.run_ids {
            let (k, _) = item.map_err(io)?;
            if let Some(run) = self.run(&String::from_utf8_lossy(&k))? {
                out.push(run);
            }
        }
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let mut latest: HashMap<String, StepRecord> = HashMap::new();
        for bundle in self.bundles(run_id) {
            for step in bundle?.steps {
                latest.insert(step.step.clone(), step);
            }
        }
        Ok(latest.into_values().collect())
    }

    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError> {
        match self.run_ids.get(run_id.as_bytes()).map_err(io)? {
            Some(v) if !v.is_empty() => {
                serde_json::from_slice(&v)
                    .map(Some)
                    .map_err(|e| StoreError::BadRecord {
                        run: run_id.to_string(),
                        reason: format!("its journal anchor cannot be read: {e}"),
                    })
            }
            _ => Ok(None),
        }
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.sources
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(io))
            .transpose()
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let mut entries = Vec::new();
        for bundle in self.bundles(run_id) {
            entries.extend(bundle?.journal);
        }
        Ok(entries)
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        // Back from the run's last bundle to the one holding entry `from`, decoding only their
        // journal entries: the bundles before it are neither read nor decoded.
        let mut newest_first = Vec::new();
        for item in self.bundles.scan_prefix(key(run_id, b"")).rev() {
            let bundle: super::format::JournalOnly = decode(run_id, &item.map_err(io)?.1)?;
            let holds_from = bundle.journal.first().is_some_and(|e| e.seq <= from);
            newest_first.push(bundle.journal);
            if holds_from {
                break;
            }
        }
        Ok(newest_first
            .into_iter()
            .rev()
            .flatten()
            .filter(|e| e.seq >= from)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_cut_off_while_being_created_is_finished_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        // What sled leaves when killed before it created its files.
        std::fs::create_dir_all(dir.path().join("store").join("blobs")).unwrap();
        let store = SledStore::open(dir.path()).expect("the store is created");
        assert!(store.runs().unwrap().is_empty());
    }

    /// A commit of `run` appending entry `seq` (a chain of made-up hashes) and its record.
    fn commit(run: &str, seq: u64) -> Commit {
        let hash = |n: u64| format!("{n:064}");
        let entry = JournalEntry {
            seq,
            at: "2026-12-07T10:00:00.000Z".into(),
            event: serde_json::json!({"type": "step_started", "step": "a", "attempt": seq}),
            prev: if seq == 0 {
                super::super::GENESIS.into()
            } else {
                hash(seq - 1)
            },
            hash: hash(seq),
        };
        let record = RunRecord {
            run_id: run.into(),
            workflow: "wf".into(),
            mode: "run".into(),
            status: super::super::RunStatus::Running,
            initiator: "me".into(),
            digest: "v2:0".into(),
            workflow_file: "wf.toml".into(),
            overrides: Vec::new(),
            started_at: "2026-12-07T10:00:00.000Z".into(),
            finished_at: None,
            journal_len: seq + 1,
            last_hash: hash(seq),
            incident_start: None,
            pid: None,
            detached: false,
        };
        Commit {
            run: Some(record),
            steps: Vec::new(),
            journal: vec![entry],
            source: (seq == 0).then(|| "[workflow]\nname = \"wf\"\n".to_string()),
        }
    }

    /// What a process killed at this moment leaves: the files as they are, sled's last
    /// writes not flushed.
    fn files_now(store: &Path, to: &Path) {
        for dir in ["store", "store/blobs"] {
            std::fs::create_dir_all(to.join(dir)).unwrap();
            for entry in std::fs::read_dir(store.join(dir)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), to.join(dir).join(entry.file_name())).unwrap();
                }
            }
        }
    }

    #[test]
    fn every_commit_acknowledged_is_in_the_files_a_crash_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let store = SledStore::open(&live).unwrap();
        for seq in 0..50 {
            store.commit("r1", &commit("r1", seq)).unwrap();
        }
        let crashed = dir.path().join("crashed");
        files_now(&live, &crashed);
        drop(store);
        assert_eq!(
            commit_log::files(&crashed.join("store")).unwrap().len(),
            1,
            "the commit log is in what the crash left"
        );

        let store = SledStore::open(&crashed).unwrap();
        let journal = store.journal("r1").unwrap();
        assert_eq!(journal.len(), 50, "acknowledged commits were lost");
        assert_eq!(store.run("r1").unwrap().unwrap().journal_len, 50);
        assert_eq!(store.anchor("r1").unwrap().unwrap().journal_len, 50);
        assert!(store.source("r1").unwrap().is_some());
        // Replayed into sled and removed.
        assert!(
            commit_log::files(&crashed.join("store"))
                .unwrap()
                .is_empty()
        );
        drop(store);

        // A store closed holds everything in sled, and no log.
        assert!(commit_log::files(&live.join("store")).unwrap().is_empty());
        assert_eq!(
            SledStore::open(&live).unwrap().journal("r1").unwrap().len(),
            50
        );
    }

    /// Each process goes on where the one before was killed: its commits come after the
    /// replayed ones and overwrite none (sled's ids are drawn from a counter sled recovers
    /// from its own files).
    #[test]
    fn commits_after_crashes_follow_the_replayed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = dir.path().join("crash-0");
        let mut seq = 0;
        for crash in 1..=4 {
            let store = SledStore::open(&state).unwrap();
            for _ in 0..20 {
                store.commit("r1", &commit("r1", seq)).unwrap();
                seq += 1;
            }
            let next = dir.path().join(format!("crash-{crash}"));
            files_now(&state, &next);
            drop(store);
            state = next;
        }
        let store = SledStore::open(&state).unwrap();
        let seqs: Vec<u64> = store.journal("r1").unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..seq).collect::<Vec<_>>());
    }

    /// A full log file is replaced, and removed once a checkpoint made sled hold it: what a
    /// crash leaves then holds every commit.
    #[test]
    fn a_full_log_file_goes_after_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let store = SledStore::open(&live).unwrap();
        let big = "x".repeat(1 << 20);
        for seq in 0..6 {
            let mut c = commit("r1", seq);
            c.journal[0].event["outputs"] = serde_json::json!({ "big": big });
            store.commit("r1", &c).unwrap();
        }
        // (A copy of files made one after the other while a checkpoint runs is no crash.)
        store.durability.wait();
        let crashed = dir.path().join("crashed");
        files_now(&live, &crashed);
        let left: Vec<u64> = commit_log::files(&live.join("store"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(left, vec![2], "the full file stayed after its checkpoint");
        drop(store);
        let store = SledStore::open(&crashed).unwrap();
        assert_eq!(store.journal("r1").unwrap().len(), 6);
    }

    #[test]
    fn a_replayed_anchor_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let trees = (
            db.open_tree("run_ids").unwrap(),
            db.open_tree("bundles").unwrap(),
            db.open_tree("sources").unwrap(),
        );
        let trees = Trees {
            run_ids: &trees.0,
            bundles: &trees.1,
            sources: &trees.2,
        };
        let anchor = |len: u64| {
            serde_json::to_vec(&Anchor {
                journal_len: len,
                last_hash: format!("{len:064}"),
            })
            .unwrap()
        };
        let put = |value: &[u8]| {
            let put = commit_log::Put {
                tree: Tree::RunIds,
                key: b"r1",
                value,
            };
            replay(&trees, &put).unwrap();
            trees.run_ids.get(b"r1").unwrap().unwrap().to_vec()
        };
        assert_eq!(put(b""), b"", "a run's id is written");
        assert_eq!(put(&anchor(5)), anchor(5));
        assert_eq!(
            put(&anchor(3)),
            anchor(5),
            "an older anchor replayed over a later"
        );
        assert_eq!(put(b""), anchor(5));
        assert_eq!(put(&anchor(5)), anchor(5));
        assert_eq!(put(&anchor(8)), anchor(8));
    }

    #[test]
    fn a_store_of_schema_version_2_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            for seq in 0..3 {
                store.commit("r1", &commit("r1", seq)).unwrap();
            }
        }
        {
            let db = sled::open(dir.path().join("store")).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema_version", "2")
                .unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.journal("r1").unwrap().len(), 3);
        assert_eq!(store.anchor("r1").unwrap().unwrap().journal_len, 3);
        drop(store);
        let db = sled::open(dir.path().join("store")).unwrap();
        let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
        assert_eq!(
            version.unwrap().as_ref(),
            SCHEMA_VERSION.to_string().as_bytes()
        );
    }

    #[test]
    fn a_directory_holding_anything_else_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("store")).unwrap();
        std::fs::write(dir.path().join("store").join("notes.txt"), "mine").unwrap();
        let Err(StoreError::Corrupt { reason, .. }) = SledStore::open(dir.path()) else {
            panic!("a stranger's directory was opened as a store");
        };
        assert!(reason.contains("notes.txt"), "{reason}");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("store"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"]);
    }
}
