//! The guarantees a DR run must never break, tried from outside the way a careless operator
//! or a hostile client would: durations past every limit, parameters that try to weaken an
//! approval, a control socket under abuse, a store busy at the wrong moment, a driving process
//! killed mid-run.

use std::path::Path;

use crate::harness::root;
use crate::support::{Drctl, Live, Out};

/// drctl from the repository root.
fn drctl(state: &Path) -> Drctl {
    Drctl::new(state).current_dir(root())
}

fn output(state: &Path, args: &[&str]) -> Out {
    drctl(state).run(args)
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, content).unwrap();
    file.display().to_string()
}

const HUGE_APPROVAL: &str = r#"[workflow]
name = "huge-approval"
kind = "failover"

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["bob"], timeout = "3000000000h" }
"#;

#[test]
fn a_duration_past_thirty_days_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(dir.path(), "huge.toml", HUGE_APPROVAL);
    for argv in [vec!["validate", &file], vec!["run", &file, "--as", "alice"]] {
        let command = argv[0];
        let o = output(&state, &argv);
        assert_eq!(o.code, 2, "{command}: {}", o.text());
        assert!(o.text().contains("DRC0007"), "{command}: {}", o.text());
        assert!(o.text().contains("(720h)"), "{command}: {}", o.text());
        assert!(!o.text().contains("panicked"), "{command}: {}", o.text());
    }
}

const PARAM_WAIT: &str = r#"[workflow]
name = "param-wait"
kind = "failover"

[params]
drain = "1s"

[[steps]]
id = "drain"
action = "wait"
with = { duration = "${params.drain}" }
"#;

#[test]
fn a_param_that_becomes_a_duration_past_thirty_days_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(dir.path(), "wait.toml", PARAM_WAIT);
    for big in ["drain=721h", "drain=99999999999999999999h"] {
        let o = output(&state, &["run", &file, "--param", big]);
        assert_eq!(o.code, 2, "{big}: {}", o.text());
        assert!(o.text().contains("DRC0007"), "{big}: {}", o.text());
        assert!(o.text().contains("(720h)"), "{big}: {}", o.text());
    }
    let o = output(&state, &["run", &file, "--param", "drain=10ms"]);
    assert_eq!(o.code, 0, "{}", o.text());
}

#[test]
fn durations_are_limited_to_thirty_days() {
    use drctl::workflow::parse_duration;
    assert_eq!(
        parse_duration("720h"),
        Ok(std::time::Duration::from_hours(720))
    );
    for too_long in ["720h1ms", "721h", "43201m", "2592001s", "3000000000h"] {
        let why = parse_duration(too_long).expect_err(too_long);
        assert!(why.contains("30 days (720h)"), "{too_long}: {why}");
    }
}

#[test]
fn the_example_workflows_keep_their_approval_policies_literal() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "workflows/local-drill.toml",
        "workflows/regional-failover.toml",
        "workflows/regional-failback.toml",
        "workflows/point-in-time-restore.toml",
    ] {
        let o = output(&dir.path().join("state"), &["validate", file]);
        assert_eq!(o.code, 0, "{file}: {}", o.text());
    }
}

#[test]
fn a_param_cannot_weaken_an_approval_gate() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(
        dir.path(),
        "weak.toml",
        r#"[workflow]
name = "weak-gate"
kind = "failover"

[params]
who = "bob"

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["${params.who}"], timeout = "1h" }
"#,
    );
    let o = output(
        &state,
        &["run", &file, "--param", "who=alice", "--as", "alice"],
    );
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("DRC0023"), "{}", o.text());
    assert!(o.text().contains("weak.toml:11:23"), "{}", o.text());
}

// --- A live run and the clients around it ---------------------------------------------------

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn slow(dir: &Path, name: &str) -> String {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n[[steps]]\nid = \"hold\"\naction = \"wait\"\ntimeout = \"10m\"\nwith = {{ duration = \"5m\" }}\n"
        ),
    )
}

fn status_json(state: &Path, args: &[&str]) -> (Out, serde_json::Value, Duration) {
    let began = Instant::now();
    let o = output(state, args);
    let took = began.elapsed();
    let v = serde_json::from_str(&o.stdout).unwrap_or_default();
    (o, v, took)
}

/// Waits until `drctl status RUN` (through the live process) says `wanted`.
fn wait_for(state: &Path, run: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v, _) = status_json(state, &["status", run, "--format", "json"]);
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

/// `drctl status` from another process answers, promptly, about the live run.
fn answers_promptly(state: &Path, run: &str, after: &str) {
    let (o, v, took) = status_json(state, &["status", run, "--format", "json"]);
    assert_eq!(o.code, 0, "after {after}: {}", o.text());
    assert_eq!(v["status"], "running", "after {after}: {v}");
    assert!(
        took < Duration::from_secs(3),
        "after {after}: took {took:?}"
    );
}

fn socket(state: &Path) -> UnixStream {
    UnixStream::connect(state.join("control.sock")).unwrap()
}

#[test]
fn the_control_socket_survives_misbehaving_clients() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = slow(dir.path(), "slow");
    let (_live, run) = drctl(&state).start(&["run", &file, "--as", "alice"]);
    wait_for(&state, &run, "running");
    let mode = std::fs::metadata(state.join("control.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket is {mode:o}");

    // A client that connects and says nothing is dropped after the idle timeout.
    let mut silent = socket(&state);
    answers_promptly(&state, &run, "a silent client");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 64];
    let n = silent
        .read(&mut buf)
        .expect("the server closes an idle connection");
    assert_eq!(n, 0, "an idle connection gets nothing but its end");
    assert!(began.elapsed() < Duration::from_secs(15));

    // Many clients that connect and hold: others are still served.
    let holders: Vec<UnixStream> = (0..100).map(|_| socket(&state)).collect();
    answers_promptly(&state, &run, "100 holding clients");
    drop(holders);

    // A request line without end: refused once it passes the bound, then dropped, without
    // the server reading it all.
    let flood = socket(&state);
    flood
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = flood.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 32 * 1024 * 1024 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut answer = String::new();
    BufReader::new(&flood)
        .read_line(&mut answer)
        .expect("the server answers an oversized request");
    assert!(answer.contains("longer than 8 MiB"), "{answer}");
    let sent = sender.join().unwrap();
    assert!(sent < 32 * 1024 * 1024, "the server read all {sent} bytes");
    answers_promptly(&state, &run, "a 32 MiB line");

    // Large requests (a start carries its workflow's text) are read, a few at a time: eight
    // of 1 MiB at once are all answered.
    let large: Vec<_> = (0..8)
        .map(|i| {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut large = socket(&state);
                large
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let name = format!("r{i}{}", "x".repeat(1024 * 1024));
                let request = format!("{{\"v\":2,\"op\":\"status\",\"run\":\"{name}\"}}\n");
                large.write_all(request.as_bytes()).unwrap();
                let mut answer = String::new();
                BufReader::new(&large).read_line(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    for answer in large {
        let answer = answer.join().unwrap();
        assert!(
            answer.contains("no run") && !answer.contains("longer than"),
            "{}",
            &answer[..answer.len().min(300)]
        );
    }
    answers_promptly(&state, &run, "eight 1 MiB requests");

    // Garbage is refused; the connection may go on with a good request.
    let mut garbage = socket(&state);
    garbage
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    garbage
        .write_all(b"{\"v\":2,\"op\":\"status\",\"run\":\x00\xff}}}\n")
        .unwrap();
    let mut reader = BufReader::new(garbage.try_clone().unwrap());
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["ok"], false, "{answer}");
    garbage.write_all(b"{\"v\":2,\"op\":\"runs\"}\n").unwrap();
    answer.clear();
    reader.read_line(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["ok"], true, "{answer}");
    answers_promptly(&state, &run, "garbage JSON");
}

#[test]
fn the_control_socket_outlives_running_out_of_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = slow(dir.path(), "starved");
    // Few file descriptors: accepting the clients below exhausts them.
    let command = drctl(&state).under(
        "sh",
        &["-c", "ulimit -n 48 && exec \"$0\" \"$@\""],
        &["run", &file, "--as", "alice"],
    );
    let (_live, run) = Live::start(command);
    wait_for(&state, &run, "running");
    let holders: Vec<UnixStream> = (0..60)
        .filter_map(|_| UnixStream::connect(state.join("control.sock")).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (o, v, _) = status_json(&state, &["status", &run, "--format", "json"]);
        if o.code == 0 && v["status"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the live process stopped answering: {}",
            o.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn read_commands_never_meet_a_busy_store() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A first run creates the store, so every read below finds one.
    let file = write(
        dir.path(),
        "quick.toml",
        "[workflow]\nname = \"quick\"\nkind = \"failover\"\n\n[[steps]]\nid = \"a\"\naction = \"noop\"\n",
    );
    assert_eq!(output(&state, &["drill", &file]).code, 0);
    let slow_file = slow(dir.path(), "slow");
    let _live = drctl(&state).spawn(&["run", &slow_file, "--as", "alice"]);
    for i in 0..50 {
        let args: &[&str] = if i % 2 == 0 {
            &["status", "--format", "json"]
        } else {
            &["runs", "--format", "json"]
        };
        let o = output(&state, args);
        assert_eq!(o.code, 0, "read {i}: {}", o.text());
        assert!(
            !o.text().contains("in use by another drctl process"),
            "read {i}: {}",
            o.text()
        );
    }
}

#[test]
fn a_killed_run_shows_as_interrupted_with_the_pid_that_drove_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = slow(dir.path(), "killed");
    let (mut live, run) = drctl(&state).start(&["run", &file, "--as", "alice"]);
    wait_for(&state, &run, "running");
    let pid = live.pid();
    live.kill(); // SIGKILL

    let (o, v, _) = status_json(&state, &["status", &run, "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(v["status"], "interrupted", "{v}");
    assert_eq!(v["stored_status"], "running", "{v}");
    assert_eq!(v["pid"], pid, "{v}");
    assert_eq!(v["run_id"], run.as_str());
    assert_eq!(v["steps"][0]["id"], "hold");

    let (o, v, _) = status_json(&state, &["runs", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(v[0]["status"], "interrupted", "{v}");
    assert_eq!(v[0]["pid"], pid, "{v}");

    let o = output(&state, &["status", &run]);
    assert!(o.text().contains("INTERRUPTED"), "{}", o.text());
    assert!(o.text().contains(&pid.to_string()), "{}", o.text());
    assert!(
        o.text().contains(&format!("drctl resume {run}")),
        "{}",
        o.text()
    );
    let o = output(&state, &["runs"]);
    assert!(o.text().contains("interrupted"), "{}", o.text());
    assert!(
        o.text().contains(&format!("drctl resume {run}")),
        "{}",
        o.text()
    );

    // Still an unfinished run: a second one is refused.
    let o = output(&state, &["run", &file]);
    assert_eq!(o.code, 6, "{}", o.text());
    assert!(
        o.text().contains(&format!("drctl resume {run}")),
        "{}",
        o.text()
    );

    // A live process driving another run says the same about this one.
    let other = slow(dir.path(), "other");
    let (_other_live, other_run) = drctl(&state).start(&["run", &other, "--as", "alice"]);
    wait_for(&state, &other_run, "running");
    let (_, v, _) = status_json(&state, &["runs", "--format", "json"]);
    let runs = v.as_array().unwrap();
    let find = |id: &str| runs.iter().find(|r| r["run_id"] == id).unwrap().clone();
    assert_eq!(find(&run)["status"], "interrupted", "{v}");
    assert_eq!(find(&other_run)["status"], "running", "{v}");
    let (_, v, _) = status_json(&state, &["status", &run, "--format", "json"]);
    assert_eq!(v["status"], "interrupted", "{v}");
}

#[test]
fn a_detached_run_awaits_approval_and_is_not_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(
        dir.path(),
        "gated.toml",
        "[workflow]\nname = \"gated\"\nkind = \"failover\"\n\n[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = { approvers = [\"bob\"], timeout = \"1h\" }\n",
    );
    let o = output(&state, &["run", &file, "--detach", "--as", "alice"]);
    assert_eq!(o.code, 3, "{}", o.text());
    let (o, v, _) = status_json(&state, &["status", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(v["status"], "awaiting_approval", "{v}");
    assert!(v.get("stored_status").is_none(), "{v}");
}
