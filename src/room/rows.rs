//! The runs page's rows: each run's line (as `drctl runs` shows it) with who drives it and its
//! RTO against the objective, in words. The page is drawn from them, and its live list is sent
//! them each time they change. A run at rest keeps its row (`settled.rs`).

use serde::Serialize;

use super::settled::Settled;
use crate::report::{Objective, human};
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
                rto: objective(&report.rto),
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

/// An objective in words: `4m 10s of 15m`.
pub fn objective(o: &Objective) -> String {
    match (o.achieved_seconds, o.objective_seconds) {
        (Some(a), Some(obj)) => format!("{} of {}", human(a), human(obj)),
        (Some(a), None) => human(a),
        (None, Some(obj)) => format!("objective {}", human(obj)),
        (None, None) => "—".to_string(),
    }
}
