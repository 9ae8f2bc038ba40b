//! A driven run's events in words, as a terminal shows them: one line per event, the closing
//! summary with the commands that go on, and the JSON form of an event for machines.

use crate::engine::{Decision, Event, Machine};
use crate::store::RunStatus;

/// An event as JSON lines show it: a pause's `reason` in words (with this run's commands),
/// and the reason as data beside it in `pause`.
pub fn json_event(event: &Event, run_id: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if let (Event::RunPaused { reason }, Some(fields)) = (event, value.as_object_mut()) {
        fields.insert(
            "pause".into(),
            serde_json::to_value(reason).unwrap_or_default(),
        );
        fields.insert("reason".into(), reason.describe(run_id).into());
    }
    value
}

/// The line a person reads for `event`, as the run stands in `machine` once it is applied;
/// `None` for events that are not shown.
#[allow(clippy::too_many_lines, reason = "one arm per event")]
pub fn event_line(event: &Event, machine: &Machine) -> Option<String> {
    let action = |step: &str| {
        machine
            .index(step)
            .map(|i| machine.workflow().steps[i].action.clone())
            .unwrap_or_default()
    };
    Some(match event {
        Event::RunStarted { .. } | Event::JournalSigned { .. } => return None,
        Event::StepStarted { step, attempt }
            if machine
                .workflow()
                .step(step)
                .is_some_and(crate::dag::Step::is_approval) =>
        {
            let approvers = machine
                .workflow()
                .approval(step)
                .map(crate::dag::ApprovalPolicy::approvers_shown)
                .unwrap_or_default();
            if *attempt > 1 {
                format!("{step}: still waiting for approval from {approvers}")
            } else {
                format!("{step}: waiting for approval from {approvers}")
            }
        }
        Event::StepStarted { step, attempt: 1 } => format!("{step}: started ({})", action(step)),
        Event::StepStarted { step, attempt } => format!("{step}: attempt {attempt} started"),
        Event::StepSucceeded {
            step, attempt: 0, ..
        } => format!("{step}: marked succeeded by the operator"),
        Event::StepSucceeded { step, .. } => format!("{step}: succeeded"),
        Event::StepFailed {
            step,
            attempt,
            error,
            retry_in_ms: Some(ms),
        } => format!(
            "{step}: attempt {attempt} failed: {error}; retrying in {}",
            crate::workflow::format_duration(std::time::Duration::from_millis(*ms))
        ),
        Event::StepFailed { step, error, .. } => format!("{step}: FAILED: {error}"),
        Event::StepUnknown {
            step,
            attempt,
            error: None,
        } => {
            format!("{step}: outcome of attempt {attempt} unknown (interrupted)")
        }
        Event::StepUnknown {
            step,
            attempt,
            error: Some(error),
        } => format!("{step}: outcome of attempt {attempt} unknown: {error}"),
        Event::StepProbing { step, attempt } => {
            format!("{step}: probing whether attempt {attempt} took effect")
        }
        Event::PreviousRecorded { step, .. } => {
            format!("{step}: recorded the value it replaces, for rollback")
        }
        Event::ApprovalRoundOpened {
            step, round, by, ..
        } => {
            format!("{step}: approval asked again by {by} (round {round}); earlier votes are void")
        }
        Event::StepSkipped { step, by } => format!("{step}: skipped by {by}"),
        Event::ApprovalVoted {
            step,
            by,
            decision,
            comment,
            fingerprint,
            ..
        } => {
            let verb = if *decision == Decision::Approve {
                "approved"
            } else {
                "rejected"
            };
            format!(
                "{step}: {verb} by {by}{}{}",
                fingerprint
                    .as_ref()
                    .map(|f| format!(", signed with {f}"))
                    .unwrap_or_default(),
                comment
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            )
        }
        Event::ApprovalTimedOut { step } => format!("{step}: approval timed out"),
        Event::RunPaused { reason } => format!("run paused: {}", reason.describe(&machine.run_id)),
        Event::WorkflowChanged {
            from_digest,
            to_digest,
            changed_steps,
            by,
            signature,
            ..
        } => format!(
            "workflow changed by {by}{}: digest {from_digest} -> {to_digest}; changed steps: {}",
            if signature.is_some() { " (signed)" } else { "" },
            if changed_steps.is_empty() {
                "none".to_string()
            } else {
                changed_steps.join(", ")
            }
        ),
        Event::RunResumed { by } => format!("run resumed by {by}"),
        Event::RunCancelled { by } => {
            format!("run cancelled by {by}: running steps finish, nothing new starts")
        }
        Event::RollbackStarted { by } => format!("rollback started by {by}"),
        Event::CompensationStarted { step } => format!("{step}: undoing"),
        Event::CompensationSucceeded { step } => format!("{step}: undone"),
        Event::CompensationFailed {
            step,
            error,
            conflict: true,
        } => format!("{step}: NOT UNDONE, changed since drctl wrote it: {error}"),
        Event::CompensationFailed { step, error, .. } => format!("{step}: UNDO FAILED: {error}"),
        Event::StepNotUndone { step } => format!("{step}: NOT UNDONE (it has no compensation)"),
        Event::RtoAtRisk {
            projected_seconds,
            objective_seconds,
        } => format!(
            "WARNING: RTO AT RISK: recovery projected at {} against an objective of {}",
            crate::workflow::format_duration(std::time::Duration::from_secs_f64(
                *projected_seconds
            )),
            crate::workflow::format_duration(std::time::Duration::from_secs_f64(
                *objective_seconds
            ))
        ),
        Event::RtoBreached { objective_seconds } => format!(
            "WARNING: RTO BREACHED: the objective of {} has passed and the service is not recovered",
            crate::workflow::format_duration(std::time::Duration::from_secs_f64(
                *objective_seconds
            ))
        ),
        Event::RunFinished { status } => format!("run {}", status.as_str()),
    })
}

/// The closing lines: where the run stands and what the operator can do next.
pub fn summary(run_id: &str, status: RunStatus, machine: &Machine) -> String {
    let mut out = format!("run {run_id} {}", status.as_str());
    match status {
        RunStatus::AwaitingApproval => {
            let waiting: Vec<String> = machine
                .workflow()
                .steps
                .iter()
                .zip(&machine.steps)
                .filter(|(_, s)| s.status == crate::store::StepStatus::AwaitingApproval)
                .map(|(spec, _)| spec.id.clone())
                .collect();
            // A run with allowed signers takes signed votes only.
            let key = if machine.signers.is_some() {
                " --key PATH"
            } else {
                ""
            };
            for step in waiting {
                out.push_str(&format!(
                    "\n  approve with: drctl approve {run_id} {step} --as NAME{key} [--comment TEXT]"
                ));
            }
            out.push_str(&format!("\n  then continue with: drctl resume {run_id}"));
        }
        RunStatus::Paused => {
            if let Some(reason) = &machine.paused {
                out.push_str(&format!("\n  {}", reason.describe(run_id)));
            }
        }
        RunStatus::Cancelled => out.push_str(&format!(
            "\n  continue with: drctl resume {run_id}   or undo with: drctl rollback {run_id}"
        )),
        RunStatus::RolledBack | RunStatus::Failed => {
            let not_undone: Vec<&str> = machine
                .workflow()
                .steps
                .iter()
                .zip(&machine.steps)
                .filter(|(_, s)| s.undo == crate::engine::Undo::NotUndone)
                .map(|(spec, _)| spec.id.as_str())
                .collect();
            if !not_undone.is_empty() {
                out.push_str(&format!(
                    "\n  not undone (no compensation): {}",
                    not_undone.join(", ")
                ));
            }
        }
        _ => {}
    }
    out
}
