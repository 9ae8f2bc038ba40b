//! A changed workflow (SPEC §5.8.7): `resume --allow-changed-workflow` is journaled as a
//! `workflow_changed` event, signed when the run has allowed signers, and the steps it
//! changed may not start while an approval of the run stands rejected: an edit is a new plan,
//! never a way around a "no". Votes on a gate that has not passed count only for the digest
//! they were cast on (folded in `apply`).

use std::collections::BTreeSet;

use chrono::{DateTime, SubsecRound, Utc};

use super::super::event::Event;
use super::{Choice, Machine, Refusal, WorkflowChange};
use crate::identity::{AllowedSigners, Signed, StatementKind, verify};
use crate::store::StepStatus;

/// How far from now a signed change's time may be (clocks of two machines differ).
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl Machine {
    /// Resumes with another version of the workflow: the change is checked (its signature,
    /// when the run has allowed signers), then the resume is tried on a copy with the change
    /// folded in, so that every refusal comes before the first event; then both are decided.
    pub(super) fn resume_changed(
        &mut self,
        by: &str,
        choices: &[(String, Choice)],
        change: WorkflowChange,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), Refusal> {
        self.check_change(&change, by, now)?;
        let event = Event::WorkflowChanged {
            from_digest: self.digest.clone(),
            to_digest: change.to_digest,
            source: change.source,
            changed_steps: change.changed_steps,
            by: by.to_string(),
            signature: change.signature,
        };
        let resuming = self.paused.is_some() || self.cancelled || !choices.is_empty();
        if resuming {
            let mut trial = self.clone();
            trial.apply(&event, now);
            trial.resume(by, choices, now, &mut Vec::new())?;
        }
        self.emit(event, now, out);
        if resuming {
            self.resume(by, choices, now, out)?;
        } else {
            self.emit(Event::RunResumed { by: by.to_string() }, now, out);
        }
        Ok(())
    }

    /// Checks that `change` may be recorded: it changes the digest, and with allowed signers
    /// it carries `by`'s signed `change_workflow` statement for this run and the new digest.
    fn check_change(
        &self,
        change: &WorkflowChange,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        if change.to_digest == self.digest {
            return Err(Refusal(format!(
                "the workflow has the run's digest {}: nothing changed",
                self.digest
            )));
        }
        let Some(text) = &self.signers else {
            return Ok(());
        };
        let Some(signature) = &change.signature else {
            return Err(Refusal(format!(
                "this run's workflow names allowed signers: a changed workflow is a new plan and is signed by who resumes with it, `--as NAME --key PATH` (digest {} now, {} before); nothing was recorded",
                change.to_digest, self.digest
            )));
        };
        let signers = AllowedSigners::parse(text).map_err(|_| {
            Refusal("the allowed signers stored with this run cannot be read".into())
        })?;
        let parsed: Signed = serde_json::from_value(signature.clone())
            .map_err(|e| Refusal(format!("the signed change cannot be read: {e}")))?;
        let proof = verify(&parsed, &signers).map_err(|e| Refusal(e.to_string()))?;
        let st = &parsed.statement;
        let wrong = if st.kind != StatementKind::ChangeWorkflow {
            Some("it is not a signed change of the workflow".to_string())
        } else if st.run_id != self.run_id {
            Some(format!("it was signed for run {}", st.run_id))
        } else if st.digest != change.to_digest {
            Some(format!("it was signed for digest {}", st.digest))
        } else if st.name != by || proof.name != by {
            Some(format!("it was signed by {}, not {by}", proof.name))
        } else {
            None
        };
        if let Some(wrong) = wrong {
            return Err(Refusal(format!(
                "the signed change does not sign this change: {wrong}; nothing was recorded"
            )));
        }
        let at = crate::time::parse_time(&st.at)
            .ok_or_else(|| Refusal(format!("the signed time `{}` is not RFC 3339", st.at)))?;
        if at > now + CLOCK_SKEW || at < now.trunc_subsecs(0) - CLOCK_SKEW {
            return Err(Refusal(format!(
                "the change is signed at {}, more than 5 minutes from now: sign it again",
                st.at
            )));
        }
        Ok(())
    }

    /// Folds a `workflow_changed`: the run has the new digest, remembers the steps changed
    /// (in any version), and the votes cast on an approval still waiting no longer count:
    /// its approvers are asked again, on what the run is now.
    pub(super) fn fold_change(&mut self, to_digest: &str, changed_steps: &[String]) {
        self.digest = to_digest.to_string();
        self.changed.extend(changed_steps.iter().cloned());
        for s in &mut self.steps {
            if s.status == StepStatus::AwaitingApproval {
                s.votes.clear();
            }
        }
    }

    /// Whether a vote cast on `digest` counts now (votes journaled before votes named their
    /// digest have none, and count as they did).
    pub(super) fn counts_for(&self, digest: &str) -> bool {
        digest.is_empty() || digest == self.digest
    }

    /// The approval that holds step `i` back, when `i` is a step a changed workflow changed
    /// and an approval of the run is failed (rejected, or timed out with `reject`) in its
    /// current round.
    pub fn held_by(&self, i: usize) -> Option<&str> {
        if self.changed.is_empty()
            || self.count_of(StepStatus::Failed) == 0
            || !self.changed.contains(&self.workflow.steps[i].id)
        {
            return None;
        }
        self.steps
            .iter()
            .enumerate()
            .find(|(j, s)| self.is_approval(*j) && s.status == StepStatus::Failed)
            .map(|(j, _)| self.workflow.steps[j].id.as_str())
    }

    /// Refuses a `--retry` of a changed step while an approval stands rejected.
    pub(super) fn refuse_held(&self, i: usize, choice: Choice) -> Result<(), Refusal> {
        if choice != Choice::Retry || self.is_approval(i) {
            return Ok(());
        }
        match self.held_by(i) {
            None => Ok(()),
            Some(gate) => Err(Refusal(format!(
                "step `{}` was changed by a changed workflow and the approval `{gate}` stands rejected: a changed step may not run while a gate is rejected (SPEC §5.8.7); `--step {gate} --retry` asks its approvers again",
                self.workflow.steps[i].id
            ))),
        }
    }

    /// The steps changed by a changed workflow, in any of the run's versions.
    pub fn changed_steps(&self) -> &BTreeSet<String> {
        &self.changed
    }
}
