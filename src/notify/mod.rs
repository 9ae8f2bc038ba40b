//! Run events for people (SPEC §9a): a workflow's `[workflow] events = { url, on }` posts a
//! Slack-compatible message when an approval starts waiting, the run pauses, the RTO is at
//! risk, an attempt has used 80% of its timeout, and when the run is over. Each message says
//! what happened and what to do next, with the exact `drctl` command.
//!
//! An [`Announcer`] watches the events a driver journals (it is part of the driver's
//! observer) and hands messages to an [`Outbox`], which posts them on a thread of its own:
//! nothing here blocks the run or slows it. A notification is not a journaled event: `step_slow`
//! comes from a timer armed when an attempt starts and disarmed when it ends, nothing is
//! written to the store. The webhook may be `${env.NAME}`: it is read from the environment
//! when the driver starts and is never stored, shown or logged.

mod deliver;

pub use deliver::{Message, Outbox};

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};

use crate::dag::CompiledWorkflow;
use crate::engine::{Event, Machine};
use crate::store::{RunStatus, StepStatus};
use crate::workflow::{RunEventKind, Segment, format_duration, webhook_shape};

/// How much of an attempt's timeout passes before `step_slow` is sent.
const SLOW_SHARE: f64 = 0.8;

/// How long a process that drove a run waits, when it is done, for its last messages.
pub const EXIT_GRACE: Duration = Duration::from_millis(1500);

/// Sends the run events of one run that its workflow asks for.
pub struct Announcer {
    run_id: String,
    workflow: String,
    on: Vec<RunEventKind>,
    outbox: Outbox,
    /// `step_slow` timers of the attempts running, by (step, attempt).
    slow: HashMap<(String, u32), tokio::task::AbortHandle>,
}

impl Announcer {
    /// The announcer of run `run_id`, when `workflow` asks for run events and its webhook can
    /// be read now (else a warning says why none will be sent).
    pub fn for_run(workflow: &CompiledWorkflow, run_id: &str) -> Option<Self> {
        let events = workflow.events.as_ref()?;
        if events.on.is_empty() {
            return None;
        }
        let mut url = String::new();
        let mut secret = false;
        for segment in &events.url.segments {
            match segment {
                Segment::Literal(text) => url.push_str(text),
                Segment::Env(name) => {
                    let Some(value) = std::env::var(name).ok().filter(|v| !v.is_empty()) else {
                        warn!(
                            run_id,
                            "run events are not sent: {name} is not set (the events url reads ${{env.{name}}})"
                        );
                        return None;
                    };
                    url.push_str(&value);
                    secret = true;
                }
                // Refused by validation.
                Segment::Param(_) | Segment::StepOutput { .. } => return None,
            }
        }
        // Said without the URL: with `${env.NAME}` it is a secret, as written it may hold a
        // token.
        let shown = if secret {
            events.url.to_string()
        } else {
            origin(&url)
        };
        if let Err(why) = webhook_shape(&url) {
            warn!(run_id, webhook = %shown, "run events are not sent: the events url is not a webhook URL: {why}");
            return None;
        }
        let outbox = match Outbox::start(url, shown.clone()) {
            Ok(outbox) => outbox,
            Err(e) => {
                warn!(
                    run_id,
                    "run events are not sent: cannot start their delivery: {e}"
                );
                return None;
            }
        };
        info!(run_id, webhook = %shown, "run events are sent to the workflow's webhook");
        Some(Self {
            run_id: run_id.to_string(),
            workflow: workflow.name.clone(),
            on: events.on.clone(),
            outbox,
            slow: HashMap::new(),
        })
    }

    /// Where this run's messages go (to wait for the last ones before exiting).
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Looks at one journaled event of the run, `machine` being the run after it.
    pub fn observe(&mut self, event: &Event, at: DateTime<Utc>, machine: &Machine) {
        match event {
            Event::StepStarted { step, attempt } => {
                let Some(spec) = machine.workflow().step(step) else {
                    return;
                };
                if spec.is_approval() {
                    self.send(RunEventKind::ApprovalWaiting, || {
                        self.approval_waiting(step, machine)
                    });
                } else if let Some(timeout) = spec.timeout {
                    self.arm_slow(step, *attempt, timeout, at);
                }
            }
            Event::StepSucceeded { step, attempt, .. }
            | Event::StepFailed { step, attempt, .. }
            | Event::StepUnknown { step, attempt, .. } => {
                if let Some(timer) = self.slow.remove(&(step.clone(), *attempt)) {
                    timer.abort();
                }
            }
            Event::RunPaused { reason } => self.send(RunEventKind::RunPaused, || {
                let why = reason.describe(&self.run_id);
                let run = &self.run_id;
                json!({
                    "text": format!("drctl: run {run} of `{}` paused: {why}\nUndo everything with: drctl rollback {run}", self.workflow),
                    "reason": why,
                    "resume": format!("drctl resume {run}"),
                    "rollback": format!("drctl rollback {run}"),
                })
            }),
            Event::RtoAtRisk {
                projected_seconds,
                objective_seconds,
            } => self.send(RunEventKind::RtoAtRisk, || {
                json!({
                    "text": format!(
                        "drctl: run {} of `{}`: RTO AT RISK, recovery projected at {} against an objective of {}",
                        self.run_id, self.workflow, seconds(*projected_seconds), seconds(*objective_seconds)
                    ),
                    "projected_seconds": projected_seconds,
                    "objective_seconds": objective_seconds,
                    "breached": false,
                })
            }),
            Event::RtoBreached { objective_seconds } => {
                self.send(RunEventKind::RtoAtRisk, || {
                    json!({
                        "text": format!(
                            "drctl: run {} of `{}`: RTO BREACHED, the objective of {} has passed and the service is not recovered",
                            self.run_id, self.workflow, seconds(*objective_seconds)
                        ),
                        "objective_seconds": objective_seconds,
                        "breached": true,
                    })
                });
            }
            Event::RunFinished { status } => {
                self.send(RunEventKind::RunFinished, || {
                    self.run_finished(*status, at, machine)
                });
            }
            _ => {}
        }
    }

    /// Queues the message `body` builds, when the workflow asks for `kind`, with the fields
    /// every message has.
    fn send(&self, kind: RunEventKind, body: impl FnOnce() -> serde_json::Value) {
        if !self.on.contains(&kind) {
            return;
        }
        let mut body = body();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("event".into(), kind.as_str().into());
            fields.insert("run_id".into(), self.run_id.clone().into());
            fields.insert("workflow".into(), self.workflow.clone().into());
        }
        self.outbox.send(Message {
            event: kind.as_str(),
            body,
        });
    }

    fn approval_waiting(&self, step: &str, machine: &Machine) -> serde_json::Value {
        let run = &self.run_id;
        let approvers = machine
            .workflow()
            .approval(step)
            .map(crate::dag::ApprovalPolicy::approvers_shown)
            .unwrap_or_default();
        // A run with allowed signers takes signed votes only.
        let key = if machine.signers.is_some() {
            " --key PATH"
        } else {
            ""
        };
        let approve = format!("drctl approve {run} {step} --as NAME{key}");
        let reject = format!("drctl reject {run} {step} --as NAME{key} --comment TEXT");
        json!({
            "text": format!(
                "drctl: run {run} of `{}` waits for approval of `{step}` from {approvers}.\nApprove with: {approve}\nReject with: {reject}",
                self.workflow
            ),
            "step": step,
            "approvers": approvers,
            "approve": approve,
            "reject": reject,
        })
    }

    fn run_finished(
        &self,
        status: RunStatus,
        at: DateTime<Utc>,
        machine: &Machine,
    ) -> serde_json::Value {
        let workflow = machine.workflow();
        // Recovered when the step marked `recovered` succeeded, or the run did.
        let recovered_at = match workflow.recovered_step() {
            Some(i) if machine.steps[i].status == StepStatus::Succeeded => {
                machine.steps[i].finished_at
            }
            Some(_) => None,
            None => (status == RunStatus::Succeeded).then_some(at),
        };
        let rto = machine
            .clock_start
            .zip(recovered_at)
            .and_then(|(start, end)| (end - start).to_std().ok())
            .map(|d| d.as_secs_f64());
        let rpo = workflow
            .steps
            .iter()
            .zip(&machine.steps)
            .find(|(spec, _)| spec.measures_rpo)
            .and_then(|(_, state)| state.outputs.get("rpo_seconds"))
            .and_then(serde_json::Value::as_f64);
        let against = |achieved: Option<f64>, objective: Option<Duration>| {
            let achieved = achieved.map_or_else(|| "not measured".to_string(), seconds);
            match objective {
                Some(o) => format!("{achieved} (objective {})", format_duration(o)),
                None => achieved,
            }
        };
        json!({
            "text": format!(
                "drctl: run {} of `{}` {}. RTO {}; RPO {}",
                self.run_id,
                self.workflow,
                status.as_str(),
                against(rto, workflow.rto),
                against(rpo, workflow.rpo)
            ),
            "status": status.as_str(),
            "rto_seconds": rto,
            "rto_objective_seconds": workflow.rto.map(|d| d.as_secs_f64()),
            "rpo_seconds": rpo,
            "rpo_objective_seconds": workflow.rpo.map(|d| d.as_secs_f64()),
        })
    }

    /// Arms `step_slow` for an attempt that started at `at`: once 80% of `timeout` has passed,
    /// unless the attempt ended before.
    fn arm_slow(&mut self, step: &str, attempt: u32, timeout: Duration, at: DateTime<Utc>) {
        if !self.on.contains(&RunEventKind::StepSlow) {
            return;
        }
        // Only a driver on a runtime starts attempts; without one there is nothing to time.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let due = timeout.mul_f64(SLOW_SHARE);
        let passed = (Utc::now() - at).to_std().unwrap_or_default();
        let wait = due.saturating_sub(passed);
        let run = &self.run_id;
        let body = json!({
            "text": format!(
                "drctl: run {run} of `{}`: step `{step}` has used 80% of its timeout of {} on attempt {attempt} and is still running",
                self.workflow,
                format_duration(timeout)
            ),
            "event": RunEventKind::StepSlow.as_str(),
            "run_id": run,
            "workflow": self.workflow,
            "step": step,
            "attempt": attempt,
            "timeout_seconds": timeout.as_secs_f64(),
            "cancel": format!("drctl cancel {run}"),
        });
        let outbox = self.outbox.clone();
        let timer = runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            outbox.send(Message {
                event: RunEventKind::StepSlow.as_str(),
                body,
            });
        });
        if let Some(old) = self
            .slow
            .insert((step.to_string(), attempt), timer.abort_handle())
        {
            old.abort();
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        for (_, timer) in self.slow.drain() {
            timer.abort();
        }
    }
}

/// `https://host/…`: where a literal webhook goes, without the path that may hold its token.
fn origin(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    format!("{}/…", &url[..host_end])
}

fn seconds(s: f64) -> String {
    format_duration(Duration::from_secs_f64(s.max(0.0).round()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_webhook_is_shown_without_its_path() {
        assert_eq!(
            origin("https://hooks.example.com/services/T0/B0/secret"),
            "https://hooks.example.com/…"
        );
        assert_eq!(origin("http://127.0.0.1:9/x?y"), "http://127.0.0.1:9/…");
    }
}
