//! `drctl serve` (SPEC §11). On the embedded store, the agent owns the state directory and
//! drives any number of runs handed to it (see [`super::agent`]). On a shared store, it
//! watches for runs whose driver is gone (its lease expired: the process was killed, its
//! machine or its region lost) and takes each over as `resume` would after a crash: attempts
//! whose outcome is unknown are probed or put to the operator, succeeded steps never run
//! again, approvals and votes are kept. Each run it takes over is driven on a thread of its
//! own; agents racing for the same run are decided by the store (one claim wins, the others
//! leave the run alone).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::agent::{Agent, Say};
use super::error::CliError;
use super::load::Purpose;
use super::output::RunFormat;
use super::resume::take_up;
use super::state::{own, shared};
use crate::engine::{Input, Until};
use crate::store::{RunRecord, StoreError};

/// Drive many runs at once, and runs whose driver is gone.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Take up the runs that need a driver now, drive them to rest, then exit.
    #[arg(long)]
    pub once: bool,
    /// The agent's SSH key: it signs the journal of every run it drives where the run rests
    /// (SPEC 5.10), as `--name` (default: the host's name). Runs with allowed signers are
    /// driven only with one; their allowed signers must let it sign in the namespace
    /// `drctl-journal` (`agent-use1 namespaces="drctl-journal" ssh-ed25519 ...`).
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
}

/// Whether `run` needs a driver and has none: under way (not paused, cancelled or over, which
/// wait for an operator), not let go of on purpose (`--detach`), and no process holds it.
fn orphaned(run: &RunRecord, owner_present: bool) -> bool {
    run.status.is_under_way() && !run.detached && !owner_present
}

/// Runs `serve`.
pub fn serve(
    args: &ServeArgs,
    state: &std::path::Path,
    name: Option<&str>,
) -> Result<u8, CliError> {
    match shared() {
        Some(shared) => serve_shared(args, state, shared),
        None => serve_local(args, state, name),
    }
}

/// The agent of a state directory: drives the runs handed to it through the control socket,
/// and the runs left under way by the process that drove the store before it.
fn serve_local(
    args: &ServeArgs,
    state: &std::path::Path,
    name: Option<&str>,
) -> Result<u8, CliError> {
    let store = own(state)?;
    let say: Say = Arc::new(|line| outln!("{line}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))?;
    let driver = args.key.clone().map(|key| {
        (
            name.map_or_else(super::state::hostname, str::to_string),
            key,
        )
    });
    let (agent, router) = Agent::new(store.clone(), say, runtime.handle().clone(), driver);
    runtime.block_on(async {
        let socket = crate::control::serve(state, store, router.clone())
            .map_err(|e| CliError::internal(format!("cannot serve the control socket: {e}")))?;
        outln!(
            "drctl serve (pid {}) drives the runs of {}",
            std::process::id(),
            state.display()
        );
        let taking = agent.clone();
        tokio::task::spawn_blocking(move || taking.take_up_interrupted())
            .await
            .map_err(|e| CliError::internal(e.to_string()))??;
        if args.once {
            let waiting = agent.clone();
            let _ = tokio::task::spawn_blocking(move || waiting.wait()).await;
            socket.close().await;
            return Ok(super::exit::SUCCESS);
        }
        stopped().await;
        socket.close().await;
        let left = router.driving();
        if !left.is_empty() {
            outln!(
                "drctl serve stops; left under way: {} (the next drctl serve here takes them up, or `drctl resume RUN`)",
                left.join(", ")
            );
        }
        Ok(super::exit::SUCCESS)
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The agent of a shared store: takes over runs whose driver is gone.
fn serve_shared(
    args: &ServeArgs,
    state: &std::path::Path,
    shared: &super::state::Shared,
) -> Result<u8, CliError> {
    let store = own(state)?;
    // Often enough that a run is taken over within its lease and a fraction of it.
    let poll = (shared.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut driving: HashMap<String, std::thread::JoinHandle<bool>> = HashMap::new();
    // Agents serve a shared store: one that is not shared has no owners to look at and no
    // agents to announce among.
    let Some(shared_store) = store.shared() else {
        return Err(CliError::invalid(
            "drctl serve drives runs of a shared store; this one is not shared",
        ));
    };
    // `drctl run` hands its runs to agents it finds announced: a run appears without a
    // driver, and the first agent to claim it drives it.
    shared_store.announce()?;
    outln!(
        "agent {} (pid {}) serving {} (lease {})",
        shared.name,
        std::process::id(),
        shared.address.endpoints.join(","),
        crate::workflow::format_duration(shared.lease)
    );
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
        // The store out of reach (a member lost, the cluster restarting) is waited out: the
        // runs this agent drives need it back, and so do the runs it may have to take over.
        let runs = match store.runs() {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the runs; trying again");
                Vec::new()
            }
        };
        for run in runs {
            if driving.contains_key(&run.run_id) || set_aside.contains_key(&run.run_id) {
                continue;
            }
            let owner_present = match shared_store.owner(&run.run_id) {
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
            let (id, state, name) = (run.run_id.clone(), state.to_path_buf(), shared.name.clone());
            let key = args.key.clone();
            let handle = std::thread::Builder::new()
                .name(format!("run {id}"))
                .spawn(move || take_over(&state, &id, (&name, key.as_deref())))
                .map_err(|e| CliError::internal(format!("cannot start a driver thread: {e}")))?;
            driving.insert(run.run_id, handle);
        }
        if args.once && driving.is_empty() {
            return Ok(super::exit::SUCCESS);
        }
        std::thread::sleep(poll);
        // Again and again: a lease lost (a long pause) takes the announcement with it.
        if let Err(e) = shared_store.announce() {
            tracing::warn!(error = %e, "cannot announce this agent");
        }
    }
}

/// Whether any step of the run has begun (else taking it up recovers nothing).
fn begun(machine: &crate::engine::Machine<'_>) -> bool {
    machine.workflow().steps.iter().any(|s| {
        machine
            .step(&s.id)
            .is_some_and(|state| state.status != crate::store::StepStatus::Pending)
    })
}

/// How long a run that could not be taken over is left alone.
const SET_ASIDE: Duration = Duration::from_secs(30);

/// Drives run `id` as its new owner until it rests; says how that went. False when the run
/// cannot be taken over for now (its workflow or records cannot be read), to be set aside.
fn take_over(state: &std::path::Path, id: &str, (name, key): (&str, Option<&Path>)) -> bool {
    let result = take_up(
        state,
        id,
        (name, key),
        Purpose::TakeOver,
        (RunFormat::Text, Until::Done),
        |machine| {
            if begun(machine) {
                outln!("run {id}: its driver is gone; {name} takes it over");
                tracing::info!(
                    run_id = id,
                    agent = name,
                    "the run's lease expired: taking it over"
                );
                vec![Input::Interrupted, Input::Recover]
            } else {
                // Handed over by `drctl run` (or its driver died before any step began):
                // there is nothing to recover, it simply starts.
                outln!("run {id}: handed over; {name} drives it");
                tracing::info!(run_id = id, agent = name, "a run handed over: driving it");
                Vec::new()
            }
        },
    );
    match result {
        Ok(code) => {
            outln!("run {id}: rests (exit code {code})");
            true
        }
        // Its workflow or records cannot be read: trying again at once would fail again.
        Err(e) if e.exit_code() == super::exit::INVALID_INPUT => {
            tracing::info!(run_id = id, error = %e, "run not taken over; set aside");
            eprintln!("run {id}: not taken over: {e}");
            false
        }
        // The store was out of reach, or another agent was first: looked at again at once.
        Err(e) => {
            tracing::info!(run_id = id, error = %e, "run not driven to rest");
            eprintln!("run {id}: not driven to rest: {e}");
            true
        }
    }
}
