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
//!
//! The parts: opening the store here, writing a commit ([`write`]), making commits durable
//! ([`durability`]), replaying what a process left in the commit log ([`recover`]) and reading
//! runs back ([`reads`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod durability;
mod reads;
mod recover;
#[cfg(test)]
mod tests;
mod write;

use super::commit_log;
use super::format::{Bundle, decode, key};
pub use super::format::{SCHEMA_VERSION, decode_bundle};
use super::group::GroupCommit;
use super::sync::DiskSync;
use super::{RunRecord, StoreError};
use durability::Durability;
use recover::{Trees, recover};

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
            // sled (0.34.7) writes a snapshot to `snap.N.generating`, syncs it and renames it
            // to `snap.N`, but counts a `.generating` file among its snapshots when it opens:
            // a process killed while writing one leaves a file sled then reads as a corrupt
            // last snapshot, and it refuses to open. Such a file is never a finished snapshot
            // (the one before it is removed only after the rename): it is removed, once.
            Err(sled::Error::Corruption { .. }) if remove_unfinished_snapshots(path) => {}
            Err(e) => return Err(Opening::Failed(e.to_string())),
        }
    }
}

/// Removes the snapshots sled left unfinished in `path` (`snap.N.generating`); true when
/// there was one.
fn remove_unfinished_snapshots(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::warn!(
                file = %entry.path().display(),
                "removed a snapshot sled left unfinished when its process was killed"
            );
            removed = true;
        }
    }
    removed
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
