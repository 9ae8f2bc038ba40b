//! Deciding an input: the checks that refuse it, then the events it leads to.

use chrono::{DateTime, Utc};

use super::super::event::{Event, Outputs};
use super::super::pause::PauseReason;
use super::schedule::backoff_ms;
use super::{Input, Machine, Refusal, Undo};
use crate::actions::Failure;
use crate::dag::OnTimeout;
use crate::store::{RunStatus, StepStatus};

impl Machine {
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

    pub(super) fn emit(&mut self, event: Event, now: DateTime<Utc>, out: &mut Vec<Event>) {
        self.apply(&event, now);
        out.push(event);
    }

    /// Records that attempt `attempt` of `step` succeeded with `outputs` (attempt 0: an
    /// operator marked it).
    pub(super) fn succeeded(
        &mut self,
        step: String,
        attempt: u32,
        outputs: Outputs,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) {
        self.emit(
            Event::StepSucceeded {
                step,
                attempt,
                outputs,
            },
            now,
            out,
        );
    }

    pub(super) fn require_step(&self, id: &str) -> Result<usize, Refusal> {
        self.index(id)
            .ok_or_else(|| Refusal(format!("this run has no step `{id}`")))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one arm per input reads better than a helper per arm"
    )]
    pub(super) fn react(
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
            Input::ResumeChanged {
                by,
                choices,
                change,
            } => self.resume_changed(&by, &choices, *change, now, out)?,
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
                    Ok(outputs) => self.succeeded(step, attempt, outputs, now, out),
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
                    crate::actions::Probe::TookEffect(outputs) => {
                        self.succeeded(step, attempt, outputs, now, out);
                    }
                    crate::actions::Probe::DidNot if self.held_by(i).is_some() => {
                        let why = format!(
                            "it changed with the workflow and the approval `{}` stands rejected",
                            self.held_by(i).unwrap_or_default()
                        );
                        let reason = PauseReason::ProbeUndecided { step, why };
                        self.emit(Event::RunPaused { reason }, now, out);
                    }
                    crate::actions::Probe::DidNot => self.emit(
                        Event::StepStarted {
                            step,
                            attempt: attempt + 1,
                        },
                        now,
                        out,
                    ),
                    crate::actions::Probe::Undecided(why) => {
                        let reason = PauseReason::ProbeUndecided { step, why };
                        self.emit(Event::RunPaused { reason }, now, out);
                    }
                }
            }
            Input::RetryDue { step } => {
                let i = self.require_step(&step)?;
                if self.steps[i].retry_pending && self.paused.is_none() && self.held_by(i).is_none()
                {
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
                    let on_timeout = self.workflow.steps[i].approval().map(|p| p.on_timeout);
                    let attempt = self.steps[i].attempt;
                    if on_timeout == Some(OnTimeout::Approve) {
                        let mut outputs = Outputs::new();
                        outputs.insert("approved_by".into(), serde_json::json!(["timeout"]));
                        self.succeeded(step, attempt, outputs, now, out);
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
                            let reason = PauseReason::UndoConflict {
                                step: step.clone(),
                                error: error.clone(),
                            };
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
    pub(super) fn failed(
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
        if failure == Failure::Missing {
            // Nothing ran; the operator runs a build that has the action, whatever
            // `on_failure` says.
            let failed = Event::StepFailed {
                step: step.clone(),
                attempt,
                error: error.clone(),
                retry_in_ms: None,
            };
            self.emit(failed, now, out);
            let reason = PauseReason::ActionMissing { step, error };
            self.emit(Event::RunPaused { reason }, now, out);
            return;
        }
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
                let reason = PauseReason::OutcomeUnknown { step, error };
                self.emit(Event::RunPaused { reason }, now, out);
            }
            return;
        }
        let may_retry = match failure {
            Failure::NoEffect => true,
            Failure::Ambiguous => idempotent,
            Failure::Fatal | Failure::Conflict | Failure::Missing => false,
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

    pub(super) fn has_probe(&self, i: usize) -> bool {
        self.workflow.steps[i].probe
    }
}
