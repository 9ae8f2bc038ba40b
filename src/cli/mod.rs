//! The command line: argument parsing (clap) and one file per subcommand. Commands call the
//! library and print; each returns `Result<u8, CliError>`, the error carrying its exit code
//! ([`exit`]), printed once here.

/// `println!` for what a command shows: a reader that closed stdout (`drctl run ... | head -1`)
/// ends the output quietly instead of a panic (SPEC §5.8.10). See [`output::write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for what a command shows, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(&format!($($arg)*))
    };
}

mod cancel;
mod decide;
mod drive;
mod error;
pub mod exit;
mod follow;
mod guard;
mod logging;
mod outfile;
mod output;
mod plan;
mod report;
mod resume;
mod run;
mod serve;
mod state;
mod status;
mod validate;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::aws::AwsContext;
use crate::engine::Services;

pub use cancel::CancelArgs;
pub use decide::DecideArgs;
pub use error::CliError;
pub use plan::PlanArgs;
pub use report::{HistoryArgs, ReportArgs};
pub use resume::{ResumeArgs, RollbackArgs};
pub use run::RunArgs;
pub use serve::ServeArgs;
pub use status::{RunsArgs, StatusArgs};
pub use validate::ValidateArgs;
pub use verify::VerifyArgs;

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

    /// Where runs are kept: sled:DIR (the state directory, as --state) or a shared, replicated
    /// store etcd://HOST:PORT[,HOST:PORT...]/PREFIX (SPEC §11).
    #[arg(long, global = true, env = "DRCTL_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// On a shared store: how long the process driving a run holds it without renewing;
    /// after that another agent may take the run over.
    #[arg(long, global = true, default_value = "5s", value_name = "DURATION", value_parser = parse_lease)]
    pub lease: std::time::Duration,

    /// On a shared store: this process's name in the record of who drives a run (default:
    /// the host's name).
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,

    /// Send every AWS request to this endpoint (a local emulator); `AWS_ENDPOINT_URL` works too.
    #[arg(long, global = true, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,

    /// Write logs (stderr) as JSON lines, at info level unless -v or `DRCTL_LOG` says more.
    #[arg(long, global = true)]
    pub json: bool,

    /// More detail in logs on stderr: -v info, -vv debug (`DRCTL_LOG` takes a `RUST_LOG`-style
    /// filter instead).
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
    /// Run a workflow for real.
    Run(RunArgs),
    /// Run a workflow as a drill (kept apart from real runs in history).
    Drill(RunArgs),
    /// Show where a run stands (default: the latest).
    Status(StatusArgs),
    /// List runs.
    Runs(RunsArgs),
    /// Approve an approval step of a run.
    Approve(DecideArgs),
    /// Reject an approval step of a run (needs --comment).
    Reject(DecideArgs),
    /// Continue an interrupted, paused or cancelled run.
    Resume(ResumeArgs),
    /// Stop a run from starting new steps; it can be resumed or rolled back.
    Cancel(CancelArgs),
    /// Undo the completed steps of a run, in reverse dependency order.
    Rollback(RollbackArgs),
    /// Report on a run: outcome, RTO and RPO against the objectives, timeline, approvals.
    Report(ReportArgs),
    /// Past runs and drills of a workflow, with their RTO and RPO.
    History(HistoryArgs),
    /// Check a run's journal and signatures: hash chain, completeness, who signed what.
    Verify(VerifyArgs),
    /// An agent: drive many runs of the store at once, and take over runs whose driver is gone.
    Serve(ServeArgs),
    /// What drctl starts a shell step under: ends the step's processes when drctl dies.
    #[command(name = "step-guard", hide = true)]
    StepGuard(guard::GuardArgs),
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    // The matches are kept: `resume` pairs each `--step` with the decision that follows it,
    // which only the positions of the arguments tell.
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        match Cli::from_arg_matches(&matches) {
            Ok(cli) => Ok((cli, matches)),
            Err(e) => Err(e),
        }
    });
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
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
    // A shell step's guard is no command of a person's: no logs, no store.
    if let Command::StepGuard(args) = &cli.command {
        return guard::guard(args);
    }
    // What compiles, plans and drives runs is built here, once, and handed down.
    let services = Services::new(AwsContext::new(cli.aws_endpoint_url.clone()));
    logging::init(cli.json, cli.verbose, services.redactors.clone());
    // `--store sled:DIR` is `--state DIR`.
    let state = match cli.store.as_deref().and_then(|u| u.strip_prefix("sled:")) {
        Some(dir) => PathBuf::from(dir),
        None => cli.state.clone(),
    };
    let shared = match cli.store.as_deref().filter(|u| !u.starts_with("sled:")) {
        Some(url) => match crate::store::EtcdAddress::parse(url) {
            Ok(address) => Some(state::Shared {
                address,
                lease: cli.lease,
                name: cli.name.clone().unwrap_or_else(state::hostname),
            }),
            Err(why) => return exit::code(error::report(&CliError::invalid(why))),
        },
        None => None,
    };
    let session = &state::Session::new(&state, shared, services);
    let result = match &cli.command {
        Command::Validate(args) => validate::validate(args).map_err(CliError::from),
        Command::Plan(args) => plan::plan(args, session).map_err(CliError::from),
        Command::Run(args) => run::run(args, session, crate::store::RunMode::Run),
        Command::Drill(args) => run::run(args, session, crate::store::RunMode::Drill),
        Command::Status(args) => status::status(args, session),
        Command::Runs(args) => status::runs(args, session),
        Command::Approve(args) => decide::decide(args, session, crate::engine::Decision::Approve),
        Command::Reject(args) => decide::decide(args, session, crate::engine::Decision::Reject),
        Command::Resume(args) => {
            resume::resume(args, matches.subcommand_matches("resume"), session)
        }
        Command::Cancel(args) => cancel::cancel(args, session),
        Command::Rollback(args) => resume::rollback(args, session),
        Command::Report(args) => report::report(args, session),
        Command::History(args) => report::history(args, session),
        Command::Verify(args) => verify::verify(args, session),
        Command::Serve(args) => serve::serve(args, session, cli.name.as_deref()),
        Command::StepGuard(_) => unreachable!("the guard returns above"),
    };
    exit::code(result.unwrap_or_else(|e| error::report(&e)))
}

/// A lease of at least one second and at most ten minutes.
fn parse_lease(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::workflow::parse_duration(text)?;
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_mins(10) {
        return Err(format!("a lease is between 1s and 10m, not {text}"));
    }
    Ok(d)
}

/// Whether to colour what goes to stderr.
pub(crate) fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Whether to colour what goes to stdout.
pub(crate) fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
