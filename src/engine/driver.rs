//! The tokio driver: feeds inputs to the [`Machine`], journals what it decides, then acts on
//! it (starts actions, arms timers). Inputs come from finished actions, timers, the control
//! socket (votes, cancel) and the shutdown signal.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use super::error::EngineError;
use super::event::Event;
use super::exec::resolve;
use super::machine::{Input, Machine};
use super::recorder::Recorder;
use super::secrets::Redactor;
use crate::actions::{ExecContext, Outputs, PreviousRequest, Registry, Remember, StepError};
use crate::store::{RunStatus, StepStatus};

/// A request from another process (through the control socket) or from the terminal.
pub struct ControlRequest {
    /// What to do.
    pub input: Input,
    /// Where to say whether it was taken.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Receives every journaled event, for the terminal, JSON output or reports.
pub type Observer = Box<dyn FnMut(&Event, DateTime<Utc>, &Machine<'_>) + Send>;

/// Called once a second while the run has an RTO objective, events or not, so that what shows
/// the recovery clock can move with it.
pub type TickObserver = Box<dyn FnMut(DateTime<Utc>, &Machine<'_>) + Send>;

/// How long to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until the run is over, paused or cancelled, waiting for approvals as long as it takes.
    Done,
    /// Also stop as soon as only approvals remain (`--detach`).
    OnlyApprovalsLeft,
}

/// Drives one run.
pub struct Driver<'w> {
    /// The state.
    pub machine: Machine<'w>,
    /// The records.
    pub recorder: Recorder,
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
}

impl<'w> Driver<'w> {
    /// A driver for a run whose machine and records are already loaded.
    pub fn new(
        machine: Machine<'w>,
        recorder: Recorder,
        clock: Arc<dyn Clock>,
        exec: ExecContext,
        observer: Observer,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (previous_tx, previous_rx) = mpsc::unbounded_channel();
        Self {
            machine,
            recorder,
            clock,
            exec,
            observer,
            on_tick: None,
            tx,
            rx,
            previous_tx,
            previous_rx,
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Decides, journals and acts on one input. Returns the refusal when the machine does not
    /// take it (nothing recorded).
    pub fn feed(&mut self, input: Input) -> Result<(), EngineError> {
        let now = self.clock.now();
        let events = self.machine.advance(input, now)?;
        self.settle(&events, now)
    }

    /// Decides every input of a batch, then journals all that follows in one commit before
    /// acting on any of it: results that arrive together cost one flush. Refused inputs (a
    /// late result of an attempt no longer current, say) are dropped, as `feed` drops them.
    fn feed_batch(&mut self, inputs: impl Iterator<Item = Input>) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut events = Vec::new();
        for input in inputs {
            if let Ok(more) = self.machine.advance(input, now) {
                events.extend(more);
            }
        }
        self.settle(&events, now)
    }

    /// Journals events already applied to the machine, tells the observer, then acts.
    fn settle(&mut self, events: &[Event], now: DateTime<Utc>) -> Result<(), EngineError> {
        self.recorder.commit(events, &self.machine, now)?;
        for event in events {
            (self.observer)(event, now, &self.machine);
        }
        for event in events {
            self.act(event);
        }
        Ok(())
    }

    /// Calls `f` on every tick of the RTO watch (once a second, when the workflow has an RTO).
    pub fn on_tick(&mut self, f: TickObserver) {
        self.on_tick = Some(f);
    }

    /// Re-arms what a loaded run was waiting for: approval timeouts and, for steps whose
    /// retry was due, the retry.
    pub fn rearm(&mut self) {
        self.arm_approval_timers();
    }

    fn arm_approval_timers(&mut self) {
        for (step, deadline) in self.machine.approval_deadlines() {
            let wait = (deadline - self.clock.now()).to_std().unwrap_or_default();
            let tx = self.tx.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = tx.send(Input::ApprovalTimeout { step });
            });
        }
    }

    fn act(&mut self, event: &Event) {
        match event {
            Event::StepStarted { step, attempt } => {
                let Some(i) = self.machine.index(step) else {
                    return;
                };
                let spec = &self.machine.workflow().steps[i];
                if spec.is_approval() {
                    if let Some((_, deadline)) = self
                        .machine
                        .approval_deadlines()
                        .into_iter()
                        .find(|(s, _)| s == step)
                    {
                        let wait = (deadline - self.clock.now()).to_std().unwrap_or_default();
                        let (tx, step) = (self.tx.clone(), step.clone());
                        self.tasks.spawn(async move {
                            tokio::time::sleep(wait).await;
                            let _ = tx.send(Input::ApprovalTimeout { step });
                        });
                    }
                    return;
                }
                let Some(action) = Registry::global().get(&spec.action) else {
                    return;
                };
                let resolved = resolve(&spec.args, &|id| self.output_of(id));
                let ctx = ExecContext {
                    remember: Some(Remember {
                        step: step.clone(),
                        attempt: *attempt,
                        tx: self.previous_tx.clone(),
                    }),
                    ..self.context(i)
                };
                let (tx, step, attempt, timeout) =
                    (self.tx.clone(), step.clone(), *attempt, spec.timeout);
                let redactor = Redactor::for_args([&spec.args]);
                self.tasks.spawn(async move {
                    let result = match resolved {
                        Err(e) => Err(e),
                        Ok(args) => run_with_timeout(action, args, ctx, timeout).await,
                    };
                    // Secrets never leave the attempt: not in outputs, not in errors.
                    let _ = tx.send(Input::Finished {
                        step,
                        attempt,
                        result: result
                            .map(|o| redactor.scrub_outputs(o))
                            .map_err(|e| (redactor.scrub(&e.message), e.failure)),
                    });
                });
            }
            Event::StepFailed {
                step,
                retry_in_ms: Some(ms),
                ..
            } => {
                let (tx, step, ms) = (self.tx.clone(), step.clone(), *ms);
                self.tasks.spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    let _ = tx.send(Input::RetryDue { step });
                });
            }
            Event::CompensationStarted { step } => self.compensate(step),
            Event::StepProbing { step, .. } => self.probe(step),
            _ => {}
        }
    }

    fn probe(&mut self, step: &str) {
        let Some(i) = self.machine.index(step) else {
            return;
        };
        let spec = &self.machine.workflow().steps[i];
        let Some(action) = Registry::global().get(&spec.action) else {
            return;
        };
        let resolved = resolve(&spec.args, &|id| self.output_of(id));
        let ctx = self.context(i);
        let (tx, step) = (self.tx.clone(), step.to_string());
        let redactor = Redactor::for_args([&spec.args]);
        self.tasks.spawn(async move {
            let probe = match resolved {
                Err(e) => crate::actions::Probe::Undecided(e.message),
                Ok(args) => {
                    let limit = ctx.timeout.unwrap_or(std::time::Duration::from_mins(5));
                    tokio::time::timeout(limit, action.probe(&args, &ctx))
                        .await
                        .unwrap_or_else(|_| {
                            crate::actions::Probe::Undecided("the probe timed out".into())
                        })
                }
            };
            let probe = match probe {
                crate::actions::Probe::TookEffect(o) => {
                    crate::actions::Probe::TookEffect(redactor.scrub_outputs(o))
                }
                crate::actions::Probe::Undecided(why) => {
                    crate::actions::Probe::Undecided(redactor.scrub(&why))
                }
                crate::actions::Probe::DidNot => crate::actions::Probe::DidNot,
            };
            let _ = tx.send(Input::Probed { step, probe });
        });
    }

    fn compensate(&mut self, step: &str) {
        let Some(i) = self.machine.index(step) else {
            return;
        };
        let spec = &self.machine.workflow().steps[i];
        let (tx, step_id) = (self.tx.clone(), step.to_string());
        let Some(compensation) = &spec.rollback else {
            // The action undoes itself from its parameters and the outputs it recorded.
            let resolved = resolve(&spec.args, &|id| self.output_of(id));
            let own = self.machine.steps[i].outputs.clone();
            let ctx = self.context(i);
            let Some(action) = Registry::global().get(&spec.action) else {
                return;
            };
            let redactor = Redactor::for_args([&spec.args]);
            self.tasks.spawn(async move {
                let result = match resolved {
                    Err(e) => Err(e),
                    Ok(args) => action.undo(&args, &own, &ctx).await,
                };
                let _ = tx.send(Input::CompensationFinished {
                    step: step_id,
                    result: result.map_err(|e| (redactor.scrub(&e.message), e.failure)),
                });
            });
            return;
        };
        let resolved = resolve(&compensation.args, &|id| self.output_of(id));
        let ctx = self.context(i);
        let timeout = spec.timeout;
        let Some(action) = Registry::global().get(&compensation.action) else {
            return;
        };
        let redactor = Redactor::for_args([&spec.args, &compensation.args]);
        self.tasks.spawn(async move {
            let result = match resolved {
                Err(e) => Err(e),
                Ok(args) => run_with_timeout(action, args, ctx, timeout).await,
            };
            let _ = tx.send(Input::CompensationFinished {
                step: step_id,
                result: result
                    .map(|_| ())
                    .map_err(|e| (redactor.scrub(&e.message), e.failure)),
            });
        });
    }

    /// What an action of step `i` runs with: the step's timeout, and what the step replaced
    /// as first recorded.
    fn context(&self, i: usize) -> ExecContext {
        ExecContext {
            timeout: self.machine.workflow().steps[i].timeout,
            previous: self.machine.steps[i].previous.clone(),
            remember: None,
            ..self.exec.clone()
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
        self.machine
            .step(id)
            .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::RolledBack))
            .map(|s| &s.outputs)
    }

    fn resting(&self, until: Until) -> bool {
        let status = self.machine.status();
        let running = self.machine.count_of(StepStatus::Running) > 0
            || (self.machine.rolling_back
                && self
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
        mut control: Option<mpsc::Receiver<ControlRequest>>,
        shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Result<RunStatus, EngineError> {
        let mut inputs = VecDeque::from([first]);
        let mut shutdown = Some(shutdown);
        // The RTO watch needs time to pass even when nothing else happens.
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watch_rto = self.machine.workflow().rto.is_some();
        loop {
            if !inputs.is_empty() {
                self.feed_batch(inputs.drain(..))?;
            }
            if self.resting(until) {
                return Ok(self.machine.status());
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
                    match self.feed(request.input) {
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
                        f(self.clock.now(), &self.machine);
                    }
                }
                () = async { match shutdown.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    shutdown = None;
                    inputs.push_back(Input::Cancel { by: "interrupt (Ctrl-C)".into() });
                }
            }
        }
    }
}

async fn run_with_timeout(
    action: &'static dyn crate::actions::Action,
    args: crate::actions::Resolved,
    ctx: ExecContext,
    timeout: Option<std::time::Duration>,
) -> Result<Outputs, StepError> {
    let future = action.execute(&args, &ctx);
    match timeout {
        // The attempt may have acted before its time ran out: ambiguous, never proof of no
        // effect.
        Some(t) => tokio::time::timeout(t, future).await.unwrap_or_else(|_| {
            Err(StepError::ambiguous(format!(
                "timed out after {}",
                crate::workflow::format_duration(t)
            )))
        }),
        None => future.await,
    }
}
