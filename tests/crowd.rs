//! A crowd of clients on one agent (SPEC §5.8.6, §11): a hundred `drctl run --detach` started
//! at the same moment are all accepted and all their runs succeed; followers and readers
//! started with them are all answered; a process flooding the control socket does not starve
//! the others.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Drctl, Live};

/// A state directory, an agent on it, and workflow files.
struct Crowd {
    dir: tempfile::TempDir,
    _agent: Live,
}

impl Crowd {
    fn new() -> Crowd {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let agent = Drctl::new(dir.path().join("state"))
            .env("USER", "alice")
            .serve_logged(&["serve"], &log);
        Crowd { dir, _agent: agent }
    }

    fn drctl(&self) -> Drctl {
        Drctl::new(self.dir.path().join("state")).env("USER", "alice")
    }

    /// Writes workflow `name`: a chain of `steps` `noop` steps.
    fn chain(&self, name: &str, steps: usize) -> PathBuf {
        let mut text = format!("[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n");
        for i in 0..steps {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("needs = [\"s{}\"]\n", i - 1)
            };
            text.push_str(&format!(
                "[[steps]]\nid = \"s{i}\"\naction = \"noop\"\n{needs}\n"
            ));
        }
        let file = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        file
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("state").join("control.sock")
    }
}

/// A client process started with the others, its output captured.
struct Client {
    args: Vec<String>,
    child: Child,
}

impl Client {
    fn start(drctl: &Drctl, args: &[&str]) -> Client {
        let child = drctl
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start drctl {args:?}: {e}"));
        Client {
            args: args.iter().map(ToString::to_string).collect(),
            child,
        }
    }

    /// Waits for it to end; its exit code and what it printed.
    fn finish(self) -> (Vec<String>, Option<i32>, String, String) {
        let out = self.child.wait_with_output().expect("client waited for");
        (
            self.args,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Waits until every run of the store has ended; returns them as `runs --format json` says.
fn every_run_ended(drctl: &Drctl, expected: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_mins(3);
    loop {
        let out = drctl.run(&["runs", "--format", "json"]);
        assert_eq!(out.code, 0, "{}", out.text());
        let runs = out.json().as_array().cloned().unwrap_or_default();
        let ended = runs
            .iter()
            .filter(|r| r["status"] != "running" && r["status"] != "pending")
            .count();
        if runs.len() >= expected && ended == runs.len() {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{ended} of {} runs ended ({expected} expected)",
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_hundred_clients_at_once_are_all_accepted_and_every_run_succeeds() {
    let crowd = Crowd::new();
    let drctl = crowd.drctl();
    let detached: Vec<PathBuf> = (0..100)
        .map(|i| crowd.chain(&format!("team-{i}"), 20))
        .collect();
    let followed: Vec<PathBuf> = (0..20)
        .map(|i| crowd.chain(&format!("followed-{i}"), 20))
        .collect();
    let path = |p: &Path| p.display().to_string();
    // All at once: a hundred detached starts, twenty followed runs, thirty reads.
    let mut clients = Vec::new();
    for file in &detached {
        clients.push(Client::start(&drctl, &["run", "--detach", &path(file)]));
    }
    for file in &followed {
        clients.push(Client::start(&drctl, &["run", &path(file)]));
    }
    for i in 0..30 {
        let args: &[&str] = if i % 2 == 0 {
            &["runs", "--format", "json"]
        } else {
            &["runs"]
        };
        clients.push(Client::start(&drctl, args));
    }
    let mut failures = Vec::new();
    for client in clients {
        let (args, code, stdout, stderr) = client.finish();
        // Waiting its turn is said after 30 s; anything else on stderr is an error.
        let complaints = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("waiting for drctl serve"))
            .count();
        if code != Some(0) || complaints > 0 {
            failures.push(format!(
                "drctl {}: exit {code:?}\nstdout: {}\nstderr: {stderr}",
                args.join(" "),
                stdout.lines().last().unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 150 clients failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let runs = every_run_ended(&drctl, 120);
    assert_eq!(runs.len(), 120, "one run per started client");
    let not_succeeded: Vec<String> = runs
        .iter()
        .filter(|r| r["status"] != "succeeded")
        .map(|r| format!("{} {}", r["run_id"], r["status"]))
        .collect();
    assert!(not_succeeded.is_empty(), "{not_succeeded:?}");
}

/// Sends `{"v":2,"op":"runs"}` on `stream` and reads the answer line; `None` when the connection
/// was closed or refused.
fn ask_runs(stream: &mut UnixStream) -> Option<String> {
    stream.write_all(b"{\"v\":2,\"op\":\"runs\"}\n").ok()?;
    let mut answer = String::new();
    BufReader::new(&*stream).read_line(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}

#[test]
fn a_process_flooding_the_socket_does_not_starve_the_others_and_is_told_why() {
    let crowd = Crowd::new();
    let drctl = crowd.drctl();
    let file = crowd.chain("steady", 5);
    drctl
        .run(&["run", &file.display().to_string()])
        .ok()
        .stdout_has("succeeded");

    // This process asks without pause on as many connections as it can open.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let flooders: Vec<_> = (0..64)
        .map(|_| {
            let (stop, answered, refusals) = (stop.clone(), answered.clone(), refusals.clone());
            let socket = crowd.socket();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut stream) = UnixStream::connect(&socket) else {
                        continue;
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        match ask_runs(&mut stream) {
                            Some(a) if a.contains("\"ok\":true") => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(refused) => {
                                refusals.lock().unwrap().push(refused);
                                break;
                            }
                            None => break,
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Meanwhile, other processes are served: reads and a whole run.
    let others: Vec<Client> = (0..20)
        .map(|i| {
            let args: &[&str] = if i % 2 == 0 {
                &["runs", "--format", "json"]
            } else {
                &["status", "--format", "json"]
            };
            Client::start(&drctl, args)
        })
        .collect();
    let run = Client::start(&drctl, &["run", &file.display().to_string()]);
    let mut failures = Vec::new();
    for client in others.into_iter().chain([run]) {
        let (args, code, _, stderr) = client.finish();
        if code != Some(0) {
            failures.push(format!("drctl {}: exit {code:?}: {stderr}", args.join(" ")));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        answered.load(Ordering::Relaxed) > 0,
        "the flooding process is served too, within its share"
    );
    // A refusal, when its connections were all answering, says why.
    for refused in refusals.lock().unwrap().iter() {
        assert!(
            refused.contains("requests under way on this socket already"),
            "{refused}"
        );
    }
}

/// A workflow's text travels whole in the start request to the agent: one of more than the
/// 64 KiB any connection may hold is read (in its turn among the large requests), and its run
/// driven to its end by the agent.
#[test]
fn a_workflow_larger_than_64_kib_is_handed_to_the_agent_whole() {
    let crowd = Crowd::new();
    let drctl = crowd.drctl();
    let mut text = String::from("[workflow]\nname = \"large\"\nkind = \"failover\"\n\n");
    for i in 0..1500 {
        text.push_str(&format!(
            "# Step {i}: check the replica of shard {i} in the standby region before promotion.\n[[steps]]\nid = \"check-shard-{i}\"\naction = \"noop\"\n\n"
        ));
    }
    assert!(text.len() > 128 * 1024, "{} bytes", text.len());
    let file = crowd.dir.path().join("large.toml");
    std::fs::write(&file, text).unwrap();
    let out = drctl
        .run(&["run", "--detach", &file.display().to_string()])
        .ok();
    assert!(
        out.text().contains("driven by drctl serve"),
        "{}",
        out.text()
    );
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let v = drctl.run(&["status", "--format", "json"]).json();
        if v["status"] == "succeeded" {
            assert_eq!(v["steps"].as_array().map(Vec::len), Some(1500), "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
