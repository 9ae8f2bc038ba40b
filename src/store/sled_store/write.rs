//! Writing a commit into sled and the commit log: one bundle, the run's anchor, and with the
//! run's first commit its id and workflow text, in one transaction. Not durable yet: that is
//! [`super::durability`].

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::super::commit_log::{Record, Tree};
use super::super::format::{encode_bundle, key};
use super::super::{Anchor, Commit, RunRecord, StoreError};
use super::{SledStore, io};

impl SledStore {
    /// Writes `commit` into sled's memory (not yet durable).
    pub(super) fn write(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let bundle = encode_bundle(commit.run.as_ref(), &commit.steps, &commit.journal)?;
        let id = self.db.generate_id().map_err(io)?;
        self.ids_made_durable()?;
        let bundle_key = key(run_id, &id.to_be_bytes());
        let first = commit.source.is_some() || !self.run_ids.contains_key(run_id).map_err(io)?;
        let anchor = match Anchor::of(commit) {
            Some(a) => serde_json::to_vec(&a).map_err(io)?,
            None => Vec::new(),
        };
        let source = commit.source.as_deref().unwrap_or_default();
        let mut record = Record::with_capacity(
            bundle_key.len() + bundle.len() + 2 * run_id.len() + anchor.len() + source.len() + 32,
        );
        record
            .put(Tree::Bundles, &bundle_key, &bundle)
            .map_err(io)?;
        if first || !anchor.is_empty() {
            record
                .put(Tree::RunIds, run_id.as_bytes(), &anchor)
                .map_err(io)?;
        }
        if commit.source.is_some() {
            record
                .put(Tree::Sources, run_id.as_bytes(), source.as_bytes())
                .map_err(io)?;
        }
        if first {
            (&self.run_ids, &self.bundles, &self.sources)
                .transaction(|(run_ids, bundles, sources)| {
                    run_ids.insert(run_id.as_bytes(), anchor.as_slice())?;
                    bundles.insert(bundle_key.as_slice(), bundle.as_slice())?;
                    if let Some(source) = &commit.source {
                        sources.insert(run_id.as_bytes(), source.as_bytes())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e: TransactionError<()>| io(format!("{e:?}")))?;
        } else {
            self.bundles.insert(bundle_key, bundle).map_err(io)?;
            // After the bundle in sled's log: a recovered log never holds the anchor
            // without the bundle it points to.
            if !anchor.is_empty() {
                self.run_ids.insert(run_id.as_bytes(), anchor).map_err(io)?;
            }
        }
        self.durability.log.append(record).map_err(io)?;
        if let Some(run) = &commit.run {
            self.remember(run.clone());
        }
        Ok(())
    }

    /// Makes sled's id counter durable before the first record of this process is logged.
    /// Bundles are keyed by sled's ids, and sled recovers its counter from its own files,
    /// where it is written at the first id of each block of a million: were the block this
    /// process draws from not on disk when it is killed, the next process would draw the
    /// same ids again, and its bundles would overwrite the ones the commit log replayed.
    fn ids_made_durable(&self) -> Result<(), StoreError> {
        let mut durable = self
            .ids_durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*durable {
            self.durability.checkpoint().map_err(io)?;
            *durable = true;
        }
        Ok(())
    }

    pub(super) fn remember(&self, run: RunRecord) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(run.run_id.clone(), run);
    }

    pub(super) fn remembered(&self, run_id: &str) -> Option<RunRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(run_id)
            .cloned()
    }
}
