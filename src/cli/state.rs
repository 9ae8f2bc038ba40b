//! Getting at a state directory from a command: through the live process's control socket
//! when there is one, else by opening the store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exit;
use crate::control::{Connection, Request, connect};
use crate::store::{SledStore, StoreError};

/// A command's way to the runs.
pub enum Access {
    /// A live process owns the store: ask it.
    Live(Connection),
    /// Nobody does: this process opened it.
    Local(Arc<SledStore>),
}

/// A refusal that ends the command with a documented exit code.
#[derive(Debug)]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl Exit {
    /// An exit with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Maps store errors to exit codes: a foreign, damaged or newer store is invalid input (2); a
/// store another process holds is 6.
pub fn store_exit(e: &StoreError) -> Exit {
    let code = match e {
        StoreError::Locked { .. } => exit::RUN_ACTIVE,
        StoreError::SchemaMismatch { .. }
        | StoreError::Corrupt { .. }
        | StoreError::BadRecord { .. } => exit::INVALID_INPUT,
        StoreError::Io(_) => exit::INTERNAL,
    };
    Exit::new(code, e.to_string())
}

/// How long a read, decision or cancel waits for a busy store's owner to answer on its
/// control socket: a `run` takes the store a moment before its socket answers.
const OWNER_PATIENCE: Duration = Duration::from_secs(10);

/// How often the socket is tried again meanwhile.
const OWNER_POLL: Duration = Duration::from_millis(50);

/// Opens the store for reading or a one-off write, or connects to its live owner. A store
/// that another process holds is waited for (up to [`OWNER_PATIENCE`]) until that process's
/// control socket answers, so a read never fails because the store is busy.
pub fn access(dir: &Path) -> Result<Access, Exit> {
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
            Err(e) => return Err(store_exit(&e)),
        }
    }
}

/// Opens the store to drive a run, refusing when a live process owns it (exit 6, naming
/// the live run).
pub fn own(dir: &Path) -> Result<Arc<SledStore>, Exit> {
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
        return Err(Exit::new(
            exit::RUN_ACTIVE,
            format!(
                "run {live} is live in {}: only one process drives runs of a state directory; wait for it, or use another --state",
                dir.display()
            ),
        ));
    }
    SledStore::open(dir)
        .map(Arc::new)
        .map_err(|e| store_exit(&e))
}

/// Who is acting: `--as`, else `$USER`.
pub fn whoami(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}
