//! A call of a step's action, run as a task of its own: an attempt, a probe or an undo. Its
//! result, scrubbed of every secret of the run, goes back to the driver as an input.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::actions::{Action, ExecContext, Failure, Outputs, Probe, Resolved, StepError};
use crate::engine::machine::Input;
use crate::engine::secrets::Redactor;

/// What a task does with a step's action.
#[derive(Debug, Clone, Copy)]
pub(super) enum Call {
    /// Runs an attempt.
    Execute {
        /// The attempt.
        attempt: u32,
    },
    /// Asks whether a lost attempt took effect.
    Probe,
    /// Undoes the step.
    Compensate,
}

/// Everything a spawned call needs, owned; its result goes back through `tx`.
pub(super) struct Task {
    pub(super) tx: mpsc::UnboundedSender<Input>,
    pub(super) step: String,
    pub(super) action: Arc<dyn Action>,
    /// No declared compensation: the action undoes itself from its parameters and outputs.
    pub(super) undo_itself: bool,
    pub(super) own: Outputs,
    pub(super) timeout: Option<std::time::Duration>,
    pub(super) ctx: ExecContext,
    /// The run's: a step is scrubbed of every secret of the run, not only those it names.
    pub(super) redactor: Arc<Redactor>,
}

impl Task {
    /// Runs an attempt. Secrets never leave the task: not in outputs, not in errors.
    pub(super) async fn execute(self, attempt: u32, resolved: Result<Resolved, StepError>) {
        let result = match &resolved {
            Err(e) => Err(e.clone()),
            Ok(args) => run_with_timeout(self.action.as_ref(), args, &self.ctx, self.timeout).await,
        };
        let result = result
            .map(|o| self.redactor.scrub_outputs(o))
            .map_err(|e| (self.redactor.scrub(&e.message), e.failure));
        match &result {
            Ok(outputs) => debug!(
                outputs = %serde_json::Value::Object(outputs.clone()),
                "attempt succeeded"
            ),
            Err((error, failure)) => {
                info!(error = %error, failure = %failure_name(*failure), "attempt failed");
            }
        }
        let _ = self.tx.send(Input::Finished {
            step: self.step,
            attempt,
            result,
        });
    }

    /// Asks whether a lost attempt took effect, within the step's timeout (5 minutes without).
    pub(super) async fn probe(self, resolved: Result<Resolved, StepError>) {
        let probe = match resolved {
            Err(e) => Probe::Undecided(e.message),
            Ok(args) => {
                let limit = self
                    .ctx
                    .timeout
                    .unwrap_or(std::time::Duration::from_mins(5));
                tokio::time::timeout(limit, self.action.probe(&args, &self.ctx))
                    .await
                    .unwrap_or_else(|_| Probe::Undecided("the probe timed out".into()))
            }
        };
        let probe = match probe {
            Probe::TookEffect(o) => Probe::TookEffect(self.redactor.scrub_outputs(o)),
            Probe::Undecided(why) => Probe::Undecided(self.redactor.scrub(&why)),
            Probe::DidNot => Probe::DidNot,
        };
        match &probe {
            Probe::TookEffect(outputs) => info!(
                outputs = %serde_json::Value::Object(outputs.clone()),
                "probe: the attempt took effect"
            ),
            Probe::DidNot => info!("probe: the attempt had no effect"),
            Probe::Undecided(why) => info!(why = %why, "probe: cannot tell"),
        }
        let _ = self.tx.send(Input::Probed {
            step: self.step,
            probe,
        });
    }

    /// Undoes the step: the action's own undo, or the declared compensation.
    pub(super) async fn compensate(self, resolved: Result<Resolved, StepError>) {
        let result = match &resolved {
            Err(e) => Err(e.clone()),
            Ok(args) if self.undo_itself => self.action.undo(args, &self.own, &self.ctx).await,
            Ok(args) => run_with_timeout(self.action.as_ref(), args, &self.ctx, self.timeout)
                .await
                .map(|_| ()),
        };
        let result = result.map_err(|e| (self.redactor.scrub(&e.message), e.failure));
        match &result {
            Ok(()) => info!("undone"),
            Err((error, failure)) => {
                info!(error = %error, failure = %failure_name(*failure), "undo failed");
            }
        }
        let _ = self.tx.send(Input::CompensationFinished {
            step: self.step,
            result,
        });
    }
}

/// The name of a failure in logs, as the journal spells it (`no_effect`, `ambiguous`...).
fn failure_name(failure: Failure) -> String {
    serde_json::to_value(failure)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

async fn run_with_timeout(
    action: &dyn Action,
    args: &Resolved,
    ctx: &ExecContext,
    timeout: Option<std::time::Duration>,
) -> Result<Outputs, StepError> {
    let future = action.execute(args, ctx);
    match timeout {
        // The attempt may have acted before its time ran out: ambiguous, never proof of no
        // effect.
        Some(t) => tokio::time::timeout(t, future).await.unwrap_or_else(|_| {
            Err(StepError::ambiguous(format!(
                "timed out after {}",
                crate::workflow::format_duration(t)
            )))
        }),
        None => future.await,
    }
}
