//! The one way tests run the `drctl` binary: a state directory, an environment, a command,
//! and what came out, with assertions that say which command failed and show its output.
//!
//! ```ignore
//! let drctl = Drctl::new(dir.path().join("state"));
//! let out = drctl.run(&["run", "wf.toml", "--detach"]).code(3);
//! let runs = drctl.run(&["runs", "--format", "json"]).ok().json();
//! ```

#![allow(dead_code, reason = "each test module uses the part it needs")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The drctl binary, run against one state directory.
#[derive(Debug, Clone)]
pub struct Drctl {
    state: PathBuf,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
}

impl Drctl {
    /// drctl with `--state` (through `DRCTL_STATE`) set to `state`.
    pub fn new(state: impl Into<PathBuf>) -> Self {
        Self {
            state: state.into(),
            env: Vec::new(),
            dir: None,
        }
    }

    /// Also sets `key=value` in the environment of every command.
    #[must_use]
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env.push((
            key.to_string(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drctl"));
        cmd.args(args)
            .env("DRCTL_STATE", &self.state)
            .env_remove("AWS_ENDPOINT_URL")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
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

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`drctl {}`: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}
