//! The incident room over HTTP (SPEC §12): every route, the event stream and its resume with
//! `Last-Event-ID`, signed votes (an unsigned, forged or edited one refused with a 4xx in the
//! refusal's words), `/metrics` read by a Prometheus parser, the loopback rule and the token,
//! and no secret in any answer.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::signed::keygen;
use crate::support::{Drctl, Live};

/// A workflow with an approval one of bob and carol passes, a step that echoes a secret, and
/// objectives.
const WORKFLOW: &str = r#"
[workflow]
name = "room-failover"
kind = "failover"
rto = "15m"
rpo = "5m"
allowed_signers = "approvers.allowed_signers"

[[steps]]
id = "snapshot"
action = "shell"
with = { argv = ["sh", "-c", "echo token is $0", "${env.ROOM_SECRET}"] }

[[steps]]
id = "gate"
action = "approval"
needs = ["snapshot"]
with = { approvers = ["bob", "carol"], quorum = 1, timeout = "1h", message = "Promote <b>the replica</b>?" }

[[steps]]
id = "promote"
action = "noop"
needs = ["gate"]
marks = "recovered"
"#;

/// The secret the workflow's first step echoes.
pub(crate) const SECRET: &str = "room-secret-5f0c9a71d3";

/// A state directory served by `drctl serve --http`, with alice, bob and carol's keys (and
/// mallory's, whom nobody trusts).
pub(crate) struct Room {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) drctl: Drctl,
    pub(crate) url: String,
    token: Option<String>,
    _agent: Live,
}

impl Room {
    /// Serves a new state directory on a free loopback port, with `extra` serve arguments.
    pub(crate) fn open(extra: &[&str]) -> Room {
        let dir = tempfile::tempdir().unwrap();
        scene(dir.path());
        let drctl = Drctl::new(dir.path().join("state"))
            .env("USER", "alice")
            .env("ROOM_SECRET", SECRET)
            .env_remove("SSH_AUTH_SOCK");
        let key = dir.path().join("agent").display().to_string();
        let mut args = vec![
            "serve",
            "--name",
            "agent",
            "--key",
            &key,
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let log = dir.path().join("agent.log");
        let agent = drctl.serve_logged(&args, &log);
        let url = room_url(&log);
        let token = extra
            .iter()
            .position(|a| *a == "--http-token-file")
            .map(|i| {
                std::fs::read_to_string(extra[i + 1])
                    .unwrap()
                    .trim()
                    .to_string()
            });
        Room {
            dir,
            drctl,
            url,
            token,
            _agent: agent,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a run of the workflow, handed to the agent, and returns its id once the gate
    /// waits.
    pub(crate) fn start(&self) -> String {
        let file = self.path("room.toml").display().to_string();
        let key = self.path("alice").display().to_string();
        let out = self
            .drctl
            .run(&["run", &file, "--as", "alice", "--key", &key, "--detach"])
            .ok();
        let run = out.run_id();
        wait_for(Duration::from_secs(20), "the gate to wait", || {
            self.drctl.run(&["status", &run, "--format", "json"]).json()["steps"][1]["status"]
                == "awaiting_approval"
        });
        run
    }

    /// `name`'s signed approval of the gate, signed with `key`'s key, written to `out`.
    pub(crate) fn sign(&self, run: &str, name: &str, key: &str, out: &str) -> PathBuf {
        let file = self.path(out);
        let key = self.path(key).display().to_string();
        self.drctl
            .run(&[
                "approve",
                run,
                "gate",
                "--as",
                name,
                "--key",
                &key,
                "--sign-only",
                "-o",
                &file.display().to_string(),
            ])
            .ok();
        file
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    /// `GET path` with the room's token when it has one: the status, the body and the
    /// response's headers.
    pub(crate) fn get(&self, path: &str) -> Answer {
        self.get_with(path, self.token.as_deref())
    }

    pub(crate) fn get_with(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = Self::agent().get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Answer::of(request.call().expect("the room answers"))
    }

    /// `POST path` with `body`.
    pub(crate) fn post(&self, path: &str, body: &str) -> Answer {
        let mut request = Self::agent().post(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Answer::of(request.send(body).expect("the room answers"))
    }

    /// The run's event stream from `last_event_id` on: its first `count` events' ids and
    /// data.
    pub(crate) fn events(
        &self,
        run: &str,
        last_event_id: Option<u64>,
        count: usize,
    ) -> Vec<(u64, String)> {
        let mut request = Self::agent().get(format!("{}/runs/{run}/events", self.url));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.call().expect("the room answers");
        assert_eq!(response.status().as_u16(), 200);
        let reader = BufReader::new(response.into_body().into_reader());
        let mut events = Vec::new();
        let mut id = None;
        for line in reader.lines() {
            let line = line.expect("the stream reads");
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse::<u64>().expect("an entry number"));
            } else if let Some(data) = line.strip_prefix("data:") {
                events.push((
                    id.take().expect("an id before the data"),
                    data.trim().to_string(),
                ));
                if events.len() == count {
                    break;
                }
            }
        }
        events
    }
}

/// Writes the workflow and the keys of alice, bob, carol, mallory (whom nobody trusts) and
/// the agents (`agent`, `agent-a`, `agent-b`, who sign journals) in `dir`.
fn scene(dir: &std::path::Path) {
    let mut signers = String::new();
    for name in [
        "alice", "bob", "carol", "mallory", "agent", "agent-a", "agent-b",
    ] {
        keygen(dir, name);
        if name != "mallory" {
            let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
            let key: Vec<&str> = public.split_whitespace().take(2).collect();
            let namespaces = if name.starts_with("agent") {
                "namespaces=\"drctl-journal\" "
            } else {
                ""
            };
            signers.push_str(&format!("{name} {namespaces}{}\n", key.join(" ")));
        }
    }
    std::fs::write(dir.join("approvers.allowed_signers"), signers).unwrap();
    std::fs::write(dir.join("room.toml"), WORKFLOW).unwrap();
}

/// The room's address, once the agent that wrote `log` says it.
fn room_url(log: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.strip_prefix("the incident room is at "))
        {
            return url.trim_end_matches('/').to_string();
        }
        assert!(Instant::now() < deadline, "no incident room in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the room answered.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Answer {
    fn of(response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = response.into_body().read_to_string().unwrap_or_default();
        Answer {
            status,
            body,
            headers,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[track_caller]
pub(crate) fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_route_answers_as_the_command_line_does_and_the_page_shows_the_run() {
    let room = Room::open(&[]);
    let run = room.start();

    let health = room.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!(room.get("/readyz").status, 200);

    // The JSON API is `runs` and `status` as the command line prints them.
    let runs: serde_json::Value = serde_json::from_str(&room.get("/api/runs").body).unwrap();
    let cli_runs = room.drctl.run(&["runs", "--format", "json"]).json();
    assert_eq!(runs, cli_runs);
    let status: serde_json::Value =
        serde_json::from_str(&room.get(&format!("/api/runs/{run}")).body).unwrap();
    let cli_status = room.drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status, cli_status);
    assert_eq!(room.get("/api/runs/no-such-run").status, 404);

    // The runs page lists the run; the run page draws every step with its status.
    let home = room.get("/");
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains(&format!("data-run=\"{run}\"")),
        "{}",
        home.body
    );
    let page = room.get(&format!("/runs/{run}"));
    assert_eq!(page.status, 200);
    for (step, status) in [
        ("snapshot", "succeeded"),
        ("gate", "awaiting_approval"),
        ("promote", "pending"),
    ] {
        assert!(
            page.body
                .contains(&format!("data-step=\"{step}\" data-status=\"{status}\"")),
            "{step} {status} in {}",
            page.body
        );
    }
    assert!(
        page.body
            .contains(&format!("drctl approve {run} gate --as NAME --key PATH"))
    );
    assert!(page.body.contains("<svg"));
    assert!(
        page.body.contains("class=\"step critical"),
        "the critical path is marked"
    );
    // The approval's message is shown as text, never as markup.
    assert!(
        page.body
            .contains("Promote &lt;b&gt;the replica&lt;/b&gt;?"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>the replica"));
    assert!(!page.body.contains("<script>") && !page.body.contains("style=\""));

    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let script = room.get("/static/room.js");
    assert_eq!(script.status, 200);
    assert!(script.body.contains("EventSource"));
    assert_eq!(room.get("/static/room.css").status, 200);

    let report = room.get(&format!("/runs/{run}/report"));
    assert_eq!(report.status, 200);
    assert!(report.body.contains(&run));
    let evidence = room.get(&format!("/runs/{run}/evidence"));
    assert_eq!(evidence.status, 200);
    let evidence: serde_json::Value = serde_json::from_str(&evidence.body).unwrap();
    assert!(evidence.is_object());
    assert_eq!(room.get("/no-such-page").status, 404);
}

#[test]
fn the_event_stream_sends_each_entry_once_and_resumes_after_the_last_event_id() {
    let room = Room::open(&[]);
    let run = room.start();
    let entries =
        room.drctl.run(&["status", &run, "--format", "json"]).json()["journal"]["entries"]
            .as_u64()
            .unwrap();
    assert!(entries >= 4, "{entries}");
    let all = room.events(&run, None, usize::try_from(entries).unwrap());
    let ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..entries).collect::<Vec<_>>());
    let first: serde_json::Value = serde_json::from_str(&all[0].1).unwrap();
    assert_eq!(first["seq"], 0);
    // The RTO projection comes with the stream too, worked out again as entries come.
    let projected = first["projection"]["text"].as_str().unwrap_or_default();
    assert!(
        projected.starts_with("projected ") && projected.contains(" against 15m"),
        "{first}"
    );
    // Resumed after entry 1: from entry 2 on, nothing before it again.
    let resumed = room.events(&run, Some(1), 2);
    assert_eq!(
        resumed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(resumed[0].1, all[2].1);
    // The gate waiting shows in the entry that made it wait.
    assert!(
        all.iter()
            .any(|(_, data)| data.contains("[\"gate\",\"awaiting_approval\"]"))
    );

    // A vote recorded later comes on the open stream.
    let reader = {
        let room_url = room.url.clone();
        let run = run.clone();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into();
            let response = agent
                .get(format!("{room_url}/runs/{run}/events"))
                .header("Last-Event-ID", (entries - 1).to_string())
                .call()
                .unwrap();
            let reader = BufReader::new(response.into_body().into_reader());
            reader
                .lines()
                .map_while(Result::ok)
                .find(|l| l.contains("[\"gate\",\"succeeded\"]"))
        })
    };
    let vote = room.sign(&run, "bob", "bob", "bob.json");
    let answer = room.post(
        &format!("/runs/{run}/votes"),
        &std::fs::read_to_string(vote).unwrap(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        reader.join().unwrap().is_some(),
        "the vote's entry came on the stream"
    );
}

#[test]
fn votes_are_refused_unsigned_forged_edited_or_on_another_run_in_their_own_words() {
    let room = Room::open(&[]);
    let run = room.start();
    let votes = format!("/runs/{run}/votes");

    let unsigned = room.post(&votes, r#"{"run":"x","step":"gate","by":"bob"}"#);
    assert_eq!(unsigned.status, 400, "{}", unsigned.body);
    assert!(
        unsigned.body.contains("not a signed decision"),
        "{}",
        unsigned.body
    );

    // Mallory signs as bob with her own key: the allowed signers do not give it to bob.
    let forged = room.sign(&run, "bob", "mallory", "forged.json");
    let answer = room.post(&votes, &std::fs::read_to_string(&forged).unwrap());
    assert_eq!(answer.status, 403, "{}", answer.body);
    let cli = room
        .drctl
        .run(&["approve", "--signed", &forged.display().to_string()]);
    assert_eq!(cli.code, 2);
    assert!(
        cli.text().contains(answer.body.trim()),
        "the room refuses in the command's words: {}\n{}",
        answer.body,
        cli.text()
    );

    // Bob's own signature, the statement edited to carol's name: the signature no longer holds.
    let signed = std::fs::read_to_string(room.sign(&run, "bob", "bob", "bob.json")).unwrap();
    assert!(signed.contains("\"bob\""));
    let edited = signed.replace("\"bob\"", "\"carol\"");
    let answer = room.post(&votes, &edited);
    assert!(
        (400..500).contains(&answer.status),
        "{} {}",
        answer.status,
        answer.body
    );
    assert!(!answer.body.is_empty());

    // On another run's address.
    let answer = room.post("/runs/another-run/votes", &signed);
    assert_eq!(answer.status, 400, "{}", answer.body);

    // Nothing of it was recorded: the gate still waits. Bob's real vote passes it.
    let status = room.drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["steps"][1]["status"], "awaiting_approval");
    let answer = room.post(&votes, &signed);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("bob approved `gate`"),
        "{}",
        answer.body
    );
    wait_for(Duration::from_secs(20), "the run to succeed", || {
        room.drctl.run(&["status", &run, "--format", "json"]).json()["status"] == "succeeded"
    });
}

#[test]
fn metrics_parse_as_prometheus_text_with_the_names_of_the_spec() {
    let room = Room::open(&[]);
    let run = room.start();
    let vote = room.sign(&run, "carol", "carol", "carol.json");
    let answer = room.post(
        &format!("/runs/{run}/votes"),
        &std::fs::read_to_string(vote).unwrap(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_for(Duration::from_secs(20), "the run to succeed", || {
        room.drctl.run(&["status", &run, "--format", "json"]).json()["status"] == "succeeded"
    });
    // A second run waits for its gate.
    let waiting = room.start();
    let metrics = room.get("/metrics");
    assert_eq!(metrics.status, 200);
    let lines = metrics.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value("drctl_runs", &[("status", "succeeded")]),
        Some(1.0),
        "{}",
        metrics.body
    );
    assert_eq!(
        value("drctl_runs", &[("status", "awaiting_approval")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            "drctl_steps_total",
            &[("action", "shell"), ("outcome", "succeeded")]
        ),
        Some(2.0)
    );
    assert_eq!(value("drctl_approvals_waiting", &[]), Some(1.0));
    assert!(value("drctl_run_rto_seconds", &[("workflow", "room-failover")]).is_some());
    assert_eq!(
        value("drctl_agent_runs_driven", &[]),
        Some(1.0),
        "{waiting}"
    );
    for histogram in ["drctl_step_duration_seconds", "drctl_store_commit_seconds"] {
        let count = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == format!("{histogram}_count")
                    || (s.metric == histogram
                        && matches!(s.value, prometheus_parse::Value::Histogram(_)))
            })
            .unwrap_or_else(|| panic!("{histogram} in {}", metrics.body));
        let _ = count;
    }
    assert!(metrics.body.contains("drctl_store_commit_seconds_count"));
}

#[test]
fn no_secret_a_step_read_from_the_environment_is_in_any_answer() {
    let room = Room::open(&[]);
    let run = room.start();
    let status = room.drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["steps"][0]["status"], "succeeded");
    let mut answers = Vec::new();
    for path in [
        "/".to_string(),
        format!("/runs/{run}"),
        format!("/runs/{run}/report"),
        format!("/runs/{run}/evidence"),
        "/api/runs".to_string(),
        format!("/api/runs/{run}"),
        "/metrics".to_string(),
    ] {
        let answer = room.get(&path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        answers.push((path, answer.body));
    }
    let events = room.events(&run, None, 3);
    answers.push(("events".into(), format!("{events:?}")));
    for (path, body) in &answers {
        assert!(!body.contains(SECRET), "{path} shows the secret:\n{body}");
    }
    // Where the value was, its name is.
    assert!(
        answers[1].1.contains("${env.ROOM_SECRET}") || answers[5].1.contains("${env.ROOM_SECRET}")
    );
}

/// A page of another site whose name was made to point at 127.0.0.1 (DNS rebinding) reaches a
/// room without a token, but names its own host: it is answered nothing of the runs.
#[test]
fn a_room_without_a_token_answers_only_requests_that_name_a_loopback_host() {
    let room = Room::open(&[]);
    let run = room.start();
    let port = room.url.rsplit(':').next().expect("a port").to_string();
    for path in ["/", "/api/runs", &format!("/runs/{run}"), "/metrics"] {
        let as_host = |host: &str| {
            Answer::of(
                Room::agent()
                    .get(format!("{}{path}", room.url))
                    .header("Host", host)
                    .call()
                    .expect("the room answers"),
            )
        };
        let rebound = as_host(&format!("rebound.example:{port}"));
        assert_eq!(rebound.status, 421, "{path}: {}", rebound.body);
        assert!(
            !rebound.body.contains(&run),
            "{path} shows the run to another site"
        );
        assert_eq!(as_host(&format!("localhost:{port}")).status, 200, "{path}");
        assert_eq!(as_host(&format!("127.0.0.1:{port}")).status, 200, "{path}");
    }
}

#[test]
fn a_room_beyond_loopback_needs_a_token_and_then_every_request_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state"));
    let refused = drctl.run(&["serve", "--http", "0.0.0.0:0"]);
    assert_eq!(refused.code, 2, "{}", refused.text());
    assert!(
        refused.text().contains("not a loopback address"),
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("--http-token-file"),
        "{}",
        refused.text()
    );

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-room-token-0123456789\n").unwrap();
    let token_path = token_file.display().to_string();
    let room = Room::open(&["--http-token-file", &token_path]);
    let run = room.start();
    // Open: the process is up.
    assert_eq!(room.get_with("/healthz", None).status, 200);
    for path in ["/", "/api/runs", "/metrics", "/readyz", "/static/room.js"] {
        let anonymous = room.get_with(path, None);
        assert_eq!(anonymous.status, 401, "{path}");
        assert!(
            !anonymous.body.contains(&run),
            "{path} without the token shows the run"
        );
        assert_eq!(
            room.get_with(path, Some("wrong-token-0123456789")).status,
            401,
            "{path}"
        );
        assert_eq!(room.get(path).status, 200, "{path}");
    }
    let votes = room.get_with(&format!("/runs/{run}/events"), None);
    assert_eq!(votes.status, 401);
    // Beyond loopback with its token, the room listens.
    let wide = Drctl::new(dir.path().join("wide"));
    let log = dir.path().join("wide.log");
    let _agent = wide.serve_logged(
        &[
            "serve",
            "--http",
            "0.0.0.0:0",
            "--http-token-file",
            &token_path,
        ],
        &log,
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("the incident room is at http://0.0.0.0:")
    );
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario across two agents, step by step"
)]
fn on_a_shared_store_a_room_shows_and_takes_votes_for_the_runs_another_agent_drives() {
    let cluster = crate::support::etcd::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    scene(dir.path());
    // The vote ends the run at once (the step after the gate is a `noop`): the driver that
    // took it from its inbox answers it before it stops.
    let path = |name: &str| dir.path().join(name).display().to_string();
    let drctl = |name: &str| {
        Drctl::new(dir.path().join("state"))
            .env("DRCTL_STORE", cluster.url("drctl"))
            .env("USER", "alice")
            .env("ROOM_SECRET", SECRET)
            .env_remove("SSH_AUTH_SOCK")
            .arg("--lease")
            .arg("2s")
            .arg("--name")
            .arg(name)
    };
    let until_serving = |log: &str| {
        wait_for(Duration::from_secs(20), "an agent to serve", || {
            std::fs::read_to_string(path(log)).is_ok_and(|t| t.contains("serving"))
        });
    };
    // Agent b alone takes the run.
    let _b = drctl("agent-b").spawn_logged(
        &["serve", "--key", &path("agent-b")],
        &dir.path().join("b.log"),
    );
    until_serving("b.log");
    // Handed to agent b, or, when agent b is slow to take it, driven by the command itself:
    // either way another process than agent a drives it.
    let (_driver, run) = drctl("cli").start(&[
        "run",
        &path("room.toml"),
        "--as",
        "alice",
        "--key",
        &path("alice"),
    ]);
    let status = || {
        drctl("cli")
            .run(&["status", &run, "--format", "json"])
            .ok()
            .json()
    };
    let deadline = Instant::now() + Duration::from_mins(1);
    let driver = loop {
        let now = status();
        if now["steps"][1]["status"] == "awaiting_approval"
            && let Some(name) = now["driven_by"]["name"].as_str()
        {
            break name.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "nobody drives the run at its gate: {now:#}\n{}",
            std::fs::read_to_string(path("b.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(["agent-b", "cli"].contains(&driver.as_str()), "{driver}");
    // Agent a serves the room.
    let _a = drctl("agent-a").spawn_logged(
        &["serve", "--key", &path("agent-a"), "--http", "127.0.0.1:0"],
        &dir.path().join("a.log"),
    );
    until_serving("a.log");
    let url = room_url(&dir.path().join("a.log"));
    let get = |p: &str| -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent.get(format!("{url}{p}")).call().unwrap();
        let code = r.status().as_u16();
        (code, r.into_body().read_to_string().unwrap())
    };
    let (code, runs) = get("/api/runs");
    assert_eq!(code, 200);
    assert!(runs.contains(&run), "{runs}");
    let (code, page) = get(&format!("/runs/{run}"));
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&format!("driven by {driver}")), "{page}");
    assert!(page.contains("data-step=\"gate\" data-status=\"awaiting_approval\""));
    // The vote goes to agent b through the run's inbox; a's stream shows it.
    let reader = {
        let url = url.clone();
        let run = run.clone();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_mins(1)))
                .build()
                .into();
            let response = agent
                .get(format!("{url}/runs/{run}/events"))
                .call()
                .unwrap();
            BufReader::new(response.into_body().into_reader())
                .lines()
                .map_while(Result::ok)
                .find(|l| l.contains("[\"promote\",\"succeeded\"]"))
        })
    };
    let vote = path("bob.json");
    drctl("cli")
        .run(&[
            "approve",
            &run,
            "gate",
            "--as",
            "bob",
            "--key",
            &path("bob"),
            "--sign-only",
            "-o",
            &vote,
        ])
        .ok();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let answer = agent
        .post(format!("{url}/runs/{run}/votes"))
        .send(std::fs::read_to_string(&vote).unwrap())
        .unwrap();
    let code = answer.status().as_u16();
    let text = answer.into_body().read_to_string().unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(
        reader.join().unwrap().is_some(),
        "the run's end came on agent a's stream"
    );
    wait_for(Duration::from_secs(20), "the run to succeed", || {
        status()["status"] == "succeeded"
    });
}
