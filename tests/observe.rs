//! Logs and run events (SPEC §9a): `--json` log lines carry the run and the step and never a
//! secret; a workflow's `events` reach a webhook (a small HTTP server on loopback, started
//! and stopped by each test) with the command to run next; a webhook that fails or hangs
//! changes nothing about the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Drctl;

/// How the test webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    ServerError,
    /// Reads the request and never answers.
    Hang,
}

/// A webhook on 127.0.0.1: keeps every JSON body posted to it; stopped when dropped.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Webhook {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (kept, stopping) = (kept.clone(), stopping.clone());
                std::thread::spawn(move || serve(stream, answer, &kept, &stopping));
            }
        });
        Self {
            url,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies whose `event` is `event`.
    fn of(&self, event: &str) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["event"] == event)
            .collect()
    }

    /// Waits up to `limit` for a body of `event`.
    fn wait_for(&self, event: &str, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let found = self.of(event);
            if !found.is_empty() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so that it sees the stop.
        let _ = TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .trim_end_matches("/hook"),
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request: its body kept, answered as `answer` says.
fn serve(stream: TcpStream, answer: Answer, kept: &Mutex<Vec<Value>>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if let Ok(value) = serde_json::from_slice(&body) {
        kept.lock().unwrap().push(value);
    }
    let mut stream = reader.into_inner();
    match answer {
        Answer::Ok => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
        Answer::ServerError => {
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfail",
            );
        }
        Answer::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn workflow(dir: &std::path::Path, text: &str) -> String {
    let file = dir.join("wf.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

const LEAKY: &str = r#"
[workflow]
name = "leaky-logs"
kind = "failover"
on_failure = "abort"

[[steps]]
id = "echo"
action = "shell"
with = { argv = ["sh", "-c", "echo token is $0", "${env.TOKEN}"] }

[[steps]]
id = "fail"
action = "shell"
needs = ["echo"]
with = { argv = ["sh", "-c", "echo refused $0 >&2; exit 3", "${env.TOKEN}"] }
"#;

#[test]
fn json_logs_carry_the_run_and_the_step_and_never_a_secret() {
    let secret = format!("tok-{:x}-{}", std::process::id(), "s3cr3t");
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(dir.path(), LEAKY);

    let drctl = Drctl::new(dir.path().join("json")).env("TOKEN", &secret);
    let out = drctl.run(&["run", &file, "--json"]).code(4);
    let run = out.run_id();
    let lines: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["run_id"] == run.as_str()
            && l["workflow"] == "leaky-logs"
            && l["step"] == "echo"
            && l["attempt"] == 1),
        "no line names the run, its workflow, the step and its attempt:\n{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["message"].is_string()),
        "{}",
        out.stderr
    );
    assert!(
        !out.text().contains(&secret),
        "the secret is logged:\n{}",
        out.text()
    );

    // Everything at debug, as JSON and for people: the resolved parameters, the outputs and
    // the error are there, each with the placeholder where the secret was.
    for (state, extra) in [("json-vv", "--json"), ("text-vv", "-v")] {
        let drctl = Drctl::new(dir.path().join(state)).env("TOKEN", &secret);
        let out = drctl.run(&["run", &file, extra, "-vv"]).code(4);
        assert!(
            !out.text().contains(&secret),
            "the secret is logged:\n{}",
            out.text()
        );
        assert!(
            out.stderr.contains("token is ${env.TOKEN}")
                && out.stderr.contains("refused ${env.TOKEN}")
                && out.stderr.contains("calling the action"),
            "debug logs lack the scrubbed outputs, error or parameters:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_normal_run_keeps_stderr_quiet_and_v_shows_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        "[workflow]\nname = \"quiet\"\nkind = \"failover\"\n\n[[steps]]\nid = \"a\"\naction = \"noop\"\n",
    );
    let out = Drctl::new(dir.path().join("s1")).run(&["run", &file]).ok();
    assert_eq!(out.stderr, "", "a normal run logs nothing by default");
    let out = Drctl::new(dir.path().join("s2"))
        .run(&["run", &file, "-v"])
        .ok();
    assert!(
        out.stderr.contains("step succeeded") && out.stderr.contains("step=a"),
        "{}",
        out.stderr
    );
    let out = Drctl::new(dir.path().join("s3"))
        .env("DRCTL_LOG", "drctl::engine=info")
        .run(&["run", &file])
        .ok();
    assert!(out.stderr.contains("step succeeded"), "{}", out.stderr);
}

#[test]
fn an_approval_waiting_is_posted_with_the_command_that_approves_it() {
    let hook = Webhook::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "gated"
kind = "failover"
events = { url = "${env.DR_WEBHOOK}", on = ["approval_waiting", "run_finished"] }

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["bob"], timeout = "1h" }

[[steps]]
id = "after"
action = "noop"
needs = ["gate"]
"#,
    );
    let drctl = Drctl::new(dir.path().join("state")).env("DR_WEBHOOK", &hook.url);
    let out = drctl
        .run(&["run", &file, "--as", "alice", "--detach"])
        .code(3);
    let run = out.run_id();
    let waiting = hook.wait_for("approval_waiting", Duration::from_secs(5));
    assert_eq!(waiting.len(), 1, "{:?}", hook.bodies());
    let message = &waiting[0];
    let command = format!("drctl approve {run} gate --as NAME");
    assert!(
        message["text"].as_str().unwrap().contains(&command),
        "{message}"
    );
    assert_eq!(message["approve"], command.as_str());
    assert_eq!(message["run_id"], run.as_str());
    assert_eq!(message["step"], "gate");
    // The webhook, a secret here, is not in the logs either.
    assert!(!out.text().contains(&hook.url), "{}", out.text());
    assert!(hook.of("run_finished").is_empty(), "the run is not over");
}

#[test]
fn a_slow_attempt_is_posted_once_at_80_percent_of_its_timeout() {
    let hook = Webhook::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    // 80% of 3.333s is 2.67s: the 3s sleep is still running then, and ends before its timeout.
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "slowish"
kind = "failover"
events = { url = "${env.DR_WEBHOOK}", on = ["step_slow", "run_finished"] }

[[steps]]
id = "quick"
action = "shell"
timeout = "10s"
with = { argv = ["true"] }

[[steps]]
id = "slow"
action = "shell"
needs = ["quick"]
timeout = "3333ms"
with = { argv = ["sleep", "3"] }
"#,
    );
    let drctl = Drctl::new(dir.path().join("state")).env("DR_WEBHOOK", &hook.url);
    let run = drctl.run(&["run", &file]).ok().run_id();
    let finished = hook.wait_for("run_finished", Duration::from_secs(5));
    assert_eq!(finished.len(), 1, "{:?}", hook.bodies());
    assert_eq!(finished[0]["status"], "succeeded");
    assert!(finished[0]["text"].as_str().unwrap().contains("RTO"));
    let slow = hook.of("step_slow");
    assert_eq!(slow.len(), 1, "step_slow exactly once: {:?}", hook.bodies());
    assert_eq!(slow[0]["step"], "slow");
    assert_eq!(slow[0]["attempt"], 1);
    assert_eq!(slow[0]["run_id"], run.as_str());
}

#[test]
fn a_failing_or_hanging_webhook_changes_nothing_about_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "told"
kind = "failover"
events = { url = "${env.DR_WEBHOOK}" }

[[steps]]
id = "work"
action = "shell"
timeout = "30s"
with = { argv = ["sleep", "1"] }

[[steps]]
id = "gate"
action = "approval"
needs = ["work"]
with = { approvers = ["bob"], timeout = "1h" }
"#,
    );
    // How long each command driving the run takes: the run up to its approval (`--detach`),
    // then its resume to the end. Each sends a message as it stops.
    let timed = |answer: Answer| {
        let hook = Webhook::start(answer);
        let state = dir.path().join(format!("{answer:?}"));
        let drctl = Drctl::new(&state).env("DR_WEBHOOK", &hook.url);
        let started = Instant::now();
        let run = drctl
            .run(&["run", &file, "--as", "alice", "--detach"])
            .code(3)
            .run_id();
        let to_approval = started.elapsed();
        drctl.run(&["approve", &run, "gate", "--as", "bob"]).ok();
        let started = Instant::now();
        let out = drctl.run(&["resume", &run]).ok();
        let to_end = started.elapsed();
        let status = drctl.run(&["status", &run, "--format", "json"]).ok().json();
        assert_eq!(status["status"], "succeeded", "{answer:?}: {status}");
        assert!(out.stdout.contains("succeeded"), "{}", out.text());
        // The webhook was asked, whatever it answered.
        assert!(
            !hook
                .wait_for("approval_waiting", Duration::from_secs(5))
                .is_empty(),
            "{answer:?}: {:?}",
            hook.bodies()
        );
        ([to_approval, to_end], out)
    };
    let (fine, _) = timed(Answer::Ok);
    for answer in [Answer::ServerError, Answer::Hang] {
        let (took, out) = timed(answer);
        for (took, fine) in took.iter().zip(&fine) {
            assert!(
                *took < *fine + Duration::from_secs(3),
                "{answer:?}: a command took {took:?} against {fine:?} with a working webhook"
            );
        }
        assert!(
            out.stderr.contains("not delivered"),
            "{answer:?}: the failed delivery is logged:\n{}",
            out.stderr
        );
    }
}

#[test]
fn an_unknown_event_name_is_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "typo"
kind = "failover"
events = { url = "https://hooks.example.com/x", on = ["aproval_waiting"] }

[[steps]]
id = "a"
action = "noop"
"#,
    );
    let out = Drctl::new(dir.path().join("state"))
        .run(&["validate", &file])
        .code(2);
    assert!(
        out.text().contains("`events.on` must be one of")
            && out.text().contains("did you mean `approval_waiting`?"),
        "{}",
        out.text()
    );
}

#[test]
fn aws_requests_are_logged_with_their_operation_and_request_id() {
    let moto = crate::aws::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        "[workflow]\nname = \"logged-aws\"\nkind = \"failover\"\non_failure = \"abort\"\n\
         [[steps]]\nid = \"wait\"\naction = \"rds.wait_available\"\nwith = { region = \"us-west-2\", db_instance = \"no-such-db\" }\n",
    );
    let out = moto
        .drctl(&dir.path().join("state"))
        .run(&["run", &file, "--json", "-vv"])
        .code(4);
    let calls: Vec<Value> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "AWS call")
        .collect();
    let call = calls
        .iter()
        .find(|c| c["operation"] == "DescribeDBInstances")
        .unwrap_or_else(|| panic!("no DescribeDBInstances call logged:\n{}", out.stderr));
    assert_eq!(call["level"], "DEBUG");
    assert_eq!(call["step"], "wait", "{call}");
    assert!(call["run_id"].is_string(), "{call}");
    assert_eq!(call["status"], 404, "{call}");
    assert_eq!(call["outcome"], "refused", "{call}");
    assert!(
        call["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{call}"
    );
    // Without -vv, no AWS call is logged.
    let quiet = moto
        .drctl(&dir.path().join("state2"))
        .run(&["run", &file, "--json"])
        .code(4);
    assert!(!quiet.stderr.contains("AWS call"), "{}", quiet.stderr);
}

#[test]
fn a_run_driven_by_the_agent_sends_its_events_from_the_agent() {
    let hook = Webhook::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "agent-told"
kind = "failover"
events = { url = "${env.DR_WEBHOOK}", on = ["approval_waiting", "run_finished"] }

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["bob"], timeout = "1h" }
"#,
    );
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    // Only the agent knows the webhook: it drives the run, so it sends.
    let _agent = Drctl::new(&state)
        .env("DR_WEBHOOK", &hook.url)
        .serve_logged(&["serve"], &log);
    let drctl = Drctl::new(&state).env_remove("DR_WEBHOOK");
    // Handed to the agent, `--detach` returns once the run was accepted.
    let run = drctl
        .run(&["run", &file, "--as", "alice", "--detach"])
        .ok()
        .run_id();
    let waiting = hook.wait_for("approval_waiting", Duration::from_secs(10));
    assert_eq!(waiting.len(), 1, "{:?}", hook.bodies());
    assert_eq!(waiting[0]["run_id"], run.as_str());
    drctl.run(&["approve", &run, "gate", "--as", "bob"]).ok();
    let finished = hook.wait_for("run_finished", Duration::from_secs(10));
    assert_eq!(finished.len(), 1, "{:?}", hook.bodies());
    assert_eq!(finished[0]["status"], "succeeded");
}

#[test]
fn a_closed_stdout_ends_the_output_quietly_and_the_run_goes_on_to_its_end() {
    let hook = Webhook::start(Answer::Ok);
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(
        dir.path(),
        r#"
[workflow]
name = "piped"
kind = "failover"
events = { url = "${env.DR_WEBHOOK}", on = ["run_finished"] }

[[steps]]
id = "first"
action = "wait"
with = { duration = "300ms" }

[[steps]]
id = "second"
action = "wait"
needs = ["first"]
with = { duration = "300ms" }
"#,
    );
    let drctl = Drctl::new(dir.path().join("state")).env("DR_WEBHOOK", &hook.url);
    // `drctl run ... | head -1`: the reader takes the first line and goes away.
    let mut child = drctl
        .command(&["run", &file, "--as", "alice"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let run = first.split_whitespace().nth(1).unwrap().to_string();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the run's own exit code: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let status = drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "succeeded", "{status}");
    let finished = hook.wait_for("run_finished", Duration::from_secs(5));
    assert_eq!(finished.len(), 1, "{:?}", hook.bodies());
}
