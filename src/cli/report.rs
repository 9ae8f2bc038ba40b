//! `drctl report RUN` and `drctl history WORKFLOW`: the evidence a drill or a failover leaves.
//! Served by the live process when there is one.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::error::CliError;
use super::state::Session;
use super::status::DataFormat;
use crate::report::{History, Report};

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for tickets and post-mortems.
    Md,
    /// JSON with the fields of SPEC §8.
    Json,
    /// `JUnit` XML, one test case per step.
    Junit,
    /// A self-contained HTML page with a Gantt chart.
    Html,
    /// A self-contained evidence file (journal, signatures, allowed signers, digest) for
    /// `drctl verify --evidence FILE` on any machine.
    Evidence,
}

/// Report on a run.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run.
    pub run: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write to this new file (created 0600) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With -o: replace the file if it exists (a symbolic link is still refused).
    #[arg(long, requires = "output")]
    pub force: bool,
}

/// Past runs and drills of a workflow.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The workflow's name (its `[workflow] name`).
    pub workflow: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    pub format: DataFormat,
}

/// Runs `report`.
pub fn report(args: &ReportArgs, session: &Session) -> Result<u8, CliError> {
    (|| {
        if args.format == ReportFormat::Evidence {
            let evidence = session.evidence(&args.run)?;
            let text = serde_json::to_string_pretty(&evidence)
                .map_err(|e| CliError::internal(e.to_string()))?;
            return write_out(args, &format!("{text}\n"));
        }
        let r: Report = session.report(&args.run)?;
        let text = match args.format {
            ReportFormat::Md => crate::report::markdown(&r),
            ReportFormat::Json => crate::report::json(&r),
            ReportFormat::Junit => crate::report::junit(&r),
            ReportFormat::Html => crate::report::html(&r),
            ReportFormat::Evidence => unreachable!("written above"),
        };
        match &args.output {
            Some(path) => {
                super::outfile::write_new(path, text.as_bytes(), args.force)?;
                outln!("report of run {} written to {}", r.run_id, path.display());
            }
            None => out!("{text}"),
        }
        Ok(())
    })()
    .map(|()| super::exit::SUCCESS)
}

fn write_out(args: &ReportArgs, text: &str) -> Result<(), CliError> {
    match &args.output {
        Some(path) => {
            super::outfile::write_new(path, text.as_bytes(), args.force)?;
            outln!("written to {}", path.display());
        }
        None => out!("{text}"),
    }
    Ok(())
}

/// Runs `history`.
pub fn history(args: &HistoryArgs, session: &Session) -> Result<u8, CliError> {
    (|| {
        let h: History = session.history(&args.workflow)?;
        if args.format == DataFormat::Json {
            outln!("{}", serde_json::to_string_pretty(&h).unwrap_or_default());
            return Ok(());
        }
        out!("{}", crate::report::history_text(&h));
        Ok(())
    })()
    .map(|()| super::exit::SUCCESS)
}
