//! `drctl resume RUN` and `drctl rollback RUN`: take a stored run up again in this process.

use std::sync::Arc;

use clap::Args;

use super::drive::{Drive, base_dir, drive};
use super::load::load;
use super::output::RunFormat;
use super::state::{Exit, own, store_exit, whoami};
use crate::engine::{Choice, Input, Recorder, Until, replay};
use crate::store::Store;

/// Continue an interrupted, paused or cancelled run.
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run.
    pub run: String,
    /// A step to decide on (repeatable, each followed by its decision).
    #[arg(long, value_name = "ID")]
    pub step: Vec<String>,
    /// The step did take effect: record it as succeeded.
    #[arg(long, requires = "step")]
    pub mark_succeeded: bool,
    /// Run the step again.
    #[arg(long, requires = "step", conflicts_with = "mark_succeeded")]
    pub retry: bool,
    /// Skip the step and go on.
    #[arg(long, requires = "step", conflicts_with_all = ["mark_succeeded", "retry"])]
    pub skip: bool,
    /// Resume even though the workflow file changed since the run started.
    #[arg(long)]
    pub allow_changed_workflow: bool,
    /// Who resumes (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Exit with code 3 as soon as only approvals remain.
    #[arg(long)]
    pub detach: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

/// Undo a run's completed steps.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run.
    pub run: String,
    /// Who rolls back (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

fn report(result: Result<u8, Exit>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}

/// Runs `resume`.
pub fn resume(args: &ResumeArgs, state: &std::path::Path) -> u8 {
    let choice = if args.mark_succeeded {
        Choice::MarkSucceeded
    } else if args.retry {
        Choice::Retry
    } else {
        Choice::Skip
    };
    let choices: Vec<(String, Choice)> = args.step.iter().map(|s| (s.clone(), choice)).collect();
    if !args.step.is_empty() && !args.mark_succeeded && !args.retry && !args.skip {
        return report(Err(Exit::new(
            super::exit::INVALID_INPUT,
            "--step needs a decision: --mark-succeeded, --retry or --skip",
        )));
    }
    let by = whoami(args.by.as_ref());
    report(take_up(
        state,
        &args.run,
        args.allow_changed_workflow,
        false,
        args.format,
        if args.detach {
            Until::OnlyApprovalsLeft
        } else {
            Until::Done
        },
        |machine| {
            let mut inputs = vec![Input::Interrupted];
            if machine.paused.is_some() || machine.cancelled || !choices.is_empty() {
                inputs.push(Input::Resume {
                    by: by.clone(),
                    choices: choices.clone(),
                });
            }
            inputs.push(Input::Recover);
            inputs
        },
    ))
}

/// Runs `rollback`.
pub fn rollback(args: &RollbackArgs, state: &std::path::Path) -> u8 {
    let by = whoami(args.by.as_ref());
    report(take_up(
        state,
        &args.run,
        true,
        true,
        args.format,
        Until::Done,
        |machine| {
            let mut inputs = vec![Input::Interrupted];
            if machine.rolling_back {
                // A rollback cut off half-way: take it up where it stopped.
                inputs.push(Input::Recover);
            } else {
                inputs.push(Input::Rollback { by: by.clone() });
            }
            inputs
        },
    ))
}

fn take_up(
    state: &std::path::Path,
    run_id: &str,
    allow_changed: bool,
    undo: bool,
    format: RunFormat,
    until: Until,
    inputs: impl FnOnce(&crate::engine::Machine<'_>) -> Vec<Input>,
) -> Result<u8, Exit> {
    let store = own(state)?;
    let loaded = load(store.as_ref(), run_id, true, allow_changed)?;
    let can_undo = undo && loaded.run.status != crate::store::RunStatus::RolledBack;
    if loaded.run.status.is_final() && !can_undo {
        return Err(Exit::new(
            super::exit::INVALID_INPUT,
            format!(
                "run {run_id} is {}: it is over, there is nothing to take up (start a new run instead)",
                loaded.run.status.as_str()
            ),
        ));
    }
    let journal = store.journal(run_id).map_err(|e| store_exit(&e))?;
    let steps = store.steps(run_id).map_err(|e| store_exit(&e))?;
    let machine = replay(&loaded.workflow, &loaded.run, &journal).map_err(|e| store_exit(&e))?;
    let first = inputs(&machine);
    let dyn_store: Arc<dyn Store> = store;
    let recorder = Recorder::new(dyn_store.clone(), loaded.run.clone(), steps);
    if format == RunFormat::Text {
        println!(
            "run {run_id} taken up: {} ({})",
            loaded.run.workflow, loaded.run.mode
        );
    }
    drive(Drive {
        state_dir: state.to_path_buf(),
        store: dyn_store,
        machine,
        recorder,
        base_dir: base_dir(std::path::Path::new(&loaded.run.workflow_file)),
        first,
        until,
        format,
    })
    .map_err(|e| Exit::new(super::exit::INTERNAL, format!("{e:#}")))
}
