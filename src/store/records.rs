//! The records kept per run and per step: projections of the journal, kept in step with it by
//! the same atomic commit, so listing runs never replays journals.

use serde::{Deserialize, Serialize};

/// A run's status (SPEC §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are running or ready.
    Running,
    /// Only approvals are pending.
    AwaitingApproval,
    /// Waiting for an operator (`drctl resume`).
    Paused,
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed and the run stopped (`on_failure = "abort"`, or a failed rollback).
    Failed,
    /// Compensations are running.
    RollingBack,
    /// Every compensation ran.
    RolledBack,
    /// Stopped by `drctl cancel` or Ctrl-C; may be resumed or rolled back.
    Cancelled,
}

impl RunStatus {
    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::RollingBack => "rolling_back",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over for good: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::RolledBack
        )
    }

    /// Whether the run needs a driver now: running, waiting for an approval, or rolling back
    /// (not paused, cancelled or over, which wait for an operator).
    pub fn is_under_way(self) -> bool {
        matches!(
            self,
            RunStatus::Running | RunStatus::AwaitingApproval | RunStatus::RollingBack
        )
    }

    /// Whether the run blocks a new run of the same workflow (SPEC §5.7).
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            RunStatus::Running
                | RunStatus::AwaitingApproval
                | RunStatus::Paused
                | RunStatus::RollingBack
        )
    }
}

/// A step's status (SPEC §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt is running, or waits for its retry.
    Running,
    /// An approval waits for decisions.
    AwaitingApproval,
    /// Done.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Skipped by the operator.
    Skipped,
    /// Started, outcome lost in a crash.
    Unknown,
    /// Its compensation ran.
    RolledBack,
}

impl StepStatus {
    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::AwaitingApproval => "awaiting_approval",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Unknown => "unknown",
            StepStatus::RolledBack => "rolled_back",
        }
    }
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first.
    pub n: u32,
    /// When it started.
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, `timed_out`, `unknown`, or null while running.
    pub outcome: Option<String>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The run.
    pub run_id: String,
    /// The step id.
    pub step: String,
    /// Where it is.
    pub status: StepStatus,
    /// Every attempt.
    pub attempts: Vec<AttemptRecord>,
    /// Outputs, once succeeded.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// The last error.
    pub error: Option<String>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// The workflow name.
    pub workflow: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Where the run is.
    pub status: RunStatus,
    /// Who started it (`--as`, default `$USER`).
    pub initiator: String,
    /// Digest of the compiled workflow.
    pub digest: String,
    /// The workflow file as given. Its text when the run started is stored apart, once
    /// ([`super::Store::source`]), so a resume compiles the same thing.
    pub workflow_file: String,
    /// `--param` overrides, as `name=value`.
    pub overrides: Vec<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it reached a final or resting status.
    pub finished_at: Option<String>,
    /// Journal length.
    pub journal_len: u64,
    /// Hash of the last journal entry.
    pub last_hash: String,
    /// When the outage began (`--incident-start`), when given.
    #[serde(default)]
    pub incident_start: Option<String>,
    /// The process that last drove the run (its pid): when the run is unfinished and no live
    /// process drives it, that process was killed or crashed. Unknown in older stores.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Whether that process let go of the run on purpose with approvals still open
    /// (`--detach`): such a run waits for votes and `drctl resume`, it was not interrupted.
    #[serde(default)]
    pub detached: bool,
}
