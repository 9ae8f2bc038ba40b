//! What the room derives from runs' reports (a row of the runs page, a run's share of the
//! metrics), kept for the runs at rest in a final status: such a run's report changes only
//! when its line does (a rollback of a succeeded or failed run changes its status first), so
//! it is built once, not at every look or scrape. Runs under way are derived anew each time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::StrDeserializer;

use crate::report::{Compiled, Report, build_with};
use crate::service::CliError;
use crate::store::{RunStatus, Store};
use crate::view::RunLine;

/// What was derived of each run at rest, with the line it was derived for, and the workflows
/// compiled for the reports.
pub struct Settled<T> {
    kept: Mutex<Kept<T>>,
}

struct Kept<T> {
    by_run: HashMap<String, (RunLine, T)>,
    compiled: Compiled,
}

impl<T> Default for Settled<T> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(Kept {
                by_run: HashMap::new(),
                compiled: Compiled::default(),
            }),
        }
    }
}

impl<T: Clone> Settled<T> {
    /// What `derive` makes of each run of `lines` and its report, in their order: kept from
    /// an earlier call for a run at rest whose line is unchanged. Blocking (it reads the
    /// store).
    pub fn each(
        &self,
        store: &dyn Store,
        lines: Vec<RunLine>,
        mut derive: impl FnMut(&RunLine, &Report) -> Result<T, CliError>,
    ) -> Result<Vec<(RunLine, T)>, CliError> {
        let mut guard = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let Kept {
            by_run: kept,
            compiled,
        } = &mut *guard;
        let mut derived = Vec::with_capacity(lines.len());
        for line in lines {
            if let Some((_, value)) = kept.get(&line.run_id).filter(|(at, _)| same(at, &line)) {
                derived.push((line, value.clone()));
                continue;
            }
            let report = build_with(store, &line.run_id, compiled)?;
            let value = derive(&line, &report)?;
            if at_rest(&line) {
                kept.insert(line.run_id.clone(), (line.clone(), value.clone()));
            } else {
                kept.remove(&line.run_id);
            }
            derived.push((line, value));
        }
        Ok(derived)
    }
}

/// Whether `line` is that of a run at rest in a final status (succeeded, failed, rolled back),
/// driven by nobody.
fn at_rest(line: &RunLine) -> bool {
    let status: StrDeserializer<'_, serde::de::value::Error> =
        line.status.as_str().into_deserializer();
    line.interrupted.is_none() && RunStatus::deserialize(status).is_ok_and(RunStatus::is_final)
}

/// Whether what was kept for the run at `kept` still stands for it at `now`.
fn same(kept: &RunLine, now: &RunLine) -> bool {
    at_rest(now) && kept.status == now.status && kept.finished_at == now.finished_at
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A store holding one run of two `noop` steps, driven to its end.
    fn a_finished_run() -> Arc<dyn Store> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (agent, _router, store) = crate::service::agent::in_memory(&runtime);
        agent
            .start_run(crate::service::agent::drill(
                "settled",
                "[[steps]]\nid = \"a\"\naction = \"noop\"\n\n[[steps]]\nid = \"b\"\naction = \"noop\"\nneeds = [\"a\"]\n",
            ))
            .unwrap();
        agent.wait();
        store
    }

    #[test]
    fn a_run_at_rest_is_derived_once_and_again_when_its_line_changes() {
        let store = a_finished_run();
        let lines = crate::view::run_lines(store.as_ref(), &[]).unwrap();
        assert_eq!(lines[0].status, "succeeded");
        let settled = Settled::default();
        let derived = std::cell::Cell::new(0);
        let derive = |_: &RunLine, report: &Report| {
            derived.set(derived.get() + 1);
            Ok(report.steps.len())
        };
        for _ in 0..3 {
            let each = settled.each(store.as_ref(), lines.clone(), derive).unwrap();
            assert_eq!(each[0].1, 2);
        }
        assert_eq!(derived.get(), 1, "a run at rest is derived once");

        // Rolled back since: its line changed, it is derived anew (and not kept while it
        // is under way).
        let mut moving = lines.clone();
        moving[0].status = "rolling_back".into();
        for _ in 0..2 {
            settled
                .each(store.as_ref(), moving.clone(), derive)
                .unwrap();
        }
        assert_eq!(derived.get(), 3, "a run under way is derived at every look");
        settled.each(store.as_ref(), lines.clone(), derive).unwrap();
        settled.each(store.as_ref(), lines, derive).unwrap();
        assert_eq!(derived.get(), 4, "at rest again, it is derived once more");
    }
}
