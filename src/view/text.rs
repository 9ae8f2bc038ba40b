//! The views in words, as `drctl status` and `drctl runs` print them for a person.

use super::{RunLine, StatusView};
use crate::engine::Decision;

/// `drctl status RUN` for a person.
pub fn status_text(v: &StatusView) -> String {
    let mut out = format!(
        "run {}  {} ({})  {}\n",
        v.run_id,
        v.workflow,
        v.mode,
        v.status.to_uppercase()
    );
    out.push_str(&format!("  started {} by {}", v.started_at, v.initiator));
    if let Some(f) = &v.finished_at {
        out.push_str(&format!(", stopped {f}"));
    }
    out.push('\n');
    if let Some(owner) = &v.driven_by {
        out.push_str(&format!(
            "  driven by {} (pid {} on {}) since {}\n",
            owner.name, owner.pid, owner.host, owner.since
        ));
    }
    versions_text(v, &mut out);
    let journal = &v.journal;
    if journal.intact {
        out.push_str(&format!(
            "  journal: {} entries, hash chain intact\n",
            journal.entries
        ));
    } else {
        out.push_str(&format!(
            "  journal: {} entries, HASH CHAIN BROKEN: {}\n",
            journal.entries,
            journal.problem.as_deref().unwrap_or("?")
        ));
    }
    if v.status == "interrupted" {
        let interrupted = v.interrupted.as_ref();
        out.push_str(&format!(
            "  interrupted: stored as {}, but the drctl process that drove it{} is gone; continue with `drctl resume {}`\n",
            interrupted.map_or("-", |i| i.stored_status.as_str()),
            interrupted
                .and_then(|i| i.pid)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default(),
            v.run_id
        ));
    }
    if let Some(reason) = &v.paused_reason {
        out.push_str(&format!("  paused: {}\n", reason.replace("RUN", &v.run_id)));
    }
    for step in &v.steps {
        let status = step.status.as_str();
        let mark = match status {
            "succeeded" => "ok",
            "failed" => "!!",
            "running" => "..",
            "awaiting_approval" => "??",
            "unknown" => "?!",
            "rolled_back" => "<-",
            "skipped" => "--",
            _ => "  ",
        };
        let mut line = format!("  [{mark}] {:<28} {status}", step.id);
        if step.attempts > 1 {
            line.push_str(&format!(" ({} attempts)", step.attempts));
        }
        if let Some(e) = &step.error {
            line.push_str(&format!(": {e}"));
        }
        out.push_str(&line);
        out.push('\n');
        for vote in step.votes.iter().flatten() {
            let decision = match vote.decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
            };
            out.push_str(&format!(
                "         {decision} by {}, {}\n",
                vote.by, vote.verification
            ));
        }
    }
    out
}

/// The versions of a run's workflow, when it was changed on resume (SPEC §5.8.7).
fn versions_text(v: &StatusView, out: &mut String) {
    if v.versions.len() < 2 {
        return;
    }
    out.push_str("  workflow changed on resume; versions:\n");
    for (n, version) in v.versions.iter().enumerate() {
        out.push_str(&format!(
            "    {}. {}\n",
            n + 1,
            crate::report::version_line(version)
        ));
    }
}

/// `drctl runs` for a person.
pub fn runs_text(runs: &[RunLine]) -> String {
    if runs.is_empty() {
        return "no runs yet\n".to_string();
    }
    let mut out = format!(
        "{:<26} {:<28} {:<6} {:<18} {}\n",
        "RUN", "WORKFLOW", "MODE", "STATUS", "STARTED"
    );
    let mut interrupted = Vec::new();
    for r in runs {
        out.push_str(&format!(
            "{:<26} {:<28} {:<6} {:<18} {}\n",
            r.run_id, r.workflow, r.mode, r.status, r.started_at
        ));
        if r.status == "interrupted" {
            interrupted.push(r.run_id.as_str());
        }
    }
    for run in interrupted {
        out.push_str(&format!(
            "run {run} was interrupted (its drctl process is gone): continue it with `drctl resume {run}`\n"
        ));
    }
    out
}
