//! The sled store's commit log: what makes a commit durable with one `fdatasync`.
//!
//! sled's `flush` hands the write of its log to a thread of its own pool (waking every idle
//! one), waits for it with `sync_file_range`, and the store must then `fdatasync` sled's log
//! for a power cut ([`super::sync::DiskSync`]): two waits for the disk per commit where one
//! is the floor. So each commit's writes to sled are also appended here, as one record, and
//! the commit is durable once this file is synced. sled's own files are made durable now and
//! then, by a checkpoint (sled's flush, then the syncs it leaves out) after which the file
//! the checkpoint covers is removed; and when the store is closed. Opening the store replays
//! the files left into sled, so that a commit acknowledged before a crash or a power cut is
//! there whatever sled had written of it.
//!
//! The log is files `commits.N` in sled's directory, `N` counting up from the files left, of
//! records ([`record`]: one per commit, framed so that one cut short is told). Records are
//! written one after the other under a lock, those of the commits a sync covers in one write,
//! and none after a write or a sync that failed, so the first record cut short or damaged
//! ends a file: neither it nor anything after it was acknowledged.
//!
//! A file is written with zeros ahead of its records (256 KiB, topped up as records use
//! them), and records are written over the zeros: the file's size and blocks do not change,
//! so syncing a record writes the record and flushes the disk's cache, without the write of
//! the file's inode that a sync after an append waits for. Zeros end the reading like a
//! record cut short.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod record;

pub(super) use record::{Put, Record, Tree, records, writes};

/// A file holding more than this is replaced by a new one at the next flush, and removed once
/// a checkpoint made sled hold what it held. Replaying a full one at open takes tens of
/// milliseconds.
const FILE_LIMIT: u64 = 4 << 20;

/// Zeros written ahead of the records, topped up when less than half of them is left.
const AHEAD: u64 = 256 << 10;

static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

const PREFIX: &str = "commits.";

/// The log files left in `dir`, oldest first, with their numbers.
pub(super) fn files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Whether `name` is a file of the log.
pub(super) fn is_log_file(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|n| n.parse::<u64>().is_ok())
}

/// The log of a store being written.
pub(super) struct CommitLog {
    dir: PathBuf,
    /// Records appended and not written yet. Appending never waits for the disk.
    pending: Mutex<Pending>,
    /// The file records are written to: held while they are written, so that a sync finding
    /// nothing pending finds it written.
    current: Mutex<Current>,
}

/// Records appended since the last sync, written by the next: one write for the records of
/// every commit it covers.
struct Pending {
    bytes: Vec<u8>,
    /// A write or a sync failed: nothing more is written (a record after one cut short would
    /// never be replayed, and a sync after a failed one may not cover what the failed one
    /// did).
    broken: Option<String>,
}

/// The file records are written to.
struct Current {
    number: u64,
    /// Created when the first records are written.
    file: Option<Arc<File>>,
    /// Bytes of whole records in it.
    len: u64,
    /// Bytes written to it, records and the zeros after them.
    end: u64,
}

impl CommitLog {
    /// A log in `dir` whose first file is `commits.{number}` (created when first needed).
    pub fn new(dir: &Path, number: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            pending: Mutex::new(Pending {
                bytes: Vec::new(),
                broken: None,
            }),
            current: Mutex::new(Current {
                number,
                file: None,
                len: 0,
                end: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The records appended so far, taken to be written; an error once the log failed.
    fn take_pending(&self) -> io::Result<Vec<u8>> {
        let mut pending = self.pending();
        if let Some(why) = &pending.broken {
            return Err(io::Error::other(why.clone()));
        }
        Ok(std::mem::take(&mut pending.bytes))
    }

    /// Marks the log failed.
    fn fails(&self, what: &str, e: io::Error) -> io::Error {
        self.pending().broken = Some(format!("the commit log failed {what}: {e}"));
        e
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{number}"))
    }

    /// Creates file `number`, private, its name made durable with its directory, and zeros
    /// written ahead (see [`zeros_ahead`]).
    fn create(&self, number: u64) -> io::Result<Arc<File>> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.path(number))?;
        zeros_ahead(&file, 0, 0)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(Arc::new(file))
    }

    /// Appends `record`, to be written and made durable by the next [`CommitLog::sync`].
    pub fn append(&self, record: Record) -> io::Result<()> {
        let bytes = record.sealed()?;
        let mut pending = self.pending();
        if let Some(why) = &pending.broken {
            return Err(io::Error::other(why.clone()));
        }
        pending.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    /// Writes the records appended so far and makes them durable. Returns whether the file
    /// is full.
    pub fn sync(&self) -> io::Result<bool> {
        let (file, full) = {
            let mut current = self.lock();
            let mut batch = self.take_pending()?;
            if !batch.is_empty() {
                let file = match &current.file {
                    Some(file) => Arc::clone(file),
                    None => {
                        let file = self
                            .create(current.number)
                            .map_err(|e| self.fails("to create its file", e))?;
                        current.file = Some(Arc::clone(&file));
                        current.end = AHEAD;
                        file
                    }
                };
                if let Err(e) = file.write_all_at(&batch, current.len) {
                    return Err(self.fails("to write", e));
                }
                current.len += batch.len() as u64;
                current.end = current.end.max(current.len);
                // Its room is used again by the next records.
                batch.clear();
                let mut pending = self.pending();
                if pending.bytes.is_empty() {
                    pending.bytes = batch;
                }
            }
            if let Some(file) = current.file.clone()
                && current.end - current.len < AHEAD / 2
            {
                // Synced with the records: once, for the records of the next 128 KiB.
                match zeros_ahead(&file, current.len, current.end) {
                    Ok(end) => current.end = end,
                    Err(e) => return Err(self.fails("to write zeros ahead", e)),
                }
            }
            (current.file.clone(), current.len >= FILE_LIMIT)
        };
        if let Some(file) = file
            && let Err(e) = file.sync_data()
        {
            return Err(self.fails("to sync", e));
        }
        Ok(full)
    }

    /// Replaces a full file by a new one. Returns the full file's path, to be removed once
    /// sled holds what it held. (Records written to it are synced by the syncs that wrote
    /// them.)
    pub fn replace_full(&self) -> io::Result<Option<PathBuf>> {
        let mut current = self.lock();
        if current.len < FILE_LIMIT || current.file.is_none() {
            return Ok(None);
        }
        let number = current.number + 1;
        let next = self.create(number)?;
        let full = current.number;
        current.number = number;
        current.file = Some(next);
        current.len = 0;
        current.end = AHEAD;
        Ok(Some(self.path(full)))
    }

    /// Removes the current file, once sled holds what it held (the store is being closed).
    pub fn remove(&self) -> io::Result<()> {
        let mut current = self.lock();
        if current.file.take().is_some() {
            std::fs::remove_file(self.path(current.number))?;
        }
        Ok(())
    }
}

/// Writes zeros in `file` from `end`, where what was written ends, to [`AHEAD`] bytes after
/// `len`, where its records end; returns the new end.
fn zeros_ahead(file: &File, len: u64, end: u64) -> io::Result<u64> {
    let until = len + AHEAD;
    let mut at = end;
    while at < until {
        let n = ZEROS
            .len()
            .min(usize::try_from(until - at).unwrap_or(ZEROS.len()));
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(at.max(end))
}

#[cfg(test)]
mod tests {
    use super::record::record;
    use super::*;

    /// What makes a sync of the log one write and a flush: records go over zeros written
    /// ahead, so the file's size does not change with them.
    #[test]
    fn records_are_written_over_zeros_written_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommitLog::new(dir.path(), 1);
        let path = dir.path().join("commits.1");
        let size = || std::fs::metadata(&path).unwrap().len();
        log.append(record(&[(Tree::Bundles, b"k0", &[7; 1000])]))
            .unwrap();
        log.sync().unwrap();
        let ahead = size();
        assert!(ahead >= AHEAD, "{ahead} bytes");
        let mut appended = 1;
        while log.lock().len + 2000 < ahead - AHEAD / 2 {
            log.append(record(&[(Tree::Bundles, b"k", &[7; 1000])]))
                .unwrap();
            log.sync().unwrap();
            appended += 1;
            assert_eq!(size(), ahead, "a record changed the file's size");
        }
        // Topped up when half is used, and every record reads back.
        for _ in 0..100 {
            log.append(record(&[(Tree::Bundles, b"k", &[7; 1000])]))
                .unwrap();
            log.sync().unwrap();
            appended += 1;
        }
        assert!(size() > ahead);
        assert!(size() - log.lock().len >= AHEAD / 2);
        assert_eq!(records(&std::fs::read(&path).unwrap()).len(), appended);
    }

    /// Records appended and synced from many threads at once all read back, each thread's
    /// in its order.
    #[test]
    fn records_of_threads_at_once_all_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommitLog::new(dir.path(), 1);
        std::thread::scope(|scope| {
            for t in 0u8..4 {
                let log = &log;
                scope.spawn(move || {
                    for i in 0u32..200 {
                        let value = [&[t][..], &i.to_be_bytes()].concat();
                        log.append(record(&[(Tree::Bundles, b"k", &value)]))
                            .unwrap();
                        if i % 3 == 0 {
                            log.sync().unwrap();
                        }
                    }
                    log.sync().unwrap();
                });
            }
        });
        let bytes = std::fs::read(dir.path().join("commits.1")).unwrap();
        let mut next = [0u32; 4];
        for body in records(&bytes) {
            let value = writes(body).unwrap()[0].value;
            let t = usize::from(value[0]);
            assert_eq!(value[1..], next[t].to_be_bytes());
            next[t] += 1;
        }
        assert_eq!(next, [200; 4]);
    }

    #[test]
    fn a_full_file_is_replaced_and_its_records_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommitLog::new(dir.path(), 3);
        let big = vec![7u8; 1 << 20];
        let mut appended = 0;
        while !log.sync().unwrap() {
            log.append(record(&[(Tree::Bundles, b"k", &big)])).unwrap();
            appended += 1;
        }
        let full = log.replace_full().unwrap().expect("the file is full");
        assert_eq!(full, dir.path().join("commits.3"));
        log.append(record(&[(Tree::Bundles, b"after", b"v")]))
            .unwrap();
        log.sync().unwrap();
        let found = files(dir.path()).unwrap();
        assert_eq!(
            found.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(records(&std::fs::read(&full).unwrap()).len(), appended);
        assert_eq!(records(&std::fs::read(&found[1].1).unwrap()).len(), 1);
        assert!(log.replace_full().unwrap().is_none());
    }
}
