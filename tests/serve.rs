//! `drctl serve` on a state directory (SPEC §11): one agent drives runs of different
//! workflows at once; `drctl run`, `resume` and `rollback` hand their run to it and follow it
//! in the foreground exactly as if they drove it; still one unfinished run per workflow; an
//! agent killed mid-run is replaced by the next one, which takes the run up without running
//! a succeeded step again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Drctl, Live};

/// A scratch directory with a state directory and workflows.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn drctl(&self) -> Drctl {
        Drctl::new(self.path("state")).env("USER", "alice")
    }

    /// Writes workflow `name` with `steps` (TOML `[[steps]]` tables).
    fn workflow(&self, name: &str, steps: &str) -> PathBuf {
        let file = self.path(&format!("{name}.toml"));
        let text = format!("[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n{steps}");
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Starts `drctl serve` on the state directory and waits until it serves.
    fn serve(&self) -> Live {
        self.serve_logged("agent.log")
    }

    /// As [`Scene::serve`], what the agent prints written to `log` in the scene.
    fn serve_logged(&self, log: &str) -> Live {
        self.drctl().serve_logged(&["serve"], &self.path(log))
    }

    /// What the agent wrote to `log`.
    fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.path(log)).unwrap_or_default()
    }

    fn ledger(&self) -> String {
        std::fs::read_to_string(self.path("ledger")).unwrap_or_default()
    }
}

#[track_caller]
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn shell(id: &str, script: &str, needs: &[&str]) -> String {
    let needs = needs
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[[steps]]\nid = \"{id}\"\naction = \"shell\"\nneeds = [{needs}]\nwith = {{ argv = [\"sh\", \"-c\", {script:?}] }}\n\n"
    )
}

fn status_of(drctl: &Drctl, run: &str) -> String {
    drctl.run(&["status", run, "--format", "json"]).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn runs_of_different_workflows_are_driven_at_once() {
    let scene = Scene::new();
    let flag = path_str(&scene.path("b-was-here"));
    // `a` can only end once `b` ran: driven one after the other, it would give up.
    let a = scene.workflow(
        "a",
        &shell(
            "wait-for-b",
            &format!("i=0; while [ ! -f '{flag}' ]; do sleep 0.05; i=$((i+1)); [ $i -gt 300 ] && exit 1; done; true"),
            &[],
        ),
    );
    let b = scene.workflow("b", &shell("mark", &format!("touch '{flag}'"), &[]));
    let _agent = scene.serve();
    let drctl = scene.drctl();
    let (mut first, run_a) = drctl.start(&["run", &path_str(&a)]);
    wait_for(Duration::from_secs(10), "run a to be under way", || {
        status_of(&drctl, &run_a) == "running"
    });
    drctl
        .run(&["run", &path_str(&b)])
        .ok()
        .stdout_has("driven by drctl serve")
        .stdout_has("succeeded");
    assert_eq!(
        first.exit_within(Duration::from_secs(20), "run a to end"),
        Some(0)
    );
    assert_eq!(status_of(&drctl, &run_a), "succeeded");
}

#[test]
fn a_followed_run_prints_and_exits_as_a_run_driven_by_the_command_itself() {
    let scene = Scene::new();
    let steps = format!(
        "{}{}",
        shell("first", "echo hello", &[]),
        shell("broken", "echo no >&2; exit 3", &["first"])
    );
    let file = scene.workflow("broken", &steps);
    // Driven by the command itself, in a state directory of its own.
    let alone = Drctl::new(scene.path("alone"))
        .env("USER", "alice")
        .run(&["run", &path_str(&file)]);
    let _agent = scene.serve();
    let followed = scene.drctl().run(&["run", &path_str(&file)]);
    assert_eq!(followed.code, alone.code, "{followed:?}\n{alone:?}");
    assert_ne!(followed.code, 0);
    let lines = |out: &crate::support::Out| -> Vec<String> {
        let run = out.run_id();
        out.stdout
            .lines()
            .skip(1)
            // Times and run ids differ; the rest is the same.
            .map(|l| {
                let l = l.replace(&run, "RUN");
                let timed = l.len() > 10 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':';
                if timed { l[10..].to_string() } else { l }
            })
            .collect()
    };
    assert_eq!(lines(&followed), lines(&alone));
}

#[test]
fn one_unfinished_run_per_workflow_holds_under_the_agent_and_detach_returns_once_accepted() {
    let scene = Scene::new();
    let file = scene.workflow(
        "slow",
        &format!(
            "[[steps]]\nid = \"hold\"\naction = \"wait\"\nwith = {{ duration = \"3s\" }}\n\n{}",
            shell("after", "true", &["hold"])
        ),
    );
    let _agent = scene.serve();
    let drctl = scene.drctl();
    let t = Instant::now();
    let detached = drctl
        .run(&["run", "--detach", &path_str(&file)])
        .ok()
        .stdout_has("accepted");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "--detach waited for the run"
    );
    let run = detached.run_id();
    assert_eq!(status_of(&drctl, &run), "running");
    drctl
        .run(&["run", &path_str(&file)])
        .code(6)
        .stderr_has(&run)
        .stderr_has("driven by drctl serve");
    drctl.run(&["cancel", &run]).ok();
    // The running wait ends first; then nothing more starts.
    wait_for(Duration::from_secs(15), "the cancel to land", || {
        status_of(&drctl, &run) == "cancelled"
    });
}

#[test]
fn an_approval_given_from_another_terminal_reaches_the_run_in_the_agent() {
    let scene = Scene::new();
    let ledger = path_str(&scene.path("ledger"));
    let steps = format!(
        "[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = {{ approvers = [\"bob\"], quorum = 1, timeout = \"5m\" }}\n\n{}",
        shell(
            "promote",
            &format!("echo promoted >> '{ledger}'"),
            &["gate"]
        )
    );
    let file = scene.workflow("gated", &steps);
    let _agent = scene.serve();
    let drctl = scene.drctl();
    let (mut follower, run) = drctl.start(&["run", &path_str(&file)]);
    wait_for(Duration::from_secs(10), "the approval to wait", || {
        status_of(&drctl, &run) == "awaiting_approval"
    });
    drctl.run(&["approve", &run, "gate", "--as", "bob"]).ok();
    assert_eq!(
        follower.exit_within(Duration::from_secs(20), "the run to end"),
        Some(0)
    );
    assert_eq!(scene.ledger(), "promoted\n");
}

#[test]
fn a_killed_agent_is_replaced_and_its_run_goes_on_without_running_a_step_twice() {
    let scene = Scene::new();
    let ledger = path_str(&scene.path("ledger"));
    let steps = format!(
        "{}[[steps]]\nid = \"hold\"\naction = \"wait\"\nneeds = [\"one\"]\nwith = {{ duration = \"2s\" }}\n\n{}",
        shell("one", &format!("echo one >> '{ledger}'"), &[]),
        shell("two", &format!("echo two >> '{ledger}'"), &["hold"])
    );
    let file = scene.workflow("kill", &steps);
    let mut agent = scene.serve();
    let drctl = scene.drctl();
    let run = drctl
        .run(&["run", "--detach", &path_str(&file)])
        .ok()
        .run_id();
    // Killed once step one is recorded as succeeded: killed between its effect and its
    // record, a shell step's outcome is unknown and the run rightly waits for an operator.
    wait_for(Duration::from_secs(10), "step one recorded", || {
        let status = drctl.run(&["status", &run, "--format", "json"]).json();
        status["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["id"] == "one" && s["status"] == "succeeded")
        })
    });
    assert_eq!(scene.ledger(), "one\n");
    agent.kill();
    let _next = scene.serve_logged("next-agent.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = drctl.run(&["status", &run, "--format", "json"]);
        if status.json()["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end after the agent was replaced\nstatus: {}\nkilled agent:\n{}\nnext agent:\n{}",
            status.text(),
            scene.log("agent.log"),
            scene.log("next-agent.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(scene.ledger(), "one\ntwo\n");
}

#[test]
fn a_paused_run_is_cancelled_through_the_agent_and_resume_is_handed_to_it() {
    let scene = Scene::new();
    let flag = path_str(&scene.path("flag"));
    let file = scene.workflow("paused", &shell("check", &format!("test -f '{flag}'"), &[]));
    let _agent = scene.serve();
    let drctl = scene.drctl();
    let out = drctl.run(&["run", &path_str(&file)]).code(4);
    let run = out.run_id();
    assert_eq!(status_of(&drctl, &run), "paused");
    // A run the agent does not drive is still decided on through it: it owns the store.
    let entries = |drctl: &Drctl| {
        drctl.run(&["status", &run, "--format", "json"]).json()["journal"]["entries"]
            .as_u64()
            .unwrap()
    };
    let before = entries(&drctl);
    drctl
        .run(&["cancel", &run])
        .ok()
        .stdout_has("cancelled by alice");
    assert_eq!(entries(&drctl), before + 1, "the cancel is journaled");
    std::fs::write(&flag, "").unwrap();
    drctl
        .run(&["resume", &run, "--step", "check", "--retry"])
        .ok()
        .stdout_has("taken up by drctl serve")
        .stdout_has("succeeded");
}

#[test]
fn a_foreground_run_holding_the_store_refuses_another_and_points_at_serve() {
    let scene = Scene::new();
    let slow = scene.workflow(
        "slow",
        "[[steps]]\nid = \"hold\"\naction = \"wait\"\nwith = { duration = \"30s\" }\n",
    );
    let other = scene.workflow("other", &shell("x", "true", &[]));
    let drctl = scene.drctl();
    let (_live, run) = drctl.start(&["run", &path_str(&slow)]);
    drctl
        .run(&["run", &path_str(&other)])
        .code(6)
        .stderr_has(&run)
        .stderr_has("drctl serve");
    // An agent cannot start on a store a foreground run holds either.
    drctl.run(&["serve", "--once"]).code(6).stderr_has(&run);
}
