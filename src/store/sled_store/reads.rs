//! Reading runs back from the sled store: a run's record is the one in its last bundle, its
//! step records the latest of each step across its bundles, its journal the bundles' entries in
//! order.

use super::super::format::{JournalOnly, RunOnly, decode, key};
use super::super::{
    Anchor, Commit, Committing, JournalEntry, JournalFollower, RunRecord, SharedStore, StepRecord,
    Store, StoreError,
};
use super::durability::not_durable;
use super::{SledStore, io};

impl Store for SledStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        self.write(run_id, commit)?;
        self.group.durable(|| self.durability.commits()).map_err(io)
    }

    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        Box::pin(async move {
            self.write(run_id, commit)?;
            // Commits of other runs written meanwhile share the flush (group commit).
            let durability = self.durability.clone();
            self.group
                .durable_async(move || durability.commits())
                .await
                .map_err(not_durable)
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        if let Some(run) = self.remembered(run_id) {
            return Ok(Some(run));
        }
        for item in self.bundles.scan_prefix(key(run_id, b"")).rev() {
            let bundle: RunOnly = decode(run_id, &item.map_err(io)?.1)?;
            if let Some(run) = bundle.run {
                self.remember(run.clone());
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = Vec::new();
        for item in &self.run_ids {
            let (k, _) = item.map_err(io)?;
            if let Some(run) = self.run(&String::from_utf8_lossy(&k))? {
                out.push(run);
            }
        }
        Ok(super::super::oldest_first(out))
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        super::super::latest_steps(self.bundles(run_id))
    }

    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError> {
        match self.run_ids.get(run_id.as_bytes()).map_err(io)? {
            Some(v) if !v.is_empty() => {
                serde_json::from_slice(&v)
                    .map(Some)
                    .map_err(|e| StoreError::BadRecord {
                        run: run_id.to_string(),
                        reason: format!("its journal anchor cannot be read: {e}"),
                    })
            }
            _ => Ok(None),
        }
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.sources
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(io))
            .transpose()
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let mut entries = Vec::new();
        for bundle in self.bundles(run_id) {
            entries.extend(bundle?.journal);
        }
        Ok(entries)
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        // Back from the run's last bundle to the one holding entry `from`, decoding only their
        // journal entries: the bundles before it are neither read nor decoded.
        let mut newest_first = Vec::new();
        for item in self.bundles.scan_prefix(key(run_id, b"")).rev() {
            let bundle: JournalOnly = decode(run_id, &item.map_err(io)?.1)?;
            let holds_from = bundle.journal.first().is_some_and(|e| e.seq <= from);
            newest_first.push(bundle.journal);
            if holds_from {
                break;
            }
        }
        Ok(newest_first
            .into_iter()
            .rev()
            .flatten()
            .filter(|e| e.seq >= from)
            .collect())
    }

    /// Read again every [`FOLLOW_POLL`](super::super::FOLLOW_POLL): one process drives the
    /// runs of a sled store, and tells no other when it commits.
    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn JournalFollower + '_>, StoreError> {
        Ok(super::super::polling(self, run_id, from))
    }

    /// Not shared: the process that opened the store owns it whole (sled's lock).
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }
}
