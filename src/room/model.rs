//! What the incident room shows of a run, as data: the status view and the report exactly as
//! `drctl status` and `drctl report` answer them (asked of the same run service), the workflow's
//! graph laid out by waves, the RTO projected now, the approvals waiting and the timeline of
//! the journal folded by the machine's own `apply`. Built off the runtime's workers; rendered
//! by `pages.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::graph::Graph;
use crate::control::{Handler, Reply, Request};
use crate::engine::{Machine, Redactor, events};
use crate::recovery::{Projection, Remaining};
use crate::report::Report;
use crate::service::{CliError, Host, expect};
use crate::store::{StepStatus, Store};
use crate::view::{RunLine, StatusView};

/// An approval waiting for people.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The approval step.
    pub step: String,
    /// Who may approve, as listed.
    pub approvers: Vec<String>,
    /// How many distinct approvals pass it.
    pub quorum: usize,
    /// What the approvers are asked, when the step says.
    pub message: Option<String>,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Line {
    /// The journal entry's number.
    pub seq: u64,
    /// When it was journaled.
    pub at: String,
    /// What a person reads.
    pub text: String,
}

/// Everything the run page shows.
pub struct RunPage {
    /// As `drctl status --format json` answers.
    pub status: StatusView,
    /// As `drctl report --format json` answers.
    pub report: Report,
    /// The workflow's DAG, laid out by waves.
    pub graph: Graph,
    /// The RTO projected now, while the run goes on.
    pub projection: Option<Projection>,
    /// The approvals waiting.
    pub waiting: Vec<Waiting>,
    /// The timeline of events.
    pub timeline: Vec<Line>,
    /// The first journal entry the page does not show: its event stream starts there.
    pub next: u64,
    /// The run's secrets, hidden in everything the page shows.
    pub redactor: Redactor,
}

/// Asks the run service `request`, as the control socket would.
pub async fn ask<T>(
    host: &Host,
    request: Request,
    pick: fn(Reply) -> Result<T, Reply>,
) -> Result<T, CliError> {
    expect(host.answer(request).await, pick)
}

/// The page of run `run`: its status and report from the run service, the rest from its
/// journal and workflow in `store`.
pub async fn run_page(
    host: &Host,
    store: Arc<dyn Store>,
    registry: Arc<crate::actions::Registry>,
    run: &str,
) -> Result<RunPage, CliError> {
    let status = ask(
        host,
        Request::Status {
            run: run.to_string(),
        },
        |reply| match reply {
            Reply::Status(view) => Ok(*view),
            other => Err(other),
        },
    )
    .await?;
    let report = ask(
        host,
        Request::Report {
            run: run.to_string(),
        },
        |reply| match reply {
            Reply::Report(report) => Ok(*report),
            other => Err(other),
        },
    )
    .await?;
    let run = run.to_string();
    tokio::task::spawn_blocking(move || folded(store.as_ref(), &registry, status, report, &run))
        .await
        .map_err(|e| CliError::internal(e.to_string()))?
}

/// Every run, as `drctl runs --format json` answers.
pub async fn run_lines(host: &Host) -> Result<Vec<RunLine>, CliError> {
    ask(host, Request::Runs, |reply| match reply {
        Reply::Runs(lines) => Ok(lines),
        other => Err(other),
    })
    .await
}

/// The rest of the page, from the run's workflow and its journal folded by the machine.
fn folded(
    store: &dyn Store,
    registry: &crate::actions::Registry,
    status: StatusView,
    report: Report,
    run: &str,
) -> Result<RunPage, CliError> {
    let record = store.run(run)?.ok_or_else(|| {
        CliError::invalid(format!(
            "no run `{run}` in this store (`drctl runs` lists them)"
        ))
    })?;
    let journal = store.journal(run)?;
    let (workflow, _) = crate::stored::stored_workflow(store, (&record, &journal), registry)?;
    let workflow = std::sync::Arc::new(workflow);
    let mut machine = Machine::new(std::sync::Arc::clone(&workflow), "").projected();
    machine.run_id = run.to_string();
    let mut timeline = Vec::new();
    let mut next = 0;
    for recorded in events(run, &journal)? {
        machine.apply(&recorded.event, recorded.time);
        if let Some(text) = crate::view::event_line(&recorded.event, &machine) {
            timeline.push(Line {
                seq: recorded.seq,
                at: recorded.at.clone(),
                text,
            });
        }
        next = recorded.seq + 1;
    }
    let projection = machine.run_projection();
    let waiting = status
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::AwaitingApproval.as_str())
        .filter_map(|s| {
            let policy = workflow.approval(&s.id)?;
            Some(Waiting {
                step: s.id.clone(),
                approvers: policy.approvers.clone(),
                quorum: policy.quorum,
                message: policy.message.clone(),
            })
        })
        .collect();
    let rto_now = projection.and_then(|p| rto_now(&workflow, p, Utc::now()));
    let graph = Graph::layout(&workflow, &status);
    Ok(RunPage {
        redactor: Redactor::for_workflow(&workflow),
        status,
        report,
        graph,
        projection: rto_now,
        waiting,
        timeline,
        next,
    })
}

/// The RTO projected at `now` for a run folded into `p`, while it goes on (not recovered, not
/// over): the clock runs from the incident's start (else the run's), and what remains of the
/// critical path is added to it.
pub fn rto_now(
    workflow: &crate::dag::CompiledWorkflow,
    p: &crate::engine::RunProjection,
    now: chrono::DateTime<Utc>,
) -> Option<Projection> {
    if p.finished.is_some() || p.succeeded_at.is_some() {
        return None;
    }
    let start = p.incident_start.or(p.started_at)?;
    let states: Vec<Remaining> = workflow
        .steps
        .iter()
        .map(|step| match p.step(&step.id) {
            Some(s) if matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped) => {
                Remaining::Done
            }
            Some(s) if s.status == StepStatus::Running => s
                .first_started_at
                .map_or(Remaining::NotStarted, Remaining::RunningSince),
            _ => Remaining::NotStarted,
        })
        .collect();
    let durations: Vec<Duration> = workflow
        .steps
        .iter()
        .map(|s| s.estimate.unwrap_or_default())
        .collect();
    Some(crate::recovery::project(
        workflow, &states, &durations, start, now,
    ))
}

/// A projection in words, as the run page shows it: `projected 4m 10s against 15m — at risk`.
pub fn projected_words(p: &Projection) -> String {
    let mut words = format!(
        "projected {}",
        crate::report::human(p.projected.as_secs_f64())
    );
    if let Some(o) = p.objective {
        words.push_str(&format!(
            " against {}",
            crate::report::human(o.as_secs_f64())
        ));
    }
    if p.at_risk() {
        words.push_str(" — at risk");
    }
    words
}
