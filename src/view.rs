//! Read-only views of stored runs, as the `status` and `runs` commands show them (SPEC §8
//! shapes). Shared by the CLI and the control socket, so both answer the same.
//!
//! A view knows which run, if any, the process computing it drives. A run whose record says
//! it is under way (running, awaiting approval, rolling back) but that no live process drives
//! shows as `interrupted`, with the status it was stored with and the pid of the process that
//! last drove it: that process was killed or crashed, and `drctl resume RUN` continues it.

use serde_json::{Value, json};
use thiserror::Error;

use crate::actions::Registry;
use crate::check::check_source;
use crate::dag::Override;
use crate::diagnostic::SourceFile;
use crate::store::{RunRecord, RunStatus, Store, StoreError, verify_chain};

/// Why a view could not be built.
#[derive(Debug, Error)]
pub enum ViewError {
    /// No such run.
    #[error("no run `{0}` in this state directory (`drctl runs` lists them)")]
    UnknownRun(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `run` was interrupted: its record says it is under way, it was not let go of on
/// purpose (`--detach`), and the process computing the view, which drives `driving` if any,
/// does not drive it (only the store's owner drives runs, so no process does).
pub fn interrupted(run: &RunRecord, driving: Option<&str>) -> bool {
    let under_way = matches!(
        run.status,
        RunStatus::Running | RunStatus::AwaitingApproval | RunStatus::RollingBack
    );
    under_way && !run.detached && driving != Some(run.run_id.as_str())
}

/// The status shown for a run and, when it differs from the stored one, the stored one.
fn shown_status(run: &RunRecord, driving: Option<&str>) -> (&'static str, Option<&'static str>) {
    if interrupted(run, driving) {
        ("interrupted", Some(run.status.as_str()))
    } else {
        (run.status.as_str(), None)
    }
}

/// Adds `stored_status` and `pid` to a view of an interrupted run.
fn mark_interrupted(view: &mut Value, run: &RunRecord, stored: Option<&str>) {
    if let (Some(stored), Some(fields)) = (stored, view.as_object_mut()) {
        fields.insert("stored_status".into(), json!(stored));
        fields.insert("pid".into(), json!(run.pid));
    }
}

/// Every run, oldest first: `run_id`, `workflow`, `mode`, `status`, `started_at`, `finished_at`
/// (and `stored_status`, `pid` for an interrupted run). `driving` is the run the process
/// computing the view drives, if any.
pub fn runs(store: &dyn Store, driving: Option<&str>) -> Result<Value, ViewError> {
    Ok(store
        .runs()?
        .iter()
        .map(|r| {
            let (status, stored) = shown_status(r, driving);
            let mut view = json!({
                "run_id": r.run_id,
                "workflow": r.workflow,
                "mode": r.mode,
                "status": status,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            });
            mark_interrupted(&mut view, r, stored);
            view
        })
        .collect())
}

/// One run: its record, every step of the workflow with its status and attempts, why it is
/// paused when it is, and whether its journal's hash chain is intact. `driving` is the run the
/// process computing the view drives, if any.
pub fn status(store: &dyn Store, run_id: &str, driving: Option<&str>) -> Result<Value, ViewError> {
    let run = store
        .run(run_id)?
        .ok_or_else(|| ViewError::UnknownRun(run_id.to_string()))?;
    let journal = store.journal(run_id)?;
    let records = store.steps(run_id)?;
    let chain = match verify_chain(&journal) {
        Ok(()) if journal.len() as u64 == run.journal_len => {
            json!({ "intact": true, "entries": journal.len() })
        }
        Ok(()) => {
            json!({ "intact": false, "entries": journal.len(), "problem": format!("the run record counts {} entries, the journal holds {}", run.journal_len, journal.len()) })
        }
        Err((seq, why)) => {
            json!({ "intact": false, "entries": journal.len(), "problem": format!("entry {seq} {why}") })
        }
    };
    // The workflow as it was when the run started gives every step, in order.
    let overrides: Vec<Override> = run
        .overrides
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let source = store.source(run_id)?.unwrap_or_default();
    let checked = check_source(
        SourceFile::new(run.workflow_file.clone(), source),
        Registry::global(),
        &overrides,
    );
    let ids: Vec<String> = checked.workflow.map_or_else(
        || records.iter().map(|r| r.step.clone()).collect(),
        |w| w.steps.into_iter().map(|s| s.id).collect(),
    );
    // The votes of each approval's current round, and how each was proven.
    let mut votes: std::collections::HashMap<String, Vec<Value>> = std::collections::HashMap::new();
    for entry in &journal {
        let e = &entry.event;
        let step = e["step"].as_str().unwrap_or_default().to_string();
        match e["type"].as_str() {
            Some("approval_voted") => votes.entry(step).or_default().push(json!({
                "by": e["by"],
                "decision": e["decision"],
                "verification": e["fingerprint"].as_str().map_or_else(
                    || "unverified".to_string(),
                    |f| format!("verified ({f})")
                ),
            })),
            Some("approval_round_opened") => {
                votes.remove(&step);
            }
            _ => {}
        }
    }
    let steps: Vec<Value> = ids
        .iter()
        .map(|id| match records.iter().find(|r| &r.step == id) {
            Some(r) => json!({
                "id": id,
                "status": r.status.as_str(),
                "attempts": r.attempts.len(),
                "started_at": r.attempts.first().map(|a| a.started_at.clone()),
                "finished_at": r.attempts.last().and_then(|a| a.finished_at.clone()),
                "outputs": r.outputs,
                "error": r.error,
            }),
            None => json!({ "id": id, "status": "pending", "attempts": 0, "started_at": null, "finished_at": null, "outputs": {}, "error": null }),
        })
        .map(|mut step: Value| {
            if let Some(v) = votes.remove(step["id"].as_str().unwrap_or_default()) {
                step["votes"] = v.into();
            }
            step
        })
        .collect();
    let mut paused_reason = Value::Null;
    for entry in &journal {
        match entry.event.get("type").and_then(Value::as_str) {
            Some("run_paused") => {
                paused_reason = entry.event.get("reason").cloned().unwrap_or(Value::Null);
            }
            Some("run_resumed" | "rollback_started" | "run_finished") => {
                paused_reason = Value::Null;
            }
            _ => {}
        }
    }
    let (status, stored) = shown_status(&run, driving);
    let mut view = json!({
        "run_id": run.run_id,
        "workflow": run.workflow,
        "mode": run.mode,
        "status": status,
        "initiator": run.initiator,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "digest": run.digest,
        "paused_reason": paused_reason,
        "journal": chain,
        "steps": steps,
    });
    mark_interrupted(&mut view, &run, stored);
    Ok(view)
}
