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
//! The log is files `commits.N` in sled's directory, `N` counting up from the files left. A
//! record is its body's length (`u32`, little-endian), the first 8 bytes of the body's
//! SHA-256, and the body: each write as its tree (one byte), its key and its value (each
//! after its length as a `u32`). Records are written one after the other under a lock, those
//! of the commits a sync covers in one write, and none after a write or a sync that failed,
//! so the first record cut short or damaged ends a file: neither it nor anything after it
//! was acknowledged.
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

use sha2::{Digest, Sha256};

/// A file holding more than this is replaced by a new one at the next flush, and removed once
/// a checkpoint made sled hold what it held. Replaying a full one at open takes tens of
/// milliseconds.
const FILE_LIMIT: u64 = 4 << 20;

/// Zeros written ahead of the records, topped up when less than half of them is left.
const AHEAD: u64 = 256 << 10;

static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

const PREFIX: &str = "commits.";

/// Length and checksum.
const HEADER: usize = 4 + 8;

/// The tree of the store a logged write went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tree {
    /// `run_ids`: a run's id, its value the run's anchor.
    RunIds,
    /// `bundles`: what a commit wrote.
    Bundles,
    /// `sources`: a run's workflow text.
    Sources,
}

impl Tree {
    fn code(self) -> u8 {
        match self {
            Tree::RunIds => 1,
            Tree::Bundles => 2,
            Tree::Sources => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Tree::RunIds),
            2 => Some(Tree::Bundles),
            3 => Some(Tree::Sources),
            _ => None,
        }
    }
}

/// The writes of one commit, as they will be logged.
pub(super) struct Record(Vec<u8>);

impl Record {
    /// A record with room for `size` bytes of writes.
    pub fn with_capacity(size: usize) -> Self {
        let mut bytes = Vec::with_capacity(HEADER + size);
        bytes.resize(HEADER, 0);
        Record(bytes)
    }

    /// Adds a write of `value` under `key` in `tree`.
    pub fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.0.push(tree.code());
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .map_err(|_| io::Error::other("a value over 4 GiB cannot be logged"))?;
            self.0.extend_from_slice(&len.to_le_bytes());
            self.0.extend_from_slice(part);
        }
        Ok(())
    }

    /// The record's bytes: its header filled in.
    fn sealed(mut self) -> io::Result<Vec<u8>> {
        let body = &self.0[HEADER..];
        let len = u32::try_from(body.len())
            .map_err(|_| io::Error::other("a commit over 4 GiB cannot be logged"))?;
        let check = checksum(body);
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0[4..HEADER].copy_from_slice(&check);
        Ok(self.0)
    }
}

fn checksum(body: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(body);
    let mut check = [0; 8];
    check.copy_from_slice(&digest[..8]);
    check
}

/// One write read back from the log.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Put<'a> {
    pub tree: Tree,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The writes of a record's body; `None` when it does not parse (its checksum held, so it was
/// written so: a bug, or another format).
pub(super) fn writes(mut body: &[u8]) -> Option<Vec<Put<'_>>> {
    fn part<'a>(body: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = body.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (part, rest) = rest.split_at(len);
        *body = rest;
        Some(part)
    }
    let mut puts = Vec::new();
    while let Some((&code, rest)) = body.split_first() {
        body = rest;
        let tree = Tree::from_code(code)?;
        let key = part(&mut body)?;
        let value = part(&mut body)?;
        puts.push(Put { tree, key, value });
    }
    Some(puts)
}

/// The bodies of the records in `bytes`, up to the first cut short or damaged.
pub(super) fn records(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((header, rest)) = bytes.split_first_chunk::<HEADER>() {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let Ok(len) = usize::try_from(len) else {
            break;
        };
        if rest.len() < len {
            break;
        }
        let (body, rest) = rest.split_at(len);
        if checksum(body) != header[4..] {
            break;
        }
        out.push(body);
        bytes = rest;
    }
    out
}

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
    use super::*;

    fn record(writes: &[(Tree, &[u8], &[u8])]) -> Record {
        let mut record = Record::with_capacity(0);
        for (tree, key, value) in writes {
            record.put(*tree, key, value).unwrap();
        }
        record
    }

    #[test]
    fn records_read_back_as_written_up_to_one_cut_short() {
        let first = record(&[
            (Tree::RunIds, b"r1", b""),
            (Tree::Bundles, b"r1\0\0", b"{\"journal\":[]}"),
            (Tree::Sources, b"r1", b"[workflow]"),
        ]);
        let second = record(&[(Tree::Bundles, b"r1\0\x01", b"{}")]);
        let mut bytes = first.sealed().unwrap();
        bytes.extend(second.sealed().unwrap());
        let whole = bytes.len();

        let bodies = records(&bytes);
        assert_eq!(bodies.len(), 2);
        assert_eq!(
            writes(bodies[0]).unwrap(),
            vec![
                Put {
                    tree: Tree::RunIds,
                    key: b"r1",
                    value: b""
                },
                Put {
                    tree: Tree::Bundles,
                    key: b"r1\0\0",
                    value: b"{\"journal\":[]}"
                },
                Put {
                    tree: Tree::Sources,
                    key: b"r1",
                    value: b"[workflow]"
                },
            ]
        );
        // The last record cut anywhere: the first alone reads back.
        for cut in (whole - 20)..whole {
            assert_eq!(records(&bytes[..cut]).len(), 1, "cut at {cut}");
        }
        // A byte of the last record changed: the first alone.
        let mut damaged = bytes.clone();
        damaged[whole - 1] ^= 1;
        assert_eq!(records(&damaged).len(), 1);
        // Zeros after the records end the reading too.
        bytes.extend([0u8; 64]);
        assert_eq!(records(&bytes).len(), 2);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 7u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            for body in records(&bytes) {
                let _ = writes(body);
            }
            let _ = writes(&bytes);
        }
    }

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
