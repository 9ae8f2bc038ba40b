//! At most once for what is not idempotent (SPEC §5.4, §5.8.2): a shell step that appends to
//! a file and then hangs past its timeout, with three attempts allowed, appends once. Its
//! outcome is unknown, shell has no probe, so the run waits for the operator, who decides.

use crate::harness::root;
use crate::support::Drctl;

#[test]
fn a_step_that_is_not_idempotent_is_not_run_again_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let drctl = Drctl::new(dir.path().join("state")).current_dir(root());
    let ledger = dir.path().join("ledger");
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
    let o = drctl.run(&["run", file, "--as", "alice"]).code(4);
    let lines = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(
        lines.lines().filter(|l| *l == "attempt").count(),
        1,
        "the step ran more than once: {lines}"
    );
    assert!(o.text().contains("--step append"), "{}", o.text());
    let run = o.run_id();
    let status = drctl.run(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "paused");
    assert_eq!(status["steps"][0]["status"], "unknown", "{status}");
    assert_eq!(status["steps"][1]["status"], "unknown", "{status}");
    // A resume without a decision does not run them again either.
    drctl.run(&["resume", &run]).code(4);
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 2);
    // The operator saw both take effect, and says so for each in one resume.
    drctl
        .run(&[
            "resume",
            &run,
            "--step",
            "append",
            "--mark-succeeded",
            "--step",
            "append-too",
            "--mark-succeeded",
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 2);
}
