//! The plan as a graph: Graphviz DOT and Mermaid, with the critical path highlighted.

use std::fmt::Write;

use super::model::{Plan, seconds};

fn label(step: &super::model::PlanStep) -> String {
    let est = step
        .estimate_seconds
        .map(|s| format!(" ~{}", seconds(s)))
        .unwrap_or_default();
    format!("{}\\n{}{est}", step.id, step.action)
}

/// Graphviz DOT: one node per step (approvals as diamonds), edges from a step to the steps
/// that need it, the critical path in bold red.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", plan.workflow);
    let _ = writeln!(out, "  rankdir=TB;");
    let _ = writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    );
    for step in &plan.steps {
        let mut attrs = vec![format!("label=\"{}\"", label(step).replace('"', "\\\""))];
        if step.approval {
            attrs.push("shape=diamond".into());
        }
        if step.on_critical_path {
            attrs.push("color=red, penwidth=2".into());
        }
        if step.marks_recovered {
            attrs.push("peripheries=2".into());
        }
        let _ = writeln!(out, "  \"{}\" [{}];", step.id, attrs.join(", "));
    }
    for step in &plan.steps {
        for need in &step.needs {
            let critical = step.on_critical_path
                && plan.step(need).is_some_and(|n| n.on_critical_path)
                && adjacent(plan, need, &step.id);
            let style = if critical {
                " [color=red, penwidth=2]"
            } else {
                ""
            };
            let _ = writeln!(out, "  \"{need}\" -> \"{}\"{style};", step.id);
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart, for pull requests and wikis that render it.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    let index = |id: &str| plan.steps.iter().position(|s| s.id == id).unwrap_or(0);
    for (i, step) in plan.steps.iter().enumerate() {
        let text = label(step).replace("\\n", "<br/>").replace('"', "#quot;");
        if step.approval {
            let _ = writeln!(out, "  s{i}{{\"{text}\"}}");
        } else {
            let _ = writeln!(out, "  s{i}[\"{text}\"]");
        }
    }
    for (i, step) in plan.steps.iter().enumerate() {
        for need in &step.needs {
            let _ = writeln!(out, "  s{} --> s{i}", index(need));
        }
    }
    let critical: Vec<String> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.on_critical_path)
        .map(|(i, _)| format!("s{i}"))
        .collect();
    if !critical.is_empty() {
        out.push_str("  classDef critical stroke:#d00,stroke-width:3px\n");
        let _ = writeln!(out, "  class {} critical", critical.join(","));
    }
    out
}

/// Whether `from` directly precedes `to` on the critical path.
fn adjacent(plan: &Plan, from: &str, to: &str) -> bool {
    plan.critical_path
        .windows(2)
        .any(|w| w[0] == from && w[1] == to)
}
