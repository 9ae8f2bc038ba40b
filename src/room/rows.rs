//! The runs page's rows: each run's line (as `drctl runs` shows it) with who drives it and its
//! RTO against the objective, in words. The page is drawn from them, and its live list is sent
//! them each time they change. A run at rest keeps its row (`settled.rs`).

use serde::Serialize;

use super::settled::Settled;
use crate::report::{Objective, Report, human};
use crate::service::CliError;
use crate::store::Store;
use crate::view::RunLine;

/// One run of the runs page.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// As `drctl runs --format json` shows it.
    #[serde(flatten)]
    pub line: RunLine,
    /// Who drives it, in words.
    pub driver: String,
    /// Its RTO: achieved, or so far, against the objective, in words.
    pub rto: String,
}

/// Who drives a run and its RTO, as its row shows them.
#[derive(Clone)]
struct Shown {
    driver: String,
    rto: String,
}

/// The rows built so far.
#[derive(Default)]
pub struct Rows {
    settled: Settled<Shown>,
}

impl Rows {
    /// The row of each run of `lines`, in their order; `driver` says who drives a run.
    /// Blocking (it reads the store).
    pub fn build(
        &self,
        store: &dyn Store,
        driver: impl Fn(&str) -> Result<String, CliError>,
        lines: Vec<RunLine>,
    ) -> Result<Vec<RunRow>, CliError> {
        let shown = self.settled.each(store, lines, |line, report| {
            Ok(Shown {
                driver: driver(&line.run_id)?,
                rto: clock(report, chrono::Utc::now()),
            })
        })?;
        Ok(shown
            .into_iter()
            .map(|(line, shown)| RunRow {
                line,
                driver: shown.driver,
                rto: shown.rto,
            })
            .collect())
    }
}

/// A run's RTO in words at `now`: achieved once it recovered; while it goes on, the clock so
/// far (from the incident's start, else the run's); against the objective.
fn clock(report: &Report, now: chrono::DateTime<chrono::Utc>) -> String {
    let going = report.recovered_at.is_none() && report.finished_at.is_none();
    let since = report
        .incident_start
        .as_deref()
        .unwrap_or(&report.started_at);
    match crate::time::parse_time(since) {
        Some(since) if going => {
            let so_far = (now - since).to_std().unwrap_or_default().as_secs_f64();
            let of = report
                .rto
                .objective_seconds
                .map(|o| format!(" of {}", human(o)))
                .unwrap_or_default();
            format!("{} so far{of}", human(so_far))
        }
        _ => objective(&report.rto),
    }
}

/// An objective in words: `4m 10s of 15m`.
pub fn objective(o: &Objective) -> String {
    match (o.achieved_seconds, o.objective_seconds) {
        (Some(a), Some(obj)) => format!("{} of {}", human(a), human(obj)),
        (Some(a), None) => human(a),
        (None, Some(obj)) => format!("objective {}", human(obj)),
        (None, None) => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_runs_while_the_run_goes_on_and_stops_at_its_recovery() {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "run_id": "r", "workflow": "w", "mode": "run", "status": "running",
            "initiator": "alice", "started_at": "2026-12-07T10:00:00Z", "finished_at": null,
            "incident_start": "2026-12-07T09:58:00Z", "recovered_at": null,
            "rto": { "objective_seconds": 900.0, "achieved_seconds": null },
            "rpo": { "objective_seconds": null, "achieved_seconds": null },
            "approval_wait_seconds": 0.0, "rto_at_risk_at": null, "rto_breached_at": null,
            "steps": [], "approvals": [], "rollbacks": [], "not_undone": [],
            "journal_intact": true
        }))
        .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:01:10Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            clock(&report, now),
            format!("{} so far of {}", human(190.0), human(900.0))
        );
        report.recovered_at = Some("2026-12-07T10:01:00Z".into());
        report.rto.achieved_seconds = Some(180.0);
        assert_eq!(
            clock(&report, now),
            format!("{} of {}", human(180.0), human(900.0))
        );
    }
}
