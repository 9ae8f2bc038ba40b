//! History of a workflow: its runs and drills (kept apart) with RTO and RPO achieved against
//! the objectives, the trend, and the median duration of each step for plan's predictions.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::human;
use super::model::{Compiled, Objective, ReportError, build_with};
use crate::store::{RunStatus, Store};

/// One past run, as history lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRun {
    /// The run.
    pub run_id: String,
    /// `run` or `drill`.
    pub mode: String,
    /// Its status.
    pub status: String,
    /// When it started.
    pub started_at: String,
    /// RTO.
    pub rto: Objective,
    /// RPO.
    pub rpo: Objective,
}

/// The history of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The workflow.
    pub workflow: String,
    /// Real runs, oldest first.
    pub runs: Vec<HistoryRun>,
    /// Drills, oldest first.
    pub drills: Vec<HistoryRun>,
    /// How the achieved RTO of the latest run or drill compares with the ones before.
    pub trend: Option<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    })
}

fn trend(entries: &[HistoryRun], what: &str) -> Option<String> {
    let rtos: Vec<f64> = entries
        .iter()
        .filter_map(|r| r.rto.achieved_seconds)
        .collect();
    let (&last, before) = rtos.split_last()?;
    let previous = median(before.iter().rev().take(5).copied().collect())?;
    let h = super::model::human;
    let word = if last < previous * 0.9 {
        "faster"
    } else if last > previous * 1.1 {
        "slower"
    } else {
        "about the same as"
    };
    Some(format!(
        "latest {what} recovered in {}, {word} the median {} of the {} before",
        h(last),
        h(previous),
        before.len().min(5)
    ))
}

/// The history of `workflow` in the store.
pub fn history(store: &dyn Store, workflow: &str) -> Result<History, ReportError> {
    let mut runs = Vec::new();
    let mut drills = Vec::new();
    let mut compiled = Compiled::default();
    for run in store.runs()?.into_iter().filter(|r| r.workflow == workflow) {
        let report = build_with(store, &run.run_id, &mut compiled)?;
        let entry = HistoryRun {
            run_id: run.run_id,
            mode: run.mode.to_string(),
            status: report.status,
            started_at: crate::time::rfc3339(run.started_at),
            rto: report.rto,
            rpo: report.rpo,
        };
        if run.mode == crate::store::RunMode::Drill {
            drills.push(entry);
        } else {
            runs.push(entry);
        }
    }
    let trend = trend(&runs, "run").or_else(|| trend(&drills, "drill"));
    Ok(History {
        workflow: workflow.to_string(),
        runs,
        drills,
        trend,
    })
}

/// The median duration in seconds of each step over the succeeded runs and drills of
/// `workflow`, and how many runs that is.
pub fn step_medians(
    store: &dyn Store,
    workflow: &str,
) -> Result<(HashMap<String, f64>, usize), ReportError> {
    let mut samples: HashMap<String, Vec<f64>> = HashMap::new();
    let mut count = 0;
    let mut compiled = Compiled::default();
    for run in store
        .runs()?
        .into_iter()
        .filter(|r| r.workflow == workflow && r.status == RunStatus::Succeeded)
    {
        count += 1;
        for step in build_with(store, &run.run_id, &mut compiled)?.steps {
            if let Some(d) = step.duration_seconds {
                samples.entry(step.id).or_default().push(d);
            }
        }
    }
    Ok((
        samples
            .into_iter()
            .filter_map(|(k, v)| median(v).map(|m| (k, m)))
            .collect(),
        count,
    ))
}

/// One objective of a run in the history, in words: what was achieved against the goal.
fn objective(o: &Objective) -> String {
    let achieved = o.achieved_seconds.map_or_else(|| "-".to_string(), human);
    match (o.objective_seconds, o.met) {
        (Some(obj), Some(true)) => format!("{achieved} <= {} ok", human(obj)),
        (Some(obj), _) => format!("{achieved} vs {} MISSED", human(obj)),
        (None, _) => achieved,
    }
}

/// `drctl history WORKFLOW` for a person: real runs and drills, each with its RTO and RPO
/// against the objectives, and the trend.
pub fn history_text(h: &History) -> String {
    if h.runs.is_empty() && h.drills.is_empty() {
        return format!("no runs of {} in this state directory\n", h.workflow);
    }
    let mut out = String::new();
    for (title, entries) in [("Real runs", &h.runs), ("Drills", &h.drills)] {
        if entries.is_empty() {
            continue;
        }
        out.push_str(&format!("{title} of {}:\n", h.workflow));
        out.push_str(&format!(
            "  {:<26} {:<14} {:<26} {:<24} RPO\n",
            "RUN", "STATUS", "STARTED", "RTO"
        ));
        for r in entries {
            out.push_str(&format!(
                "  {:<26} {:<14} {:<26} {:<24} {}\n",
                r.run_id,
                r.status,
                r.started_at,
                objective(&r.rto),
                objective(&r.rpo)
            ));
        }
    }
    if let Some(t) = &h.trend {
        out.push_str(&format!("Trend: {t}\n"));
    }
    out
}
