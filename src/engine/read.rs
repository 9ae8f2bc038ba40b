//! Reading a stored run: its journal folded into a [`RunProjection`] by the machine's own
//! `apply`, for the status view, reports and evidence. It decides nothing and checks no
//! signature (that is `engine::audit`).

use std::sync::Arc;

use super::machine::{Machine, RunProjection};
use super::session::events;
use crate::dag::CompiledWorkflow;
use crate::store::{JournalEntry, StoreError};

/// The projection of run `run_id`'s `journal`. With the `workflow` it executes, its steps come
/// first in the workflow's order with their status; without one (a workflow that no longer
/// compiles, or not known yet), steps are listed as the journal names them. An entry that
/// does not decode is an error.
pub fn project(
    run_id: &str,
    journal: &[JournalEntry],
    workflow: Option<Arc<CompiledWorkflow>>,
) -> Result<RunProjection, StoreError> {
    let workflow = workflow.unwrap_or_else(|| Arc::new(CompiledWorkflow::without_steps()));
    let mut machine = Machine::new(workflow, "").projected();
    machine.run_id = run_id.to_string();
    for recorded in events(run_id, journal)? {
        machine.apply(&recorded.event, recorded.time);
    }
    machine
        .into_run_projection()
        .ok_or_else(|| StoreError::BadRecord {
            run: run_id.to_string(),
            reason: "its journal was read without a projection".into(),
        })
}
