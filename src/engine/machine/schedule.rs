//! Which steps start next, forward and in rollback, within `concurrency` and the retry
//! backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::event::Event;
use super::super::pause::PauseReason;
use super::{Machine, Undo};
use crate::actions::Effect;
use crate::store::{RunStatus, StepStatus};
use crate::workflow::OnFailure;

impl Machine {
    /// Starts what is ready, ends what is done, follows `on_failure`.
    pub(super) fn schedule(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        if self.finished.is_some() || self.paused.is_some() || self.hold {
            return;
        }
        if let Some(why) = &self.tainted
            && !self.rolling_back
        {
            let reason = PauseReason::Tampered { why: why.clone() };
            self.emit(Event::RunPaused { reason }, now, out);
            return;
        }
        if self.rolling_back {
            self.schedule_rollback(now, out);
            return;
        }
        let first_failed = if self.count_of(StepStatus::Failed) > 0 {
            self.steps
                .iter()
                .position(|s| s.status == StepStatus::Failed)
        } else {
            None
        };
        if let Some(first) = first_failed {
            let id = &self.workflow.steps[first].id;
            let error = self.steps[first].error.clone().unwrap_or_default();
            match self.workflow.on_failure {
                OnFailure::Pause => {
                    let reason = PauseReason::StepFailed {
                        step: id.clone(),
                        error,
                    };
                    self.emit(Event::RunPaused { reason }, now, out);
                }
                OnFailure::Abort => self.emit(
                    Event::RunFinished {
                        status: RunStatus::Failed,
                    },
                    now,
                    out,
                ),
                OnFailure::Rollback => {
                    if !self
                        .steps
                        .iter()
                        .any(|s| s.status == StepStatus::Running && !s.retry_pending)
                    {
                        self.emit(
                            Event::RollbackStarted {
                                by: "on_failure".into(),
                            },
                            now,
                            out,
                        );
                        self.schedule_rollback(now, out);
                    }
                }
            }
            return;
        }
        if self.count_of(StepStatus::Unknown) > 0 {
            return;
        }
        if !self.cancelled {
            for i in self.startable() {
                if self.held_by(i).is_some() {
                    continue;
                }
                let step = self.workflow.steps[i].id.clone();
                self.emit(Event::StepStarted { step, attempt: 1 }, now, out);
            }
        }
        let done = self.count_of(StepStatus::Succeeded) + self.count_of(StepStatus::Skipped);
        if done == self.steps.len() {
            self.emit(
                Event::RunFinished {
                    status: RunStatus::Succeeded,
                },
                now,
                out,
            );
        }
    }

    /// The ready steps that may start now, in workflow order: every ready approval (waiting
    /// for people takes no slot), and other steps while fewer than `concurrency` run. An
    /// approval is never `running`, so the running count is the count of running actions.
    pub(super) fn startable(&self) -> Vec<usize> {
        let limit = self.workflow.concurrency as usize;
        let mut running = self.count_of(StepStatus::Running);
        let mut start = Vec::new();
        let mut full_at = None;
        for &i in &self.tally.ready {
            if self.is_approval(i) {
                start.push(i);
            } else if running < limit {
                running += 1;
                start.push(i);
            } else {
                full_at = Some(i);
                break;
            }
        }
        if let Some(from) = full_at {
            start.extend(self.tally.ready_approvals.range(from..));
        }
        start
    }

    /// Compensations run in reverse dependency order: a step is undone once every step that
    /// needed it is settled.
    pub(super) fn schedule_rollback(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let n = self.steps.len();
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, step) in self.workflow.steps.iter().enumerate() {
            for &d in &step.needs {
                dependants[d].push(i);
            }
        }
        let limit = self.workflow.concurrency as usize;
        let mut running = self
            .steps
            .iter()
            .filter(|s| s.undo == Undo::Running)
            .count();
        loop {
            let mut progressed = false;
            for i in 0..n {
                if self.steps[i].undo != Undo::Pending {
                    continue;
                }
                let settled = dependants[i].iter().all(|&d| {
                    matches!(
                        self.steps[d].undo,
                        Undo::None | Undo::Done | Undo::Failed | Undo::NotUndone
                    )
                });
                if !settled {
                    continue;
                }
                let spec = &self.workflow.steps[i];
                let step = spec.id.clone();
                let effect = spec.effect;
                if spec.rollback.is_some() || effect == Effect::SelfUndoing {
                    if running >= limit {
                        continue;
                    }
                    running += 1;
                    self.emit(Event::CompensationStarted { step }, now, out);
                } else if matches!(effect, Effect::Irreversible | Effect::Additive) {
                    self.emit(Event::StepNotUndone { step }, now, out);
                    progressed = true;
                } else {
                    // Read-only steps and notifications changed nothing to undo.
                    self.steps[i].undo = Undo::None;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let busy = self
            .steps
            .iter()
            .any(|s| matches!(s.undo, Undo::Pending | Undo::Running | Undo::Conflict));
        if !busy {
            let failed = self.steps.iter().any(|s| s.undo == Undo::Failed);
            let status = if failed {
                RunStatus::Failed
            } else {
                RunStatus::RolledBack
            };
            self.emit(Event::RunFinished { status }, now, out);
        }
    }
}

/// Exponential backoff with jitter: `initial · 2^(attempt-1)`, capped at `max`, then between
/// half and all of it. The jitter is derived from the step and attempt, so a replay decides
/// the same delay.
pub(super) fn backoff_ms(initial: Duration, max: Duration, attempt: u32, step: &str) -> u64 {
    let base = initial
        .as_millis()
        .saturating_mul(1u128 << attempt.saturating_sub(1).min(30));
    let capped = u64::try_from(base.min(max.as_millis())).unwrap_or(u64::MAX);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in step.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let half = capped / 2;
    half + if capped - half == 0 {
        0
    } else {
        h % (capped - half + 1)
    }
}
