//! A step's processes end with their driver (SPEC §5.8.9): a `drctl run` killed with SIGKILL
//! takes its shell step's processes with it, and an attempt left running anyway is ended
//! before `resume --retry` starts the next one. Real processes, each killed by pid when the
//! test ends.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::Drctl;

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X') | None
        )
    })
}

/// The pids written in `file`, one a line, once it has `count` of them.
fn pids_in(file: &Path, count: usize, limit: Duration) -> Vec<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {count} pids",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills every pid it holds, and their process groups (the step's), when the test ends,
/// however it ends.
#[derive(Default)]
struct Reaper(Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        let own = nix::unistd::getpgrp();
        for &pid in &self.0 {
            if alive(pid) {
                let pid = Pid::from_raw(pid);
                if let Ok(group) = nix::unistd::getpgid(Some(pid))
                    && group != own
                {
                    let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
                }
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn a_killed_driver_takes_its_shell_steps_processes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let file = dir.path().join("hold.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "hold"
kind = "failover"

[[steps]]
id = "hold"
action = "shell"
with = {{ argv = ["sh", "-c", "sleep 300 & echo $! >> \"$PIDS\"; echo $$ >> \"$PIDS\"; sleep 300"], env = {{ PIDS = "{}" }} }}
"#,
            pids.display()
        ),
    )
    .unwrap();
    let drctl = Drctl::new(dir.path().join("state"));
    let mut live = drctl.spawn(&["run", file.to_str().unwrap(), "--as", "alice"]);
    let mut reaper = Reaper::default();
    let step = pids_in(&pids, 2, Duration::from_secs(30));
    reaper.0.extend(&step);
    assert!(step.iter().all(|&p| alive(p)), "the step runs");

    live.kill();
    let deadline = Instant::now() + Duration::from_secs(3);
    while step.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = step.iter().copied().filter(|&p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "processes of the step outlived its driver by 3 s: {left:?}"
    );
}

#[test]
fn resume_ends_an_attempt_left_running_before_it_retries() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let file = p.join("fence.toml");
    // The first attempt hangs; later ones say whether the leftover still ran when they began.
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "fence"
kind = "failover"

[[steps]]
id = "fence"
action = "shell"
with = {{ argv = ["sh", "-c", "echo $$ >> \"$P/attempts\"; if [ -f \"$P/left\" ]; then kill -0 \"$(cat \"$P/left\")\" 2>/dev/null && echo overlap > \"$P/overlap\"; exit 0; fi; sleep 300"], env = {{ P = "{}" }} }}
"#,
            p.display()
        ),
    )
    .unwrap();
    let drctl = Drctl::new(p.join("state"));
    let mut reaper = Reaper::default();
    let (mut live, run) = drctl.start(&["run", file.to_str().unwrap(), "--as", "alice"]);
    let first = pids_in(&p.join("attempts"), 1, Duration::from_secs(30));
    reaper.0.extend(&first);
    live.kill();

    // An attempt whose guard did not work: still running, marked as attempt 1 of the step.
    let mut leftover = std::process::Command::new("sleep")
        .arg("300")
        .env("DRCTL_ATTEMPT", format!("{run}/fence/1"))
        .process_group(0)
        .spawn()
        .unwrap();
    let left = i32::try_from(leftover.id()).unwrap();
    reaper.0.push(left);
    std::fs::write(p.join("left"), left.to_string()).unwrap();
    // Reaped as soon as it ends, so that `kill -0` in the next attempt tells the truth.
    let reaped = std::thread::spawn(move || leftover.wait().unwrap());

    // Taken up, the attempt's outcome is unknown: the run pauses for the operator, who is
    // told that it still runs.
    let paused = drctl.run(&["resume", &run]).code(4);
    assert!(
        paused
            .stderr
            .contains("attempt 1 of step `fence` is still running")
            && paused.stderr.contains(&left.to_string()),
        "resume says the attempt still runs: {}",
        paused.text()
    );
    assert!(alive(left), "nothing is ended without a retry");
    let out = drctl
        .run(&["resume", &run, "--step", "fence", "--retry"])
        .ok();
    let attempts = pids_in(&p.join("attempts"), 2, Duration::from_secs(1));
    reaper.0.extend(&attempts);
    assert!(
        out.stderr.contains("still running") && out.stderr.contains(&left.to_string()),
        "resume says an earlier attempt was still running: {}",
        out.text()
    );
    assert!(!alive(left), "the leftover attempt was ended");
    let status = reaped.join().unwrap();
    assert!(status.code().is_none(), "ended by a signal: {status:?}");
    assert!(
        !p.join("overlap").exists(),
        "the new attempt began while the earlier one still ran"
    );
    let status = drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "succeeded", "{status}");
}
