//! The tokio driver: feeds inputs to the [`Machine`], journals what it decides, then acts on
//! it (starts actions, arms timers). Inputs come from finished actions, timers, the control
//! socket (votes, cancel) and the shutdown signal.

mod launch;
mod task;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, info};

use super::clock::Clock;
use super::effect::Effect;
use super::error::EngineError;
use super::event::Event;
use super::machine::{Input, Machine};
use super::run::{Advanced, Run};
use super::secrets::{Redactor, Registered};
use super::services::Services;
use crate::actions::{ExecContext, Outputs, PreviousRequest, Registry};
use crate::store::{RunStatus, StepStatus};
use task::Call;

/// A request from another process (through the control socket) or from the terminal.
pub struct ControlRequest {
    /// What to do.
    pub input: Input,
    /// Where to say whether it was taken.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Receives every journaled event, for the terminal, JSON output or reports.
pub type Observer = Box<dyn FnMut(&Event, DateTime<Utc>, &Machine) + Send>;

/// Called once a second while the run has an RTO objective, events or not, so that what shows
/// the recovery clock can move with it.
pub type TickObserver = Box<dyn FnMut(DateTime<Utc>, &Machine) + Send>;

/// How long to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until the run is over, paused or cancelled, waiting for approvals as long as it takes.
    Done,
    /// Also stop as soon as only approvals remain (`--detach`).
    OnlyApprovalsLeft,
}

/// Drives one run.
pub struct Driver {
    /// The run: its state and records.
    pub run: Run,
    clock: Arc<dyn Clock>,
    exec: ExecContext,
    observer: Observer,
    on_tick: Option<TickObserver>,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    /// Values self-undoing actions are about to replace, to journal before they act.
    previous_tx: mpsc::UnboundedSender<PreviousRequest>,
    previous_rx: mpsc::UnboundedReceiver<PreviousRequest>,
    tasks: tokio::task::JoinSet<()>,
    /// The run's span (`run_id`, `workflow`): every log line about the run is in it.
    span: tracing::Span,
    /// Every secret the run reads, scrubbed from what each of its steps returns.
    redactor: Arc<Redactor>,
    /// The same secrets, registered for the process's log lines while the run is driven.
    registered: Registered,
    /// Where the run's steps find their actions.
    registry: Arc<Registry>,
}

impl Driver {
    /// A driver for a run whose machine and records are already loaded, its actions from
    /// `services`' registry, its time from their clock. The secrets its workflow reads are
    /// read now, and registered with `services`' redactors for the process's logs until the
    /// driver (and every [`Driver::registered`] clone) is dropped.
    pub fn new(run: Run, services: &Services, exec: ExecContext, observer: Observer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (previous_tx, previous_rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!(
            "run",
            run_id = %run.id(),
            workflow = %run.machine.workflow().name
        );
        let redactor = Arc::new(Redactor::for_workflow(run.machine.workflow()));
        let registered = services.redactors.register(run.id(), redactor.clone());
        Self {
            run,
            clock: services.clock.clone(),
            exec,
            observer,
            on_tick: None,
            tx,
            rx,
            previous_tx,
            previous_rx,
            tasks: tokio::task::JoinSet::new(),
            span,
            redactor,
            registered,
            registry: services.registry.clone(),
        }
    }

    /// The registration of the run's secrets for the process's logs: kept while a clone is,
    /// for what is logged about the run after its driver is gone (its last messages).
    pub fn registered(&self) -> Registered {
        self.registered.clone()
    }

    /// Decides, journals and acts on one input. Returns the refusal when the machine does not
    /// take it (nothing recorded).
    pub fn feed(&mut self, input: Input) -> Result<(), EngineError> {
        let now = self.clock.now();
        let advanced = self.run.advance(input, now)?;
        self.settle(advanced, now);
        Ok(())
    }

    /// As [`Driver::feed`] while driving: the commit is awaited as a task, so that the runs
    /// of one process share its threads while they wait for their flushes.
    pub async fn feed_async(&mut self, input: Input) -> Result<(), EngineError> {
        let now = self.clock.now();
        let advanced = self.run.advance_async(input, now).await?;
        self.settle(advanced, now);
        Ok(())
    }

    /// Decides and journals a batch in one commit (see [`Run::advance_all`]), then acts.
    async fn feed_batch(&mut self, inputs: impl Iterator<Item = Input>) -> Result<(), EngineError> {
        let now = self.clock.now();
        let advanced = self.run.advance_all_async(inputs, now).await?;
        self.settle(advanced, now);
        Ok(())
    }

    /// Tells the observer about journaled events, then does what they ask.
    fn settle(&mut self, advanced: Advanced, now: DateTime<Utc>) {
        for event in &advanced.events {
            super::trace::event(&self.span, event);
            (self.observer)(event, now, &self.run.machine);
        }
        for effect in advanced.effects {
            self.perform(effect);
        }
    }

    /// Calls `f` on every tick of the RTO watch (once a second, when the workflow has an RTO).
    pub fn on_tick(&mut self, f: TickObserver) {
        self.on_tick = Some(f);
    }

    /// Re-arms what a loaded run was waiting for: the timeouts of its approvals.
    pub fn rearm(&mut self) {
        for effect in self.run.pending() {
            self.perform(effect);
        }
    }

    /// Does what the machine asked for.
    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Timer { at, input } => {
                let wait = (at - self.clock.now()).to_std().unwrap_or_default();
                let tx = self.tx.clone();
                self.tasks.spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(input);
                });
            }
            Effect::Execute { step, attempt } => self.launch(step, Call::Execute { attempt }),
            Effect::Probe { step } => self.launch(step, Call::Probe),
            Effect::Compensate { step } => self.launch(step, Call::Compensate),
        }
    }

    /// Journals the value a self-undoing action is about to replace, then lets it go on.
    fn record_previous(&mut self, request: PreviousRequest) -> Result<(), EngineError> {
        let input = Input::RecordPrevious {
            step: request.step,
            attempt: request.attempt,
            previous: request.previous,
        };
        match self.feed(input) {
            Ok(()) => {
                let _ = request.reply.send(Ok(()));
                Ok(())
            }
            Err(EngineError::Refused(refusal)) => {
                let _ = request.reply.send(Err(refusal.to_string()));
                Ok(())
            }
            Err(e) => {
                let _ = request.reply.send(Err(e.to_string()));
                Err(e)
            }
        }
    }

    /// The outputs of step `id`, once it succeeded (or was undone after succeeding).
    fn output_of(&self, id: &str) -> Option<&Outputs> {
        self.run
            .machine
            .step(id)
            .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::RolledBack))
            .map(|s| &s.outputs)
    }

    fn resting(&self, until: Until) -> bool {
        let status = self.run.machine.status();
        let running = self.run.machine.count_of(StepStatus::Running) > 0
            || (self.run.machine.rolling_back
                && self
                    .run
                    .machine
                    .steps
                    .iter()
                    .any(|s| s.undo == super::machine::Undo::Running));
        match status {
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::RolledBack => true,
            RunStatus::Paused | RunStatus::Cancelled => !running,
            RunStatus::AwaitingApproval => until == Until::OnlyApprovalsLeft,
            RunStatus::Running | RunStatus::RollingBack => false,
        }
    }

    /// Drives the run from `first` until it rests (over, paused, cancelled, or only approvals
    /// left with [`Until::OnlyApprovalsLeft`]). A shutdown (Ctrl-C) cancels: running steps end,
    /// nothing new starts, and the run can be resumed.
    pub async fn drive(
        &mut self,
        first: Input,
        until: Until,
        control: Option<mpsc::Receiver<ControlRequest>>,
        shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Result<RunStatus, EngineError> {
        let span = self.span.clone();
        self.drive_in_span(first, until, control, shutdown)
            .instrument(span)
            .await
    }

    async fn drive_in_span(
        &mut self,
        first: Input,
        until: Until,
        mut control: Option<mpsc::Receiver<ControlRequest>>,
        shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Result<RunStatus, EngineError> {
        let mut inputs = VecDeque::from([first]);
        let mut shutdown = Some(shutdown);
        // The RTO watch needs time to pass even when nothing else happens.
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watch_rto = self.run.machine.workflow().rto.is_some();
        loop {
            if !inputs.is_empty() {
                self.feed_batch(inputs.drain(..)).await?;
            }
            // Finished tasks have sent their result; let go of what they hold.
            while self.tasks.try_join_next().is_some() {}
            if self.resting(until) {
                return Ok(self.run.machine.status());
            }
            tokio::select! {
                Some(input) = self.rx.recv() => {
                    inputs.push_back(input);
                    // Take every result already there: one commit for concurrent transitions.
                    while let Ok(more) = self.rx.try_recv() {
                        inputs.push_back(more);
                    }
                }
                Some(request) = self.previous_rx.recv() => self.record_previous(request)?,
                Some(request) = async { match control.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                    match self.feed_async(request.input).await {
                        Ok(()) => {
                            let _ = request.reply.send(Ok(()));
                        }
                        Err(EngineError::Refused(refusal)) => {
                            let _ = request.reply.send(Err(refusal.to_string()));
                        }
                        // The decision is applied but not journaled: stop before anything
                        // builds on it. The journal is where the run resumes from.
                        Err(e) => {
                            let _ = request.reply.send(Err(e.to_string()));
                            return Err(e);
                        }
                    }
                }
                _ = ticker.tick(), if watch_rto => {
                    inputs.push_back(Input::Tick);
                    if let Some(f) = self.on_tick.as_mut() {
                        f(self.clock.now(), &self.run.machine);
                    }
                }
                () = async { match shutdown.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    info!("interrupted: cancelling the run");
                    shutdown = None;
                    inputs.push_back(Input::Cancel { by: "interrupt (Ctrl-C)".into() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
