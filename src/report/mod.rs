//! Reports of runs (SPEC §8): the outcome, RTO and RPO against the objectives, the timeline of
//! every step, approvals, rollbacks and what was not undone; in Markdown, JSON, `JUnit` XML and a
//! self-contained HTML page with an SVG Gantt chart. Built from the store only.

mod history;
mod html;
mod junit;
mod markdown;
mod model;

pub use history::{History, HistoryRun, history, history_text, step_medians};
pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use model::{
    Compiled, Objective, Report, ReportApproval, ReportError, ReportRollback, ReportStep, build,
    build_with, clock, human, verification,
};

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}

/// One version of a run's workflow in words: digest, when, who, what changed.
pub fn version_line(v: &crate::stored::WorkflowVersion) -> String {
    let how = if v.signed { "signed" } else { "unsigned" };
    if v.changed_steps.is_empty() {
        format!("{} at {}, started by {} ({how})", v.digest, v.at, v.by)
    } else {
        format!(
            "{} at {}, resumed by {} ({how}); changed steps: {}",
            v.digest,
            v.at,
            v.by,
            v.changed_steps.join(", ")
        )
    }
}
