//! Folding events into the state: the one place the state changes, for decisions just taken
//! and for journals replayed alike.

use chrono::{DateTime, Utc};

use super::super::event::Event;
use super::{Machine, Undo, Vote};
use crate::store::StepStatus;

impl Machine {
    /// Folds one journaled event (recorded at `at`) into the state, and into the run's
    /// projection for its readers when the machine keeps one ([`Machine::projected`]). Never fails: events were valid when decided.
    pub fn apply(&mut self, event: &Event, at: DateTime<Utc>) {
        let idx = event.step().and_then(|s| self.index(s));
        self.fold_state(event, at, idx);
        let step = idx.map(|i| (i, self.steps[i].status));
        if let Some(projection) = &mut self.projection {
            projection.fold(event, at, step);
        }
    }

    /// Folds `event` into the state that drives the run.
    #[allow(clippy::too_many_lines, reason = "one arm per event")]
    fn fold_state(&mut self, event: &Event, at: DateTime<Utc>, idx: Option<usize>) {
        match (event, idx) {
            (
                Event::RunStarted {
                    initiator,
                    incident_start,
                    digest,
                    allowed_signers,
                    signature,
                    ..
                },
                _,
            ) => {
                self.initiator.clone_from(initiator);
                self.initiator_key = signature
                    .as_ref()
                    .and_then(|s| serde_json::from_value::<crate::identity::Signed>(s.clone()).ok())
                    .and_then(|s| s.fingerprint().ok());
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
            (Event::ApprovalVoted { digest, .. }, Some(i)) if self.counts_for(digest) => {
                self.steps[i].votes.extend(Vote::of(event));
            }
            (
                Event::WorkflowChanged {
                    to_digest,
                    changed_steps,
                    ..
                },
                _,
            ) => self.fold_change(to_digest, changed_steps),
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
}
