//! Why a run does not start: the refusals a start gets, in the words every way of starting
//! one (a command, the agent) gives.

use super::error::CliError;
use super::exit;
use crate::engine::StartError;
use crate::store::RunRecord;

/// A start the store or the engine refused, as the answer to whoever asked. `driving`: the
/// runs the refusing process drives.
pub fn start_refusal(e: StartError, driving: &[String]) -> CliError {
    match e {
        StartError::Store(e) => CliError::from(e),
        StartError::Identity(why) => CliError::invalid(why),
        StartError::NotExecutable(steps) => CliError::invalid(format!(
            "this version of drctl cannot execute {}; nothing was run (drctl plan shows what it would do)",
            steps.join(", ")
        )),
        StartError::Unfinished(old) => unfinished_refusal(&old, driving),
    }
}

/// The refusal of a second run while `old`, of the same workflow, is unfinished: what it is
/// and how to go on. `driving`: the runs the refusing process drives (it owns the store, so
/// nobody else drives any).
pub fn unfinished_refusal(old: &RunRecord, driving: &[String]) -> CliError {
    let status = if driving.contains(&old.run_id) {
        format!("{}, driven by drctl serve", old.status.as_str())
    } else if crate::view::interrupted(old, driving) {
        format!(
            "interrupted: the drctl process that drove it{} is gone",
            old.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        )
    } else {
        old.status.as_str().to_string()
    };
    CliError::new(
        exit::RUN_ACTIVE,
        format!(
            "run {} of {} is unfinished ({}, started {}): resume it with `drctl resume {}`, roll it back with `drctl rollback {}`, or cancel it with `drctl cancel {}`",
            old.run_id, old.workflow, status, old.started_at, old.run_id, old.run_id, old.run_id
        ),
    )
}
