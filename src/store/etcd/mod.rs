//! The etcd store (SPEC §11): the same records as the sled store, on a replicated etcd
//! cluster, so that losing the machine (or the region) that drives a run loses nothing.
//!
//! Keys, under the store's prefix `P` (`etcd://h1:2379,h2:2379/P`):
//!
//! - `P/schema`: the layout version ([`ETCD_SCHEMA_VERSION`]); another version is refused;
//! - `P/runs/RUN`: the run record as of its last commit;
//! - `P/bundles/RUN/SEQ`: what one commit wrote (the sled store's bundle format), keyed by the
//!   journal position of its first entry, zero-padded, so a run's commits list in order;
//! - `P/anchors/RUN`: where the journal ended at the last commit;
//! - `P/sources/RUN`: the workflow text the run started with;
//! - `P/owners/RUN`: who drives the run, attached to that process's lease;
//! - `P/active/WORKFLOW`: the workflow's unfinished run, if any (one at a time).
//!
//! Every commit is one etcd transaction. It holds only while this process still owns the run:
//! the transaction compares the owner key's creation revision with the one this process
//! created. When the process stops renewing its lease (killed, paused, cut off), etcd deletes
//! the key; a write attempted after that is refused whole, whoever took the run over since.
//!
//! [`Store`] is synchronous; etcd's client is not. The store runs the client on a thread of
//! its own and waits for each answer, as the sled store waits for its disk ([`client`]).
//!
//! Beyond the records, the store is shared ([`SharedStore`]): runs are held under this
//! process's lease, and agents announce themselves under it ([`lease`]); a run has an inbox
//! of requests for its driver ([`inbox`]). Here: the keys, the schema, and the records read
//! back.
//!
//! A run's journal is read from an entry on by ranges that begin at the bundle holding it, and
//! followed by a watch from the revision read ([`follow`]): a process following a run reads
//! only what is new, and many followers cost the cluster no more reads than one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};

mod address;
mod client;
mod commit;
mod follow;
mod inbox;
mod lease;

pub use address::EtcdAddress;

use super::format::{Bundle, decode};
use super::{
    Anchor, Commit, Committing, JournalEntry, JournalFollower, RunRecord, SharedStore, StepRecord,
    Store, StoreError,
};
use client::{Job, RETRY_PAUSE, retried};
use lease::Lease;

/// The key layout this build reads and writes.
pub const ETCD_SCHEMA_VERSION: u32 = 1;

/// Who drives a run, as its owner key says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// The agent's name (`--name`, else the host's).
    pub name: String,
    /// Its host.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// Since when (RFC 3339).
    pub since: String,
}

/// A store on an etcd cluster.
pub struct EtcdStore {
    address: EtcdAddress,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    ttl: Duration,
    owner: Owner,
    lease: Mutex<Option<Lease>>,
    /// The runs this process owns, with the creation revision of their owner key.
    owned: Mutex<HashMap<String, i64>>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EtcdStore {
    /// Connects to the cluster at `address`; runs it drives are held with a lease of `ttl`,
    /// in the name of `owner`.
    pub fn open(address: EtcdAddress, ttl: Duration, owner: Owner) -> Result<Self, StoreError> {
        let jobs = client::start(address.endpoints.clone())?;
        let store = Self {
            address,
            jobs,
            ttl,
            owner,
            lease: Mutex::new(None),
            owned: Mutex::new(HashMap::new()),
        };
        store.check_schema()?;
        Ok(store)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.address.prefix.clone();
        for p in parts {
            k.push('/');
            k.push_str(p);
        }
        k
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let key = self.key(&["schema"]);
        let version = ETCD_SCHEMA_VERSION.to_string();
        let found = self.call(move |mut c| {
            let (key, version) = (key.clone(), version.clone());
            async move {
                let txn = Txn::new()
                    .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), version.clone(), None)])
                    .or_else([TxnOp::get(key, None)]);
                let response = c.txn(txn).await?;
                if response.succeeded() {
                    return Ok(version);
                }
                Ok(response
                    .op_responses()
                    .into_iter()
                    .find_map(|op| match op {
                        TxnOpResponse::Get(g) => g
                            .kvs()
                            .first()
                            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                        _ => None,
                    })
                    .unwrap_or_default())
            }
        })?;
        if found == ETCD_SCHEMA_VERSION.to_string() {
            Ok(())
        } else {
            Err(StoreError::SchemaMismatch {
                dir: self.describe(),
                found,
                expected: ETCD_SCHEMA_VERSION,
            })
        }
    }

    /// `etcd://…/prefix`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "etcd://{}{}",
            self.address.endpoints.join(","),
            self.address.prefix
        )
    }

    fn get(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(move |mut c| {
            let key = key.clone();
            async move {
                let response = c.get(key, None).await?;
                Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
            }
        })
    }

    fn list(&self, prefix: String) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.call(move |mut c| {
            let prefix = prefix.clone();
            async move {
                let response = c.get(prefix, Some(GetOptions::new().with_prefix())).await?;
                Ok(response
                    .kvs()
                    .iter()
                    .map(|kv| {
                        (
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            kv.value().to_vec(),
                        )
                    })
                    .collect())
            }
        })
    }

    fn bundles(&self, run_id: &str) -> Result<Vec<Bundle>, StoreError> {
        self.list(self.key(&["bundles", run_id, ""]))?
            .into_iter()
            .map(|(_, v)| decode(run_id, &v))
            .collect()
    }
}

impl Store for EtcdStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        self.commit_with_lease(run_id, commit)
    }

    /// Waits for etcd's answer on this thread, as [`Store::commit`] does: the client runs on a
    /// thread of its own.
    fn commit_async<'a>(&'a self, run_id: &'a str, commit: &'a Commit) -> Committing<'a> {
        super::committed(self.commit(run_id, commit))
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get(self.key(&["runs", run_id]))?
            .map(|v| decode(run_id, &v))
            .transpose()
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let runs = self
            .list(self.key(&["runs", ""]))?
            .into_iter()
            .map(|(k, v)| decode(k.rsplit('/').next().unwrap_or_default(), &v))
            .collect::<Result<_, _>>()?;
        Ok(super::oldest_first(runs))
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        super::latest_steps(self.bundles(run_id)?.into_iter().map(Ok))
    }

    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(self
            .bundles(run_id)?
            .into_iter()
            .flat_map(|b| b.journal)
            .collect())
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        self.read_journal_from(run_id, from)
    }

    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn JournalFollower + '_>, StoreError> {
        Ok(Box::new(self.follower(run_id, from)?))
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.get(self.key(&["sources", run_id]))?
            .map(|v| String::from_utf8(v).map_err(io))
            .transpose()
    }

    fn anchor(&self, run_id: &str) -> Result<Option<Anchor>, StoreError> {
        self.get(self.key(&["anchors", run_id]))?
            .map(|v| decode(run_id, &v))
            .transpose()
    }

    /// Shared by every process with the cluster's address.
    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(self)
    }
}

impl Drop for EtcdStore {
    /// Lets go of every run this process drives: its lease is revoked, so another agent may
    /// take them up at once rather than after the lease runs out.
    fn drop(&mut self) {
        if let Some(id) = self.held_lease() {
            let _ = self.call(move |mut c| async move {
                c.lease_revoke(id).await?;
                Ok(())
            });
        }
    }
}
