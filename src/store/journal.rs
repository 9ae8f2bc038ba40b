//! Journal entries and their hash chain: each entry carries the hash of the one before, so a
//! lost, altered or reordered entry is detected.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of a run's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of a run's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the run's journal, from 0.
    pub seq: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub at: String,
    /// The engine event, as JSON.
    pub event: serde_json::Value,
    /// Hash of the previous entry ([`GENESIS`] for the first).
    pub prev: String,
    /// Hash of this entry: SHA-256 over `prev`, `seq`, `at` and `event`.
    pub hash: String,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The hash of an entry with these contents.
pub fn chain_hash(prev: &str, seq: u64, at: &str, event: &serde_json::Value) -> String {
    let mut hasher = Hashing(Sha256::new());
    hasher.0.update(prev.as_bytes());
    hasher.0.update(seq.to_be_bytes());
    hasher.0.update(at.as_bytes());
    // The event's compact JSON, as `to_string` would give it, streamed into the hash.
    if serde_json::to_writer(&mut hasher, event).is_err() {
        // Writing into a hasher cannot fail; were it to, the entry would not verify.
        return String::new();
    }
    let mut hex = String::with_capacity(64);
    for b in hasher.0.finalize() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// A hasher fed through `io::Write`.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks the chain: sequence numbers from 0 without gaps, each `prev` the hash before, each
/// hash right. Returns the first broken position and why.
pub fn verify_chain(entries: &[JournalEntry]) -> Result<(), (u64, String)> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as u64;
        if e.seq != expected_seq {
            return Err((
                expected_seq,
                format!("entry {expected_seq} is missing (found {})", e.seq),
            ));
        }
        if e.prev != prev {
            return Err((e.seq, "does not follow the entry before it".into()));
        }
        if chain_hash(&e.prev, e.seq, &e.at, &e.event) != e.hash {
            return Err((e.seq, "its contents do not match its hash".into()));
        }
        prev.clone_from(&e.hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// The hash is SHA-256 over the previous hash, the big-endian sequence number, the time
    /// and the event's compact JSON, in lowercase hex: journals written by earlier builds
    /// still verify.
    #[test]
    fn the_hash_is_sha256_over_the_entry_as_first_defined() {
        let event = serde_json::json!({"type": "step_started", "step": "a", "attempt": 1});
        let mut expected = Sha256::new();
        expected.update(super::GENESIS.as_bytes());
        expected.update(7u64.to_be_bytes());
        expected.update(b"2026-11-23T10:00:00Z");
        expected.update(event.to_string().as_bytes());
        let expected = expected.finalize().iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        });
        assert_eq!(
            super::chain_hash(super::GENESIS, 7, "2026-11-23T10:00:00Z", &event),
            expected
        );
    }
}
