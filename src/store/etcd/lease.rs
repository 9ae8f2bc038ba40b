//! The lease this process holds its runs under, and what is held with it: the runs it drives
//! (their owner keys) and its place among the agents. etcd deletes what a lease holds once the
//! lease is not renewed for its time to live: a process killed, paused or cut off lets go of
//! its runs by itself.
//!
//! The lease is renewed every third of its time to live. A renewal that fails or comes late
//! (a member gone with the connection it was sent on, a leader being elected) is sent again,
//! on a new connection, until the lease has run out by this process's clock: only then does
//! this process count it as lost.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use etcd_client::{Txn, TxnOp};
use tokio::time::Instant;

use super::super::{Agents, Commit, Leases, StoreError};
use super::{EtcdStore, Job, Owner, RETRY_PAUSE, io};

/// The lease this process holds its runs with.
pub(super) struct Lease {
    id: i64,
    /// Set by the keep-alive task once the lease ran out unrenewed.
    lost: Arc<AtomicBool>,
}

/// One renewal of a lease.
pub(super) trait Renew {
    /// Renews the lease: the time to live it has again, in seconds (0 or less when etcd no
    /// longer knows it), or `None` when the renewal failed.
    fn renew(&mut self) -> impl Future<Output = Option<i64>> + Send;
}

/// Renewals on a keep-alive stream, opened again when one breaks.
struct Renewals {
    client: Client,
    id: i64,
    stream: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

impl Renew for Renewals {
    async fn renew(&mut self) -> Option<i64> {
        // Taken while the renewal is under way: one cut short (failed, or dropped when it came
        // too late) leaves no stream whose next answer would be this one's.
        let (mut keeper, mut answers) = match self.stream.take() {
            Some(stream) => stream,
            None => self.client.lease_keep_alive(self.id).await.ok()?,
        };
        keeper.keep_alive().await.ok()?;
        let answer = answers.message().await.ok()??;
        self.stream = Some((keeper, answers));
        Some(answer.ttl())
    }
}

/// Keeps a lease of `ttl` alive with `renewals`, one every `period`, until it runs out: a
/// renewal that fails or takes longer than `period` is tried again every [`RETRY_PAUSE`] while
/// the lease may still be alive (from the last renewal that answered, counted from when it was
/// sent). Sets `lost` and returns once the lease ran out, or etcd says it no longer knows it.
pub(super) async fn keep_alive(
    mut renewals: impl Renew,
    ttl: Duration,
    period: Duration,
    lost: &AtomicBool,
) {
    let mut expires = Instant::now() + ttl;
    let mut pause = period;
    loop {
        tokio::time::sleep(pause).await;
        let sent = Instant::now();
        if sent >= expires {
            break;
        }
        let wait = period.min(expires - sent);
        match tokio::time::timeout(wait, renewals.renew()).await {
            Ok(Some(left)) if left > 0 => {
                expires = sent + Duration::from_secs(left.unsigned_abs());
                pause = period;
            }
            Ok(Some(_)) => break,
            Ok(None) | Err(_) => pause = RETRY_PAUSE,
        }
    }
    lost.store(true, Ordering::SeqCst);
}

impl EtcdStore {
    /// This process's lease, granted (and kept alive) the first time it is needed.
    pub(super) fn lease(&self) -> Result<i64, StoreError> {
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        // A lease lost stays lost for the runs held with it (their owner keys went with it,
        // so their writes are refused); runs claimed from now on get a new one.
        if let Some(l) = lease.as_ref()
            && !l.lost.load(Ordering::SeqCst)
        {
            return Ok(l.id);
        }
        let ttl = self.ttl.max(Duration::from_secs(1));
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(5);
        let id =
            self.call(move |mut c| async move { Ok(c.lease_grant(secs, None).await?.id()) })?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let renewals = Renewals {
                    client,
                    id,
                    stream: None,
                };
                keep_alive(renewals, ttl, ttl / 3, &flag).await;
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| io("the etcd client thread stopped"))?;
        *lease = Some(Lease { id, lost });
        Ok(id)
    }

    /// The lease held now, if any, to revoke when the store is closed.
    pub(super) fn held_lease(&self) -> Option<i64> {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|l| l.id)
    }

    /// Whether this process still holds its lease (as far as it knows: etcd decides).
    pub fn holds_lease(&self) -> bool {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|l| !l.lost.load(Ordering::SeqCst))
    }

    /// Forgets `lease` (etcd no longer knows it): the next claim gets a new one.
    pub(super) fn forget_lease(&self, lease: i64) {
        let mut held = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|l| l.id == lease) {
            *held = None;
        }
    }

    /// Makes this process the one that drives run `run_id` (see [`Leases::claim`]).
    pub fn claim(&self, run_id: &str) -> Result<(), StoreError> {
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

    /// Lets go of run `run_id`, which this process holds (see [`Leases::release`]).
    pub fn release(&self, run_id: &str) -> Result<(), StoreError> {
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

    /// Who drives run `run_id`, if anyone.
    pub fn owner(&self, run_id: &str) -> Result<Option<Owner>, StoreError> {
        self.get(self.key(&["owners", run_id]))?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| StoreError::BadRecord {
                    run: run_id.to_string(),
                    reason: format!("its owner record cannot be read: {e}"),
                })
            })
            .transpose()
    }
}

impl Leases for EtcdStore {
    fn claim(&self, run_id: &str) -> Result<(), StoreError> {
        EtcdStore::claim(self, run_id)
    }

    fn release(&self, run_id: &str) -> Result<(), StoreError> {
        EtcdStore::release(self, run_id)
    }

    fn owner(&self, run_id: &str) -> Result<Option<Owner>, StoreError> {
        EtcdStore::owner(self, run_id)
    }
}

impl Agents for EtcdStore {
    /// An agent's key, `P/agents/NAME@HOST:PID`, is held under this process's lease.
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
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::{Renew, keep_alive};

    /// Renewals answering as scripted, each after its delay, then failing.
    struct Scripted {
        answers: VecDeque<(Duration, Option<i64>)>,
    }

    impl Renew for Scripted {
        fn renew(&mut self) -> impl std::future::Future<Output = Option<i64>> + Send {
            let next = self.answers.pop_front();
            async move {
                let (delay, answer) = next?;
                tokio::time::sleep(delay).await;
                answer
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// A lease of 3 s renewed every second: a renewal lost (a member gone) and one late are
    /// sent again while the lease lives, and the lease is kept.
    #[test]
    fn a_late_or_failed_renewal_is_tried_again_while_the_lease_lives() {
        let ms = Duration::from_millis;
        let lost = AtomicBool::new(false);
        let renewals = Scripted {
            answers: VecDeque::from([
                (ms(0), Some(3)),
                (ms(0), None),
                (ms(1500), Some(3)),
                (ms(0), Some(3)),
                (ms(0), Some(3)),
            ]),
        };
        let kept = runtime().block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                keep_alive(renewals, Duration::from_secs(3), ms(1000), &lost),
            )
            .await
        });
        assert!(!lost.load(Ordering::SeqCst), "the lease was given up early");
        // With the script spent, renewals fail: the lease then runs out, well after 5 s.
        assert!(kept.is_err(), "the keep-alive ended while the lease lived");
    }

    /// Keeps a lease of `ttl` alive every `period` with renewals answering `answers`, until it
    /// is lost: how long that took.
    fn lost_after(
        answers: &[(Duration, Option<i64>)],
        ttl: Duration,
        period: Duration,
    ) -> Duration {
        let lost = AtomicBool::new(false);
        let renewals = Scripted {
            answers: answers.iter().copied().collect(),
        };
        let started = std::time::Instant::now();
        runtime().block_on(keep_alive(renewals, ttl, period, &lost));
        assert!(lost.load(Ordering::SeqCst));
        started.elapsed()
    }

    /// Renewals that keep failing: the lease counts as lost once it ran out, not before.
    #[test]
    fn a_lease_is_lost_once_it_ran_out_unrenewed() {
        let ms = Duration::from_millis;
        let took = lost_after(&[], ms(900), ms(300));
        assert!(took >= ms(900) && took < Duration::from_secs(3), "{took:?}");
    }

    /// etcd no longer knows the lease: lost at once.
    #[test]
    fn a_lease_etcd_forgot_is_lost() {
        let took = lost_after(
            &[(Duration::ZERO, Some(0))],
            Duration::from_secs(30),
            Duration::from_millis(100),
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
