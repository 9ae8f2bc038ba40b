//! The report as one self-contained HTML page (no scripts, no external assets), readable on
//! screen and printed: the outcome at the top, then the timeline as an inline SVG Gantt chart
//! (critical path in red, approval waits hatched, the RTO objective as a dashed line), then the
//! tables of the Markdown report.

#![allow(
    clippy::too_many_lines,
    clippy::write_with_newline,
    clippy::many_single_char_names,
    clippy::cast_precision_loss,
    clippy::needless_raw_string_hashes,
    reason = "a page drawn by hand: literal markup and pixel arithmetic read best as written"
)]

use std::fmt::Write;

use super::model::{Objective, Report, human};
use crate::time::parse_time;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict(o: &Objective) -> (&'static str, &'static str) {
    match o.met {
        Some(true) => ("met", "ok"),
        Some(false) => ("NOT MET", "bad"),
        None => ("not assessed", "none"),
    }
}

fn seconds_from(origin: &str, t: &str) -> Option<f64> {
    Some((parse_time(t)? - parse_time(origin)?).num_milliseconds() as f64 / 1000.0)
}

/// The Gantt chart of the run.
#[allow(clippy::cast_precision_loss, reason = "pixel arithmetic")]
fn gantt(r: &Report) -> String {
    let origin = r
        .incident_start
        .clone()
        .unwrap_or_else(|| r.started_at.clone());
    let (label_w, chart_w, row_h, top) = (190.0, 720.0, 26.0, 34.0);
    let mut span = r
        .steps
        .iter()
        .filter_map(|s| {
            s.finished_at
                .as_deref()
                .and_then(|f| seconds_from(&origin, f))
        })
        .fold(1.0_f64, f64::max);
    if let Some(o) = r.rto.objective_seconds {
        span = span.max(o);
    }
    span *= 1.05;
    let x = |secs: f64| label_w + secs.max(0.0) / span * chart_w;
    let height = top + r.steps.len() as f64 * row_h + 30.0;
    let width = label_w + chart_w + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Timeline of the run">
<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde8b0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#d9a400" stroke-width="2"/></pattern></defs>
<style>text{{font:12px sans-serif;fill:#222}} .tick{{fill:#666;font-size:11px}}</style>
"##
    );
    // Time axis: about 8 ticks at round values.
    let raw = span / 8.0;
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    ]
    .into_iter()
    .find(|s| *s >= raw)
    .unwrap_or(raw.ceil());
    let mut t = 0.0;
    while t <= span {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#e4e4e4\"/><text class=\"tick\" x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
            x(t),
            top - 6.0,
            height - 24.0,
            top - 12.0,
            esc(&human(t))
        );
        t += step;
    }
    for (i, s) in r.steps.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            label_w - 8.0,
            y + 17.0,
            esc(&s.id)
        );
        let (Some(a), Some(b)) = (
            s.started_at
                .as_deref()
                .and_then(|v| seconds_from(&origin, v)),
            s.finished_at
                .as_deref()
                .and_then(|v| seconds_from(&origin, v)),
        ) else {
            continue;
        };
        let (fill, stroke) = match (s.is_approval, s.on_critical_path, s.status.as_str()) {
            (_, _, "failed" | "unknown") => ("#f3b0b0", "#b00000"),
            (true, true, _) => ("url(#wait)", "#c00000"),
            (true, false, _) => ("url(#wait)", "#9a7a00"),
            (false, true, _) => ("#e05252", "#a00000"),
            _ => ("#7fa7d9", "#3d6aa8"),
        };
        let width = (x(b) - x(a)).max(2.0);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{}\" width=\"{width:.1}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"><title>{} ({}) {}: {}</title></rect>\n",
            x(a),
            y + 5.0,
            row_h - 10.0,
            if s.on_critical_path { 2 } else { 1 },
            esc(&s.id),
            esc(&s.action),
            esc(&s.status),
            esc(&s.duration_seconds.map_or_else(String::new, human))
        );
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{}\">{}</text>\n",
            x(b) + 4.0,
            y + 17.0,
            esc(&s.duration_seconds.map_or_else(String::new, human))
        );
    }
    if let Some(o) = r.rto.objective_seconds {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#c00000\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" style=\"fill:#c00000;font-weight:bold\">RTO objective {4}</text>\n",
            x(o),
            top - 4.0,
            height - 24.0,
            height - 8.0,
            esc(&human(o))
        );
    }
    if let Some(rec) = r
        .recovered_at
        .as_deref()
        .and_then(|v| seconds_from(&origin, v))
    {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#1a7f37\" stroke-width=\"2\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" style=\"fill:#1a7f37;font-weight:bold\">recovered {4}</text>\n",
            x(rec),
            top - 4.0,
            height - 24.0,
            top - 20.0,
            esc(&human(rec))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    let (rto_word, rto_class) = verdict(&r.rto);
    let (rpo_word, rpo_class) = verdict(&r.rpo);
    let figure = |o: &Objective| o.achieved_seconds.map_or_else(|| "—".to_string(), human);
    let target = |o: &Objective| {
        o.objective_seconds.map_or_else(
            || "no objective".to_string(),
            |s| format!("objective {}", human(s)),
        )
    };
    let mut rows = String::new();
    for s in &r.steps {
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            if s.on_critical_path { "crit" } else { "" },
            esc(&s.id),
            esc(&s.action),
            esc(&s.status),
            s.duration_seconds.map_or_else(|| "—".into(), human),
            s.attempts,
            esc(s.error.as_deref().unwrap_or(""))
        );
    }
    let mut approvals = String::new();
    for a in &r.approvals {
        let _ = write!(
            approvals,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&a.step),
            esc(&a.by),
            esc(&a.decision),
            esc(&a.at),
            esc(a.comment.as_deref().unwrap_or("")),
            esc(&a.verification)
        );
    }
    let approvals = if approvals.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Approvals</h2><table><tr><th>step</th><th>by</th><th>decision</th><th>at</th><th>comment</th><th>identity</th></tr>{approvals}</table>"
        )
    };
    let versions = if r.versions.len() > 1 {
        let items = r.versions.iter().fold(String::new(), |mut items, v| {
            let _ = write!(items, "<li>{}</li>", esc(&super::version_line(v)));
            items
        });
        format!("<h2>Workflow versions (changed on resume)</h2><ol>{items}</ol>")
    } else {
        String::new()
    };
    let not_undone = if r.not_undone.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"bad\"><b>Not undone</b> (no compensation): {}</p>",
            esc(&r.not_undone.join(", "))
        )
    };
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:sans-serif;margin:24px;color:#222;max-width:980px}}
h1{{font-size:22px;margin-bottom:4px}} .meta{{color:#555;margin-top:0}}
.cards{{display:flex;gap:16px;margin:16px 0}} .card{{border:2px solid #ccc;border-radius:8px;padding:10px 16px;min-width:200px}}
.card .big{{font-size:28px;font-weight:bold}} .ok{{border-color:#1a7f37;color:#1a7f37}} .bad{{border-color:#c00000;color:#c00000}} .none{{color:#555}}
table{{border-collapse:collapse;width:100%;margin:8px 0 16px}} td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px}}
tr.crit td:first-child{{border-left:4px solid #c00000}} .legend span{{margin-right:16px;font-size:12px}}
@media print{{body{{margin:0}} .card{{break-inside:avoid}}}}
</style></head><body>
<h1>{title}</h1>
<p class="meta">run <code>{run}</code> · {mode} · started {started} by {who} · status <b>{status}</b> · journal {journal}</p>
<div class="cards">
<div class="card {rto_class}"><div>RTO achieved</div><div class="big">{rto}</div><div>{rto_target} · {rto_word}</div></div>
<div class="card {rpo_class}"><div>RPO achieved</div><div class="big">{rpo}</div><div>{rpo_target} · {rpo_word}</div></div>
<div class="card none"><div>Waiting for approvals</div><div class="big">{wait}</div><div>counted in the RTO</div></div>
</div>
<h2>Timeline</h2>
<p class="legend"><span style="color:#c00000">■ critical path</span><span style="color:#3d6aa8">■ other steps</span><span style="color:#9a7a00">▨ waiting for approval</span><span style="color:#c00000">┆ RTO objective</span><span style="color:#1a7f37">│ recovered</span></p>
{gantt}
<h2>Steps</h2>
<table><tr><th>step</th><th>action</th><th>status</th><th>duration</th><th>attempts</th><th>error</th></tr>
{rows}</table>
{versions}{approvals}{not_undone}
</body></html>
"##,
        title = esc(&format!(
            "{} of {}: {}",
            if r.mode == "drill" { "Drill" } else { "Run" },
            r.workflow,
            r.status
        )),
        run = esc(&r.run_id),
        mode = esc(&r.mode),
        started = esc(&r.started_at),
        who = esc(&r.initiator),
        status = esc(&r.status),
        journal = if r.journal_intact { "intact" } else { "BROKEN" },
        rto = figure(&r.rto),
        rto_target = target(&r.rto),
        rpo = figure(&r.rpo),
        rpo_target = target(&r.rpo),
        wait = human(r.approval_wait_seconds),
        gantt = gantt(r),
    )
}
