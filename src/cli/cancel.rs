//! `drctl cancel RUN`: stop starting new steps; running ones finish; the run can still be
//! resumed or rolled back, and no longer blocks a new run.

use clap::Args;

use super::load::apply_offline;
use super::state::{Access, Exit, access, whoami};
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
pub fn cancel(args: &CancelArgs, state: &std::path::Path) -> u8 {
    let by = whoami(args.by.as_ref());
    let result: Result<(), Exit> = (|| match access(state)? {
        Access::Live(mut connection) => {
            let response = connection
                .call(&Request::Cancel {
                    run: args.run.clone(),
                    by: by.clone(),
                })
                .map_err(|e| {
                    Exit::new(
                        super::exit::INTERNAL,
                        format!("the live drctl process did not answer: {e}"),
                    )
                })?;
            if response.ok {
                Ok(())
            } else {
                Err(Exit::new(
                    super::exit::INVALID_INPUT,
                    response.error.unwrap_or_default(),
                ))
            }
        }
        Access::Local(store) => {
            apply_offline(store, &args.run, vec![Input::Cancel { by: by.clone() }])
        }
    })();
    match result {
        Ok(()) => {
            println!(
                "run {} cancelled by {by}: nothing new starts; resume it with `drctl resume {}` or undo it with `drctl rollback {}`",
                args.run, args.run, args.run
            );
            super::exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}
