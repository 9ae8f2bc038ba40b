//! Loading a stored run back into a machine: the workflow compiled from the text stored with
//! the run (or the file, for a resume), the journal replayed.

use std::path::Path;
use std::sync::Arc;

use super::error::CliError;
use crate::control::RunDecision;

use crate::actions::Registry;
use crate::check::check_source;
use crate::dag::{CompiledWorkflow, Override};
use crate::diagnostic::{SourceFile, render_text};
use crate::engine::{Input, Run, Services, WorkflowChange, changed_steps, gates_kept, replay};
use crate::store::{JournalEntry, RunRecord, Store};
use crate::stored::stored_workflow;

/// A stored run and the workflow it runs, read and compiled once per load: what a command
/// or the agent drives, or records a decision on, is made from it without reading the
/// store again ([`LoadedRun::into_run`]).
pub struct LoadedRun {
    /// The run record.
    pub run: RunRecord,
    /// Its journal, as read with the record.
    pub journal: Vec<JournalEntry>,
    /// The compiled workflow, shared with the machine that runs or reads it.
    pub workflow: Arc<CompiledWorkflow>,
    /// The text it was compiled from (with the run's overrides): the one the run executes
    /// (its start's, or its last changed workflow's), or the file's as it is now.
    pub text: String,
    /// With `--allow-changed-workflow`, when the file's digest is not the run's: the new
    /// version, to be journaled (and signed) with the resume.
    pub change: Option<WorkflowChange>,
}

impl LoadedRun {
    /// The run ready to be driven or decided on: its journal audited on its workflow (a
    /// signed event that does not verify taints it), its step records read.
    pub fn into_run(self, store: Arc<dyn Store>) -> Result<Run, crate::store::StoreError> {
        Run::from_journal(store, self.run, &self.journal, self.workflow)
    }

    /// Whether the run was written to since this was read (by whoever held it then).
    pub fn moved(&self, store: &dyn Store) -> Result<bool, crate::store::StoreError> {
        Ok(store.run(&self.run.run_id)?.is_none_or(|now| {
            now.journal_len != self.run.journal_len || now.last_hash != self.run.last_hash
        }))
    }
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
    /// Take over a run whose driver is gone (`serve`): exactly what it started with, wherever
    /// its file is or is not now.
    TakeOver,
}

/// Finds run `run_id` and compiles its workflow, as `purpose` needs it.
pub fn load(
    store: &dyn Store,
    run_id: &str,
    purpose: Purpose,
    registry: &Registry,
) -> Result<LoadedRun, CliError> {
    let file_check = !matches!(purpose, Purpose::Record | Purpose::TakeOver);
    let allow_changed = matches!(
        purpose,
        Purpose::Undo
            | Purpose::Continue {
                allow_changed: true
            }
    );
    let run = store.run(run_id)?.ok_or_else(|| {
        CliError::invalid(format!(
            "no run `{run_id}` in this state directory (`drctl runs` lists them)"
        ))
    })?;
    let journal = store.journal(run_id)?;
    let (stored, stored_text) = stored_workflow(store, (&run, &journal), registry)?;
    let stored = Arc::new(stored);
    if !file_check || !Path::new(&run.workflow_file).exists() {
        return Ok(LoadedRun {
            run,
            journal,
            workflow: stored,
            text: stored_text,
            change: None,
        });
    }
    let text = std::fs::read_to_string(&run.workflow_file)
        .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", run.workflow_file)))?;
    let mut current = compile(
        registry,
        &run.workflow_file,
        &text,
        &run.overrides,
        Some(Path::new(&run.workflow_file)),
    )?;
    // Who may approve is what the run captured when it started, whatever the file says now:
    // the digest compares what executes under the same signers.
    current.signers.clone_from(&stored.signers);
    let now = crate::stored::digest_as(&run.digest, &current);
    if now != run.digest {
        if purpose != Purpose::Undo && allow_changed {
            // An edit is no way around an approval that has not passed.
            let machine = replay(Arc::clone(&stored), &run, &journal)?;
            let passed = |id: &str| {
                machine
                    .step(id)
                    .is_some_and(|s| s.status == crate::store::StepStatus::Succeeded)
            };
            gates_kept(&stored, &current, &passed).map_err(|why| {
                CliError::invalid(format!(
                    "{} changed since run {} started and cannot be used to continue it: {why}",
                    run.workflow_file, run.run_id
                ))
            })?;
        }
        if !allow_changed {
            return Err(CliError::invalid(format!(
                "{} changed since run {} started (digest {} then, {} now); resuming could run something else than was started. Pass --allow-changed-workflow to resume with the file as it is now",
                run.workflow_file, run.run_id, run.digest, now
            )));
        }
        // A rollback only takes the compensations from the file; going forward is a new
        // plan, journaled with the resume.
        let change = matches!(purpose, Purpose::Continue { .. }).then(|| WorkflowChange {
            to_digest: now,
            source: text.clone(),
            changed_steps: changed_steps(&stored, &current),
            signature: None,
        });
        return Ok(LoadedRun {
            run,
            journal,
            workflow: Arc::new(current),
            text,
            change,
        });
    }
    Ok(LoadedRun {
        run,
        journal,
        workflow: stored,
        text: stored_text,
        change: None,
    })
}

/// Compiles a workflow text with the actions of `registry`; with `file`, its allowed-signers
/// file is read next to it.
pub fn compile(
    registry: &Registry,
    name: &str,
    text: &str,
    overrides: &[Override],
    file: Option<&Path>,
) -> Result<CompiledWorkflow, CliError> {
    let mut checked = check_source(SourceFile::new(name, text), registry, overrides);
    if let Some(file) = file {
        crate::check::read_signers(&mut checked, file);
    }
    checked.workflow.ok_or_else(|| {
        CliError::invalid(format!(
            "the workflow of this run ({name}) no longer compiles"
        ))
        .with_detail(render_text(&checked.source, &checked.diagnostics, false))
    })
}

/// Applies a decision to a run no live process drives: replay, mark interrupted attempts,
/// decide, journal. How `approve`, `reject` and `cancel` are taken when the run is not live
/// (by the command itself, or by the agent owning the store).
pub fn apply_offline(
    services: &Services,
    store: Arc<dyn Store>,
    decision: &RunDecision,
) -> Result<(), CliError> {
    let run_id = decision.run();
    let inputs = vec![decision.input()];
    let mut run =
        load(store.as_ref(), run_id, Purpose::Record, &services.registry)?.into_run(store)?;
    run.machine.hold = true;
    for input in std::iter::once(Input::Interrupted).chain(inputs) {
        run.record(input, services.clock.now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Reply, RunDecision};

    /// What a take-up read before its claim is seen to be stale once the run's holder wrote
    /// to it: `takeup::prepare` then reads the run again under its claim.
    #[test]
    fn a_run_written_to_since_it_was_read_is_seen_to_have_moved() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (agent, router, store) = crate::service::agent::in_memory(&runtime);
        let taken = agent
            .start_run(crate::service::agent::drill(
                "gated",
                "[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = { approvers = [\"bob\"], timeout = \"1h\" }\n",
            ))
            .unwrap();
        let run = taken.run_id;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.run(&run).unwrap().unwrap().status != crate::store::RunStatus::AwaitingApproval
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never waited"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let loaded = load(store.as_ref(), &run, Purpose::Record, &Registry::builtin()).unwrap();
        assert!(
            !loaded.moved(store.as_ref()).unwrap(),
            "nothing written since"
        );

        // Its driver writes to it (a cancel recorded).
        let cancel = RunDecision::Cancel {
            run: run.clone(),
            by: "bob".into(),
        };
        let answer = runtime.block_on(crate::service::decide(&router, cancel));
        assert!(matches!(answer.into_result(), Ok(Reply::Decided)));
        agent.wait();
        assert!(loaded.moved(store.as_ref()).unwrap(), "written to since");
        let again = load(store.as_ref(), &run, Purpose::Record, &Registry::builtin()).unwrap();
        assert!(!again.moved(store.as_ref()).unwrap());
        assert!(again.journal.len() > loaded.journal.len());
    }
}
