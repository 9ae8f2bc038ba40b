//! `drctl cancel RUN`: stop starting new steps; running ones finish; the run can still be
//! resumed or rolled back, and no longer blocks a new run.

use clap::Args;

use super::error::CliError;
use super::load::apply_offline;
use super::state::{live_or_local, whoami};
use crate::control::Request;
use crate::engine::Input;

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
pub fn cancel(args: &CancelArgs, state: &std::path::Path) -> Result<u8, CliError> {
    let by = whoami(args.by.as_ref());
    let request = Request::Cancel {
        run: args.run.clone(),
        by: by.clone(),
    };
    live_or_local::<serde_json::Value>(state, &request, |store| {
        apply_offline(store, &args.run, vec![Input::Cancel { by: by.clone() }])?;
        Ok(serde_json::Value::Null)
    })?;
    outln!(
        "run {} cancelled by {by}: nothing new starts; resume it with `drctl resume {}` or undo it with `drctl rollback {}`",
        args.run,
        args.run,
        args.run
    );
    Ok(super::exit::SUCCESS)
}
