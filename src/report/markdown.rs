//! The report in Markdown: for incident tickets, post-mortems and pull requests.

use std::fmt::Write;

use super::model::{Objective, Report, clock, human};

fn objective_line(name: &str, o: &Objective) -> String {
    let missing = if name == "RTO" {
        "not recovered"
    } else {
        "not measured"
    };
    let achieved = o
        .achieved_seconds
        .map_or_else(|| missing.to_string(), human);
    let objective = o
        .objective_seconds
        .map_or_else(|| "none set".to_string(), human);
    let verdict = match o.met {
        Some(true) => "**met**",
        Some(false) => "**NOT MET**",
        None => "not assessed",
    };
    format!("| {name} | {achieved} | {objective} | {verdict} |")
}

/// Renders the report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# {} of `{}`: {}\n",
        if r.mode == "drill" { "Drill" } else { "Run" },
        r.workflow,
        r.status
    );
    let _ = writeln!(
        w,
        "- Run: `{}`, started {} by {}",
        r.run_id, r.started_at, r.initiator
    );
    if let Some(f) = &r.finished_at {
        let _ = writeln!(w, "- Stopped: {f}");
    }
    if let Some(i) = &r.incident_start {
        let _ = writeln!(w, "- Incident began: {i} (the RTO clock starts there)");
    }
    if let Some(rec) = &r.recovered_at {
        let _ = writeln!(w, "- Service recovered: {rec}");
    }
    let _ = writeln!(
        w,
        "- Journal: hash chain {}",
        if r.journal_intact { "intact" } else { "BROKEN" }
    );
    if r.versions.len() > 1 {
        let _ = writeln!(w, "- Workflow versions (changed on resume):");
        for (n, v) in r.versions.iter().enumerate() {
            let _ = writeln!(w, "  {}. {}", n + 1, super::version_line(v));
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "| objective | achieved | target | verdict |\n|---|---|---|---|"
    );
    let _ = writeln!(w, "{}", objective_line("RTO", &r.rto));
    let _ = writeln!(w, "{}\n", objective_line("RPO", &r.rpo));
    let _ = writeln!(
        w,
        "Waiting for approvals: {} (counted in the RTO).",
        human(r.approval_wait_seconds)
    );
    if let Some(t) = &r.rto_at_risk_at {
        let _ = writeln!(w, "RTO at risk from {t}.");
    }
    if let Some(t) = &r.rto_breached_at {
        let _ = writeln!(w, "RTO objective breached at {t}.");
    }
    let _ = writeln!(
        w,
        "\n## Timeline\n\n| step | action | status | start | end | duration | attempts | note |\n|---|---|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let mut note = Vec::new();
        if s.on_critical_path {
            note.push("critical path".to_string());
        }
        if s.marks_recovered {
            note.push("marks recovery".to_string());
        }
        if let Some(e) = &s.error {
            note.push(format!(
                "error: {}",
                e.replace('|', "\\|").replace('\n', " ")
            ));
        }
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            s.id,
            s.action,
            s.status,
            s.started_at.as_deref().map_or_else(|| "-".into(), clock),
            s.finished_at.as_deref().map_or_else(|| "-".into(), clock),
            s.duration_seconds.map_or_else(|| "-".into(), human),
            s.attempts,
            note.join("; ")
        );
    }
    let outputs: Vec<_> = r.steps.iter().filter(|s| !s.outputs.is_empty()).collect();
    if !outputs.is_empty() {
        let _ = writeln!(w, "\n## Outputs\n");
        for s in outputs {
            let _ = writeln!(
                w,
                "- `{}`: `{}`",
                s.id,
                serde_json::Value::Object(s.outputs.clone())
            );
        }
    }
    approvals_and_rollback(w, r);
    out
}

/// The approvals' decisions, then the compensations and what was not undone.
fn approvals_and_rollback(w: &mut String, r: &Report) {
    if !r.approvals.is_empty() {
        let _ = writeln!(
            w,
            "\n## Approvals\n\n| step | by | decision | at | comment | identity |\n|---|---|---|---|---|---|"
        );
        for a in &r.approvals {
            let comment = a.comment.as_deref().unwrap_or("");
            let _ = writeln!(
                w,
                "| `{}` | {} | {} | {} | {comment} | {} |",
                a.step, a.by, a.decision, a.at, a.verification
            );
        }
    }
    if !r.rollbacks.is_empty() || !r.not_undone.is_empty() {
        let _ = writeln!(w, "\n## Rollback\n");
        for rb in &r.rollbacks {
            let error = rb.error.as_ref().map(|e| format!(": {e}"));
            let (step, outcome, at) = (&rb.step, &rb.outcome, &rb.at);
            let _ = writeln!(
                w,
                "- `{step}`: {outcome} at {at}{}",
                error.unwrap_or_default()
            );
        }
        if !r.not_undone.is_empty() {
            let _ = writeln!(
                w,
                "- **Not undone** (no compensation): {}",
                r.not_undone
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
