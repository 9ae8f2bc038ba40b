//! What the store adds after sled's `flush` so that what sled holds survives a power cut, not
//! only a crash of drctl: at a checkpoint of the commit log, when the store is opened and
//! when it is closed (a commit itself is durable once the commit log is synced).
//!
//! On Linux, sled 0.34's flush writes its log and waits with `sync_file_range`, which does not
//! persist the file's metadata (the log grows as it is appended to) and does not flush the
//! disk's write cache; and sled writes pages too large for its log (over about 128 KiB, e.g. a
//! leaf holding several big workflow texts) to files under `blobs/` that it never syncs. So
//! after the flush the log is fdatasync'ed, and any blob file not synced yet is fdatasync'ed
//! with its directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Syncs sled's files in a database directory.
pub struct DiskSync {
    log: File,
    blobs: PathBuf,
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl DiskSync {
    /// For the sled database at `db_dir` (already open, so its log exists).
    pub fn open(db_dir: &Path) -> io::Result<Self> {
        Ok(Self {
            log: File::open(db_dir.join("db"))?,
            blobs: db_dir.join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
        })
    }

    /// Makes what sled's last flush wrote durable.
    pub fn after_flush(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&self) -> io::Result<()> {
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file.sync_data()?,
                    // sled removed it meanwhile: nothing points at it any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)?.sync_all()?;
        }
        *synced = present;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Commit, SledStore, Store};

    #[test]
    fn a_workflow_text_too_big_for_the_log_is_stored_as_a_synced_blob_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let big = "# a comment line of a big workflow\n".repeat(10_000);
        {
            let store = SledStore::open(dir.path()).unwrap();
            let commit = Commit {
                source: Some(big.clone()),
                ..Commit::default()
            };
            store.commit("r1", &commit).unwrap();
            let blobs = std::fs::read_dir(dir.path().join("store").join("blobs"))
                .unwrap()
                .count();
            assert!(blobs > 0, "sled kept a {} byte value in its log", big.len());
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.source("r1").unwrap().as_deref(), Some(big.as_str()));
    }
}
