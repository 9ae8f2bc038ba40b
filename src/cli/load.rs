//! Loading a stored run back into a machine: the workflow compiled from the text stored with
//! the run (or the file, for a resume), the journal replayed.

use std::path::Path;
use std::sync::Arc;

use super::exit;
use super::state::{Exit, store_exit};
use crate::actions::Registry;
use crate::check::check_source;
use crate::dag::{CompiledWorkflow, Override};
use crate::diagnostic::{SourceFile, render_text};
use crate::engine::{Clock, EngineError, Input, Recorder, SystemClock, digest, gates_kept, replay};
use crate::store::{RunRecord, Store};

/// A stored run and the workflow it runs.
pub struct Loaded {
    /// The run record.
    pub run: RunRecord,
    /// The compiled workflow.
    pub workflow: CompiledWorkflow,
}

/// How a stored run may be taken up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Record a decision; the workflow it started with is used.
    Record,
    /// Go on forward (`resume`): the file on disk must have the run's digest, or with
    /// `--allow-changed-workflow` keep every approval that has not passed.
    Continue {
        /// `--allow-changed-workflow`.
        allow_changed: bool,
    },
    /// Undo (`rollback`): the file as it is now gives the compensations; nothing runs forward.
    Undo,
}

/// Finds run `run_id` and compiles its workflow, as `purpose` needs it.
pub fn load(store: &dyn Store, run_id: &str, purpose: Purpose) -> Result<Loaded, Exit> {
    let file_check = purpose != Purpose::Record;
    let allow_changed = matches!(
        purpose,
        Purpose::Undo
            | Purpose::Continue {
                allow_changed: true
            }
    );
    let run = store
        .run(run_id)
        .map_err(|e| store_exit(&e))?
        .ok_or_else(|| {
            Exit::new(
                exit::INVALID_INPUT,
                format!("no run `{run_id}` in this state directory (`drctl runs` lists them)"),
            )
        })?;
    let overrides: Vec<Override> = run
        .overrides
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let source = store
        .source(run_id)
        .map_err(|e| store_exit(&e))?
        .ok_or_else(|| {
            store_exit(&crate::store::StoreError::BadRecord {
                run: run_id.to_string(),
                reason: "the workflow text it started with is missing".into(),
            })
        })?;
    let mut stored = compile(&run.workflow_file, &source, &overrides, None)?;
    // Who may approve is what the run captured when it started, not the file as it is now.
    stored.signers = stored_signers(store, run_id)?;
    if !file_check || !Path::new(&run.workflow_file).exists() {
        return Ok(Loaded {
            run,
            workflow: stored,
        });
    }
    let text = std::fs::read_to_string(&run.workflow_file).map_err(|e| {
        Exit::new(
            exit::INVALID_INPUT,
            format!("cannot read {}: {e}", run.workflow_file),
        )
    })?;
    let current = compile(
        &run.workflow_file,
        &text,
        &overrides,
        Some(Path::new(&run.workflow_file)),
    )?;
    if digest(&current) != run.digest {
        if purpose != Purpose::Undo && allow_changed {
            // An edit is no way around an approval that has not passed.
            let journal = store.journal(run_id).map_err(|e| store_exit(&e))?;
            let machine = replay(&stored, &run, &journal).map_err(|e| store_exit(&e))?;
            let passed = |id: &str| {
                machine
                    .step(id)
                    .is_some_and(|s| s.status == crate::store::StepStatus::Succeeded)
            };
            gates_kept(&stored, &current, &passed).map_err(|why| {
                Exit::new(
                    exit::INVALID_INPUT,
                    format!(
                        "{} changed since run {} started and cannot be used to continue it: {why}",
                        run.workflow_file, run.run_id
                    ),
                )
            })?;
        }
        if !allow_changed {
            return Err(Exit::new(
                exit::INVALID_INPUT,
                format!(
                    "{} changed since run {} started (digest {} then, {} now); resuming could run something else than was started. Pass --allow-changed-workflow to resume with the file as it is now",
                    run.workflow_file,
                    run.run_id,
                    run.digest,
                    digest(&current)
                ),
            ));
        }
        return Ok(Loaded {
            run,
            workflow: current,
        });
    }
    Ok(Loaded {
        run,
        workflow: stored,
    })
}

/// The allowed-signers text a run captured when it started (its first event), if any.
pub fn stored_signers(store: &dyn Store, run_id: &str) -> Result<Option<String>, Exit> {
    let journal = store.journal(run_id).map_err(|e| store_exit(&e))?;
    Ok(journal.first().and_then(|e| {
        e.event
            .get("allowed_signers")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    }))
}

/// Compiles a workflow text; with `file`, its allowed-signers file is read next to it.
fn compile(
    name: &str,
    text: &str,
    overrides: &[Override],
    file: Option<&Path>,
) -> Result<CompiledWorkflow, Exit> {
    let mut checked = check_source(SourceFile::new(name, text), Registry::global(), overrides);
    if let Some(file) = file {
        crate::check::read_signers(&mut checked, file);
    }
    checked.workflow.ok_or_else(|| {
        eprint!(
            "{}",
            render_text(&checked.source, &checked.diagnostics, false)
        );
        Exit::new(
            exit::INVALID_INPUT,
            format!("the workflow of this run ({name}) no longer compiles"),
        )
    })
}

/// Applies inputs to a run no live process drives: replay, mark interrupted attempts, decide,
/// journal. Used by `approve`, `reject` and `cancel` when the run is not live.
pub fn apply_offline(store: Arc<dyn Store>, run_id: &str, inputs: Vec<Input>) -> Result<(), Exit> {
    let loaded = load(store.as_ref(), run_id, Purpose::Record)?;
    let journal = store.journal(run_id).map_err(|e| store_exit(&e))?;
    let steps = store.steps(run_id).map_err(|e| store_exit(&e))?;
    let mut machine =
        replay(&loaded.workflow, &loaded.run, &journal).map_err(|e| store_exit(&e))?;
    machine.hold = true;
    let mut recorder = Recorder::new(store, loaded.run.clone(), steps);
    let clock = SystemClock;
    for input in std::iter::once(Input::Interrupted).chain(inputs) {
        recorder
            .advance(&mut machine, input, clock.now())
            .map_err(|e| match e {
                EngineError::Refused(r) => Exit::new(exit::INVALID_INPUT, r.0),
                EngineError::Store(e) => store_exit(&e),
            })?;
    }
    Ok(())
}
