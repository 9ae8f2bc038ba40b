//! The sled store. Trees:
//!
//! - `meta`: the schema version;
//! - `run_ids`: one key per run, its id, written with the run's first commit; its value is the
//!   run's [`Anchor`] (journal length and last hash), rewritten after every commit's bundle, in
//!   the same flush, so that a journal cut short is detected (empty for runs of older builds);
//! - `bundles`: one entry per commit, keyed `run \0 id` (sled's monotonic id, big-endian, so a
//!   run's commits iterate in order), holding what the commit wrote: its journal entries, the
//!   run record and the records of the steps it touched;
//! - `sources`: the workflow text each run started with, written with its first commit.
//!
//! A run's first commit is one transaction over `run_ids`, `bundles` and `sources`; every later
//! commit is a single insert into `bundles`, which sled recovers whole or not at all, and which
//! costs one log write where a transaction costs two. Then `flush` (never `flush_async`), then
//! the fdatasyncs sled leaves out ([`DiskSync`]).
//!
//! Reading is the other way round: a run's record is the one in its last bundle, its step
//! records the latest of each step across its bundles, its journal the bundles' entries in
//! order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

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
    disk: std::sync::Arc<DiskSync>,
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
            .map(std::sync::Arc::new)
            .map_err(|e| corrupt(format!("its log file cannot be opened: {e}")))?;
        super::private::tighten(dir).map_err(io)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            run_ids,
            bundles,
            sources,
            disk,
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

/// The first entry of the directory `path` that sled would not have put there, if any. sled
/// creates the directory and `blobs/` before its files, so a drctl killed while it creates its
/// store leaves a directory holding only some of them: that is a store to finish creating,
/// not a stranger's directory.
fn foreign_entry(path: &Path) -> Option<String> {
    let entries = std::fs::read_dir(path).ok()?;
    entries.filter_map(Result::ok).find_map(|entry| {
        let name = entry.file_name().to_string_lossy().to_string();
        let sled_made =
            matches!(name.as_str(), "blobs" | "conf" | "db") || name.starts_with("snap.");
        (!sled_made).then_some(name)
    })
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
        // Files sled created while open (snapshots, blobs) are made private too.
        let _ = super::private::tighten(&self.dir);
    }
}

impl SledStore {
    /// Writes `commit` into sled's memory (not yet durable).
    fn write(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let bundle = encode_bundle(commit.run.as_ref(), &commit.steps, &commit.journal)?;
        let id = self.db.generate_id().map_err(io)?;
        let bundle_key = key(run_id, &id.to_be_bytes());
        let first = commit.source.is_some() || !self.run_ids.contains_key(run_id).map_err(io)?;
        let anchor = match Anchor::of(commit) {
            Some(a) => serde_json::to_vec(&a).map_err(io)?,
            None => Vec::new(),
        };
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
        if let Some(run) = &commit.run {
            self.remember(run.clone());
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

    /// Flushes sled's log and syncs what its flush leaves out.
    fn flush(&self) -> Result<(), String> {
        flush(&self.db, &self.disk)
    }
}

/// Flushes sled's log and syncs what its flush leaves out.
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
        self.group.durable(|| self.flush()).map_err(io)
    }

    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        Box::pin(async move {
            self.write(run_id, commit)?;
            // Commits of other runs written meanwhile share the flush (group commit).
            let (db, disk) = (self.db.clone(), self.disk.clone());
            self.group
                .durable_async(move || flush(&db, &disk))
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
