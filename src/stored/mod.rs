//! A stored run's workflow, read back: the text the run started with (or, once its workflow
//! was changed, the text of its last `workflow_changed`), compiled with the run's `--param`
//! overrides and the allowed signers it captured; and the versions a run went through. The one place the read
//! side (status, reports) and the commands that take a run up (resume, approve, cancel)
//! get a run's workflow from, so they all see the same one.

mod kept;

use thiserror::Error;

use crate::actions::Registry;
use crate::check::{Checked, compile_source};
use crate::dag::CompiledWorkflow;
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

/// Compiles the text `source` as run `run` compiled it (its overrides, its file's name), with
/// the actions of `registry`; its lints are not run (they are for the review before a run).
pub fn check_with(
    run: &RunRecord,
    source: &str,
    registry: &Registry,
) -> Result<Checked, StoreError> {
    Ok(kept::compiled(
        registry,
        (&run.workflow_file, source),
        &run.overrides,
        || {
            compile_source(
                SourceFile::new(run.workflow_file.clone(), source),
                registry,
                &run.overrides,
            )
        },
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
    use crate::engine::Event;
    // Decoded typed; an entry that does not decode is not a changed workflow (the audit and
    // the replay name it).
    journal
        .iter()
        .rev()
        .filter(|e| Event::is_workflow_changed(&e.event))
        .find_map(|e| match serde_json::from_value(e.event.clone()) {
            Ok(Event::WorkflowChanged { source, .. }) => Some(source),
            _ => None,
        })
}

/// The text run `run` executes: the one it started with, or the one of its last changed
/// workflow.
pub fn current_source(store: &dyn Store, run: &RunRecord) -> Result<Option<String>, StoreError> {
    match changed_source(&store.journal(&run.run_id)?) {
        Some(text) => Ok(Some(text)),
        None => store.source(&run.run_id),
    }
}

pub use crate::engine::{WorkflowVersion, unchanged};

/// The workflow run `run` executes, and its text: the text it started with (or the one of
/// its last changed workflow in `journal`, the run's, SPEC §5.8.7) compiled with its
/// overrides, and the allowed signers it captured; its actions from `registry`.
pub fn stored_workflow(
    store: &dyn Store,
    (run, journal): (&RunRecord, &[JournalEntry]),
    registry: &Registry,
) -> Result<(CompiledWorkflow, String), StoredError> {
    let source = match changed_source(journal) {
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
    workflow.signers = signers(run, journal)?;
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
