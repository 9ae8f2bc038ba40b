//! Read-only views of stored runs, as the `status` and `runs` commands show them (SPEC §8
//! shapes). Shared by the CLI and the control socket, so both answer the same.
//!
//! A view knows which run, if any, the process computing it drives. A run whose record says
//! it is under way (running, awaiting approval, rolling back) but that no live process drives
//! shows as `interrupted`, with the status it was stored with and the pid of the process that
//! last drove it: that process was killed or crashed, and `drctl resume RUN` continues it.

mod lines;
mod text;

pub use lines::{event_line, json_event, summary};
pub use text::{runs_text, status_text};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::engine::{Decision, PauseReason, RunProjection};
use crate::store::{Owner, RunRecord, Store, StoreError, verify_chain};
use crate::time::rfc3339;

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
/// purpose (`--detach`), and the process computing the view, which drives the runs
/// `driving`, does not drive it (only the store's owner drives runs, so no process does).
pub fn interrupted(run: &RunRecord, driving: &[String]) -> bool {
    run.status.is_under_way() && !run.detached && !driving.contains(&run.run_id)
}

/// The status shown for a run and, when it differs from the stored one, the stored one.
fn shown_status(run: &RunRecord, driving: &[String]) -> (&'static str, Option<&'static str>) {
    if interrupted(run, driving) {
        ("interrupted", Some(run.status.as_str()))
    } else {
        (run.status.as_str(), None)
    }
}

/// One line of `drctl runs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLine {
    /// The run.
    pub run_id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Its status, or `interrupted`.
    pub status: String,
    /// When it started.
    pub started_at: String,
    /// When it stopped.
    pub finished_at: Option<String>,
    /// When interrupted: the status it was stored with, and the process that drove it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

/// What is known of an interrupted run's last driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interrupted {
    /// The status its record holds.
    pub stored_status: String,
    /// The pid of the process that drove it.
    pub pid: Option<u32>,
}

/// Where a run's journal stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalCheck {
    /// Whether the hash chain holds and the record counts every entry.
    pub intact: bool,
    /// Entries in the journal.
    pub entries: usize,
    /// What is wrong, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A vote of an approval's current round, and how it was proven.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteView {
    /// Who.
    pub by: String,
    /// `approve` or `reject`.
    pub decision: Decision,
    /// `verified (SHA256:…)` or `unverified`.
    pub verification: String,
}

/// One step of `drctl status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Attempts made.
    pub attempts: usize,
    /// The first attempt's start.
    pub started_at: Option<String>,
    /// The last attempt's end.
    pub finished_at: Option<String>,
    /// Its outputs.
    pub outputs: serde_json::Map<String, Value>,
    /// Its last error.
    pub error: Option<String>,
    /// An approval's votes in its current round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<Vec<VoteView>>,
}

/// `drctl status RUN` (SPEC §8 shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// The run.
    pub run_id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Its status, or `interrupted`.
    pub status: String,
    /// Who started it.
    pub initiator: String,
    /// When it started.
    pub started_at: String,
    /// When it stopped.
    pub finished_at: Option<String>,
    /// Its digest (its workflow's last version's, when it was changed).
    pub digest: String,
    /// Every version of its workflow, the one it started with first, when it was changed on
    /// resume (SPEC §5.8.7); absent when the run kept the workflow it started with.
    #[serde(default, skip_serializing_if = "crate::engine::unchanged")]
    pub versions: Vec<crate::engine::WorkflowVersion>,
    /// Why it waits for an operator, in words with the commands that go on.
    pub paused_reason: Option<String>,
    /// Why it waits, as data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseReason>,
    /// Its journal.
    pub journal: JournalCheck,
    /// On a shared store: the agent that drives it (name, host, pid, since when).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driven_by: Option<Owner>,
    /// Every step of the workflow, in order.
    pub steps: Vec<StepView>,
    /// When interrupted: the status it was stored with, and the process that drove it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

fn interruption(run: &RunRecord, driving: &[String]) -> Option<Interrupted> {
    interrupted(run, driving).then(|| Interrupted {
        stored_status: run.status.as_str().to_string(),
        pid: run.pid,
    })
}

/// Every run, oldest first. `driving` are the runs the process computing the view drives.
pub fn run_lines(store: &dyn Store, driving: &[String]) -> Result<Vec<RunLine>, ViewError> {
    store
        .runs()?
        .into_iter()
        .map(|r| {
            let driver = driven_here(store, &r, driving)?;
            Ok(RunLine {
                status: shown_status(&r, &driver).0.to_string(),
                interrupted: interruption(&r, &driver),
                run_id: r.run_id,
                workflow: r.workflow,
                mode: r.mode.to_string(),
                started_at: rfc3339(r.started_at),
                finished_at: r.finished_at.map(rfc3339),
            })
        })
        .collect()
}

/// The runs `interrupted` takes as driven: `driving`, and the run itself when some process
/// holds it on a shared store.
fn driven_here(
    store: &dyn Store,
    run: &RunRecord,
    driving: &[String],
) -> Result<Vec<String>, ViewError> {
    let mut driven = driving.to_vec();
    if let Some(shared) = store.shared()
        && shared.owner(&run.run_id)?.is_some()
    {
        driven.push(run.run_id.clone());
    }
    Ok(driven)
}

/// Whether the journal's hash chain holds and the record counts every entry.
fn journal_check(run: &RunRecord, journal: &[crate::store::JournalEntry]) -> JournalCheck {
    match verify_chain(journal) {
        Ok(()) if journal.len() as u64 == run.journal_len => JournalCheck {
            intact: true,
            entries: journal.len(),
            problem: None,
        },
        Ok(()) => JournalCheck {
            intact: false,
            entries: journal.len(),
            problem: Some(format!(
                "the run record counts {} entries, the journal holds {}",
                run.journal_len,
                journal.len()
            )),
        },
        Err((seq, why)) => JournalCheck {
            intact: false,
            entries: journal.len(),
            problem: Some(format!("entry {seq} {why}")),
        },
    }
}

/// The votes of approval `step`'s current round, when it has any.
fn votes_of(projection: &RunProjection, step: &str) -> Option<Vec<VoteView>> {
    let votes = &projection.step(step)?.votes;
    (!votes.is_empty()).then(|| {
        votes
            .iter()
            .map(|v| VoteView {
                by: v.by.clone(),
                decision: v.decision,
                verification: crate::report::verification(v.key.as_deref()),
            })
            .collect()
    })
}

/// For a run with allowed signers: the first signed event of its journal that does not
/// verify, or decision its rules refuse (SPEC §5.9: reading a run re-verifies it too).
/// `workflow` was given the signers the run captured ([`captured_signers`]).
fn does_not_hold_up(
    workflow: &std::sync::Arc<crate::dag::CompiledWorkflow>,
    run: &RunRecord,
    journal: &[crate::store::JournalEntry],
) -> Option<String> {
    let (_, found) = crate::engine::audit(std::sync::Arc::clone(workflow), run, journal).ok()?;
    found.broken.into_iter().next()
}

/// Gives `workflow` the allowed signers run `run` captured when it started; false when it
/// captured none (nothing of its journal is signed by rule).
fn captured_signers(
    workflow: &mut crate::dag::CompiledWorkflow,
    run: &RunRecord,
    journal: &[crate::store::JournalEntry],
) -> bool {
    match crate::stored::signers(run, journal) {
        Ok(Some(signers)) => {
            workflow.signers = Some(signers);
            true
        }
        _ => false,
    }
}

/// One run: its record, every step of the workflow with its status and attempts, why it is
/// paused when it is, and whether its journal's hash chain is intact. `driving` are the runs
/// the process computing the view drives.
pub fn status_view(
    store: &dyn Store,
    run_id: &str,
    driving: &[String],
) -> Result<StatusView, ViewError> {
    let run = store
        .run(run_id)?
        .ok_or_else(|| ViewError::UnknownRun(run_id.to_string()))?;
    let journal = store.journal(run_id)?;
    let records = store.steps(run_id)?;
    let journal_check = journal_check(&run, &journal);
    let driven_by = store
        .shared()
        .map(|s| s.owner(run_id))
        .transpose()?
        .flatten();
    let mut driver = driving.to_vec();
    if driven_by.is_some() {
        driver.push(run.run_id.clone());
    }
    // The workflow the run executes gives every step, in order; one that no longer compiles
    // still shows the steps it recorded.
    let source = crate::stored::changed_source(&journal)
        .or(store.source(run_id)?)
        .unwrap_or_default();
    let mut workflow = crate::stored::check(&run, &source)?.workflow;
    let signed = workflow
        .as_mut()
        .is_some_and(|w| captured_signers(w, &run, &journal));
    let workflow = workflow.map(std::sync::Arc::new);
    let mut journal_check = journal_check;
    if let Some(why) = workflow
        .as_ref()
        .filter(|_| signed)
        .and_then(|w| does_not_hold_up(w, &run, &journal))
    {
        journal_check.intact = false;
        journal_check.problem = Some(format!(
            "its journal does not hold up: {why} (`drctl verify {run_id}` lists everything)"
        ));
    }
    let ids: Vec<String> = workflow.as_ref().map_or_else(
        || records.iter().map(|r| r.step.clone()).collect(),
        |w| w.steps.iter().map(|s| s.id.clone()).collect(),
    );
    let projection = crate::engine::project(run_id, &journal, workflow)?;
    let by_step: std::collections::HashMap<&str, &crate::store::StepRecord> =
        records.iter().map(|r| (r.step.as_str(), r)).collect();
    let steps = ids
        .into_iter()
        .map(|id| {
            let votes = votes_of(&projection, &id);
            match by_step.get(id.as_str()) {
                Some(r) => StepView {
                    status: r.status.as_str().to_string(),
                    attempts: r.attempts.len(),
                    started_at: r.attempts.first().map(|a| rfc3339(a.started_at)),
                    finished_at: r.attempts.last().and_then(|a| a.finished_at.map(rfc3339)),
                    outputs: r.outputs.clone(),
                    error: r.error.clone(),
                    votes,
                    id,
                },
                None => StepView {
                    id,
                    status: "pending".to_string(),
                    attempts: 0,
                    started_at: None,
                    finished_at: None,
                    outputs: serde_json::Map::new(),
                    error: None,
                    votes,
                },
            }
        })
        .collect();
    let RunProjection {
        versions, pause, ..
    } = projection;
    Ok(StatusView {
        versions,
        status: shown_status(&run, &driver).0.to_string(),
        interrupted: interruption(&run, &driver),
        driven_by,
        paused_reason: pause.as_ref().map(|p| p.describe(&run.run_id)),
        pause,
        journal: journal_check,
        steps,
        run_id: run.run_id,
        workflow: run.workflow,
        mode: run.mode.to_string(),
        initiator: run.initiator,
        started_at: rfc3339(run.started_at),
        finished_at: run.finished_at.map(rfc3339),
        digest: run.digest,
    })
}
