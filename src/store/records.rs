//! The records kept per run and per step: projections of the journal, kept in step with it by
//! the same atomic commit, so listing runs never replays journals.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dag::Override;

/// How a run was started: `drctl run` or `drctl drill` (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// A real recovery.
    Run,
    /// A rehearsal.
    Drill,
}

impl RunMode {
    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Run => "run",
            RunMode::Drill => "drill",
        }
    }
}

impl std::fmt::Display for RunMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "run" => Ok(RunMode::Run),
            "drill" => Ok(RunMode::Drill),
            other => Err(format!("`{other}` is not a run mode (run or drill)")),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// It did what it was asked.
    Succeeded,
    /// It failed (its time running out included).
    Failed,
    /// Its driver died before it was known.
    Unknown,
}

impl AttemptOutcome {
    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Unknown => "unknown",
        }
    }
}

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
    #[serde(with = "crate::time::stored")]
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    #[serde(default, with = "crate::time::stored_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended; none while running.
    pub outcome: Option<AttemptOutcome>,
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
    pub mode: RunMode,
    /// Where the run is.
    pub status: RunStatus,
    /// Who started it (`--as`, default `$USER`).
    pub initiator: String,
    /// Digest of the compiled workflow.
    pub digest: String,
    /// The workflow file as given. Its text when the run started is stored apart, once
    /// ([`super::Store::source`]), so a resume compiles the same thing.
    pub workflow_file: String,
    /// `--param` overrides, stored as `name=value`.
    pub overrides: Vec<Override>,
    /// When it started.
    #[serde(with = "crate::time::stored")]
    pub started_at: DateTime<Utc>,
    /// When it reached a final or resting status.
    #[serde(default, with = "crate::time::stored_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Journal length.
    pub journal_len: u64,
    /// Hash of the last journal entry.
    pub last_hash: String,
    /// When the outage began (`--incident-start`), when given.
    #[serde(default, with = "crate::time::stored_opt")]
    pub incident_start: Option<DateTime<Utc>>,
    /// The process that last drove the run (its pid): when the run is unfinished and no live
    /// process drives it, that process was killed or crashed. Unknown in older stores.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Whether that process let go of the run on purpose with approvals still open
    /// (`--detach`): such a run waits for votes and `drctl resume`, it was not interrupted.
    #[serde(default)]
    pub detached: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run record and a step record as drctl has always written them (the legacy fixture's
    /// store holds records of this shape).
    const RUN: &str = r#"{"run_id":"20261123T101435Z-f8f3","workflow":"wf","mode":"drill","status":"succeeded","initiator":"alice","digest":"v2:ab","workflow_file":"wf.toml","overrides":["region=eu-west-1","count=3"],"started_at":"2026-11-23T10:14:35.164Z","finished_at":"2026-11-23T10:14:35.996Z","journal_len":7,"last_hash":"00ff","incident_start":null,"pid":4242,"detached":false}"#;
    const STEP: &str = r#"{"run_id":"r","step":"a","status":"succeeded","attempts":[{"n":1,"started_at":"2026-11-23T10:14:35.168Z","finished_at":"2026-11-23T10:14:35.223Z","outcome":"succeeded","error":null},{"n":2,"started_at":"2026-11-23T10:14:35.300Z","finished_at":null,"outcome":null,"error":null}],"outputs":{},"error":null}"#;

    #[test]
    fn records_read_typed_and_are_written_back_byte_for_byte_as_stored() {
        let run: RunRecord = serde_json::from_str(RUN).unwrap();
        assert_eq!(run.mode, RunMode::Drill);
        assert_eq!(run.overrides[0].name, "region");
        assert_eq!(
            run.finished_at.unwrap() - run.started_at,
            chrono::TimeDelta::milliseconds(832)
        );
        assert_eq!(serde_json::to_string(&run).unwrap(), RUN);
        let step: StepRecord = serde_json::from_str(STEP).unwrap();
        assert_eq!(step.attempts[0].outcome, Some(AttemptOutcome::Succeeded));
        assert_eq!(serde_json::to_string(&step).unwrap(), STEP);
    }

    #[test]
    fn a_record_whose_time_mode_or_override_does_not_read_is_refused_naming_the_run() {
        for (field, bad) in [
            (
                "\"started_at\":\"2026-11-23T10:14:35.164Z\"",
                "\"started_at\":\"now\"",
            ),
            (
                "\"incident_start\":null",
                "\"incident_start\":\"yesterday\"",
            ),
            ("\"mode\":\"drill\"", "\"mode\":\"rehearsal\""),
            ("\"region=eu-west-1\"", "\"region\""),
        ] {
            let record = RUN.replace(field, bad);
            assert_ne!(record, RUN);
            let bundle = format!("{{\"run\":{record}}}");
            let error = crate::store::decode_bundle("r9", bundle.as_bytes()).unwrap_err();
            match error {
                crate::store::StoreError::BadRecord { run, reason } => {
                    assert_eq!(run, "r9");
                    let value = bad.split(':').nth(1).unwrap_or(bad).trim_matches('"');
                    assert!(reason.contains(value), "{bad}: {reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
