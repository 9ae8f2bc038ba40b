//! `drctl run FILE` and `drctl drill FILE`: start a run of a workflow and drive it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::drive::{Drive, drive};
use super::error::CliError;
use super::exit;
use super::follow::Via;
use super::output::RunFormat;
use super::state::{Session, whoami};
use crate::check::check_file;
use crate::dag::Override;
use crate::diagnostic::render_text;
use crate::engine::Until;
use crate::service::exec::base_dir;
use crate::service::{AGENT_GRACE, StartSpec, Started};
use crate::store::RunMode;

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
pub fn run(args: &RunArgs, session: &Session, mode: RunMode) -> Result<u8, CliError> {
    let checked = check_file(&args.file, &session.services().registry, &args.params);
    let Some(workflow) = checked.workflow.map(std::sync::Arc::new) else {
        eprint!(
            "{}",
            render_text(&checked.source, &checked.diagnostics, super::color_stderr())
        );
        return Err(CliError::invalid(format!(
            "{} is invalid; nothing was run",
            args.file.display()
        )));
    };
    let spec = StartSpec {
        file: args.file.clone(),
        workflow: std::sync::Arc::clone(&workflow),
        source: checked.source.text.clone(),
        overrides: args.params.clone(),
        mode,
        initiator: whoami(args.initiator.as_ref()),
        incident_start: args.incident_start,
        key: args.key.clone(),
    };
    let initiator = spec.initiator.clone();
    let started = (args.format, (mode.as_str(), initiator.as_str()));
    match session.start(&spec)? {
        Started::Here { run, store } => {
            print_started(started, run.id(), &workflow, None);
            drive(Drive {
                session: session.clone(),
                store,
                run: *run,
                base_dir: base_dir(&args.file),
                first: Vec::new(),
                until: until(args),
                format: args.format,
                operator: initiator.clone(),
            })
            .map_err(CliError::from)
        }
        Started::ByAgent { taken, agent } => {
            let driven = format!("driven by drctl serve (pid {})", taken.pid);
            let pid = ("agent_pid", taken.pid.into());
            print_started(started, &taken.run_id, &workflow, Some((driven, pid)));
            follow_or_detach(args, Via::Socket(agent), &taken.run_id, &workflow)
        }
        Started::Handed {
            run_id,
            agents,
            store,
        } => {
            let names = format!("handed to the agents ({})", agents.join(", "));
            let json = ("agents", agents.into());
            print_started(started, &run_id, &workflow, Some((names, json)));
            let shared = store.shared().ok_or_else(|| {
                CliError::internal("runs are handed to agents only on a shared store")
            })?;
            if !session.await_agent(shared, &run_id)? {
                let lease = session.shared().map_or(Duration::from_secs(5), |s| s.lease);
                eprintln!(
                    "no agent took run {run_id} up within {} s; this command drives it",
                    (lease + AGENT_GRACE).as_secs()
                );
                return super::resume::take_up_on(
                    store,
                    session,
                    &run_id,
                    (&initiator, args.key.as_deref()),
                    crate::service::load::Purpose::TakeOver,
                    (args.format, until(args)),
                    |_| Vec::new(),
                );
            }
            follow_or_detach(args, Via::Store(store), &run_id, &workflow)
        }
    }
}

/// Follows run `run_id`, driven by an agent, in the foreground; with `--detach`, returns now.
fn follow_or_detach(
    args: &RunArgs,
    via: Via,
    run_id: &str,
    workflow: &std::sync::Arc<crate::dag::CompiledWorkflow>,
) -> Result<u8, CliError> {
    if args.detach {
        // The agent drives it from here, approvals included: nothing waits on this command.
        if args.format == RunFormat::Text {
            outln!("run {run_id} accepted; follow it with `drctl status {run_id}`");
        }
        return Ok(exit::SUCCESS);
    }
    let initiator = whoami(args.initiator.as_ref());
    super::follow::follow(via, run_id, &initiator, workflow, (args.format, &initiator))
}

/// Prints the line that says run `run_id` started (scripts read its id from it), in `format`;
/// `driver` says who drives it when this command does not: for people, and as a JSON field.
fn print_started(
    (format, (mode, initiator)): (RunFormat, (&str, &str)),
    run_id: &str,
    workflow: &crate::dag::CompiledWorkflow,
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
