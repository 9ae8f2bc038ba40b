//! The tokio driver: feeds inputs to the [`Machine`], journals what it decides, then acts on
//! it (starts actions, arms timers). Inputs come from finished actions, timers, the control
//! socket (votes, cancel) and the shutdown signal.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info};

use super::clock::Clock;
use super::effect::Effect;
use super::error::EngineError;
use super::event::Event;
use super::exec::resolve;
use super::machine::{Input, Machine};
use super::run::{Advanced, Run};
use super::secrets::Redactor;
use crate::actions::processes::AttemptMark;
use crate::actions::{
    Action, ExecContext, Outputs, PreviousRequest, Probe, Registry, Remember, Resolved, StepError,
};
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
    /// The run: its state and records.
    pub run: Run<'w>,
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
}

impl<'w> Driver<'w> {
    /// A driver for a run whose machine and records are already loaded. The secrets its
    /// workflow reads are read now, and remembered for the process's logs.
    pub fn new(run: Run<'w>, clock: Arc<dyn Clock>, exec: ExecContext, observer: Observer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (previous_tx, previous_rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!(
            "run",
            run_id = %run.id(),
            workflow = %run.machine.workflow().name
        );
        let redactor = Arc::new(Redactor::for_workflow(run.machine.workflow()));
        redactor.remember();
        Self {
            run,
            clock,
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
        }
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

    /// Resolves the step's parameters, builds the context, and runs the call in a task whose
    /// result, secrets scrubbed, comes back as an input.
    fn launch(&mut self, i: usize, call: Call) {
        let spec = &self.run.machine.workflow().steps[i];
        let compensation = match call {
            Call::Compensate => spec.rollback.as_ref(),
            _ => None,
        };
        let (name, args) =
            compensation.map_or((&spec.action, &spec.args), |c| (&c.action, &c.args));
        let Some(action) = Registry::global().get(name) else {
            // Never left running: the step ends as an attempt that did nothing would.
            let why = format!("this drctl has no action `{name}`; nothing was run");
            tracing::error!(parent: &self.span, step = %spec.id, "{why}");
            let step = spec.id.clone();
            let _ = self.tx.send(match call {
                Call::Execute { attempt } => Input::Finished {
                    step,
                    attempt,
                    result: Err((why, crate::actions::Failure::Fatal)),
                },
                Call::Probe => Input::Probed {
                    step,
                    probe: crate::actions::Probe::Undecided(why),
                },
                Call::Compensate => Input::CompensationFinished {
                    step,
                    result: Err((why, crate::actions::Failure::Fatal)),
                },
            });
            return;
        };
        let resolved = resolve(args, &|id| self.output_of(id));
        let span = match call {
            Call::Execute { attempt } => {
                tracing::info_span!(parent: &self.span, "attempt", step = %spec.id, attempt, action = %name)
            }
            Call::Probe => {
                tracing::info_span!(parent: &self.span, "probe", step = %spec.id, action = %name)
            }
            Call::Compensate => {
                tracing::info_span!(parent: &self.span, "compensate", step = %spec.id, action = %name)
            }
        };
        // Only ever logged scrubbed: the values of `${env.NAME}` are in `resolved`.
        if let Ok(args) = &resolved
            && tracing::enabled!(tracing::Level::DEBUG)
        {
            let args = self
                .redactor
                .scrub(&serde_json::Value::Object(args.clone()).to_string());
            debug!(parent: &span, args = %args, "calling the action");
        }
        let mut ctx = self.context(i);
        if let Call::Execute { attempt } = call {
            ctx.remember = Some(Remember {
                step: spec.id.clone(),
                attempt,
                tx: self.previous_tx.clone(),
            });
            // What the attempt starts carries its mark: a later attempt finds it (SPEC §5.8.9).
            ctx.processes.attempt = Some(AttemptMark {
                run: self.run.id().to_string(),
                step: spec.id.clone(),
                attempt,
            });
        }
        let task = Task {
            tx: self.tx.clone(),
            step: spec.id.clone(),
            action,
            undo_itself: compensation.is_none(),
            // Only an action undoing itself reads what its step returned.
            own: match call {
                Call::Compensate if compensation.is_none() => {
                    self.run.machine.steps[i].outputs.clone()
                }
                _ => Outputs::new(),
            },
            timeout: spec.timeout,
            ctx,
            redactor: Arc::clone(&self.redactor),
        };
        // One spawn per kind of call, the call's own future: each task is only as large as
        // what it awaits.
        match call {
            Call::Execute { attempt } => self
                .tasks
                .spawn(task.execute(attempt, resolved).instrument(span)),
            Call::Probe => self.tasks.spawn(task.probe(resolved).instrument(span)),
            Call::Compensate => self.tasks.spawn(task.compensate(resolved).instrument(span)),
        };
    }

    /// What an action of step `i` runs with: the step's timeout, and what the step replaced
    /// as first recorded.
    fn context(&self, i: usize) -> ExecContext {
        ExecContext {
            timeout: self.run.machine.workflow().steps[i].timeout,
            previous: self.run.machine.steps[i].previous.clone(),
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

/// What a task does with a step's action.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// Runs an attempt.
    Execute {
        /// The attempt.
        attempt: u32,
    },
    /// Asks whether a lost attempt took effect.
    Probe,
    /// Undoes the step.
    Compensate,
}

/// Everything a spawned call needs, owned; its result goes back through `tx`.
struct Task {
    tx: mpsc::UnboundedSender<Input>,
    step: String,
    action: &'static dyn Action,
    /// No declared compensation: the action undoes itself from its parameters and outputs.
    undo_itself: bool,
    own: Outputs,
    timeout: Option<std::time::Duration>,
    ctx: ExecContext,
    /// The run's: a step is scrubbed of every secret of the run, not only those it names.
    redactor: Arc<Redactor>,
}

impl Task {
    /// Runs an attempt. Secrets never leave the task: not in outputs, not in errors.
    async fn execute(self, attempt: u32, resolved: Result<Resolved, StepError>) {
        let result = match &resolved {
            Err(e) => Err(e.clone()),
            Ok(args) => run_with_timeout(self.action, args, &self.ctx, self.timeout).await,
        };
        let result = result
            .map(|o| self.redactor.scrub_outputs(o))
            .map_err(|e| (self.redactor.scrub(&e.message), e.failure));
        match &result {
            Ok(outputs) => debug!(
                outputs = %serde_json::Value::Object(outputs.clone()),
                "attempt succeeded"
            ),
            Err((error, failure)) => {
                info!(error = %error, failure = %failure_name(*failure), "attempt failed");
            }
        }
        let _ = self.tx.send(Input::Finished {
            step: self.step,
            attempt,
            result,
        });
    }

    /// Asks whether a lost attempt took effect, within the step's timeout (5 minutes without).
    async fn probe(self, resolved: Result<Resolved, StepError>) {
        let probe = match resolved {
            Err(e) => Probe::Undecided(e.message),
            Ok(args) => {
                let limit = self
                    .ctx
                    .timeout
                    .unwrap_or(std::time::Duration::from_mins(5));
                tokio::time::timeout(limit, self.action.probe(&args, &self.ctx))
                    .await
                    .unwrap_or_else(|_| Probe::Undecided("the probe timed out".into()))
            }
        };
        let probe = match probe {
            Probe::TookEffect(o) => Probe::TookEffect(self.redactor.scrub_outputs(o)),
            Probe::Undecided(why) => Probe::Undecided(self.redactor.scrub(&why)),
            Probe::DidNot => Probe::DidNot,
        };
        match &probe {
            Probe::TookEffect(outputs) => info!(
                outputs = %serde_json::Value::Object(outputs.clone()),
                "probe: the attempt took effect"
            ),
            Probe::DidNot => info!("probe: the attempt had no effect"),
            Probe::Undecided(why) => info!(why = %why, "probe: cannot tell"),
        }
        let _ = self.tx.send(Input::Probed {
            step: self.step,
            probe,
        });
    }

    /// Undoes the step: the action's own undo, or the declared compensation.
    async fn compensate(self, resolved: Result<Resolved, StepError>) {
        let result = match &resolved {
            Err(e) => Err(e.clone()),
            Ok(args) if self.undo_itself => self.action.undo(args, &self.own, &self.ctx).await,
            Ok(args) => run_with_timeout(self.action, args, &self.ctx, self.timeout)
                .await
                .map(|_| ()),
        };
        let result = result.map_err(|e| (self.redactor.scrub(&e.message), e.failure));
        match &result {
            Ok(()) => info!("undone"),
            Err((error, failure)) => {
                info!(error = %error, failure = %failure_name(*failure), "undo failed");
            }
        }
        let _ = self.tx.send(Input::CompensationFinished {
            step: self.step,
            result,
        });
    }
}

/// The name of a failure in logs, as the journal spells it (`no_effect`, `ambiguous`...).
fn failure_name(failure: crate::actions::Failure) -> String {
    serde_json::to_value(failure)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

async fn run_with_timeout(
    action: &'static dyn crate::actions::Action,
    args: &Resolved,
    ctx: &ExecContext,
    timeout: Option<std::time::Duration>,
) -> Result<Outputs, StepError> {
    let future = action.execute(args, ctx);
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
