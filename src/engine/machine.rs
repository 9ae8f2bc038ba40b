//! The run's state machine: pure and deterministic. [`Machine::apply`] folds an event into the
//! state; [`Machine::decide`] turns an input (an action finished, a vote, a cancel) into the
//! events that follow, without performing anything. The driver journals those events, applies
//! them, then acts on them; a resumed run replays its journal through `apply` and is exactly
//! where it was.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use petgraph::Direction;
use petgraph::graph::NodeIndex;
use thiserror::Error;

use super::event::{Decision, Event, Outputs};
use crate::actions::{Arg, Effect, Failure};
use crate::dag::CompiledWorkflow;
use crate::store::{RunStatus, StepStatus};
use crate::workflow::OnFailure;

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

/// An operator's choice for a step on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub votes: Vec<(String, Decision, Option<String>)>,
    /// What a self-undoing step replaced, as first recorded (kept across attempts).
    pub previous: Option<serde_json::Value>,
    /// Rollback progress.
    pub undo: Undo,
}

/// The state of a run and the workflow it runs.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about the run, each folded from its own events"
)]
#[derive(Debug, Clone)]
pub struct Machine<'w> {
    workflow: &'w CompiledWorkflow,
    index: HashMap<String, usize>,
    /// Per step, in the workflow's order. Read it freely; it changes only through
    /// [`Machine::apply`] and [`Machine::advance`], which keep the tally in step with it.
    pub steps: Vec<StepState>,
    /// Who started the run.
    pub initiator: String,
    /// The run's id (signed statements name it).
    pub run_id: String,
    /// The run's digest, as recorded when it started.
    pub digest: String,
    /// The allowed-signers file captured when the run started: with it, every vote must be
    /// signed by a key of the approver it names.
    pub signers: Option<String>,
    /// Set once the run is over for good.
    pub finished: Option<RunStatus>,
    /// Why the run waits for an operator.
    pub paused: Option<String>,
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
}

/// Counts and sets derived from the steps' statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    /// Steps per status, indexed by [`slot`].
    by_status: [usize; 8],
    /// Per step, how many of its needs have not succeeded or been skipped.
    unmet: Vec<usize>,
    /// Pending steps whose needs are all met, in workflow order.
    ready: BTreeSet<usize>,
    /// The approvals among `ready`.
    ready_approvals: BTreeSet<usize>,
}

fn slot(status: StepStatus) -> usize {
    match status {
        StepStatus::Pending => 0,
        StepStatus::Running => 1,
        StepStatus::AwaitingApproval => 2,
        StepStatus::Succeeded => 3,
        StepStatus::Failed => 4,
        StepStatus::Skipped => 5,
        StepStatus::Unknown => 6,
        StepStatus::RolledBack => 7,
    }
}

/// A need is met once the step it names succeeded or was skipped.
fn meets_needs(status: StepStatus) -> bool {
    matches!(status, StepStatus::Succeeded | StepStatus::Skipped)
}

impl<'w> Machine<'w> {
    /// A fresh run of `workflow`, started by `initiator`.
    pub fn new(workflow: &'w CompiledWorkflow, initiator: &str) -> Self {
        Self {
            workflow,
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
            initiator: initiator.to_string(),
            run_id: String::new(),
            digest: String::new(),
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
        }
        .tallied()
    }

    /// Computes the tally from the steps, from scratch.
    fn tallied(mut self) -> Self {
        self.tally = self.count();
        self
    }

    fn count(&self) -> Tally {
        let mut tally = Tally {
            unmet: vec![0; self.steps.len()],
            ..Tally::default()
        };
        for (i, s) in self.steps.iter().enumerate() {
            tally.by_status[slot(s.status)] += 1;
            tally.unmet[i] = self
                .workflow
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                .filter(|d| !meets_needs(self.steps[d.index()].status))
                .count();
            if s.status == StepStatus::Pending && tally.unmet[i] == 0 {
                tally.ready.insert(i);
                if self.is_approval(i) {
                    tally.ready_approvals.insert(i);
                }
            }
        }
        tally
    }

    /// Whether the incremental tally agrees with one counted from scratch (for tests).
    pub fn tally_consistent(&self) -> bool {
        self.tally == self.count()
    }

    fn is_approval(&self, i: usize) -> bool {
        self.workflow.steps[i].is_approval()
    }

    /// How many steps are in `status`.
    pub fn count_of(&self, status: StepStatus) -> usize {
        self.tally.by_status[slot(status)]
    }

    /// Moves step `i` to `status`, keeping the tally: its dependants' unmet needs when it
    /// starts or stops meeting them, and the ready sets.
    fn set_status(&mut self, i: usize, status: StepStatus) {
        let old = self.steps[i].status;
        if old == status {
            return;
        }
        self.steps[i].status = status;
        self.tally.by_status[slot(old)] -= 1;
        self.tally.by_status[slot(status)] += 1;
        if old == StepStatus::Pending {
            self.tally.ready.remove(&i);
            self.tally.ready_approvals.remove(&i);
        }
        if meets_needs(old) == meets_needs(status) {
            return;
        }
        let graph = &self.workflow.graph;
        for d in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            let d = d.index();
            if meets_needs(status) {
                self.tally.unmet[d] -= 1;
            } else {
                self.tally.unmet[d] += 1;
            }
            let ready = self.steps[d].status == StepStatus::Pending && self.tally.unmet[d] == 0;
            let approval = self.workflow.steps[d].is_approval();
            if ready {
                self.tally.ready.insert(d);
                if approval {
                    self.tally.ready_approvals.insert(d);
                }
            } else {
                self.tally.ready.remove(&d);
                self.tally.ready_approvals.remove(&d);
            }
        }
    }

    /// The workflow being run.
    pub fn workflow(&self) -> &'w CompiledWorkflow {
        self.workflow
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

    /// Folds one journaled event (recorded at `at`) into the state. Never fails: events were
    /// valid when decided.
    #[allow(clippy::too_many_lines, reason = "one arm per event")]
    pub fn apply(&mut self, event: &Event, at: DateTime<Utc>) {
        let idx = event.step().and_then(|s| self.index(s));
        match (event, idx) {
            (
                Event::RunStarted {
                    initiator,
                    incident_start,
                    digest,
                    allowed_signers,
                    ..
                },
                _,
            ) => {
                self.initiator.clone_from(initiator);
                self.digest.clone_from(digest);
                self.signers.clone_from(allowed_signers);
                self.clock_start = Some(incident_start.unwrap_or(at));
            }
            (Event::RtoAtRisk { .. }, _) => self.rto_at_risk = true,
            (Event::RtoBreached { .. }, _) => self.rto_breached = true,
            (Event::StepStarted { attempt, .. }, Some(i)) => {
                let is_approval = self.is_approval(i);
                self.set_status(
                    i,
                    if is_approval {
                        StepStatus::AwaitingApproval
                    } else {
                        StepStatus::Running
                    },
                );
                let s = &mut self.steps[i];
                s.attempt = *attempt;
                s.retry_pending = false;
                // An approval's wait starts once, even when re-requested after a restart.
                if !(is_approval && s.started_at.is_some()) {
                    s.started_at = Some(at);
                }
            }
            (Event::StepSucceeded { outputs, .. }, Some(i)) => {
                self.set_status(i, StepStatus::Succeeded);
                let s = &mut self.steps[i];
                s.outputs.clone_from(outputs);
                s.error = None;
                s.retry_pending = false;
                s.finished_at = Some(at);
            }
            (
                Event::StepFailed {
                    error, retry_in_ms, ..
                },
                Some(i),
            ) => {
                self.set_status(
                    i,
                    if retry_in_ms.is_some() {
                        StepStatus::Running
                    } else {
                        StepStatus::Failed
                    },
                );
                let s = &mut self.steps[i];
                s.error = Some(error.clone());
                s.retry_pending = retry_in_ms.is_some();
                if retry_in_ms.is_none() {
                    s.finished_at = Some(at);
                }
            }
            (Event::StepUnknown { error, .. }, Some(i)) => {
                self.set_status(i, StepStatus::Unknown);
                if error.is_some() {
                    self.steps[i].error.clone_from(error);
                }
            }
            (Event::PreviousRecorded { previous, .. }, Some(i)) => {
                // The first value is the one that was there before drctl changed anything.
                self.steps[i]
                    .previous
                    .get_or_insert_with(|| previous.clone());
            }
            (Event::ApprovalRoundOpened { .. }, Some(i)) => {
                let s = &mut self.steps[i];
                s.votes.clear();
                s.started_at = None;
                s.finished_at = None;
                s.error = None;
            }
            (Event::StepSkipped { .. }, Some(i)) => {
                self.set_status(i, StepStatus::Skipped);
                self.steps[i].finished_at = Some(at);
            }
            (
                Event::ApprovalVoted {
                    by,
                    decision,
                    comment,
                    ..
                },
                Some(i),
            ) => {
                self.steps[i]
                    .votes
                    .push((by.clone(), *decision, comment.clone()));
            }
            (Event::RunPaused { reason }, _) => self.paused = Some(reason.clone()),
            (Event::RunResumed { .. }, _) => {
                self.paused = None;
                self.cancelled = false;
            }
            (Event::RunCancelled { .. }, _) => self.cancelled = true,
            (Event::RollbackStarted { .. }, _) => {
                self.rolling_back = true;
                self.finished = None;
                self.paused = None;
                self.cancelled = false;
                for (i, s) in self.steps.iter_mut().enumerate() {
                    // Unknown steps may have taken effect, and a failed step with a compensation
                    // may have done part of its work: both are undone like succeeded ones.
                    let may_have_acted = s.status == StepStatus::Unknown
                        || (s.status == StepStatus::Failed
                            && self.workflow.steps[i].rollback.is_some());
                    s.undo = if s.status == StepStatus::Succeeded || may_have_acted {
                        Undo::Pending
                    } else {
                        Undo::None
                    };
                }
            }
            (Event::CompensationStarted { .. }, Some(i)) => self.steps[i].undo = Undo::Running,
            (Event::CompensationSucceeded { .. }, Some(i)) => {
                self.steps[i].undo = Undo::Done;
                self.set_status(i, StepStatus::RolledBack);
            }
            (
                Event::CompensationFailed {
                    error, conflict, ..
                },
                Some(i),
            ) => {
                self.steps[i].undo = if *conflict {
                    Undo::Conflict
                } else {
                    Undo::Failed
                };
                self.steps[i].error = Some(error.clone());
            }
            (Event::StepNotUndone { .. }, Some(i)) => self.steps[i].undo = Undo::NotUndone,
            (Event::RunFinished { status }, _) => {
                self.finished = Some(*status);
                self.paused = None;
            }
            _ => {}
        }
    }

    /// Takes `input`: returns the events that follow, already applied to the state, for the
    /// caller to journal before it acts on any of them. A refused input changes nothing: every
    /// refusal is found before the first event is emitted.
    pub fn advance(&mut self, input: Input, now: DateTime<Utc>) -> Result<Vec<Event>, Refusal> {
        let mut out = Vec::new();
        if let Err(refusal) = self.react(input, now, &mut out) {
            debug_assert!(out.is_empty(), "a refusal after an event was emitted");
            return Err(refusal);
        }
        self.schedule(now, &mut out);
        self.watch_rto(now, &mut out);
        Ok(out)
    }

    /// The events that would follow from `input`, computed on a copy: the state is unchanged.
    pub fn decide(&self, input: Input, now: DateTime<Utc>) -> Result<Vec<Event>, Refusal> {
        self.clone().advance(input, now)
    }

    fn emit(&mut self, event: Event, now: DateTime<Utc>, out: &mut Vec<Event>) {
        self.apply(&event, now);
        out.push(event);
    }

    fn require_step(&self, id: &str) -> Result<usize, Refusal> {
        self.index(id)
            .ok_or_else(|| Refusal(format!("this run has no step `{id}`")))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one arm per input reads better than a helper per arm"
    )]
    fn react(
        &mut self,
        input: Input,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        let undo_finished = matches!(input, Input::Rollback { .. })
            && matches!(
                self.finished,
                Some(RunStatus::Succeeded | RunStatus::Failed)
            );
        if self.finished.is_some()
            && !undo_finished
            && !matches!(input, Input::Start | Input::Recover | Input::Interrupted)
        {
            return Err(Refusal(format!(
                "the run is over ({})",
                self.status().as_str()
            )));
        }
        match input {
            Input::Start | Input::Tick => {}
            Input::Interrupted => {
                for i in 0..self.steps.len() {
                    let s = &self.steps[i];
                    if s.status == StepStatus::Running && !s.retry_pending {
                        let (step, attempt) = (self.workflow.steps[i].id.clone(), s.attempt);
                        self.emit(
                            Event::StepUnknown {
                                step,
                                attempt,
                                error: None,
                            },
                            now,
                            out,
                        );
                    }
                }
            }
            Input::Recover => self.recover(now, out),
            Input::Resume { by, choices } => self.resume(&by, &choices, now, out)?,
            Input::Finished {
                step,
                attempt,
                result,
            } => {
                let i = self.require_step(&step)?;
                // A late result of an attempt that is no longer current is ignored.
                if self.steps[i].status != StepStatus::Running
                    || self.steps[i].attempt != attempt
                    || self.steps[i].retry_pending
                {
                    return Ok(());
                }
                match result {
                    Ok(outputs) => self.emit(
                        Event::StepSucceeded {
                            step,
                            attempt,
                            outputs,
                        },
                        now,
                        out,
                    ),
                    Err((error, failure)) => self.failed(i, attempt, error, failure, now, out),
                }
            }
            Input::RecordPrevious {
                step,
                attempt,
                previous,
            } => {
                let i = self.require_step(&step)?;
                let s = &self.steps[i];
                if s.status != StepStatus::Running || s.attempt != attempt || s.retry_pending {
                    return Err(Refusal(format!(
                        "attempt {attempt} of `{step}` is no longer current: it may not change anything"
                    )));
                }
                if s.previous.is_none() {
                    self.emit(
                        Event::PreviousRecorded {
                            step,
                            attempt,
                            previous,
                        },
                        now,
                        out,
                    );
                }
            }
            Input::Probed { step, probe } => {
                let i = self.require_step(&step)?;
                if self.steps[i].status != StepStatus::Unknown {
                    return Ok(());
                }
                let attempt = self.steps[i].attempt;
                match probe {
                    crate::actions::Probe::TookEffect(outputs) => self.emit(
                        Event::StepSucceeded {
                            step,
                            attempt,
                            outputs,
                        },
                        now,
                        out,
                    ),
                    crate::actions::Probe::DidNot => self.emit(
                        Event::StepStarted {
                            step,
                            attempt: attempt + 1,
                        },
                        now,
                        out,
                    ),
                    crate::actions::Probe::Undecided(why) => {
                        let reason = format!(
                            "the outcome of `{step}` is not known and its probe cannot tell ({why}); decide with drctl resume RUN --step {step} --mark-succeeded | --retry | --skip"
                        );
                        self.emit(Event::RunPaused { reason }, now, out);
                    }
                }
            }
            Input::RetryDue { step } => {
                let i = self.require_step(&step)?;
                if self.steps[i].retry_pending && self.paused.is_none() {
                    let attempt = self.steps[i].attempt + 1;
                    self.emit(Event::StepStarted { step, attempt }, now, out);
                }
            }
            Input::Vote {
                step,
                by,
                decision,
                comment,
            } => {
                if self.signers.is_some() {
                    return Err(Refusal(
                        "this run's approvals must be signed (its workflow names allowed signers): drctl approve|reject RUN STEP --as NAME --key PATH".into(),
                    ));
                }
                self.vote(&step, &by, decision, comment, None, now, out)?;
            }
            Input::SignedVote { signed } => {
                let (step, by, decision, comment, proof) = self.check_signed(&signed, now)?;
                self.vote(&step, &by, decision, comment, Some(proof), now, out)?;
            }
            Input::ApprovalTimeout { step } => {
                let i = self.require_step(&step)?;
                if self.steps[i].status == StepStatus::AwaitingApproval {
                    self.emit(Event::ApprovalTimedOut { step: step.clone() }, now, out);
                    let on_timeout = self.workflow.steps[i]
                        .args
                        .get("on_timeout")
                        .and_then(Arg::literal_text);
                    let attempt = self.steps[i].attempt;
                    if on_timeout.as_deref() == Some("approve") {
                        let mut outputs = Outputs::new();
                        outputs.insert("approved_by".into(), serde_json::json!(["timeout"]));
                        self.emit(
                            Event::StepSucceeded {
                                step,
                                attempt,
                                outputs,
                            },
                            now,
                            out,
                        );
                    } else {
                        let error =
                            "no decision before the approval's timeout (on_timeout = reject)"
                                .to_string();
                        self.emit(
                            Event::StepFailed {
                                step,
                                attempt,
                                error,
                                retry_in_ms: None,
                            },
                            now,
                            out,
                        );
                    }
                }
            }
            Input::Cancel { by } => {
                if self.rolling_back {
                    return Err(Refusal(
                        "the run is rolling back; a rollback is not cancelled half-way".into(),
                    ));
                }
                if self.cancelled {
                    return Err(Refusal("the run is already cancelled".into()));
                }
                self.emit(Event::RunCancelled { by }, now, out);
            }
            Input::Rollback { by } => {
                if self.rolling_back {
                    return Err(Refusal(
                        "the run is already rolling back; resume it to continue".into(),
                    ));
                }
                if self
                    .steps
                    .iter()
                    .any(|s| s.status == StepStatus::Running && !s.retry_pending)
                {
                    return Err(Refusal("steps are still running: cancel the run and wait for them before rolling back".into()));
                }
                self.emit(Event::RollbackStarted { by }, now, out);
            }
            Input::CompensationFinished { step, result } => {
                let i = self.require_step(&step)?;
                if self.steps[i].undo == Undo::Running {
                    match result {
                        Ok(()) => self.emit(Event::CompensationSucceeded { step }, now, out),
                        Err((error, Failure::Conflict)) => {
                            let reason = format!(
                                "the rollback of `{step}` stopped: {error}. drctl did not overwrite it; decide with drctl resume RUN --step {step} --retry (undo it anyway, after checking) | --mark-succeeded (you restored it yourself) | --skip (leave it as it is now)"
                            );
                            self.emit(
                                Event::CompensationFailed {
                                    step,
                                    error,
                                    conflict: true,
                                },
                                now,
                                out,
                            );
                            self.emit(Event::RunPaused { reason }, now, out);
                        }
                        Err((error, _)) => {
                            self.emit(
                                Event::CompensationFailed {
                                    step,
                                    error,
                                    conflict: false,
                                },
                                now,
                                out,
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// An attempt of step `i` failed. Only an attempt proved to have changed nothing is tried
    /// again blindly; one that may have acted is tried again only when the step is
    /// idempotent, and otherwise its outcome is unknown: the probe decides, else the operator,
    /// exactly as after a crash (SPEC §5.4, §5.8.2).
    fn failed(
        &mut self,
        i: usize,
        attempt: u32,
        error: String,
        failure: Failure,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) {
        let spec = &self.workflow.steps[i];
        let (step, policy, idempotent) = (spec.id.clone(), spec.retry, spec.idempotent);
        if failure == Failure::Ambiguous && !idempotent {
            self.emit(
                Event::StepUnknown {
                    step: step.clone(),
                    attempt,
                    error: Some(error.clone()),
                },
                now,
                out,
            );
            if self.has_probe(i) {
                self.emit(Event::StepProbing { step, attempt }, now, out);
            } else {
                let reason = format!(
                    "`{step}` may or may not have taken effect ({error}) and it is not idempotent, so it is not run again blindly; decide with drctl resume RUN --step {step} --mark-succeeded | --retry | --skip"
                );
                self.emit(Event::RunPaused { reason }, now, out);
            }
            return;
        }
        let may_retry = match failure {
            Failure::NoEffect => true,
            Failure::Ambiguous => idempotent,
            Failure::Fatal | Failure::Conflict => false,
        };
        let retry_in_ms = (may_retry && attempt < policy.attempts && !self.cancelled)
            .then(|| backoff_ms(policy.initial, policy.max, attempt, &step));
        self.emit(
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
            },
            now,
            out,
        );
    }

    fn has_probe(&self, i: usize) -> bool {
        self.workflow.steps[i].probe
    }

    /// Decides unknown steps: idempotent ones run again, others wait for the operator. Steps
    /// whose retry was pending retry now; compensations cut off run again.
    fn recover(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        if self.finished.is_some() {
            return;
        }
        let mut undecided = Vec::new();
        for i in 0..self.steps.len() {
            let (status, retry_pending, attempt) = (
                self.steps[i].status,
                self.steps[i].retry_pending,
                self.steps[i].attempt,
            );
            let step = self.workflow.steps[i].id.clone();
            if status == StepStatus::Unknown {
                let has_probe = self.has_probe(i);
                if self.workflow.steps[i].idempotent && !self.rolling_back {
                    self.emit(
                        Event::StepStarted {
                            step,
                            attempt: attempt + 1,
                        },
                        now,
                        out,
                    );
                } else if has_probe && !self.rolling_back {
                    // The action's probe decides (a promoted replica is no longer a replica);
                    // the operator is asked only when it cannot tell.
                    self.emit(Event::StepProbing { step, attempt }, now, out);
                } else if !self.rolling_back {
                    undecided.push(step);
                }
            } else if status == StepStatus::Running && retry_pending && self.paused.is_none() {
                self.emit(
                    Event::StepStarted {
                        step,
                        attempt: attempt + 1,
                    },
                    now,
                    out,
                );
            }
            if self.steps[i].undo == Undo::Running {
                // A compensation cut off by a crash runs again: compensations put back a
                // recorded state, so running one twice lands in the same place.
                let step = self.workflow.steps[i].id.clone();
                self.emit(Event::CompensationStarted { step }, now, out);
            }
        }
        if !undecided.is_empty() && self.paused.is_none() {
            let reason = format!(
                "the outcome of {} is not known (its process stopped) and it is not safe to run again; decide with drctl resume RUN --step ID --mark-succeeded | --retry | --skip",
                undecided
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.emit(Event::RunPaused { reason }, now, out);
        }
    }

    fn resume(
        &mut self,
        by: &str,
        choices: &[(String, Choice)],
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        if self.paused.is_none() && !self.cancelled {
            return Err(Refusal(format!(
                "the run is {}, not paused or cancelled: there is nothing to resume",
                self.status().as_str()
            )));
        }
        let mut chosen: Vec<(usize, &String, &Choice)> = Vec::with_capacity(choices.len());
        for (step, choice) in choices {
            let i = self.require_step(step)?;
            if chosen.iter().any(|(j, _, _)| *j == i) {
                return Err(Refusal(format!(
                    "step `{step}` is given more than once: give each step one decision"
                )));
            }
            let status = self.steps[i].status;
            if self.rolling_back && self.steps[i].undo == Undo::Conflict {
                chosen.push((i, step, choice));
                continue;
            }
            if self.is_approval(i) && status == StepStatus::Failed && *choice != Choice::Retry {
                return Err(Refusal(format!(
                    "step `{step}` is an approval that was {}: that decision is final and cannot be skipped or marked succeeded; `--step {step} --retry` asks again, and the new round needs fresh votes",
                    self.steps[i].error.as_deref().map_or("refused", |e| {
                        if e.starts_with("rejected") {
                            "rejected"
                        } else {
                            "not given in time"
                        }
                    })
                )));
            }
            if !matches!(status, StepStatus::Unknown | StepStatus::Failed) {
                return Err(Refusal(format!(
                    "step `{step}` is {}: only unknown or failed steps take --mark-succeeded, --retry or --skip",
                    status.as_str()
                )));
            }
            chosen.push((i, step, choice));
        }
        self.emit(Event::RunResumed { by: by.to_string() }, now, out);
        for (i, step, choice) in chosen {
            self.take_choice(i, step, *choice, by, now, out);
        }
        Ok(())
    }

    /// Carries out an operator's choice on step `i` (checked by [`Machine::resume`]).
    fn take_choice(
        &mut self,
        i: usize,
        step: &str,
        choice: Choice,
        by: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) {
        let attempt = self.steps[i].attempt;
        if self.rolling_back && self.steps[i].undo == Undo::Conflict {
            let step = step.to_string();
            match choice {
                Choice::Retry => self.emit(Event::CompensationStarted { step }, now, out),
                Choice::MarkSucceeded => {
                    self.emit(Event::CompensationSucceeded { step }, now, out);
                }
                Choice::Skip => self.emit(Event::StepNotUndone { step }, now, out),
            }
            return;
        }
        if self.is_approval(i) {
            // Only --retry reaches here for an approval: a new round, every vote void.
            let voided = self.steps[i]
                .votes
                .iter()
                .map(|(who, _, _)| who.clone())
                .collect();
            self.emit(
                Event::ApprovalRoundOpened {
                    step: step.to_string(),
                    round: attempt + 1,
                    by: by.to_string(),
                    voided,
                },
                now,
                out,
            );
        }
        match choice {
            Choice::MarkSucceeded => {
                let mut outputs = Outputs::new();
                outputs.insert("marked_by".into(), by.into());
                self.emit(
                    Event::StepSucceeded {
                        step: step.to_string(),
                        attempt,
                        outputs,
                    },
                    now,
                    out,
                );
            }
            Choice::Retry => self.emit(
                Event::StepStarted {
                    step: step.to_string(),
                    attempt: attempt + 1,
                },
                now,
                out,
            ),
            Choice::Skip => self.emit(
                Event::StepSkipped {
                    step: step.to_string(),
                    by: by.to_string(),
                },
                now,
                out,
            ),
        }
    }

    #[allow(clippy::too_many_arguments, reason = "a vote's parts, each checked")]
    fn vote(
        &mut self,
        step: &str,
        by: &str,
        decision: Decision,
        comment: Option<String>,
        proof: Option<(serde_json::Value, String)>,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        let i = self.require_step(step)?;
        let spec = &self.workflow.steps[i];
        if !spec.is_approval() {
            return Err(Refusal(format!(
                "step `{step}` is a {} step, not an approval",
                spec.action
            )));
        }
        let s = &self.steps[i];
        if s.status != StepStatus::AwaitingApproval {
            return Err(Refusal(format!(
                "step `{step}` is not waiting for approval (it is {})",
                s.status.as_str()
            )));
        }
        if let Some(deadline) = self.deadline(i)
            && now >= deadline
        {
            return Err(Refusal(format!(
                "the approval `{step}` timed out at {}: votes after the deadline are refused",
                crate::time::rfc3339(deadline)
            )));
        }
        let approvers: Vec<String> = match spec.args.get("approvers") {
            Some(Arg::List(items)) => items.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        };
        if !approvers.iter().any(|a| a == by) {
            return Err(Refusal(format!(
                "`{by}` is not an approver of `{step}` (approvers: {})",
                approvers.join(", ")
            )));
        }
        if by == self.initiator && spec.args.bool("allow_self_approval") != Some(true) {
            return Err(Refusal(format!(
                "`{by}` started this run and may not approve it (allow_self_approval = false)"
            )));
        }
        if s.votes.iter().any(|(who, _, _)| who == by) {
            return Err(Refusal(format!("`{by}` has already decided on `{step}`")));
        }
        let attempt = s.attempt;
        self.emit(
            Event::ApprovalVoted {
                step: step.to_string(),
                by: by.to_string(),
                decision,
                comment: comment.clone(),
                signature: proof.as_ref().map(|(signed, _)| signed.clone()),
                fingerprint: proof.map(|(_, fingerprint)| fingerprint),
            },
            now,
            out,
        );
        let quorum = usize::try_from(spec.args.integer("quorum").unwrap_or(1)).unwrap_or(1);
        match decision {
            Decision::Reject => {
                let error = format!(
                    "rejected by {by}{}",
                    comment.map(|c| format!(": {c}")).unwrap_or_default()
                );
                self.emit(
                    Event::StepFailed {
                        step: step.to_string(),
                        attempt,
                        error,
                        retry_in_ms: None,
                    },
                    now,
                    out,
                );
            }
            Decision::Approve => {
                let approved: Vec<&str> = self.steps[i]
                    .votes
                    .iter()
                    .filter(|(_, d, _)| *d == Decision::Approve)
                    .map(|(who, _, _)| who.as_str())
                    .collect();
                if approved.len() >= quorum {
                    let mut outputs = Outputs::new();
                    outputs.insert("approved_by".into(), serde_json::json!(approved));
                    self.emit(
                        Event::StepSucceeded {
                            step: step.to_string(),
                            attempt,
                            outputs,
                        },
                        now,
                        out,
                    );
                }
            }
        }
        Ok(())
    }

    /// Starts what is ready, ends what is done, follows `on_failure`.
    fn schedule(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        if self.finished.is_some() || self.paused.is_some() || self.hold {
            return;
        }
        if self.rolling_back {
            self.schedule_rollback(now, out);
            return;
        }
        let first_failed = if self.count_of(StepStatus::Failed) > 0 {
            self.steps
                .iter()
                .position(|s| s.status == StepStatus::Failed)
        } else {
            None
        };
        if let Some(first) = first_failed {
            let id = &self.workflow.steps[first].id;
            let error = self.steps[first].error.clone().unwrap_or_default();
            match self.workflow.on_failure {
                OnFailure::Pause => {
                    let reason = format!(
                        "step `{id}` failed: {error}; drctl resume RUN --step {id} --retry | --skip, or drctl rollback RUN"
                    );
                    self.emit(Event::RunPaused { reason }, now, out);
                }
                OnFailure::Abort => self.emit(
                    Event::RunFinished {
                        status: RunStatus::Failed,
                    },
                    now,
                    out,
                ),
                OnFailure::Rollback => {
                    if !self
                        .steps
                        .iter()
                        .any(|s| s.status == StepStatus::Running && !s.retry_pending)
                    {
                        self.emit(
                            Event::RollbackStarted {
                                by: "on_failure".into(),
                            },
                            now,
                            out,
                        );
                        self.schedule_rollback(now, out);
                    }
                }
            }
            return;
        }
        if self.count_of(StepStatus::Unknown) > 0 {
            return;
        }
        if !self.cancelled {
            for i in self.startable() {
                let step = self.workflow.steps[i].id.clone();
                self.emit(Event::StepStarted { step, attempt: 1 }, now, out);
            }
        }
        let done = self.count_of(StepStatus::Succeeded) + self.count_of(StepStatus::Skipped);
        if done == self.steps.len() {
            self.emit(
                Event::RunFinished {
                    status: RunStatus::Succeeded,
                },
                now,
                out,
            );
        }
    }

    /// The ready steps that may start now, in workflow order: every ready approval (waiting
    /// for people takes no slot), and other steps while fewer than `concurrency` run. An
    /// approval is never `running`, so the running count is the count of running actions.
    fn startable(&self) -> Vec<usize> {
        let limit = self.workflow.concurrency as usize;
        let mut running = self.count_of(StepStatus::Running);
        let mut start = Vec::new();
        let mut full_at = None;
        for &i in &self.tally.ready {
            if self.is_approval(i) {
                start.push(i);
            } else if running < limit {
                running += 1;
                start.push(i);
            } else {
                full_at = Some(i);
                break;
            }
        }
        if let Some(from) = full_at {
            start.extend(self.tally.ready_approvals.range(from..));
        }
        start
    }

    /// Compensations run in reverse dependency order: a step is undone once every step that
    /// needed it is settled.
    fn schedule_rollback(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let n = self.steps.len();
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, step) in self.workflow.steps.iter().enumerate() {
            for &d in &step.needs {
                dependants[d].push(i);
            }
        }
        let limit = self.workflow.concurrency as usize;
        let mut running = self
            .steps
            .iter()
            .filter(|s| s.undo == Undo::Running)
            .count();
        loop {
            let mut progressed = false;
            for i in 0..n {
                if self.steps[i].undo != Undo::Pending {
                    continue;
                }
                let settled = dependants[i].iter().all(|&d| {
                    matches!(
                        self.steps[d].undo,
                        Undo::None | Undo::Done | Undo::Failed | Undo::NotUndone
                    )
                });
                if !settled {
                    continue;
                }
                let spec = &self.workflow.steps[i];
                let step = spec.id.clone();
                let effect = spec.effect;
                if spec.rollback.is_some() || effect == Effect::SelfUndoing {
                    if running >= limit {
                        continue;
                    }
                    running += 1;
                    self.emit(Event::CompensationStarted { step }, now, out);
                } else if matches!(effect, Effect::Irreversible | Effect::Additive) {
                    self.emit(Event::StepNotUndone { step }, now, out);
                    progressed = true;
                } else {
                    // Read-only steps and notifications changed nothing to undo.
                    self.steps[i].undo = Undo::None;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let busy = self
            .steps
            .iter()
            .any(|s| matches!(s.undo, Undo::Pending | Undo::Running | Undo::Conflict));
        if !busy {
            let failed = self.steps.iter().any(|s| s.undo == Undo::Failed);
            let status = if failed {
                RunStatus::Failed
            } else {
                RunStatus::RolledBack
            };
            self.emit(Event::RunFinished { status }, now, out);
        }
    }

    /// Where the RTO stands at `now`, from the steps' estimates.
    pub fn projection(&self, now: DateTime<Utc>) -> Option<crate::recovery::Projection> {
        use crate::recovery::{Remaining, project};
        let start = self.clock_start?;
        let states: Vec<Remaining> = self
            .steps
            .iter()
            .map(|s| match s.status {
                StepStatus::Succeeded | StepStatus::Skipped | StepStatus::RolledBack => {
                    Remaining::Done
                }
                StepStatus::Running | StepStatus::AwaitingApproval => s
                    .started_at
                    .map_or(Remaining::NotStarted, Remaining::RunningSince),
                _ => Remaining::NotStarted,
            })
            .collect();
        let durations: Vec<Duration> = self
            .workflow
            .steps
            .iter()
            .map(|s| s.estimate.unwrap_or_default())
            .collect();
        Some(project(self.workflow, &states, &durations, start, now))
    }

    /// Whether the service counts as recovered: the `recovered` step succeeded, or the run did
    /// when there is no marker.
    pub fn recovered(&self) -> bool {
        match self.workflow.recovered_step() {
            Some(i) => self.steps[i].status == StepStatus::Succeeded,
            None => self.finished == Some(RunStatus::Succeeded),
        }
    }

    /// Raises `rto_at_risk` the first time the projection passes the objective, and
    /// `rto_breached` the first time the objective itself passes, while not yet recovered.
    fn watch_rto(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        if self.workflow.rto.is_none() || self.recovered() || self.rolling_back || self.hold {
            return;
        }
        let Some(p) = self.projection(now) else {
            return;
        };
        let objective_seconds = p.objective.unwrap_or_default().as_secs_f64();
        if p.at_risk() && !self.rto_at_risk {
            self.emit(
                Event::RtoAtRisk {
                    projected_seconds: p.projected.as_secs_f64(),
                    objective_seconds,
                },
                now,
                out,
            );
        }
        if p.breached() && !self.rto_breached {
            self.emit(Event::RtoBreached { objective_seconds }, now, out);
        }
    }

    /// The approval steps waiting, with when each times out.
    pub fn approval_deadlines(&self) -> Vec<(String, DateTime<Utc>)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status == StepStatus::AwaitingApproval)
            .filter_map(|(i, _)| Some((self.workflow.steps[i].id.clone(), self.deadline(i)?)))
            .collect()
    }

    /// When the current round of approval `i` times out: none without a timeout, or when the
    /// time cannot be represented (validation keeps timeouts within 30 days).
    fn deadline(&self, i: usize) -> Option<DateTime<Utc>> {
        let timeout = chrono::Duration::from_std(self.workflow.steps[i].timeout?).ok()?;
        self.steps[i].started_at?.checked_add_signed(timeout)
    }
}

/// Exponential backoff with jitter: `initial · 2^(attempt-1)`, capped at `max`, then between
/// half and all of it. The jitter is derived from the step and attempt, so a replay decides
/// the same delay.
fn backoff_ms(initial: Duration, max: Duration, attempt: u32, step: &str) -> u64 {
    let base = initial
        .as_millis()
        .saturating_mul(1u128 << attempt.saturating_sub(1).min(30));
    let capped = u64::try_from(base.min(max.as_millis())).unwrap_or(u64::MAX);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in step.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let half = capped / 2;
    half + if capped - half == 0 {
        0
    } else {
        h % (capped - half + 1)
    }
}

mod signed;
#[cfg(test)]
mod tests;
