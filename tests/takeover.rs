//! An orchestrator that survives the loss of its own machine (SPEC §11), against a real
//! three-member etcd cluster on 127.0.0.1. A run's steps append to a ledger outside drctl, so
//! a step run twice shows. Each test drives a run with one drctl process and has agents
//! (`drctl serve`) standing by:
//!
//! - the driver is killed (-9): an agent continues the run; nothing that succeeded runs again;
//! - the driver is frozen (SIGSTOP) past its lease, an agent takes over, the driver is thawed:
//!   it writes nothing and starts nothing (fencing);
//! - two agents race for the run: exactly one drives it;
//! - with agents standing by, `drctl run` hands its run to them and follows it; the agent
//!   driving it is killed (-9): another continues it, and the follower sees it to the end;
//!   the agent driving it is frozen past its lease: another continues it, and once thawed
//!   the first writes nothing and starts nothing; when the agents announced are gone, the
//!   command drives the run itself;
//! - an etcd member dies mid-run, then the whole cluster stops and starts again: the run goes
//!   on and ends;
//! - one agent drives runs of several workflows at once, and lets each go at rest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::etcd::Cluster;
use crate::support::{Drctl, Live};

/// A workflow of three steps: append `one`, wait `wait`, append `two`.
fn workflow(dir: &Path, wait: &str) -> PathBuf {
    let ledger = dir.join("ledger");
    let file = dir.join("takeover.toml");
    let text = format!(
        r#"[workflow]
name = "takeover"
kind = "failover"

[[steps]]
id = "one"
action = "shell"
with = {{ argv = ["sh", "-c", "echo one >> '{ledger}'"] }}

[[steps]]
id = "hold"
action = "wait"
needs = ["one"]
with = {{ duration = "{wait}" }}

[[steps]]
id = "two"
action = "shell"
needs = ["hold"]
with = {{ argv = ["sh", "-c", "echo two >> '{ledger}'"] }}
"#,
        ledger = ledger.display()
    );
    std::fs::write(&file, text).unwrap();
    file
}

struct Scene {
    dir: tempfile::TempDir,
    cluster: Cluster,
    file: PathBuf,
}

impl Scene {
    fn new(wait: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let file = workflow(dir.path(), wait);
        Scene {
            cluster: Cluster::start(),
            file,
            dir,
        }
    }

    /// drctl on the cluster, as agent `name`, holding runs with a 2 s lease.
    fn drctl(&self, name: &str) -> Drctl {
        Drctl::new(self.dir.path().join("state"))
            .env("DRCTL_STORE", self.cluster.url("drctl"))
            .env("USER", "alice")
            .arg("--lease")
            .arg("2s")
            .arg("--name")
            .arg(name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ledger(&self) -> String {
        std::fs::read_to_string(self.path("ledger")).unwrap_or_default()
    }

    fn status(&self, run: &str) -> serde_json::Value {
        self.drctl("reader")
            .run(&["status", run, "--format", "json"])
            .ok()
            .json()
    }

    fn step(&self, run: &str, id: &str) -> serde_json::Value {
        self.status(run)["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
            .unwrap_or_default()
    }

    /// Waits until the run's step `id` is `status`.
    fn wait_step(&self, run: &str, id: &str, status: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.step(run, id)["status"] != status {
            assert!(
                Instant::now() < deadline,
                "{id} never became {status}: {:#}",
                self.status(run)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the run is over.
    fn wait_done(&self, run: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status(run);
            if status["finished_at"].is_string() && status["status"] != "running" {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the run never ended: {status:#}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every agent's and driver's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log" || e == "err") {
                out.push_str(&format!(
                    "== {}\n{}\n",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ));
            }
        }
        out
    }

    /// Starts agent `name` (`drctl serve`) and waits until it stands by: announced on the
    /// store, so that `drctl run` hands runs to it.
    fn agent(&self, name: &str) -> Live {
        let log = self.path(&format!("{name}.log"));
        let agent = self.drctl(name).spawn_logged(&["serve"], &log);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("serving")
        {
            assert!(
                Instant::now() < deadline,
                "agent {name} never came up\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    fn journal_len(&self, run: &str) -> u64 {
        self.status(run)["journal"]["entries"].as_u64().unwrap()
    }
}

impl Scene {
    /// When the journal recorded the second attempt of `hold`: the new owner's first act.
    fn retaken_at(&self, run: &str) -> chrono::DateTime<chrono::Utc> {
        let evidence = self
            .drctl("reader")
            .run(&["report", run, "--format", "evidence"])
            .ok()
            .json();
        let at = evidence["journal"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["event"]["type"] == "step_started"
                    && e["event"]["step"] == "hold"
                    && e["event"]["attempt"] == 2
            })
            .and_then(|e| e["at"].as_str())
            .expect("a second attempt of `hold` in the journal")
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&at)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }
}

#[test]
fn a_killed_driver_s_run_is_continued_by_an_agent_without_running_a_step_twice() {
    let s = Scene::new("3s");
    let (mut driver, run) = s
        .drctl("driver-a")
        .start(&["run", s.file.to_str().unwrap()]);
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    assert_eq!(
        s.status(&run)["driven_by"]["name"],
        "driver-a",
        "status names the driver"
    );
    // A standby agent comes up while the run is under way, then its driver is killed.
    let _agent = s.agent("agent-b");
    driver.kill();
    let killed = chrono::Utc::now();
    let status = s.wait_done(&run, Duration::from_secs(40));
    assert_eq!(status["status"], "succeeded", "{status:#}");
    assert_eq!(s.ledger(), "one\ntwo\n", "each step ran once");
    let one = s.step(&run, "one");
    assert_eq!(one["attempts"], 1, "a succeeded step is never run again");
    let takeover = (s.retaken_at(&run) - killed).num_milliseconds();
    println!("takeover after kill -9: {takeover} ms (lease 2 s)");
    assert!(
        std::fs::read_to_string(s.path("agent-b.log"))
            .unwrap()
            .contains("agent-b takes it over"),
        "the agent says it took the run over"
    );
}

#[test]
fn a_driver_frozen_past_its_lease_writes_nothing_and_starts_nothing_when_it_wakes() {
    let s = Scene::new("3s");
    let (driver, run) = s
        .drctl("driver-a")
        .start_logged(&["run", s.file.to_str().unwrap()], &s.path("driver-a.err"));
    let mut driver = driver;
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    driver.signal(Signal::SIGSTOP);
    let _agent = s
        .drctl("agent-b")
        .spawn_logged(&["serve"], &s.path("agent-b.log"));
    let status = s.wait_done(&run, Duration::from_secs(40));
    assert_eq!(status["status"], "succeeded", "{status:#}");
    let entries = s.journal_len(&run);
    driver.signal(Signal::SIGCONT);
    let code = driver.exit_within(
        Duration::from_secs(30),
        "the thawed driver did not stop on its own",
    );
    assert_ne!(code, Some(0), "the thawed driver fails: it lost the run");
    let err = std::fs::read_to_string(s.path("driver-a.err")).unwrap();
    assert!(err.contains("no longer driven by this process"), "{err}");
    assert_eq!(
        s.journal_len(&run),
        entries,
        "the thawed driver wrote nothing"
    );
    assert_eq!(s.ledger(), "one\ntwo\n", "and started nothing");
    assert_eq!(s.status(&run)["status"], "succeeded");
}

#[test]
fn two_agents_racing_for_a_run_leave_exactly_one_driving_it() {
    let s = Scene::new("3s");
    let (mut driver, run) = s
        .drctl("driver-a")
        .start(&["run", s.file.to_str().unwrap()]);
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    let agents: Vec<Live> = ["agent-b", "agent-c"]
        .iter()
        .map(|name| {
            s.drctl(name)
                .spawn_logged(&["serve"], &s.path(&format!("{name}.log")))
        })
        .collect();
    driver.kill();
    let status = s.wait_done(&run, Duration::from_secs(40));
    assert_eq!(status["status"], "succeeded", "{status:#}");
    assert_eq!(s.ledger(), "one\ntwo\n");
    assert_eq!(
        s.step(&run, "hold")["attempts"],
        2,
        "one new owner, one new attempt"
    );
    drop(agents);
    let drove: Vec<&str> = ["agent-b", "agent-c"]
        .into_iter()
        .filter(|name| {
            std::fs::read_to_string(s.path(&format!("{name}.log")))
                .unwrap()
                .contains("rests (exit code 0)")
        })
        .collect();
    assert_eq!(drove.len(), 1, "exactly one agent drove the run: {drove:?}");
}

#[test]
fn a_run_goes_on_when_an_etcd_member_dies_and_after_the_whole_cluster_restarts() {
    let mut s = Scene::new("4s");
    let _agent = s
        .drctl("agent-b")
        .spawn_logged(&["serve"], &s.path("agent-b.log"));
    let (_driver, run) = s
        .drctl("driver-a")
        .start(&["run", s.file.to_str().unwrap()]);
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    s.cluster.kill_member(0);
    std::thread::sleep(Duration::from_millis(500));
    for i in 1..3 {
        s.cluster.kill_member(i);
    }
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..3 {
        s.cluster.start_member(i);
    }
    s.cluster.wait_healthy(Duration::from_secs(30));
    let status = s.wait_done(&run, Duration::from_mins(1));
    assert_eq!(status["status"], "succeeded", "{status:#}");
    assert_eq!(s.ledger(), "one\ntwo\n", "each step ran once");
}

#[test]
fn a_vote_from_any_terminal_reaches_the_agent_that_took_the_run_over() {
    let s = Scene::new("1s");
    let text = std::fs::read_to_string(&s.file)
        .unwrap()
        .replace("needs = [\"hold\"]", "needs = [\"gate\"]")
        + "\n[[steps]]\nid = \"gate\"\naction = \"approval\"\nneeds = [\"hold\"]\nwith = { approvers = [\"bob\"], timeout = \"1h\" }\n";
    std::fs::write(&s.file, text).unwrap();
    let (mut driver, run) = s
        .drctl("driver-a")
        .start(&["run", s.file.to_str().unwrap()]);
    s.wait_step(&run, "gate", "awaiting_approval", Duration::from_secs(20));
    let _agent = s.agent("agent-b");
    // While the first driver waits, a vote from elsewhere is refused or taken by it alone.
    s.drctl("laptop")
        .run(&["approve", &run, "gate", "--as", "mallory"])
        .refused(
            "not an approver",
            "a vote by someone not listed, through the inbox",
        );
    driver.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.status(&run)["driven_by"]["name"] != "agent-b" {
        assert!(
            Instant::now() < deadline,
            "the agent never took the run over\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.drctl("laptop")
        .run(&["approve", &run, "gate", "--as", "bob", "--comment", "go"])
        .ok()
        .stdout_has("bob approved `gate`");
    let status = s.wait_done(&run, Duration::from_secs(30));
    assert_eq!(status["status"], "succeeded", "{status:#}\n{}", s.logs());
    assert_eq!(s.ledger(), "one\ntwo\n");
}

#[test]
fn a_run_handed_to_the_agents_survives_the_agent_driving_it_and_is_followed_to_the_end() {
    let s = Scene::new("3s");
    let mut agents: Vec<(&str, Live)> = ["agent-b", "agent-c"]
        .into_iter()
        .map(|name| (name, s.agent(name)))
        .collect();
    let follower_log = s.path("follower.log");
    let mut follower = s
        .drctl("laptop")
        .spawn_logged(&["run", s.file.to_str().unwrap()], &follower_log);
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let log = std::fs::read_to_string(&follower_log).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.starts_with("run ")) {
            assert!(line.contains("handed to the agents"), "{line}");
            break line.split_whitespace().nth(1).unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "drctl run printed nothing: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    // An agent drives it, not the command that started it.
    let owner = s.status(&run)["driven_by"].clone();
    let driving = owner["name"].as_str().unwrap_or_default().to_string();
    let i = agents
        .iter()
        .position(|(name, _)| *name == driving)
        .unwrap_or_else(|| panic!("driven by {owner}, not an agent"));
    assert_eq!(owner["pid"], agents[i].1.pid(), "{owner}");
    let (killed_name, mut killed_agent) = agents.remove(i);
    killed_agent.kill();
    let killed = chrono::Utc::now();
    let status = s.wait_done(&run, Duration::from_secs(40));
    assert_eq!(status["status"], "succeeded", "{status:#}\n{}", s.logs());
    assert_eq!(s.ledger(), "one\ntwo\n", "each step ran once");
    assert_eq!(
        s.step(&run, "one")["attempts"],
        1,
        "a succeeded step is never run again"
    );
    let takeover = (s.retaken_at(&run) - killed).num_milliseconds();
    println!("takeover after kill -9 of the agent {killed_name}: {takeover} ms (lease 2 s)");
    assert_eq!(status["driven_by"], serde_json::Value::Null, "{status:#}");
    // The follower saw it all and ends as the run did.
    let code = follower.exit_within(Duration::from_secs(20), "the follower never ended");
    assert_eq!(
        code,
        Some(0),
        "{}",
        std::fs::read_to_string(&follower_log).unwrap()
    );
    let printed = std::fs::read_to_string(&follower_log).unwrap();
    for line in ["one: succeeded", "two: succeeded", "hold: succeeded"] {
        assert!(printed.contains(line), "{line:?} not in:\n{printed}");
    }
}

#[test]
fn an_agent_frozen_past_its_lease_writes_nothing_and_starts_nothing_when_it_wakes() {
    let s = Scene::new("3s");
    let mut agents: Vec<(&str, Live)> = ["agent-b", "agent-c"]
        .into_iter()
        .map(|name| (name, s.agent(name)))
        .collect();
    let (_follower, run) = s
        .drctl("laptop")
        .start(&["run", "--detach", s.file.to_str().unwrap()]);
    s.wait_step(&run, "hold", "running", Duration::from_secs(20));
    let owner = s.status(&run)["driven_by"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let i = agents
        .iter()
        .position(|(name, _)| *name == owner)
        .unwrap_or_else(|| panic!("driven by {owner}, not an agent"));
    let (frozen_name, frozen) = agents.remove(i);
    frozen.signal(Signal::SIGSTOP);
    let status = s.wait_done(&run, Duration::from_secs(40));
    assert_eq!(status["status"], "succeeded", "{status:#}\n{}", s.logs());
    assert_eq!(
        s.step(&run, "hold")["attempts"],
        2,
        "the other agent took it over"
    );
    let entries = s.journal_len(&run);
    frozen.signal(Signal::SIGCONT);
    // Its wait ends while it sleeps: once awake, it tries to record that and is refused.
    let log = s.path(&format!("{frozen_name}.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("no longer driven by this process")
    {
        assert!(
            Instant::now() < deadline,
            "the thawed agent never found out it lost the run\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        s.journal_len(&run),
        entries,
        "the thawed agent wrote nothing"
    );
    assert_eq!(s.ledger(), "one\ntwo\n", "and started nothing");
    assert_eq!(s.status(&run)["status"], "succeeded");
}

#[test]
fn a_run_handed_to_agents_that_are_gone_is_driven_by_the_command_itself() {
    let s = Scene::new("1s");
    let frozen = s.agent("agent-b");
    // Still announced (its lease has not run out), but it will take nothing.
    frozen.signal(Signal::SIGSTOP);
    let out = s
        .drctl("laptop")
        .run(&["run", s.file.to_str().unwrap()])
        .ok()
        .stdout_has("handed to the agents (agent-b)")
        .stderr_has("this command drives it");
    let run = out.run_id();
    assert_eq!(s.ledger(), "one\ntwo\n", "each step ran once");
    assert_eq!(s.status(&run)["status"], "succeeded");
    frozen.signal(Signal::SIGCONT);
}

/// One agent on the shared store drives runs of several workflows at once (each a task of its
/// runtime, as on a state directory), serves each one's inbox, and lets each go at rest.
#[test]
fn one_agent_drives_runs_of_several_workflows_at_once_and_lets_each_go_at_rest() {
    let s = Scene::new("3s");
    let _agent = s.agent("agent-b");
    let runs: Vec<String> = ["north", "south", "west"]
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(&s.file)
                .unwrap()
                .replace("name = \"takeover\"", &format!("name = \"{name}\""));
            let file = s.path(&format!("{name}.toml"));
            std::fs::write(&file, text).unwrap();
            s.drctl("laptop")
                .run(&["run", file.to_str().unwrap(), "--detach"])
                .ok()
                .stdout_has("handed to the agents (agent-b)")
                .run_id()
        })
        .collect();
    // All three under way together, each driven by the one agent.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holding = runs
            .iter()
            .filter(|run| {
                s.step(run, "hold")["status"] == "running"
                    && s.status(run)["driven_by"]["name"] == "agent-b"
            })
            .count();
        if holding == runs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never drove the three runs at once\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for run in &runs {
        let status = s.wait_done(run, Duration::from_secs(30));
        assert_eq!(status["status"], "succeeded", "{status:#}\n{}", s.logs());
        // Let go of at rest: nobody holds a run that is over.
        assert_eq!(status["driven_by"], serde_json::Value::Null, "{status:#}");
    }
    assert_eq!(s.ledger().matches("one").count(), 3, "{}", s.ledger());
    assert_eq!(s.ledger().matches("two").count(), 3, "{}", s.ledger());
}
