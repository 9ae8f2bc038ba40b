//! An in-memory store for unit tests: the same contract as the sled store, without the disk.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Anchor, Commit, JournalEntry, RunRecord, StepRecord, Store, StoreError};

#[derive(Default)]
struct Inner {
    runs: BTreeMap<String, RunRecord>,
    anchors: BTreeMap<String, Anchor>,
    steps: BTreeMap<(String, String), StepRecord>,
    journal: BTreeMap<(String, u64), JournalEntry>,
    sources: BTreeMap<String, String>,
}

/// A store that lives as long as the value.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(run) = &commit.run {
            inner.runs.insert(run_id.to_string(), run.clone());
        }
        for s in &commit.steps {
            inner
                .steps
                .insert((run_id.to_string(), s.step.clone()), s.clone());
        }
        for e in &commit.journal {
            inner.journal.insert((run_id.to_string(), e.seq), e.clone());
        }
        if let Some(source) = &commit.source {
            inner.sources.insert(run_id.to_string(), source.clone());
        }
        if let Some(anchor) = Anchor::of(commit) {
            inner.anchors.insert(run_id.to_string(), anchor);
        }
        Ok(())
    }

    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError> {
        Ok(self.lock().anchors.get(run_id).cloned())
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().sources.get(run_id).cloned())
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().runs.get(run_id).cloned())
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = self.lock().runs.values().cloned().collect();
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        Ok(self
            .lock()
            .steps
            .iter()
            .filter(|((r, _), _)| r == run_id)
            .map(|(_, s)| s.clone())
            .collect())
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(self
            .lock()
            .journal
            .iter()
            .filter(|((r, _), _)| r == run_id)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        let run = run_id.to_string();
        Ok(self
            .lock()
            .journal
            .range((run.clone(), from)..=(run, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }
}
