//! `drctl status [RUN]` and `drctl runs`: where runs stand. Served by the live process when
//! there is one.

use clap::{Args, ValueEnum};

use super::error::CliError;
use super::state::Session;

/// Output format of read commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Show where a run stands.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run (default: the most recent).
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    pub format: DataFormat,
}

/// List runs.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    pub format: DataFormat,
}

fn print_out(result: Result<String, CliError>) -> Result<u8, CliError> {
    out!("{}", result?);
    Ok(super::exit::SUCCESS)
}

/// Runs `status`.
pub fn status(args: &StatusArgs, session: &Session) -> Result<u8, CliError> {
    print_out((|| {
        let run = match &args.run {
            Some(r) => r.clone(),
            None => session.runs()?.pop().map(|r| r.run_id).ok_or_else(|| {
                CliError::invalid("there are no runs in this state directory yet")
            })?,
        };
        let view = session.status(&run)?;
        Ok(match args.format {
            DataFormat::Json => pretty(&view),
            DataFormat::Text => crate::view::status_text(&view),
        })
    })())
}

/// Runs `runs`.
pub fn runs(args: &RunsArgs, session: &Session) -> Result<u8, CliError> {
    print_out((|| {
        let runs = session.runs()?;
        Ok(match args.format {
            DataFormat::Json => pretty(&runs),
            DataFormat::Text => crate::view::runs_text(&runs),
        })
    })())
}

/// A view as JSON, as scripts read it.
fn pretty(view: &impl serde::Serialize) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(view).unwrap_or_default()
    )
}
