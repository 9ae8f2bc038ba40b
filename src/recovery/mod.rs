//! The recovery clock: RTO elapsed against the objective, and the projected finish (elapsed +
//! what remains of the critical path). Pure arithmetic on times given to it: the clock never
//! reads the system time, the engine passes `now` in.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dag::{CompiledWorkflow, longest_path};

/// What remains of a step, for the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// Done (succeeded or skipped): nothing left.
    Done,
    /// Running since this moment: its estimate minus the time already spent, at least zero.
    RunningSince(DateTime<Utc>),
    /// Not started: its whole estimate.
    NotStarted,
}

/// Where the RTO stands at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    /// Time since the clock started (incident start, or run start).
    pub elapsed: Duration,
    /// What remains of the critical path to recovery.
    pub remaining: Duration,
    /// `elapsed + remaining`: when recovery is expected, counted from the clock's start.
    pub projected: Duration,
    /// The objective, when the workflow has one.
    pub objective: Option<Duration>,
}

impl Projection {
    /// The projection passes the objective.
    pub fn at_risk(&self) -> bool {
        self.objective.is_some_and(|o| self.projected > o)
    }

    /// The objective itself has passed.
    pub fn breached(&self) -> bool {
        self.objective.is_some_and(|o| self.elapsed > o)
    }
}

/// Projects the RTO of `workflow` at `now`, the clock having started at `start`, from each
/// step's state and expected duration (`durations`, by step index: estimates or history).
pub fn project(
    workflow: &CompiledWorkflow,
    states: &[Remaining],
    durations: &[Duration],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Projection {
    let elapsed = (now - start).to_std().unwrap_or_default();
    let weights: Vec<Duration> = states
        .iter()
        .zip(durations)
        .map(|(state, &d)| match state {
            Remaining::Done => Duration::ZERO,
            Remaining::RunningSince(t) => d.saturating_sub((now - *t).to_std().unwrap_or_default()),
            Remaining::NotStarted => d,
        })
        .collect();
    let needs: Vec<&[usize]> = workflow.steps.iter().map(|s| s.needs.as_slice()).collect();
    let (_, remaining) = longest_path(&needs, &weights, workflow.recovered_step());
    Projection {
        elapsed,
        remaining,
        projected: elapsed + remaining,
        objective: workflow.rto,
    }
}
