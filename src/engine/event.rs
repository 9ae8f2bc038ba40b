//! The events of a run: what the journal records, what the state machine folds, what the
//! terminal, JSON output and reports consume.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pause::PauseReason;
use crate::store::RunStatus;

pub use crate::actions::Outputs;

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Yes.
    Approve,
    /// No: ends the wait at once.
    Reject,
}

/// Something that happened to a run. Every event is journaled before anything acts on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A run began.
    RunStarted {
        /// The workflow's name.
        workflow: String,
        /// `run` or `drill`.
        mode: String,
        /// Who started it.
        initiator: String,
        /// Digest of the compiled workflow.
        digest: String,
        /// When the outage began (`--incident-start`), when given: the RTO clock starts there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_start: Option<DateTime<Utc>>,
        /// The workflow's allowed-signers file as it was when the run started (SPEC §5.9):
        /// who may approve this run, whatever the file says later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed_signers: Option<String>,
        /// The initiator's signed start statement, with `allowed_signers`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<serde_json::Value>,
    },
    /// An attempt of a step began (or an approval began waiting). Durable before the action's
    /// side effect starts.
    StepStarted {
        /// Step id.
        step: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A step succeeded. Durable before any dependant starts.
    StepSucceeded {
        /// Step id.
        step: String,
        /// The attempt that succeeded (0 when an operator marked it).
        attempt: u32,
        /// Its outputs.
        outputs: Outputs,
    },
    /// An attempt failed.
    StepFailed {
        /// Step id.
        step: String,
        /// The attempt.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// When set, another attempt starts after this many milliseconds.
        retry_in_ms: Option<u64>,
    },
    /// A started attempt whose outcome is not known: its process died (found on resume), or
    /// it ended ambiguously (a timeout, a broken connection, a 5xx) and the step is not
    /// idempotent, so it is not tried again blindly.
    StepUnknown {
        /// Step id.
        step: String,
        /// The attempt.
        attempt: u32,
        /// Why the outcome is not known, when the attempt ended ambiguously.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// What a self-undoing step is about to replace, made durable before it changes anything
    /// (SPEC §5.8.3). The first value recorded for a step is the one its undo restores.
    PreviousRecorded {
        /// Step id.
        step: String,
        /// The attempt that read it.
        attempt: u32,
        /// The value as the action read it.
        previous: serde_json::Value,
    },
    /// An approval rejected or timed out was asked again (`resume --step ID --retry`): every
    /// earlier vote is void and the new round needs fresh votes.
    ApprovalRoundOpened {
        /// Step id.
        step: String,
        /// The new round (the approval's attempt number).
        round: u32,
        /// Who asked for it.
        by: String,
        /// The voters whose votes are void.
        voided: Vec<String>,
    },
    /// The action's read-only probe is asked whether an unknown attempt took effect.
    StepProbing {
        /// Step id.
        step: String,
        /// The attempt whose outcome was lost.
        attempt: u32,
    },
    /// A step was skipped by an operator.
    StepSkipped {
        /// Step id.
        step: String,
        /// Who.
        by: String,
    },
    /// A decision on an approval step.
    ApprovalVoted {
        /// Step id.
        step: String,
        /// Who.
        by: String,
        /// Approve or reject.
        decision: Decision,
        /// Why, when said.
        comment: Option<String>,
        /// The signed decision (SPEC §5.9), when the run has allowed signers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<serde_json::Value>,
        /// The fingerprint of the key that signed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<String>,
        /// The workflow digest the vote was cast on (the signed one, for a signed vote): on a
        /// gate that has not passed, it counts only while the run has that digest (SPEC
        /// §5.8.7). Empty in journals written before votes named it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        digest: String,
    },
    /// An approval's timeout passed.
    ApprovalTimedOut {
        /// Step id.
        step: String,
    },
    /// `resume --allow-changed-workflow` goes on with another version of the workflow (SPEC
    /// §5.8.7): from here on the run executes `source`, whose digest is `to_digest`.
    WorkflowChanged {
        /// The digest the run had.
        from_digest: String,
        /// The digest it has now.
        to_digest: String,
        /// The new workflow text (the run's `--param` overrides apply to it).
        source: String,
        /// Steps added, removed, or changed in what they execute.
        changed_steps: Vec<String>,
        /// Who resumed with it.
        by: String,
        /// Their signed `change_workflow` statement, when the run has allowed signers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<serde_json::Value>,
    },
    /// The run waits for an operator.
    RunPaused {
        /// Why (as words in journals written before reasons were typed).
        #[serde(deserialize_with = "super::pause::read_reason")]
        reason: PauseReason,
    },
    /// An operator resumed the run.
    RunResumed {
        /// Who.
        by: String,
    },
    /// The run was cancelled: nothing new starts.
    RunCancelled {
        /// Who.
        by: String,
    },
    /// Rollback began.
    RollbackStarted {
        /// Who.
        by: String,
    },
    /// A compensation began.
    CompensationStarted {
        /// The step being undone.
        step: String,
    },
    /// A compensation finished.
    CompensationSucceeded {
        /// The step undone.
        step: String,
    },
    /// A compensation failed.
    CompensationFailed {
        /// The step that could not be undone.
        step: String,
        /// What went wrong.
        error: String,
        /// The resource no longer holds what drctl wrote: the rollback pauses for the operator
        /// instead of overwriting someone's change.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        conflict: bool,
    },
    /// A step changed something and has no compensation.
    StepNotUndone {
        /// Step id.
        step: String,
    },
    /// The projected recovery (elapsed + remaining critical path) passed the RTO objective.
    RtoAtRisk {
        /// The projection, in seconds from the clock's start.
        projected_seconds: f64,
        /// The objective, in seconds.
        objective_seconds: f64,
    },
    /// The RTO objective passed before the service was recovered.
    RtoBreached {
        /// The objective, in seconds.
        objective_seconds: f64,
    },
    /// The process driving the run signed the journal up to this entry (SPEC §5.10): a
    /// `journal_anchor` statement naming the entries before this one (`head`), in the
    /// namespace `drctl-journal`, with its key. Written in the same commit as the events
    /// before it, at every point where the run rests and at least every 100 commits: a
    /// journal cut short, or entries added by someone else, are found by `drctl verify`.
    JournalSigned {
        /// The signed anchor, as `identity::Signed` serializes it.
        signature: serde_json::Value,
    },
    /// The run reached a final status.
    RunFinished {
        /// The status.
        status: RunStatus,
    },
}

impl Event {
    /// Whether `event`, as journaled, is a [`Event::WorkflowChanged`]: read without decoding
    /// the entry (a run's journal is looked through for its last changed workflow whenever
    /// the run is read).
    pub fn is_workflow_changed(event: &serde_json::Value) -> bool {
        event["type"] == "workflow_changed"
    }

    /// The step the event concerns, if one.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step, .. }
            | Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepUnknown { step, .. }
            | Event::PreviousRecorded { step, .. }
            | Event::ApprovalRoundOpened { step, .. }
            | Event::StepProbing { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::ApprovalVoted { step, .. }
            | Event::ApprovalTimedOut { step }
            | Event::CompensationStarted { step }
            | Event::CompensationSucceeded { step }
            | Event::CompensationFailed { step, .. }
            | Event::StepNotUndone { step } => Some(step),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn a_journaled_workflow_change_is_told_without_decoding_it() {
        let change = Event::WorkflowChanged {
            from_digest: "v2:a".into(),
            to_digest: "v2:b".into(),
            source: "[workflow]".into(),
            changed_steps: vec![],
            by: "alice".into(),
            signature: None,
        };
        let stored = serde_json::to_value(&change).unwrap();
        assert!(Event::is_workflow_changed(&stored));
        let other = serde_json::to_value(Event::RollbackStarted { by: "bob".into() }).unwrap();
        assert!(!Event::is_workflow_changed(&other));
    }
}
