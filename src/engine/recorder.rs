//! Turns decided events into one durable commit: chained journal entries, the run record and
//! the records of the steps they touch. Nothing acts on an event before its commit returned.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::EngineError;
use super::event::Event;
use super::machine::{Input, Machine};
use crate::identity::{Head, SigningKey, Statement, StatementKind, format_time, sign_in};
use crate::store::{
    AttemptOutcome, AttemptRecord, Commit, JournalEntry, RunRecord, StepRecord, StepStatus, Store,
    StoreError, chain_hash,
};
use crate::time::rfc3339;

/// The key of the process that drives a run, and the principal it signs the journal as
/// (SPEC §5.10): `--as`/`--key` of a foreground run, `--name`/`--key` of `drctl serve`.
#[derive(Debug, Clone)]
pub struct DriverKey {
    /// The principal, as the allowed signers name it.
    pub name: String,
    /// The key, read once.
    pub key: std::sync::Arc<SigningKey>,
}

/// A driver signs the journal at least this often, in commits, between the points where
/// the run rests.
const SEAL_EVERY: u32 = 100;

/// Keeps a run's records in step with its journal.
pub struct Recorder {
    store: std::sync::Arc<dyn Store>,
    /// Signs the journal where the run rests, when the run has allowed signers.
    signer: Option<DriverKey>,
    /// Commits since the journal was last signed.
    unsealed: u32,
    /// The run record as last committed.
    pub run: RunRecord,
    steps: HashMap<String, StepRecord>,
    /// The workflow text, stored with the next commit (a new run's first).
    source: Option<String>,
}

impl Recorder {
    /// A recorder for `run`, with the step records already stored.
    pub fn new(store: std::sync::Arc<dyn Store>, run: RunRecord, steps: Vec<StepRecord>) -> Self {
        Self {
            store,
            signer: None,
            unsealed: 0,
            run,
            steps: steps.into_iter().map(|s| (s.step.clone(), s)).collect(),
            source: None,
        }
    }

    /// A recorder for a new run: `source`, the workflow's text, is stored with the first
    /// commit, in the same transaction as the run record.
    pub fn for_new_run(store: std::sync::Arc<dyn Store>, run: RunRecord, source: String) -> Self {
        Self {
            source: Some(source),
            ..Self::new(store, run, Vec::new())
        }
    }

    /// Signs the journal with `key` from now on, wherever the run rests and at least every
    /// 100 commits (runs with allowed signers).
    pub fn sign_with(&mut self, key: Option<DriverKey>) {
        self.signer = key;
    }

    /// The store.
    pub fn store(&self) -> &std::sync::Arc<dyn Store> {
        &self.store
    }

    /// Takes `input` on `machine` and journals what follows in one flushed commit, for the
    /// commands that advance a run no driver runs (nothing is acted on here).
    pub fn advance(
        &mut self,
        machine: &mut Machine,
        input: Input,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, EngineError> {
        let events = machine.advance(input, now)?;
        // Who drives the run is unchanged: this process only records a decision.
        self.write(&events, machine, now, false)?;
        Ok(events)
    }

    /// Records that this process lets go of the run with only approvals left (`--detach`),
    /// so the run shows as awaiting approval rather than interrupted.
    pub fn release(&mut self) -> Result<(), StoreError> {
        let mut run = self.run.clone();
        run.detached = true;
        let commit = Commit {
            run: Some(run.clone()),
            ..Commit::default()
        };
        self.store.commit(&run.run_id, &commit)?;
        self.run = run;
        Ok(())
    }

    /// Journals `events` (already applied to `machine`) and updates the records, in one
    /// atomic, flushed commit, recording this process as the one driving the run.
    pub fn commit(
        &mut self,
        events: &[Event],
        machine: &Machine,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(events, machine, at, true)
    }

    /// As [`Recorder::commit`], waiting for the flush as a task (see [`Store::commit_async`]).
    pub async fn commit_async(
        &mut self,
        events: &[Event],
        machine: &Machine,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some((run, commit)) = self.prepare(events, machine, at, true)? else {
            return Ok(());
        };
        self.store.commit_async(&run.run_id, &commit).await?;
        self.committed(run);
        Ok(())
    }

    fn write(
        &mut self,
        events: &[Event],
        machine: &Machine,
        at: DateTime<Utc>,
        driving: bool,
    ) -> Result<(), StoreError> {
        let Some((run, commit)) = self.prepare(events, machine, at, driving)? else {
            return Ok(());
        };
        self.store.commit(&run.run_id, &commit)?;
        self.committed(run);
        Ok(())
    }

    /// The run record and the commit that journal `events`; `None` when there are none.
    fn prepare(
        &mut self,
        events: &[Event],
        machine: &Machine,
        at: DateTime<Utc>,
        driving: bool,
    ) -> Result<Option<(RunRecord, Commit)>, StoreError> {
        if events.is_empty() {
            return Ok(None);
        }
        let when = rfc3339(at);
        let stamp = crate::time::to_millis(at);
        let mut journal = Vec::with_capacity(events.len());
        let mut touched: Vec<String> = Vec::new();
        let mut run = self.run.clone();
        if driving {
            run.pid = Some(std::process::id());
            run.detached = false;
        }
        for event in events {
            append(&mut run, &mut journal, event, &when)?;
            if let Some(step) = event.step() {
                self.project(step, event, machine, stamp);
                if !touched.iter().any(|t| t == step) {
                    touched.push(step.to_string());
                }
            }
        }
        run.status = machine.status();
        // A changed workflow gives the run its new digest (the first is kept in its start).
        run.digest.clone_from(&machine.digest);
        if driving && let Some(seal) = self.seal(&run, machine, at) {
            append(&mut run, &mut journal, &seal, &when)?;
        }
        if run.status.is_final()
            || matches!(
                run.status,
                crate::store::RunStatus::Paused | crate::store::RunStatus::Cancelled
            )
        {
            run.finished_at.get_or_insert(stamp);
        } else {
            run.finished_at = None;
        }
        let commit = Commit {
            run: Some(run.clone()),
            steps: touched
                .iter()
                .filter_map(|t| self.steps.get(t).cloned())
                .collect(),
            journal,
            source: self.source.clone(),
        };
        Ok(Some((run, commit)))
    }

    /// The driver's signature on the journal as `run` leaves it, when it is time for one:
    /// where the run rests (awaiting approval, paused, cancelled, finished) and at least
    /// every [`SEAL_EVERY`] commits. Signing costs no write of its own: the signature is
    /// journaled in the commit it covers. A key that fails to sign is logged; the run goes
    /// on, and `drctl verify` shows the entries no signature covers.
    fn seal(&mut self, run: &RunRecord, machine: &Machine, at: DateTime<Utc>) -> Option<Event> {
        let signer = self.signer.as_ref()?;
        machine.signers.as_ref()?;
        self.unsealed += 1;
        let rests = run.status.is_final()
            || matches!(
                run.status,
                crate::store::RunStatus::AwaitingApproval
                    | crate::store::RunStatus::Paused
                    | crate::store::RunStatus::Cancelled
            );
        if !rests && self.unsealed < SEAL_EVERY {
            return None;
        }
        let statement = Statement {
            kind: StatementKind::JournalAnchor,
            run_id: run.run_id.clone(),
            step: None,
            round: None,
            name: signer.name.clone(),
            comment: None,
            digest: machine.digest.clone(),
            at: format_time(at),
            head: Some(Head {
                len: run.journal_len,
                hash: run.last_hash.clone(),
            }),
        };
        match sign_in(statement, &signer.key) {
            Ok(signed) => {
                self.unsealed = 0;
                Some(Event::JournalSigned {
                    signature: serde_json::to_value(&signed).ok()?,
                })
            }
            Err(e) => {
                tracing::warn!(run_id = %run.run_id, "the journal could not be signed: {e}");
                None
            }
        }
    }

    /// Takes `run` as the record last committed.
    fn committed(&mut self, run: RunRecord) {
        self.source = None;
        self.run = run;
    }

    fn project(&mut self, step: &str, event: &Event, machine: &Machine, when: DateTime<Utc>) {
        let record = self
            .steps
            .entry(step.to_string())
            .or_insert_with(|| StepRecord {
                run_id: self.run.run_id.clone(),
                step: step.to_string(),
                status: StepStatus::Pending,
                attempts: Vec::new(),
                outputs: serde_json::Map::new(),
                error: None,
            });
        let finish = |record: &mut StepRecord, outcome: AttemptOutcome, error: Option<String>| {
            if let Some(last) = record.attempts.last_mut()
                && last.finished_at.is_none()
            {
                last.finished_at = Some(when);
                last.outcome = Some(outcome);
                last.error = error;
            }
        };
        match event {
            Event::StepStarted { attempt, .. }
                if record.attempts.last().is_none_or(|a| a.n != *attempt) =>
            {
                record.attempts.push(AttemptRecord {
                    n: *attempt,
                    started_at: when,
                    finished_at: None,
                    outcome: None,
                    error: None,
                });
            }
            Event::StepSucceeded { .. } => finish(record, AttemptOutcome::Succeeded, None),
            Event::StepFailed { error, .. } => {
                finish(record, AttemptOutcome::Failed, Some(error.clone()));
            }
            Event::StepUnknown { error, .. } => {
                finish(record, AttemptOutcome::Unknown, error.clone());
            }
            _ => {}
        }
        if let Some(state) = machine.step(step) {
            record.status = state.status;
            record.outputs.clone_from(&state.outputs);
            record.error.clone_from(&state.error);
        }
    }
}

/// Appends `event` to `journal`, chained to `run`'s last entry, and moves `run` past it.
fn append(
    run: &mut RunRecord,
    journal: &mut Vec<JournalEntry>,
    event: &Event,
    when: &str,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(event).map_err(|e| StoreError::Io(e.to_string()))?;
    let seq = run.journal_len;
    let hash = chain_hash(&run.last_hash, seq, when, &value);
    journal.push(JournalEntry {
        seq,
        at: when.to_string(),
        event: value,
        prev: run.last_hash.clone(),
        hash: hash.clone(),
    });
    run.journal_len += 1;
    run.last_hash = hash;
    Ok(())
}
