//! The run's state machine: pure and deterministic. [`Machine::apply`] folds an event into the
//! state; [`Machine::decide`] turns an input (an action finished, a vote, a cancel) into the
//! events that follow, without performing anything; [`Machine::effects`] says what those
//! events ask the world to do. `engine::Run` journals the events before the driver performs
//! the effects; a resumed run replays its journal through `apply` and is exactly where it was.
//!
//! This file holds the types; the behaviour is split by concern: `apply` (folding events),
//! `react` (deciding inputs, failures), `operator` (crash recovery, resume decisions, votes),
//! `signed` (signed votes), `changed` (a changed workflow, SPEC §5.8.7), `schedule` (what starts next, forward and in rollback), `rto` (the
//! recovery clock, approval deadlines) and `tally` (counts kept in step with every change).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::event::{Decision, Event, Outputs};
use super::pause::PauseReason;
use crate::actions::Failure;
use crate::dag::CompiledWorkflow;
use crate::store::{RunStatus, StepStatus};

/// What happens to a run from outside the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start a new run, or continue after a restart: schedule what is ready.
    Start,
    /// Time passed: only the RTO watch runs.
    Tick,
    /// The process that drove the run died: attempts started without an outcome become
    /// `unknown` (nothing is re-run yet).
    Interrupted,
    /// Decide the unknown steps: idempotent ones run again, others pause the run for the
    /// operator.
    Recover,
    /// An operator resumes a paused, cancelled or crashed run, with decisions on steps.
    Resume {
        /// Who.
        by: String,
        /// What to do with unknown or failed steps.
        choices: Vec<(String, Choice)>,
    },
    /// An operator resumes with another version of the workflow (`--allow-changed-workflow`):
    /// the change is journaled with the resume, in the same commit, or neither is.
    ResumeChanged {
        /// Who.
        by: String,
        /// What to do with unknown or failed steps.
        choices: Vec<(String, Choice)>,
        /// The new version.
        change: Box<WorkflowChange>,
    },
    /// An attempt ended.
    Finished {
        /// Step id.
        step: String,
        /// The attempt.
        attempt: u32,
        /// Outputs, or the error and what it says about the attempt's effect.
        result: Result<Outputs, (String, Failure)>,
    },
    /// A self-undoing action read the value it is about to replace: it is journaled before
    /// the action changes anything.
    RecordPrevious {
        /// Step id.
        step: String,
        /// The attempt that read it.
        attempt: u32,
        /// The value.
        previous: serde_json::Value,
    },
    /// A probe answered for an unknown step.
    Probed {
        /// Step id.
        step: String,
        /// What it found.
        probe: crate::actions::Probe,
    },
    /// A failed step's backoff is over.
    RetryDue {
        /// Step id.
        step: String,
    },
    /// A decision signed with the approver's SSH key (SPEC §5.9): who, what, on which run,
    /// step and round is in the signed statement, checked against the run's allowed signers
    /// before anything is recorded.
    SignedVote {
        /// The signed decision, as `identity::Signed` serializes it.
        signed: serde_json::Value,
    },
    /// Someone decided on an approval.
    Vote {
        /// Step id.
        step: String,
        /// Who.
        by: String,
        /// Approve or reject.
        decision: Decision,
        /// Why.
        comment: Option<String>,
    },
    /// An approval's time is up.
    ApprovalTimeout {
        /// Step id.
        step: String,
    },
    /// Stop starting new steps.
    Cancel {
        /// Who.
        by: String,
    },
    /// Undo what was done.
    Rollback {
        /// Who.
        by: String,
    },
    /// A compensation ended.
    CompensationFinished {
        /// The step being undone.
        step: String,
        /// Ok, or the error and its kind ([`Failure::Conflict`]: the resource no longer
        /// holds what drctl wrote).
        result: Result<(), (String, Failure)>,
    },
}

/// Another version of a run's workflow, as `resume --allow-changed-workflow` found it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowChange {
    /// Its digest.
    pub to_digest: String,
    /// Its text.
    pub source: String,
    /// Steps added, removed, or changed in what they execute.
    pub changed_steps: Vec<String>,
    /// The resumer's signed `change_workflow` statement (required with allowed signers).
    pub signature: Option<serde_json::Value>,
}

/// An operator's choice for a step on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// The step did take effect: record it as succeeded.
    MarkSucceeded,
    /// Run it again.
    Retry,
    /// Leave it and go on.
    Skip,
}

/// An input the run cannot take, with why. Nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Where a step's undo stands during a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Rollback not requested, or nothing to do for this step.
    None,
    /// Waits for its dependants' compensations.
    Pending,
    /// The compensation runs.
    Running,
    /// Undone.
    Done,
    /// The compensation failed.
    Failed,
    /// Changed something and has no compensation.
    NotUndone,
    /// The resource no longer holds what drctl wrote: the rollback waits for the operator.
    Conflict,
}

/// One step's state.
#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    /// Where it is.
    pub status: StepStatus,
    /// The current or last attempt (0: never started).
    pub attempt: u32,
    /// A retry is scheduled.
    pub retry_pending: bool,
    /// When the current attempt (or approval wait) began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Outputs once succeeded.
    pub outputs: Outputs,
    /// The last error.
    pub error: Option<String>,
    /// Approval decisions of the current round.
    pub votes: Vec<Vote>,
    /// What a self-undoing step replaced, as first recorded (kept across attempts).
    pub previous: Option<serde_json::Value>,
    /// Rollback progress.
    pub undo: Undo,
}

/// One decision on an approval, in its round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// Who, as named.
    pub by: String,
    /// Approve or reject.
    pub decision: Decision,
    /// Why, when said.
    pub comment: Option<String>,
    /// The fingerprint of the key that signed it (runs with allowed signers): one key is one
    /// person, whatever names it is listed under.
    pub key: Option<String>,
}

impl Vote {
    /// The vote an `approval_voted` event records (none for another event).
    pub(super) fn of(event: &Event) -> Option<Self> {
        match event {
            Event::ApprovalVoted {
                by,
                decision,
                comment,
                fingerprint,
                ..
            } => Some(Vote {
                by: by.clone(),
                decision: *decision,
                comment: comment.clone(),
                key: fingerprint.clone(),
            }),
            _ => None,
        }
    }
}

/// The state of a run and the workflow it runs.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about the run, each folded from its own events"
)]
#[derive(Debug, Clone)]
pub struct Machine {
    workflow: Arc<CompiledWorkflow>,
    index: HashMap<String, usize>,
    /// Per step, in the workflow's order. Read it freely; it changes only through
    /// [`Machine::apply`] and [`Machine::advance`], which keep the tally in step with it.
    pub steps: Vec<StepState>,
    /// Who started the run.
    pub initiator: String,
    /// The fingerprint of the key that signed the run's start (runs with allowed signers):
    /// the self-approval rule compares keys, not names.
    pub initiator_key: Option<String>,
    /// Why this run must not be driven further: its journal holds a signed event that does
    /// not verify, or a decision its rules refuse (found when it was loaded, SPEC §5.9). It
    /// pauses with that reason; only a rollback may still run.
    pub tainted: Option<String>,
    /// The run's id (signed statements name it).
    pub run_id: String,
    /// The run's digest: as recorded when it started, or by its last `workflow_changed`.
    pub digest: String,
    /// The steps a changed workflow changed (added, removed or edited), in any version.
    changed: std::collections::BTreeSet<String>,
    /// The allowed-signers file captured when the run started: with it, every vote must be
    /// signed by a key of the approver it names.
    pub signers: Option<String>,
    /// Set once the run is over for good.
    pub finished: Option<RunStatus>,
    /// Why the run waits for an operator.
    pub paused: Option<PauseReason>,
    /// Cancelled and not resumed since.
    pub cancelled: bool,
    /// A rollback is under way or done.
    pub rolling_back: bool,
    /// When the RTO clock started: `--incident-start`, else the run's start.
    pub clock_start: Option<DateTime<Utc>>,
    /// `rto_at_risk` was raised (it is raised once).
    pub rto_at_risk: bool,
    /// `rto_breached` was raised (it is raised once).
    pub rto_breached: bool,
    /// When set, decisions record what happened but start nothing: a command that applies a
    /// vote or a cancel to a run no process drives must not start steps it will not run.
    pub hold: bool,
    /// Kept in step with `steps` by [`Machine::set_status`], so that a decision costs what it
    /// changes rather than the size of the run.
    tally: Tally,
    /// The run as its readers see it, folded with the state by [`Machine::apply`] when the
    /// machine was made for a reader ([`Machine::projected`]); a machine that drives a run
    /// keeps none (it would hold every attempt twice).
    projection: Option<RunProjection>,
}

impl Machine {
    /// A fresh run of `workflow`, started by `initiator`. The machine shares the compiled
    /// workflow: a run loaded, driven and read holds one copy of it, however many hands it
    /// passes through.
    pub fn new(workflow: Arc<CompiledWorkflow>, initiator: &str) -> Self {
        Self {
            index: workflow
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            steps: vec![
                StepState {
                    status: StepStatus::Pending,
                    attempt: 0,
                    retry_pending: false,
                    started_at: None,
                    finished_at: None,
                    outputs: Outputs::new(),
                    error: None,
                    votes: Vec::new(),
                    previous: None,
                    undo: Undo::None,
                };
                workflow.steps.len()
            ],
            workflow,
            initiator: initiator.to_string(),
            initiator_key: None,
            tainted: None,
            run_id: String::new(),
            digest: String::new(),
            changed: std::collections::BTreeSet::new(),
            signers: None,
            finished: None,
            paused: None,
            cancelled: false,
            rolling_back: false,
            hold: false,
            clock_start: None,
            rto_at_risk: false,
            rto_breached: false,
            tally: Tally::default(),
            projection: None,
        }
        .tallied()
    }

    /// This machine, also folding the run's projection for its readers from the next entry
    /// applied on: made before the journal's first entry is applied, it projects the whole
    /// run, one entry at a time.
    #[must_use]
    pub fn projected(mut self) -> Self {
        let steps = self.workflow.steps.iter().map(|s| s.id.as_str());
        self.projection = Some(RunProjection::new(steps));
        self
    }

    /// The workflow being run.
    pub fn workflow(&self) -> &CompiledWorkflow {
        &self.workflow
    }

    /// The workflow being run, shared (for a task that outlives this borrow).
    pub fn shared_workflow(&self) -> Arc<CompiledWorkflow> {
        Arc::clone(&self.workflow)
    }

    /// The run as its readers see it: everything the journal folded so far says happened;
    /// `None` unless the machine was made [`Machine::projected`].
    pub fn run_projection(&self) -> Option<&RunProjection> {
        self.projection.as_ref()
    }

    /// The run's projection, once the machine is no longer needed (see
    /// [`Machine::run_projection`]).
    pub fn into_run_projection(self) -> Option<RunProjection> {
        self.projection
    }

    /// The index of step `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The state of step `id`.
    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.index(id).map(|i| &self.steps[i])
    }

    /// The run's status as SPEC §5.1 names it.
    pub fn status(&self) -> RunStatus {
        if let Some(done) = self.finished {
            return done;
        }
        if self.rolling_back {
            return if self.paused.is_some() {
                RunStatus::Paused
            } else {
                RunStatus::RollingBack
            };
        }
        if self.paused.is_some() {
            return RunStatus::Paused;
        }
        let running = self.count_of(StepStatus::Running) > 0;
        if self.cancelled && !running {
            return RunStatus::Cancelled;
        }
        let awaiting = self.count_of(StepStatus::AwaitingApproval) > 0;
        if !running && awaiting {
            RunStatus::AwaitingApproval
        } else {
            RunStatus::Running
        }
    }
}

mod apply;
mod changed;
mod operator;
mod projection;
mod react;
mod rto;
mod schedule;
mod signed;
mod tally;

pub use projection::{
    ApprovalDecision, Attempt, ByWhom, CompensationEnded, Outcome, Pause, RunProjection,
    StepProjection, VoteCast, WorkflowVersion, unchanged,
};
use tally::Tally;
#[cfg(test)]
mod projection_tests;
#[cfg(test)]
mod tests;
