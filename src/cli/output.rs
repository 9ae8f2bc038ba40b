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

/// The observer that prints events of run `run_id`. On a terminal, a live line under the
/// events shows the elapsed time and what is running, done and waiting.
pub fn printer(
    run_id: String,
    format: RunFormat,
    live: Option<std::sync::Arc<LiveView>>,
) -> Observer {
    Box::new(move |event: &Event, at: DateTime<Utc>, machine: &Machine| {
        let text = match format {
                RunFormat::Json => Some(
                    serde_json::json!({ "run_id": run_id, "at": rfc3339(at), "event": crate::view::json_event(event, &run_id) })
                        .to_string(),
                ),
                RunFormat::Text => {
                    crate::view::event_line(event, machine).map(|t| format!("{}  {t}", at.format("%H:%M:%S")))
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
    })
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
    pub fn update(&self, machine: &Machine) {
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
    fn offer_approval(&self, step: &str, machine: &Machine) {
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

/// The exit code of a run that rests with `status`.
pub fn exit_code(status: RunStatus) -> u8 {
    super::exit::of_status(status)
}

pub use crate::view::summary;
