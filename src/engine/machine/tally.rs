//! The tally: counts of steps by status, the steps ready to start and the unmet needs of
//! each, kept in step with every status change so scheduling never scans the whole run.

use std::collections::BTreeSet;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::Machine;
use crate::store::StepStatus;

/// Counts and sets derived from the steps' statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Steps per status, indexed by [`slot`].
    pub(super) by_status: [usize; 8],
    /// Per step, how many of its needs have not succeeded or been skipped.
    pub(super) unmet: Vec<usize>,
    /// Pending steps whose needs are all met, in workflow order.
    pub(super) ready: BTreeSet<usize>,
    /// The approvals among `ready`.
    pub(super) ready_approvals: BTreeSet<usize>,
}

pub(super) fn slot(status: StepStatus) -> usize {
    match status {
        StepStatus::Pending => 0,
        StepStatus::Running => 1,
        StepStatus::AwaitingApproval => 2,
        StepStatus::Succeeded => 3,
        StepStatus::Failed => 4,
        StepStatus::Skipped => 5,
        StepStatus::Unknown => 6,
        StepStatus::RolledBack => 7,
    }
}

/// A need is met once the step it names succeeded or was skipped.
pub(super) fn meets_needs(status: StepStatus) -> bool {
    matches!(status, StepStatus::Succeeded | StepStatus::Skipped)
}

impl Machine {
    /// Computes the tally from the steps, from scratch.
    pub(super) fn tallied(mut self) -> Self {
        self.tally = self.count();
        self
    }

    pub(super) fn count(&self) -> Tally {
        let mut tally = Tally {
            unmet: vec![0; self.steps.len()],
            ..Tally::default()
        };
        for (i, s) in self.steps.iter().enumerate() {
            tally.by_status[slot(s.status)] += 1;
            tally.unmet[i] = self
                .workflow
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                .filter(|d| !meets_needs(self.steps[d.index()].status))
                .count();
            if s.status == StepStatus::Pending && tally.unmet[i] == 0 {
                tally.ready.insert(i);
                if self.is_approval(i) {
                    tally.ready_approvals.insert(i);
                }
            }
        }
        tally
    }

    /// Whether the incremental tally agrees with one counted from scratch (for tests).
    pub fn tally_consistent(&self) -> bool {
        self.tally == self.count()
    }

    pub(super) fn is_approval(&self, i: usize) -> bool {
        self.workflow.steps[i].is_approval()
    }

    /// How many steps are in `status`.
    pub fn count_of(&self, status: StepStatus) -> usize {
        self.tally.by_status[slot(status)]
    }

    /// Moves step `i` to `status`, keeping the tally: its dependants' unmet needs when it
    /// starts or stops meeting them, and the ready sets.
    pub(super) fn set_status(&mut self, i: usize, status: StepStatus) {
        let old = self.steps[i].status;
        if old == status {
            return;
        }
        self.steps[i].status = status;
        self.tally.by_status[slot(old)] -= 1;
        self.tally.by_status[slot(status)] += 1;
        if old == StepStatus::Pending {
            self.tally.ready.remove(&i);
            self.tally.ready_approvals.remove(&i);
        }
        if meets_needs(old) == meets_needs(status) {
            return;
        }
        let graph = &self.workflow.graph;
        for d in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            let d = d.index();
            if meets_needs(status) {
                self.tally.unmet[d] -= 1;
            } else {
                self.tally.unmet[d] += 1;
            }
            let ready = self.steps[d].status == StepStatus::Pending && self.tally.unmet[d] == 0;
            let approval = self.workflow.steps[d].is_approval();
            if ready {
                self.tally.ready.insert(d);
                if approval {
                    self.tally.ready_approvals.insert(d);
                }
            } else {
                self.tally.ready.remove(&d);
                self.tally.ready_approvals.remove(&d);
            }
        }
    }
}
