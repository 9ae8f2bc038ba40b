//! The workflow as read from the file: every field optional and spanned, nothing checked
//! beyond its TOML type. The compiler turns this into a `dag::CompiledWorkflow`; raw types
//! never reach the engine.

use std::time::Duration;

use serde::Serialize;

use super::node::Table;
use super::template::Template;
use crate::diagnostic::Span;

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it is in the source.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `value` found at `span`.
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

/// What kind of procedure a workflow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowKind {
    /// Move service to a standby.
    Failover,
    /// Restore data from a backup or a point in time.
    Restore,
    /// Undo a failover or a change (a failback, a bad deployment).
    Rollback,
}

impl WorkflowKind {
    /// The names as written in TOML.
    pub const NAMES: &'static [&'static str] = &["failover", "restore", "rollback"];

    /// Parses the TOML name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "failover" => Some(Self::Failover),
            "restore" => Some(Self::Restore),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }

    /// The TOML name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What a run does when a step fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Wait for the operator to retry, skip or roll back.
    #[default]
    Pause,
    /// Undo what was done, at once.
    Rollback,
    /// Stop and leave everything as it is.
    Abort,
}

impl OnFailure {
    /// The names as written in TOML.
    pub const NAMES: &'static [&'static str] = &["pause", "rollback", "abort"];

    /// Parses the TOML name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "pause" => Some(Self::Pause),
            "rollback" => Some(Self::Rollback),
            "abort" => Some(Self::Abort),
            _ => None,
        }
    }

    /// The TOML name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A run event a workflow may send to people (`[workflow] events.on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEventKind {
    /// An approval step started waiting for votes.
    ApprovalWaiting,
    /// The run paused for an operator.
    RunPaused,
    /// The projected recovery passed the RTO objective (or the objective passed).
    RtoAtRisk,
    /// An attempt used 80% of its step's timeout and is still running.
    StepSlow,
    /// The run is over: succeeded, failed or rolled back.
    RunFinished,
}

impl RunEventKind {
    /// The names as written in TOML.
    pub const NAMES: &'static [&'static str] = &[
        "approval_waiting",
        "run_paused",
        "rto_at_risk",
        "step_slow",
        "run_finished",
    ];

    /// Every kind, in the order of [`RunEventKind::NAMES`].
    pub const ALL: &'static [RunEventKind] = &[
        Self::ApprovalWaiting,
        Self::RunPaused,
        Self::RtoAtRisk,
        Self::StepSlow,
        Self::RunFinished,
    ];

    /// Parses the TOML name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }

    /// The TOML name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// `[workflow] events = { url, on }`: where run events are posted, and which.
#[derive(Debug, Clone)]
pub struct RawEvents {
    /// The webhook: literal text and `${env.NAME}` only, checked.
    pub url: Spanned<Template>,
    /// The events to send, each once; every kind when `on` is not given.
    pub on: Vec<RunEventKind>,
}

/// The `[workflow]` table.
#[derive(Debug, Clone, Default)]
pub struct RawHeader {
    /// Where the table starts (for "missing key" diagnostics).
    pub span: Span,
    /// `name`.
    pub name: Option<Spanned<String>>,
    /// `kind`.
    pub kind: Option<Spanned<WorkflowKind>>,
    /// `description`.
    pub description: Option<String>,
    /// `rto` objective.
    pub rto: Option<Spanned<Duration>>,
    /// `rpo` objective.
    pub rpo: Option<Spanned<Duration>>,
    /// `concurrency`.
    pub concurrency: Option<Spanned<u32>>,
    /// `on_failure`.
    pub on_failure: Option<Spanned<OnFailure>>,
    /// `allowed_signers`: the OpenSSH allowed-signers file, relative to the workflow.
    pub allowed_signers: Option<Spanned<String>>,
    /// `events`: run events posted to a webhook.
    pub events: Option<RawEvents>,
}

/// A `retry` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRetry {
    /// Total attempts, the first included.
    pub attempts: u32,
    /// First backoff delay.
    pub initial: Duration,
    /// Largest backoff delay.
    pub max: Duration,
}

/// The `[defaults]` table.
#[derive(Debug, Clone, Default)]
pub struct RawDefaults {
    /// Per-attempt timeout for every step.
    pub timeout: Option<Duration>,
    /// Retry policy for every step.
    pub retry: Option<RawRetry>,
}

/// A `rollback = { action, with }` compensation.
#[derive(Debug, Clone)]
pub struct RawRollback {
    /// The whole inline table.
    pub span: Span,
    /// The compensating action.
    pub action: Option<Spanned<String>>,
    /// Its parameters.
    pub with: Option<Spanned<Table>>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Clone, Default)]
pub struct RawStep {
    /// The step's header line (`[[steps]]` or the inline table).
    pub span: Span,
    /// `id`.
    pub id: Option<Spanned<String>>,
    /// `action`.
    pub action: Option<Spanned<String>>,
    /// `with`, kept as a raw table: its schema belongs to the action.
    pub with: Option<Spanned<Table>>,
    /// `needs`.
    pub needs: Vec<Spanned<String>>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retry`.
    pub retry: Option<RawRetry>,
    /// `rollback`.
    pub rollback: Option<RawRollback>,
    /// `idempotent`.
    pub idempotent: Option<bool>,
    /// `estimate`.
    pub estimate: Option<Duration>,
    /// Where `marks = "recovered"` is written, when it is.
    pub marks_recovered: Option<Span>,
    /// Where `measures = "rpo"` is written, when it is.
    pub measures_rpo: Option<Span>,
}

/// A `[params]` entry: its name and default value.
#[derive(Debug, Clone)]
pub struct RawParam {
    /// The parameter's name and where it is declared.
    pub name: Spanned<String>,
    /// Its default value.
    pub value: Spanned<ParamValue>,
}

/// A workflow parameter's value: a scalar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Integer(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A whole workflow file as read.
#[derive(Debug, Clone, Default)]
pub struct RawWorkflow {
    /// `[workflow]`.
    pub header: RawHeader,
    /// `[params]`, in source order.
    pub params: Vec<RawParam>,
    /// `[defaults]`.
    pub defaults: RawDefaults,
    /// `[[steps]]`, in source order.
    pub steps: Vec<RawStep>,
}
