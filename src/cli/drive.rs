//! Driving a run from the command line: the runtime, the control socket, Ctrl-C, the
//! printer, and the exit code. Shared by `run`, `drill`, `resume` and `rollback`.

use crate::service::Session;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use std::io::IsTerminal;

use super::output::{LiveView, RunFormat, exit_code, printer, summary};
use crate::control::serve;
use crate::engine::{Driver, Input, Run, Until};
use crate::service::Host;
use crate::service::exec::{exec_context, with_events};
use crate::store::{RunStatus, Store};

/// Everything needed to drive a loaded or new run.
pub struct Drive {
    /// The state directory or shared store it is driven on.
    pub session: Session,
    /// The store, owned by this process.
    pub store: Arc<dyn Store>,
    /// The run.
    pub run: Run,
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
}

/// Drives the run until it rests; prints its summary; returns the exit code.
pub fn drive(d: Drive) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(drive_async(d))
}

async fn drive_async(d: Drive) -> anyhow::Result<u8> {
    let run_id = d.run.recorder.run.run_id.clone();
    let (control_tx, control_rx) = mpsc::channel(16);
    // A shared store has no local socket: others read the store itself and leave decisions
    // in the run's inbox there.
    let socket = match d.session.shared() {
        Some(_) => None,
        None => Some(serve(
            d.session.dir(),
            Host::new(
                d.store.clone(),
                crate::service::Router::single(&run_id, control_tx.clone()),
            ),
        )?),
    };
    let inbox = d.session.shared().and_then(|_| {
        crate::service::Inbox::open(d.store.clone(), run_id.clone(), control_tx.clone())
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
    let services = d.session.services();
    let exec = exec_context(&d.run.recorder.run, d.base_dir, services);
    let mut driver = Driver::new(d.run, services, exec, observer);
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
        inbox.close().await;
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
