//! Following a run's journal as it grows, for a process that shows a run it does not drive
//! (`drctl run` once it handed its run to the agents). A follower reads only what is new since
//! its last read; how it learns that there is something new is the store's business: on sled
//! and in memory it looks again every [`FOLLOW_POLL`] ([`Polling`]), on etcd a watch tells it
//! (so that a hundred followers cost the cluster no more reads than one).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{JournalEntry, Store, StoreError};

/// How often a polling follower reads the run again.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// What a follower read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalNews {
    /// The entries written since the last read, in order, the first following the last one
    /// read before (or, the first time, the entry the follower started from).
    pub entries: Vec<JournalEntry>,
    /// Whether more may come: the run is under way, or entries it has journaled were not
    /// read yet. Once false, every entry the run journaled has been read.
    pub under_way: bool,
}

/// A wait for something new (see [`JournalFollower::changed`]).
pub type Changed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One run's journal, read as it grows.
pub trait JournalFollower: Send {
    /// What was written since the last read, and whether the run goes on. Does not wait for
    /// anything new: that is [`JournalFollower::changed`].
    fn read(&mut self) -> Result<JournalNews, StoreError>;

    /// Waits until there may be something new to read (on a tokio runtime with its timer).
    /// A wait dropped before it ends loses nothing, so it can be one branch of a `select!`.
    fn changed(&mut self) -> Changed<'_>;
}

/// The follower of a store that cannot tell when a run changes: the run's record, then its
/// journal from the first entry not read yet, every [`FOLLOW_POLL`].
pub(super) struct Polling<'a, S: ?Sized> {
    store: &'a S,
    run_id: String,
    from: u64,
}

impl<'a, S: Store + ?Sized> Polling<'a, S> {
    pub(super) fn new(store: &'a S, run_id: &str, from: u64) -> Self {
        Self {
            store,
            run_id: run_id.to_string(),
            from,
        }
    }
}

impl<S: Store + ?Sized> JournalFollower for Polling<'_, S> {
    fn read(&mut self) -> Result<JournalNews, StoreError> {
        // The status first: once it says the run rests, the journal read after it holds
        // every entry.
        let under_way = self
            .store
            .run(&self.run_id)?
            .is_some_and(|r| r.status.is_under_way());
        let entries = self.store.journal_from(&self.run_id, self.from)?;
        if let Some(last) = entries.last() {
            self.from = last.seq + 1;
        }
        Ok(JournalNews { entries, under_way })
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(tokio::time::sleep(FOLLOW_POLL))
    }
}
