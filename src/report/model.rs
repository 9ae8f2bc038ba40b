//! The report of a run as data (SPEC §8): built from the store alone (the run record, the
//! step records and the journal), rendered by the md, json, junit and html renderers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dag::CompiledWorkflow;
use crate::engine::{ApprovalDecision, CompensationEnded, Outcome};
use crate::store::{Store, StoreError};
use crate::time::{parse_time, rfc3339};

/// An objective against what was achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The objective, when the workflow sets one.
    pub objective_seconds: Option<f64>,
    /// What was achieved, when known.
    pub achieved_seconds: Option<f64>,
    /// Whether achieved ≤ objective; null when either is unknown.
    pub met: Option<bool>,
}

impl Objective {
    fn new(objective: Option<f64>, achieved: Option<f64>) -> Self {
        let met = match (objective, achieved) {
            (Some(o), Some(a)) => Some(a <= o),
            _ => None,
        };
        Self {
            objective_seconds: objective,
            achieved_seconds: achieved,
            met,
        }
    }
}

/// One step in the report's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportStep {
    /// Step id.
    pub id: String,
    /// Action name.
    pub action: String,
    /// Final status.
    pub status: String,
    /// Attempts made.
    pub attempts: usize,
    /// First start.
    pub started_at: Option<String>,
    /// End of the last attempt.
    pub finished_at: Option<String>,
    /// `finished_at - started_at`.
    pub duration_seconds: Option<f64>,
    /// Outputs.
    pub outputs: serde_json::Map<String, Value>,
    /// The last error.
    pub error: Option<String>,
    /// On the critical path to recovery (by estimates).
    pub on_critical_path: bool,
    /// An approval: its duration is time spent waiting for people.
    pub is_approval: bool,
    /// The step whose success marks the service recovered.
    pub marks_recovered: bool,
}

/// A decision on an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportApproval {
    /// The approval step.
    pub step: String,
    /// Who.
    pub by: String,
    /// `approve`, `reject`, or `timeout`.
    pub decision: String,
    /// When.
    pub at: String,
    /// Why.
    pub comment: Option<String>,
    /// `verified (SHA256:...)` when the decision was signed with the approver's key and
    /// verified against the run's allowed signers; `unverified` when it is a typed name.
    #[serde(default)]
    pub verification: String,
}

/// How a recorded vote was proven, in words: the fingerprint of the key that signed it.
pub fn verification(fingerprint: Option<&str>) -> String {
    fingerprint.map_or_else(|| "unverified".to_string(), |f| format!("verified ({f})"))
}

/// A compensation that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRollback {
    /// The step undone.
    pub step: String,
    /// `undone` or `failed`.
    pub outcome: String,
    /// When it ended.
    pub at: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// The report of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The run.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Final (or current) status.
    pub status: String,
    /// Who started it.
    pub initiator: String,
    /// When it started.
    pub started_at: String,
    /// When it stopped.
    pub finished_at: Option<String>,
    /// When the outage began, when given.
    pub incident_start: Option<String>,
    /// When the service was recovered.
    pub recovered_at: Option<String>,
    /// RTO.
    pub rto: Objective,
    /// RPO.
    pub rpo: Objective,
    /// Time spent waiting for approvals (it counts toward the RTO).
    pub approval_wait_seconds: f64,
    /// When the RTO was first projected to be missed.
    pub rto_at_risk_at: Option<String>,
    /// When the RTO objective passed unrecovered.
    pub rto_breached_at: Option<String>,
    /// Every step, in the workflow's order.
    pub steps: Vec<ReportStep>,
    /// Every decision on approvals.
    pub approvals: Vec<ReportApproval>,
    /// Compensations run.
    pub rollbacks: Vec<ReportRollback>,
    /// Steps that changed something and could not be undone.
    pub not_undone: Vec<String>,
    /// Whether the journal's hash chain is intact.
    pub journal_intact: bool,
    /// Every version of the run's workflow, the one it started with first, when it was
    /// changed on resume (SPEC §5.8.7); absent when the run kept the workflow it started with.
    #[serde(default, skip_serializing_if = "crate::engine::unchanged")]
    pub versions: Vec<crate::engine::WorkflowVersion>,
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such run.
    #[error("no run `{0}` in this state directory (`drctl runs` lists them)")]
    UnknownRun(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn seconds_between(a: &str, b: &str) -> Option<f64> {
    Some(
        (parse_time(b)? - parse_time(a)?)
            .to_std()
            .ok()?
            .as_secs_f64(),
    )
}

/// The workflows compiled for reports, by the text and overrides they came from (the file's
/// name only labels diagnostics): the runs of one workflow mostly share them.
#[derive(Default)]
pub struct Compiled {
    by_source:
        HashMap<(String, Vec<crate::dag::Override>), Option<std::sync::Arc<CompiledWorkflow>>>,
}

impl Compiled {
    fn get(
        &mut self,
        run: &crate::store::RunRecord,
        source: String,
    ) -> Result<Option<std::sync::Arc<CompiledWorkflow>>, StoreError> {
        let key = (source, run.overrides.clone());
        if let Some(found) = self.by_source.get(&key) {
            return Ok(found.clone());
        }
        // A workflow that no longer compiles still has a report, without its plan's facts.
        let compiled = crate::stored::check(run, &key.0)?
            .workflow
            .map(std::sync::Arc::new);
        self.by_source.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// Builds the report of run `run_id` from the store.
pub fn build(store: &dyn Store, run_id: &str) -> Result<Report, ReportError> {
    build_with(store, run_id, &mut Compiled::default())
}

/// Builds the report of run `run_id`, reusing the workflows compiled for earlier reports.
#[allow(
    clippy::too_many_lines,
    reason = "the report's fields, assembled in one place"
)]
pub fn build_with(
    store: &dyn Store,
    run_id: &str,
    compiled: &mut Compiled,
) -> Result<Report, ReportError> {
    let run = store
        .run(run_id)?
        .ok_or_else(|| ReportError::UnknownRun(run_id.to_string()))?;
    let journal = store.journal(run_id)?;
    let records: HashMap<String, crate::store::StepRecord> = store
        .steps(run_id)?
        .into_iter()
        .map(|r| (r.step.clone(), r))
        .collect();
    // The workflow the run executes: the one it started with, or its last changed one.
    let workflow = match crate::stored::changed_source(&journal).or(store.source(run_id)?) {
        Some(source) => compiled.get(&run, source)?,
        None => None,
    };

    let projection = crate::engine::project(run_id, &journal, workflow.clone())?;
    let time = |t: &Option<DateTime<Utc>>| t.map(rfc3339);
    let critical: std::collections::HashSet<String> = workflow
        .as_ref()
        .map(|w| {
            w.schedule()
                .critical_path
                .iter()
                .map(|&i| w.steps[i].id.clone())
                .collect()
        })
        .unwrap_or_default();
    // Per step: its id, action, whether it marks the service recovered, and whether it is an
    // approval (a workflow that no longer compiles says none of these).
    let specs: Vec<(String, String, bool, bool)> = match &workflow {
        Some(w) => w
            .steps
            .iter()
            .map(|s| {
                let approval = s.is_approval();
                (s.id.clone(), s.action.clone(), s.marks_recovered, approval)
            })
            .collect(),
        None => records
            .values()
            .map(|r| (r.step.clone(), String::new(), false, false))
            .collect(),
    };
    let steps: Vec<ReportStep> = specs
        .into_iter()
        .map(|(id, action, marks_recovered, is_approval)| {
            let record = records.get(&id);
            let told = projection.step(&id);
            let started_at = told.and_then(|s| time(&s.first_started_at));
            let finished_at = told.and_then(|s| time(&s.ended_at));
            let duration_seconds = match (&started_at, &finished_at) {
                (Some(a), Some(b)) => seconds_between(a, b),
                _ => None,
            };
            ReportStep {
                is_approval,
                on_critical_path: critical.contains(id.as_str()),
                status: record
                    .map_or_else(|| "pending".to_string(), |r| r.status.as_str().to_string()),
                attempts: record.map_or(0, |r| r.attempts.len()),
                outputs: record.map(|r| r.outputs.clone()).unwrap_or_default(),
                error: record.and_then(|r| r.error.clone()),
                id,
                action,
                started_at,
                finished_at,
                duration_seconds,
                marks_recovered,
            }
        })
        .collect();

    let clock_start = rfc3339(run.incident_start.unwrap_or(run.started_at));
    let recovered_at = match steps.iter().find(|s| s.marks_recovered) {
        Some(s) if s.status == "succeeded" || s.status == "rolled_back" => s.finished_at.clone(),
        Some(_) => None,
        None => time(&projection.succeeded_at),
    };
    let rto_achieved = recovered_at
        .as_deref()
        .and_then(|r| seconds_between(&clock_start, r));
    let rpo_achieved = workflow
        .as_ref()
        .and_then(|w| w.steps.iter().find(|s| s.measures_rpo))
        .and_then(|s| steps.iter().find(|r| r.id == s.id))
        .and_then(|s| s.outputs.get("rpo_seconds"))
        .and_then(Value::as_f64);
    let approval_wait_seconds = steps
        .iter()
        .filter(|s| s.is_approval)
        .filter_map(|s| s.duration_seconds)
        .sum();
    Ok(Report {
        run_id: run.run_id.clone(),
        workflow: run.workflow.clone(),
        mode: run.mode.to_string(),
        status: run.status.as_str().to_string(),
        initiator: run.initiator.clone(),
        started_at: rfc3339(run.started_at),
        finished_at: run.finished_at.map(rfc3339),
        incident_start: run.incident_start.map(rfc3339),
        recovered_at,
        rto: Objective::new(
            workflow
                .as_ref()
                .and_then(|w| w.rto)
                .map(|d| d.as_secs_f64()),
            rto_achieved,
        ),
        rpo: Objective::new(
            workflow
                .as_ref()
                .and_then(|w| w.rpo)
                .map(|d| d.as_secs_f64()),
            rpo_achieved,
        ),
        approval_wait_seconds,
        rto_at_risk_at: time(&projection.rto_at_risk_at),
        rto_breached_at: time(&projection.rto_breached_at),
        steps,
        approvals: projection.decisions.iter().map(approval).collect(),
        rollbacks: projection.compensations.iter().map(rollback).collect(),
        not_undone: projection.not_undone,
        journal_intact: crate::store::verify_chain(&journal).is_ok(),
        versions: projection.versions,
    })
}

/// A decision on an approval as the report words it.
fn approval(decision: &ApprovalDecision) -> ReportApproval {
    let (by, verdict, verification) = match decision.outcome {
        Outcome::Approve | Outcome::Reject => (
            decision.by.clone().unwrap_or_default(),
            if decision.outcome == Outcome::Approve {
                "approve"
            } else {
                "reject"
            },
            verification(decision.key.as_deref()),
        ),
        Outcome::Timeout => ("(timeout)".into(), "timeout", "on_timeout".into()),
    };
    ReportApproval {
        step: decision.step.clone(),
        by,
        decision: verdict.to_string(),
        at: rfc3339(decision.at),
        comment: decision.comment.clone(),
        verification,
    }
}

/// A compensation that ended, as the report words it.
fn rollback(ended: &CompensationEnded) -> ReportRollback {
    ReportRollback {
        step: ended.step.clone(),
        outcome: if ended.error.is_some() {
            "failed"
        } else {
            "undone"
        }
        .to_string(),
        at: rfc3339(ended.at),
        error: ended.error.clone(),
    }
}

/// Seconds as a short duration for people (`1m30s`, `250ms`).
pub fn human(seconds: f64) -> String {
    // Whole milliseconds: a report shows `1s1ms`, not nanoseconds.
    let d = std::time::Duration::from_secs_f64(seconds.max(0.0));
    crate::workflow::format_duration(std::time::Duration::from_millis(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// An RFC 3339 time as `HH:MM:SS` (UTC), for timelines.
pub fn clock(time: &str) -> String {
    parse_time(time).map_or_else(
        || time.to_string(),
        |t: DateTime<Utc>| t.format("%H:%M:%S").to_string(),
    )
}
