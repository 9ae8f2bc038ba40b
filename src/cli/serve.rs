//! `drctl serve`: an agent on a shared store (SPEC §11). It watches for runs whose driver is
//! gone (its lease expired: the process was killed, its machine or its region lost) and takes
//! each over as `resume` would after a crash: attempts whose outcome is unknown are probed or
//! put to the operator, succeeded steps never run again, approvals and votes are kept. Each
//! run it takes over is driven on a thread of its own; agents racing for the same run are
//! decided by the store (one claim wins, the others leave the run alone).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;

use super::error::CliError;
use super::load::Purpose;
use super::output::RunFormat;
use super::resume::take_up;
use super::state::{own, shared};
use crate::engine::{Input, Until};
use crate::store::{RunRecord, RunStatus, StoreError};

/// Drive runs whose driver is gone (shared store only).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Take over the runs that need it now, drive them to rest, then exit.
    #[arg(long)]
    pub once: bool,
}

/// Whether `run` needs a driver and has none: under way (not paused, cancelled or over, which
/// wait for an operator), not let go of on purpose (`--detach`), and no process holds it.
fn orphaned(run: &RunRecord, owner_present: bool) -> bool {
    matches!(
        run.status,
        RunStatus::Running | RunStatus::AwaitingApproval | RunStatus::RollingBack
    ) && !run.detached
        && !owner_present
}

/// Runs `serve`.
pub fn serve(args: &ServeArgs, state: &std::path::Path) -> Result<u8, CliError> {
    let Some(shared) = shared() else {
        return Err(CliError::invalid(
            "drctl serve drives runs of a shared store: give --store etcd://HOST:PORT/PREFIX (or DRCTL_STORE)",
        ));
    };
    let store = own(state)?;
    // Often enough that a run is taken over within its lease and a fraction of it.
    let poll = (shared.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    println!(
        "agent {} (pid {}) serving {} (lease {})",
        shared.name,
        std::process::id(),
        shared.address.endpoints.join(","),
        crate::workflow::format_duration(shared.lease)
    );
    let mut driving: HashMap<String, std::thread::JoinHandle<bool>> = HashMap::new();
    // A run that could not be taken over (its workflow no longer compiles, say) is tried
    // again after a while, not at every look.
    let mut set_aside: HashMap<String, Instant> = HashMap::new();
    loop {
        for (id, handle) in driving.extract_if(|_, handle| handle.is_finished()) {
            if !handle.join().unwrap_or(false) {
                set_aside.insert(id, Instant::now() + SET_ASIDE);
            }
        }
        set_aside.retain(|_, until| *until > Instant::now());
        for run in store.runs()? {
            if driving.contains_key(&run.run_id) || set_aside.contains_key(&run.run_id) {
                continue;
            }
            let owner_present = match store.owner(&run.run_id) {
                Ok(owner) => owner.is_some(),
                Err(StoreError::BadRecord { .. }) => true,
                Err(e) => return Err(e.into()),
            };
            if !orphaned(&run, owner_present) {
                continue;
            }
            let (id, state, name) = (run.run_id.clone(), state.to_path_buf(), shared.name.clone());
            let handle = std::thread::Builder::new()
                .name(format!("run {id}"))
                .spawn(move || take_over(&state, &id, &name))
                .map_err(|e| CliError::internal(format!("cannot start a driver thread: {e}")))?;
            driving.insert(run.run_id, handle);
        }
        if args.once && driving.is_empty() {
            return Ok(super::exit::SUCCESS);
        }
        std::thread::sleep(poll);
    }
}

/// How long a run that could not be taken over is left alone.
const SET_ASIDE: Duration = Duration::from_secs(30);

/// Drives run `id` as its new owner until it rests; says how that went. False when the run
/// could not be taken over.
fn take_over(state: &std::path::Path, id: &str, name: &str) -> bool {
    println!("run {id}: its driver is gone; {name} takes it over");
    let result = take_up(
        state,
        id,
        name,
        Purpose::TakeOver,
        (RunFormat::Text, Until::Done),
        |_| vec![Input::Interrupted, Input::Recover],
    );
    match result {
        Ok(code) => {
            println!("run {id}: rests (exit code {code})");
            true
        }
        Err(e) => {
            eprintln!("run {id}: not taken over: {e}");
            false
        }
    }
}
