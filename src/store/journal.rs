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

/// The hash of an entry with these contents.
pub fn chain_hash(prev: &str, seq: u64, at: &str, event: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(seq.to_be_bytes());
    hasher.update(at.as_bytes());
    hasher.update(event.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
            s
        })
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
