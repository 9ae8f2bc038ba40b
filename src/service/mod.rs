//! The run service: the one place where a run is started, taken up, decided on, cancelled and
//! read, whoever asks (a command, the agent's control socket, a run's inbox on a shared
//! store). The command line is a client of it: it parses, calls, and prints.
//!
//! - [`Session`]: a command's way to the runs of a store (the live process's socket, a run's
//!   inbox, or the store itself), chosen in one place, with typed answers;
//! - [`Host`]: the process that drives runs, answering requests from the socket and the inbox
//!   alike; [`Router`] knows which runs it drives;
//! - [`agent`]: `drctl serve`, driving any number of runs as tasks of one runtime, on sled and
//!   on etcd alike;
//! - [`load`], [`takeup`]: a stored run and its workflow, loaded to be driven or decided on,
//!   and what it is fed first; [`exec`]: what its actions are given;
//! - [`CliError`] and [`exit`]: how a request fails, with the documented exit code.

pub mod agent;
mod error;
pub mod exec;
pub mod exit;
pub mod follow;
mod host;
mod inbox;
pub mod load;
mod router;
mod session;
mod signing;
mod start;
mod starting;
pub mod takeup;

pub use error::CliError;
pub use host::{Host, decide};
pub use inbox::Inbox;
pub use router::{Agent, Router};
pub use session::{
    Session, Shared, Source, ask, expect, hand_over, hostname, open_shared, through_inbox,
};
pub use signing::{Shown, Vote, sign_vote};
pub use start::{AGENT_GRACE, StartSpec, Started};
pub use starting::{start_refusal, unfinished_refusal};
