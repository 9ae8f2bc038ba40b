//! The guarantees a DR run must never break, tried from outside the way a careless operator
//! or a hostile client would: durations past every limit, parameters that try to weaken an
//! approval, a control socket under abuse, a store busy at the wrong moment, a driving process
//! killed mid-run.

use std::path::Path;
use std::process::{Command, Output};

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
        assert_eq!(o.status.code(), Some(2), "{command}: {}", text(&o));
        assert!(text(&o).contains("DRC0007"), "{command}: {}", text(&o));
        assert!(text(&o).contains("(720h)"), "{command}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{command}: {}", text(&o));
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
        assert_eq!(o.status.code(), Some(2), "{big}: {}", text(&o));
        assert!(text(&o).contains("DRC0007"), "{big}: {}", text(&o));
        assert!(text(&o).contains("(720h)"), "{big}: {}", text(&o));
    }
    let o = output(&state, &["run", &file, "--param", "drain=10ms"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
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
        assert_eq!(o.status.code(), Some(0), "{file}: {}", text(&o));
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
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("DRC0023"), "{}", text(&o));
    assert!(text(&o).contains("weak.toml:11:23"), "{}", text(&o));
}
