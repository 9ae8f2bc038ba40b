//! The executor as a user drives it from the README: a local drill end to end, approvals from
//! a second process while the run is live, one active run per workflow, and the clear refusals
//! a newcomer meets (unknown run, foreign state directory, a step not waiting, a finished run).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::root;

fn drctl(state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
    c.args(args)
        .arg("--state")
        .arg(state)
        .current_dir(root())
        .env("NO_COLOR", "1");
    c
}

fn output(state: &Path, args: &[&str]) -> Output {
    drctl(state, args).output().expect("drctl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_local_drill_runs_end_to_end_unattended() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let work = dir.path().join("work");
    let port = format!("port={}", free_port());
    let workdir = format!("workdir={}", work.display());
    let o = output(
        &state,
        &[
            "drill",
            "workflows/local-drill.toml",
            "--param",
            &port,
            "--param",
            &workdir,
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.lines().next().unwrap().starts_with("run "),
        "the run id comes first: {out}"
    );
    assert!(out.contains("health-check: succeeded"), "{out}");
    assert!(!work.exists(), "the drill cleans up after itself");
    let status: serde_json::Value =
        serde_json::from_slice(&output(&state, &["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["journal"]["intact"], true);
    let runs: serde_json::Value =
        serde_json::from_slice(&output(&state, &["runs", "--format", "json"]).stdout).unwrap();
    assert_eq!(runs[0]["mode"], "drill");
}

const GATED: &str = r#"
[workflow]
name = "gated"
kind = "failover"

[[steps]]
id = "before"
action = "noop"

[[steps]]
id = "gate"
action = "approval"
needs = ["before"]
with = { approvers = ["alice", "bob"], timeout = "1h" }

[[steps]]
id = "after"
action = "noop"
needs = ["gate"]
"#;

fn gated(dir: &Path) -> String {
    let file = dir.join("gated.toml");
    std::fs::write(&file, GATED).unwrap();
    file.display().to_string()
}

/// Starts a run in the background and returns it with its run id (its first line).
fn start_live(state: &Path, file: &str) -> (Reap, String) {
    let mut child = drctl(state, &["run", file, "--as", "alice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let run_id = first.split_whitespace().nth(1).unwrap().to_string();
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Reap(child), run_id)
}

fn wait_for(state: &Path, run: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&output(state, &["status", run, "--format", "json"]).stdout)
                .unwrap_or_default();
        if v["status"] == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never became {wanted}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn approval_from_a_second_process_while_the_run_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = gated(dir.path());
    let (mut live, run) = start_live(&state, &file);
    wait_for(&state, &run, "awaiting_approval");

    // Reads and refusals go through the live process.
    let o = output(&state, &["approve", &run, "gate", "--as", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("started this run"), "{}", text(&o));
    let o = output(&state, &["approve", &run, "gate", "--as", "mallory"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not an approver"), "{}", text(&o));
    let o = output(&state, &["approve", &run, "after", "--as", "bob"]);
    assert_eq!(o.status.code(), Some(2));

    // A second run while this one is live is refused, naming it.
    let o = output(&state, &["run", &file]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(text(&o).contains(&run), "{}", text(&o));

    let o = output(
        &state,
        &["approve", &run, "gate", "--as", "bob", "--comment", "go"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = live.0.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish after approval"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    let status: serde_json::Value =
        serde_json::from_slice(&output(&state, &["status", &run, "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(status["status"], "succeeded");
}

#[test]
fn detach_exits_3_then_approve_and_resume_in_separate_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = gated(dir.path());
    let o = output(&state, &["run", &file, "--detach", "--as", "alice"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let run = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    // An unfinished run blocks a second one, and says how to go on.
    let o = output(&state, &["run", &file]);
    assert_eq!(o.status.code(), Some(6));
    assert!(
        text(&o).contains(&format!("drctl resume {run}")),
        "{}",
        text(&o)
    );

    assert_eq!(
        output(&state, &["approve", &run, "gate", "--as", "bob"])
            .status
            .code(),
        Some(0)
    );
    let o = output(&state, &["resume", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Resuming a finished run is refused.
    let o = output(&state, &["resume", &run]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is succeeded"), "{}", text(&o));
}

#[test]
fn cancel_then_rollback_undoes_in_reverse_order() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("undo.log");
    let file = dir.path().join("undo.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "undo"
kind = "failover"

[[steps]]
id = "root"
action = "noop"
rollback = {{ action = "shell", with = {{ argv = ["sh", "-c", "echo root >> {log}"] }} }}

[[steps]]
id = "left"
action = "noop"
needs = ["root"]
rollback = {{ action = "shell", with = {{ argv = ["sh", "-c", "echo left >> {log}"] }} }}

[[steps]]
id = "right"
action = "noop"
needs = ["root"]
rollback = {{ action = "shell", with = {{ argv = ["sh", "-c", "echo right >> {log}"] }} }}

[[steps]]
id = "gate"
action = "approval"
needs = ["left", "right"]
with = {{ approvers = ["bob"], timeout = "1h" }}
"#,
            log = log.display()
        ),
    )
    .unwrap();
    let f = file.display().to_string();
    let o = output(&state, &["run", &f, "--detach"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let run = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(output(&state, &["cancel", &run]).status.code(), Some(0));
    // A cancelled run no longer blocks a new one... but this test rolls it back instead.
    let o = output(&state, &["rollback", &run]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let undone = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = undone.lines().collect();
    assert_eq!(order.len(), 3, "{undone}");
    assert_eq!(order[2], "root", "the root is undone last: {undone}");
}

#[test]
fn clear_refusals_for_a_newcomer() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Unknown run id.
    let o = output(&state, &["status", "no-such-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no run `no-such-run`"), "{}", text(&o));
    let o = output(&state, &["approve", "no-such-run", "gate", "--as", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    // A rejection needs a reason.
    let o = output(&state, &["reject", "no-such-run", "gate", "--as", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--comment"), "{}", text(&o));

    // A foreign directory in place of the store.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("store")).unwrap();
    std::fs::write(foreign.join("store").join("notes.txt"), "not a database").unwrap();
    let o = output(&foreign, &["runs"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a usable drctl store"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("store").join("notes.txt")).unwrap(),
        "not a database",
        "nothing is lost"
    );

    // A file where the directory should be.
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let o = output(&file, &["runs"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A store written by a newer drctl.
    let newer = dir.path().join("newer");
    {
        let db = sled::open(newer.join("store")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "99")
            .unwrap();
        db.flush().unwrap();
    }
    let o = output(&newer, &["runs"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("schema version 99"), "{}", text(&o));
}

#[test]
fn a_store_of_schema_version_1_is_migrated_and_nothing_is_lost() {
    use drctl::store::{SledStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("small.toml");
    let source = "[workflow]\nname = \"small\"\nkind = \"failover\"\n\n[[steps]]\nid = \"only\"\naction = \"noop\"\n";
    std::fs::write(&file, source).unwrap();
    let o = output(&state, &["drill", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // What the run is now, read through the store.
    let (run, mut steps, journal) = {
        let store = SledStore::open(&state).unwrap();
        let run = store.runs().unwrap().remove(0);
        let steps = store.steps(&run.run_id).unwrap();
        let journal = store.journal(&run.run_id).unwrap();
        (run, steps, journal)
    };
    steps.sort_by(|a, b| a.step.cmp(&b.step));

    // The same run laid out as version 1 kept it: a tree per kind of record, the workflow
    // text inside the run record.
    let old = dir.path().join("old");
    {
        let db = sled::open(old.join("store")).unwrap();
        let key = |rest: &[u8]| [run.run_id.as_bytes(), &[0], rest].concat();
        let mut record = serde_json::to_value(&run).unwrap();
        record["workflow_source"] = source.into();
        db.open_tree("runs")
            .unwrap()
            .insert(&run.run_id, serde_json::to_vec(&record).unwrap())
            .unwrap();
        for s in &steps {
            db.open_tree("steps")
                .unwrap()
                .insert(key(s.step.as_bytes()), serde_json::to_vec(s).unwrap())
                .unwrap();
        }
        for e in &journal {
            db.open_tree("journal")
                .unwrap()
                .insert(key(&e.seq.to_be_bytes()), serde_json::to_vec(e).unwrap())
                .unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "1")
            .unwrap();
        db.flush().unwrap();
    }

    let o = output(&old, &["status", &run.run_id, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["journal"]["intact"], true);
    assert_eq!(
        status["steps"][0]["id"], "only",
        "the steps come from the stored text"
    );
    let o = output(&old, &["report", &run.run_id, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let store = SledStore::open(&old).unwrap();
    assert_eq!(store.run(&run.run_id).unwrap().as_ref(), Some(&run));
    let mut migrated = store.steps(&run.run_id).unwrap();
    migrated.sort_by(|a, b| a.step.cmp(&b.step));
    assert_eq!(migrated, steps);
    assert_eq!(store.journal(&run.run_id).unwrap(), journal);
    assert_eq!(store.source(&run.run_id).unwrap().as_deref(), Some(source));
    drop(store);
    let db = sled::open(old.join("store")).unwrap();
    let meta = db.open_tree("meta").unwrap();
    assert_eq!(meta.get("schema_version").unwrap().unwrap().as_ref(), b"2");
    let names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).to_string())
        .collect();
    for old_tree in ["runs", "steps", "journal"] {
        assert!(
            !names.contains(&old_tree.to_string()),
            "{old_tree} left: {names:?}"
        );
    }
}

#[test]
fn a_control_socket_that_never_answers_is_not_a_live_process() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("small.toml");
    std::fs::write(
        &file,
        "[workflow]\nname = \"small\"\nkind = \"failover\"\n\n[[steps]]\nid = \"only\"\naction = \"noop\"\n",
    )
    .unwrap();
    let o = output(&state, &["drill", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // What a drctl killed while spawning a step leaves for a moment: its socket, held open by
    // a child that will close it without a word.
    let listener = std::os::unix::net::UnixListener::bind(state.join("control.sock")).unwrap();
    let closer = std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            drop(stream);
        }
    });
    let o = output(&state, &["status", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["status"], "succeeded");
    closer.join().unwrap();
}

/// Runs `argv` on a pseudo-terminal, answers `answer` once `prompt` is shown, and returns the
/// exit code and everything the terminal showed.
fn on_a_terminal(argv: &[&str], prompt: &str, answer: &str) -> (Option<i32>, String) {
    let script = r#"
import os, pty, select, sys, time
prompt, answer, argv = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen, sent, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not sent and prompt in seen:
        os.write(fd, answer)
        sent = True
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(prompt)
        .arg(answer)
        .args(argv)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("python3 runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

#[test]
fn the_operator_at_the_driving_terminal_is_offered_the_approval() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("self-approved.toml");
    std::fs::write(
        &file,
        r#"
[workflow]
name = "self-approved"
kind = "failover"

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["ops"], allow_self_approval = true, timeout = "1h" }

[[steps]]
id = "after"
action = "noop"
needs = ["gate"]
"#,
    )
    .unwrap();
    let (code, shown) = on_a_terminal(
        &[
            env!("CARGO_BIN_EXE_drctl"),
            "run",
            file.to_str().unwrap(),
            "--as",
            "ops",
            "--state",
            state.to_str().unwrap(),
        ],
        "approve `gate` now as ops?",
        "y\n",
    );
    assert_eq!(code, Some(0), "{shown}");
    let status: serde_json::Value =
        serde_json::from_slice(&output(&state, &["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(status["status"], "succeeded", "{shown}");
    let run_id = status["run_id"].as_str().unwrap();
    let report = output(&state, &["report", run_id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let approvals = report["approvals"].to_string();
    assert!(
        approvals.contains("ops") && approvals.contains("decided at the terminal"),
        "{approvals}"
    );
}
