//! A shell step's processes and the attempt they belong to (SPEC §5.8.9).
//!
//! Each attempt's processes carry its mark in their environment (`DRCTL_ATTEMPT=run/step/n`),
//! so that an attempt left running by a driver that died can be found by the next driver of
//! the run. Before a later attempt of a step starts, [`end_earlier_attempts`] ends those of
//! its earlier attempts still alive (on Linux, read from `/proc`): two attempts of a step never
//! run at once. Processes are started under drctl's step guard (`cli/guard.rs`) when the
//! driver knows its binary ([`StepProcesses::guard`]): the guard ends the step's process group
//! when the driver dies. This module only finds and ends processes; it starts none.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid, getpgrp};

/// The environment variable holding an attempt's mark.
pub const ATTEMPT_VAR: &str = "DRCTL_ATTEMPT";

/// The hidden subcommand of the drctl binary that guards a shell step: `drctl step-guard --
/// ARGV...` runs ARGV in its process group and ends the group when its parent dies.
pub const GUARD_COMMAND: &str = "step-guard";

/// How a shell step's processes are started and marked.
#[derive(Debug, Clone, Default)]
pub struct StepProcesses {
    /// The drctl binary: shell steps are started under its step guard, which ends them when
    /// the process driving the run dies. `None` (library tests, a program embedding the
    /// engine without the binary): started directly; they end with the driver only when it
    /// ends them itself.
    pub guard: Option<PathBuf>,
    /// The attempt they belong to; `None` outside a driven run (or for a compensation).
    pub attempt: Option<AttemptMark>,
}

/// Which attempt of which step of which run a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptMark {
    /// The run's id.
    pub run: String,
    /// The step's id.
    pub step: String,
    /// The attempt, from 1.
    pub attempt: u32,
}

impl AttemptMark {
    /// The value of [`ATTEMPT_VAR`]: `run/step/attempt`.
    pub fn value(&self) -> String {
        format!("{}/{}/{}", self.run, self.step, self.attempt)
    }

    /// Reads a value written by [`AttemptMark::value`].
    pub fn parse(value: &str) -> Option<Self> {
        let (rest, attempt) = value.rsplit_once('/')?;
        let (run, step) = rest.rsplit_once('/')?;
        Some(Self {
            run: run.to_string(),
            step: step.to_string(),
            attempt: attempt.parse().ok()?,
        })
    }

    /// Whether `other` is another attempt of the same step of the same run.
    fn is_earlier_attempt(&self, other: &AttemptMark) -> bool {
        other.run == self.run && other.step == self.step && other.attempt != self.attempt
    }
}

/// A live process of another attempt of the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Its pid.
    pub pid: i32,
    /// The attempt it belongs to.
    pub attempt: u32,
}

/// Every live process marked with an attempt, and its mark (none where `/proc` cannot be
/// read; processes of other users are not seen).
fn marked() -> Vec<(i32, AttemptMark)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found: Vec<(i32, AttemptMark)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let mark = environ
                .split(|&b| b == 0)
                .filter_map(|var| std::str::from_utf8(var).ok())
                .find_map(|var| var.strip_prefix(ATTEMPT_VAR)?.strip_prefix('='))
                .and_then(AttemptMark::parse)?;
            let pid = i32::try_from(pid).ok()?;
            alive(pid).then_some((pid, mark))
        })
        .collect();
    found.sort_by_key(|(pid, _)| *pid);
    found
}

/// The live processes marked as belonging to another attempt of `mark`'s step.
pub fn leftovers(mark: &AttemptMark) -> Vec<Leftover> {
    marked()
        .into_iter()
        .filter(|(_, other)| mark.is_earlier_attempt(other))
        .map(|(pid, other)| Leftover {
            pid,
            attempt: other.attempt,
        })
        .collect()
}

/// Says in the log which attempts of run `run` still have processes running (their driver
/// died and their guard could not end them), for the operator taking the run up: a retry
/// ends them first; a decision that the attempt succeeded or can be skipped should wait
/// for them.
/// Only steps for which `undecided` holds are named: a step that succeeded may have left a
/// service running on purpose.
pub fn warn_still_running(run: &str, undecided: impl Fn(&str) -> bool) {
    let mut attempts: std::collections::BTreeMap<(String, u32), Vec<String>> =
        std::collections::BTreeMap::new();
    for (pid, mark) in marked()
        .into_iter()
        .filter(|(_, m)| m.run == run && undecided(&m.step))
    {
        attempts
            .entry((mark.step, mark.attempt))
            .or_default()
            .push(pid.to_string());
    }
    for ((step, attempt), pids) in attempts {
        tracing::warn!(
            step = %step,
            attempt,
            "attempt {attempt} of step `{step}` is still running (pid {}): a retry ends it first; wait for it to end before marking it succeeded or skipping it",
            pids.join(", ")
        );
    }
}

/// How long the processes of an earlier attempt get to end after `SIGTERM`, and after
/// `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(5);
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Ends the processes of earlier attempts of `mark`'s step that are still alive: `SIGTERM` to
/// each one's process group, then `SIGKILL`, and waits until they are gone. Says so in the log.
/// Returns the pids still alive after all that (processes drctl may not signal).
pub async fn end_earlier_attempts(mark: &AttemptMark) -> Vec<i32> {
    let found = leftovers(mark);
    if found.is_empty() {
        return Vec::new();
    }
    let pids: Vec<i32> = found.iter().map(|l| l.pid).collect();
    let attempts: std::collections::BTreeSet<u32> = found.iter().map(|l| l.attempt).collect();
    tracing::warn!(
        step = %mark.step,
        attempt = mark.attempt,
        "processes of an earlier attempt ({}) of step `{}` are still running (pid {}): ending them before attempt {} starts",
        attempts.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        mark.step,
        pids.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
        mark.attempt
    );
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        signal_groups(&pids, signal);
        let grace = if signal == Signal::SIGTERM {
            TERM_GRACE
        } else {
            KILL_GRACE
        };
        let deadline = tokio::time::Instant::now() + grace;
        while pids.iter().any(|&p| alive(p)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !pids.iter().any(|&p| alive(p)) {
            tracing::warn!(step = %mark.step, "the earlier attempt's processes have ended");
            return Vec::new();
        }
    }
    pids.into_iter().filter(|&p| alive(p)).collect()
}

/// Sends `signal` to the process group of each pid: what the attempt's processes started is
/// in their group. Never to drctl's own group: then to the process alone.
fn signal_groups(pids: &[i32], signal: Signal) {
    let own = getpgrp();
    for &pid in pids {
        let pid = Pid::from_raw(pid);
        match getpgid(Some(pid)) {
            Ok(group) if group != own && group.as_raw() > 1 => {
                let _ = killpg(group, signal);
            }
            _ => {
                let _ = kill(pid, signal);
            }
        }
    }
}

/// Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command's name, in parentheses, which may hold anything.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn a_mark_reads_back() {
        let mark = AttemptMark {
            run: "r-20260101-abc".into(),
            step: "promote".into(),
            attempt: 3,
        };
        assert_eq!(AttemptMark::parse(&mark.value()), Some(mark));
        assert_eq!(AttemptMark::parse("promote/3"), None);
        assert_eq!(AttemptMark::parse("r/promote/x"), None);
    }

    /// Waits until `/proc/PID/environ` holds `mark`. `spawn` returns once the child has
    /// begun its `exec` (glibc's `posix_spawn` is a vfork, whose parent resumes when the new
    /// program's memory is mapped), but the kernel sets up the new environment a moment
    /// later: read in between, `environ` is empty.
    fn wait_until_environ_is_set(pid: i32, mark: &str) {
        let wanted = format!("{ATTEMPT_VAR}={mark}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if environ
                .split(|&b| b == 0)
                .any(|var| var == wanted.as_bytes())
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child never showed its environment"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test]
    async fn a_process_of_an_earlier_attempt_is_found_and_ended() {
        let mark = AttemptMark {
            run: format!("unit-{}", std::process::id()),
            step: "fence".into(),
            attempt: 2,
        };
        let earlier = AttemptMark {
            attempt: 1,
            ..mark.clone()
        };
        let mut child = std::process::Command::new("sleep")
            .arg("300")
            .env(ATTEMPT_VAR, earlier.value())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        wait_until_environ_is_set(pid, &earlier.value());
        assert_eq!(
            leftovers(&mark),
            vec![Leftover { pid, attempt: 1 }],
            "the earlier attempt's process is found"
        );
        assert!(
            leftovers(&earlier).is_empty(),
            "an attempt is not its own leftover"
        );
        assert!(end_earlier_attempts(&mark).await.is_empty());
        let _ = child.wait();
        assert!(leftovers(&mark).is_empty());
    }
}
