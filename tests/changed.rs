//! A changed workflow is a new plan, not a way around one (SPEC §5.8.7), end to end with the
//! real binary and real keys made by `ssh-keygen`: `resume --allow-changed-workflow` is
//! journaled as a signed `workflow_changed`; a step it changed does not run while a gate
//! stands rejected; votes cast before the change do not count after it; and the run goes on
//! with the version that was approved, wherever its file is. A ledger outside the process
//! proves what ran.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::root;
use crate::support::{Drctl, Out};

fn keygen(dir: &Path, name: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(dir.join(name))
        .status()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(status.success());
}

/// A workflow guarded by a gate, signed or not; its steps append to a ledger.
struct Scene {
    dir: tempfile::TempDir,
    drctl: Drctl,
    file: PathBuf,
    ledger: PathBuf,
    signed: bool,
}

/// A step that appends `line` to the ledger.
fn appends(id: &str, line: &str, needs: &str) -> String {
    format!(
        "\n[[steps]]\nid = \"{id}\"\naction = \"shell\"\n{needs}with = {{ argv = [\"sh\", \"-c\", \"echo {line} >> \\\"$0\\\"\", \"LEDGER\"] }}\n"
    )
}

impl Scene {
    /// alice, bob and carol with keys (named in the workflow's allowed signers when
    /// `signed`); `steps` follow the gate (quorum `quorum`).
    fn new(signed: bool, quorum: u32, steps: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let mut signers = String::new();
        for name in ["alice", "bob", "carol"] {
            keygen(dir.path(), name);
            let public = std::fs::read_to_string(dir.path().join(format!("{name}.pub"))).unwrap();
            let key: Vec<&str> = public.split_whitespace().take(2).collect();
            signers.push_str(&format!("{name} {}\n", key.join(" ")));
        }
        std::fs::write(dir.path().join("approvers.allowed_signers"), signers).unwrap();
        let scene = Scene {
            drctl: Drctl::new(dir.path().join("state"))
                .current_dir(root())
                .env("USER", "alice")
                .env_remove("SSH_AUTH_SOCK"),
            file: dir.path().join("failover.toml"),
            ledger: dir.path().join("ledger"),
            dir,
            signed,
        };
        let signers = if signed {
            "allowed_signers = \"approvers.allowed_signers\"\n"
        } else {
            ""
        };
        scene.write(&format!(
            "[workflow]\nname = \"changed\"\nkind = \"failover\"\n{signers}\n[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = {{ approvers = [\"alice\", \"bob\", \"carol\"], quorum = {quorum}, timeout = \"1h\" }}\n{steps}"
        ));
        scene
    }

    fn write(&self, text: &str) {
        let text = text.replace("LEDGER", &self.ledger.display().to_string());
        std::fs::write(&self.file, text).unwrap();
    }

    fn key(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn drctl(&self, args: &[&str]) -> Out {
        self.drctl.run(args)
    }

    /// `args`, with `--key` of `name` when the scene is signed.
    fn as_(&self, args: &[&str], name: &str) -> Out {
        let key = self.key(name);
        let mut args = args.to_vec();
        args.extend(["--as", name]);
        if self.signed {
            args.extend(["--key", &key]);
        }
        self.drctl(&args)
    }

    fn start(&self) -> String {
        let file = self.file.display().to_string();
        let o = self.as_(&["run", &file, "--detach"], "alice");
        assert!(matches!(o.code, 3 | 4), "{}", o.text());
        o.run_id()
    }

    fn decide(&self, verb: &str, run: &str, name: &str) -> Out {
        self.as_(&[verb, run, "gate", "--comment", "decided"], name)
    }

    fn ledger(&self) -> String {
        std::fs::read_to_string(&self.ledger).unwrap_or_default()
    }

    fn status(&self, run: &str) -> Value {
        self.drctl(&["status", run, "--format", "json"]).json()
    }

    fn step_status(&self, run: &str, id: &str) -> String {
        let status = self.status(run);
        status["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap()
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, every attempt in turn")]
fn guarantee_a_rejected_gate_is_not_bypassed_by_rewriting_a_step_beside_it() {
    // `check` does not wait for the gate; it fails, and the run pauses.
    let s = Scene::new(
        true,
        1,
        &format!(
            "{}\n[[steps]]\nid = \"check\"\naction = \"shell\"\nwith = {{ argv = [\"sh\", \"-c\", \"exit 1\"] }}\n",
            appends("promote", "promote", "needs = [\"gate\"]\n")
        ),
    );
    let run = s.start();
    s.decide("reject", &run, "carol").ok();
    assert_eq!(s.step_status(&run, "gate"), "failed");
    assert_eq!(s.step_status(&run, "check"), "failed");
    let first = s.status(&run)["digest"].as_str().unwrap().to_string();

    // `check` rewritten to do what the gated step does.
    let original = std::fs::read_to_string(&s.file).unwrap();
    s.write(&original.replace(
        "[\"sh\", \"-c\", \"exit 1\"]",
        "[\"sh\", \"-c\", \"echo promote >> \\\"$0\\\"\", \"LEDGER\"]",
    ));
    let key = s.key("alice");
    let retry = [
        "resume",
        &run,
        "--allow-changed-workflow",
        "--step",
        "check",
        "--retry",
    ];
    // Unsigned, the change is refused: nothing runs, nothing is recorded.
    let o = s.drctl(&[&retry[..], &["--as", "alice"]].concat());
    assert_eq!(
        s.ledger(),
        "",
        "the rewritten step ran past a rejected gate"
    );
    o.refused("--key", "an unsigned change");
    s.drctl(&["resume", &run, "--allow-changed-workflow", "--as", "alice"])
        .refused("--key", "an unsigned change");
    // Signed, the retry of the rewritten step is refused.
    s.as_(&retry, "alice").refused(
        "the approval `gate` stands rejected",
        "a retry of the rewritten step",
    );
    assert_eq!(
        s.ledger(),
        "",
        "the rewritten step ran past a rejected gate"
    );
    let status = s.status(&run);
    assert_eq!(status["versions"], Value::Null, "{status}");
    assert_eq!(status["digest"], first.as_str());

    // Signed and without a retry, the change is recorded: who, the digests, the changed step.
    let o = s.drctl(&[
        "resume",
        &run,
        "--allow-changed-workflow",
        "--as",
        "alice",
        "--key",
        &key,
        "--detach",
    ]);
    assert_eq!(o.code, 4, "the run stays paused: {}", o.text());
    let status = s.status(&run);
    let versions = status["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{status}");
    assert_eq!(versions[0]["digest"], first.as_str());
    assert_eq!(versions[1]["digest"], status["digest"]);
    assert_ne!(status["digest"], first.as_str());
    assert_eq!(versions[1]["by"], "alice");
    assert_eq!(versions[1]["signed"], true);
    assert_eq!(versions[1]["changed_steps"], serde_json::json!(["check"]));
    let text = s.drctl(&["status", &run]).text();
    assert!(text.contains("changed steps: check"), "{text}");
    let report = s.drctl(&["report", &run, "--format", "json"]).json();
    assert_eq!(report["versions"], status["versions"], "{report}");

    // The evidence carries the change, its new source and its signature.
    let evidence = s.dir.path().join("evidence.json");
    s.drctl(&[
        "report",
        &run,
        "--format",
        "evidence",
        "-o",
        &evidence.display().to_string(),
    ])
    .ok();
    let evidence: Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence).unwrap()).unwrap();
    let changed: Vec<&Value> = evidence["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["type"] == "workflow_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{evidence}");
    assert_eq!(changed[0]["from_digest"], first.as_str());
    assert_eq!(changed[0]["to_digest"], status["digest"]);
    assert!(
        changed[0]["source"]
            .as_str()
            .unwrap()
            .contains("echo promote"),
        "{}",
        changed[0]
    );
    assert_eq!(
        changed[0]["signature"]["statement"]["kind"],
        "change_workflow"
    );

    // Recorded, the change is no way around the gate either.
    s.as_(&["resume", &run, "--step", "check", "--retry"], "alice")
        .refused("stands rejected", "a later retry of the changed step");
    assert_eq!(s.ledger(), "", "the changed step ran past a rejected gate");
}

#[test]
fn guarantee_votes_cast_before_a_change_do_not_count_after_it() {
    let s = Scene::new(
        true,
        2,
        &appends("promote", "promote-v1", "needs = [\"gate\"]\n"),
    );
    let run = s.start();
    s.decide("approve", &run, "bob").ok();
    let o = s.as_(&["resume", &run, "--detach"], "alice");
    assert_eq!(o.code, 3, "one approval of two: {}", o.text());

    // The gated step is edited (it still waits for the gate).
    let original = std::fs::read_to_string(&s.file).unwrap();
    std::fs::write(&s.file, original.replace("promote-v1", "promote-v2")).unwrap();
    let key = s.key("alice");
    let o = s.drctl(&[
        "resume",
        &run,
        "--allow-changed-workflow",
        "--as",
        "alice",
        "--key",
        &key,
        "--detach",
    ]);
    assert_eq!(o.code, 3, "{}", o.text());
    let status = s.status(&run);
    let gate = &status["steps"][0];
    assert!(gate["votes"].as_array().is_none_or(Vec::is_empty), "{gate}");

    // carol's vote and bob's from before the change are not a quorum.
    s.decide("approve", &run, "carol").ok();
    let o = s.as_(&["resume", &run, "--detach"], "alice");
    assert_eq!(o.code, 3, "bob's old vote still counted: {}", o.text());
    assert_eq!(s.ledger(), "");

    // bob is asked again. The file is gone: the run goes on with the version approved, the
    // one its journal holds, not the one it started with.
    s.decide("approve", &run, "bob").ok();
    std::fs::remove_file(&s.file).unwrap();
    let o = s.as_(&["resume", &run], "alice");
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(s.ledger(), "promote-v2\n");
    let report = s.drctl(&["report", &run, "--format", "json"]).json();
    let approvals: Vec<&str> = report["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(approvals, ["bob", "carol", "bob"], "{report}");
    // The evidence of a changed run holds up: each version's text compiles to the digest its
    // signed start or change names, and the journal replays on the last one.
    s.drctl(&["verify", &run]).ok();
    let evidence = s.dir.path().join("evidence.json").display().to_string();
    s.drctl(&["report", &run, "--format", "evidence", "-o", &evidence])
        .ok();
    let trusted = s.dir.path().join("approvers.allowed_signers");
    let o = s.drctl(&[
        "verify",
        "--evidence",
        &evidence,
        "--signers",
        &trusted.display().to_string(),
    ]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("alice changed the workflow to"),
        "{}",
        o.text()
    );
}

#[test]
fn guarantee_without_signers_a_changed_step_still_waits_for_a_rejected_gate() {
    let s = Scene::new(
        false,
        2,
        &format!(
            "{}\n[[steps]]\nid = \"check\"\naction = \"shell\"\nwith = {{ argv = [\"sh\", \"-c\", \"exit 1\"] }}\n",
            appends("promote", "promote", "needs = [\"gate\"]\n")
        ),
    );
    let run = s.start();
    s.decide("reject", &run, "carol").ok();
    let first = s.status(&run)["digest"].clone();
    let original = std::fs::read_to_string(&s.file).unwrap();
    s.write(&original.replace(
        "[\"sh\", \"-c\", \"exit 1\"]",
        "[\"sh\", \"-c\", \"echo promote >> \\\"$0\\\"\", \"LEDGER\"]",
    ));
    let o = s.as_(
        &[
            "resume",
            &run,
            "--allow-changed-workflow",
            "--step",
            "check",
            "--retry",
        ],
        "alice",
    );
    assert_eq!(
        s.ledger(),
        "",
        "the rewritten step ran past a rejected gate"
    );
    o.refused("stands rejected", "a retry of the rewritten step");
    // Nothing of the refused resume is recorded: the run has the digest it started with.
    let status = s.status(&run);
    assert_eq!(status["digest"], first, "{status}");
    assert_eq!(status["versions"], Value::Null, "{status}");
}

#[test]
fn guarantee_without_signers_votes_before_a_change_do_not_count_after_it() {
    let s = Scene::new(
        false,
        2,
        &appends("promote", "promote-v1", "needs = [\"gate\"]\n"),
    );
    let run = s.start();
    s.decide("approve", &run, "bob").ok();
    let original = std::fs::read_to_string(&s.file).unwrap();
    std::fs::write(&s.file, original.replace("promote-v1", "promote-v2")).unwrap();
    let o = s.as_(
        &["resume", &run, "--allow-changed-workflow", "--detach"],
        "alice",
    );
    assert_eq!(o.code, 3, "{}", o.text());
    s.decide("approve", &run, "carol").ok();
    assert_eq!(
        s.step_status(&run, "gate"),
        "awaiting_approval",
        "the gate passed on a vote cast before the change"
    );
    let o = s.as_(&["resume", &run, "--detach"], "alice");
    assert_eq!(o.code, 3, "bob's old vote still counted: {}", o.text());
    assert_eq!(s.ledger(), "");
    let status = s.status(&run);
    let versions = status["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{status}");
    assert_eq!(versions[1]["signed"], false);
    assert_eq!(versions[1]["changed_steps"], serde_json::json!(["promote"]));
    s.decide("approve", &run, "bob").ok();
    let o = s.as_(&["resume", &run], "alice");
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(s.ledger(), "promote-v2\n");
}

#[test]
fn guarantee_an_agent_signs_and_drives_the_changed_version() {
    let s = Scene::new(
        true,
        1,
        &appends("promote", "promote-v1", "needs = [\"gate\"]\n"),
    );
    let run = s.start();
    s.decide("approve", &run, "bob").ok();
    assert_eq!(s.step_status(&run, "gate"), "succeeded");
    let original = std::fs::read_to_string(&s.file).unwrap();
    std::fs::write(&s.file, original.replace("promote-v1", "promote-v2")).unwrap();

    let log = s.dir.path().join("agent.log");
    let _agent = s.drctl.serve_logged(&["serve"], &log);
    // Through the agent, an unsigned change is refused as in the foreground.
    s.drctl(&["resume", &run, "--allow-changed-workflow", "--as", "alice"])
        .refused("--key", "an unsigned change through the agent");
    assert_eq!(s.ledger(), "");
    // Signed with the resumer's key, the agent records the change and runs the new version.
    s.as_(&["resume", &run, "--allow-changed-workflow"], "alice")
        .ok();
    assert_eq!(s.ledger(), "promote-v2\n");
    let status = s.status(&run);
    let versions = status["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{status}");
    assert_eq!(versions[1]["signed"], true);
    assert_eq!(versions[1]["by"], "alice");
}

/// Waits until `done`, for at most `seconds`.
#[track_caller]
fn wait_for(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn guarantee_an_agent_taking_over_a_changed_run_drives_the_changed_version() {
    let s = Scene::new(
        false,
        1,
        &format!(
            "{}\n[[steps]]\nid = \"hold\"\naction = \"wait\"\nneeds = [\"one\"]\nwith = {{ duration = \"2s\" }}\n{}",
            appends("one", "one-v1", "needs = [\"gate\"]\n"),
            appends("two", "two-v1", "needs = [\"hold\"]\n"),
        ),
    );
    let run = s.start();
    let original = std::fs::read_to_string(&s.file).unwrap();
    std::fs::write(&s.file, original.replace("-v1", "-v2")).unwrap();
    let serve = |name: &str| {
        let log = s.dir.path().join(format!("{name}.log"));
        s.drctl.serve_logged(&["serve"], &log)
    };
    s.decide("approve", &run, "bob").ok();
    let mut first = serve("agent-a");
    let _follower = s
        .drctl
        .spawn(&["resume", &run, "--allow-changed-workflow", "--as", "alice"]);
    wait_for(10, "step one recorded", || {
        s.step_status(&run, "one") == "succeeded"
    });
    // The agent dies; the file goes back to what the run started with. The next agent
    // drives what the run was changed to, from its journal.
    first.kill();
    std::fs::write(&s.file, &original).unwrap();
    let _next = serve("agent-b");
    wait_for(20, "the run to end", || {
        s.status(&run)["status"] == "succeeded"
    });
    assert_eq!(s.ledger(), "one-v2\ntwo-v2\n");
    let status = s.status(&run);
    assert_eq!(
        status["versions"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
}
