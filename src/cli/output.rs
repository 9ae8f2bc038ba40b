//! What a driven run prints: one timestamped line per event for people, or JSON lines for
//! machines. The engine hands events over; only this module writes them.

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::ValueEnum;

use crate::dag::Voter;
use crate::engine::{Decision, Event, Machine, Observer};
use crate::store::RunStatus;
use crate::time::rfc3339;

/// Writes `text` to stdout and flushes it. A reader that went away (a closed pipe) is not an
/// error of the command: the rest of the output is dropped quietly and the command goes on to
/// its own end and exit code. Rust ignores `SIGPIPE`, so `print!` would panic there instead.
pub(crate) fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::warn!("cannot write to standard output: {e}");
    }
}

/// Output format of commands that drive a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// Timestamped lines.
    Text,
    /// One JSON object per event.
    Json,
}

/// An event as JSON lines show it: a pause's `reason` in words (with this run's commands),
/// and the reason as data beside it in `pause`.
fn json_event(event: &Event, run_id: &str) -> serde_json::Value {
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

/// The observer that prints events of run `run_id`. On a terminal, a live line under the
/// events shows the elapsed time and what is running, done and waiting.
pub fn printer(
    run_id: String,
    format: RunFormat,
    live: Option<std::sync::Arc<LiveView>>,
) -> Observer {
    Box::new(
        move |event: &Event, at: DateTime<Utc>, machine: &Machine<'_>| {
            let text = match format {
                RunFormat::Json => Some(
                    serde_json::json!({ "run_id": run_id, "at": rfc3339(at), "event": json_event(event, &run_id) })
                        .to_string(),
                ),
                RunFormat::Text => {
                    line(event, machine).map(|t| format!("{}  {t}", at.format("%H:%M:%S")))
                }
            };
            match (&live, text) {
                (Some(view), Some(text)) => view.bar.println(text),
                (None, Some(text)) => write_stdout(&format!("{text}\n")),
                _ => {}
            }
            if let Some(view) = &live {
                view.update(machine);
                if let Event::StepStarted { step, attempt: 1 } = event {
                    view.offer_approval(step, machine);
                }
            }
        },
    )
}

/// Who sits at the terminal and where their decisions go.
pub type Offer = (
    String,
    tokio::sync::mpsc::Sender<crate::engine::ControlRequest>,
);

/// The live line shown on a terminal while a run is driven, and the offer to approve there.
pub struct LiveView {
    bar: indicatif::ProgressBar,
    offer: Option<Offer>,
}

impl LiveView {
    /// A live line on stdout; with `offer`, approvals the person at the keyboard may give are
    /// offered there.
    pub fn new(offer: Option<Offer>) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        super::logging::around_live_view(Some(bar.clone()));
        Self { bar, offer }
    }

    /// Redraws the live line from the run's state (the RTO figures move with the clock).
    pub fn update(&self, machine: &Machine<'_>) {
        use crate::store::StepStatus;
        let ids = |wanted: StepStatus| -> Vec<&str> {
            machine
                .workflow()
                .steps
                .iter()
                .zip(&machine.steps)
                .filter(|(_, s)| s.status == wanted)
                .map(|(spec, _)| spec.id.as_str())
                .collect()
        };
        let done = machine
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
            .count();
        let mut msg = String::new();
        if let (Some(p), Some(objective)) = (
            machine.projection(chrono::Utc::now()),
            machine.workflow().rto,
        ) && !machine.recovered()
        {
            let f = crate::workflow::format_duration;
            let secs = |d: std::time::Duration| std::time::Duration::from_secs(d.as_secs());
            let flag = if p.breached() {
                "  BREACHED"
            } else if p.at_risk() {
                "  AT RISK"
            } else {
                ""
            };
            msg.push_str(&format!(
                "RTO {} / {} projected {}{flag}  |  ",
                f(secs(p.elapsed)),
                f(objective),
                f(secs(p.projected))
            ));
        }
        msg.push_str(&format!(
            "{}  done {done}/{}",
            machine.status().as_str(),
            machine.steps.len()
        ));
        let running = ids(StepStatus::Running);
        if !running.is_empty() {
            msg.push_str(&format!("  running: {}", running.join(", ")));
        }
        let waiting = ids(StepStatus::AwaitingApproval);
        if !waiting.is_empty() {
            msg.push_str(&format!("  awaiting approval: {}", waiting.join(", ")));
        }
        self.bar.set_message(msg);
    }

    /// When the person at this terminal may approve `step`, asks them.
    fn offer_approval(&self, step: &str, machine: &Machine<'_>) {
        let Some((me, control)) = &self.offer else {
            return;
        };
        let Some(i) = machine.index(step) else { return };
        let Some(policy) = machine.workflow().steps[i].approval() else {
            return;
        };
        let voter = Voter {
            name: me,
            key: None,
        };
        let initiator = Voter {
            name: &machine.initiator,
            key: None,
        };
        if policy.may_vote(voter, initiator).is_err() {
            return;
        }
        self.bar.println(format!("approve `{step}` now as {me}? [y = approve, n = reject; or decide from another terminal]"));
        let (me, control, step) = (me.clone(), control.clone(), step.to_string());
        std::thread::spawn(move || {
            let mut answer = String::new();
            if std::io::stdin().read_line(&mut answer).is_err() {
                return;
            }
            let decision = match answer.trim() {
                "y" | "yes" => Decision::Approve,
                "n" | "no" => Decision::Reject,
                _ => return,
            };
            let comment = Some("decided at the terminal driving the run".to_string());
            let (reply, _) = tokio::sync::oneshot::channel();
            let input = crate::engine::Input::Vote {
                step,
                by: me,
                decision,
                comment,
            };
            let _ = control.blocking_send(crate::engine::ControlRequest { input, reply });
        });
    }

    /// Removes the live line.
    pub fn finish(&self) {
        super::logging::around_live_view(None);
        self.bar.finish_and_clear();
    }
}

#[allow(clippy::too_many_lines, reason = "one arm per event")]
fn line(event: &Event, machine: &Machine<'_>) -> Option<String> {
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

/// The exit code of a run that rests with `status`.
pub fn exit_code(status: RunStatus) -> u8 {
    super::exit::of_status(status)
}

/// The closing lines: where the run stands and what the operator can do next.
pub fn summary(run_id: &str, status: RunStatus, machine: &Machine<'_>) -> String {
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
