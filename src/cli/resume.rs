//! `drctl resume RUN` and `drctl rollback RUN`: take a stored run up again in this process.

use std::sync::Arc;

use clap::Args;

use super::drive::{Drive, drive};
use super::error::CliError;
use super::output::RunFormat;
use super::state::{Session, whoami};
use crate::control::TakeUpHow;
use crate::engine::{Choice, Input, Until, driver_key_for};
use crate::service::exec::base_dir;
use crate::service::load::Purpose;
use crate::service::takeup::{
    prepare, resume_inputs, rollback_inputs, signed_change, tried, warn_still_running,
};
use crate::store::Store;

/// Continue an interrupted, paused or cancelled run.
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run.
    pub run: String,
    /// A step to decide on (repeatable, each followed by its decision:
    /// `--step s3 --mark-succeeded --step s4 --retry`).
    #[arg(long, value_name = "ID")]
    pub step: Vec<String>,
    /// The step before it did take effect: record it as succeeded.
    #[arg(long, requires = "step", action = clap::ArgAction::Count)]
    pub mark_succeeded: u8,
    /// Run the step before it again (on a rejected approval: ask again, with fresh votes).
    #[arg(long, requires = "step", action = clap::ArgAction::Count)]
    pub retry: u8,
    /// Skip the step before it and go on (refused on a rejected approval).
    #[arg(long, requires = "step", action = clap::ArgAction::Count)]
    pub skip: u8,
    /// Resume even though the workflow file changed since the run started: the new version
    /// is journaled (`workflow_changed`) and is what the run executes from here on.
    #[arg(long)]
    pub allow_changed_workflow: bool,
    /// Who resumes (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// The SSH key this process drives the run with (a private key file, or a public key whose
    /// private half is in ssh-agent): it signs the run's journal where the run rests, and a
    /// changed workflow. Required when the run has allowed signers, which must let it sign as
    /// NAME (namespaces `drctl-journal`, and `drctl-approval` for a change).
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
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
    /// The SSH key this process drives the rollback with (see `resume --key`).
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

/// Pairs each `--step ID` with the one decision flag that follows it, before the next
/// `--step`, from the positions clap recorded. A single decision applies to every step given.
fn choices(
    args: &ResumeArgs,
    matches: Option<&clap::ArgMatches>,
) -> Result<Vec<(String, Choice)>, CliError> {
    let invalid = |m: String| CliError::invalid(m);
    if args.step.is_empty() {
        return Ok(Vec::new());
    }
    // A flag not given still has its default, at a position after every real argument.
    let indices = |id: &str| -> Vec<usize> {
        matches
            .filter(|m| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let steps = indices("step");
    let mut decisions: Vec<(usize, Choice)> = [
        ("mark_succeeded", Choice::MarkSucceeded),
        ("retry", Choice::Retry),
        ("skip", Choice::Skip),
    ]
    .into_iter()
    .flat_map(|(id, choice)| indices(id).into_iter().map(move |at| (at, choice)))
    .collect();
    decisions.sort_by_key(|(at, _)| *at);
    if steps.len() != args.step.len() {
        return Err(invalid(
            "could not tell which decision goes with which --step".into(),
        ));
    }
    // One decision for every step, wherever it stands: `--retry --step a --step b`.
    if let [(_, choice)] = decisions.as_slice() {
        return Ok(args.step.iter().map(|s| (s.clone(), *choice)).collect());
    }
    let mut chosen = Vec::with_capacity(steps.len());
    for (n, (&at, step)) in steps.iter().zip(&args.step).enumerate() {
        let until = steps.get(n + 1).copied().unwrap_or(usize::MAX);
        let mine: Vec<Choice> = decisions
            .iter()
            .filter(|(d, _)| *d > at && *d < until)
            .map(|(_, c)| *c)
            .collect();
        match mine.as_slice() {
            [choice] => chosen.push((step.clone(), *choice)),
            [] => {
                return Err(invalid(format!(
                    "--step {step} needs a decision after it: --mark-succeeded, --retry or --skip"
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "--step {step} has more than one decision; give one of --mark-succeeded, --retry or --skip"
                )));
            }
        }
    }
    if let Some(&(first, _)) = decisions.first()
        && first < steps[0]
    {
        return Err(invalid(
            "a decision comes before any --step: write --step ID and then its decision".into(),
        ));
    }
    Ok(chosen)
}

/// Runs `resume`.
pub fn resume(
    args: &ResumeArgs,
    matches: Option<&clap::ArgMatches>,
    session: &Session,
) -> Result<u8, CliError> {
    let choices = choices(args, matches)?;
    let by = whoami(args.by.as_ref());
    let allow_changed = args.allow_changed_workflow;
    // An agent runs elsewhere: the key's path is given whole.
    let key = args
        .key
        .as_deref()
        .map(|p| {
            std::path::absolute(p)
                .map_err(|e| CliError::invalid(format!("cannot resolve {}: {e}", p.display())))
        })
        .transpose()?;
    if let Some(agent) = session.agent()? {
        let how = TakeUpHow::Resume {
            choices,
            allow_changed,
            key: key.map(|k| k.display().to_string()),
        };
        return hand_over((session, agent), &args.run, &by, how, args.format);
    }
    let store = session.own()?;
    let loaded = prepare(
        store.as_ref(),
        &args.run,
        Purpose::Continue { allow_changed },
        &session.services().registry,
    )?;
    let change = signed_change(&loaded, &by, key.as_deref())?;
    take_up_loaded(
        store,
        session,
        loaded,
        (&by, key.as_deref()),
        (
            args.format,
            if args.detach {
                Until::OnlyApprovalsLeft
            } else {
                Until::Done
            },
        ),
        |machine| resume_inputs(machine, &by, &choices, change),
    )
}

/// Runs `rollback`.
pub fn rollback(args: &RollbackArgs, session: &Session) -> Result<u8, CliError> {
    let by = whoami(args.by.as_ref());
    if let Some(agent) = session.agent()? {
        return hand_over(
            (session, agent),
            &args.run,
            &by,
            TakeUpHow::Rollback,
            args.format,
        );
    }
    take_up(
        session,
        &args.run,
        (&by, args.key.as_deref()),
        Purpose::Undo,
        (args.format, Until::Done),
        |machine| rollback_inputs(machine, &by),
    )
}

/// Hands run `run` to the agent serving the store, to take up for `how`, and follows it.
fn hand_over(
    (session, mut agent): (&Session, crate::control::Connection),
    run: &str,
    by: &str,
    how: TakeUpHow,
    format: RunFormat,
) -> Result<u8, CliError> {
    let request = crate::control::Request::TakeUp {
        run: run.to_string(),
        by: by.to_string(),
        how,
    };
    let taken = crate::service::hand_over(&mut agent, &request)?;
    let workflow = super::follow::compile_taken(&taken, &session.services().registry)?;
    if format == RunFormat::Text {
        outln!(
            "run {run} taken up by drctl serve (pid {}): {}",
            taken.pid,
            workflow.name
        );
    }
    super::follow::follow(
        super::follow::Via::Socket(agent),
        run,
        &taken.initiator,
        &workflow,
        (format, by),
    )
}

/// Takes run `run_id` up in this process, for `purpose`, feeding it `inputs` first, and drives
/// it. On a shared store, the run is claimed first: refused when another process drives it.
pub(super) fn take_up(
    session: &Session,
    run_id: &str,
    operator: (&str, Option<&std::path::Path>),
    purpose: Purpose,
    (format, until): (RunFormat, Until),
    inputs: impl FnOnce(&crate::engine::Machine) -> Vec<Input>,
) -> Result<u8, CliError> {
    take_up_on(
        session.own()?,
        session,
        run_id,
        operator,
        purpose,
        (format, until),
        inputs,
    )
}

/// As [`take_up`], on `store`, already open (a run this process holds there stays held).
pub(super) fn take_up_on(
    store: Arc<dyn Store>,
    session: &Session,
    run_id: &str,
    (operator, key): (&str, Option<&std::path::Path>),
    purpose: Purpose,
    (format, until): (RunFormat, Until),
    inputs: impl FnOnce(&crate::engine::Machine) -> Vec<Input>,
) -> Result<u8, CliError> {
    let loaded = prepare(
        store.as_ref(),
        run_id,
        purpose,
        &session.services().registry,
    )?;
    take_up_loaded(
        store,
        session,
        loaded,
        (operator, key),
        (format, until),
        inputs,
    )
}

/// As [`take_up_on`], for a run already prepared.
fn take_up_loaded(
    store: Arc<dyn Store>,
    session: &Session,
    loaded: crate::service::load::LoadedRun,
    (operator, key): (&str, Option<&std::path::Path>),
    (format, until): (RunFormat, Until),
    inputs: impl FnOnce(&crate::engine::Machine) -> Vec<Input>,
) -> Result<u8, CliError> {
    let run_id = loaded.run.run_id.clone();
    let (workflow_name, mode) = (loaded.run.workflow.clone(), loaded.run.mode);
    let base_dir = base_dir(std::path::Path::new(&loaded.run.workflow_file));
    let dyn_store = store;
    let mut run = loaded.into_run(dyn_store.clone())?;
    run.recorder.sign_with(
        driver_key_for(run.machine.signers.as_deref(), operator, key).map_err(CliError::invalid)?,
    );
    warn_still_running(&run_id, &run.machine);
    let first = tried(&run.machine, inputs(&run.machine))?;
    if format == RunFormat::Text {
        outln!("run {run_id} taken up: {workflow_name} ({mode})");
    }
    drive(Drive {
        session: session.clone(),
        store: dyn_store,
        run,
        base_dir,
        first,
        until,
        format,
        operator: operator.to_string(),
    })
    .map_err(CliError::from)
}
