//! How a command fails (see [`crate::service::CliError`]), and how the failure is shown.

pub use crate::service::CliError;

/// Prints `error` on standard error (its detail first) and returns its exit code.
pub fn report(error: &CliError) -> u8 {
    if let Some(detail) = error.detail() {
        eprint!("{detail}");
    }
    eprintln!("error: {error}");
    error.exit_code()
}
