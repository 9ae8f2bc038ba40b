//! The documented exit codes (SPEC §9), as the run service gives them.

pub use crate::service::exit::*;
