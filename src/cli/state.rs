//! The command line's way to the run service: the session of the state directory (or shared
//! store) given on the command line, and who is acting.

use std::path::Path;
use std::sync::Arc;

use super::error::CliError;
use crate::control::Connection;
pub use crate::service::{Session, Shared, hostname};
use crate::store::Store;

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

/// The session of the state directory `dir` (or the shared store given on the command line).
pub fn session(dir: &Path) -> Session {
    Session::new(dir, shared().cloned())
}

/// The `drctl serve` agent that owns the store in `dir`, when one does.
pub fn agent(dir: &Path) -> Result<Option<Connection>, CliError> {
    session(dir).agent()
}

/// Opens the store to drive a run, refusing when a live process owns it (exit 6, naming
/// that process and what it drives).
pub fn own(dir: &Path) -> Result<Arc<dyn Store>, CliError> {
    session(dir).own()
}

/// Who is acting: `--as`, else `$USER`.
pub fn whoami(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}
