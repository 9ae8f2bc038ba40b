//! Reports and history: snapshots of the md, json and junit reports (times and ids redacted),
//! the `JUnit` output read back by a `JUnit` XML parser, a drill that blows its RTO warned about
//! while running and reported as not met, and plan predictions learning from past runs.

use regex::Regex;

use crate::harness::root;
use crate::support::{Drctl, Out};

/// Replaces what changes from run to run: ids, times, durations.
fn redact(text: &str) -> String {
    let rules = [
        (r"\d{8}T\d{6}Z-[0-9a-f]{4}", "[RUN_ID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\b\d{2}:\d{2}:\d{2}\b", "[HH:MM:SS]"),
        (
            r#""(duration_seconds|achieved_seconds|approval_wait_seconds)": [0-9.]+"#,
            "\"$1\": [SECONDS]",
        ),
        (r#"time="[0-9.]+""#, "time=\"[SECONDS]\""),
        (r"\b(\d+h)?(\d+m)?(\d+s)?(\d+ms)?\b", "$0"),
        (r"\| (\d+(h|ms|m|s))+ \|", "| [DURATION] |"),
        (
            r"Waiting for approvals: (\d+(h|ms|m|s))+",
            "Waiting for approvals: [DURATION]",
        ),
        (r"\| RTO \| (\d+(h|ms|m|s))+ \|", "| RTO | [DURATION] |"),
    ];
    let mut out = text.to_string();
    for (pattern, with) in rules {
        out = Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

fn run_drill(drctl: &Drctl, file: &str) -> (Out, String) {
    let o = drctl.run(&["drill", file, "--as", "ops"]);
    let run = o
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (o, run)
}

#[test]
fn report_snapshots_and_junit_parses() {
    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state")).current_dir(root());
    let (o, run) = run_drill(&drctl, "tests/fixtures/report/drill.toml");
    assert_eq!(o.code, 0, "{}", o.stdout);

    let md = drctl.run(&["report", &run, "--format", "md"]).stdout;
    let json = drctl.run(&["report", &run, "--format", "json"]).stdout;
    let junit = drctl.run(&["report", &run, "--format", "junit"]).stdout;
    insta::with_settings!({ snapshot_path => "snapshots/reports", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report.md", redact(&md));
        insta::assert_snapshot!("report.json", redact(&json));
        insta::assert_snapshot!("report.junit.xml", redact(&junit));
    });

    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in [
        "run_id",
        "workflow",
        "mode",
        "status",
        "started_at",
        "finished_at",
        "rto",
        "rpo",
        "steps",
        "approvals",
        "not_undone",
    ] {
        assert!(v.get(field).is_some(), "report JSON lacks {field}");
    }
    assert_eq!(v["rto"]["met"], true);
    assert_eq!(v["approvals"][0]["decision"], "timeout");
    for step in v["steps"].as_array().unwrap() {
        for field in [
            "id",
            "action",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "duration_seconds",
            "outputs",
            "error",
        ] {
            assert!(step.get(field).is_some(), "report step lacks {field}");
        }
    }

    // A real JUnit XML parser reads it: one case per step plus the RTO objective.
    let suites =
        junit_parser::from_reader(std::io::Cursor::new(junit.as_bytes())).expect("valid JUnit XML");
    assert_eq!(suites.suites.len(), 1);
    let suite = &suites.suites[0];
    assert_eq!(suite.cases.len(), 6);
    assert!(suite.cases.iter().all(|c| c.status.is_success()));

    // -o writes a file; the HTML is one self-contained page with an inline SVG timeline.
    let html_path = dir.path().join("report.html");
    drctl
        .run(&[
            "report",
            &run,
            "--format",
            "html",
            "-o",
            html_path.to_str().unwrap(),
        ])
        .ok();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<svg") && html.contains("RTO objective"));
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
}

#[test]
fn a_blown_rto_warns_while_running_and_is_reported_not_met() {
    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state")).current_dir(root());
    let (o, run) = run_drill(&drctl, "tests/fixtures/report/slow.toml");
    let out = o.stdout;
    assert_eq!(o.code, 0, "{out}");
    assert!(out.contains("RTO BREACHED"), "warned while running:\n{out}");
    let report = drctl.run(&["report", &run, "--format", "json"]).json();
    assert_eq!(report["rto"]["met"], false);
    assert!(report["rto"]["achieved_seconds"].as_f64().unwrap() >= 3.0);
    assert!(report["rto_breached_at"].is_string());
    let junit = drctl.run(&["report", &run, "--format", "junit"]).stdout;
    let suites = junit_parser::from_reader(std::io::Cursor::new(junit.as_bytes())).unwrap();
    assert_eq!(
        suites.failures, 1,
        "the RTO objective is a failed test case"
    );
}

#[test]
fn the_plan_predicts_from_history_and_history_keeps_drills_apart() {
    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state")).current_dir(root());
    let plan = || {
        drctl
            .run(&[
                "plan",
                "--offline",
                "--format",
                "json",
                "tests/fixtures/report/slow.toml",
            ])
            .json()
    };
    let before = plan();
    assert_eq!(before["predicted_rto_seconds"], 0.5, "from the estimate");
    assert!(
        !drctl.state().exists(),
        "a plan never creates the state directory"
    );
    run_drill(&drctl, "tests/fixtures/report/slow.toml");
    let after = plan();
    let predicted = after["predicted_rto_seconds"].as_f64().unwrap();
    assert!(predicted >= 3.0, "from the real duration: {predicted}");
    assert!(
        after["prediction_source"]
            .as_str()
            .unwrap()
            .contains("1 past"),
        "{}",
        after["prediction_source"]
    );

    let history = drctl
        .run(&["history", "slow-drill", "--format", "json"])
        .json();
    assert_eq!(history["drills"].as_array().unwrap().len(), 1);
    assert_eq!(history["runs"].as_array().unwrap().len(), 0);
    assert_eq!(history["drills"][0]["rto"]["met"], false);
}

#[test]
fn report_o_writes_a_new_file_0600_and_never_through_a_link() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state")).current_dir(root());
    let (o, run) = run_drill(&drctl, "tests/fixtures/report/drill.toml");
    assert_eq!(o.code, 0, "{}", o.stdout);
    let report = |path: &std::path::Path, force: bool| {
        let mut args = vec!["report", &run, "--format", "json", "-o"];
        args.push(path.to_str().unwrap());
        if force {
            args.push("--force");
        }
        drctl.run(&args)
    };
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

    let fresh = dir.path().join("fresh.json");
    report(&fresh, false).ok();
    assert_eq!(mode(&fresh), 0o600);
    assert!(std::fs::read_to_string(&fresh).unwrap().contains(&run));

    // A link to another file: refused, with or without --force, and the file untouched.
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    for force in [false, true] {
        report(&link, force).refused("symbolic link", "-o through a link");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
        assert_eq!(mode(&precious), 0o644);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    // A dangling link is not followed either.
    let dangling = dir.path().join("dangling.json");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    report(&dangling, false).refused("symbolic link", "-o through a dangling link");
    assert!(!dir.path().join("nowhere").exists());

    // An existing file: refused without --force, replaced (0600) with it.
    let existing = dir.path().join("existing.json");
    std::fs::write(&existing, "old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    report(&existing, false).refused("--force", "-o over an existing file");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
    report(&existing, true).ok();
    assert!(std::fs::read_to_string(&existing).unwrap().contains(&run));
    assert_eq!(mode(&existing), 0o600);
}
