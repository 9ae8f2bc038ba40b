//! A commit on etcd: one transaction that holds only while this process owns the run (its
//! owner key is the one it created, under its lease), and, for a run's first commit, while the
//! workflow has no other unfinished run. When it does not hold, what it read instead says why.

use std::sync::PoisonError;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};

use super::super::format::encode_bundle;
use super::super::{Anchor, Commit, StoreError};
use super::{EtcdStore, Owner, io};

impl EtcdStore {
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
    pub(super) fn commit_with_lease(
        &self,
        run_id: &str,
        commit: &Commit,
    ) -> Result<(), StoreError> {
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
