//! The plan as an operator reads it before a change window: what will happen, in what order,
//! how long it should take against the objective, and what to worry about.

use std::fmt::Write;

use super::model::{LiveMode, Plan, seconds};

/// Renders the plan as plain text. `file` is the workflow's path, for the closing hint.
pub fn render(plan: &Plan, file: &str) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Plan: {} ({})", plan.workflow, plan.kind_name());
    if let Some(d) = &plan.description {
        let _ = writeln!(w, "  {d}");
    }
    let _ = writeln!(
        w,
        "  {} steps in {} waves · at most {} at once · on failure: {}",
        plan.steps.len(),
        plan.waves.len(),
        plan.concurrency,
        plan.on_failure.as_str()
    );
    if let Some(params) = plan.params.as_object().filter(|p| !p.is_empty()) {
        let _ = writeln!(w, "  Parameters:");
        for (k, v) in params {
            let _ = writeln!(w, "    {k} = {}", show_json(v));
        }
    }
    let _ = writeln!(w);
    steps(w, plan);
    timing(w, plan);
    closing(w, plan, file);
    out
}

fn steps(w: &mut String, plan: &Plan) {
    let mut current_wave = 0;
    for step in &plan.steps {
        if step.wave != current_wave {
            current_wave = step.wave;
            let _ = writeln!(w, "Wave {current_wave}");
        }
        let marker = if step.on_critical_path { "*" } else { " " };
        let estimate = step
            .estimate_seconds
            .map_or_else(|| "no estimate".to_string(), |s| format!("~{}", seconds(s)));
        let _ = writeln!(w, "  {marker} {}  [{}]  {estimate}", step.id, step.action);
        let _ = writeln!(w, "      {}", capitalize(&step.description));
        if !step.needs.is_empty() {
            let _ = writeln!(w, "      after: {}", step.needs.join(", "));
        }
        if let Some(params) = step.params.as_object().filter(|p| !p.is_empty()) {
            let shown: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k} = {}", show_json(v)))
                .collect();
            let _ = writeln!(w, "      with: {}", shown.join(", "));
        }
        let _ = writeln!(w, "      {}", facts(step));
        if let Some(rb) = &step.rollback {
            let _ = writeln!(w, "      undo: {} [{}]", rb.description, rb.action);
        }
        if let Some(current) = &step.current {
            let _ = writeln!(w, "      current: {current}");
        }
    }
    let _ = writeln!(w);
}

fn timing(w: &mut String, plan: &Plan) {
    let path: Vec<String> = plan
        .critical_path
        .iter()
        .map(|id| {
            let est = plan
                .step(id)
                .and_then(|s| s.estimate_seconds)
                .map_or_else(|| "?".into(), seconds);
            format!("{id} ({est})")
        })
        .collect();
    match &plan.recovered_step {
        Some(r) => {
            let _ = writeln!(
                w,
                "Critical path to recovery (`{r}` marks the service recovered), marked * above:"
            );
        }
        None => {
            let _ = writeln!(
                w,
                "Critical path (no step is marked recovered: the whole run counts), marked * above:"
            );
        }
    }
    let _ = writeln!(w, "  {}", path.join(" -> "));
    let _ = writeln!(w);
    let predicted = seconds(plan.predicted_rto_seconds);
    match plan.rto_seconds {
        Some(objective) => {
            let verdict = if plan.predicted_rto_seconds <= objective {
                format!(
                    "within the objective, {} to spare",
                    seconds(objective - plan.predicted_rto_seconds)
                )
            } else {
                format!(
                    "OVER the objective by {}",
                    seconds(plan.predicted_rto_seconds - objective)
                )
            };
            let _ = writeln!(
                w,
                "Predicted RTO: {predicted} against an objective of {} ({verdict})",
                seconds(objective)
            );
        }
        None => {
            let _ = writeln!(w, "Predicted RTO: {predicted} (no RTO objective set)");
        }
    }
    let _ = writeln!(
        w,
        "  from the {}; the whole run should take about {}",
        plan.prediction_source,
        seconds(plan.predicted_duration_seconds)
    );
    if !plan.steps_without_estimate.is_empty() {
        let _ = writeln!(
            w,
            "  counted as zero, having no estimate: {}",
            plan.steps_without_estimate.join(", ")
        );
    }
    match (plan.rpo_seconds, &plan.rpo_measured_by) {
        (Some(rpo), Some(by)) => {
            let _ = writeln!(w, "RPO objective: {}, measured by `{by}`", seconds(rpo));
        }
        (Some(rpo), None) => {
            let _ = writeln!(w, "RPO objective: {} (no step measures it)", seconds(rpo));
        }
        (None, Some(by)) => {
            let _ = writeln!(w, "RPO: no objective set; measured by `{by}`");
        }
        (None, None) => {}
    }
    let _ = writeln!(w);
}

fn closing(w: &mut String, plan: &Plan, file: &str) {
    if plan.warnings.is_empty() {
        let _ = writeln!(w, "Warnings: none");
    } else {
        let _ = writeln!(w, "Warnings ({}):", plan.warnings.len());
        for warning in &plan.warnings {
            let _ = writeln!(w, "  {} {}", warning.code, warning.message);
        }
        let _ = writeln!(
            w,
            "  (`drctl validate {file}` shows where; docs/errors.md explains each code)"
        );
    }
    let _ = writeln!(w);
    let live = match plan.live {
        LiveMode::Offline => "offline: live state was not looked up",
        LiveMode::Live => "live state: read from AWS, read-only (--offline skips it)",
    };
    let _ = writeln!(
        w,
        "This was a dry run: nothing was changed. {}.",
        capitalize(live)
    );
}

fn facts(step: &super::model::PlanStep) -> String {
    let mut facts = Vec::new();
    facts.push(match step.undo {
        "automatic" => "undoes itself on rollback".to_string(),
        "rollback" => "has a rollback".to_string(),
        _ => match step.effect {
            "read_only" => "read-only".to_string(),
            "additive" => "creates new resources, changes nothing existing".to_string(),
            "notification" => "sends a message".to_string(),
            _ => "cannot be undone".to_string(),
        },
    });
    facts.push(if step.idempotent {
        "safe to re-run".into()
    } else {
        "not re-run blindly after a crash".into()
    });
    if let Some(t) = step.timeout_seconds {
        facts.push(format!("timeout {}", seconds(t)));
    }
    if step.attempts > 1 {
        facts.push(format!("up to {} attempts", step.attempts));
    }
    if step.marks_recovered {
        facts.push("RECOVERED when it succeeds (stops the RTO clock)".into());
    }
    if step.measures_rpo {
        facts.push("MEASURES RPO".into());
    }
    facts.join(" · ")
}

fn show_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show_json).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", show_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

impl Plan {
    fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }
}
