//! The engine's API: a run, started or loaded back from any store, taking one input at a
//! time. Each input is decided by the [`Machine`], journaled by the [`Recorder`] in one
//! durable commit, and answered with the [`Effect`]s it asks for. The driver, the commands
//! that record a decision on a run nobody drives (approve, reject, cancel), resume, the
//! benchmarks and the tests all go through it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::audit::audit;
use super::clock::Clock;
use super::effect::Effect;
use super::error::EngineError;
use super::event::Event;
use super::machine::{Input, Machine, Refusal};
use super::recorder::Recorder;
use super::session::{Begun, NewRun, StartError, begin_run};

/// Why a rejection without a comment is refused.
const NO_REASON: &str = "a rejection needs a reason: --comment TEXT";
use crate::dag::CompiledWorkflow;
use crate::store::{RunRecord, Store, StoreError};

/// A run of a workflow: its state and its records, kept in step.
pub struct Run {
    /// The state, folded from the journal.
    pub machine: Machine,
    /// The records.
    pub recorder: Recorder,
}

/// A run decided and not yet recorded (see [`Run::begin`]); dropped, it never existed.
pub struct Starting(Begun);

impl Starting {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.0.recorder.run.run_id
    }

    /// Records the run's start in one durable commit.
    pub fn record(self) -> Result<Run, StoreError> {
        let mut begun = self.0;
        begun.recorder.commit(
            std::slice::from_ref(&begun.started),
            &begun.machine,
            begun.at,
        )?;
        Ok(Run::from(begun))
    }

    /// As [`Starting::record`], the commit awaited as a task: it shares a flush with the
    /// commits of the runs under way (see [`crate::store::Store::commit_async`]).
    pub async fn record_async(self) -> Result<Run, StoreError> {
        let mut begun = self.0;
        begun
            .recorder
            .commit_async(
                std::slice::from_ref(&begun.started),
                &begun.machine,
                begun.at,
            )
            .await?;
        Ok(Run::from(begun))
    }
}

impl From<Begun> for Run {
    /// The run whose start was just recorded.
    fn from(begun: Begun) -> Self {
        Run {
            machine: begun.machine,
            recorder: begun.recorder,
        }
    }
}

/// What an input led to: the events journaled and what they ask to be done.
#[derive(Debug, Default)]
pub struct Advanced {
    /// The events, durable.
    pub events: Vec<Event>,
    /// What to do now that they are.
    pub effects: Vec<Effect>,
}

impl Run {
    /// Starts a run of `new.workflow`: refused when a step's action cannot be executed by
    /// this build, or when a run of the same workflow is unfinished (one at a time, SPEC
    /// §5.7); else its start is recorded.
    pub fn start(
        store: Arc<dyn Store>,
        new: &NewRun,
        clock: &dyn Clock,
    ) -> Result<Self, StartError> {
        Ok(Self::begin(store, new, clock)?.record()?)
    }

    /// The checks of a start, then the start decided, not yet recorded: [`Starting::record`]
    /// records it. Between the two, its id is known (for a caller that must make the run
    /// findable before it exists in the store).
    pub fn begin(
        store: Arc<dyn Store>,
        new: &NewRun,
        clock: &dyn Clock,
    ) -> Result<Starting, StartError> {
        let unsupported: Vec<String> = new
            .workflow
            .steps
            .iter()
            .filter(|s| !s.executable)
            .map(|s| format!("`{}` ({})", s.id, s.action))
            .collect();
        if !unsupported.is_empty() {
            return Err(StartError::NotExecutable(unsupported));
        }
        if let Some(old) = store
            .runs()?
            .into_iter()
            .rfind(|r| r.workflow == new.workflow.name && r.status.is_unfinished())
        {
            return Err(StartError::Unfinished(Box::new(old)));
        }
        Ok(Starting(begin_run(store, new, clock)?))
    }

    /// Loads run `run_id` back from `store`, its journal replayed on `workflow` (the workflow
    /// it runs, as the caller compiled it from the store or the file).
    pub fn load(
        store: Arc<dyn Store>,
        run_id: &str,
        workflow: Arc<CompiledWorkflow>,
    ) -> Result<Self, StoreError> {
        let run = store.run(run_id)?.ok_or_else(|| StoreError::BadRecord {
            run: run_id.to_string(),
            reason: "no such run".into(),
        })?;
        Self::load_record(store, run, workflow)
    }

    /// Loads the run of record `run` back (see [`Run::load`]).
    pub fn load_record(
        store: Arc<dyn Store>,
        run: RunRecord,
        workflow: Arc<CompiledWorkflow>,
    ) -> Result<Self, StoreError> {
        let journal = store.journal(&run.run_id)?;
        Self::from_journal(store, run, &journal, workflow)
    }

    /// The run of record `run` and `journal`, read together from `store` by the caller: the
    /// journal is replayed on `workflow`, the step records read.
    pub fn from_journal(
        store: Arc<dyn Store>,
        run: RunRecord,
        journal: &[crate::store::JournalEntry],
        workflow: Arc<CompiledWorkflow>,
    ) -> Result<Self, StoreError> {
        let steps = store.steps(&run.run_id)?;
        // Replay checks what it reads: a journal holding a signed event that does not verify,
        // or a decision the run's rules refuse, is never driven further.
        let (mut machine, found) = audit(workflow, &run, journal)?;
        machine.tainted = found.broken.first().cloned();
        Ok(Self {
            machine,
            recorder: Recorder::new(store, run, steps),
        })
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.recorder.run.run_id
    }

    /// Decides `input`, journals what follows in one durable commit as the process driving
    /// the run, and says what to do. A refused input changes nothing.
    pub fn advance(&mut self, input: Input, now: DateTime<Utc>) -> Result<Advanced, EngineError> {
        self.check_receipt(&input, now)?;
        let events = self.machine.advance(input, now)?;
        self.recorder.commit(&events, &self.machine, now)?;
        Ok(self.advanced(events, now))
    }

    /// Decides every input of a batch, then journals all that follows in one commit: results
    /// that arrive together cost one flush. Refused inputs (a late result of an attempt no
    /// longer current, say) are dropped.
    pub fn advance_all(
        &mut self,
        inputs: impl IntoIterator<Item = Input>,
        now: DateTime<Utc>,
    ) -> Result<Advanced, StoreError> {
        let events = self.decide_all(inputs, now);
        self.recorder.commit(&events, &self.machine, now)?;
        Ok(self.advanced(events, now))
    }

    /// As [`Run::advance`], the commit awaited as a task (see [`crate::store::Store::commit_async`]).
    pub async fn advance_async(
        &mut self,
        input: Input,
        now: DateTime<Utc>,
    ) -> Result<Advanced, EngineError> {
        self.check_receipt(&input, now)?;
        let events = self.machine.advance(input, now)?;
        self.recorder
            .commit_async(&events, &self.machine, now)
            .await?;
        Ok(self.advanced(events, now))
    }

    /// As [`Run::advance_all`], the commit awaited as a task.
    pub async fn advance_all_async(
        &mut self,
        inputs: impl IntoIterator<Item = Input>,
        now: DateTime<Utc>,
    ) -> Result<Advanced, StoreError> {
        let events = self.decide_all(inputs, now);
        self.recorder
            .commit_async(&events, &self.machine, now)
            .await?;
        Ok(self.advanced(events, now))
    }

    /// Records a decision on a run this process does not drive (approve, reject or cancel
    /// from another terminal): decided and journaled, nothing acted on, the driver's claim
    /// on the run left as it was.
    pub fn record(&mut self, input: Input, now: DateTime<Utc>) -> Result<Vec<Event>, EngineError> {
        self.check_receipt(&input, now)?;
        self.recorder.advance(&mut self.machine, input, now)
    }

    /// What is checked when a decision arrives, on every path that brings one (the socket,
    /// the inbox, the offline store write), and not again on replay: a rejection gives its
    /// reason (SPEC §5.5), and a signed vote names the journal head its signer was shown
    /// (SPEC §5.10), which must be a place in this run's journal, or the signer saw another
    /// run's story.
    fn check_receipt(&self, input: &Input, now: DateTime<Utc>) -> Result<(), EngineError> {
        let value = match input {
            Input::Vote {
                decision: crate::engine::Decision::Reject,
                comment,
                ..
            } if comment.as_deref().is_none_or(|c| c.trim().is_empty()) => {
                return Err(Refusal(NO_REASON.into()).into());
            }
            Input::SignedVote { signed } => signed,
            _ => return Ok(()),
        };
        let Ok(signed) = serde_json::from_value::<crate::identity::Signed>(value.clone()) else {
            return Ok(()); // the machine refuses it, saying why
        };
        if signed.statement.kind == crate::identity::StatementKind::Reject
            && signed
                .statement
                .comment
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
        {
            return Err(Refusal(format!("{NO_REASON}; this signed rejection has none")).into());
        }
        let Some(head) = &signed.statement.head else {
            return Ok(());
        };
        // A vote that does not verify is refused by the machine first, saying why.
        if self.machine.check_signed(value, now).is_err() {
            return Ok(());
        }
        let run = &self.recorder.run;
        if head.len == run.journal_len && head.hash == run.last_hash {
            return Ok(());
        }
        let journal = self.recorder.store().journal(&run.run_id)?;
        match super::audit::head_mismatch(&signed, run.journal_len, &journal) {
            None => Ok(()),
            Some(why) => Err(Refusal(why).into()),
        }
    }

    /// The timers a loaded run must arm again (its approvals' timeouts).
    pub fn pending(&self) -> Vec<Effect> {
        self.machine.pending_timers()
    }

    /// Decides every input of a batch; refused ones are dropped.
    fn decide_all(
        &mut self,
        inputs: impl IntoIterator<Item = Input>,
        now: DateTime<Utc>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for input in inputs {
            if self.check_receipt(&input, now).is_err() {
                continue;
            }
            if let Ok(more) = self.machine.advance(input, now) {
                events.extend(more);
            }
        }
        events
    }

    fn advanced(&self, events: Vec<Event>, now: DateTime<Utc>) -> Advanced {
        let effects = self.machine.effects(&events, now);
        Advanced { events, effects }
    }
}
