//! A store written by drctl before the engine redesign (issue 12), kept as a fixture in
//! `tests/fixtures/legacy/store` with what that drctl printed in `expected/`. Runs recorded
//! then keep their digest scheme: the finished run reports byte for byte as it did, the run
//! left waiting resumes and finishes, and the paused one still shows why and takes a decision.
//!
//! How the fixture was made: `tests/fixtures/legacy/README.md`.

use std::path::Path;

use crate::support::Drctl;

const FINISHED: &str = "20261123T101435Z-f8f3";
const UNFINISHED: &str = "20261123T101436Z-5017";
const PAUSED: &str = "20261123T101437Z-90e0";

fn fixture() -> std::path::PathBuf {
    crate::harness::root().join("tests/fixtures/legacy")
}

/// A copy of the fixture store (runs change it), and drctl run from the repository root, as
/// when the fixture was recorded (the runs name their files relative to it).
fn legacy_store(dir: &Path) -> Drctl {
    let state = dir.join("state");
    let store = state.join("store");
    std::fs::create_dir_all(store.join("blobs")).expect("store dir");
    for entry in std::fs::read_dir(fixture().join("store")).expect("fixture store") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), store.join(entry.file_name())).expect("copy");
        }
    }
    Drctl::new(state)
        .current_dir(crate::harness::root())
        .env("DRCTL_FIXTURE_LEDGER", dir.join("ledger"))
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture().join("expected").join(name)).expect("expected output")
}

#[test]
fn a_run_finished_before_the_redesign_reports_exactly_as_it_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let drctl = legacy_store(dir.path());
    for format in ["md", "json", "junit", "html"] {
        let out = drctl.run(&["report", FINISHED, "--format", format]).ok();
        assert_eq!(
            out.stdout,
            expected(&format!("finished.report.{format}")),
            "the {format} report of the old run changed"
        );
    }
    let status = drctl.run(&["status", FINISHED, "--format", "json"]).ok();
    assert_eq!(
        status.json(),
        serde_json::from_str::<serde_json::Value>(&expected(&format!("status.{FINISHED}.json")))
            .expect("json"),
    );
    drctl.run(&["verify", FINISHED]).ok();
}

#[test]
fn a_run_left_unfinished_before_the_redesign_resumes_and_runs_its_last_step_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let drctl = legacy_store(dir.path());
    // The file on disk is the one the run started with: its old-scheme digest still matches.
    drctl.run(&["resume", UNFINISHED, "--as", "alice"]).ok();
    let status = drctl
        .run(&["status", UNFINISHED, "--format", "json"])
        .ok()
        .json();
    assert_eq!(status["status"], "succeeded", "{status:#}");
    let ledger = std::fs::read_to_string(dir.path().join("ledger")).expect("ledger");
    assert_eq!(ledger, "promoted\n", "the last step runs once");
    drctl.run(&["verify", UNFINISHED]).ok();
    drctl.run(&["report", UNFINISHED, "--format", "json"]).ok();
}

#[test]
fn a_run_paused_before_the_redesign_shows_why_and_takes_a_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let drctl = legacy_store(dir.path());
    let status = drctl
        .run(&["status", PAUSED, "--format", "json"])
        .ok()
        .json();
    let reason = status["paused_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("step `restore` failed") && reason.contains("exited with code 3"),
        "{status:#}"
    );
    drctl
        .run(&[
            "resume", PAUSED, "--as", "bob", "--step", "restore", "--skip",
        ])
        .ok();
    let status = drctl
        .run(&["status", PAUSED, "--format", "json"])
        .ok()
        .json();
    assert_eq!(status["status"], "succeeded", "{status:#}");
    let ledger = std::fs::read_to_string(dir.path().join("ledger")).expect("ledger");
    assert_eq!(ledger, "verified\n");
}

#[test]
fn the_listing_of_the_old_store_is_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let drctl = legacy_store(dir.path());
    let runs = drctl.run(&["runs", "--format", "json"]).ok().json();
    assert_eq!(
        runs,
        serde_json::from_str::<serde_json::Value>(&expected("runs.json")).expect("json")
    );
}
