//! Taking a stored run up to drive it (`resume`, `rollback`, an agent taking over a run whose
//! driver is gone): the run made ready, and the inputs it is fed first.

use super::error::CliError;
use super::load::{LoadedRun, Purpose, load};
use crate::actions::Registry;
use crate::engine::{Choice, Input, Machine, WorkflowChange};
use crate::store::Store;

/// Makes run `run_id` ready to be driven here, for `purpose`: found, its workflow compiled,
/// not over (unless it is to be undone), and, on a shared store, claimed (refused when
/// another process drives it).
pub fn prepare(
    store: &dyn Store,
    run_id: &str,
    purpose: Purpose,
    registry: &Registry,
) -> Result<LoadedRun, CliError> {
    let loaded = may_take_up(load(store, run_id, purpose, registry)?, purpose)?;
    // A store one process owns whole has nobody else to claim the run from.
    let Some(shared) = store.shared() else {
        return Ok(loaded);
    };
    shared.claim(run_id)?;
    // What was read before the claim may have been added to since, by the run's last
    // holder: it is read again under the claim, where nobody else writes it.
    if loaded.moved(store)? {
        return may_take_up(load(store, run_id, purpose, registry)?, purpose);
    }
    Ok(loaded)
}

/// `loaded`, unless it is over (a run rolled forward may still be undone).
fn may_take_up(loaded: LoadedRun, purpose: Purpose) -> Result<LoadedRun, CliError> {
    let can_undo =
        purpose == Purpose::Undo && loaded.run.status != crate::store::RunStatus::RolledBack;
    if loaded.run.status.is_final() && !can_undo {
        return Err(CliError::invalid(format!(
            "run {} is {}: it is over, there is nothing to take up (start a new run instead)",
            loaded.run.run_id,
            loaded.run.status.as_str()
        )));
    }
    Ok(loaded)
}

/// `inputs`, the first a run taken up is fed, once tried on a copy of its machine: a refused
/// decision (a changed step while a gate stands rejected, an unsigned change) is refused
/// before anything of the take-up is recorded.
pub fn tried(machine: &Machine, inputs: Vec<Input>) -> Result<Vec<Input>, CliError> {
    let mut trial = machine.clone();
    let now = chrono::Utc::now();
    match inputs
        .iter()
        .find_map(|input| trial.advance(input.clone(), now).err())
    {
        Some(refusal) => Err(CliError::invalid(refusal.to_string())),
        None => Ok(inputs),
    }
}

/// The changed workflow `loaded` found, signed by `by` with `key` when one is given (the
/// state machine requires it when the run has allowed signers, and checks it).
pub fn signed_change(
    loaded: &LoadedRun,
    by: &str,
    key: Option<&std::path::Path>,
) -> Result<Option<WorkflowChange>, CliError> {
    use crate::identity::{Statement, StatementKind, format_time, sign};
    let Some(mut change) = loaded.change.clone() else {
        return Ok(None);
    };
    if let Some(key) = key {
        let statement = Statement {
            kind: StatementKind::ChangeWorkflow,
            run_id: loaded.run.run_id.clone(),
            step: None,
            round: None,
            name: by.to_string(),
            comment: None,
            digest: change.to_digest.clone(),
            at: format_time(chrono::Utc::now()),
            head: None,
        };
        let signed = sign(statement, key).map_err(|e| {
            CliError::invalid(format!("the changed workflow could not be signed: {e}"))
        })?;
        change.signature = Some(
            serde_json::to_value(&signed)
                .map_err(|e| CliError::internal(format!("a signed change: {e}")))?,
        );
    }
    Ok(Some(change))
}

/// What a resume by `by` feeds a loaded run: its interrupted attempts marked, the operator's
/// decisions when there is something to decide (with the changed workflow, when there is
/// one: journaled in the same commit), then the unknown steps decided.
pub fn resume_inputs(
    machine: &Machine,
    by: &str,
    choices: &[(String, Choice)],
    change: Option<WorkflowChange>,
) -> Vec<Input> {
    let mut inputs = vec![Input::Interrupted];
    if let Some(change) = change {
        inputs.push(Input::ResumeChanged {
            by: by.to_string(),
            choices: choices.to_vec(),
            change: Box::new(change),
        });
    } else if machine.paused.is_some() || machine.cancelled || !choices.is_empty() {
        inputs.push(Input::Resume {
            by: by.to_string(),
            choices: choices.to_vec(),
        });
    }
    inputs.push(Input::Recover);
    inputs
}

/// Says which attempts of run `run_id` whose outcome is not known yet still have processes
/// running (their dead driver's guard could not end them): the operator deciding on them
/// should know.
pub fn warn_still_running(run_id: &str, machine: &Machine) {
    use crate::store::StepStatus;
    crate::actions::processes::warn_still_running(run_id, |step| {
        machine
            .step(step)
            .is_some_and(|s| matches!(s.status, StepStatus::Running | StepStatus::Unknown))
    });
}

/// What a rollback by `by` feeds a loaded run.
pub fn rollback_inputs(machine: &Machine, by: &str) -> Vec<Input> {
    let mut inputs = vec![Input::Interrupted];
    if machine.rolling_back {
        // A rollback cut off half-way: take it up where it stopped.
        inputs.push(Input::Recover);
    } else {
        inputs.push(Input::Rollback { by: by.to_string() });
    }
    inputs
}
