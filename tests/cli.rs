//! The real binary, as a user runs it: exit codes and what is printed.

use crate::harness::root;
use crate::support::{Drctl, Out};

/// drctl from the repository root with its default state directory there: these commands
/// read workflow files and never write a store.
fn drctl(args: &[&str]) -> Out {
    Drctl::new(root().join("state"))
        .current_dir(root())
        .run(args)
}

#[test]
fn validate_accepts_the_examples_and_exits_0() {
    drctl(&[
        "validate",
        "workflows/local-drill.toml",
        "workflows/regional-failover.toml",
    ])
    .ok()
    .stdout_has("ok: workflows/local-drill.toml");
}

#[test]
fn validate_refuses_an_invalid_file_with_exit_2_and_points_at_the_line() {
    drctl(&["validate", "tests/fixtures/invalid/unknown-step-key.toml"])
        .code(2)
        .stdout_has("DRC0003")
        .stdout_has("unknown-step-key.toml:13:1")
        .stdout_has("did you mean `needs`?");
}

#[test]
fn validate_reports_every_file_even_after_a_bad_one() {
    drctl(&[
        "validate",
        "tests/fixtures/invalid/cycle.toml",
        "workflows/local-drill.toml",
    ])
    .code(2)
    .stdout_has("ok: workflows/local-drill.toml")
    .stdout_has("dependency cycle: a -> c -> b -> a");
}

#[test]
fn validate_json_is_machine_readable() {
    let v = drctl(&[
        "validate",
        "--format",
        "json",
        "tests/fixtures/invalid/unknown-needs.toml",
    ])
    .code(2)
    .json();
    let first = &v[0];
    assert_eq!(first["code"], "DRC0009");
    assert_eq!(first["line"], 13);
    assert!(first["help"].as_str().unwrap().contains("replica-lag"));
}

#[test]
fn deny_warnings_turns_lints_into_exit_2() {
    let file = "tests/fixtures/lint/irreversible-without-approval.toml";
    drctl(&["validate", file]).ok();
    drctl(&["validate", "--deny-warnings", file]).code(2);
    drctl(&["plan", "--offline", "--deny-warnings", file]).code(2);
}

#[test]
fn missing_and_binary_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    drctl(&["validate", binary.to_str().unwrap(), "does-not-exist.toml"])
        .code(2)
        .stdout_has("is not UTF-8")
        .stdout_has("cannot read `does-not-exist.toml`");
}

#[test]
fn plan_prints_a_review_and_changes_nothing() {
    let mut o = drctl(&["plan", "--offline", "workflows/regional-failover.toml"]).ok();
    for expected in ["Wave 1", "Critical path", "Predicted RTO", "dry run"] {
        o = o.stdout_has(expected);
    }
}

#[test]
fn plan_formats() {
    let v = drctl(&[
        "plan",
        "--offline",
        "--format",
        "json",
        "workflows/local-drill.toml",
    ])
    .ok()
    .json();
    assert_eq!(v["workflow"], "local-drill");
    let dot = drctl(&[
        "plan",
        "--offline",
        "--format",
        "dot",
        "workflows/local-drill.toml",
    ]);
    assert!(dot.stdout.starts_with("digraph \"local-drill\""), "{dot:?}");
    let mermaid = drctl(&[
        "plan",
        "--offline",
        "--format",
        "mermaid",
        "workflows/local-drill.toml",
    ]);
    assert!(mermaid.stdout.starts_with("flowchart TD"), "{mermaid:?}");
    mermaid.stdout_has("-->");
}

#[test]
fn plan_param_overrides_are_applied_and_checked() {
    let file = "workflows/regional-failover.toml";
    let v = drctl(&[
        "plan",
        "--offline",
        "--format",
        "json",
        "--param",
        "standby_region=eu-west-1",
        file,
    ])
    .json();
    assert_eq!(v["params"]["standby_region"], "eu-west-1");

    drctl(&[
        "plan",
        "--offline",
        "--param",
        "standby_regoin=eu-west-1",
        file,
    ])
    .code(2)
    .stderr_has("did you mean `standby_region`?");

    drctl(&["plan", "--offline", "--param", "no-equals-sign", file]).code(2);
}

#[test]
fn plan_of_an_invalid_workflow_exits_2_with_diagnostics_on_stderr() {
    let o = drctl(&["plan", "tests/fixtures/invalid/unknown-action.toml"])
        .code(2)
        .stderr_has("did you mean `rds.promote_read_replica`?");
    assert!(o.stdout.is_empty(), "{o:?}");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    drctl(&["frobnicate"]).code(2);
    drctl(&["validate"]).code(2);
    drctl(&["--help"]).ok();
}
