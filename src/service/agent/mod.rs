//! `drctl serve` on the embedded store (SPEC §11): one process owns the state directory and
//! drives any number of runs at once, each a task on the agent's runtime (waiting for their
//! commits' flushes as tasks, so that they share flushes and threads). `drctl run`, `resume` and
//! `rollback` hand their run to it through the control socket and follow it; approvals,
//! cancels and reads reach each run the same way. Still one unfinished run per workflow: the
//! agent starts one run of a workflow at a time (runs of different workflows start at once),
//! so two starts of the same workflow cannot both pass the check.

mod drive;
mod takeover;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};

use super::error::CliError;
use super::takeup::{
    prepare, resume_inputs, rollback_inputs, signed_change, tried, warn_still_running,
};
use crate::control::{Reply, Response, RunDecision, StartRequest, TakeUpHow, Taken};
use crate::engine::{Input, Machine, NewRun, Run, Services, WorkflowChange};
use crate::service::Router;
use crate::service::load::Purpose;
use crate::store::Store;

/// What the agent tells about the runs it drives (its caller prints it).
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

/// The agent: the store it owns and the runs it drives.
pub struct Agent {
    store: Arc<dyn Store>,
    /// What its runs are compiled, decided and driven with.
    services: Services,
    /// Set once the router that holds this agent exists.
    router: OnceLock<Weak<Router>>,
    /// The workflows a run of which is starting: one start per workflow at a time keeps one
    /// unfinished run per workflow.
    starting: Mutex<HashSet<String>>,
    /// Signalled when a workflow's start ends.
    started: Condvar,
    /// Held while a run is put on the router or taken up, and while a decision on a run not
    /// driven here is written: a run is never driven twice, nor decided under its driver.
    taking: Mutex<()>,
    say: Say,
    /// The runtime the runs are driven on, as tasks.
    runtime: tokio::runtime::Handle,
    /// How many runs are being driven (their last messages included), and its changes.
    live: Arc<(Mutex<usize>, Condvar)>,
    /// `--name` and `--key`: what the agent signs the journals of the runs it drives with.
    driver: Option<(String, std::path::PathBuf)>,
    /// Whether the store is shared (etcd): the runs driven here then also take the decisions
    /// left in their inbox.
    inbox: bool,
}

/// Counts a run as driven until it is dropped.
struct Live(Arc<(Mutex<usize>, Condvar)>);

impl Live {
    fn new(live: &Arc<(Mutex<usize>, Condvar)>) -> Self {
        *live.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Self(live.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let (count, changed) = &*self.0;
        *count.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        changed.notify_all();
    }
}

impl Agent {
    /// An agent driving runs of `store` as tasks on `runtime`, and the router its control
    /// socket serves. Its calls block: they are made from threads that may block.
    pub fn new(
        (store, services): (Arc<dyn Store>, Services),
        say: Say,
        runtime: tokio::runtime::Handle,
        driver: Option<(String, std::path::PathBuf)>,
    ) -> (Arc<Self>, Arc<Router>) {
        // On a store shared by several processes (etcd), each run driven here also takes the
        // decisions left in its inbox.
        let inbox = store.shared().is_some();
        let agent = Arc::new(Self {
            store,
            services,
            router: OnceLock::new(),
            starting: Mutex::default(),
            started: Condvar::new(),
            taking: Mutex::new(()),
            say,
            runtime,
            live: Arc::default(),
            driver,
            inbox,
        });
        let router = Router::agent(agent.clone());
        let _ = agent.router.set(Arc::downgrade(&router));
        (agent, router)
    }

    /// The key this agent drives `run` with: its own (`serve --key`), else, for a run it
    /// starts, the initiator's (`run --key`). Refused for a run with allowed signers when
    /// there is none.
    fn driver_key(
        &self,
        signers: Option<&str>,
        started_with: Option<(&str, &Path)>,
    ) -> Result<Option<crate::engine::DriverKey>, CliError> {
        let (name, key) = match (&self.driver, started_with) {
            (Some((name, key)), _) => (name.as_str(), Some(key.as_path())),
            (None, Some((name, key))) => (name, Some(key)),
            (None, None) => ("this agent", None),
        };
        crate::engine::driver_key_for(signers, name, key).map_err(CliError::invalid)
    }

    fn router(&self) -> Result<Arc<Router>, CliError> {
        self.router
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| CliError::internal("the agent is stopping"))
    }

    /// Starts run of `request` and drives it as a task of its own; returns once its start is
    /// durable, with what a follower needs.
    pub fn start_run(&self, request: StartRequest) -> Result<Taken, CliError> {
        let workflow = Arc::new(crate::service::load::compile(
            &self.services.registry,
            &request.file,
            &request.source,
            &request.overrides,
            Some(Path::new(&request.file)),
        )?);
        let router = self.router()?;
        let started_with = request
            .key
            .as_deref()
            .map(|key| (request.initiator.as_str(), Path::new(key)));
        let driver = self.driver_key(workflow.signers.as_deref(), started_with)?;
        let new = NewRun {
            workflow: Arc::clone(&workflow),
            workflow_file: request.file.clone(),
            workflow_source: request.source.clone(),
            overrides: request.overrides.clone(),
            mode: request.mode,
            initiator: request.initiator.clone(),
            incident_start: request.incident_start,
            key: request.key.as_ref().map(std::path::PathBuf::from),
        };
        // The start is recorded here, on the caller's thread, its run put on the router
        // before it exists in the store: nothing takes up a run being driven.
        let (mut run, routed) = {
            let _slot = self.slot(&workflow.name);
            let (starting, routed) = loop {
                let starting = Run::begin(self.store.clone(), &new, self.services.clock.as_ref())
                    .map_err(|e| super::starting::start_refusal(e, &router.driving()))?;
                let _taking = self.taking.lock().unwrap_or_else(PoisonError::into_inner);
                // Another start drew the same id (same second, same 16 random bits).
                if router.drives(starting.id()) {
                    continue;
                }
                let routed = drive::Routed::new(router.clone(), starting.id());
                break (starting, routed);
            };
            // Its commit shares a flush with the runs under way.
            let run = self
                .runtime
                .block_on(starting.record_async())
                .map_err(CliError::from)?;
            (run, routed)
        };
        let id = run.id().to_string();
        tracing::info!(run_id = %id, workflow = %workflow.name, "run handed to the agent: started");
        (self.say)(format!(
            "run {id} started: {} ({}), as {}",
            workflow.name, request.mode, request.initiator
        ));
        let (store, say) = (self.store.clone(), self.say.clone());
        let inbox = self.inbox.then(|| store.clone());
        let services = self.services.clone();
        let base = super::exec::base_dir(Path::new(&request.file));
        let live = Live::new(&self.live);
        let record_id = id.clone();
        // The run as started is driven: its machine and records go to the task whole.
        run.recorder.sign_with(driver);
        self.runtime.spawn(async move {
            let _ =
                drive::drive_here(run, (routed, inbox), (base, &services), Vec::new(), &say).await;
            drop(live);
        });
        Ok(Taken {
            run_id: record_id,
            pid: std::process::id(),
            initiator: request.initiator,
            file: request.file,
            text: request.source,
            overrides: request.overrides,
        })
    }

    /// Takes stored run `run_id` up for `purpose` and drives it as a task of its own, fed
    /// `inputs` first; returns once it is taken, with what a follower needs.
    pub fn take_up_run(
        &self,
        run_id: &str,
        purpose: Purpose,
        inputs: impl FnOnce(&Machine, Option<WorkflowChange>) -> Vec<Input> + Send + 'static,
    ) -> Result<Taken, CliError> {
        self.take_up_signed(run_id, purpose, (String::new(), None), inputs)
    }

    /// As [`Agent::take_up_run`]; a changed workflow found is signed by `by` with `key`.
    fn take_up_signed(
        &self,
        run_id: &str,
        purpose: Purpose,
        (by, key): (String, Option<std::path::PathBuf>),
        inputs: impl FnOnce(&Machine, Option<WorkflowChange>) -> Vec<Input> + Send + 'static,
    ) -> Result<Taken, CliError> {
        let router = self.router()?;
        // A run of its workflow does not start meanwhile (a cancelled run taken up holds its
        // workflow again).
        let workflow = self.store.run(run_id)?.map(|run| run.workflow);
        let _slot = workflow.as_deref().map(|w| self.slot(w));
        let _taking = self.taking.lock().unwrap_or_else(PoisonError::into_inner);
        if router.drives(run_id) {
            return Err(CliError::new(
                super::exit::RUN_ACTIVE,
                format!(
                    "run {run_id} is being driven by this drctl serve already (`drctl status {run_id}`)"
                ),
            ));
        }
        let loaded = prepare(
            self.store.as_ref(),
            run_id,
            purpose,
            &self.services.registry,
        )?;
        let change = signed_change(&loaded, &by, key.as_deref())?;
        let taken = Taken {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            initiator: loaded.run.initiator.clone(),
            file: loaded.run.workflow_file.clone(),
            text: loaded.text.clone(),
            overrides: loaded.run.overrides.clone(),
        };
        // The agent's own key, else the key of who resumes.
        let resumer = key.as_deref().map(|key| (by.as_str(), key));
        let driver = self.driver_key(loaded.workflow.signers.as_deref(), resumer)?;
        let (store, say) = (self.store.clone(), self.say.clone());
        let inbox = self.inbox.then(|| store.clone());
        let services = self.services.clone();
        let base = super::exec::base_dir(Path::new(&loaded.run.workflow_file));
        self.on_task(move |answer| async move {
            let mut run = match loaded.into_run(store.clone()) {
                Ok(run) => run,
                Err(e) => {
                    let _ = answer.send(Err(CliError::from(e)));
                    return;
                }
            };
            run.recorder.sign_with(driver);
            // A refused decision is answered to the command, not found once it follows the
            // run.
            let first = match tried(&run.machine, inputs(&run.machine, change)) {
                Ok(first) => first,
                Err(refusal) => {
                    let _ = answer.send(Err(refusal));
                    return;
                }
            };
            let routed = drive::Routed::new(router, &taken.run_id);
            let _ = answer.send(Ok(taken));
            let _ = drive::drive_here(run, (routed, inbox), (base, &services), first, &say).await;
        })
    }

    /// Runs `drive` as a task of its own and returns what it answers on the channel it is
    /// given (once its run is on the router, or why it could not be driven).
    fn on_task<T: Send + 'static, F>(
        &self,
        drive: impl FnOnce(std::sync::mpsc::Sender<Result<T, CliError>>) -> F,
    ) -> Result<T, CliError>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::channel();
        let live = Live::new(&self.live);
        let driving = drive(answer);
        self.runtime.spawn(async move {
            driving.await;
            drop(live);
        });
        answered.recv().unwrap_or_else(|_| {
            Err(CliError::internal(
                "the run's task ended before its run was under way",
            ))
        })
    }

    /// Takes up every run that was under way when the last process driving this store
    /// stopped (crashed, killed, or an agent stopped), as `resume` after a crash would.
    pub fn take_up_interrupted(&self) -> Result<Vec<String>, CliError> {
        let mut taken = Vec::new();
        for run in self.store.runs()? {
            if !run.status.is_under_way() || run.detached {
                continue;
            }
            match self.take_up_run(&run.run_id, Purpose::TakeOver, |_, _| {
                vec![Input::Interrupted, Input::Recover]
            }) {
                Ok(_) => {
                    tracing::info!(run_id = %run.run_id, "run under way without a driver: taken up");
                    (self.say)(format!("run {}: its driver was gone; taken up", run.run_id));
                    taken.push(run.run_id);
                }
                Err(e) => (self.say)(format!("run {}: not taken up: {e}", run.run_id)),
            }
        }
        Ok(taken)
    }

    /// Waits until no run of `workflow` is starting here, and holds its turn until dropped.
    fn slot(&self, workflow: &str) -> Slot<'_> {
        let mut starting = self.starting.lock().unwrap_or_else(PoisonError::into_inner);
        while starting.contains(workflow) {
            starting = self
                .started
                .wait(starting)
                .unwrap_or_else(PoisonError::into_inner);
        }
        starting.insert(workflow.to_string());
        Slot {
            agent: self,
            workflow: workflow.to_string(),
        }
    }

    /// Waits until every run driven here rests (and has had its last messages sent).
    pub fn wait(&self) {
        let (count, changed) = &*self.live;
        let mut left = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *left > 0 {
            left = changed.wait(left).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A workflow's turn to start (or take up) a run; given back when dropped.
struct Slot<'a> {
    agent: &'a Agent,
    workflow: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.agent
            .starting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.workflow);
        self.agent.started.notify_all();
    }
}

impl crate::service::Agent for Agent {
    fn start(&self, request: StartRequest) -> Response {
        answer(self.start_run(request))
    }

    fn take_up(&self, run: &str, by: &str, how: TakeUpHow) -> Response {
        let by = by.to_string();
        let id = run.to_string();
        let result = match how {
            TakeUpHow::Resume {
                choices,
                allow_changed,
                key,
            } => self.take_up_signed(
                run,
                Purpose::Continue { allow_changed },
                (by.clone(), key.map(std::path::PathBuf::from)),
                move |machine, change| {
                    // In the agent's log, as `resume` says it at its terminal.
                    warn_still_running(&id, machine);
                    resume_inputs(machine, &by, &choices, change)
                },
            ),
            TakeUpHow::Rollback => self.take_up_run(run, Purpose::Undo, move |machine, _| {
                warn_still_running(&id, machine);
                rollback_inputs(machine, &by)
            }),
        };
        answer(result)
    }

    fn record(&self, decision: RunDecision) -> Response {
        let run = decision.run().to_string();
        // Held so that the run is not taken up while the decision is written.
        let _taking = self.taking.lock().unwrap_or_else(PoisonError::into_inner);
        if self.router().is_ok_and(|r| r.drives(&run)) {
            return Response::refused(format!(
                "run {run} was just taken up by this drctl serve; try again"
            ));
        }
        match crate::service::load::apply_offline(&self.services, self.store.clone(), &decision) {
            Ok(()) => Response::reply(Reply::Decided),
            Err(e) => e.refusal(),
        }
    }
}

/// A result as the control socket answers it: the exit code of a refusal kept.
fn answer(result: Result<Taken, CliError>) -> Response {
    match result {
        Ok(taken) => Response::reply(Reply::Taken(Box::new(taken))),
        Err(e) => e.refusal(),
    }
}

#[cfg(test)]
mod tests;

/// An agent on a store in memory, its runs on `runtime`, for tests. The caller keeps the
/// runtime and the router as long as the agent: the agent stops when its router is dropped.
#[cfg(test)]
pub(crate) fn in_memory(
    runtime: &tokio::runtime::Runtime,
) -> (Arc<Agent>, Arc<super::Router>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(crate::store::MemoryStore::new());
    let services = crate::engine::Services::new(crate::aws::AwsContext::new(None));
    let (agent, router) = Agent::new(
        (store.clone(), services),
        Arc::new(|_| {}),
        runtime.handle().clone(),
        None,
    );
    (agent, router, store)
}

/// A drill of workflow `name`, whose steps are `steps` (TOML), as `alice` starts it, for tests.
#[cfg(test)]
pub(crate) fn drill(name: &str, steps: &str) -> crate::control::StartRequest {
    crate::control::StartRequest {
        file: format!("/nowhere/{name}.toml"),
        source: format!("[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n{steps}"),
        overrides: vec![],
        mode: crate::store::RunMode::Drill,
        initiator: "alice".into(),
        incident_start: None,
        key: None,
    }
}
