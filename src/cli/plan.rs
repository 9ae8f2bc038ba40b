//! `drctl plan FILE`: the dry run, for review before a change window or in a pull request.

use crate::service::Session;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::exit;
use crate::check::check_file;
use crate::dag::Override;
use crate::diagnostic::render_text;
use crate::plan::{LiveMode, Plan, dot, mermaid, render_json};

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A readable review.
    Text,
    /// Machine-readable, with the fields of SPEC §4.
    Json,
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Show what a workflow would do.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Override a workflow parameter (repeatable): `--param standby_region=us-west-2`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<Override>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

    /// Do not look up live state (AWS) for the steps.
    #[arg(long)]
    pub offline: bool,

    /// Treat warnings (lints) as errors: exit 2 when there are any.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs `plan`. Invalid workflows print their diagnostics to stderr and exit 2.
pub fn plan(args: &PlanArgs, session: &Session) -> anyhow::Result<u8> {
    let services = session.services();
    let registry = &services.registry;
    let checked = check_file(&args.file, registry, &args.params);
    let Some(workflow) = &checked.workflow else {
        eprint!(
            "{}",
            render_text(&checked.source, &checked.diagnostics, super::color_stderr())
        );
        eprintln!(
            "error: {} is invalid; nothing was planned",
            args.file.display()
        );
        return Ok(exit::INVALID_INPUT);
    };
    let live = if args.offline {
        LiveMode::Offline
    } else {
        LiveMode::Live
    };
    // Past runs of this workflow, when the state directory has any, predict better than
    // estimates: the median duration of each step.
    let (medians, runs) = history_medians(session, &workflow.name);
    let predicted = if runs > 0 {
        workflow.with_history(&medians)
    } else {
        workflow.clone()
    };
    let mut plan = Plan::build(&predicted, registry, &checked.diagnostics, live);
    plan.prediction_source = if runs > 0 {
        format!(
            "median durations of {runs} past succeeded run(s), estimates where a step has no history"
        )
    } else {
        "steps' estimates (no past runs of this workflow)".into()
    };
    if live == LiveMode::Live {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(crate::plan::look_up(
            &mut plan,
            workflow,
            registry,
            services.aws.clone(),
        ));
    }
    let rendered = match args.format {
        PlanFormat::Text => crate::plan::render_text(&plan, &args.file.display().to_string()),
        PlanFormat::Json => render_json(&plan),
        PlanFormat::Dot => dot(&plan),
        PlanFormat::Mermaid => mermaid(&plan),
    };
    super::output::write_stdout(&rendered);
    if args.deny_warnings && checked.diagnostics.warning_count() > 0 {
        eprintln!(
            "error: {} warning(s) and --deny-warnings",
            checked.diagnostics.warning_count()
        );
        return Ok(exit::INVALID_INPUT);
    }
    Ok(exit::SUCCESS)
}

/// Step medians from the state directory: through the live process, or by opening the store
/// when one exists (a plan never creates a state directory).
fn history_medians(
    session: &Session,
    workflow: &str,
) -> (std::collections::HashMap<String, f64>, usize) {
    if let Ok(Some(mut connection)) = crate::control::connect(session.dir()) {
        let request = crate::control::Request::Medians {
            workflow: workflow.to_string(),
        };
        return crate::service::ask(&mut connection, &request)
            .ok()
            .and_then(|response| response.into_result().ok())
            .and_then(|reply| match reply {
                crate::control::Reply::Medians(medians, runs) => Some((medians, runs)),
                _ => None,
            })
            .unwrap_or_default();
    }
    if !session.dir().join("store").exists() {
        return (std::collections::HashMap::new(), 0);
    }
    crate::store::SledStore::open(session.dir())
        .ok()
        .and_then(|store| crate::report::step_medians(&store, workflow).ok())
        .unwrap_or_default()
}
