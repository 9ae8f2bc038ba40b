//! Driving one run inside the agent, as a task on the agent's runtime (a commit waiting for
//! its flush holds up this run alone, and commits of different runs meet in one flush), its
//! decisions routed to it while it is driven.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Say;
use crate::control::Router;
use crate::engine::{ControlRequest, Driver, Input, Registered, Run, Services, Until};
use crate::store::RunStatus;

/// How a run driven here ended up.
pub type Outcome = Result<RunStatus, String>;

/// A run on the router: its decisions and followers reach its driver from then on. Takes the
/// run off the router when dropped, however its driving ends.
pub(super) struct Routed {
    router: Arc<Router>,
    run: String,
    driver: mpsc::Sender<ControlRequest>,
}

impl Routed {
    /// Puts run `run` on `router`; what is sent to it arrives on the receiver.
    pub(super) fn new(router: Arc<Router>, run: &str) -> (Self, mpsc::Receiver<ControlRequest>) {
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
    run: Run<'_>,
    (routed, control_rx): (Routed, mpsc::Receiver<ControlRequest>),
    (base_dir, services): (PathBuf, &Services),
    first: Vec<Input>,
    say: &Say,
) -> Outcome {
    let id = run.id().to_string();
    let announcer = crate::notify::Announcer::for_run(run.machine.workflow(), &id);
    let outbox = announcer.as_ref().map(crate::notify::Announcer::outbox);
    // The run's secrets stay registered for the logs until its last messages are gone.
    let (outcome, _secrets) = drive(run, (base_dir, services), first, control_rx, announcer).await;
    drop(routed);
    match &outcome {
        Ok(status) => say(format!("run {id} {}", status.as_str())),
        Err(why) => say(format!("run {id} stopped: {why}")),
    }
    // The run is off the router; its last messages get a moment (on a thread that may
    // block), which an agent stopping (`serve --once`) waits for.
    if let Some(outbox) = outbox {
        let _ = tokio::task::spawn_blocking(move || outbox.drain(crate::notify::EXIT_GRACE)).await;
    }
    outcome
}

/// Drives `run` until it rests; with the outcome, the registration of its secrets for the
/// logs.
async fn drive(
    run: Run<'_>,
    (base_dir, services): (PathBuf, &Services),
    first: Vec<Input>,
    control: mpsc::Receiver<ControlRequest>,
    announcer: Option<crate::notify::Announcer>,
) -> (Outcome, Registered) {
    let exec = super::super::drive::exec_context(&run.recorder.run, base_dir, services);
    let observer = super::super::drive::with_events(Box::new(|_, _, _| {}), announcer);
    let mut driver = Driver::new(run, services, exec, observer);
    let secrets = driver.registered();
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
