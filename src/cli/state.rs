//! Getting at a state directory from a command: through the live process's control socket
//! when there is one, else by opening the store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::CliError;
use super::exit;
use crate::control::{Connection, Request, Response, connect};
use crate::store::{EtcdAddress, EtcdStore, Owner, SledStore, Store, StoreError};

/// A command's way to the runs.
enum Access {
    /// A live process owns the store: ask it.
    Live(Connection),
    /// Nobody does: this process opened it.
    Local(Arc<dyn Store>),
    /// The store is shared (etcd): read it; tell a run's driver through the run's inbox.
    Shared(Arc<dyn Store>),
}

/// How long a decision left in a run's inbox waits for its driver's answer.
const INBOX_PATIENCE: Duration = Duration::from_secs(30);

/// A shared store (`--store etcd://…`): where, the lease runs are driven with, and whose name
/// owner keys carry.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The cluster and prefix.
    pub address: EtcdAddress,
    /// `--lease`.
    pub lease: Duration,
    /// `--name`.
    pub name: String,
}

static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

/// Makes every command of this process use the shared store `shared` instead of the state
/// directory's (set once, from the command line).
pub fn use_shared(shared: Shared) {
    let _ = SHARED.set(shared);
}

/// The shared store this process uses, if any.
pub fn shared() -> Option<&'static Shared> {
    SHARED.get()
}

fn open_shared(shared: &Shared) -> Result<Arc<dyn Store>, CliError> {
    let owner = Owner {
        name: shared.name.clone(),
        host: hostname(),
        pid: std::process::id(),
        since: String::new(),
    };
    let store = EtcdStore::open(shared.address.clone(), shared.lease, owner)?;
    Ok(Arc::new(store))
}

/// This machine's name, for owner records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The live process driving the store's run answered (and, for a decision, applied it).
    Live,
    /// No process drives the store: this one opened it and answered from it.
    Local,
}

/// Asks the live process `request` or, when no process drives the store, answers it from the
/// store with `local`: reads, decisions and cancels take the same way to the runs whoever
/// holds the store, and give the same answer.
pub fn live_or_local<T: serde::de::DeserializeOwned>(
    dir: &Path,
    request: &Request,
    local: impl FnOnce(Arc<dyn Store>) -> Result<T, CliError>,
) -> Result<(T, Source), CliError> {
    match access(dir)? {
        Access::Live(mut connection) => Ok((ask(&mut connection, request)?, Source::Live)),
        Access::Local(store) => Ok((local(store)?, Source::Local)),
        Access::Shared(store) => {
            // A decision on a run some process drives goes to that process; anything else
            // (reads, a decision on a run nobody drives) is done here, on the store.
            if let Some(run) = request.decision_run()
                && let Some(shared) = store.shared()
                && shared.owner(run)?.is_some()
            {
                let response = through_inbox(shared, run, request)?;
                return Ok((answered(response)?, Source::Live));
            }
            Ok((local(store)?, Source::Local))
        }
    }
}

/// Leaves `request` in run `run`'s inbox and waits for its driver's answer. A request its
/// driver has not taken within [`INBOX_PATIENCE`] is withdrawn, and then never applied; one
/// it took is waited for as long again, since it is being applied.
pub(super) fn through_inbox(
    store: &dyn crate::store::SharedStore,
    run: &str,
    request: &Request,
) -> Result<Response, CliError> {
    let bytes = serde_json::to_vec(request).map_err(|e| CliError::internal(e.to_string()))?;
    let id = store.post(run, &bytes)?;
    let mut deadline = Instant::now() + INBOX_PATIENCE;
    let mut taken = false;
    loop {
        if let Some(answer) = store.take_answer(run, &id)? {
            return serde_json::from_slice(&answer)
                .map_err(|e| CliError::internal(format!("unexpected answer: {e}")));
        }
        if Instant::now() >= deadline {
            if taken {
                return Err(CliError::internal(format!(
                    "the process driving run {run} took the request but gave no answer within {} s; `drctl status {run}` shows whether it was applied",
                    2 * INBOX_PATIENCE.as_secs()
                )));
            }
            if store.withdraw(run, &id)? {
                return Err(CliError::internal(format!(
                    "the process driving run {run} did not take the request within {} s; it was withdrawn and will not be applied (drctl status shows the run's votes and who drives it)",
                    INBOX_PATIENCE.as_secs()
                )));
            }
            // Its driver has it: the answer follows.
            taken = true;
            deadline = Instant::now() + INBOX_PATIENCE;
        }
        std::thread::sleep(OWNER_POLL);
    }
}

/// How long a read, decision or cancel waits for a store another process holds to start
/// answering on its control socket: a `run` takes the store a moment before its socket
/// answers.
const OWNER_PATIENCE: Duration = Duration::from_secs(10);

/// How often the socket is tried again meanwhile.
const OWNER_POLL: Duration = Duration::from_millis(50);

/// The live process serving the store in `dir`, if one does. A process that is busy is
/// waited for (see [`connect`]); one that refuses, or never answers, is this command's error,
/// with the cause.
pub fn live(dir: &Path) -> Result<Option<Connection>, CliError> {
    connect(dir).map_err(|e| {
        CliError::internal(format!(
            "cannot reach the drctl process serving {}: {e}",
            dir.display()
        ))
    })
}

/// Opens the store for reading or a one-off write, or connects to its live owner. A store
/// that another process holds is waited for (up to [`OWNER_PATIENCE`]) until that process's
/// control socket answers, so a read never fails because the store is busy.
fn access(dir: &Path) -> Result<Access, CliError> {
    // A shared store is read by anyone at any time; runs on it are told through it.
    if let Some(shared) = shared() {
        return Ok(Access::Shared(open_shared(shared)?));
    }
    let deadline = Instant::now() + OWNER_PATIENCE;
    loop {
        if let Some(connection) = live(dir)? {
            return Ok(Access::Live(connection));
        }
        // The wait is here, between tries of the socket, not inside the store's own retry.
        match SledStore::open_waiting(dir, Duration::ZERO) {
            Ok(store) => return Ok(Access::Local(Arc::new(store) as Arc<dyn Store>)),
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(OWNER_POLL);
            }
            Err(e) => return Err(CliError::from(e)),
        }
    }
}

/// The `drctl serve` agent that owns the store in `dir`, when one does.
pub fn agent(dir: &Path) -> Result<Option<Connection>, CliError> {
    if shared().is_some() {
        return Ok(None);
    }
    Ok(live(dir)?.filter(|connection| connection.active().agent))
}

/// Asks the live process `request`; its refusal is this command's error, with the exit code
/// it stands for.
pub fn ask<T: serde::de::DeserializeOwned>(
    connection: &mut Connection,
    request: &Request,
) -> Result<T, CliError> {
    let response = connection
        .call(request)
        .map_err(|e| CliError::internal(format!("the live drctl process did not answer: {e}")))?;
    answered(response)
}

/// What a run's driver answered, through its socket or the run's inbox alike: its data, or
/// its refusal as this command's error, with the exit code the refusal stands for.
fn answered<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, CliError> {
    if !response.ok {
        let why = response.error.unwrap_or_default();
        return Err(match response.code {
            Some(code) => CliError::new(code, why),
            None => CliError::invalid(why),
        });
    }
    serde_json::from_value(response.data)
        .map_err(|e| CliError::internal(format!("unexpected answer: {e}")))
}

/// Opens the store to drive a run, refusing when a live process owns it (exit 6, naming
/// that process and what it drives).
pub fn own(dir: &Path) -> Result<Arc<dyn Store>, CliError> {
    // On a shared store each run has its own owner (its lease); nothing is held here.
    if let Some(shared) = shared() {
        return open_shared(shared);
    }
    if let Some(connection) = live(dir)? {
        return Err(CliError::new(
            exit::RUN_ACTIVE,
            held_by(dir, connection.active()),
        ));
    }
    Ok(Arc::new(SledStore::open(dir)?))
}

/// Why a store held by the live process `active` is not this command's to drive.
fn held_by(dir: &Path, active: &crate::control::Active) -> String {
    let runs = match active.runs.as_slice() {
        [] => "no run at the moment".to_string(),
        [one] => format!("run {one}"),
        many => format!("runs {}", many.join(", ")),
    };
    if active.agent {
        format!(
            "drctl serve (pid {}) drives the runs of {} ({runs}): `drctl run`, `resume` and `rollback` hand their runs to it",
            active.pid,
            dir.display()
        )
    } else {
        format!(
            "{runs} is live in {}, driven from a terminal by pid {}: only one process drives runs of a state directory; wait for it, use another --state, or start `drctl serve` there to drive many runs at once",
            dir.display(),
            active.pid
        )
    }
}

/// Who is acting: `--as`, else `$USER`.
pub fn whoami(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}
