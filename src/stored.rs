//! A stored run's workflow, read back: the text the run started with (or, once its workflow
//! was changed, the text of its last `workflow_changed`), compiled with the run's `--param`
//! overrides and the allowed signers it captured; and the versions a run went through. The one place the read
//! side (status, reports) and the commands that take a run up (resume, approve, cancel)
//! get a run's workflow from, so they all see the same one.

use thiserror::Error;

use crate::actions::Registry;
use crate::check::{Checked, check_source};
use crate::dag::{CompiledWorkflow, Override};
use crate::diagnostic::{SourceFile, render_text};
use crate::engine::{Event, Scheme};
use crate::store::{JournalEntry, RunRecord, Store, StoreError};

/// Why a stored run's workflow could not be had.
#[derive(Debug, Error)]
pub enum StoredError {
    /// The store failed, or a stored record does not read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored text no longer compiles (an action this drctl does not know, say).
    #[error("the workflow of run {run} ({file}) no longer compiles")]
    NoLongerCompiles {
        /// The run.
        run: String,
        /// The workflow file it started from.
        file: String,
        /// The diagnostics, rendered.
        diagnostics: String,
    },
}

/// The run's `--param` overrides. A stored override that does not parse is an error: it
/// would silently run another workflow than was started.
pub fn overrides(run: &RunRecord) -> Result<Vec<Override>, StoreError> {
    run.overrides
        .iter()
        .map(|o| {
            o.parse().map_err(|e| StoreError::BadRecord {
                run: run.run_id.clone(),
                reason: format!("its stored override `{o}` does not read: {e}"),
            })
        })
        .collect()
}

/// The allowed-signers text a run captured when it started (its first event), if any.
pub fn signers(run: &RunRecord, journal: &[JournalEntry]) -> Result<Option<String>, StoreError> {
    let Some(first) = journal.first() else {
        return Ok(None);
    };
    match crate::engine::events(&run.run_id, std::slice::from_ref(first))?
        .pop()
        .map(|r| r.event)
    {
        Some(Event::RunStarted {
            allowed_signers, ..
        }) => Ok(allowed_signers),
        _ => Ok(None),
    }
}

/// Checks the text `source` as run `run` compiled it (its overrides, its file's name), with
/// the actions of `registry`.
pub fn check_with(
    run: &RunRecord,
    source: &str,
    registry: &Registry,
) -> Result<Checked, StoreError> {
    Ok(check_source(
        SourceFile::new(run.workflow_file.clone(), source),
        registry,
        &overrides(run)?,
    ))
}

/// [`check_with`] the built-in actions, for the read side (status, reports, evidence), which
/// shows what a run's text compiles to in this build.
pub fn check(run: &RunRecord, source: &str) -> Result<Checked, StoreError> {
    check_with(run, source, &Registry::builtin())
}

/// The text of the last `workflow_changed` in `journal` (SPEC §5.8.7), if the run's
/// workflow was changed. Read from the entries as stored, without decoding every event.
pub fn changed_source(journal: &[JournalEntry]) -> Option<String> {
    journal
        .iter()
        .rev()
        .find(|e| e.event["type"] == "workflow_changed")
        .and_then(|e| e.event["source"].as_str())
        .map(str::to_string)
}

/// The text run `run` executes: the one it started with, or the one of its last changed
/// workflow.
pub fn current_source(store: &dyn Store, run: &RunRecord) -> Result<Option<String>, StoreError> {
    match changed_source(&store.journal(&run.run_id)?) {
        Some(text) => Ok(Some(text)),
        None => store.source(&run.run_id),
    }
}

/// One version of a run's workflow: the one it started with, then one per changed workflow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowVersion {
    /// Its digest.
    pub digest: String,
    /// When the run took it up (RFC 3339).
    pub at: String,
    /// Who: the initiator for the first, who resumed with it for the others.
    pub by: String,
    /// The steps it added, removed or changed (none for the first).
    pub changed_steps: Vec<String>,
    /// Whether its change was signed (the first: whether the start was).
    pub signed: bool,
}

/// Whether a run kept the workflow it started with (for `skip_serializing_if`: a run's
/// status and report list its versions only when it has more than one).
#[allow(
    clippy::ptr_arg,
    reason = "serde's skip_serializing_if passes the field"
)]
pub fn unchanged(versions: &Vec<WorkflowVersion>) -> bool {
    versions.len() <= 1
}

/// Every version of run `run_id`'s workflow, from its journal, oldest first.
pub fn versions(
    run_id: &str,
    journal: &[JournalEntry],
) -> Result<Vec<WorkflowVersion>, StoreError> {
    Ok(versions_of(&crate::engine::events(run_id, journal)?))
}

/// Every version of a run's workflow, from its journal already decoded, oldest first.
pub fn versions_of(events: &[crate::engine::Recorded]) -> Vec<WorkflowVersion> {
    events
        .iter()
        .filter_map(|recorded| match &recorded.event {
            Event::RunStarted {
                initiator,
                digest,
                signature,
                ..
            } => Some(WorkflowVersion {
                digest: digest.clone(),
                at: recorded.at.clone(),
                by: initiator.clone(),
                changed_steps: Vec::new(),
                signed: signature.is_some(),
            }),
            Event::WorkflowChanged {
                to_digest,
                changed_steps,
                by,
                signature,
                ..
            } => Some(WorkflowVersion {
                digest: to_digest.clone(),
                at: recorded.at.clone(),
                by: by.clone(),
                changed_steps: changed_steps.clone(),
                signed: signature.is_some(),
            }),
            _ => None,
        })
        .collect()
}

/// The workflow run `run` executes, and its text: the text it started with (or the one of
/// its last changed workflow, SPEC §5.8.7) compiled with its overrides, and the allowed
/// signers it captured; its actions from `registry`.
pub fn stored_workflow(
    store: &dyn Store,
    run: &RunRecord,
    registry: &Registry,
) -> Result<(CompiledWorkflow, String), StoredError> {
    let journal = store.journal(&run.run_id)?;
    let source = match changed_source(&journal) {
        Some(text) => text,
        None => store
            .source(&run.run_id)?
            .ok_or_else(|| StoreError::BadRecord {
                run: run.run_id.clone(),
                reason: "the workflow text it started with is missing".into(),
            })?,
    };
    let checked = check_with(run, &source, registry)?;
    let Some(mut workflow) = checked.workflow else {
        return Err(StoredError::NoLongerCompiles {
            run: run.run_id.clone(),
            file: run.workflow_file.clone(),
            diagnostics: render_text(&checked.source, &checked.diagnostics, false),
        });
    };
    // Who may approve is what the run captured when it started, not the file as it is now.
    workflow.signers = signers(run, &journal)?;
    Ok((workflow, source))
}

/// The digest of `workflow` in the scheme `stored` was computed with: runs recorded before
/// digests named their scheme are compared by the hash of their plan.
pub fn digest_as(stored: &str, workflow: &CompiledWorkflow) -> String {
    match Scheme::of(stored) {
        Scheme::PlanV1 => crate::plan::plan_digest(workflow),
        Scheme::CompiledV2 => crate::engine::digest(workflow),
    }
}
