//! Crash test: a real `drctl` child process is killed with SIGKILL at random moments, at least
//! 100 times, and resumed each time. A ledger written by the steps themselves, outside drctl,
//! proves that every step ran, that no step ran again after it succeeded, and that a step ran
//! more than once only when drctl recorded its outcome as unknown; the journal's hash chain
//! stays intact and no approval is lost.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use drctl::synthetic::SplitMix;
use serde_json::Value;

use crate::harness::root;
use crate::support::Drctl;

const KILLS: usize = 100;
const STEPS: [&str; 8] = [
    "check", "fence-a", "fence-b", "promote", "switch-1", "switch-2", "verify", "gate",
];

fn drctl(state: &Path) -> Drctl {
    Drctl::new(state).current_dir(root())
}

/// Starts `args` and kills it after `delay` unless it ended first. Returns whether it was
/// killed, and its exit code when it ended by itself.
fn run_and_maybe_kill(state: &Path, args: &[&str], delay: Duration) -> (bool, Option<i32>) {
    let mut child = drctl(state)
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("drctl starts");
    let deadline = Instant::now() + delay;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (false, status.code());
        }
        if Instant::now() >= deadline {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            return (true, None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn status(state: &Path, run: &str) -> Value {
    drctl(state)
        .run(&["status", run, "--format", "json"])
        .json()
}

fn journal_events(state: &Path, run: &str) -> Vec<Value> {
    let store = drctl::store::SledStore::open(state).expect("store opens once no process holds it");
    drctl::store::Store::journal(&store, run)
        .expect("journal")
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[test]
fn killed_runs_resume_to_the_right_end_state() {
    let mut rng = SplitMix::new(0xD15A_57E5);
    let startup = startup_time();
    let mut kills = 0;
    let mut runs = 0;
    while kills < KILLS {
        runs += 1;
        kills += one_run(&mut rng, runs, startup);
        assert!(runs < 150, "too few kills landed ({kills} in {runs} runs)");
    }
    eprintln!(
        "crash test: {kills} kills over {runs} runs (kills spread over a start-up of {} ms and 250 ms of work)",
        startup.as_millis()
    );
}

/// How long drctl takes to start and open a store on this machine (the slowest of three): the
/// kills are spread over it and the work that follows, so that on a slow machine they do not
/// all land on a process still loading.
fn startup_time() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    (0..3)
        .map(|_| {
            let t = Instant::now();
            drctl(&dir.path().join("state")).run(&["runs"]).ok();
            t.elapsed()
        })
        .max()
        .unwrap_or_default()
}

/// One run of the ledger workflow, killed and resumed until it succeeds. Returns the kills.
fn one_run(rng: &mut SplitMix, n: usize, startup: Duration) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ledger = dir.path().join("ledger");
    let ledger_param = format!("ledger={}", ledger.display());
    let file = "tests/fixtures/crash/ledger.toml";
    let mut kills = 0;
    let mut approvals = 0;

    // Spread over the start-up and the 250 ms of work after it.
    let window = 250 + usize::try_from(startup.as_millis()).unwrap_or(0);
    let delay = |rng: &mut SplitMix| Duration::from_millis(5 + rng.below(window) as u64);
    let (killed, _) = run_and_maybe_kill(
        &state,
        &[
            "run",
            file,
            "--detach",
            "--as",
            "ops",
            "--param",
            &ledger_param,
        ],
        delay(rng),
    );
    kills += usize::from(killed);
    let run_id = {
        let store = drctl::store::SledStore::open(&state).expect("store");
        let runs = drctl::store::Store::runs(&store).expect("runs");
        match runs.first() {
            Some(r) => r.run_id.clone(),
            // Killed before the run was recorded: nothing happened, nothing to check.
            None => return kills,
        }
    };

    for round in 0.. {
        assert!(round < 200, "run {n} never finished");
        let s = status(&state, &run_id);
        match s["status"].as_str().unwrap() {
            "succeeded" => break,
            "awaiting_approval" => {
                let o = drctl(&state).run(&[
                    "approve",
                    &run_id,
                    "gate",
                    "--as",
                    "sre-lead",
                    "--comment",
                    "go",
                ]);
                assert_eq!(o.code, 0, "approval must be recorded: {}", o.text());
                approvals += 1;
            }
            "paused" => {
                // Unknown, non-idempotent steps: the operator re-runs them.
                let unknown: Vec<String> = s["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|st| st["status"] == "unknown")
                    .map(|st| st["id"].as_str().unwrap().to_string())
                    .collect();
                assert!(!unknown.is_empty(), "paused without an unknown step: {s}");
                let mut args = vec!["resume", run_id.as_str(), "--detach", "--retry"];
                for u in &unknown {
                    args.push("--step");
                    args.push(u);
                }
                let (killed, _) = run_and_maybe_kill(&state, &args, delay(rng));
                kills += usize::from(killed);
                continue;
            }
            _ => {}
        }
        let (killed, _) = run_and_maybe_kill(&state, &["resume", &run_id, "--detach"], delay(rng));
        kills += usize::from(killed);
    }

    verify(n, &state, &run_id, &ledger, approvals);
    kills
}

/// Checks a finished run against its ledger and journal.
fn verify(n: usize, state: &Path, run_id: &str, ledger: &Path, approvals: usize) {
    // Orphaned shells of killed processes may still be finishing their ledger lines.
    std::thread::sleep(Duration::from_millis(150));
    let s = status(state, run_id);
    assert_eq!(
        s["journal"]["intact"], true,
        "journal chain of run {n}: {}",
        s["journal"]
    );
    for step in s["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "succeeded", "run {n}: {step}");
    }

    let events = journal_events(state, run_id);
    let count = |kind: &str, step: &str| {
        events
            .iter()
            .filter(|e| e["type"] == kind && e["step"] == step)
            .count()
    };
    let text = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut starts: HashMap<&str, usize> = HashMap::new();
    let mut dones: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("start", step)) => *starts.entry(step).or_default() += 1,
            Some(("done", step)) => *dones.entry(step).or_default() += 1,
            _ => panic!("bad ledger line {line:?}"),
        }
    }
    for step in STEPS.iter().filter(|s| **s != "gate") {
        let ran = starts.get(step).copied().unwrap_or(0);
        assert!(
            dones.get(step).copied().unwrap_or(0) >= 1,
            "run {n}: `{step}` never completed\n{text}"
        );
        // Each run of a step beyond the first must come from an attempt recorded as unknown.
        let unknown = count("step_unknown", step);
        assert!(
            ran <= 1 + unknown,
            "run {n}: `{step}` ran {ran} times but only {unknown} attempts were unknown\n{text}"
        );
        // A succeeded step never starts again.
        let succeeded_at = events
            .iter()
            .position(|e| e["type"] == "step_succeeded" && e["step"] == *step)
            .unwrap();
        assert!(
            !events[succeeded_at..]
                .iter()
                .any(|e| e["type"] == "step_started" && e["step"] == *step),
            "run {n}: `{step}` started again after it succeeded"
        );
    }
    // Every approval given was recorded, once, and the gate opened on it.
    assert_eq!(
        count("approval_voted", "gate"),
        approvals,
        "run {n}: approvals recorded vs given"
    );
    assert!(
        approvals <= 1,
        "run {n}: the gate asked again after it was approved"
    );
}
