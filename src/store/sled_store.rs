//! The sled store. Trees: `meta` (schema version), `runs`, `steps` (`run \0 step`),
//! `journal` (`run \0 seq`, big-endian so entries iterate in order) and `sources` (the
//! workflow text of each run, written once). Each commit is one sled transaction over all
//! trees, then `flush` (never `flush_async`), then the fdatasyncs sled leaves out
//! ([`DiskSync`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::sync::DiskSync;
use super::{Commit, JournalEntry, RunRecord, StepRecord, Store, StoreError};

/// The record format this build reads and writes. Version 1 kept the workflow text inside
/// the run record, rewritten with every commit; it is migrated on open.
pub const SCHEMA_VERSION: u32 = 2;

/// A store in a directory, owned by this process while open.
pub struct SledStore {
    dir: PathBuf,
    db: sled::Db,
    runs: sled::Tree,
    steps: sled::Tree,
    journal: sled::Tree,
    sources: sled::Tree,
    disk: DiskSync,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking its schema version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let shown = dir.display().to_string();
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::Corrupt {
                dir: shown,
                reason: "it is a file, not a directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("store");
        if path.exists() && !path.join("conf").exists() && !path.join("db").exists() {
            return Err(StoreError::Corrupt {
                dir: shown,
                reason: format!("{} exists but is not a sled database", path.display()),
            });
        }
        let db = open_db(&path).map_err(|e| match e {
            Opening::Locked => StoreError::Locked { dir: shown.clone() },
            Opening::Failed(reason) => StoreError::Corrupt {
                dir: shown.clone(),
                reason,
            },
        })?;
        let meta = db.open_tree("meta").map_err(io)?;
        let runs = db.open_tree("runs").map_err(io)?;
        let sources = db.open_tree("sources").map_err(io)?;
        match meta.get("schema_version").map_err(io)? {
            Some(v) if v.as_ref() == b"1" => {
                migrate_from_v1(&meta, &runs, &sources).map_err(|reason| StoreError::Corrupt {
                    dir: shown.clone(),
                    reason,
                })?;
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
            None if runs.is_empty() => {
                meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
            None => {
                return Err(StoreError::Corrupt {
                    dir: shown,
                    reason: "runs are stored but no schema version is".into(),
                });
            }
        }
        let disk = DiskSync::open(&path).map_err(|e| StoreError::Corrupt {
            dir: shown.clone(),
            reason: format!("its log file cannot be opened: {e}"),
        })?;
        Ok(Self {
            disk,
            dir: dir.to_path_buf(),
            steps: db.open_tree("steps").map_err(io)?,
            journal: db.open_tree("journal").map_err(io)?,
            runs,
            sources,
            db,
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn decode<T: serde::de::DeserializeOwned>(run: &str, bytes: &[u8]) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::BadRecord {
            run: run.to_string(),
            reason: e.to_string(),
        })
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
fn open_db(path: &Path) -> Result<sled::Db, Opening> {
    let deadline = Instant::now() + LOCK_PATIENCE;
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

/// Moves each run's `workflow_source` out of its record into `sources`, in one transaction
/// with the new schema version: a crash half-way leaves a version 1 store, migrated again on
/// the next open.
fn migrate_from_v1(
    meta: &sled::Tree,
    runs: &sled::Tree,
    sources: &sled::Tree,
) -> Result<(), String> {
    let mut moved = Vec::new();
    for item in runs {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let mut record: serde_json::Value = serde_json::from_slice(&v).map_err(|e| {
            format!(
                "run {} could not be read for the migration to schema version {SCHEMA_VERSION}: {e}",
                String::from_utf8_lossy(&k)
            )
        })?;
        let source = record
            .as_object_mut()
            .and_then(|o| o.remove("workflow_source"))
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        let record = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        moved.push((k, record, source));
    }
    (meta, runs, sources)
        .transaction(|(meta, runs, sources)| {
            for (k, record, source) in &moved {
                runs.insert(k.as_ref(), record.as_slice())?;
                sources.insert(k.as_ref(), source.as_bytes())?;
            }
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
        .map_err(|e: TransactionError<()>| format!("{e:?}"))
}

fn key(run: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(run.len() + 1 + rest.len());
    k.extend_from_slice(run.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

impl Store for SledStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let encode = |v: &dyn erased::Json| v.json();
        let run = commit.run.as_ref().map(|r| encode(r)).transpose()?;
        let steps: Vec<(Vec<u8>, Vec<u8>)> = commit
            .steps
            .iter()
            .map(|s| Ok((key(run_id, s.step.as_bytes()), encode(s)?)))
            .collect::<Result<_, StoreError>>()?;
        let journal: Vec<(Vec<u8>, Vec<u8>)> = commit
            .journal
            .iter()
            .map(|e| Ok((key(run_id, &e.seq.to_be_bytes()), encode(e)?)))
            .collect::<Result<_, StoreError>>()?;
        (&self.runs, &self.steps, &self.journal, &self.sources)
            .transaction(|(runs, steps_tree, journal_tree, sources)| {
                if let Some(run) = &run {
                    runs.insert(run_id.as_bytes(), run.as_slice())?;
                }
                if let Some(source) = &commit.source {
                    sources.insert(run_id.as_bytes(), source.as_bytes())?;
                }
                for (k, v) in &steps {
                    steps_tree.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &journal {
                    journal_tree.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| io(format!("{e:?}")))?;
        self.db.flush().map_err(io)?;
        self.disk.after_flush().map_err(io)?;
        Ok(())
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.runs
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|v| Self::decode(run_id, &v))
            .transpose()
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = Vec::new();
        for item in &self.runs {
            let (k, v) = item.map_err(io)?;
            out.push(Self::decode(&String::from_utf8_lossy(&k), &v)?);
        }
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.steps
            .scan_prefix(key(run_id, b""))
            .map(|item| Self::decode(run_id, &item.map_err(io)?.1))
            .collect()
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.sources
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(io))
            .transpose()
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal
            .scan_prefix(key(run_id, b""))
            .map(|item| Self::decode(run_id, &item.map_err(io)?.1))
            .collect()
    }
}

/// Serialization of the record types to JSON bytes, for the commit closure.
mod erased {
    use super::StoreError;

    pub trait Json {
        fn json(&self) -> Result<Vec<u8>, StoreError>;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Result<Vec<u8>, StoreError> {
            serde_json::to_vec(self).map_err(|e| StoreError::Io(e.to_string()))
        }
    }
}
