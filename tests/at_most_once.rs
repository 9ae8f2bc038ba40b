//! At most once for what is not idempotent (SPEC §5.4, §5.8.2): a shell step that appends to
//! a file and then hangs past its timeout, with three attempts allowed, appends once. Its
//! outcome is unknown, shell has no probe, so the run waits for the operator, who decides.

use std::process::{Command, Output};

use crate::harness::root;

fn drctl(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(args)
        .arg("--state")
        .arg(state)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("drctl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_step_that_is_not_idempotent_is_not_run_again_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (state, ledger) = (dir.path().join("state"), dir.path().join("ledger"));
    let file = dir.path().join("append.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "append-once"
kind = "failover"

[[steps]]
id = "append"
action = "shell"
timeout = "1s"
retry = {{ attempts = 3, initial = "100ms", max = "100ms" }}
with = {{ argv = ["sh", "-c", "echo attempt >> \"$0\"; sleep 30", "{}"] }}

[[steps]]
id = "append-too"
action = "shell"
timeout = "1s"
with = {{ argv = ["sh", "-c", "echo too >> \"$0\"; sleep 30", "{}"] }}

[[steps]]
id = "after"
action = "noop"
needs = ["append", "append-too"]
"#,
            ledger.display(),
            ledger.display()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let o = drctl(&state, &["run", file, "--as", "alice"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let lines = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(
        lines.lines().filter(|l| *l == "attempt").count(),
        1,
        "the step ran more than once: {lines}"
    );
    assert!(text(&o).contains("--step append"), "{}", text(&o));
    let run = text(&o).split_whitespace().nth(1).unwrap().to_string();
    let status: serde_json::Value =
        serde_json::from_slice(&drctl(&state, &["status", &run, "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(status["status"], "paused");
    assert_eq!(status["steps"][0]["status"], "unknown", "{status}");
    assert_eq!(status["steps"][1]["status"], "unknown", "{status}");
    // A resume without a decision does not run them again either.
    let o = drctl(&state, &["resume", &run]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 2);
    // The operator saw both take effect, and says so for each in one resume.
    let o = drctl(
        &state,
        &[
            "resume",
            &run,
            "--step",
            "append",
            "--mark-succeeded",
            "--step",
            "append-too",
            "--mark-succeeded",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 2);
}
