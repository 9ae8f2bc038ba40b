//! The plan as data: everything `drctl plan` shows, in one serializable value that the text,
//! JSON, DOT and Mermaid renderers all read.

use std::collections::HashSet;

use serde::Serialize;

use crate::actions::{Action, Effect, Registry};
use crate::dag::{CompiledWorkflow, EstimateSource, Schedule};
use crate::diagnostic::Diagnostics;
use crate::workflow::{OnFailure, WorkflowKind, format_duration};

/// Whether the plan looked at live systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveMode {
    /// `--offline`: no lookups.
    Offline,
    /// Each step that changes an AWS resource shows its current value (or why it could not be
    /// read).
    Live,
}

/// A lint, as the plan reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanWarning {
    /// Stable code (`DRW0001`).
    pub code: &'static str,
    /// The step concerned, when it is one step.
    pub step: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A compensation, as the plan shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRollback {
    /// The action that undoes the step.
    pub action: String,
    /// What it will do.
    pub description: String,
    /// Its parameters.
    pub params: serde_json::Value,
}

/// One step of the plan.
#[allow(
    clippy::struct_excessive_bools,
    reason = "each flag is a field of the plan's JSON"
)]
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    /// Step id.
    pub id: String,
    /// Action name.
    pub action: String,
    /// People complete it (an approval): drawn apart in graphs.
    #[serde(skip)]
    pub approval: bool,
    /// Ids of the steps it waits for (explicit and implicit).
    pub needs: Vec<String>,
    /// Execution wave, from 1.
    pub wave: usize,
    /// Expected duration in seconds, when known.
    pub estimate_seconds: Option<f64>,
    /// `estimate`, `action` (a wait's or noop's duration) or `none`.
    pub estimate_source: &'static str,
    /// Whether it is on the critical path.
    pub on_critical_path: bool,
    /// What it will do, in words, with parameters resolved.
    pub description: String,
    /// Resolved parameters (`${steps...}` and `${env...}` left as written).
    pub params: serde_json::Value,
    /// Safe to re-run after a crash.
    pub idempotent: bool,
    /// `read_only`, `additive`, `self_undoing`, `notification` or `irreversible`.
    pub effect: &'static str,
    /// How the step is undone, when it is: `automatic` (the action undoes itself), `rollback`
    /// (a declared compensation) or `none`.
    pub undo: &'static str,
    /// The declared compensation.
    pub rollback: Option<PlanRollback>,
    /// Per-attempt timeout in seconds.
    pub timeout_seconds: Option<f64>,
    /// Attempts, the first included.
    pub attempts: u32,
    /// Stops the RTO clock.
    pub marks_recovered: bool,
    /// Measures the achieved RPO.
    pub measures_rpo: bool,
    /// The live value next to the intended one, when looked up.
    pub current: Option<String>,
}

/// A whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Workflow name.
    pub workflow: String,
    /// failover, restore or rollback.
    pub kind: WorkflowKind,
    /// Free text.
    pub description: Option<String>,
    /// Resolved parameters.
    pub params: serde_json::Value,
    /// What a failed step leads to.
    pub on_failure: OnFailure,
    /// Steps running at once, at most.
    pub concurrency: u32,
    /// Steps in wave order, then file order.
    pub steps: Vec<PlanStep>,
    /// Step ids per wave.
    pub waves: Vec<Vec<String>>,
    /// The path that decides the predicted RTO.
    pub critical_path: Vec<String>,
    /// Where the critical path ends: the `recovered` step, when there is one.
    pub recovered_step: Option<String>,
    /// The critical path's length.
    pub predicted_rto_seconds: f64,
    /// The longest path through the whole workflow.
    pub predicted_duration_seconds: f64,
    /// Where durations came from: `estimates`, or `history of N runs` (medians per step).
    pub prediction_source: String,
    /// Steps without any estimate (counted as zero).
    pub steps_without_estimate: Vec<String>,
    /// RTO objective.
    pub rto_seconds: Option<f64>,
    /// RPO objective.
    pub rpo_seconds: Option<f64>,
    /// The step whose output is the achieved RPO.
    pub rpo_measured_by: Option<String>,
    /// Whether live state was looked up.
    pub live: LiveMode,
    /// Lints.
    pub warnings: Vec<PlanWarning>,
}

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::ReadOnly => "read_only",
        Effect::Additive => "additive",
        Effect::SelfUndoing => "self_undoing",
        Effect::Notification => "notification",
        Effect::Irreversible => "irreversible",
    }
}

impl Plan {
    /// Builds the plan of a compiled workflow. `lints` are the warnings found by `check`.
    pub fn build(
        workflow: &CompiledWorkflow,
        registry: &Registry,
        lints: &Diagnostics,
        live: LiveMode,
    ) -> Plan {
        let schedule = workflow.schedule();
        let on_path: HashSet<usize> = schedule.critical_path.iter().copied().collect();
        let mut order: Vec<usize> = (0..workflow.steps.len()).collect();
        order.sort_by_key(|&i| (schedule.waves[i], i));
        let wave_count = schedule.waves.iter().max().map_or(0, |w| w + 1);
        let mut waves = vec![Vec::new(); wave_count];
        for &i in &order {
            waves[schedule.waves[i]].push(workflow.steps[i].id.clone());
        }
        let steps = order
            .iter()
            .map(|&i| plan_step(workflow, registry, &schedule, &on_path, live, i))
            .collect();
        let warnings = lints
            .sorted()
            .into_iter()
            .filter(|d| !d.is_error())
            .map(|d| PlanWarning {
                code: d.code.as_str(),
                step: d
                    .primary
                    .as_ref()
                    .and_then(|(span, _)| workflow.steps.iter().find(|s| s.span == *span))
                    .map(|s| s.id.clone()),
                message: d.message.clone(),
            })
            .collect();
        Plan {
            workflow: workflow.name.clone(),
            kind: workflow.kind,
            description: workflow.description.clone(),
            params: workflow
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            on_failure: workflow.on_failure,
            concurrency: workflow.concurrency,
            steps,
            waves,
            critical_path: schedule
                .critical_path
                .iter()
                .map(|&i| workflow.steps[i].id.clone())
                .collect(),
            recovered_step: workflow
                .recovered_step()
                .map(|i| workflow.steps[i].id.clone()),
            predicted_rto_seconds: schedule.predicted_rto.as_secs_f64(),
            predicted_duration_seconds: schedule.makespan.as_secs_f64(),
            prediction_source: "estimates".into(),
            steps_without_estimate: workflow
                .steps
                .iter()
                .filter(|s| s.estimate.is_none())
                .map(|s| s.id.clone())
                .collect(),
            rto_seconds: workflow.rto.map(|d| d.as_secs_f64()),
            rpo_seconds: workflow.rpo.map(|d| d.as_secs_f64()),
            rpo_measured_by: workflow
                .steps
                .iter()
                .find(|s| s.measures_rpo)
                .map(|s| s.id.clone()),
            live,
            warnings,
        }
    }

    /// The step `id`.
    pub fn step(&self, id: &str) -> Option<&PlanStep> {
        self.steps.iter().find(|s| s.id == id)
    }
}

fn plan_step(
    workflow: &CompiledWorkflow,
    registry: &Registry,
    schedule: &Schedule,
    on_path: &HashSet<usize>,
    live: LiveMode,
    i: usize,
) -> PlanStep {
    let step = &workflow.steps[i];
    let action = registry.get(&step.action);
    let spec = action.map(Action::spec);
    let effect = spec.map_or(Effect::Irreversible, |s| s.effect);
    let rollback = step.rollback.as_ref().map(|c| PlanRollback {
        action: c.action.clone(),
        description: registry
            .get(&c.action)
            .map(|a| a.describe(&c.args))
            .unwrap_or_default(),
        params: c.args.to_json(),
    });
    let undo = if rollback.is_some() {
        "rollback"
    } else if effect == Effect::SelfUndoing {
        "automatic"
    } else {
        "none"
    };
    let _ = live;
    let current = None;
    PlanStep {
        id: step.id.clone(),
        action: step.action.clone(),
        approval: step.is_approval(),
        needs: step
            .needs
            .iter()
            .map(|&d| workflow.steps[d].id.clone())
            .collect(),
        wave: schedule.waves[i] + 1,
        estimate_seconds: step.estimate.map(|d| d.as_secs_f64()),
        estimate_source: match step.estimate_source {
            EstimateSource::Declared => "estimate",
            EstimateSource::Action => "action",
            EstimateSource::None => "none",
            EstimateSource::History => "history",
        },
        on_critical_path: on_path.contains(&i),
        description: action.map(|a| a.describe(&step.args)).unwrap_or_default(),
        params: step.args.to_json(),
        idempotent: step.idempotent,
        effect: effect_name(effect),
        undo,
        rollback,
        timeout_seconds: step.timeout.map(|d| d.as_secs_f64()),
        attempts: step.retry.attempts,
        marks_recovered: step.marks_recovered,
        measures_rpo: step.measures_rpo,
        current,
    }
}

/// Seconds as a workflow duration (`1m30s`), for renderers.
pub fn seconds(s: f64) -> String {
    format_duration(std::time::Duration::from_secs_f64(s.max(0.0)))
}
