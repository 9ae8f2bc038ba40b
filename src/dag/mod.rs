//! The compiled workflow: steps with resolved parameters, joined into a DAG, with the
//! execution waves and the critical path. This is the only form of a workflow the planner and
//! the engine accept.

mod compile;
mod cycle;
mod schedule;

pub use crate::actions::{ApprovalPolicy, Barred, OnTimeout, Voter};
pub use compile::{Override, compile};
pub use schedule::{Schedule, longest_path, waves};

use std::time::Duration;

use petgraph::graph::DiGraph;

use crate::actions::{Args, Effect};
use crate::diagnostic::Span;
use crate::workflow::{OnFailure, ParamValue, RawRetry, RunEventKind, Template, WorkflowKind};

/// How many steps may run at once when the workflow does not say.
pub const DEFAULT_CONCURRENCY: u32 = 16;

/// A compensation: the action run to undo a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Compensation {
    /// The action's name.
    pub action: String,
    /// Its parameters.
    pub args: Args,
}

/// Where a step's duration estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimateSource {
    /// The step's `estimate`.
    Declared,
    /// Implied by the action (a `wait`'s or `noop`'s `duration`).
    Action,
    /// Nothing: counted as zero.
    None,
    /// The median duration of the step in past succeeded runs of the workflow.
    History,
}

/// Who completes a step: people (an approval) or drctl, by running its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// People decide, as its policy says; nothing runs.
    Approval(Box<ApprovalPolicy>),
    /// drctl runs the action.
    Action,
}

/// One compiled step.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about a step, each from its own key or its action"
)]
#[derive(Debug, Clone)]
pub struct Step {
    /// The step id.
    pub id: String,
    /// The action's name (always a known action).
    pub action: String,
    /// An approval or an action drctl runs.
    pub kind: StepKind,
    /// What running the action does to the world (from the action's declaration).
    pub effect: Effect,
    /// Whether the action can tell, read-only, if an attempt whose outcome was lost took
    /// effect.
    pub probe: bool,
    /// Whether this build of drctl can execute the action (others can only be planned).
    pub executable: bool,
    /// Parameters, with `${params.X}` substituted.
    pub args: Args,
    /// Indices of the steps this one waits for: explicit `needs` and implicit ones from
    /// `${steps.X.outputs.Y}`, sorted and without duplicates.
    pub needs: Vec<usize>,
    /// Per-attempt timeout, from the step or `[defaults]`.
    pub timeout: Option<Duration>,
    /// Retry policy, from the step or `[defaults]` (one attempt when neither says).
    pub retry: RawRetry,
    /// The declared compensation, if any.
    pub rollback: Option<Compensation>,
    /// Safe to re-run after a crash: declared, or by the action's nature.
    pub idempotent: bool,
    /// Expected duration, for plan.
    pub estimate: Option<Duration>,
    /// Where the estimate came from.
    pub estimate_source: EstimateSource,
    /// The RTO clock stops when this step succeeds.
    pub marks_recovered: bool,
    /// This step's `rpo_seconds` output is the achieved RPO.
    pub measures_rpo: bool,
    /// The step's header in the source, for lints.
    pub span: Span,
}

/// Where a workflow's run events are posted, and which (`[workflow] events`). Not part of
/// the run's digest: telling people changes nothing the run does.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// The webhook as written: `${env.NAME}` in it is read when a run starts, never stored.
    pub url: Template,
    /// The events sent.
    pub on: Vec<RunEventKind>,
}

/// A validated workflow, ready to plan or run.
#[derive(Debug, Clone)]
pub struct CompiledWorkflow {
    /// The workflow name.
    pub name: String,
    /// failover, restore or rollback.
    pub kind: WorkflowKind,
    /// Free text.
    pub description: Option<String>,
    /// RTO objective.
    pub rto: Option<Duration>,
    /// RPO objective.
    pub rpo: Option<Duration>,
    /// Steps running at once, at most.
    pub concurrency: u32,
    /// What a failed step leads to.
    pub on_failure: OnFailure,
    /// Parameters after `--param` overrides, in declaration order.
    pub params: Vec<(String, ParamValue)>,
    /// Steps in file order; a step's index is its node in `graph`.
    pub steps: Vec<Step>,
    /// Edges go from a step to the steps that need it.
    pub graph: DiGraph<(), ()>,
    /// `allowed_signers`, as written (relative to the workflow file), and where.
    pub allowed_signers: Option<(String, crate::diagnostic::Span)>,
    /// The allowed-signers file's text: read next to the workflow when it is checked, or
    /// the copy stored with a run when the run is loaded back. Part of the run's digest.
    pub signers: Option<String>,
    /// Run events posted to people, when the workflow asks for them.
    pub events: Option<Events>,
}

impl Step {
    /// Whether people complete this step (an approval).
    pub fn is_approval(&self) -> bool {
        self.approval().is_some()
    }

    /// The step's approval policy, when people complete it.
    pub fn approval(&self) -> Option<&ApprovalPolicy> {
        match &self.kind {
            StepKind::Approval(policy) => Some(policy),
            StepKind::Action => None,
        }
    }
}

impl CompiledWorkflow {
    /// A workflow with no steps: what a stored run whose workflow no longer compiles is read
    /// against (its journal still names its steps).
    pub fn without_steps() -> Self {
        Self {
            name: String::new(),
            kind: WorkflowKind::Failover,
            description: None,
            rto: None,
            rpo: None,
            concurrency: DEFAULT_CONCURRENCY,
            on_failure: OnFailure::default(),
            params: Vec::new(),
            steps: Vec::new(),
            graph: DiGraph::new(),
            allowed_signers: None,
            signers: None,
            events: None,
        }
    }

    /// The step with id `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The approval policy of step `id`, when it is an approval.
    pub fn approval(&self, id: &str) -> Option<&ApprovalPolicy> {
        self.step(id).and_then(Step::approval)
    }

    /// The index of the step marked `recovered`, if any.
    pub fn recovered_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.marks_recovered)
    }

    /// The same workflow with each step's estimate replaced by the median of its past
    /// durations, where there is one (`medians` by step id, in seconds).
    #[must_use]
    pub fn with_history(
        &self,
        medians: &std::collections::HashMap<String, f64>,
    ) -> CompiledWorkflow {
        let mut w = self.clone();
        for step in &mut w.steps {
            if let Some(&m) = medians.get(&step.id) {
                step.estimate = Some(Duration::from_secs_f64(m.max(0.0)));
                step.estimate_source = EstimateSource::History;
            }
        }
        w
    }

    /// Waves and critical path from the steps' estimates.
    pub fn schedule(&self) -> Schedule {
        let needs: Vec<&[usize]> = self.steps.iter().map(|s| s.needs.as_slice()).collect();
        let weights: Vec<Duration> = self
            .steps
            .iter()
            .map(|s| s.estimate.unwrap_or_default())
            .collect();
        Schedule::compute(&needs, &weights, self.recovered_step())
    }
}
