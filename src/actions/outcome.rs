//! What running an action takes and gives: resolved parameters in, outputs or a classified
//! error out.

use std::path::PathBuf;
use std::time::Duration;

use super::LiveState;

/// Outputs of a step: name to JSON value.
pub type Outputs = serde_json::Map<String, serde_json::Value>;

/// Parameters with every reference filled in: plain JSON, by parameter name.
pub type Resolved = serde_json::Map<String, serde_json::Value>;

/// What a failed attempt tells about its effect on the world (SPEC §5.4). It decides whether
/// the step may be tried again: only an attempt proved to have changed nothing is retried
/// blindly; one that may have acted is retried only when the step is idempotent, and otherwise
/// goes to the probe and then the operator, exactly as a crash does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Proved to have had no effect (throttled, refused before the request was sent, a 4xx
    /// that rejects the request, a check that did not pass yet): another attempt is safe.
    NoEffect,
    /// Retrying will not help (validation, access denied, not found, a command that exited
    /// with an error). The step fails.
    Fatal,
    /// It may or may not have taken effect: the attempt's timeout passed, the connection broke
    /// after the request was sent, a 5xx or an unreadable answer to a call that changes
    /// something.
    Ambiguous,
    /// An undo found the resource no longer holding what drctl wrote: someone changed it
    /// since. The rollback stops and shows both values rather than overwrite theirs.
    Conflict,
    /// This build of drctl has no such action: nothing was run. The run pauses for an
    /// operator whatever its `on_failure` (a build mismatch is no reason to roll back).
    Missing,
}

/// A failed attempt: what went wrong, and what that says about its effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// What went wrong, naming the resource.
    pub message: String,
    /// Whether it may have taken effect.
    pub failure: Failure,
}

impl StepError {
    /// A failure that retrying will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(message, Failure::Fatal)
    }

    /// A failure proved to have changed nothing: another attempt may pass.
    pub fn no_effect(message: impl Into<String>) -> Self {
        Self::new(message, Failure::NoEffect)
    }

    /// An attempt that may have taken effect: retried only when the step is idempotent.
    pub fn ambiguous(message: impl Into<String>) -> Self {
        Self::new(message, Failure::Ambiguous)
    }

    /// An undo that found someone else's value where drctl's should be.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(message, Failure::Conflict)
    }

    /// A failure of kind `failure`.
    pub fn new(message: impl Into<String>, failure: Failure) -> Self {
        Self {
            message: message.into(),
            failure,
        }
    }

    /// Whether another attempt is safe whatever the step is (the attempt changed nothing).
    pub fn had_no_effect(&self) -> bool {
        self.failure == Failure::NoEffect
    }
}

/// The edge between the AWS layer and the actions: a failed call becomes a step error of the
/// same kind, with the same message.
impl From<crate::aws::CallError> for StepError {
    fn from(err: crate::aws::CallError) -> Self {
        use crate::aws::CallError;
        match err {
            CallError::NoEffect(message) => Self::no_effect(message),
            CallError::Ambiguous(message) => Self::ambiguous(message),
            CallError::Fatal(message) => Self::fatal(message),
        }
    }
}

/// What a read-only probe found about an attempt whose outcome was lost in a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The change happened: the step succeeded, with these outputs.
    TookEffect(Outputs),
    /// It did not happen: running the step again is safe.
    DidNot,
    /// The probe cannot tell; the operator decides.
    Undecided(String),
}

/// The finding of a probe whose lookup failed (no clients, a failed call) is
/// [`Probe::Undecided`], saying why: the probe could not look, so it cannot tell.
pub(super) fn probe_or_undecided(found: Result<Probe, StepError>) -> Probe {
    found.unwrap_or_else(|e| Probe::Undecided(e.message))
}

/// The live value a failed lookup (no clients, a failed call) shows in the plan is
/// [`LiveState::Unavailable`], saying why.
pub(super) fn live_or_unavailable(lookup: Result<String, StepError>) -> LiveState {
    match lookup {
        Ok(now) => LiveState::Current(now),
        Err(e) => LiveState::Unavailable(e.message),
    }
}

/// What an executing action may know about where it runs.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// Relative paths (a shell step's `cwd`, `argv[0]` like `./notify.sh`) are taken from
    /// here: the directory of the workflow file.
    pub base_dir: PathBuf,
    /// The attempt's timeout, when the step has one (the driver enforces it; actions that
    /// poll use it to size their polling).
    pub timeout: Option<Duration>,
    /// AWS configuration and clients.
    pub aws: std::sync::Arc<crate::aws::AwsContext>,
    /// When the outage began (`--incident-start`, else the run's start): RPO of restores is
    /// measured from here.
    pub incident_start: chrono::DateTime<chrono::Utc>,
    /// What this step replaced, as first recorded by an earlier attempt (SPEC §5.8.3): a
    /// re-run keeps it instead of reading its own earlier write, and an undo restores it.
    pub previous: Option<serde_json::Value>,
    /// Where [`ExecContext::record_previous`] journals; `None` outside a driven run.
    pub remember: Option<Remember>,
    /// How a shell step's processes are started and which attempt they belong to.
    pub processes: super::processes::StepProcesses,
}

/// A self-undoing action's request to journal the value it is about to replace.
#[derive(Debug)]
pub struct PreviousRequest {
    /// Step id.
    pub step: String,
    /// The attempt.
    pub attempt: u32,
    /// The value read.
    pub previous: serde_json::Value,
    /// Answered once the value is durable, or with why it was not recorded.
    pub reply: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The way from a running attempt back to the driver's journal.
#[derive(Debug, Clone)]
pub struct Remember {
    /// Step id.
    pub step: String,
    /// The attempt.
    pub attempt: u32,
    /// The driver's queue.
    pub tx: tokio::sync::mpsc::UnboundedSender<PreviousRequest>,
}

impl ExecContext {
    /// Makes `previous`, the value the action is about to replace, durable in the run's
    /// journal, and returns once it is. An action calls it before its change, and only when
    /// [`ExecContext::previous`] is `None` (the first value is kept across attempts). When it
    /// fails, nothing was changed.
    pub async fn record_previous(&self, previous: &serde_json::Value) -> Result<(), StepError> {
        let Some(remember) = &self.remember else {
            return Ok(());
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = PreviousRequest {
            step: remember.step.clone(),
            attempt: remember.attempt,
            previous: previous.clone(),
            reply,
        };
        let refused = |why: &str| {
            StepError::no_effect(format!(
                "the value to restore on rollback could not be recorded ({why}); nothing was changed"
            ))
        };
        if remember.tx.send(request).is_err() {
            return Err(refused("the run is no longer driven"));
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(refused(&why)),
            Err(_) => Err(refused("the run is no longer driven")),
        }
    }
}

/// What a self-undoing step replaced, as first recorded (SPEC §5.8.3): journaled by an earlier
/// attempt, else `now()` (the value read before changing anything), journaled before the
/// change. A re-run keeps the first value: it must not take drctl's own earlier write for what
/// was there before.
pub(super) async fn replaced(
    ctx: &ExecContext,
    now: impl FnOnce() -> serde_json::Value,
) -> Result<serde_json::Value, StepError> {
    if let Some(recorded) = journaled(ctx) {
        return Ok(recorded);
    }
    let value = now();
    ctx.record_previous(&serde_json::json!({ "previous": value }))
        .await?;
    Ok(value)
}

/// What the step journaled as replaced ([`replaced`]), if an attempt got that far. `None`
/// means no attempt did, so none sent its change.
pub(super) fn journaled(ctx: &ExecContext) -> Option<serde_json::Value> {
    ctx.previous.as_ref().map(|p| p["previous"].clone())
}

/// Reads an integer parameter that may come from a step output, known only now: absent is
/// `None`; an integer written as a string (`"6"`) is read; anything else, or a value outside
/// `0..=i32::MAX` (what AWS counts and sizes take), fails the step without repeating it.
pub(super) fn checked_count(args: &Resolved, name: &str) -> Result<Option<i32>, StepError> {
    let Some(value) = args.get(name) else {
        return Ok(None);
    };
    let number = match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    number
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| {
            StepError::fatal(format!(
                "`{name}` is not a whole number from 0 to {}",
                i32::MAX
            ))
        })
}

/// Reads a string parameter.
pub fn text<'a>(args: &'a Resolved, name: &str) -> Option<&'a str> {
    args.get(name).and_then(serde_json::Value::as_str)
}

/// Reads a duration parameter.
pub fn duration(args: &Resolved, name: &str) -> Option<Duration> {
    text(args, name).and_then(|t| crate::workflow::parse_duration(t).ok())
}

/// Reads a duration parameter that may come from a step output or the environment, known
/// only now: absent is `None`; an invalid value (a bad or over-long duration) fails the step.
/// The message never repeats the value: it may be a secret from `${env.NAME}`.
pub fn checked_duration(args: &Resolved, name: &str) -> Result<Option<Duration>, StepError> {
    let Some(value) = args.get(name) else {
        return Ok(None);
    };
    value
        .as_str()
        .and_then(|t| crate::workflow::parse_duration(t).ok())
        .map(Some)
        .ok_or_else(|| {
            StepError::fatal(format!(
                "`{name}` is not a valid duration: durations look like `90s`, `15m` or `1h30m`, and are limited to 30 days (720h)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::CallError;

    #[test]
    fn an_aws_failure_keeps_its_kind_and_message_as_a_step_error() {
        let cases = [
            (CallError::NoEffect("throttled".into()), Failure::NoEffect),
            (CallError::Ambiguous("timed out".into()), Failure::Ambiguous),
            (CallError::Fatal("access denied".into()), Failure::Fatal),
        ];
        for (call, failure) in cases {
            let message = call.to_string();
            assert_eq!(StepError::from(call), StepError::new(message, failure));
        }
    }
}
