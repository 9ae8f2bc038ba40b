//! Driving one run inside the agent, as a task on the agent's runtime (a commit waiting for
//! its flush holds up this run alone, and commits of different runs meet in one flush), its
//! decisions routed to it while it is driven.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Say;
use crate::control::Router;
use crate::engine::{ControlRequest, Driver, Input, Run, SystemClock, Until};
use crate::store::RunStatus;

/// How a run driven here ended up.
pub type Outcome = Result<RunStatus, String>;

/// Takes `run` off the router when its driving ends, however it ends.
struct Routed<'r> {
    router: &'r Router,
    run: String,
    driver: mpsc::Sender<ControlRequest>,
}

impl Drop for Routed<'_> {
    fn drop(&mut self) {
        self.router.remove(&self.run, &self.driver);
    }
}

/// Drives `run` until it rests, `first` fed before it goes on. `ready` is called once the
/// run is on `router` (its decisions and followers reach it from then on).
pub(super) async fn drive_here(
    run: Run<'_>,
    router: &Router,
    base_dir: PathBuf,
    first: Vec<Input>,
    say: &Say,
    ready: impl FnOnce(&str),
) -> Outcome {
    let id = run.id().to_string();
    let (control_tx, control_rx) = mpsc::channel(16);
    router.add(&id, control_tx.clone());
    let routed = Routed {
        router,
        run: id.clone(),
        driver: control_tx,
    };
    ready(&id);
    let announcer = crate::notify::Announcer::for_run(run.machine.workflow(), &id);
    let outbox = announcer.as_ref().map(crate::notify::Announcer::outbox);
    let outcome = drive(run, base_dir, first, control_rx, announcer).await;
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

async fn drive(
    run: Run<'_>,
    base_dir: PathBuf,
    first: Vec<Input>,
    control: mpsc::Receiver<ControlRequest>,
    announcer: Option<crate::notify::Announcer>,
) -> Outcome {
    let exec = super::super::drive::exec_context(&run.recorder.run, base_dir);
    let observer = super::super::drive::with_events(Box::new(|_, _, _| {}), announcer);
    let mut driver = Driver::new(run, Arc::new(SystemClock), exec, observer);
    driver.rearm();
    for input in first {
        driver.feed_async(input).await.map_err(|e| e.to_string())?;
    }
    driver
        .drive(
            Input::Start,
            Until::Done,
            Some(control),
            Box::pin(std::future::pending()),
        )
        .await
        .map_err(|e| e.to_string())
}
