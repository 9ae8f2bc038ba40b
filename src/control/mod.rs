//! The local control socket: the transport between a command and the process that drives the
//! runs of a store. sled lets one process open a store, so the process that drives a run
//! serves `control.sock` in the store's directory; `approve`, `reject`, `cancel` and the read
//! commands of another terminal go through it while the run is live, and open the store
//! themselves when it is not. What a request means is the run service's (`crate::service`);
//! this module carries typed, versioned requests and replies ([`protocol`]). The socket is a
//! Unix socket, mode 0600: it never listens on a network, and no client can take it down
//! (bounded requests, bounded connections, idle timeout).

mod client;
mod protocol;
mod server;

pub use client::{BUSY_NOTICE, BUSY_PATIENCE, Connection, connect};
pub use protocol::{
    Active, Envelope, JournalPage, MAX_REQUEST, PROTOCOL_VERSION, Refusal, Reply, Request,
    Response, RunDecision, StartRequest, TakeUpHow, Taken, other_version, parse_request,
    parse_response,
};
pub use server::{
    Answering, EVICT_IDLE, Handler, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_PER_PROCESS, SocketGuard,
    serve,
};

use std::path::{Path, PathBuf};

/// Where the control socket of a store lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}
