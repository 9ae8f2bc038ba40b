//! Which runs the process serving the control socket drives, and where each one's decisions
//! go. A foreground `drctl run` drives one run; `drctl serve` drives any number, starts new
//! ones and takes stored ones up (through its [`Agent`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::control::{Response, RunDecision, StartRequest, TakeUpHow};
use crate::engine::ControlRequest;

/// What `drctl serve` does for the commands that hand it a run. Both calls block (they
/// start the run and record its first events) and are made off the runtime's workers.
pub trait Agent: Send + Sync {
    /// Starts a run and drives it; answers `{"run_id": …}` once the start is durable.
    fn start(&self, request: StartRequest) -> Response;
    /// Takes stored run `run` up for `how` and drives it; answers once it is taken.
    fn take_up(&self, run: &str, by: &str, how: TakeUpHow) -> Response;
    /// Records a decision on a run it does not drive.
    fn record(&self, decision: RunDecision) -> Response;
}

/// The runs driven here, and the agent when this process is one.
#[derive(Default)]
pub struct Router {
    runs: Mutex<BTreeMap<String, mpsc::Sender<ControlRequest>>>,
    agent: Option<Arc<dyn Agent>>,
}

impl Router {
    /// The router of a process that drives run `run` alone, its decisions going to `driver`.
    pub fn single(run: &str, driver: mpsc::Sender<ControlRequest>) -> Arc<Self> {
        let router = Self::default();
        router.add(run, driver);
        Arc::new(router)
    }

    /// The router of `drctl serve`, driving no run yet.
    pub fn agent(agent: Arc<dyn Agent>) -> Arc<Self> {
        Arc::new(Self {
            runs: Mutex::default(),
            agent: Some(agent),
        })
    }

    /// The agent, when this process is one.
    pub fn agent_ref(&self) -> Option<&Arc<dyn Agent>> {
        self.agent.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, mpsc::Sender<ControlRequest>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `run` is driven here from now on; its decisions go to `driver`.
    pub fn add(&self, run: &str, driver: mpsc::Sender<ControlRequest>) {
        self.lock().insert(run.to_string(), driver);
    }

    /// Run `run`, whose decisions went to `driver`, is no longer driven here. A later driver
    /// of the same run (taken up again meanwhile) is left in place.
    pub fn remove(&self, run: &str, driver: &mpsc::Sender<ControlRequest>) {
        let mut runs = self.lock();
        if runs.get(run).is_some_and(|d| d.same_channel(driver)) {
            runs.remove(run);
        }
    }

    /// Where decisions on run `run` go, when it is driven here.
    pub fn driver(&self, run: &str) -> Option<mpsc::Sender<ControlRequest>> {
        self.lock().get(run).cloned()
    }

    /// Whether run `run` is driven here.
    pub fn drives(&self, run: &str) -> bool {
        self.lock().contains_key(run)
    }

    /// The runs driven here, by id.
    pub fn driving(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}
