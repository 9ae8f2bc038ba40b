//! The secrets of the runs a process drives, for its log writer: each run's redactor is
//! registered while the run is driven, and a log line is scrubbed with the redactor of the run
//! it is about. A line about no run (or about a run not registered) is scrubbed with every
//! registered run's secrets: the safe side. Nothing here outlives the runs: a run's secrets
//! are forgotten when its registration is dropped.

use std::sync::{Arc, Mutex, PoisonError};

use super::Redactor;

/// The redactors of the runs being driven, shared by the drivers (which register their run's)
/// and the log writer (which scrubs with them). Cloning shares the same set.
#[derive(Debug, Clone, Default)]
pub struct Redactors {
    runs: Arc<Mutex<Runs>>,
}

/// What is registered.
#[derive(Debug, Default)]
struct Runs {
    /// Each registration: its token, the run, the run's redactor.
    entries: Vec<(u64, String, Arc<Redactor>)>,
    /// The token of the next registration.
    next: u64,
    /// Every registered secret at once, built when first needed after a change.
    union: Option<Arc<Redactor>>,
}

impl Runs {
    /// The union of every registered redactor.
    fn union(&mut self) -> Arc<Redactor> {
        let entries = &self.entries;
        self.union
            .get_or_insert_with(|| {
                Arc::new(Redactor::union(entries.iter().map(|(_, _, r)| r.as_ref())))
            })
            .clone()
    }
}

impl Redactors {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `redactor` as run `run_id`'s until the returned registration (and every
    /// clone of it) is dropped.
    pub fn register(&self, run_id: &str, redactor: Arc<Redactor>) -> Registered {
        let mut runs = self.lock();
        let token = runs.next;
        runs.next += 1;
        runs.entries.push((token, run_id.to_string(), redactor));
        runs.union = None;
        Registered {
            _registration: Arc::new(Registration {
                redactors: self.clone(),
                token,
            }),
        }
    }

    /// `text`, a log line about run `run` (or about none), with every form of every secret
    /// it may hold replaced: the run's own when exactly that run is registered, else every
    /// registered run's.
    pub fn scrub(&self, run: Option<&str>, text: &str) -> String {
        let redactor = {
            let mut runs = self.lock();
            let mut of_run = runs
                .entries
                .iter()
                .filter(|(_, id, _)| Some(id.as_str()) == run);
            match (of_run.next(), of_run.next()) {
                (Some((_, _, redactor)), None) => redactor.clone(),
                _ => runs.union(),
            }
        };
        redactor.scrub(text)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run's redactor registered with [`Redactors`]; removed when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Held for its `Drop`: the last clone gone removes the run's redactor.
    _registration: Arc<Registration>,
}

#[derive(Debug)]
struct Registration {
    redactors: Redactors,
    token: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut runs = self.redactors.lock();
        runs.entries.retain(|(token, _, _)| *token != self.token);
        runs.union = None;
    }
}
