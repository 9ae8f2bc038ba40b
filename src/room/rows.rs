//! The runs page's rows: each run's line (as `drctl runs` shows it) with who drives it and its
//! RTO against the objective, in words. The page is drawn from them, and its live list is sent
//! them each time they change. A run over for good keeps its row: nothing more happens to it,
//! so its report is not built again at each look.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::de::IntoDeserializer;
use serde::de::value::StrDeserializer;
use serde::{Deserialize, Serialize};

use crate::report::{Compiled, Objective, human};
use crate::service::CliError;
use crate::store::{RunStatus, Store};
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

/// The rows built so far: those of runs over for good are kept, with the workflows compiled
/// for the reports.
#[derive(Default)]
pub struct Rows {
    built: Mutex<(HashMap<String, RunRow>, Compiled)>,
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
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let (kept, compiled) = &mut *built;
        let mut rows = Vec::with_capacity(lines.len());
        for line in lines {
            if let Some(row) = kept.get(&line.run_id).filter(|row| same(&row.line, &line)) {
                rows.push(row.clone());
                continue;
            }
            let report = crate::report::build_with(store, &line.run_id, compiled)?;
            let row = RunRow {
                driver: driver(&line.run_id)?,
                rto: objective(&report.rto),
                line,
            };
            if over(&row.line) {
                kept.insert(row.line.run_id.clone(), row.clone());
            } else {
                kept.remove(&row.line.run_id);
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

/// Whether `line` is that of a run over for good (succeeded, failed, rolled back).
fn over(line: &RunLine) -> bool {
    let status: StrDeserializer<'_, serde::de::value::Error> =
        line.status.as_str().into_deserializer();
    line.interrupted.is_none() && RunStatus::deserialize(status).is_ok_and(RunStatus::is_final)
}

/// Whether a kept row's line still stands: the run is over for good, as it was.
fn same(kept: &RunLine, now: &RunLine) -> bool {
    over(now) && kept.status == now.status && kept.finished_at == now.finished_at
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
