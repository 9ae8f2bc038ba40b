//! Migration of older stores.
//!
//! A version 2 store is a version 3 store without a commit log: only its version changes.
//!
//! Version 1 kept each run's record (with the workflow text inside), its step records and its
//! journal entries in trees of their own (`runs`, `steps`, `journal`). Each run becomes one
//! bundle holding all of them, its id goes to `run_ids` and its text to `sources`, in one
//! transaction with the new version: a migration cut off leaves a version 1 store, migrated
//! again on the next open. The old trees are dropped afterwards.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::format::{SCHEMA_VERSION, encode_bundle, key};
use super::{JournalEntry, RunRecord, StepRecord};

const V1_TREES: [&str; 3] = ["runs", "steps", "journal"];

fn exists(db: &sled::Db, name: &str) -> bool {
    db.tree_names()
        .iter()
        .any(|t| t.as_ref() == name.as_bytes())
}

/// Whether version 1 trees hold runs.
pub(super) fn v1_holds_runs(db: &sled::Db) -> bool {
    exists(db, "runs") && db.open_tree("runs").is_ok_and(|t| !t.is_empty())
}

/// Drops the version 1 trees left after a migration.
pub(super) fn drop_v1_trees(db: &sled::Db) -> sled::Result<()> {
    for name in V1_TREES {
        if exists(db, name) {
            db.drop_tree(name)?;
        }
    }
    Ok(())
}

/// Marks a version 2 store as this version's: its trees are laid out the same.
pub(super) fn from_v2(meta: &sled::Tree) -> sled::Result<()> {
    meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
    Ok(())
}

fn read<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{what} could not be read for the migration to schema version {SCHEMA_VERSION}: {e}"
        )
    })
}

/// Rewrites a version 1 store as this version's.
pub(super) fn from_v1(
    db: &sled::Db,
    meta: &sled::Tree,
    run_ids: &sled::Tree,
    bundles: &sled::Tree,
    sources: &sled::Tree,
) -> Result<(), String> {
    let text = |e: sled::Error| e.to_string();
    let runs = db.open_tree("runs").map_err(text)?;
    let steps = db.open_tree("steps").map_err(text)?;
    let journal = db.open_tree("journal").map_err(text)?;
    let mut moved = Vec::new();
    for item in &runs {
        let (k, v) = item.map_err(text)?;
        let run_id = String::from_utf8_lossy(&k).to_string();
        let what = format!("run {run_id}");
        let mut record: serde_json::Value = read(&what, &v)?;
        let source = record
            .as_object_mut()
            .and_then(|o| o.remove("workflow_source"))
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        let record: RunRecord = serde_json::from_value(record).map_err(|e| e.to_string())?;
        let step_records = steps
            .scan_prefix(key(&run_id, b""))
            .map(|item| read::<StepRecord>(&what, &item.map_err(text)?.1))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = journal
            .scan_prefix(key(&run_id, b""))
            .map(|item| read::<JournalEntry>(&what, &item.map_err(text)?.1))
            .collect::<Result<Vec<_>, _>>()?;
        let bundle =
            encode_bundle(Some(&record), &step_records, &entries).map_err(|e| e.to_string())?;
        let id = db.generate_id().map_err(text)?;
        moved.push((
            run_id.clone(),
            key(&run_id, &id.to_be_bytes()),
            bundle,
            source,
        ));
    }
    (meta, run_ids, bundles, sources)
        .transaction(|(meta, run_ids, bundles, sources)| {
            for (run_id, bundle_key, bundle, source) in &moved {
                run_ids.insert(run_id.as_bytes(), b"".as_slice())?;
                bundles.insert(bundle_key.as_slice(), bundle.as_slice())?;
                sources.insert(run_id.as_bytes(), source.as_bytes())?;
            }
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
        .map_err(|e: TransactionError<()>| format!("{e:?}"))?;
    db.flush().map_err(text)?;
    drop_v1_trees(db).map_err(text)
}
