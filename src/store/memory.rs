//! An in-memory store for unit tests: the same contract as the sled store, without the disk.
//! One process owns it whole: it has no owners, no inbox and no agents.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    Anchor, Commit, Committing, JournalEntry, JournalFollower, RunRecord, SharedStore, StepRecord,
    Store, StoreError,
};

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

/// The values of `map` keyed by run `run_id` and a key from `from` on, in key order. No run
/// id sorts between `run_id` and `run_id` followed by a NUL, and `K::default()` is the least
/// key (the empty step name, entry 0).
fn of_run<K: Ord + Default, V: Clone>(
    map: &BTreeMap<(String, K), V>,
    run_id: &str,
    from: K,
) -> Vec<V> {
    map.range((run_id.to_string(), from)..(format!("{run_id}\0"), K::default()))
        .map(|(_, v)| v.clone())
        .collect()
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

    /// Nothing to wait for: a commit is done once it returns.
    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        super::committed(self.commit(run_id, commit))
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
        Ok(super::oldest_first(
            self.lock().runs.values().cloned().collect(),
        ))
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        Ok(of_run(&self.lock().steps, run_id, String::new()))
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_from(run_id, 0)
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(of_run(&self.lock().journal, run_id, from))
    }

    /// Read again every [`super::FOLLOW_POLL`].
    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn JournalFollower + '_>, StoreError> {
        Ok(super::polling(self, run_id, from))
    }

    /// Not shared: this process owns every run in it.
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }
}
