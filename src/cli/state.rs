//! The command line's way to the run service: the session of the state directory (or shared
//! store) given on the command line, built once in [`super::main`], and who is acting.

pub use crate::service::{Session, Shared, hostname};

/// Who is acting: `--as`, else `$USER`.
pub fn whoami(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}
