//! The command line: argument parsing (clap) and one file per subcommand. Commands call the
//! library and print; they map errors to the exit codes of [`exit`].

pub mod exit;
mod plan;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use plan::PlanArgs;
pub use validate::ValidateArgs;

/// drctl: disaster-recovery orchestration. Write failover, restore and rollback procedures as
/// TOML workflows, review their plan, and run them.
#[derive(Debug, Parser)]
#[command(name = "drctl", version, about, long_about = None)]
pub struct Cli {
    /// Where runs are stored.
    #[arg(
        long,
        global = true,
        env = "DRCTL_STATE",
        default_value = "./state",
        value_name = "DIR"
    )]
    pub state: PathBuf,

    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    pub json: bool,

    /// More detail in logs (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files and report every error and warning in them.
    Validate(ValidateArgs),
    /// Show what a workflow would do, without changing anything (a dry run).
    Plan(PlanArgs),
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::code(exit::SUCCESS)
                }
                _ => exit::code(exit::INVALID_INPUT),
            };
        }
    };
    let code = match &cli.command {
        Command::Validate(args) => validate::validate(args),
        Command::Plan(args) => plan::plan(args),
    };
    match code {
        Ok(code) => exit::code(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code(exit::INTERNAL)
        }
    }
}

/// Whether to colour what goes to stderr.
pub(crate) fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Whether to colour what goes to stdout.
pub(crate) fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
