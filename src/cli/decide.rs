//! `drctl approve RUN STEP` and `drctl reject RUN STEP`: decisions on an approval, from any
//! terminal. Through the live process when the run is being driven; else recorded in the
//! store, to be acted on by `drctl resume`.

use clap::Args;

use super::load::apply_offline;
use super::state::{Access, Exit, access, whoami};
use crate::control::Request;
use crate::engine::{Decision, Input};

/// Approve (or reject) an approval step.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The run.
    pub run: String,
    /// The approval step.
    pub step: String,
    /// Who decides (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Why (required to reject).
    #[arg(long)]
    pub comment: Option<String>,
}

/// Runs `approve` or `reject`.
pub fn decide(args: &DecideArgs, state: &std::path::Path, decision: Decision) -> u8 {
    if decision == Decision::Reject && args.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
        eprintln!("error: a rejection needs a reason: --comment TEXT");
        return super::exit::INVALID_INPUT;
    }
    let by = whoami(args.by.as_ref());
    let result: Result<bool, Exit> = (|| match access(state)? {
        Access::Live(mut connection) => {
            let request = Request::Decide {
                run: args.run.clone(),
                step: args.step.clone(),
                by: by.clone(),
                decision,
                comment: args.comment.clone(),
            };
            let response = connection.call(&request).map_err(|e| {
                Exit::new(
                    super::exit::INTERNAL,
                    format!("the live drctl process did not answer: {e}"),
                )
            })?;
            if response.ok {
                Ok(true)
            } else {
                Err(Exit::new(
                    super::exit::INVALID_INPUT,
                    response.error.unwrap_or_default(),
                ))
            }
        }
        Access::Local(store) => {
            let input = Input::Vote {
                step: args.step.clone(),
                by: by.clone(),
                decision,
                comment: args.comment.clone(),
            };
            apply_offline(store, &args.run, vec![input])?;
            Ok(false)
        }
    })();
    match result {
        Ok(live) => {
            let verb = if decision == Decision::Approve {
                "approved"
            } else {
                "rejected"
            };
            println!("{} {verb} `{}` of run {}", by, args.step, args.run);
            if !live {
                println!(
                    "  the run is not being driven right now: continue it with `drctl resume {}`",
                    args.run
                );
            }
            super::exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}
