//! The one way tests run the `drctl` binary: a state directory, an environment, a command,
//! and what came out, with assertions that say which command failed and show its output.
//!
//! ```ignore
//! let drctl = Drctl::new(dir.path().join("state"));
//! let out = drctl.run(&["run", "wf.toml", "--detach"]).code(3);
//! let runs = drctl.run(&["runs", "--format", "json"]).ok().json();
//! let (live, run) = drctl.start(&["run", "wf.toml", "--as", "alice"]);
//! ```
//!
//! Every command gets an empty stdin, so none waits for an operator at the test's terminal.

#![allow(dead_code, reason = "each test module uses the part it needs")]

pub mod etcd;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The drctl binary, run against one state directory.
#[derive(Debug, Clone)]
pub struct Drctl {
    state: PathBuf,
    clear_env: bool,
    /// In order: `Some` sets the variable, `None` removes it.
    env: Vec<(OsString, Option<OsString>)>,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
}

impl Drctl {
    /// drctl with `--state` (through `DRCTL_STATE`) set to `state`.
    pub fn new(state: impl Into<PathBuf>) -> Self {
        Self {
            state: state.into(),
            clear_env: false,
            env: Vec::new(),
            args: Vec::new(),
            dir: None,
        }
    }

    /// Also sets `key=value` in the environment of every command.
    #[must_use]
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env.push((key.into(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes `key` from the environment of every command.
    #[must_use]
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Starts every command from an empty environment: only `DRCTL_STATE`, `NO_COLOR` and
    /// what [`Drctl::env`] sets.
    #[must_use]
    pub fn env_clear(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Appends `arg` to every command line, for a global flag such as `--aws-endpoint-url`.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Runs every command from `dir`.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The state directory.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// The command, ready to run or spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        self.prepare(Command::new(env!("CARGO_BIN_EXE_drctl")), args)
    }

    /// `program WRAPPER_ARGS drctl ARGS`, with drctl's environment: for drctl started by
    /// another program (a shell that lowers a limit first, a pseudo-terminal), which passes
    /// its environment on.
    pub fn under(&self, program: &str, wrapper_args: &[&str], args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(wrapper_args).arg(env!("CARGO_BIN_EXE_drctl"));
        self.prepare(cmd, args)
    }

    fn prepare(&self, mut cmd: Command, args: &[&str]) -> Command {
        if self.clear_env {
            cmd.env_clear();
        }
        cmd.args(args)
            .args(&self.args)
            .env("DRCTL_STATE", &self.state)
            .env_remove("AWS_ENDPOINT_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs `drctl ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Out {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run drctl {args:?}: {e}"));
        Out::new(args, &output)
    }

    /// Starts `drctl ARGS` in the background, its output discarded.
    pub fn spawn(&self, args: &[&str]) -> Live {
        Live::spawn(self.command(args))
    }

    /// Starts `drctl ARGS` in the background and returns it with the id of the run it prints
    /// first.
    pub fn start(&self, args: &[&str]) -> (Live, String) {
        Live::start(self.command(args))
    }

    /// As [`Drctl::start`], its standard error written to `log`.
    pub fn start_logged(&self, args: &[&str], log: &Path) -> (Live, String) {
        let stderr = std::fs::File::create(log).expect("log file");
        Live::start_with(self.command(args), Stdio::from(stderr))
    }

    /// Starts an agent, `drctl ARGS` (`serve ...`), in the background, everything it prints
    /// written to `log`, and waits until it drives the runs of its state directory.
    #[track_caller]
    pub fn serve_logged(&self, args: &[&str], log: &Path) -> Live {
        let agent = self.spawn_logged(args, log);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(log).is_ok_and(|t| t.contains("drives the runs")) {
            assert!(
                Instant::now() < deadline,
                "`drctl {}` did not serve within 10 s",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    /// Starts `drctl ARGS` in the background, everything it prints written to `log`.
    pub fn spawn_logged(&self, args: &[&str], log: &Path) -> Live {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = self.command(args);
        let child = command
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Live(child)
    }
}

/// A drctl process in the background, killed when the test ends, however it ends.
#[derive(Debug)]
pub struct Live(Child);

impl Live {
    /// Starts `command` with its output discarded.
    pub fn spawn(mut command: Command) -> Live {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Live(child)
    }

    /// Starts `command` and returns it with the run id its first line names (`run ID ...`).
    pub fn start(command: Command) -> (Live, String) {
        Live::start_with(command, Stdio::null())
    }

    /// As [`Live::start`], its standard error sent to `stderr`.
    pub fn start_with(mut command: Command, stderr: Stdio) -> (Live, String) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        // Kill it if the first line never comes right.
        let live = Live(child);
        let first = lines
            .next()
            .expect("a first line")
            .expect("a readable first line");
        let run = first
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no run id in {first:?}"))
            .to_string();
        // Keep reading so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (live, run)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (SIGSTOP, SIGCONT...) to the process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal sent");
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }

    /// The exit code once the process ends by itself, within `limit`; `what` says what did
    /// not happen when it does not.
    #[track_caller]
    pub fn exit_within(&mut self, limit: Duration, what: &str) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a drctl command did.
#[derive(Debug, Clone)]
pub struct Out {
    /// The command line, for messages.
    pub args: String,
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Wraps a finished process.
    pub fn new(args: &[&str], output: &Output) -> Self {
        Self {
            args: args.join(" "),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code was `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "`drctl {}` exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts the command succeeded (exit 0).
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// Asserts standard output contains `text`.
    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text),
            "`drctl {}`: stdout lacks {text:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts standard error contains `text`.
    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "`drctl {}`: stderr lacks {text:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output, then standard error.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The run id the command printed first (`run ID ...`).
    #[track_caller]
    pub fn run_id(&self) -> String {
        match self.stdout.split_whitespace().nth(1) {
            Some(run) => run.to_string(),
            None => panic!(
                "`drctl {}` names no run\nstdout:\n{}\nstderr:\n{}",
                self.args, self.stdout, self.stderr
            ),
        }
    }

    /// Asserts the command was refused (exit 2) saying `why`; `what` names the attempt.
    #[track_caller]
    pub fn refused(self, why: &str, what: &str) -> Self {
        assert_eq!(self.code, 2, "{what} was not refused: {}", self.text());
        assert!(self.text().contains(why), "{what}: {}", self.text());
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`drctl {}` (exit {}): stdout is not JSON ({e})\nstdout:\n{}\nstderr:\n{}",
                self.args, self.code, self.stdout, self.stderr
            )
        })
    }
}
