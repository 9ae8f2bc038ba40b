//! `drctl step-guard -- ARGV...` (hidden): what a shell step is started under, so that its
//! processes end with the process driving the run, even one killed by `kill -9` (SPEC §5.8.9).
//!
//! The driver starts the guard as the leader of a new process group, with a pipe as its stdin
//! whose other end only the driver holds. The guard asks for `SIGTERM` when its parent dies,
//! starts ARGV as its child in the same group (stdin empty, stdout and stderr shared), and
//! passes on how it ended. When the driver goes away (the parent-death signal, or the pipe
//! closing) it kills the whole group, itself included: nothing the step started runs on beside
//! the next attempt. It prints nothing of its own except why ARGV could not start.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgrp, getpid, getppid, setpgid};
use tokio::signal::unix::{SignalKind, signal};

/// The command a shell step runs, after `--`.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<OsString>,
}

/// Exit code when ARGV cannot be started, as a shell says for a command it cannot run.
const CANNOT_START: u8 = 127;

/// Runs the guard; returns ARGV's exit code (or ends by the signal that ended ARGV).
pub fn guard(args: &GuardArgs) -> ExitCode {
    let parent = getppid();
    // The driver made the guard a group leader; make sure, so that the group killed below is
    // never the driver's own.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("drctl step guard: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    runtime.block_on(watch(args, parent))
}

async fn watch(args: &GuardArgs, parent: Pid) -> ExitCode {
    // Handlers first: the parent-death signal must find them in place.
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("drctl step guard: cannot watch for signals");
        return ExitCode::from(CANNOT_START);
    };
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    // The parent may have died before the signal was asked for: then nothing will send it.
    // (Had it died before `parent` was read, its pipe, closed, says so below.)
    if getppid() != parent {
        end_group();
    }
    let (program, rest) = args.argv.split_first().expect("clap requires ARGV");
    let mut child = match tokio::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            eprintln!(
                "cannot start `{}` in {}: {e}",
                program.to_string_lossy(),
                cwd.display()
            );
            return ExitCode::from(CANNOT_START);
        }
    };
    let (gone, parent_gone) = tokio::sync::oneshot::channel::<()>();
    // Nothing is ever written: a read returns only when the driver's end is closed. The thread
    // is never joined: the guard exits when the step does.
    std::thread::spawn(move || {
        let mut buf = [0_u8; 64];
        while std::io::stdin().read(&mut buf).is_ok_and(|n| n > 0) {}
        let _ = gone.send(());
    });
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => match status.code() {
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                // Killed by a signal: so is the guard, for the driver to see it the same way.
                None => {
                    let _ = kill(getpid(), Signal::SIGKILL);
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("drctl step guard: lost track of the step: {e}");
                end_group();
            }
        },
        _ = term.recv() => end_group(),
        _ = hangup.recv() => end_group(),
        _ = parent_gone => end_group(),
    }
}

/// Kills the guard's process group: the step's processes and the guard itself.
fn end_group() -> ! {
    let group = getpgrp();
    if group == getpid() {
        let _ = killpg(group, Signal::SIGKILL);
    }
    // Not a group leader (never so when started by a driver): the guard alone.
    let _ = kill(getpid(), Signal::SIGKILL);
    std::process::exit(1)
}
