//! The run as its readers see it: one typed projection of the journal, folded by
//! [`Machine::apply`](super::Machine::apply) with the state that drives the run, one entry at a
//! time, so a follower keeps it up to date as the journal grows. Status, reports, evidence and
//! pages read this struct; none of them reads raw events. It decides nothing: what the run may
//! do next is the machine's state, never this one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::super::event::{Decision, Event, Outputs};
use super::super::pause::PauseReason;
use super::Vote;
use crate::store::{RunStatus, StepStatus};

/// What a run's journal says happened, for the people and tools that read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunProjection {
    /// The workflow's name, as the start names it.
    pub workflow: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Who started the run.
    pub initiator: String,
    /// The allowed signers the run captured when it started.
    pub allowed_signers: Option<String>,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the outage began (`--incident-start`), when given.
    pub incident_start: Option<DateTime<Utc>>,
    /// Every version of the workflow, the one it started with first.
    pub versions: Vec<WorkflowVersion>,
    /// The final status, once the run reached one (a rollback clears it).
    pub finished: Option<RunStatus>,
    /// When it reached its last final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the run last finished `succeeded`.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// Why the run waits for an operator now.
    pub pause: Option<PauseReason>,
    /// Every pause, in order.
    pub pauses: Vec<Pause>,
    /// Every resume, in order.
    pub resumes: Vec<ByWhom>,
    /// Every cancel, in order.
    pub cancels: Vec<ByWhom>,
    /// Who started the rollback, and when.
    pub rollback: Option<ByWhom>,
    /// When the recovery was first projected to miss the RTO.
    pub rto_at_risk_at: Option<DateTime<Utc>>,
    /// When the RTO objective first passed unrecovered.
    pub rto_breached_at: Option<DateTime<Utc>>,
    /// Every step the journal or the workflow names: the workflow's in its order, then any
    /// other the journal names, as first named.
    pub steps: Vec<StepProjection>,
    /// Where each step is in `steps`, by id: a step is found at once, not by a scan (a
    /// 1,000-step run's readers look every step up).
    #[serde(skip)]
    at: HashMap<String, usize>,
    /// Every decision on an approval (votes and timeouts), in order, in every round.
    pub decisions: Vec<ApprovalDecision>,
    /// Every compensation that ended, in order.
    pub compensations: Vec<CompensationEnded>,
    /// Steps that changed something and had no compensation, in order.
    pub not_undone: Vec<String>,
}

/// One version of a run's workflow: the one it started with, then one per changed workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowVersion {
    /// Its digest.
    pub digest: String,
    /// When the run took it up (RFC 3339).
    pub at: String,
    /// Who: the initiator for the first, who resumed with it for the others.
    pub by: String,
    /// The steps it added, removed or changed (none for the first).
    pub changed_steps: Vec<String>,
    /// Whether its change was signed (the first: whether the start was).
    pub signed: bool,
    /// Its text, for a changed version (the first one's is stored beside the journal).
    #[serde(skip)]
    pub source: Option<String>,
}

/// Whether a run kept the workflow it started with (for `skip_serializing_if`: a run's
/// status and report list its versions only when it has more than one).
#[allow(
    clippy::ptr_arg,
    reason = "serde's skip_serializing_if passes the field"
)]
pub fn unchanged(versions: &Vec<WorkflowVersion>) -> bool {
    versions.len() <= 1
}

/// Someone's act on the run, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByWhom {
    /// Who.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A pause, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    /// Why.
    pub reason: PauseReason,
    /// When.
    pub at: DateTime<Utc>,
}

/// One step as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepProjection {
    /// Step id.
    pub id: String,
    /// Where it is (as the machine folds it).
    pub status: StepStatus,
    /// Every attempt (for an approval: every request of its wait), in order.
    pub attempts: Vec<Attempt>,
    /// When its first attempt started.
    pub first_started_at: Option<DateTime<Utc>>,
    /// When it last ended: succeeded, skipped, or failed for good.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its outputs, once succeeded.
    pub outputs: Outputs,
    /// Its last error.
    pub error: Option<String>,
    /// The votes of an approval's current round. A changed workflow voids the votes of the
    /// approvals not decided in their round.
    pub votes: Vec<VoteCast>,
    /// Decided (succeeded or failed for good) since its last start.
    #[serde(skip)]
    decided: bool,
}

impl StepProjection {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            status: StepStatus::Pending,
            attempts: Vec::new(),
            first_started_at: None,
            ended_at: None,
            outputs: Outputs::new(),
            error: None,
            votes: Vec::new(),
            decided: false,
        }
    }

    /// An approval's current round, as signed decisions name it: the number of its last
    /// request (0: not requested yet), as a reader of the journal counts it for the command
    /// that asks someone to sign a vote. It is the machine's `StepState::attempt`, which the
    /// machine checks a signed vote's round against: both are the last `step_started`'s.
    pub fn round(&self) -> u32 {
        self.attempts.last().map_or(0, |a| a.number)
    }

    fn attempt(&mut self, n: u32) -> Option<&mut Attempt> {
        self.attempts.iter_mut().rev().find(|a| a.number == n)
    }
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Its number, from 1.
    pub number: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, once it did.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its error, when it failed or its outcome was lost.
    pub error: Option<String>,
}

/// A vote of an approval's current round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoteCast {
    /// Who, as named.
    pub by: String,
    /// The fingerprint of the key that signed it.
    pub key: Option<String>,
    /// Approve or reject.
    pub decision: Decision,
    /// Why, when said.
    pub comment: Option<String>,
    /// The workflow digest it was cast on (empty in journals written before votes named it).
    pub digest: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What an approval decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Someone approved.
    Approve,
    /// Someone rejected.
    Reject,
    /// Its time ran out.
    Timeout,
}

/// A decision on an approval: a vote, or its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalDecision {
    /// The approval step.
    pub step: String,
    /// Who (none for a timeout).
    pub by: Option<String>,
    /// What.
    pub outcome: Outcome,
    /// Why, when said.
    pub comment: Option<String>,
    /// The fingerprint of the key that signed it.
    pub key: Option<String>,
    /// The workflow digest it was cast on.
    pub digest: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A compensation that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompensationEnded {
    /// The step undone, or not.
    pub step: String,
    /// Its error, when it failed.
    pub error: Option<String>,
    /// It failed because the resource no longer holds what drctl wrote.
    pub conflict: bool,
    /// When.
    pub at: DateTime<Utc>,
}

impl RunProjection {
    /// A projection of a run of a workflow with steps `ids`, nothing journaled yet.
    pub(super) fn new<'a>(ids: impl Iterator<Item = &'a str>) -> Self {
        let steps: Vec<StepProjection> = ids.map(StepProjection::new).collect();
        let at = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Self {
            steps,
            at,
            ..Self::default()
        }
    }

    /// Step `id`, when the workflow or the journal names it.
    pub fn step(&self, id: &str) -> Option<&StepProjection> {
        self.at.get(id).and_then(|&i| self.steps.get(i))
    }

    /// Step `id`, at `idx` when it is a step of the machine's workflow (the projection lists
    /// those first, in the same order); added when the journal names it first.
    fn step_mut(&mut self, idx: Option<usize>, id: &str) -> &mut StepProjection {
        match idx.or_else(|| self.at.get(id).copied()) {
            Some(i) => &mut self.steps[i],
            None => {
                self.at.insert(id.to_string(), self.steps.len());
                self.steps.push(StepProjection::new(id));
                self.steps.last_mut().expect("just pushed")
            }
        }
    }

    /// Folds one event, journaled at `at`. Called by `Machine::apply` only, after the machine's
    /// own state took it; `step` is the event's step in the machine's workflow and the status
    /// the machine folded for it (none for a step outside the workflow).
    pub(super) fn fold(
        &mut self,
        event: &Event,
        at: DateTime<Utc>,
        step: Option<(usize, StepStatus)>,
    ) {
        if let Some(id) = event.step() {
            self.fold_step(id, event, at, step);
        } else {
            self.fold_run(event, at);
        }
    }

    /// Records a vote on approval `id`: in its current round, and among every decision.
    fn vote(&mut self, idx: Option<usize>, id: &str, vote: Vote, digest: &str, at: DateTime<Utc>) {
        self.decisions.push(ApprovalDecision {
            step: id.to_string(),
            by: Some(vote.by.clone()),
            outcome: match vote.decision {
                Decision::Approve => Outcome::Approve,
                Decision::Reject => Outcome::Reject,
            },
            comment: vote.comment.clone(),
            key: vote.key.clone(),
            digest: digest.to_string(),
            at,
        });
        self.step_mut(idx, id).votes.push(VoteCast {
            by: vote.by,
            key: vote.key,
            decision: vote.decision,
            comment: vote.comment,
            digest: digest.to_string(),
            at,
        });
    }

    fn fold_run(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::RunStarted {
                workflow,
                mode,
                initiator,
                digest,
                incident_start,
                allowed_signers,
                signature,
            } => {
                self.workflow.clone_from(workflow);
                self.mode.clone_from(mode);
                self.initiator.clone_from(initiator);
                self.allowed_signers.clone_from(allowed_signers);
                self.started_at = Some(at);
                self.incident_start = *incident_start;
                self.versions.push(WorkflowVersion {
                    digest: digest.clone(),
                    at: crate::time::rfc3339(at),
                    by: initiator.clone(),
                    changed_steps: Vec::new(),
                    signed: signature.is_some(),
                    source: None,
                });
            }
            Event::WorkflowChanged {
                to_digest,
                source,
                changed_steps,
                by,
                signature,
                ..
            } => {
                for s in self.steps.iter_mut().filter(|s| !s.decided) {
                    s.votes.clear();
                }
                self.versions.push(WorkflowVersion {
                    digest: to_digest.clone(),
                    at: crate::time::rfc3339(at),
                    by: by.clone(),
                    changed_steps: changed_steps.clone(),
                    signed: signature.is_some(),
                    source: Some(source.clone()),
                });
            }
            Event::RunPaused { reason } => {
                self.pause = Some(reason.clone());
                self.pauses.push(Pause {
                    reason: reason.clone(),
                    at,
                });
            }
            Event::RunResumed { by } => {
                self.pause = None;
                self.resumes.push(ByWhom { by: by.clone(), at });
            }
            Event::RunCancelled { by } => self.cancels.push(ByWhom { by: by.clone(), at }),
            Event::RollbackStarted { by } => {
                self.pause = None;
                self.finished = None;
                self.rollback = Some(ByWhom { by: by.clone(), at });
            }
            Event::RunFinished { status } => {
                self.pause = None;
                self.finished = Some(*status);
                self.finished_at = Some(at);
                if *status == RunStatus::Succeeded {
                    self.succeeded_at = Some(at);
                }
            }
            Event::RtoAtRisk { .. } => {
                self.rto_at_risk_at.get_or_insert(at);
            }
            Event::RtoBreached { .. } => {
                self.rto_breached_at.get_or_insert(at);
            }
            _ => {}
        }
    }

    fn fold_step(
        &mut self,
        id: &str,
        event: &Event,
        at: DateTime<Utc>,
        known: Option<(usize, StepStatus)>,
    ) {
        let idx = known.map(|(i, _)| i);
        let step = self.step_mut(idx, id);
        match event {
            Event::StepStarted { attempt, .. } => {
                step.decided = false;
                step.first_started_at.get_or_insert(at);
                step.attempts.push(Attempt {
                    number: *attempt,
                    started_at: at,
                    ended_at: None,
                    error: None,
                });
            }
            Event::StepSucceeded {
                attempt, outputs, ..
            } => {
                step.decided = true;
                step.ended_at = Some(at);
                step.outputs.clone_from(outputs);
                step.error = None;
                if let Some(a) = step.attempt(*attempt) {
                    a.ended_at = Some(at);
                }
            }
            Event::StepFailed {
                attempt,
                error,
                retry_in_ms,
                ..
            } => {
                if retry_in_ms.is_none() {
                    step.decided = true;
                    step.ended_at = Some(at);
                }
                step.error = Some(error.clone());
                if let Some(a) = step.attempt(*attempt) {
                    a.ended_at = Some(at);
                    a.error = Some(error.clone());
                }
            }
            Event::StepUnknown { attempt, error, .. } => {
                if error.is_some() {
                    step.error.clone_from(error);
                }
                if let Some(a) = step.attempt(*attempt) {
                    a.error.clone_from(error);
                }
            }
            Event::StepSkipped { .. } => step.ended_at = Some(at),
            Event::ApprovalRoundOpened { .. } => {
                step.votes.clear();
                step.decided = false;
                step.error = None;
            }
            Event::ApprovalVoted { digest, .. } => {
                if let Some(vote) = Vote::of(event) {
                    self.vote(idx, id, vote, digest, at);
                }
            }
            Event::ApprovalTimedOut { .. } => self.decisions.push(ApprovalDecision {
                step: id.to_string(),
                by: None,
                outcome: Outcome::Timeout,
                comment: None,
                key: None,
                digest: String::new(),
                at,
            }),
            Event::CompensationSucceeded { .. } => self.compensations.push(CompensationEnded {
                step: id.to_string(),
                error: None,
                conflict: false,
                at,
            }),
            Event::CompensationFailed {
                error, conflict, ..
            } => {
                step.error = Some(error.clone());
                self.compensations.push(CompensationEnded {
                    step: id.to_string(),
                    error: Some(error.clone()),
                    conflict: *conflict,
                    at,
                });
            }
            Event::StepNotUndone { .. } => self.not_undone.push(id.to_string()),
            _ => {}
        }
        if let Some((i, status)) = known {
            self.steps[i].status = status;
        }
    }
}
