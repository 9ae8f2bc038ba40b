//! `drctl cancel RUN`: stop starting new steps; running ones finish; the run can still be
//! resumed or rolled back, and no longer blocks a new run.

use clap::Args;

use super::error::CliError;
use super::state::{Session, whoami};
use crate::control::RunDecision;

/// Cancel a run.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run.
    pub run: String,
    /// Who cancels (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
}

/// Runs `cancel`.
pub fn cancel(args: &CancelArgs, session: &Session) -> Result<u8, CliError> {
    let by = whoami(args.by.as_ref());
    session.decide(&RunDecision::Cancel {
        run: args.run.clone(),
        by: by.clone(),
    })?;
    outln!(
        "run {} cancelled by {by}: nothing new starts; resume it with `drctl resume {}` or undo it with `drctl rollback {}`",
        args.run,
        args.run,
        args.run
    );
    Ok(super::exit::SUCCESS)
}
