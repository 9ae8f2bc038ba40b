//! What the machine asks the world to do once its events are durable. The machine decides
//! events; [`Machine::effects`] says what each asks for, as data. The driver performs effects
//! and turns their results into inputs; it never looks at an event to decide what to do.

use chrono::{DateTime, Utc};

use super::event::Event;
use super::machine::{Input, Machine};

/// One thing to do outside the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run attempt `attempt` of step `step`'s action (its result comes back as
    /// [`Input::Finished`]).
    Execute {
        /// The step's index.
        step: usize,
        /// The attempt.
        attempt: u32,
    },
    /// Ask the step's action, read-only, whether a lost attempt took effect
    /// ([`Input::Probed`]).
    Probe {
        /// The step's index.
        step: usize,
    },
    /// Undo the step: its declared compensation, or the action's own undo
    /// ([`Input::CompensationFinished`]).
    Compensate {
        /// The step's index.
        step: usize,
    },
    /// Give the machine `input` at `at` (an approval's timeout, a retry's backoff).
    Timer {
        /// When.
        at: DateTime<Utc>,
        /// What.
        input: Input,
    },
}

impl Machine {
    /// The effects `events`, just decided at `now` and journaled, ask for.
    pub fn effects(&self, events: &[Event], now: DateTime<Utc>) -> Vec<Effect> {
        events
            .iter()
            .filter_map(|event| self.effect_of(event, now))
            .collect()
    }

    fn effect_of(&self, event: &Event, now: DateTime<Utc>) -> Option<Effect> {
        let step = self.index(event.step()?)?;
        match event {
            Event::StepStarted { .. } if self.workflow().steps[step].is_approval() => {
                let waiting = self.steps[step].status == crate::store::StepStatus::AwaitingApproval;
                waiting.then(|| self.timeout_of(step)).flatten()
            }
            Event::StepStarted { attempt, .. } => Some(Effect::Execute {
                step,
                attempt: *attempt,
            }),
            Event::StepFailed {
                retry_in_ms: Some(ms),
                ..
            } => Some(Effect::Timer {
                at: now + chrono::Duration::milliseconds(i64::try_from(*ms).unwrap_or(i64::MAX)),
                input: Input::RetryDue {
                    step: self.workflow().steps[step].id.clone(),
                },
            }),
            Event::CompensationStarted { .. } => Some(Effect::Compensate { step }),
            Event::StepProbing { .. } => Some(Effect::Probe { step }),
            _ => None,
        }
    }

    /// The timers a run loaded back must arm again: the timeouts of the approvals it waits for.
    pub fn pending_timers(&self) -> Vec<Effect> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].status == crate::store::StepStatus::AwaitingApproval)
            .filter_map(|i| self.timeout_of(i))
            .collect()
    }

    /// The timer of approval `i`'s current round, when it has a timeout.
    fn timeout_of(&self, i: usize) -> Option<Effect> {
        Some(Effect::Timer {
            at: self.deadline(i)?,
            input: Input::ApprovalTimeout {
                step: self.workflow().steps[i].id.clone(),
            },
        })
    }
}
