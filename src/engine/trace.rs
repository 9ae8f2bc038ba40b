//! What the driver logs about a run as it goes (SPEC §9a): each journaled event once, in the
//! run's span, at `info` (a failed step is the run's business, not the program's: the person
//! at the terminal sees it in the run's own lines, so it does not warn). These are `tracing` events for the subscriber the
//! command line sets up; the engine writes nothing itself. Everything here comes from the
//! journal, where secrets are already scrubbed.

use tracing::{Span, debug, info};

use super::event::{Decision, Event};

/// Logs `event` of the run whose span is `run`.
pub(super) fn event(run: &Span, event: &Event) {
    match event {
        Event::RunStarted {
            mode, initiator, ..
        } => info!(parent: run, mode = %mode, initiator = %initiator, "run started"),
        Event::StepStarted { step, attempt } => {
            info!(parent: run, step = %step, attempt, "step started");
        }
        Event::JournalSigned { .. } => debug!(parent: run, "journal signed by this driver"),
        Event::StepSucceeded { step, attempt, .. } => {
            info!(parent: run, step = %step, attempt, "step succeeded");
        }
        Event::StepFailed {
            step,
            attempt,
            error,
            retry_in_ms: Some(ms),
        } => {
            info!(parent: run, step = %step, attempt, error = %error, retry_in_ms = ms, "attempt failed; retrying");
        }
        Event::StepFailed {
            step,
            attempt,
            error,
            retry_in_ms: None,
        } => info!(parent: run, step = %step, attempt, error = %error, "step failed"),
        Event::StepUnknown {
            step,
            attempt,
            error,
        } => info!(
            parent: run,
            step = %step,
            attempt,
            error = error.as_deref().unwrap_or("interrupted"),
            "outcome of the attempt unknown"
        ),
        Event::StepProbing { step, attempt } => {
            info!(parent: run, step = %step, attempt, "probing whether the attempt took effect");
        }
        Event::PreviousRecorded { step, attempt, .. } => {
            debug!(parent: run, step = %step, attempt, "recorded the value it replaces");
        }
        Event::ApprovalRoundOpened {
            step, round, by, ..
        } => info!(parent: run, step = %step, round, by = %by, "approval round opened"),
        Event::StepSkipped { step, by } => {
            info!(parent: run, step = %step, by = %by, "step skipped");
        }
        Event::ApprovalVoted {
            step, by, decision, ..
        } => {
            let decision = if *decision == Decision::Approve {
                "approve"
            } else {
                "reject"
            };
            info!(parent: run, step = %step, by = %by, decision, "approval vote");
        }
        Event::ApprovalTimedOut { step } => info!(parent: run, step = %step, "approval timed out"),
        Event::RunPaused { reason } => info!(parent: run, reason = ?reason, "run paused"),
        Event::WorkflowChanged {
            from_digest,
            to_digest,
            changed_steps,
            by,
            ..
        } => info!(
            parent: run,
            from = %from_digest,
            to = %to_digest,
            changed_steps = %changed_steps.join(","),
            by = %by,
            "workflow changed"
        ),
        Event::RunResumed { by } => info!(parent: run, by = %by, "run resumed"),
        Event::RunCancelled { by } => info!(parent: run, by = %by, "run cancelled"),
        Event::RollbackStarted { by } => info!(parent: run, by = %by, "rollback started"),
        Event::CompensationStarted { step } => info!(parent: run, step = %step, "undoing"),
        Event::CompensationSucceeded { step } => info!(parent: run, step = %step, "undone"),
        Event::CompensationFailed {
            step,
            error,
            conflict,
        } => info!(parent: run, step = %step, error = %error, conflict, "undo failed"),
        Event::StepNotUndone { step } => {
            info!(parent: run, step = %step, "not undone: no compensation");
        }
        Event::RtoAtRisk {
            projected_seconds,
            objective_seconds,
        } => info!(parent: run, projected_seconds, objective_seconds, "RTO at risk"),
        Event::RtoBreached { objective_seconds } => {
            info!(parent: run, objective_seconds, "RTO breached");
        }
        Event::RunFinished { status } => {
            info!(parent: run, status = status.as_str(), "run finished");
        }
    }
}
