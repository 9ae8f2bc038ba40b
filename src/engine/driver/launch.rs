//! Turning an effect on a step into a task: the step's action looked up in the registry, its
//! parameters resolved, the task's span and context built, the call spawned.

use std::sync::Arc;

use tracing::{Instrument, debug};

use super::Driver;
use super::task::{Call, Task};
use crate::actions::processes::AttemptMark;
use crate::actions::{ExecContext, Failure, Outputs, Probe, Remember};
use crate::engine::exec::resolve;
use crate::engine::machine::Input;

impl Driver {
    /// Resolves the step's parameters, builds the context, and runs the call in a task whose
    /// result, secrets scrubbed, comes back as an input.
    pub(super) fn launch(&mut self, i: usize, call: Call) {
        let spec = &self.run.machine.workflow().steps[i];
        let compensation = match call {
            Call::Compensate => spec.rollback.as_ref(),
            _ => None,
        };
        let (name, args) =
            compensation.map_or((&spec.action, &spec.args), |c| (&c.action, &c.args));
        let Some(action) = self.registry.shared(name) else {
            // Never left running: the step ends as an attempt that ran nothing, and the run
            // pauses for an operator whatever its `on_failure`.
            let why = format!("this drctl has no action `{name}`; nothing was run");
            tracing::error!(parent: &self.span, step = %spec.id, "{why}");
            let step = spec.id.clone();
            let _ = self.tx.send(match call {
                Call::Execute { attempt } => Input::Finished {
                    step,
                    attempt,
                    result: Err((why, Failure::Missing)),
                },
                Call::Probe => Input::Probed {
                    step,
                    probe: Probe::Undecided(why),
                },
                Call::Compensate => Input::CompensationFinished {
                    step,
                    result: Err((why, Failure::Fatal)),
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
}
