//! The real binary, as a user runs it: exit codes and what is printed.

use std::process::{Command, Output};

use crate::harness::root;

fn drctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("drctl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_accepts_the_examples_and_exits_0() {
    let o = drctl(&[
        "validate",
        "workflows/local-drill.toml",
        "workflows/regional-failover.toml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ok: workflows/local-drill.toml"));
}

#[test]
fn validate_refuses_an_invalid_file_with_exit_2_and_points_at_the_line() {
    let o = drctl(&["validate", "tests/fixtures/invalid/unknown-step-key.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("DRC0003"), "{out}");
    assert!(out.contains("unknown-step-key.toml:13:1"), "{out}");
    assert!(out.contains("did you mean `needs`?"), "{out}");
}

#[test]
fn validate_reports_every_file_even_after_a_bad_one() {
    let o = drctl(&[
        "validate",
        "tests/fixtures/invalid/cycle.toml",
        "workflows/local-drill.toml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("ok: workflows/local-drill.toml"));
    assert!(
        stdout(&o).contains("dependency cycle: a -> c -> b -> a"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_json_is_machine_readable() {
    let o = drctl(&[
        "validate",
        "--format",
        "json",
        "tests/fixtures/invalid/unknown-needs.toml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let first = &v[0];
    assert_eq!(first["code"], "DRC0009");
    assert_eq!(first["line"], 13);
    assert!(first["help"].as_str().unwrap().contains("replica-lag"));
}

#[test]
fn deny_warnings_turns_lints_into_exit_2() {
    let file = "tests/fixtures/lint/irreversible-without-approval.toml";
    assert_eq!(drctl(&["validate", file]).status.code(), Some(0));
    assert_eq!(
        drctl(&["validate", "--deny-warnings", file]).status.code(),
        Some(2)
    );
    assert_eq!(
        drctl(&["plan", "--offline", "--deny-warnings", file])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn missing_and_binary_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let o = drctl(&["validate", binary.to_str().unwrap(), "does-not-exist.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("is not UTF-8"), "{out}");
    assert!(out.contains("cannot read `does-not-exist.toml`"), "{out}");
}

#[test]
fn plan_prints_a_review_and_changes_nothing() {
    let o = drctl(&["plan", "--offline", "workflows/regional-failover.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for expected in ["Wave 1", "Critical path", "Predicted RTO", "dry run"] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
}

#[test]
fn plan_formats() {
    let json = drctl(&[
        "plan",
        "--offline",
        "--format",
        "json",
        "workflows/local-drill.toml",
    ]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["workflow"], "local-drill");
    let dot = drctl(&[
        "plan",
        "--offline",
        "--format",
        "dot",
        "workflows/local-drill.toml",
    ]);
    assert!(stdout(&dot).starts_with("digraph \"local-drill\""));
    let mermaid = drctl(&[
        "plan",
        "--offline",
        "--format",
        "mermaid",
        "workflows/local-drill.toml",
    ]);
    assert!(stdout(&mermaid).starts_with("flowchart TD"));
    assert!(stdout(&mermaid).contains("-->"));
}

#[test]
fn plan_param_overrides_are_applied_and_checked() {
    let file = "workflows/regional-failover.toml";
    let v: serde_json::Value = serde_json::from_slice(
        &drctl(&[
            "plan",
            "--offline",
            "--format",
            "json",
            "--param",
            "standby_region=eu-west-1",
            file,
        ])
        .stdout,
    )
    .expect("JSON");
    assert_eq!(v["params"]["standby_region"], "eu-west-1");

    let o = drctl(&[
        "plan",
        "--offline",
        "--param",
        "standby_regoin=eu-west-1",
        file,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `standby_region`?"),
        "{}",
        stderr(&o)
    );

    let o = drctl(&["plan", "--offline", "--param", "no-equals-sign", file]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plan_of_an_invalid_workflow_exits_2_with_diagnostics_on_stderr() {
    let o = drctl(&["plan", "tests/fixtures/invalid/unknown-action.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `rds.promote_read_replica`?"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(drctl(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(drctl(&["validate"]).status.code(), Some(2));
    assert_eq!(drctl(&["--help"]).status.code(), Some(0));
}
