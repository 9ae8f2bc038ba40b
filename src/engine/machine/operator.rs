//! What operators and crashes bring: taking up an interrupted run, resuming with decisions
//! on steps, and votes on approvals.

use chrono::{DateTime, Utc};

use super::super::event::{Decision, Event, Outputs};
use super::super::pause::PauseReason;
use super::{Choice, Machine, Refusal, Undo};
use crate::dag::{Barred, Voter};
use crate::store::StepStatus;

impl Machine {
    /// Decides unknown steps: idempotent ones run again, others wait for the operator. Steps
    /// whose retry was pending retry now; compensations cut off run again.
    pub(super) fn recover(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
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
            let held = self.held_by(i).is_some();
            if status == StepStatus::Unknown {
                let has_probe = self.has_probe(i);
                if held && !self.rolling_back {
                    // A changed step does not run again while a gate stands rejected.
                    undecided.push(step);
                } else if self.workflow.steps[i].idempotent && !self.rolling_back {
                    self.attempt_again(step, attempt, now, out);
                } else if has_probe && !self.rolling_back {
                    // The action's probe decides (a promoted replica is no longer a replica);
                    // the operator is asked only when it cannot tell.
                    self.emit(Event::StepProbing { step, attempt }, now, out);
                } else if !self.rolling_back {
                    undecided.push(step);
                }
            } else if status == StepStatus::Running
                && retry_pending
                && self.paused.is_none()
                && !held
            {
                self.attempt_again(step, attempt, now, out);
            }
            if self.steps[i].undo == Undo::Running {
                // A compensation cut off by a crash runs again: compensations put back a
                // recorded state, so running one twice lands in the same place.
                let step = self.workflow.steps[i].id.clone();
                self.emit(Event::CompensationStarted { step }, now, out);
            }
        }
        if !undecided.is_empty() && self.paused.is_none() {
            let reason = PauseReason::Interrupted { steps: undecided };
            self.emit(Event::RunPaused { reason }, now, out);
        }
    }

    pub(super) fn resume(
        &mut self,
        by: &str,
        choices: &[(String, Choice)],
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        if let Some(why) = &self.tainted {
            return Err(Refusal(format!(
                "this run is not driven further: {why}. Its record was changed outside drctl; `drctl verify` shows what does not hold. Only `drctl rollback` may still undo what it did"
            )));
        }
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
            self.refuse_held(i, *choice)?;
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
    pub(super) fn take_choice(
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
            let voided = self.steps[i].votes.iter().map(|v| v.by.clone()).collect();
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
                self.succeeded(step.to_string(), attempt, outputs, now, out);
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

    /// Whether `by`, signing with the key `key` (runs with allowed signers), may vote on step
    /// `step` at `now`: the step waits for approval, the deadline has not passed, `by` is an
    /// approver, neither the name nor the key started the run (unless self-approval is
    /// allowed), and neither has decided in this round. One key is one person: a key listed
    /// under several names votes once. The journal's replay (`engine::audit`) asks the same.
    pub(crate) fn check_vote(
        &self,
        step: &str,
        by: &str,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, Refusal> {
        let i = self.require_step(step)?;
        let spec = &self.workflow.steps[i];
        let Some(policy) = spec.approval() else {
            return Err(Refusal(format!(
                "step `{step}` is a {} step, not an approval",
                spec.action
            )));
        };
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
        let voter = Voter { name: by, key };
        let initiator = Voter {
            name: &self.initiator,
            key: self.initiator_key.as_deref(),
        };
        match policy.may_vote(voter, initiator) {
            Ok(()) => {}
            Err(Barred::NotAnApprover) => {
                return Err(Refusal(format!(
                    "`{by}` is not an approver of `{step}` (approvers: {})",
                    policy.approvers.join(", ")
                )));
            }
            Err(Barred::StartedTheRun) => {
                return Err(Refusal(format!(
                    "`{by}` started this run and may not approve it (allow_self_approval = false)"
                )));
            }
            Err(Barred::SignedTheStart) => {
                return Err(Refusal(format!(
                    "the key {} that signs for `{by}` started this run (as `{}`): one key is one person, who may not approve their own run (allow_self_approval = false)",
                    key.unwrap_or_default(),
                    self.initiator
                )));
            }
        }
        if s.votes.iter().any(|v| v.by == by) {
            return Err(Refusal(format!("`{by}` has already decided on `{step}`")));
        }
        if let Some(key) = key
            && let Some(earlier) = s.votes.iter().find(|v| v.key.as_deref() == Some(key))
        {
            return Err(Refusal(format!(
                "the key {key} already decided on `{step}` as `{}`: one key is one person, whatever names the allowed signers give it",
                earlier.by
            )));
        }
        Ok(i)
    }

    /// Starts attempt `attempt + 1` of `step`.
    fn attempt_again(
        &mut self,
        step: String,
        attempt: u32,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) {
        self.emit(
            Event::StepStarted {
                step,
                attempt: attempt + 1,
            },
            now,
            out,
        );
    }

    /// The approvers whose approvals count towards step `i`'s quorum in its current round:
    /// one per key (signed runs) and one per name.
    pub(crate) fn approvals_counted(&self, i: usize) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for vote in &self.steps[i].votes {
            if vote.decision != Decision::Approve || names.contains(&vote.by.as_str()) {
                continue;
            }
            if let Some(key) = vote.key.as_deref() {
                if keys.contains(&key) {
                    continue;
                }
                keys.push(key);
            }
            names.push(&vote.by);
        }
        names
    }

    /// The quorum of approval step `i`.
    pub(crate) fn quorum(&self, i: usize) -> usize {
        self.workflow.steps[i].approval().map_or(1, |p| p.quorum)
    }

    #[allow(clippy::too_many_arguments, reason = "a vote's parts, each checked")]
    pub(super) fn vote(
        &mut self,
        step: &str,
        by: &str,
        decision: Decision,
        comment: Option<String>,
        proof: Option<(serde_json::Value, String)>,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        let key = proof.as_ref().map(|(_, fingerprint)| fingerprint.as_str());
        let i = self.check_vote(step, by, key, now)?;
        let attempt = self.steps[i].attempt;
        self.emit(
            Event::ApprovalVoted {
                step: step.to_string(),
                by: by.to_string(),
                decision,
                comment: comment.clone(),
                signature: proof.as_ref().map(|(signed, _)| signed.clone()),
                fingerprint: proof.map(|(_, fingerprint)| fingerprint),
                digest: self.digest.clone(),
            },
            now,
            out,
        );
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
                let approved: Vec<String> = self
                    .approvals_counted(i)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                if approved.len() >= self.quorum(i) {
                    let mut outputs = Outputs::new();
                    outputs.insert("approved_by".into(), serde_json::json!(approved));
                    self.succeeded(step.to_string(), attempt, outputs, now, out);
                }
            }
        }
        Ok(())
    }
}
