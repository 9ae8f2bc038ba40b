//! Driving a run from the command line: the runtime, the control socket, Ctrl-C, the
//! printer, and the exit code. Shared by `run`, `drill`, `resume` and `rollback`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use std::io::IsTerminal;

use super::output::{LiveView, RunFormat, exit_code, printer, summary};
use crate::actions::ExecContext;
use crate::control::serve;
use crate::engine::{Driver, Input, Run, Services, Until};
use crate::store::{RunStatus, Store};

/// Everything needed to drive a loaded or new run.
pub struct Drive<'w> {
    /// The state directory (for the control socket).
    pub state_dir: PathBuf,
    /// The store, owned by this process.
    pub store: Arc<dyn Store>,
    /// The run.
    pub run: Run<'w>,
    /// Where relative paths in steps are taken from.
    pub base_dir: PathBuf,
    /// Inputs to feed before driving (a resume's decisions, a rollback).
    pub first: Vec<Input>,
    /// Stop when only approvals remain.
    pub until: Until,
    /// How to print.
    pub format: RunFormat,
    /// The person at this terminal (`--as`, else `$USER`): an approval offered here is voted
    /// in their name, under the same rules as any vote.
    pub operator: String,
    /// What the run's steps use: actions, AWS, clock, the log's redactors.
    pub services: Services,
}

/// Drives the run until it rests; prints its summary; returns the exit code.
pub fn drive(d: Drive<'_>) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(drive_async(d))
}

async fn drive_async(d: Drive<'_>) -> anyhow::Result<u8> {
    let run_id = d.run.recorder.run.run_id.clone();
    let (control_tx, control_rx) = mpsc::channel(16);
    // A shared store has no local socket: others read the store itself and leave decisions
    // in the run's inbox there.
    let socket = match super::state::shared() {
        Some(_) => None,
        None => Some(serve(
            &d.state_dir,
            d.store.clone(),
            crate::control::Router::single(&run_id, control_tx.clone()),
        )?),
    };
    let inbox = super::state::shared().map(|_| {
        tokio::spawn(serve_inbox(
            d.store.clone(),
            run_id.clone(),
            control_tx.clone(),
        ))
    });
    let live = (d.format == RunFormat::Text && std::io::stdout().is_terminal()).then(|| {
        // Approvals are offered at this terminal only when someone can answer there.
        let offer = std::io::stdin()
            .is_terminal()
            .then(|| (d.operator.clone(), control_tx));
        Arc::new(LiveView::new(offer))
    });
    let announcer = crate::notify::Announcer::for_run(d.run.machine.workflow(), &run_id);
    let outbox = announcer.as_ref().map(crate::notify::Announcer::outbox);
    let observer = with_events(printer(run_id.clone(), d.format, live.clone()), announcer);
    let exec = exec_context(&d.run.recorder.run, d.base_dir, &d.services);
    let mut driver = Driver::new(d.run, &d.services, exec, observer);
    driver.rearm();
    if let Some(view) = &live {
        let view = view.clone();
        driver.on_tick(Box::new(move |_, machine| view.update(machine)));
    }
    for input in d.first {
        if let Err(e) = driver.feed(input) {
            eprintln!("error: {e}");
            return Ok(super::exit::INVALID_INPUT);
        }
    }
    let shutdown = Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let status = driver
        .drive(Input::Start, d.until, Some(control_rx), shutdown)
        .await?;
    // Answer the requests already taken (a vote that ended the run) before going away.
    if let Some(socket) = socket {
        socket.close().await;
    }
    if let Some(inbox) = inbox {
        inbox.abort();
    }
    if status == RunStatus::AwaitingApproval {
        driver.run.recorder.release()?;
    }
    if let Some(view) = &live {
        view.finish();
    }
    if d.format == RunFormat::Text {
        outln!("{}", summary(&run_id, status, &driver.run.machine));
    }
    // The run rests; its last messages (run_finished, an approval waiting) get a moment to
    // leave before the process exits.
    if let Some(outbox) = outbox {
        outbox.drain(crate::notify::EXIT_GRACE);
    }
    Ok(exit_code(status))
}

/// `observer`, then the run events the workflow sends to people, when it sends any.
pub(super) fn with_events(
    mut observer: crate::engine::Observer,
    announcer: Option<crate::notify::Announcer>,
) -> crate::engine::Observer {
    match announcer {
        None => observer,
        Some(mut announcer) => Box::new(move |event, at, machine| {
            observer(event, at, machine);
            announcer.observe(event, at, machine);
        }),
    }
}

/// How often the driver of a run on a shared store looks at the run's inbox.
const INBOX_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Takes the decisions and cancels left in the run's inbox on a shared store, hands each to
/// the driver as the socket would, and leaves the answer where the sender waits for it.
async fn serve_inbox(
    store: Arc<dyn Store>,
    run_id: String,
    driver: mpsc::Sender<crate::engine::ControlRequest>,
) {
    let router = crate::control::Router::single(&run_id, driver);
    loop {
        tokio::time::sleep(INBOX_POLL).await;
        let (s, r) = (store.clone(), run_id.clone());
        let Ok(Ok(requests)) = tokio::task::spawn_blocking(move || s.inbox(&r)).await else {
            continue;
        };
        for (id, bytes) in requests {
            // Taken first: a request its sender withdrew meanwhile is not applied.
            let (s, r, i) = (store.clone(), run_id.clone(), id.clone());
            match tokio::task::spawn_blocking(move || s.take_request(&r, &i)).await {
                Ok(Ok(true)) => {}
                _ => continue,
            }
            let response = match serde_json::from_slice::<crate::control::Request>(&bytes) {
                Ok(request) => crate::control::decide(&router, request).await,
                Err(e) => crate::control::Response::refused(format!("an unreadable request: {e}")),
            };
            let answer = serde_json::to_vec(&response).unwrap_or_default();
            let (s, r) = (store.clone(), run_id.clone());
            let _ = tokio::task::spawn_blocking(move || s.answer(&r, &id, &answer)).await;
        }
    }
}

/// What the actions of run `run` are given: where relative paths start, the AWS clients of
/// `services`, and when the outage began (RPO of restores is measured from it when the
/// operator gave it, else from the run's start).
pub(super) fn exec_context(
    run: &crate::store::RunRecord,
    base_dir: PathBuf,
    services: &Services,
) -> ExecContext {
    ExecContext {
        base_dir,
        timeout: None,
        aws: services.aws.clone(),
        incident_start: run
            .incident_start
            .as_deref()
            .or(Some(run.started_at.as_str()))
            .and_then(crate::time::parse_time)
            .unwrap_or_else(chrono::Utc::now),
        previous: None,
        remember: None,
        processes: crate::actions::processes::StepProcesses {
            // This binary guards the shell steps it starts (`drctl step-guard`).
            guard: std::env::current_exe().ok(),
            attempt: None,
        },
    }
}

/// The directory relative paths of a workflow file are taken from.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
