//! The executor as a user drives it from the README: a local drill end to end, approvals from
//! a second process while the run is live, one active run per workflow, and the clear refusals
//! a newcomer meets (unknown run, foreign state directory, a step not waiting, a finished run).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::root;
use crate::support::{Drctl, Live, Out};

/// drctl from the repository root, as the README runs it.
fn drctl(state: &Path) -> Drctl {
    Drctl::new(state).current_dir(root())
}

fn output(state: &Path, args: &[&str]) -> Out {
    drctl(state).run(args)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let out = o.text();
    assert_eq!(o.code, 0, "{out}");
    assert!(
        out.lines().next().unwrap().starts_with("run "),
        "the run id comes first: {out}"
    );
    assert!(out.contains("health-check: succeeded"), "{out}");
    assert!(!work.exists(), "the drill cleans up after itself");
    let status = output(&state, &["status", "--format", "json"]).json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["journal"]["intact"], true);
    let runs = output(&state, &["runs", "--format", "json"]).json();
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
fn start_live(state: &Path, file: &str) -> (Live, String) {
    drctl(state).start(&["run", file, "--as", "alice"])
}

fn wait_for(state: &Path, run: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value =
            serde_json::from_str(&output(state, &["status", run, "--format", "json"]).stdout)
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
    assert_eq!(o.code, 2);
    assert!(o.text().contains("started this run"), "{}", o.text());
    let o = output(&state, &["approve", &run, "gate", "--as", "mallory"]);
    assert_eq!(o.code, 2);
    assert!(o.text().contains("not an approver"), "{}", o.text());
    let o = output(&state, &["approve", &run, "after", "--as", "bob"]);
    assert_eq!(o.code, 2);

    // A second run while this one is live is refused, naming it.
    let o = output(&state, &["run", &file]);
    assert_eq!(o.code, 6, "{}", o.text());
    assert!(o.text().contains(&run), "{}", o.text());

    let o = output(
        &state,
        &["approve", &run, "gate", "--as", "bob", "--comment", "go"],
    );
    assert_eq!(o.code, 0, "{}", o.text());
    let code = live.exit_within(
        Duration::from_secs(20),
        "the run did not finish after approval",
    );
    assert_eq!(code, Some(0));
    let status = output(&state, &["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "succeeded");
}

#[test]
fn detach_exits_3_then_approve_and_resume_in_separate_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = gated(dir.path());
    let o = output(&state, &["run", &file, "--detach", "--as", "alice"]);
    assert_eq!(o.code, 3, "{}", o.text());
    let run = o.stdout.split_whitespace().nth(1).unwrap().to_string();
    // An unfinished run blocks a second one, and says how to go on.
    let o = output(&state, &["run", &file]);
    assert_eq!(o.code, 6);
    assert!(
        o.text().contains(&format!("drctl resume {run}")),
        "{}",
        o.text()
    );

    assert_eq!(
        output(&state, &["approve", &run, "gate", "--as", "bob"]).code,
        0
    );
    let o = output(&state, &["resume", &run]);
    assert_eq!(o.code, 0, "{}", o.text());
    // Resuming a finished run is refused.
    let o = output(&state, &["resume", &run]);
    assert_eq!(o.code, 2);
    assert!(o.text().contains("is succeeded"), "{}", o.text());
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
    assert_eq!(o.code, 3, "{}", o.text());
    let run = o.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(output(&state, &["cancel", &run]).code, 0);
    // A cancelled run no longer blocks a new one... but this test rolls it back instead.
    let o = output(&state, &["rollback", &run]);
    assert_eq!(o.code, 5, "{}", o.text());
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
    assert_eq!(o.code, 2);
    assert!(o.text().contains("no run `no-such-run`"), "{}", o.text());
    let o = output(&state, &["approve", "no-such-run", "gate", "--as", "bob"]);
    assert_eq!(o.code, 2);
    // A rejection needs a reason.
    let o = output(&state, &["reject", "no-such-run", "gate", "--as", "bob"]);
    assert_eq!(o.code, 2);
    assert!(o.text().contains("--comment"), "{}", o.text());

    // A foreign directory in place of the store.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("store")).unwrap();
    std::fs::write(foreign.join("store").join("notes.txt"), "not a database").unwrap();
    let o = output(&foreign, &["runs"]);
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(
        o.text().contains("not a usable drctl store"),
        "{}",
        o.text()
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
    assert_eq!(o.code, 2, "{}", o.text());

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
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("schema version 99"), "{}", o.text());
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
    assert_eq!(o.code, 0, "{}", o.text());

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
    assert_eq!(o.code, 0, "{}", o.text());
    let status = o.json();
    assert_eq!(status["journal"]["intact"], true);
    assert_eq!(
        status["steps"][0]["id"], "only",
        "the steps come from the stored text"
    );
    let o = output(&old, &["report", &run.run_id, "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.text());

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
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().as_ref(),
        drctl::store::SCHEMA_VERSION.to_string().as_bytes()
    );
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
    assert_eq!(o.code, 0, "{}", o.text());

    // What a drctl killed while spawning a step leaves for a moment: its socket, held open by
    // a child that will close it without a word.
    let listener = std::os::unix::net::UnixListener::bind(state.join("control.sock")).unwrap();
    let closer = std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            drop(stream);
        }
    });
    let o = output(&state, &["status", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let status = o.json();
    assert_eq!(status["status"], "succeeded");
    closer.join().unwrap();
}

/// Runs `drctl ARGS` on a pseudo-terminal, answers `answer` once `prompt` is shown, and
/// returns the exit code and everything the terminal showed.
fn on_a_terminal(
    drctl: &Drctl,
    args: &[&str],
    prompt: &str,
    answer: &str,
) -> (Option<i32>, String) {
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
    let o = drctl
        .under("python3", &["-c", script, prompt, answer], args)
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
        &drctl(&state),
        &["run", file.to_str().unwrap(), "--as", "ops"],
        "approve `gate` now as ops?",
        "y\n",
    );
    assert_eq!(code, Some(0), "{shown}");
    let status = output(&state, &["status", "--format", "json"]).json();
    assert_eq!(status["status"], "succeeded", "{shown}");
    let run_id = status["run_id"].as_str().unwrap();
    let report = output(&state, &["report", run_id, "--format", "json"]).json();
    let approvals = report["approvals"].to_string();
    assert!(
        approvals.contains("ops") && approvals.contains("decided at the terminal"),
        "{approvals}"
    );
}
