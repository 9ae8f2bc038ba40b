//! The agent on a shared store (SPEC §11): it watches for runs whose driver is gone (its lease
//! expired: the process was killed, its machine or its region lost) and takes each over as
//! `resume` would after a crash: attempts whose outcome is unknown are probed or put to the
//! operator, succeeded steps never run again, approvals and votes are kept. A run it takes
//! over is driven as a task, like every run an agent drives; agents racing for the same run
//! are decided by the store (one claim wins, the others leave the run alone).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Agent;
use crate::engine::{Input, Machine};
use crate::service::exit;
use crate::service::load::Purpose;
use crate::store::{RunRecord, SharedStore, StoreError};

/// How long a run that could not be taken over is left alone.
const SET_ASIDE: Duration = Duration::from_secs(30);

/// Whether `run` needs a driver and has none: under way (not paused, cancelled or over, which
/// wait for an operator), not let go of on purpose (`--detach`), and no process holds it.
fn orphaned(run: &RunRecord, owner_present: bool) -> bool {
    run.status.is_under_way() && !run.detached && !owner_present
}

/// Whether any step of the run has begun (else taking it up recovers nothing).
fn begun(machine: &Machine) -> bool {
    machine.workflow().steps.iter().any(|s| {
        machine
            .step(&s.id)
            .is_some_and(|state| state.status != crate::store::StepStatus::Pending)
    })
}

impl Agent {
    /// Watches the shared store every `poll` and takes over each run whose driver is gone,
    /// announcing this agent (`name`) on the store at each look. With `once`, takes over the
    /// runs that need a driver now, drives them to rest, and returns; else never returns.
    pub fn watch(&self, name: &str, poll: Duration, once: bool) -> Result<(), StoreError> {
        // `drctl run` hands its runs to agents it finds announced: a run appears without a
        // driver, and the first agent to claim it drives it.
        let Some(shared) = self.store.shared() else {
            return Err(StoreError::Io(
                "an agent watches for runs without a driver only on a shared store".into(),
            ));
        };
        shared.announce()?;
        // A run that could not be taken over (its workflow no longer compiles, say) is tried
        // again after a while, not at every look.
        let mut set_aside: HashMap<String, Instant> = HashMap::new();
        loop {
            set_aside.retain(|_, until| *until > Instant::now());
            self.take_over_orphans(shared, name, &mut set_aside);
            if once {
                self.wait();
                return Ok(());
            }
            std::thread::sleep(poll);
            // Again and again: a lease lost (a long pause) takes the announcement with it.
            if let Err(e) = shared.announce() {
                tracing::warn!(error = %e, "cannot announce this agent");
            }
        }
    }

    /// One look at the store: every run without a driver is taken over.
    fn take_over_orphans(
        &self,
        shared: &dyn SharedStore,
        name: &str,
        set_aside: &mut HashMap<String, Instant>,
    ) {
        // The store out of reach (a member lost, the cluster restarting) is waited out: the
        // runs this agent drives need it back, and so do the runs it may have to take over.
        let runs = match self.store.runs() {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the runs; trying again");
                return;
            }
        };
        let Ok(router) = self.router() else {
            return;
        };
        for run in runs {
            if router.drives(&run.run_id) || set_aside.contains_key(&run.run_id) {
                continue;
            }
            let owner_present = match shared.owner(&run.run_id) {
                Ok(owner) => owner.is_some(),
                Err(StoreError::BadRecord { .. }) => true,
                Err(e) => {
                    tracing::warn!(run_id = %run.run_id, error = %e, "cannot read who drives the run; trying again");
                    continue;
                }
            };
            if !orphaned(&run, owner_present) {
                continue;
            }
            if !self.take_over(&run.run_id, name) {
                set_aside.insert(run.run_id, Instant::now() + SET_ASIDE);
            }
        }
    }

    /// Takes run `id` over as its new driver, to drive it to rest as a task; says how that
    /// went. False when the run cannot be taken over for now (its workflow or records cannot
    /// be read), to be set aside.
    fn take_over(&self, id: &str, name: &str) -> bool {
        let (say, who, run) = (self.say.clone(), name.to_string(), id.to_string());
        let result = self.take_up_run(id, Purpose::TakeOver, move |machine, _| {
            if begun(machine) {
                say(format!(
                    "run {run}: its driver is gone; {who} takes it over"
                ));
                tracing::info!(
                    run_id = %run,
                    agent = %who,
                    "the run's lease expired: taking it over"
                );
                vec![Input::Interrupted, Input::Recover]
            } else {
                // Handed over by `drctl run` (or its driver died before any step began):
                // there is nothing to recover, it simply starts.
                say(format!("run {run}: handed over; {who} drives it"));
                tracing::info!(run_id = %run, agent = %who, "a run handed over: driving it");
                Vec::new()
            }
        });
        match result {
            Ok(_) => true,
            // Its workflow or records cannot be read: trying again at once would fail again.
            Err(e) if e.exit_code() == exit::INVALID_INPUT => {
                tracing::info!(run_id = id, error = %e, "run not taken over; set aside");
                (self.say)(format!("run {id}: not taken over: {e}"));
                false
            }
            // The store was out of reach, or another agent was first: looked at again at once.
            Err(e) => {
                tracing::info!(run_id = id, error = %e, "run not taken over");
                (self.say)(format!("run {id}: not taken over: {e}"));
                true
            }
        }
    }
}
