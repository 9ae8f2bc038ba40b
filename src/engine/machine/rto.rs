//! The RTO watch: the projected recovery against the objective, and approval deadlines.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::event::Event;
use super::Machine;
use crate::store::{RunStatus, StepStatus};

impl Machine {
    /// Where the RTO stands at `now`, from the steps' estimates.
    pub fn projection(&self, now: DateTime<Utc>) -> Option<crate::recovery::Projection> {
        use crate::recovery::{Remaining, project};
        let start = self.clock_start?;
        let states: Vec<Remaining> = self
            .steps
            .iter()
            .map(|s| match s.status {
                StepStatus::Succeeded | StepStatus::Skipped | StepStatus::RolledBack => {
                    Remaining::Done
                }
                StepStatus::Running | StepStatus::AwaitingApproval => s
                    .started_at
                    .map_or(Remaining::NotStarted, Remaining::RunningSince),
                _ => Remaining::NotStarted,
            })
            .collect();
        let durations: Vec<Duration> = self
            .workflow
            .steps
            .iter()
            .map(|s| s.estimate.unwrap_or_default())
            .collect();
        Some(project(&self.workflow, &states, &durations, start, now))
    }

    /// Whether the service counts as recovered: the `recovered` step succeeded, or the run did
    /// when there is no marker.
    pub fn recovered(&self) -> bool {
        match self.workflow.recovered_step() {
            Some(i) => self.steps[i].status == StepStatus::Succeeded,
            None => self.finished == Some(RunStatus::Succeeded),
        }
    }

    /// Raises `rto_at_risk` the first time the projection passes the objective, and
    /// `rto_breached` the first time the objective itself passes, while not yet recovered.
    pub(super) fn watch_rto(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        if self.workflow.rto.is_none() || self.recovered() || self.rolling_back || self.hold {
            return;
        }
        let Some(p) = self.projection(now) else {
            return;
        };
        let objective_seconds = p.objective.unwrap_or_default().as_secs_f64();
        if p.at_risk() && !self.rto_at_risk {
            self.emit(
                Event::RtoAtRisk {
                    projected_seconds: p.projected.as_secs_f64(),
                    objective_seconds,
                },
                now,
                out,
            );
        }
        if p.breached() && !self.rto_breached {
            self.emit(Event::RtoBreached { objective_seconds }, now, out);
        }
    }

    /// When the current round of approval `i` times out: none without a timeout, or when the
    /// time cannot be represented (validation keeps timeouts within 30 days).
    pub(in crate::engine) fn deadline(&self, i: usize) -> Option<DateTime<Utc>> {
        let timeout = chrono::Duration::from_std(self.workflow.steps[i].timeout?).ok()?;
        self.steps[i].started_at?.checked_add_signed(timeout)
    }
}
