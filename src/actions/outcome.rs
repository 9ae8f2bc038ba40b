//! What running an action takes and gives: resolved parameters in, outputs or a classified
//! error out.

use std::path::PathBuf;
use std::time::Duration;

/// Outputs of a step: name to JSON value.
pub type Outputs = serde_json::Map<String, serde_json::Value>;

/// Parameters with every reference filled in: plain JSON, by parameter name.
pub type Resolved = serde_json::Map<String, serde_json::Value>;

/// A failed attempt: what went wrong and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// What went wrong, naming the resource.
    pub message: String,
    /// Throttling, 5xx, timeouts and connection errors are retryable; the rest are not.
    pub retryable: bool,
}

impl StepError {
    /// A failure that retrying will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that may pass on another attempt.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
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
