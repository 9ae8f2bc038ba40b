//! The local control socket. sled lets one process open a store, so the process that drives
//! a run serves `control.sock` in the store's directory; `approve`, `reject`, `cancel` and
//! the read commands of another terminal go through it while the run is live, and open the
//! store themselves when it is not. `drctl serve` serves the same socket for every run it
//! drives, and takes runs handed to it (`Start`, `TakeUp`) through its [`Agent`]. The socket
//! is a Unix socket, mode 0600: it never listens on a network, and no client can take it down
//! (bounded requests, bounded connections, idle timeout).

mod client;
mod protocol;
mod router;
mod server;

pub use client::{Active, BUSY_NOTICE, BUSY_PATIENCE, Connection, connect};
pub use protocol::{
    JournalPage, MAX_REQUEST, Request, Response, StartRequest, TakeUpHow, parse_request,
};
pub use router::{Agent, Router};
pub use server::{
    EVICT_IDLE, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_PER_PROCESS, decide, decision_input, serve,
};

use std::path::{Path, PathBuf};

/// Where the control socket of a store lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}
