//! Durable storage of runs: the run records, the step records and the append-only, hash-chained
//! event journal. The engine never touches sled directly: it talks to [`Store`], which has a
//! sled implementation for one machine, an etcd one shared by several processes, and an
//! in-memory one for unit tests.
//!
//! What only a shared store has is apart, in narrow traits: who drives a run ([`Leases`]), a
//! run's inbox of requests ([`Inbox`]) and the agents serving the store ([`Agents`]), together
//! a [`SharedStore`]. A caller reaches them through [`Store::shared`], which is `None` on a
//! store one process owns whole, and says what it does then: nothing pretends to have claimed
//! a run or answered a request on a store that has no owners and no inbox.
//!
//! A commit (journal entries, the run record, the step records they change) is written
//! atomically and made durable before it returns: what the engine does next may rely on it
//! having happened.

mod commit_log;
mod etcd;
mod follow;
mod format;
mod group;
mod holder;
mod journal;
mod memory;
mod migrate;
mod private;
mod records;
mod sled_store;
mod sync;

pub use etcd::{ETCD_SCHEMA_VERSION, EtcdAddress, EtcdStore, Owner};
pub use follow::{Changed, FOLLOW_POLL, JournalFollower, JournalNews};
pub use journal::{GENESIS, JournalEntry, chain_hash, verify_chain};
pub use memory::MemoryStore;
pub use records::{
    AttemptOutcome, AttemptRecord, RunMode, RunRecord, RunStatus, StepRecord, StepStatus,
};
pub use sled_store::{SCHEMA_VERSION, SledStore, decode_bundle};

use thiserror::Error;

/// What can go wrong with the store. These are fatal for the process: the engine stops rather
/// than act on state it could not record.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store directory is used by another drctl process.
    #[error(
        "the state directory {dir} is in use by another drctl process{}; use --state to pick another, or wait for it to finish",
        holder.as_ref().map(|h| format!(" (pid {h})")).unwrap_or_default()
    )]
    Locked {
        /// The state directory.
        dir: String,
        /// The process holding it (pid and command line), when it can be told.
        holder: Option<String>,
    },
    /// The store was written by a version of drctl with another schema.
    #[error(
        "the state directory {dir} holds schema version {found}, this drctl reads version {expected}: it will not misread it; use the matching drctl version or another --state directory"
    )]
    SchemaMismatch {
        /// The state directory.
        dir: String,
        /// The version found.
        found: String,
        /// The version this build reads.
        expected: u32,
    },
    /// The directory is not a drctl store, or it is damaged.
    #[error("the state directory {dir} is not a usable drctl store: {reason}")]
    Corrupt {
        /// The state directory.
        dir: String,
        /// What was found.
        reason: String,
    },
    /// A record could not be decoded.
    #[error("a stored record of run {run} could not be read: {reason}")]
    BadRecord {
        /// The run concerned.
        run: String,
        /// What went wrong.
        reason: String,
    },
    /// The underlying database failed.
    #[error("store I/O failed: {0}")]
    Io(String),
    /// This process no longer owns the run (its lease expired, another process took the run
    /// over): the write was refused whole, and this process must stop acting on the run.
    #[error("run {run} is no longer driven by this process: {reason}; nothing was written")]
    Fenced {
        /// The run.
        run: String,
        /// Who drives it now, or why this process lost it.
        reason: String,
    },
    /// Another run of the same workflow is unfinished (decided atomically by the store).
    #[error("run {run} of the same workflow is unfinished")]
    Unfinished {
        /// The unfinished run.
        run: String,
    },
}

/// A batch of changes to one run, written atomically and durably.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The run record after the change.
    pub run: Option<RunRecord>,
    /// Step records after the change.
    pub steps: Vec<StepRecord>,
    /// Journal entries to append (already chained by the caller).
    pub journal: Vec<JournalEntry>,
    /// The workflow's text, written once with the run's first commit.
    pub source: Option<String>,
}

/// A commit under way: done once it is durable.
pub type Committing<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Durable storage of runs: what every store holds, whoever uses it. Every backend says what
/// each method does (no method has a default), and says with [`Store::shared`] whether it is
/// shared by several processes.
pub trait Store: Send + Sync {
    /// Writes a commit atomically and durably (flushed before returning).
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError>;

    /// As [`Store::commit`], for a run driven as a task among others (`drctl serve`): waiting
    /// for the flush leaves the thread to the other runs. A store whose commit has nothing to
    /// wait for hands back [`committed`] of its [`Store::commit`].
    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a>;

    /// The run `run_id`.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Every run, oldest first (see `oldest_first`).
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// The step records of a run, in no particular order.
    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError>;

    /// The journal of a run, in order.
    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError>;

    /// The journal of a run from entry `from` on, in order (empty when `from` is past its
    /// end), read without reading the entries before `from`: what a follower asks for is
    /// what is new.
    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError>;

    /// Follows run `run_id`'s journal from entry `from` on, for a process that shows the run
    /// without driving it: on sled and in memory the run's record and
    /// [`Store::journal_from`] every [`FOLLOW_POLL`] (`polling`), on etcd a watch tells the
    /// follower what is new.
    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn JournalFollower + '_>, StoreError>;

    /// The workflow text run `run_id` started with.
    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError>;

    /// Where run `run_id`'s journal ended at its last commit, kept apart from the journal so
    /// that a journal cut short (its last commits lost or removed) is detected. `None` for
    /// runs recorded before anchors existed.
    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError>;

    /// What only a store shared by several processes has (owners, an inbox, agents), or
    /// `None` for a store one process owns whole (sled, memory): there nobody else drives a
    /// run, and decisions go through the driving process's socket.
    fn shared(&self) -> Option<&dyn SharedStore>;
}

/// Who drives which run, on a store shared by several processes: a run is held under the
/// holder's lease, and only its holder writes it.
pub trait Leases: Send + Sync {
    /// Makes this process the one that drives run `run_id`: refused (`Fenced`) when another
    /// process drives it.
    fn claim(&self, run_id: &str) -> Result<(), StoreError>;

    /// Lets go of run `run_id`, which this process holds, for an agent to take it up: this
    /// process writes nothing more for it (a commit it tried would be refused). Refused
    /// (`Fenced`) when this process never held it.
    fn release(&self, run_id: &str) -> Result<(), StoreError>;

    /// Who drives run `run_id`, if anyone.
    fn owner(&self, run_id: &str) -> Result<Option<Owner>, StoreError>;
}

/// A run's inbox, on a store shared by several processes: requests left for the process that
/// drives the run (votes, cancels), and its answers.
pub trait Inbox: Send + Sync {
    /// Leaves `request` for the process that drives run `run_id`; returns its id.
    fn post(&self, run_id: &str, request: &[u8]) -> Result<String, StoreError>;

    /// The requests waiting for run `run_id`'s driver, oldest first: `(id, request)`.
    fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Takes request `id` out of run `run_id`'s inbox to apply it: true when this process has
    /// it now, false when it was withdrawn first (it must not be applied). Exactly one of
    /// [`Inbox::take_request`] and [`Inbox::withdraw`] wins for a request.
    fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Withdraws request `id` of run `run_id` while it still waits in the inbox: true when it
    /// was withdrawn (it will never be applied), false when the driver took it first (it is
    /// being applied, or was: its answer follows).
    fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Answers request `id` of run `run_id` (taken with [`Inbox::take_request`]).
    fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError>;

    /// Takes the answer to request `id` of run `run_id`, once there is one.
    fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The agents (`drctl serve`) serving a store shared by several processes.
pub trait Agents: Send + Sync {
    /// Makes this process known as an agent for as long as it holds its lease; said again now
    /// and then.
    fn announce(&self) -> Result<(), StoreError>;

    /// The agents known to be alive (see [`Agents::announce`]).
    fn agents(&self) -> Result<Vec<Owner>, StoreError>;
}

/// Everything a store shared by several processes has beyond [`Store`], reached through
/// [`Store::shared`].
pub trait SharedStore: Leases + Inbox + Agents {}

impl<T: Leases + Inbox + Agents> SharedStore for T {}

/// A commit already durable when [`Store::commit`] returns, as [`Store::commit_async`] hands
/// it back (nothing to wait for: memory, etcd's client thread, a test's store).
pub fn committed<'a>(done: Result<(), StoreError>) -> Committing<'a> {
    Box::pin(std::future::ready(done))
}

/// `runs` oldest first (then by id), as [`Store::runs`] lists them.
fn oldest_first(mut runs: Vec<RunRecord>) -> Vec<RunRecord> {
    runs.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then(a.run_id.cmp(&b.run_id))
    });
    runs
}

/// The follower that reads the run's record and [`Store::journal_from`] every
/// [`FOLLOW_POLL`], for a store that cannot tell when a run changes.
fn polling<'a, S: Store>(store: &'a S, run_id: &str, from: u64) -> Box<dyn JournalFollower + 'a> {
    Box::new(follow::Polling::new(store, run_id, from))
}

/// A run's step records as its `bundles` (oldest first) leave them: the latest of each step.
fn latest_steps(
    bundles: impl IntoIterator<Item = Result<format::Bundle, StoreError>>,
) -> Result<Vec<StepRecord>, StoreError> {
    let mut latest: std::collections::HashMap<String, StepRecord> =
        std::collections::HashMap::new();
    for bundle in bundles {
        for step in bundle?.steps {
            latest.insert(step.step.clone(), step);
        }
    }
    Ok(latest.into_values().collect())
}

/// The end of a run's journal as of its last commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// Entries in the journal.
    pub journal_len: u64,
    /// Hash of the last entry.
    pub last_hash: String,
}

impl Anchor {
    /// The anchor a commit leaves, when it carries the run record.
    pub fn of(commit: &Commit) -> Option<Anchor> {
        commit.run.as_ref().map(|run| Anchor {
            journal_len: run.journal_len,
            last_hash: run.last_hash.clone(),
        })
    }
}
