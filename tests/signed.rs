//! Signed approvals end to end (SPEC §5.9), with real keys made by `ssh-keygen`: who approved
//! is proven by a signature, not a typed name; a signed decision cannot be replayed onto
//! another run or round; the evidence of a run is checked from the store and from a file, and
//! any change to either is found.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::root;
use crate::support::{Drctl, Out};

const WORKFLOW: &str = r#"
[workflow]
name = "signed-failover"
kind = "failover"
allowed_signers = "approvers.allowed_signers"

[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["alice", "bob", "carol"], quorum = 2, timeout = "1h" }

[[steps]]
id = "promote"
action = "noop"
needs = ["gate"]
"#;

pub(crate) struct Keys {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) drctl: Drctl,
    pub(crate) file: PathBuf,
}

pub(crate) fn keygen(dir: &Path, name: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(dir.join(name))
        .status()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(status.success());
}

impl Keys {
    /// alice, bob and carol with keys; mallory with a key nobody trusts.
    pub(crate) fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let mut signers = String::new();
        for name in ["alice", "bob", "carol", "mallory"] {
            keygen(dir.path(), name);
            if name != "mallory" {
                let public =
                    std::fs::read_to_string(dir.path().join(format!("{name}.pub"))).unwrap();
                let key: Vec<&str> = public.split_whitespace().take(2).collect();
                signers.push_str(&format!("{name} {}\n", key.join(" ")));
            }
        }
        std::fs::write(dir.path().join("approvers.allowed_signers"), signers).unwrap();
        let file = dir.path().join("failover.toml");
        std::fs::write(&file, WORKFLOW).unwrap();
        Keys {
            drctl: Drctl::new(dir.path().join("state"))
                .current_dir(root())
                // The submitter of a signed file is nobody in particular.
                .env("USER", "submitter")
                .env_remove("SSH_AUTH_SOCK"),
            file,
            dir,
        }
    }

    pub(crate) fn key(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub(crate) fn drctl(&self, args: &[&str]) -> Out {
        self.drctl.run(args)
    }

    pub(crate) fn start(&self) -> String {
        let file = self.file.display().to_string();
        let o = self.drctl(&[
            "run",
            &file,
            "--as",
            "alice",
            "--key",
            &self.key("alice"),
            "--detach",
        ]);
        assert_eq!(o.code, 3, "{}", o.text());
        o.text().split_whitespace().nth(1).unwrap().to_string()
    }

    pub(crate) fn sign(&self, run: &str, name: &str, key: &str, out: &str) -> Out {
        self.drctl(&[
            "approve",
            run,
            "gate",
            "--as",
            name,
            "--key",
            &self.key(key),
            "--sign-only",
            "-o",
            &self.path(out),
        ])
    }

    /// `drctl resume RUN` by alice, who drives the run with her key (it signs the journal).
    pub(crate) fn resume(&self, run: &str, more: &[&str]) -> Out {
        let key = self.key("alice");
        let mut args = vec!["resume", run, "--as", "alice", "--key", &key];
        args.extend_from_slice(more);
        self.drctl(&args)
    }

    pub(crate) fn report(&self, run: &str) -> serde_json::Value {
        self.drctl(&["report", run, "--format", "json"]).json()
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, every refusal in turn")]
fn a_vote_counts_only_when_signed_by_the_key_of_the_approver_it_names() {
    let k = Keys::new();
    let file = k.file.display().to_string();
    // The start is signed too: without a key, or with someone else's, nothing starts.
    k.drctl(&["run", &file, "--as", "alice", "--detach"])
        .refused("--key", "an unsigned start");
    k.drctl(&[
        "run",
        &file,
        "--as",
        "alice",
        "--key",
        &k.key("bob"),
        "--detach",
    ])
    .refused("not alice's", "a start signed with bob's key");
    let run = k.start();

    k.drctl(&["approve", &run, "gate", "--as", "bob"])
        .refused("must be signed", "a typed name");
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "bob",
        "--key",
        &k.key("mallory"),
    ])
    .refused("not bob's", "mallory's key under bob's name");
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "mallory",
        "--key",
        &k.key("mallory"),
    ])
    .refused("mallory", "an unknown signer");
    // The initiator's identity is proven: alice may not approve her own run.
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "alice",
        "--key",
        &k.key("alice"),
    ])
    .refused("started this run", "self-approval");
    // One key cannot make a quorum of two under two names.
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "bob",
        "--key",
        &k.key("bob"),
    ])
    .ok();
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "carol",
        "--key",
        &k.key("bob"),
    ])
    .refused("not carol's", "bob's key under carol's name");
    let o = k.resume(&run, &["--detach"]);
    assert_eq!(o.code, 3, "one approval of two: {}", o.text());

    // A signed file altered after signing is refused, and nothing is recorded.
    k.sign(&run, "carol", "carol", "carol.json").ok();
    let text = std::fs::read_to_string(k.path("carol.json")).unwrap();
    let altered = text.replace("\"comment\": null", "\"comment\": \"sure\"");
    assert_ne!(altered, text, "the signed file names the comment");
    std::fs::write(k.path("forged.json"), altered).unwrap();
    k.drctl(&["approve", "--signed", &k.path("forged.json")])
        .refused("does not verify", "an altered signed decision");

    // Submitted by someone else entirely: the signature says carol decided.
    k.drctl(&["approve", "--signed", &k.path("carol.json")])
        .ok();
    let o = k.resume(&run, &[]);
    assert_eq!(o.code, 0, "{}", o.text());
    let report = k.report(&run);
    let approvals = report["approvals"].as_array().unwrap();
    let by: Vec<&str> = approvals
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["bob", "carol"], "{report}");
    assert!(!by.contains(&"submitter"));
    for a in approvals {
        assert!(
            a["verification"]
                .as_str()
                .unwrap()
                .starts_with("verified (SHA256:"),
            "{a}"
        );
    }
    let status = k.drctl(&["status", &run]);
    assert!(
        status
            .text()
            .contains("approve by carol, verified (SHA256:"),
        "{}",
        status.text()
    );

    let o = k.drctl(&["verify", &run]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("alice started the run"), "{}", o.text());
    assert!(
        o.text().contains("carol approved `gate` (round 1)"),
        "{}",
        o.text()
    );
}

#[test]
fn a_signed_decision_cannot_be_replayed_onto_another_run_or_round() {
    let k = Keys::new();
    let run = k.start();
    k.sign(&run, "bob", "bob", "bob-run1.json").ok();
    k.sign(&run, "carol", "carol", "carol-reject.json").ok();
    k.drctl(&[
        "reject",
        &run,
        "gate",
        "--as",
        "carol",
        "--key",
        &k.key("carol"),
        "--comment",
        "wait",
    ])
    .ok();
    // A new round: bob's approval signed for round 1 is stale.
    let o = k.drctl(&[
        "resume",
        &run,
        "--step",
        "gate",
        "--retry",
        "--detach",
        "--as",
        "alice",
        "--key",
        &k.key("alice"),
    ]);
    assert_eq!(o.code, 3, "{}", o.text());
    k.drctl(&["approve", "--signed", &k.path("bob-run1.json")])
        .refused("round 1", "an approval of an earlier round");
    // A second run: the first run's decision is for another run.
    k.drctl(&["cancel", &run, "--as", "alice"]).ok();
    let second = k.start();
    assert_ne!(second, run);
    let statement = std::fs::read_to_string(k.path("bob-run1.json")).unwrap();
    let moved = statement.replace(&run, &second);
    std::fs::write(k.path("bob-moved.json"), moved).unwrap();
    k.drctl(&["approve", "--signed", &k.path("bob-moved.json")])
        .refused("does not verify", "a statement edited to name another run");
    // Submitted as is to the second run's store: refused as for another run.
    let o = k.drctl(&["approve", "--signed", &k.path("bob-run1.json")]);
    assert_ne!(o.code, 0, "{}", o.text());
    let status = k.drctl(&["status", &second, "--format", "json"]);
    assert!(
        !status.text().contains("\"by\": \"bob\""),
        "{}",
        status.text()
    );
}

#[test]
fn evidence_is_checked_from_the_store_and_from_a_file_and_any_change_is_found() {
    let k = Keys::new();
    let run = k.start();
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "bob",
        "--key",
        &k.key("bob"),
    ])
    .ok();
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "carol",
        "--key",
        &k.key("carol"),
    ])
    .ok();
    k.resume(&run, &[]).ok();
    let evidence = k.path("evidence.json");
    k.drctl(&["report", &run, "--format", "evidence", "-o", &evidence])
        .ok();
    // Checked on a "machine" with no store: another, empty state directory.
    let elsewhere = Drctl::new(k.dir.path().join("elsewhere"));
    let trusted = k.path("approvers.allowed_signers");
    let check = |file: &str| elsewhere.run(&["verify", "--evidence", file, "--signers", &trusted]);
    check(&evidence).ok();
    // One byte changed anywhere that matters: the verdict is no.
    let bytes = std::fs::read(&evidence).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let at = text.find("\"by\": \"carol\"").unwrap() + "\"by\": \"".len();
    let mut changed = bytes;
    changed[at] = b'k';
    let altered = k.path("altered.json");
    std::fs::write(&altered, changed).unwrap();
    let o = check(&altered);
    assert_ne!(o.code, 0, "{}", o.stdout);

    // The store with its last commit removed: the journal is a valid prefix, but not all.
    let db = k.drctl.state().join("store");
    {
        let db = sled::open(&db).unwrap();
        let bundles = db.open_tree("bundles").unwrap();
        let (last, _) = bundles.scan_prefix(run.as_bytes()).last().unwrap().unwrap();
        bundles.remove(last).unwrap();
        db.flush().unwrap();
    }
    let o = k.drctl(&["verify", &run]);
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("not complete"), "{}", o.text());
}

#[test]
fn a_signed_approval_reaches_a_live_run() {
    let k = Keys::new();
    let file = k.file.display().to_string();
    let (mut live, run) = k
        .drctl
        .start(&["run", &file, "--as", "alice", "--key", &k.key("alice")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = k.drctl(&[
            "approve",
            &run,
            "gate",
            "--as",
            "bob",
            "--key",
            &k.key("bob"),
        ]);
        if o.code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", o.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    k.sign(&run, "carol", "carol", "carol.json").ok();
    k.drctl(&["approve", "--signed", &k.path("carol.json")])
        .ok();
    let code = live.exit_within(
        Duration::from_secs(20),
        "the run did not finish after two signed approvals",
    );
    assert_eq!(code, Some(0));
}

#[test]
fn without_allowed_signers_approvals_are_unverified_and_linted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.toml");
    std::fs::write(
        &file,
        WORKFLOW
            .replace("allowed_signers = \"approvers.allowed_signers\"\n", "")
            .replace("quorum = 2", "quorum = 1"),
    )
    .unwrap();
    let text = Drctl::new(dir.path().join("state"))
        .run(&["validate", file.to_str().unwrap()])
        .text();
    assert!(text.contains("DRW0006"), "{text}");
    assert!(text.contains("approvals are not authenticated"), "{text}");
}

#[test]
fn a_valid_signature_for_another_digest_or_step_is_refused() {
    let k = Keys::new();
    let run = k.start();
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    let digest = status["digest"].as_str().unwrap().to_string();
    let sign = |step: &str, digest: &str, round: &str, out: &str| {
        k.drctl(&[
            "approve",
            &run,
            step,
            "--as",
            "bob",
            "--key",
            &k.key("bob"),
            "--sign-only",
            "-o",
            &k.path(out),
            "--digest",
            digest,
            "--round",
            round,
        ])
    };
    // Bob really signed these, but not for what this run is waiting for.
    sign("gate", "0000000000000000", "1", "digest.json").ok();
    k.drctl(&["approve", "--signed", &k.path("digest.json")])
        .refused("digest", "a decision signed for another workflow digest");
    sign("promote", &digest, "0", "step.json").ok();
    k.drctl(&["approve", "--signed", &k.path("step.json")])
        .refused("not an approval", "a decision signed for another step");
    sign("gate", &digest, "2", "round.json").ok();
    k.drctl(&["approve", "--signed", &k.path("round.json")])
        .refused("round 2", "a decision signed for a round not open");
    // Nothing of it was recorded.
    let o = k.drctl(&["status", &run, "--format", "json"]);
    assert!(!o.text().contains("\"by\": \"bob\""), "{}", o.text());
}

#[test]
fn sign_only_writes_a_new_file_0600_and_never_through_a_link() {
    use std::os::unix::fs::PermissionsExt;

    let k = Keys::new();
    let run = k.start();
    k.sign(&run, "bob", "bob", "bob.json").ok();
    let mode = |name: &str| {
        std::fs::metadata(k.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("bob.json"), 0o600);
    // Not over an existing file without --force.
    let first = std::fs::read_to_string(k.path("bob.json")).unwrap();
    k.sign(&run, "bob", "bob", "bob.json")
        .refused("--force", "--sign-only over an existing file");
    assert_eq!(std::fs::read_to_string(k.path("bob.json")).unwrap(), first);
    // Never through a link, even with --force.
    std::fs::write(k.path("notes"), "keep me").unwrap();
    std::os::unix::fs::symlink(k.path("notes"), k.path("link.json")).unwrap();
    k.sign(&run, "bob", "bob", "link.json")
        .refused("symbolic link", "--sign-only through a link");
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "bob",
        "--key",
        &k.key("bob"),
        "--sign-only",
        "-o",
        &k.path("link.json"),
        "--force",
    ])
    .refused("symbolic link", "--sign-only --force through a link");
    assert_eq!(std::fs::read_to_string(k.path("notes")).unwrap(), "keep me");
    // The file written is a decision that counts.
    let bob = k.path("bob.json");
    k.drctl(&["approve", "--signed", &bob]).ok();
}

#[test]
fn a_rejection_needs_a_reason_typed_or_signed() {
    let k = Keys::new();
    let run = k.start();
    k.drctl(&["reject", &run, "gate", "--as", "bob"])
        .refused("needs a reason", "a typed rejection without --comment");
    // A rejection signed by bob's own key over a statement without a comment, written by
    // hand rather than by `drctl reject`, which asks for one.
    k.drctl(&[
        "reject",
        &run,
        "gate",
        "--as",
        "bob",
        "--key",
        &k.key("bob"),
        "--comment",
        "not yet",
        "--sign-only",
        "-o",
        &k.path("with-reason.json"),
    ])
    .ok();
    let signed: drctl::identity::Signed =
        serde_json::from_str(&std::fs::read_to_string(k.path("with-reason.json")).unwrap())
            .unwrap();
    let mut statement = signed.statement;
    statement.comment = None;
    let bare = drctl::identity::sign_with_agent(statement, Path::new(&k.key("bob")), None).unwrap();
    std::fs::write(k.path("no-reason.json"), bare.to_json()).unwrap();
    k.drctl(&["reject", "--signed", &k.path("no-reason.json")])
        .refused("needs a reason", "a signed rejection without a comment");
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "awaiting_approval", "{status}");
    // With its reason, the same signer's rejection is recorded.
    k.drctl(&["reject", "--signed", &k.path("with-reason.json")])
        .ok();
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["steps"][0]["status"], "failed", "{status}");
    assert_eq!(
        status["steps"][0]["error"], "rejected by bob: not yet",
        "{status}"
    );
}
