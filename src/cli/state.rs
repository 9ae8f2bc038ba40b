//! Getting at a state directory from a command: through the live process's control socket
//! when there is one, else by opening the store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::CliError;
use super::exit;
use crate::control::{Connection, Request, connect};
use crate::store::{SledStore, StoreError};

/// A command's way to the runs.
enum Access {
    /// A live process owns the store: ask it.
    Live(Connection),
    /// Nobody does: this process opened it.
    Local(Arc<SledStore>),
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
    local: impl FnOnce(Arc<SledStore>) -> Result<T, CliError>,
) -> Result<(T, Source), CliError> {
    match access(dir)? {
        Access::Live(mut connection) => {
            let response = connection.call(request).map_err(|e| {
                CliError::internal(format!("the live drctl process did not answer: {e}"))
            })?;
            if !response.ok {
                return Err(CliError::invalid(response.error.unwrap_or_default()));
            }
            let answer = serde_json::from_value(response.data)
                .map_err(|e| CliError::internal(format!("unexpected answer: {e}")))?;
            Ok((answer, Source::Live))
        }
        Access::Local(store) => Ok((local(store)?, Source::Local)),
    }
}

/// How long a read, decision or cancel waits for a busy store's owner to answer on its
/// control socket: a `run` takes the store a moment before its socket answers.
const OWNER_PATIENCE: Duration = Duration::from_secs(10);

/// How often the socket is tried again meanwhile.
const OWNER_POLL: Duration = Duration::from_millis(50);

/// Opens the store for reading or a one-off write, or connects to its live owner. A store
/// that another process holds is waited for (up to [`OWNER_PATIENCE`]) until that process's
/// control socket answers, so a read never fails because the store is busy.
fn access(dir: &Path) -> Result<Access, CliError> {
    let deadline = Instant::now() + OWNER_PATIENCE;
    loop {
        if let Some(connection) = connect(dir) {
            return Ok(Access::Live(connection));
        }
        // The wait is here, between tries of the socket, not inside the store's own retry.
        match SledStore::open_waiting(dir, Duration::ZERO) {
            Ok(store) => return Ok(Access::Local(Arc::new(store))),
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(OWNER_POLL);
            }
            Err(e) => return Err(CliError::from(e)),
        }
    }
}

/// Opens the store to drive a run, refusing when a live process owns it (exit 6, naming
/// the live run).
pub fn own(dir: &Path) -> Result<Arc<SledStore>, CliError> {
    if let Some(mut connection) = connect(dir) {
        let live = connection
            .call(&Request::Active)
            .ok()
            .and_then(|r| {
                r.data
                    .get("run_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into());
        return Err(CliError::new(
            exit::RUN_ACTIVE,
            format!(
                "run {live} is live in {}: only one process drives runs of a state directory; wait for it, or use another --state",
                dir.display()
            ),
        ));
    }
    SledStore::open(dir).map(Arc::new).map_err(CliError::from)
}

/// Who is acting: `--as`, else `$USER`.
pub fn whoami(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}
