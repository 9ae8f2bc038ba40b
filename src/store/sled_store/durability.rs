//! Making commits durable: the commit log synced once per group of commits, and the
//! checkpoints (sled's flush and the syncs it leaves out) after which a full log file goes.

use std::path::{Path, PathBuf};

use super::super::StoreError;
use super::super::commit_log::CommitLog;
use super::super::sync::DiskSync;
use super::io;

/// What makes commits durable: the commit log, and the checkpoints after which its full files
/// go.
pub(super) struct Durability {
    pub(super) log: CommitLog,
    pub(super) db: sled::Db,
    pub(super) disk: DiskSync,
    /// Checkpoints running on threads of their own.
    pub(super) checkpoints: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Durability {
    /// Makes every commit written so far durable: the commit log synced. A full log file is
    /// then replaced by a new one, and removed by a checkpoint on a thread of its own, so
    /// that the commits after it do not wait for sled's flush.
    pub(super) fn commits(self: &std::sync::Arc<Self>) -> Result<(), String> {
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
    pub(super) fn checkpoint(&self) -> Result<(), String> {
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
    pub(super) fn wait(&self) {
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
pub(super) fn flush(db: &sled::Db, disk: &DiskSync) -> Result<(), String> {
    db.flush().map_err(|e| e.to_string())?;
    disk.after_flush().map_err(|e| e.to_string())
}

/// A commit whose shared flush failed.
pub(super) fn not_durable(e: Option<String>) -> StoreError {
    io(e.unwrap_or_else(|| "the flush this commit shared failed; it may not be durable".into()))
}
