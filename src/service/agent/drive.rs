//! Driving one run inside the agent, as a task on the agent's runtime (a commit waiting for
//! its flush holds up this run alone, and commits of different runs meet in one flush), its
//! decisions routed to it while it is driven.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Say;
use crate::engine::{ControlRequest, Driver, Input, Registered, Run, Services, Until};
use crate::service::Router;
use crate::store::{RunStatus, Store};

/// How a run driven here ended up.
pub type Outcome = Result<RunStatus, String>;

/// A run on the router: its decisions and followers reach its driver from then on. Takes the
/// run off the router when dropped, however its driving ends.
pub(super) struct Routed {
    router: Arc<Router>,
    run: String,
    driver: mpsc::Sender<ControlRequest>,
}

/// A run on the router, and what is sent to it.
pub(super) type OnRouter = (Routed, mpsc::Receiver<ControlRequest>);

impl Routed {
    /// Puts run `run` on `router`; what is sent to it arrives on the receiver.
    pub(super) fn new(router: Arc<Router>, run: &str) -> OnRouter {
        let (driver, control) = mpsc::channel(16);
        router.add(run, driver.clone());
        let routed = Self {
            router,
            run: run.to_string(),
            driver,
        };
        (routed, control)
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        self.router.remove(&self.run, &self.driver);
    }
}

/// Drives `run`, already on the router (`routed`), until it rests, `first` fed before it goes
/// on.
pub(super) async fn drive_here(
    run: Run,
    ((routed, control_rx), shared): (OnRouter, Option<Arc<dyn Store>>),
    (base_dir, services): (PathBuf, &Services),
    first: Vec<Input>,
    say: &Say,
) -> Outcome {
    let id = run.id().to_string();
    let announcer = crate::notify::Announcer::for_run(run.machine.workflow(), &id);
    let outbox = announcer.as_ref().map(crate::notify::Announcer::outbox);
    // On a shared store, decisions also come through the run's inbox, to the same driver.
    let inbox = shared
        .clone()
        .and_then(|store| crate::service::Inbox::open(store, id.clone(), routed.driver.clone()));
    // The run's secrets stay registered for the logs until its last messages are gone.
    let (outcome, _secrets) = drive(run, (base_dir, services), first, control_rx, announcer).await;
    // The requests it took are answered (a vote that ended the run), then it takes no more.
    if let Some(inbox) = inbox {
        inbox.close().await;
    }
    // Driven no more here, the run is let go of on a shared store, however its driving ended:
    // at rest, an operator takes it up from there; stopped by an error, another agent (or
    // this one, at its next look) takes it over. Letting go deletes the owner key only while
    // it is still this process's: a run another process took over is left to it.
    if let Some(store) = shared {
        let run = id.clone();
        let release = move || store.shared().map(|shared| shared.release(&run));
        if let Ok(Some(Err(e))) = tokio::task::spawn_blocking(release).await {
            tracing::warn!(run_id = %id, error = %e, "cannot let go of the run");
        }
    }
    drop(routed);
    match &outcome {
        Ok(status) => say(format!(
            "run {id} {}: rests (exit code {})",
            status.as_str(),
            crate::service::exit::of_status(*status)
        )),
        Err(why) => say(format!("run {id} stopped: {why}")),
    }
    // The run is off the router; its last messages get a moment (on a thread that may
    // block), which an agent stopping (`serve --once`) waits for.
    if let Some(outbox) = outbox {
        let _ = tokio::task::spawn_blocking(move || outbox.drain(crate::notify::EXIT_GRACE)).await;
    }
    outcome
}

async fn drive(
    run: Run,
    (base_dir, services): (PathBuf, &Services),
    first: Vec<Input>,
    control: mpsc::Receiver<ControlRequest>,
    announcer: Option<crate::notify::Announcer>,
) -> (Outcome, Option<Registered>) {
    let exec = super::super::exec::exec_context(&run.recorder.run, base_dir, services);
    let observer = super::super::exec::with_events(Box::new(|_, _, _| {}), announcer);
    let mut driver = Driver::new(run, services, exec, observer);
    let secrets = Some(driver.registered());
    driver.rearm();
    for input in first {
        if let Err(e) = driver.feed_async(input).await {
            return (Err(e.to_string()), secrets);
        }
    }
    let outcome = driver
        .drive(
            Input::Start,
            Until::Done,
            Some(control),
            Box::pin(std::future::pending()),
        )
        .await
        .map_err(|e| e.to_string());
    (outcome, secrets)
}
