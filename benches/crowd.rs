//! Many runs on one agent (SPEC §10, §11), each figure beside the same run's raw fdatasync:
//!
//! - in the agent: 100 runs of a 100-step `noop` chain started at once through the agent's
//!   own start path (goal: all finished in under 1 s);
//! - the crowd: a `drctl serve` and 100 real `drctl run --detach` processes started at the
//!   same moment, one workflow each (goal: every one accepted, every run finished within 5 s
//!   of the first start, process starts included).
//!
//! Run with `cargo bench --bench crowd` (`-- --crowd-only` for the crowd alone, `-- --rounds N`
//! to repeat it). The drctl binary is the one cargo built for the benchmark (release).

#![allow(
    clippy::too_many_lines,
    reason = "a benchmark report, written out plainly"
)]

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/agent.rs"]
mod agent;
#[path = "shared/measure.rs"]
mod measure;

use measure::{ms, raw_fsync};

/// A chain of `n` `noop` steps, as workflow `name`.
fn chain(name: &str, n: usize) -> String {
    let mut text = format!("[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n");
    for i in 0..n {
        text.push_str(&format!("[[steps]]\nid = \"s{i}\"\naction = \"noop\"\n"));
        if i > 0 {
            text.push_str(&format!("needs = [\"s{}\"]\n", i - 1));
        }
        text.push('\n');
    }
    text
}

/// 100 runs of a 100-step chain started at once through the agent's own start path.
fn in_agent() -> agent::Started {
    agent::runs_at_once(100, |i| chain(&format!("chain-{i}"), 100))
}

/// What one crowd round measured.
struct Crowd {
    /// Clients whose `drctl run --detach` exited 0.
    accepted: usize,
    /// Their complaints otherwise.
    refused: Vec<String>,
    /// Runs that succeeded.
    succeeded: usize,
    /// From the first process start to the last client's exit.
    last_accepted: Duration,
    /// From the first process start to the moment every run was seen finished.
    last_finished: Duration,
}

/// The agent of a state directory, ended when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `drctl serve` on `state` and waits until it serves.
fn serve(drctl: &Path, state: &Path) -> Agent {
    let mut child = Command::new(drctl)
        .args(["--state", &state.display().to_string(), "serve"])
        .env("USER", "bench")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drctl serve started");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let agent = Agent(child);
    let first = lines.next().expect("drctl serve says it serves").unwrap();
    assert!(first.contains("drives the runs"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    agent
}

/// How many runs of the store there are, how many have finished, and how many succeeded,
/// asked on its control socket (no process start in the measurement's loop); `None` when
/// the agent did not answer (an agent that turns clients away: asked again).
fn finished(socket: &Path) -> Option<(usize, usize, usize)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.write_all(b"{\"v\":2,\"op\":\"runs\"}\n").ok()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).ok()?;
    let v: serde_json::Value = serde_json::from_str(&answer).ok()?;
    let runs = v["reply"]["data"].as_array()?;
    let ended = runs
        .iter()
        .filter(|r| r["status"] != "running" && r["status"] != "pending")
        .count();
    let succeeded = runs.iter().filter(|r| r["status"] == "succeeded").count();
    Some((runs.len(), ended, succeeded))
}

/// One round: an agent, then 100 `drctl run --detach` started at the same moment.
fn crowd(drctl: &Path) -> Crowd {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let files: Vec<PathBuf> = (0..100)
        .map(|i| {
            let file = dir.path().join(format!("team-{i}.toml"));
            std::fs::write(&file, chain(&format!("team-{i}"), 100)).unwrap();
            file
        })
        .collect();
    let _agent = serve(drctl, &state);
    let socket = state.join("control.sock");
    let began = Instant::now();
    let clients: Vec<Child> = files
        .iter()
        .map(|file| {
            Command::new(drctl)
                .args(["--state", &state.display().to_string()])
                .args(["run", "--detach", &file.display().to_string()])
                .env("USER", "bench")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("drctl run started")
        })
        .collect();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for client in clients {
        let out = client.wait_with_output().expect("client waited for");
        if out.status.success() {
            accepted += 1;
        } else {
            refused.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
    }
    let last_accepted = began.elapsed();
    let deadline = Instant::now() + Duration::from_mins(2);
    let (succeeded, last_finished) = loop {
        if let Some((runs, ended, succeeded)) = finished(&socket)
            && runs >= accepted
            && ended == runs
        {
            break (succeeded, began.elapsed());
        }
        assert!(Instant::now() < deadline, "the runs did not end in 120 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    Crowd {
        accepted,
        refused,
        succeeded,
        last_accepted,
        last_finished,
    }
}

fn main() {
    let drctl = PathBuf::from(env!("CARGO_BIN_EXE_drctl"));
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let crowd_only = args.iter().any(|a| a == "--crowd-only");
    let scratch = tempfile::tempdir().unwrap();
    println!("| figure | goal | measured | verdict |");
    println!("|---|---|---|---|");
    println!(
        "| raw write+fdatasync, median of 200 | | {} | |",
        ms(raw_fsync(scratch.path()))
    );
    if !crowd_only {
        let agent::Started { started, finished } = in_agent();
        println!(
            "| 100 runs × 100-step chain, started at once in the agent | < 1 s | {} (the last start durable after {}) | {} |",
            ms(finished),
            ms(started),
            if finished < Duration::from_secs(1) {
                "MET"
            } else {
                "NOT MET"
            }
        );
    }
    for round in 1..=rounds {
        let c = crowd(&drctl);
        let met =
            c.accepted == 100 && c.succeeded == 100 && c.last_finished < Duration::from_secs(5);
        println!(
            "| the crowd, round {round}: 100 `drctl run --detach` processes at once, 100-step chains | all accepted, all finished < 5 s | {} accepted, {} succeeded; last accepted after {}, last run finished after {} | {} |",
            c.accepted,
            c.succeeded,
            ms(c.last_accepted),
            ms(c.last_finished),
            if met { "MET" } else { "NOT MET" }
        );
        for why in c.refused.iter().take(3) {
            println!("|   refused: {} | | | |", why.replace('\n', " "));
        }
    }
    println!(
        "| raw write+fdatasync again, after | | {} | |",
        ms(raw_fsync(scratch.path()))
    );
}
