//! A record of the commit log: the writes of one commit, framed so that a record cut short or
//! damaged is told from a whole one. A record is its body's length (`u32`, little-endian), the
//! first 8 bytes of the body's SHA-256, and the body: each write as its tree (one byte), its
//! key and its value (each after its length as a `u32`).

use std::io;

use sha2::{Digest, Sha256};

/// Length and checksum.
const HEADER: usize = 4 + 8;

/// The tree of the store a logged write went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Tree {
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
pub(in crate::store) struct Record(Vec<u8>);

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
    pub(super) fn sealed(mut self) -> io::Result<Vec<u8>> {
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
pub(in crate::store) struct Put<'a> {
    pub tree: Tree,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The writes of a record's body; `None` when it does not parse (its checksum held, so it was
/// written so: a bug, or another format).
pub(in crate::store) fn writes(mut body: &[u8]) -> Option<Vec<Put<'_>>> {
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
pub(in crate::store) fn records(mut bytes: &[u8]) -> Vec<&[u8]> {
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

/// A record of `writes`, for tests.
#[cfg(test)]
pub(super) fn record(writes: &[(Tree, &[u8], &[u8])]) -> Record {
    let mut record = Record::with_capacity(0);
    for (tree, key, value) in writes {
        record.put(*tree, key, value).unwrap();
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
