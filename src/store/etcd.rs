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

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};

use super::format::{Bundle, decode, encode_bundle};
use super::{Anchor, Commit, JournalEntry, RunRecord, StepRecord, Store, StoreError};

/// The key layout this build reads and writes.
pub const ETCD_SCHEMA_VERSION: u32 = 1;

/// How long one request to the cluster may take, retries included, before the store gives
/// up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between two tries of a request that failed without a decision.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether `e` says the cluster decided nothing, so the request may be sent again: no leader
/// (or a new one), a member unavailable, a connection broken or not made.
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted
            ) || status.message().contains("leader changed")
                || status.message().contains("no leader")
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// Where an etcd store is: its members and its key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAddress {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// The key prefix, without a trailing slash.
    pub prefix: String,
}

impl EtcdAddress {
    /// Reads `etcd://h1:2379,h2:2379/prefix`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("etcd://").ok_or_else(|| {
            format!("`{url}` is not a store drctl knows: write sled:DIR or etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
        })?;
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, "drctl"));
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(format!("`{url}` names no etcd member"));
        }
        if let Some(bad) = endpoints.iter().find(|h| !h.contains(':')) {
            return Err(format!("`{bad}` in `{url}` has no port (HOST:PORT)"));
        }
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            endpoints,
            prefix: if prefix.is_empty() {
                "/drctl".into()
            } else {
                format!("/{prefix}")
            },
        })
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
    /// Takes request `id` out of run `run_id`'s inbox, in one transaction that holds only
    /// while the request is still there: by its driver (`taken`: marked as being applied) or
    /// by its sender (withdrawn). True when this call took it out.
    fn move_out_of_inbox(&self, run_id: &str, id: &str, taken: bool) -> Result<bool, StoreError> {
        let waiting = self.key(&["inbox", run_id, id]);
        let mut ops = vec![TxnOp::delete(waiting.clone(), None)];
        if taken {
            ops.push(TxnOp::put(
                self.key(&["taken", run_id, id]),
                Vec::new(),
                None,
            ));
        }
        let txn = Txn::new()
            .when([Compare::version(waiting, CompareOp::Greater, 0)])
            .and_then(ops);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move { Ok(c.txn(txn).await?.succeeded()) }
        })
    }

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
                let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
                let answer = loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match tokio::time::timeout(left, f(client.clone())).await {
                        Ok(Ok(value)) => break Ok(value),
                        Ok(Err(e)) if transient(&e) && tokio::time::Instant::now() < deadline => {
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        Ok(Err(e)) => break Err(io(e)),
                        Err(_) => break Err(io("etcd did not answer in time")),
                    }
                };
                let _ = tx.send(answer);
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

    /// The writes of `commit`, adding to `when` what they need to hold.
    fn writes(
        &self,
        run_id: &str,
        commit: &Commit,
        guard: &Guard,
        lease: i64,
        owner_key: &str,
        when: &mut Vec<Compare>,
    ) -> Result<Vec<TxnOp>, StoreError> {
        let mut ops = Vec::new();
        if matches!(guard, Guard::Claim) {
            let owner = serde_json::to_vec(&Owner {
                since: crate::time::rfc3339(chrono::Utc::now()),
                ..self.owner.clone()
            })
            .map_err(io)?;
            ops.push(TxnOp::put(
                owner_key,
                owner,
                Some(PutOptions::new().with_lease(lease)),
            ));
        }
        if !commit.journal.is_empty() {
            let first = commit.journal[0].seq;
            let bundle = encode_bundle(commit.run.as_ref(), &commit.steps, &commit.journal)?;
            ops.push(TxnOp::put(
                self.key(&["bundles", run_id, &format!("{first:020}")]),
                bundle,
                None,
            ));
        }
        if let Some(run) = &commit.run {
            ops.push(TxnOp::put(
                self.key(&["runs", run_id]),
                serde_json::to_vec(run).map_err(io)?,
                None,
            ));
            let active = self.key(&["active", &run.workflow]);
            if commit.source.is_some() {
                // One unfinished run per workflow, decided here, atomically.
                when.push(Compare::version(active.clone(), CompareOp::Equal, 0));
                ops.push(TxnOp::put(active, run_id, None));
            } else if run.status.is_unfinished() {
                // A cancelled run taken up again holds its workflow again, if it is free.
                ops.push(TxnOp::txn(
                    Txn::new()
                        .when([Compare::version(active.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(active, run_id, None)]),
                ));
            } else {
                ops.push(TxnOp::txn(
                    Txn::new()
                        .when([Compare::value(active.clone(), CompareOp::Equal, run_id)])
                        .and_then([TxnOp::delete(active, None)]),
                ));
            }
        }
        if let Some(anchor) = Anchor::of(commit) {
            ops.push(TxnOp::put(
                self.key(&["anchors", run_id]),
                serde_json::to_vec(&anchor).map_err(io)?,
                None,
            ));
        }
        if let Some(source) = &commit.source {
            ops.push(TxnOp::put(
                self.key(&["sources", run_id]),
                source.clone(),
                None,
            ));
        }
        Ok(ops)
    }

    /// Commits holding this process's lease. A lease etcd no longer knows (expired, revoked)
    /// is replaced once: runs held with it are lost anyway, and a run this commit claims
    /// needs a live one.
    fn commit_with_lease(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let lease = self.lease()?;
        match self.try_commit(run_id, commit, lease) {
            Err(StoreError::Io(e)) if e.contains("lease not found") => {
                self.forget_lease(lease);
                self.try_commit(run_id, commit, self.lease()?)
            }
            result => result,
        }
    }

    /// One try of a commit, holding `lease`.
    fn try_commit(&self, run_id: &str, commit: &Commit, lease: i64) -> Result<(), StoreError> {
        let guard = self
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .map_or(Guard::Claim, |&rev| Guard::Owned(rev));
        let owner_key = self.key(&["owners", run_id]);
        let mut when = vec![match guard {
            Guard::Owned(rev) => Compare::create_revision(owner_key.clone(), CompareOp::Equal, rev),
            Guard::Claim => Compare::version(owner_key.clone(), CompareOp::Equal, 0),
        }];
        let ops = self.writes(run_id, commit, &guard, lease, &owner_key, &mut when)?;
        let mut reads = vec![TxnOp::get(owner_key.clone(), None)];
        if let Some(run) = &commit.run {
            reads.push(TxnOp::get(self.key(&["active", &run.workflow]), None));
        }
        let txn = Txn::new().when(when).and_then(ops).or_else(reads);
        let (succeeded, revision, answers) = self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                let response = c.txn(txn).await?;
                let revision = response
                    .header()
                    .map_or(0, etcd_client::ResponseHeader::revision);
                let answers: Vec<Option<Read>> = response
                    .op_responses()
                    .into_iter()
                    .map(|op| match op {
                        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| Read {
                            value: kv.value().to_vec(),
                            lease: kv.lease(),
                            created: kv.create_revision(),
                        }),
                        _ => None,
                    })
                    .collect();
                Ok((response.succeeded(), revision, answers))
            }
        })?;
        let claimed = match (&guard, succeeded, answers.first()) {
            (Guard::Claim, true, _) => Some(revision),
            // A claim sent again after its answer was lost: the owner key is this process's.
            (Guard::Claim, false, Some(Some(owner))) if owner.lease == lease => Some(owner.created),
            (Guard::Owned(_), true, _) => None,
            _ => return Err(refusal(run_id, &guard, &answers)),
        };
        if let Some(revision) = claimed {
            self.owned
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(run_id.to_string(), revision);
        }
        Ok(())
    }

    /// Forgets `lease` (etcd no longer knows it): the next claim gets a new one.
    fn forget_lease(&self, lease: i64) {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|l| l.id == lease) {
            *held = None;
        }
    }
}

/// A key read back when a commit's transaction did not hold.
struct Read {
    value: Vec<u8>,
    lease: i64,
    created: i64,
}

/// What a commit's transaction compares before it writes.
enum Guard {
    /// The run is this process's: its owner key is the one this process created.
    Owned(i64),
    /// The run has no owner: this commit claims it.
    Claim,
}

/// Why a commit's transaction did not hold, from what it read instead: `answers` holds the
/// run's owner and its workflow's unfinished run.
fn refusal(run_id: &str, guard: &Guard, answers: &[Option<Read>]) -> StoreError {
    let owner: Option<Owner> = answers
        .first()
        .and_then(Option::as_ref)
        .and_then(|o| serde_json::from_slice(&o.value).ok());
    let active = answers
        .get(1)
        .and_then(Option::as_ref)
        .map(|a| a.value.clone());
    match guard {
        Guard::Owned(_) => StoreError::Fenced {
            run: run_id.to_string(),
            reason: match owner {
                Some(o) => format!(
                    "{} (pid {} on {}) drives it since {}",
                    o.name, o.pid, o.host, o.since
                ),
                None => "this process's lease expired and nobody drives it now".into(),
            },
        },
        Guard::Claim if owner.is_some() => StoreError::Fenced {
            run: run_id.to_string(),
            reason: owner.map_or_else(
                || "another process drives it".into(),
                |o| format!("{} (pid {} on {}) drives it", o.name, o.pid, o.host),
            ),
        },
        Guard::Claim => StoreError::Unfinished {
            run: String::from_utf8_lossy(&active.unwrap_or_default()).into_owned(),
        },
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
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{nanos:024}-{}", std::process::id());
        let (key, value) = (self.key(&["inbox", run_id, &id]), request.to_vec());
        self.call(move |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                c.put(key, value, None).await?;
                Ok(())
            }
        })?;
        Ok(id)
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .list(self.key(&["inbox", run_id, ""]))?
            .into_iter()
            .map(|(k, v)| (k.rsplit('/').next().unwrap_or_default().to_string(), v))
            .collect())
    }

    fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, true)
    }

    fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.move_out_of_inbox(run_id, id, false)
    }

    fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
        let txn = Txn::new().and_then([
            TxnOp::delete(self.key(&["taken", run_id, id]), None),
            TxnOp::put(self.key(&["answers", run_id, id]), answer.to_vec(), None),
        ]);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                c.txn(txn).await?;
                Ok(())
            }
        })
    }

    fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let answer = self.key(&["answers", run_id, id]);
        let txn = Txn::new().and_then([
            TxnOp::get(answer.clone(), None),
            TxnOp::delete(answer, None),
        ]);
        self.call(move |mut c| {
            let txn = txn.clone();
            async move {
                let response = c.txn(txn).await?;
                Ok(response.op_responses().into_iter().find_map(|op| match op {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                }))
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

#[cfg(test)]
mod tests {
    use super::EtcdAddress;

    #[test]
    fn store_urls_name_their_members_and_prefix() {
        let a = EtcdAddress::parse("etcd://h1:2379,h2:2379/dr/ctl/").unwrap();
        assert_eq!(a.endpoints, ["h1:2379", "h2:2379"]);
        assert_eq!(a.prefix, "/dr/ctl");
        assert_eq!(
            EtcdAddress::parse("etcd://h1:2379").unwrap().prefix,
            "/drctl"
        );
        assert_eq!(
            EtcdAddress::parse("etcd://h1:2379/").unwrap().prefix,
            "/drctl"
        );
        for bad in ["h1:2379", "etcd:///x", "etcd://h1/x", "sled:/tmp"] {
            assert!(EtcdAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
