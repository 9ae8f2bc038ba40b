//! `drctl run FILE` and `drctl drill FILE`: start a run of a workflow and drive it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::drive::{Drive, base_dir, drive};
use super::error::CliError;
use super::exit;
use super::output::RunFormat;
use super::state::{own, whoami};
use crate::check::check_file;
use crate::dag::Override;
use crate::diagnostic::render_text;
use crate::engine::{NewRun, Run, Services, StartError, Until};
use crate::store::Store;

/// Start a run of a workflow.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Override a workflow parameter (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<Override>,

    /// Who starts the run (default: $USER). The initiator may not approve its own run.
    #[arg(long = "as", value_name = "NAME")]
    pub initiator: Option<String>,

    /// Do not wait for approvals: exit with code 3 as soon as only approvals remain, so a CI
    /// pipeline can approve and resume in later jobs.
    #[arg(long)]
    pub detach: bool,

    /// When the outage began (RFC 3339, e.g. 2026-11-22T03:04:00Z): the RTO clock starts
    /// there instead of at the start of the run, and restores measure RPO from it.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_incident_start)]
    pub incident_start: Option<chrono::DateTime<chrono::Utc>>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,

    /// Sign the run's start with this SSH key: a private key file, or a public key whose
    /// private half is in ssh-agent. Required when the workflow names `allowed_signers`.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
}

fn parse_incident_start(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let t = crate::time::parse_time(text).ok_or_else(|| {
        format!("`{text}` is not an RFC 3339 timestamp such as 2026-11-22T03:04:00Z")
    })?;
    if t > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err(format!(
            "`{text}` is in the future: the incident start is when the outage began"
        ));
    }
    Ok(t)
}

/// Runs `run` (mode `run`) or `drill` (mode `drill`).
pub fn run(
    args: &RunArgs,
    state: &std::path::Path,
    mode: &str,
    services: &Services,
) -> Result<u8, CliError> {
    let checked = check_file(&args.file, &services.registry, &args.params);
    let Some(workflow) = &checked.workflow else {
        eprint!(
            "{}",
            render_text(&checked.source, &checked.diagnostics, super::color_stderr())
        );
        return Err(CliError::invalid(format!(
            "{} is invalid; nothing was run",
            args.file.display()
        )));
    };
    if let Some(agent) = super::state::agent(state)? {
        return hand_over(agent, args, workflow, &checked.source.text, mode);
    }
    let store = own(state)?;
    let new = NewRun {
        workflow,
        workflow_file: args.file.display().to_string(),
        workflow_source: checked.source.text.clone(),
        overrides: args
            .params
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect(),
        mode,
        initiator: whoami(args.initiator.as_ref()),
        incident_start: args.incident_start,
        key: args.key.clone(),
    };
    let dyn_store: Arc<dyn Store> = store.clone();
    let run = Run::start(dyn_store.clone(), &new, &crate::engine::SystemClock).map_err(|e| match e {
        StartError::Store(e) => CliError::from(e),
        StartError::Identity(why) => CliError::invalid(why),
        StartError::NotExecutable(steps) => CliError::invalid(format!(
                "this version of drctl cannot execute {}; nothing was run (drctl plan shows what it would do)",
                steps.join(", ")
            ),
        ),
        StartError::Unfinished(old) => unfinished_refusal(&old, &[]),
    })?;
    let run_id = run.id().to_string();
    // On a shared store with agents standing by, one of them drives the run: started (and
    // its workflow's one unfinished run decided) here, then let go of for them to take up.
    let agents = match super::state::shared() {
        Some(_) => dyn_store.agents()?,
        None => Vec::new(),
    };
    if !agents.is_empty() {
        drop(run);
        let taken_back = (state, &dyn_store, services);
        return hand_to_agents(taken_back, &run_id, &agents, args, workflow, mode);
    }
    print_started(args.format, &run_id, workflow, (mode, &new.initiator), None);
    drive(Drive {
        state_dir: state.to_path_buf(),
        store: dyn_store,
        run,
        base_dir: base_dir(&args.file),
        first: Vec::new(),
        until: until(args),
        format: args.format,
        operator: new.initiator.clone(),
        services: services.clone(),
    })
    .map_err(CliError::from)
}

/// Hands the run to the `drctl serve` agent that owns the store, then follows it in the
/// foreground; with `--detach`, returns once the agent has started it.
fn hand_over(
    mut agent: crate::control::Connection,
    args: &RunArgs,
    workflow: &crate::dag::CompiledWorkflow,
    source: &str,
    mode: &str,
) -> Result<u8, CliError> {
    let absolute = |p: &std::path::Path| {
        std::path::absolute(p)
            .map(|p| p.display().to_string())
            .map_err(|e| CliError::invalid(format!("cannot resolve {}: {e}", p.display())))
    };
    let initiator = whoami(args.initiator.as_ref());
    let request = crate::control::StartRequest {
        // The agent runs elsewhere: paths are given whole.
        file: absolute(&args.file)?,
        source: source.to_string(),
        overrides: args
            .params
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect(),
        mode: mode.to_string(),
        initiator: initiator.clone(),
        incident_start: args.incident_start.map(crate::time::rfc3339),
        key: args.key.as_deref().map(absolute).transpose()?,
    };
    let taken: super::follow::Taken = super::state::ask(
        &mut agent,
        &crate::control::Request::Start(Box::new(request)),
    )?;
    let run_id = taken.run_id.clone();
    print_started(
        args.format,
        &run_id,
        workflow,
        (mode, &initiator),
        Some((
            format!("driven by drctl serve (pid {})", taken.pid),
            ("agent_pid", taken.pid.into()),
        )),
    );
    if args.detach {
        // The agent drives it from here, approvals included: nothing waits on this command.
        if args.format == RunFormat::Text {
            outln!("run {run_id} accepted; follow it with `drctl status {run_id}`");
        }
        return Ok(exit::SUCCESS);
    }
    super::follow::follow(
        super::follow::Via::Socket(agent),
        &run_id,
        &initiator,
        workflow,
        (args.format, &initiator),
    )
}

/// Lets go of run `run_id`, just started on a shared store, for one of `agents` to drive,
/// then follows it in the foreground from the store; with `--detach`, returns once an agent
/// has taken it. When none takes it within the lease and 2 s (they were announced but are
/// gone), this command drives it after all.
fn hand_to_agents(
    (state, store, services): (&std::path::Path, &Arc<dyn Store>, &Services),
    run_id: &str,
    agents: &[crate::store::Owner],
    args: &RunArgs,
    workflow: &crate::dag::CompiledWorkflow,
    mode: &str,
) -> Result<u8, CliError> {
    store.release(run_id)?;
    let initiator = whoami(args.initiator.as_ref());
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    print_started(
        args.format,
        run_id,
        workflow,
        (mode, &initiator),
        Some((
            format!("handed to the agents ({})", names.join(", ")),
            ("agents", names.into()),
        )),
    );
    let lease = super::state::shared().map_or(Duration::from_secs(5), |s| s.lease);
    let deadline = Instant::now() + lease + Duration::from_secs(2);
    while store.owner(run_id)?.is_none() {
        if Instant::now() >= deadline {
            // Taking it back fails only when an agent claimed it meanwhile.
            if store.claim(run_id).is_ok() {
                eprintln!(
                    "no agent took run {run_id} up within {} s; this command drives it",
                    (lease + Duration::from_secs(2)).as_secs()
                );
                return super::resume::take_up_on(
                    (store.clone(), services),
                    state,
                    run_id,
                    (&initiator, args.key.as_deref()),
                    super::load::Purpose::TakeOver,
                    (args.format, until(args)),
                    |_| Vec::new(),
                );
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if args.detach {
        if args.format == RunFormat::Text {
            outln!("run {run_id} accepted; follow it with `drctl status {run_id}`");
        }
        return Ok(exit::SUCCESS);
    }
    super::follow::follow(
        super::follow::Via::Store(store.clone()),
        run_id,
        &initiator,
        workflow,
        (args.format, &initiator),
    )
}

/// Prints the line that says run `run_id` started (scripts read its id from it), in `format`;
/// `driver` says who drives it when this command does not: for people, and as a JSON field.
fn print_started(
    format: RunFormat,
    run_id: &str,
    workflow: &crate::dag::CompiledWorkflow,
    (mode, initiator): (&str, &str),
    driver: Option<(String, (&str, serde_json::Value))>,
) {
    match format {
        RunFormat::Text => {
            let driven = driver
                .map(|(who, _)| format!("; {who}"))
                .unwrap_or_default();
            outln!(
                "run {run_id} started: {} ({mode}), {} steps, as {initiator}{driven}",
                workflow.name,
                workflow.steps.len()
            );
        }
        RunFormat::Json => {
            let mut line =
                serde_json::json!({ "run_id": run_id, "workflow": workflow.name, "mode": mode });
            if let Some((_, (key, value))) = driver {
                line[key] = value;
            }
            outln!("{line}");
        }
    }
}

/// How long this command drives a run: to its end, or with `--detach` until only approvals
/// are left.
fn until(args: &RunArgs) -> Until {
    if args.detach {
        Until::OnlyApprovalsLeft
    } else {
        Until::Done
    }
}

/// The refusal of a second run while `old`, of the same workflow, is unfinished: what it is
/// and how to go on. `driving`: the runs the refusing process drives (it owns the store, so
/// nobody else drives any).
pub(super) fn unfinished_refusal(old: &crate::store::RunRecord, driving: &[String]) -> CliError {
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
