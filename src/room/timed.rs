//! The agent's store, its commits timed for `/metrics` (`drctl_store_commit_seconds`). Every
//! other call goes to the store unchanged: the room measures, it never alters what is stored.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

use crate::store::{
    Anchor, Commit, Committing, JournalEntry, JournalFollower, RunRecord, SharedStore, StepRecord,
    Store, StoreError,
};

/// A store whose commits are timed into a histogram.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    commits: Histogram,
}

impl TimedStore {
    /// `inner`, each commit's time (until it is durable) observed in `commits`.
    pub fn wrap(inner: Arc<dyn Store>, commits: Histogram) -> Arc<dyn Store> {
        Arc::new(Self { inner, commits })
    }
}

impl Store for TimedStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let began = Instant::now();
        let result = self.inner.commit(run_id, commit);
        self.commits.observe(began.elapsed().as_secs_f64());
        result
    }

    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        Box::pin(async move {
            let began = Instant::now();
            let result = self.inner.commit_async(run_id, commit).await;
            self.commits.observe(began.elapsed().as_secs_f64());
            result
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id)
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs()
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.inner.steps(run_id)
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(run_id)
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal_from(run_id, from)
    }

    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn JournalFollower + '_>, StoreError> {
        self.inner.follow_journal(run_id, from)
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.source(run_id)
    }

    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError> {
        self.inner.anchor(run_id)
    }

    fn shared(&self) -> Option<&dyn SharedStore> {
        self.inner.shared()
    }
}
