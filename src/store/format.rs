//! The sled store's format: its schema version, the keys of its `bundles` tree, and the codec
//! of a bundle (what one commit wrote). Shared by the store and the migration from version 1,
//! and fed arbitrary bytes by the property tests: decoding never panics.

use serde::{Deserialize, Serialize};

use super::{Commit, JournalEntry, RunRecord, StepRecord, StoreError};

/// The record format this build reads and writes. Version 1 kept a run record, step records
/// and journal entries in trees of their own, the workflow text inside the run record, all
/// rewritten by a transaction at every commit; it is migrated on open. Version 2 is this
/// layout without the commit log: a build that reads version 2 would not replay the log, and
/// miss the commits it holds, so it must refuse a store this build wrote; a version 2 store
/// is read as it is.
pub const SCHEMA_VERSION: u32 = 3;

/// What one commit wrote, as stored.
#[derive(Serialize)]
struct BundleOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a RunRecord>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    steps: &'a [StepRecord],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    journal: &'a [JournalEntry],
}

/// What one commit wrote, read back.
#[derive(Deserialize)]
pub(super) struct Bundle {
    #[serde(default)]
    pub run: Option<RunRecord>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

/// The run record of a bundle alone: its steps and journal are skipped, not built.
#[derive(Deserialize)]
pub(super) struct RunOnly {
    #[serde(default)]
    pub run: Option<RunRecord>,
}

/// The journal entries of a bundle alone: its run and step records are skipped, not built.
#[derive(Deserialize)]
pub(super) struct JournalOnly {
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    run: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadRecord {
        run: run.to_string(),
        reason: e.to_string(),
    })
}

/// Reads back what one commit of `run` wrote (as stored in `bundles`). Any bytes give the
/// commit or an error naming the run; nothing panics on a damaged store.
pub fn decode_bundle(run: &str, bytes: &[u8]) -> Result<Commit, StoreError> {
    let bundle: Bundle = decode(run, bytes)?;
    Ok(Commit {
        run: bundle.run,
        steps: bundle.steps,
        journal: bundle.journal,
        source: None,
    })
}

/// The key of a bundle of `run`, or with an empty `rest` the prefix of all of them.
pub(super) fn key(run: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(run.len() + 1 + rest.len());
    k.extend_from_slice(run.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

/// Serializes what a commit writes into one bundle.
pub(super) fn encode_bundle(
    run: Option<&RunRecord>,
    steps: &[StepRecord],
    journal: &[JournalEntry],
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&BundleOut {
        run,
        steps,
        journal,
    })
    .map_err(|e| StoreError::Io(e.to_string()))
}
