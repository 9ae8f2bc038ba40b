//! The initiator of a run against a gate that said no (SPEC §5.5, §5.8.1). Alice starts a
//! failover whose irreversible step waits for an approval; bob rejects it. Alice then tries
//! every path the command line offers to get the irreversible step run anyway: skip the gate,
//! mark it succeeded, resume as if nothing happened, approve it herself under every name she
//! can type, vote late, edit the workflow and resume with `--allow-changed-workflow`, cancel and
//! start over, roll back. The irreversible step appends to a ledger file outside drctl: it must
//! never be written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::root;
use crate::support::{Drctl, Out};

/// One state directory, one workflow file, one ledger.
struct Scene {
    _dir: tempfile::TempDir,
    drctl: Drctl,
    file: PathBuf,
    ledger: PathBuf,
}

const WORKFLOW: &str = r#"
[workflow]
name = "orders-failover"
kind = "failover"

[[steps]]
id = "check"
action = "noop"

[[steps]]
id = "gate"
action = "approval"
needs = ["check"]
with = { approvers = ["alice", "bob", "carol"], quorum = 2, timeout = "TIMEOUT" }

[[steps]]
id = "promote"
action = "shell"
needs = ["gate"]
with = { argv = ["sh", "-c", "echo promoted >> \"$0\"", "LEDGER"] }
"#;

impl Scene {
    fn new(timeout: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger");
        let file = dir.path().join("failover.toml");
        std::fs::write(&file, workflow(timeout, &ledger)).unwrap();
        Scene {
            drctl: Drctl::new(dir.path().join("state")).current_dir(root()),
            file,
            ledger,
            _dir: dir,
        }
    }

    fn drctl(&self, args: &[&str]) -> Out {
        self.drctl.run(args)
    }

    fn file(&self) -> &str {
        self.file.to_str().unwrap()
    }

    /// `drctl run --detach` as alice: the run stops at the gate (exit 3). Returns its id.
    fn start_detached(&self) -> String {
        let o = self.drctl(&["run", self.file(), "--as", "alice", "--detach"]);
        assert_eq!(o.code, 3, "{}", o.text());
        o.text().split_whitespace().nth(1).unwrap().to_string()
    }

    fn status(&self, run: &str) -> serde_json::Value {
        let o = self.drctl(&["status", run, "--format", "json"]);
        serde_json::from_str(&o.stdout).unwrap_or_default()
    }

    fn step_status(&self, run: &str, step: &str) -> String {
        let v = self.status(run);
        v["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == step))
            .and_then(|s| s["status"].as_str())
            .unwrap_or("?")
            .to_string()
    }

    /// The irreversible step never ran.
    fn assert_not_promoted(&self, after: &str) {
        assert!(!self.ledger.exists(), "the gated step ran after: {after}");
    }
}

fn workflow(timeout: &str, ledger: &Path) -> String {
    WORKFLOW
        .replace("TIMEOUT", timeout)
        .replace("LEDGER", ledger.to_str().unwrap())
}

#[test]
fn the_initiator_cannot_get_past_a_rejected_gate_by_any_command() {
    let s = Scene::new("1h");
    let run = s.start_detached();
    // Alice cannot approve her own run, under her name, and nobody can vote twice.
    s.drctl(&["approve", &run, "gate", "--as", "alice"])
        .refused("started this run", "self-approval");
    s.drctl(&["approve", &run, "gate", "--as", "mallory"])
        .refused("not an approver", "an approver not listed");
    let o = s.drctl(&["approve", &run, "gate", "--as", "carol", "--comment", "ok"]);
    assert_eq!(o.code, 0, "{}", o.text());
    s.drctl(&["approve", &run, "gate", "--as", "carol"])
        .refused("already decided", "a second vote by the same approver");
    let o = s.drctl(&["reject", &run, "gate", "--as", "bob", "--comment", "NO"]);
    assert_eq!(o.code, 0, "{}", o.text());
    s.assert_not_promoted("the rejection");

    // Every way back in through resume.
    for (choice, why) in [("--skip", "final"), ("--mark-succeeded", "final")] {
        s.drctl(&["resume", &run, "--step", "gate", choice])
            .refused(why, choice);
        s.assert_not_promoted(choice);
    }
    s.drctl(&[
        "resume",
        &run,
        "--step",
        "gate",
        "--skip",
        "--step",
        "check",
        "--mark-succeeded",
    ])
    .refused("final", "a skip hidden among several decisions");
    let o = s.drctl(&["resume", &run]);
    assert_ne!(o.code, 0, "{}", o.text());
    s.assert_not_promoted("a plain resume");
    assert_eq!(s.step_status(&run, "gate"), "failed");
    s.drctl(&["approve", &run, "gate", "--as", "carol"])
        .refused("not waiting", "a vote on a decided gate");

    // Editing the workflow and resuming with the edit.
    let original = std::fs::read_to_string(&s.file).unwrap();
    let edits = [
        (
            original.replace("needs = [\"gate\"]", "needs = [\"check\"]"),
            "no longer makes it wait",
        ),
        (
            original.replace("quorum = 2", "quorum = 1, allow_self_approval = true"),
            "policy",
        ),
        (
            format!(
                "{original}\n[[steps]]\nid = \"promote-now\"\naction = \"shell\"\nwith = {{ argv = [\"sh\", \"-c\", \"echo promoted >> \\\"$0\\\"\", \"{}\"] }}\n",
                s.ledger.display()
            ),
            "adds `promote-now`",
        ),
    ];
    for (edited, why) in edits {
        std::fs::write(&s.file, edited).unwrap();
        s.drctl(&["resume", &run, "--allow-changed-workflow"])
            .refused(why, "a resume with an edited workflow");
        s.assert_not_promoted(why);
    }
    std::fs::write(&s.file, &original).unwrap();

    // A new round needs fresh votes: carol's approval of the first round is void, and alice
    // still cannot approve.
    let o = s.drctl(&[
        "resume", &run, "--step", "gate", "--retry", "--detach", "--as", "alice",
    ]);
    assert_eq!(o.code, 3, "{}", o.text());
    assert_eq!(s.step_status(&run, "gate"), "awaiting_approval");
    s.drctl(&["approve", &run, "gate", "--as", "alice"])
        .refused("started this run", "self-approval in the new round");
    let o = s.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "bob",
        "--comment",
        "ok now",
    ]);
    assert_eq!(o.code, 0, "{}", o.text());
    let o = s.drctl(&["resume", &run, "--detach"]);
    assert_eq!(o.code, 3, "one fresh approval of two: {}", o.text());
    s.assert_not_promoted("one fresh approval where two are needed");

    // Cancel and start again: the new run waits at its own gate.
    let o = s.drctl(&["cancel", &run, "--as", "alice"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let second = s.start_detached();
    assert_ne!(second, run);
    s.assert_not_promoted("a new run of the same workflow");
    let o = s.drctl(&["rollback", &run, "--as", "alice"]);
    assert_eq!(o.code, 5, "{}", o.text());
    s.assert_not_promoted("a rollback");
}

#[test]
fn a_vote_after_the_deadline_is_refused_and_the_gate_closes() {
    let s = Scene::new("1s");
    let run = s.start_detached();
    std::thread::sleep(Duration::from_millis(1500));
    // No process drives the run: the vote is written to the store, and refused there.
    s.drctl(&["approve", &run, "gate", "--as", "bob"])
        .refused("deadline", "a late vote");
    s.drctl(&["approve", &run, "gate", "--as", "carol"])
        .refused("deadline", "a late vote");
    let o = s.drctl(&["resume", &run]);
    assert_ne!(o.code, 0, "{}", o.text());
    assert_eq!(s.step_status(&run, "gate"), "failed");
    s.drctl(&["resume", &run, "--step", "gate", "--skip"])
        .refused("final", "skipping a gate that timed out");
    s.assert_not_promoted("a late vote");
}

#[test]
fn a_rejection_through_the_live_process_is_as_final() {
    let s = Scene::new("1h");
    let (mut live, run) = s.drctl.start(&["run", s.file(), "--as", "alice"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.step_status(&run, "gate") != "awaiting_approval" {
        assert!(Instant::now() < deadline, "the gate never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.drctl(&["approve", &run, "gate", "--as", "alice"])
        .refused("started this run", "self-approval through the socket");
    // The live process answers through its socket; on a loaded machine an answer may not come
    // in time, and the client says so: ask again (a refusal would be final, and fail here).
    let mut tries = 0;
    let o = loop {
        let o = s.drctl(&[
            "reject",
            &run,
            "gate",
            "--as",
            "carol",
            "--comment",
            "not now",
        ]);
        tries += 1;
        if o.code == 0 || o.code == 2 || tries == 3 {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(o.code, 0, "{}", o.text());
    let code = live.exit_within(
        Duration::from_secs(20),
        "the run did not stop at the rejection",
    );
    assert_ne!(code, Some(0));
    s.drctl(&["resume", &run, "--step", "gate", "--mark-succeeded"])
        .refused("final", "marking a rejected gate succeeded");
    s.assert_not_promoted("a rejection through the live process");
}
