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
//! its own and waits for each answer, as the sled store waits for its disk.
//!
//! A run's journal is read from an entry on by ranges that begin at the bundle holding it, and
//! followed by a watch from the revision read ([`follow`]): a process following a run reads
//! only what is new, and many followers cost the cluster no more reads than one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};

mod address;
mod commit;
mod follow;
mod inbox;

pub use address::EtcdAddress;

use super::format::{Bundle, decode};
use super::{
    Anchor, Commit, JournalEntry, JournalFollower, RunRecord, StepRecord, Store, StoreError,
};

/// The key layout this build reads and writes.
pub const ETCD_SCHEMA_VERSION: u32 = 1;

/// How long one request to the cluster may take, retries included, before the store gives
/// up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between two tries of a request that failed without a decision.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether `e` says the request may be sent again: no leader (or a new one), a member
/// unavailable, a connection broken or not made. A connection broken under a request may
/// leave it decided or not; every request drctl sends is safe to send twice (see
/// [`EtcdStore::call`]).
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted
            ) || status.message().contains("leader changed")
                || status.message().contains("no leader")
                // A connection broken under a request: tonic reports it as an unknown status.
                || (status.code() == tonic::Code::Unknown
                    && status.message().contains("transport error"))
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// Runs `f` with `client` until it answers; a failure that says nothing was decided is tried
/// again, on any member, until [`REQUEST_TIMEOUT`].
async fn retried<T, F, Fut>(client: &Client, f: F) -> Result<T, StoreError>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, f(client.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if transient(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(io("etcd did not answer in time")),
        }
    }
}

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

type Job = Box<dyn FnOnce(Client) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The lease this process holds its runs with.
struct Lease {
    id: i64,
    /// Set by the keep-alive task when a renewal failed or came too late.
    lost: Arc<std::sync::atomic::AtomicBool>,
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
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let endpoints = address.endpoints.clone();
        std::thread::Builder::new()
            .name("drctl-etcd".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(io(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let options = ConnectOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(REQUEST_TIMEOUT)
                        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
                    let client = match tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        Client::connect(&endpoints, Some(options)),
                    )
                    .await
                    {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            let _ = ready_tx.send(Err(io(format!(
                                "cannot reach etcd at {}: {e}",
                                endpoints.join(",")
                            ))));
                            return;
                        }
                        Err(_) => {
                            let _ = ready_tx.send(Err(io(format!(
                                "etcd at {} did not answer",
                                endpoints.join(",")
                            ))));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job(client.clone()));
                    }
                });
            })
            .map_err(io)?;
        ready_rx
            .recv()
            .map_err(|_| io("the etcd client thread stopped"))??;
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

    /// Runs `f` with the client on the store's thread and waits for its answer. A failure
    /// that says nothing was decided (no leader yet, a member gone, a connection reset) is
    /// tried again, on any member, until [`REQUEST_TIMEOUT`]: every request drctl sends is
    /// safe to send twice (reads, and commits that write the same keys with the same values).
    fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let _ = tx.send(retried(&client, f).await);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| io("the etcd client thread stopped"))?;
        rx.recv()
            .map_err(|_| io("the etcd client thread stopped"))?
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

    /// This process's lease, granted (and kept alive) the first time it is needed.
    fn lease(&self) -> Result<i64, StoreError> {
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        // A lease lost stays lost for the runs held with it (their owner keys went with it,
        // so their writes are refused); runs claimed from now on get a new one.
        if let Some(l) = lease.as_ref()
            && !l.lost.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(l.id);
        }
        let ttl = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(5);
        let id = self.call(move |mut c| async move { Ok(c.lease_grant(ttl, None).await?.id()) })?;
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, period) = (lost.clone(), self.ttl / 3);
        let job: Job = Box::new(move |mut client| {
            Box::pin(async move {
                let Ok((mut keeper, mut answers)) = client.lease_keep_alive(id).await else {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    return;
                };
                loop {
                    tokio::time::sleep(period).await;
                    let renewed = async {
                        keeper.keep_alive().await.ok()?;
                        answers.message().await.ok()?
                    };
                    match tokio::time::timeout(period, renewed).await {
                        Ok(Some(answer)) if answer.ttl() > 0 => {}
                        _ => {
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| io("the etcd client thread stopped"))?;
        *lease = Some(Lease { id, lost });
        Ok(id)
    }

    /// Whether this process still holds its lease (as far as it knows: etcd decides).
    pub fn holds_lease(&self) -> bool {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|l| !l.lost.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Forgets `lease` (etcd no longer knows it): the next claim gets a new one.
    fn forget_lease(&self, lease: i64) {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|l| l.id == lease) {
            *held = None;
        }
    }
}

impl Store for EtcdStore {
    fn claim(&self, run_id: &str) -> Result<(), StoreError> {
        if self
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(run_id)
        {
            return Ok(());
        }
        self.commit_with_lease(run_id, &Commit::default())
    }

    fn post(&self, run_id: &str, request: &[u8]) -> Result<String, StoreError> {
        self.post_request(run_id, request)
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.waiting_requests(run_id)
    }

    fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, true)
    }

    fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, false)
    }

    fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
        self.put_answer(run_id, id, answer)
    }

    fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.remove_answer(run_id, id)
    }

    fn announce(&self) -> Result<(), StoreError> {
        let lease = self.lease()?;
        let me = &self.owner;
        let key = self.key(&["agents", &format!("{}@{}:{}", me.name, me.host, me.pid)]);
        let value = serde_json::to_vec(me).map_err(io)?;
        self.call(move |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                    .await?;
                Ok(())
            }
        })
    }

    fn agents(&self) -> Result<Vec<Owner>, StoreError> {
        self.list(self.key(&["agents", ""]))?
            .into_iter()
            .map(|(key, value)| {
                serde_json::from_slice(&value).map_err(|e| StoreError::BadRecord {
                    run: key,
                    reason: format!("an agent's record cannot be read: {e}"),
                })
            })
            .collect()
    }

    fn release(&self, run_id: &str) -> Result<(), StoreError> {
        let Some(revision) = self
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run_id)
        else {
            return Err(StoreError::Fenced {
                run: run_id.to_string(),
                reason: "this process does not drive it".into(),
            });
        };
        let owner_key = self.key(&["owners", run_id]);
        let txn = Txn::new()
            .when([Compare::create_revision(
                owner_key.clone(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::delete(owner_key, None)]);
        // When the comparison fails, the owner key is no longer this process's (its lease
        // expired, or an answer was lost and this is the second try): let go of all the same.
        self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                c.txn(txn).await?;
                Ok(())
            }
        })
    }

    fn owner(&self, run_id: &str) -> Result<Option<Owner>, StoreError> {
        self.get(self.key(&["owners", run_id]))?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| StoreError::BadRecord {
                    run: run_id.to_string(),
                    reason: format!("its owner record cannot be read: {e}"),
                })
            })
            .transpose()
    }

    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        self.commit_with_lease(run_id, commit)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get(self.key(&["runs", run_id]))?
            .map(|v| decode(run_id, &v))
            .transpose()
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut out: Vec<RunRecord> = self
            .list(self.key(&["runs", ""]))?
            .into_iter()
            .map(|(k, v)| decode(k.rsplit('/').next().unwrap_or_default(), &v))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }

    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let mut latest: HashMap<String, StepRecord> = HashMap::new();
        for bundle in self.bundles(run_id)? {
            for step in bundle.steps {
                latest.insert(step.step.clone(), step);
            }
        }
        Ok(latest.into_values().collect())
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
}

impl Drop for EtcdStore {
    /// Lets go of every run this process drives: its lease is revoked, so another agent may
    /// take them up at once rather than after the lease runs out.
    fn drop(&mut self) {
        let id = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|l| l.id);
        if let Some(id) = id {
            let _ = self.call(move |mut c| async move {
                c.lease_revoke(id).await?;
                Ok(())
            });
        }
    }
}
