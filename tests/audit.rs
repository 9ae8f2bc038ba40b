//! Evidence an auditor can trust, tried as a hostile operator would (SPEC §5.9, §5.10): the
//! evidence file edited with a text editor and re-signed with `ssh-keygen`-made keys, the store
//! written to directly, keys shared between approvers, votes backdated past an expired key.
//! Every one of these went through before the journal was replayed against the run's rules
//! and checked against signers the auditor names.

use std::path::Path;
use std::process::Command;

use drctl::identity::{Signed, Statement, StatementKind, format_time, sign};
use drctl::store::{Commit, JournalEntry, SledStore, Store, chain_hash};
use serde_json::{Value, json};

use crate::signed::{Keys, keygen};
use crate::support::Drctl;

/// A run of the signed workflow (quorum 2 of alice, bob, carol) started by alice, approved
/// by bob and carol, driven to its end by alice with her key; its evidence file written.
fn finished() -> (Keys, String, String) {
    let k = Keys::new();
    let run = k.start();
    for approver in ["bob", "carol"] {
        k.drctl(&[
            "approve",
            &run,
            "gate",
            "--as",
            approver,
            "--key",
            &k.key(approver),
        ])
        .ok();
    }
    k.resume(&run, &[]).ok();
    let evidence = k.path("evidence.json");
    k.drctl(&["report", &run, "--format", "evidence", "-o", &evidence])
        .ok();
    (k, run, evidence)
}

/// `drctl verify --evidence FILE --signers TRUSTED` from a directory of its own.
fn audit(k: &Keys, evidence: &Value) -> crate::support::Out {
    let file = k.path("edited.json");
    std::fs::write(&file, serde_json::to_string_pretty(evidence).unwrap()).unwrap();
    let trusted = k.path("approvers.allowed_signers");
    Drctl::new(k.dir.path().join("auditor")).run(&[
        "verify",
        "--evidence",
        &file,
        "--signers",
        &trusted,
    ])
}

fn read(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Recomputes the hash chain of an edited evidence file, its record's and its anchor's
/// end: what anyone can do, since the chain has no key.
fn rechain(evidence: &mut Value) {
    let mut prev = drctl::store::GENESIS.to_string();
    let journal = evidence["journal"].as_array_mut().unwrap();
    for (seq, entry) in journal.iter_mut().enumerate() {
        let seq = seq as u64;
        let hash = chain_hash(&prev, seq, entry["at"].as_str().unwrap(), &entry["event"]);
        entry["seq"] = json!(seq);
        entry["prev"] = json!(prev);
        entry["hash"] = json!(hash);
        prev = hash;
    }
    let len = journal.len();
    for place in ["run", "anchor"] {
        evidence[place]["journal_len"] = json!(len);
        evidence[place]["last_hash"] = json!(prev);
    }
}

fn refused(out: &crate::support::Out, why: &str, what: &str) {
    assert_eq!(out.code, 2, "{what} verified: {}", out.text());
    assert!(
        out.text().contains("NOT VERIFIED"),
        "{what}: {}",
        out.text()
    );
    assert!(out.text().contains(why), "{what}: {}", out.text());
}

#[test]
fn evidence_is_checked_on_another_machine_against_the_signers_the_auditor_trusts() {
    let (k, _, evidence) = finished();
    // Another machine: a directory holding only the binary, the file and the trusted signers,
    // an empty environment.
    let machine = tempfile::tempdir().unwrap();
    let binary = machine.path().join("drctl");
    std::fs::copy(env!("CARGO_BIN_EXE_drctl"), &binary).unwrap();
    std::fs::copy(&evidence, machine.path().join("evidence.json")).unwrap();
    std::fs::copy(
        k.path("approvers.allowed_signers"),
        machine.path().join("trusted.allowed_signers"),
    )
    .unwrap();
    let verify = |args: &[&str]| {
        // A binary just written may be briefly held open by a child another test forked
        // before it exec'd (it inherited the writing descriptor): exec then fails with
        // "text file busy" until that child has exec'd.
        let mut tries = 0;
        loop {
            match Command::new(&binary)
                .args(args)
                .current_dir(machine.path())
                .env_clear()
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        }
    };
    let o = verify(&[
        "verify",
        "--evidence",
        "evidence.json",
        "--signers",
        "trusted.allowed_signers",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("replayed: succeeded, started by alice"),
        "{text}"
    );
    assert!(
        text.contains("passed: `gate` approved by bob, carol"),
        "{text}"
    );
    assert!(
        text.contains("alice signed the journal up to entry"),
        "{text}"
    );
    // Without signers of their own, the auditor is told why the file's are not enough.
    let o = verify(&["verify", "--evidence", "evidence.json"]);
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("--signers"), "{text}");
    // Nothing was written beside them: no state directory appeared.
    let mut names: Vec<String> = std::fs::read_dir(machine.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["drctl", "evidence.json", "trusted.allowed_signers"]);
}

#[test]
fn a_complete_forgery_with_the_forgers_own_keys_does_not_verify() {
    let (k, _, evidence) = finished();
    keygen(k.dir.path(), "forger");
    let public = std::fs::read_to_string(k.path("forger.pub")).unwrap();
    let forger: Vec<&str> = public.split_whitespace().take(2).collect();
    let forger = forger.join(" ");
    let mut forged = read(&evidence);
    // One attacker key under every name, every statement re-signed with it, the chain
    // recomputed: the file is consistent with the signers it carries.
    let signers = format!("alice {forger}\nbob {forger}\ncarol {forger}\n");
    std::fs::write(k.path("forger.allowed_signers"), &signers).unwrap();
    forged["journal"][0]["event"]["allowed_signers"] = json!(signers);
    for entry in forged["journal"].as_array_mut().unwrap() {
        let Some(signature) = entry["event"].get_mut("signature") else {
            continue;
        };
        let signed: Signed = serde_json::from_value(signature.clone()).unwrap();
        let again = sign(signed.statement, Path::new(&k.path("forger"))).unwrap();
        *signature = serde_json::to_value(&again).unwrap();
        if let Some(fingerprint) = entry["event"].get_mut("fingerprint") {
            *fingerprint = json!(again.fingerprint().unwrap());
        }
    }
    rechain(&mut forged);
    let o = audit(&k, &forged);
    refused(
        &o,
        "not the ones you trust",
        "a forgery signed with the forger's keys",
    );
    // Checked against the signers the forger put in the file, it would still fail: one key
    // is one person, so it cannot make a quorum of two alone.
    let file = k.path("forged.json");
    std::fs::write(&file, serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let o = Drctl::new(k.dir.path().join("auditor")).run(&[
        "verify",
        "--evidence",
        &file,
        "--signers",
        &k.path("forger.allowed_signers"),
    ]);
    assert_eq!(o.code, 2, "{}", o.text());
}

#[test]
fn summary_fields_truncation_and_a_dropped_vote_are_found() {
    let (k, _, evidence) = finished();
    let original = read(&evidence);
    audit(&k, &original).ok();

    let mut edited = original.clone();
    edited["run"]["status"] = json!("rolled_back");
    refused(
        &audit(&k, &edited),
        "its journal replayed says `succeeded`",
        "run.status",
    );

    let mut edited = original.clone();
    edited["run"]["initiator"] = json!("dave");
    refused(
        &audit(&k, &edited),
        "says `dave` started it",
        "run.initiator",
    );

    let mut edited = original.clone();
    let source = edited["workflow_source"].as_str().unwrap().to_string();
    let changed = source.replace(
        "action = \"noop\"",
        "action = \"wait\"\nwith = { duration = \"1s\" }",
    );
    assert_ne!(changed, source);
    edited["workflow_source"] = json!(changed);
    refused(
        &audit(&k, &edited),
        "it is not what the run executed",
        "workflow_source",
    );

    // The last entries cut off, the record and the anchor made to agree.
    let mut edited = original.clone();
    let journal = edited["journal"].as_array_mut().unwrap();
    let keep = journal.len() - 2;
    journal.truncate(keep);
    rechain(&mut edited);
    refused(
        &audit(&k, &edited),
        "come after the last signature of the process that drove the run",
        "a journal cut short",
    );

    // One of the two votes of the quorum dropped, the chain recomputed.
    let mut edited = original;
    let journal = edited["journal"].as_array_mut().unwrap();
    let carol = journal
        .iter()
        .position(|e| e["event"]["type"] == "approval_voted" && e["event"]["by"] == "carol")
        .unwrap();
    journal.remove(carol);
    rechain(&mut edited);
    refused(
        &audit(&k, &edited),
        "passed with 1 approval(s) of distinct keys, its quorum is 2",
        "a dropped vote",
    );
}

/// Writes `signers` as the allowed-signers file and `workflow` as the workflow of `k`.
fn rewrite(k: &Keys, signers: &str, workflow: &str) {
    std::fs::write(k.path("approvers.allowed_signers"), signers).unwrap();
    std::fs::write(&k.file, workflow).unwrap();
}

fn public(k: &Keys, name: &str) -> String {
    let text = std::fs::read_to_string(k.path(&format!("{name}.pub"))).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

const GATED: &str = r#"
[workflow]
name = "signed-failover"
kind = "failover"
allowed_signers = "approvers.allowed_signers"

[[steps]]
id = "gate"
action = "approval"
with = { approvers = APPROVERS, quorum = QUORUM, timeout = "1h" }

[[steps]]
id = "promote"
action = "noop"
needs = ["gate"]
"#;

fn gated(approvers: &str, quorum: u32) -> String {
    GATED
        .replace("APPROVERS", approvers)
        .replace("QUORUM", &quorum.to_string())
}

#[test]
fn one_key_is_one_person_whatever_names_it_has() {
    let k = Keys::new();
    let file = k.file.display().to_string();
    let (alice, bob, carol) = (public(&k, "alice"), public(&k, "bob"), public(&k, "carol"));
    // The same key for two approvers of one gate: a copy-paste, or a shared team key.
    rewrite(
        &k,
        &format!("alice {alice}\nbob {bob}\ncarol {bob}\n"),
        &gated(r#"["bob", "carol"]"#, 2),
    );
    let o = k.drctl(&["validate", &file]);
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("DRC0026"), "{}", o.text());
    k.drctl(&["run", &file, "--as", "alice", "--key", &k.key("alice")])
        .refused(
            "one key is one person",
            "a run whose gate two names share one key",
        );
    // A pattern principal gives one key to every name it matches.
    rewrite(
        &k,
        &format!("alice {alice}\n\"bob,*-oncall\" {bob}\ncarol {carol}\n"),
        &gated(r#"["bob", "db-oncall"]"#, 2),
    );
    let o = k.drctl(&["validate", &file]);
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("`bob` and `db-oncall`"), "{}", o.text());
    // The initiator's key listed under an approver's name: not an approval of their own run.
    rewrite(
        &k,
        &format!("alice {alice}\nbob {bob}\ndave {alice}\n"),
        &gated(r#"["bob", "dave"]"#, 1),
    );
    k.drctl(&["validate", &file]).ok();
    let run = k.start();
    k.drctl(&[
        "approve",
        &run,
        "gate",
        "--as",
        "dave",
        "--key",
        &k.key("alice"),
    ])
    .refused("started this run", "the initiator's key under another name");
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "awaiting_approval", "{status}");
}

/// A journal entry appended to run `run` in the sled store of `k`, as someone with write
/// access to the store would (no drctl process holds it).
fn inject(k: &Keys, run: &str, events: &[Value]) {
    let store = SledStore::open(k.drctl.state()).unwrap();
    inject_into(&store, run, events);
}

/// Entries appended to run `run`'s journal in `store`, chained, its record moved on.
fn inject_into(store: &dyn Store, run: &str, events: &[Value]) {
    let mut record = store.run(run).unwrap().unwrap();
    let at = drctl::time::rfc3339(chrono::Utc::now());
    let mut journal = Vec::new();
    for event in events {
        let seq = record.journal_len;
        let hash = chain_hash(&record.last_hash, seq, &at, event);
        journal.push(JournalEntry {
            seq,
            at: at.clone(),
            event: event.clone(),
            prev: record.last_hash.clone(),
            hash: hash.clone(),
        });
        record.journal_len += 1;
        record.last_hash = hash;
    }
    let commit = Commit {
        run: Some(record),
        journal,
        ..Commit::default()
    };
    store.commit(run, &commit).unwrap();
}

/// Two unsigned approvals of the quorum-2 gate, and the gate passed.
fn forged_votes() -> Vec<Value> {
    let vote = |by: &str| {
        json!({"type": "approval_voted", "step": "gate", "by": by, "decision": "approve",
               "comment": null})
    };
    vec![
        vote("bob"),
        vote("carol"),
        json!({"type": "step_succeeded", "step": "gate", "attempt": 1,
               "outputs": {"approved_by": ["bob", "carol"]}}),
    ]
}

/// `run` was paused for what the store holds, its gated step never started, and a second
/// resume is refused outright.
fn never_driven_further(k: &Keys, drctl: &Drctl, run: &str) {
    let status = drctl.run(&["status", run, "--format", "json"]).ok().json();
    let promote = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "promote")
        .unwrap();
    assert_eq!(promote["status"], "pending", "{status}");
    assert_eq!(status["status"], "paused", "{status}");
    let why = status["paused_reason"].as_str().unwrap();
    assert!(why.contains("no signature"), "{why}");
    let key = k.key("alice");
    drctl
        .run(&["resume", run, "--as", "alice", "--key", &key])
        .refused("not driven further", "a resume of a tampered run");
}

#[test]
fn an_unsigned_vote_written_into_etcd_is_never_driven_further() {
    let cluster = crate::support::etcd::Cluster::start();
    let k = Keys::new();
    let drctl = k
        .drctl
        .clone()
        .env("DRCTL_STORE", cluster.url("drctl"))
        .arg("--lease")
        .arg("2s");
    let file = k.file.display().to_string();
    let key = k.key("alice");
    let o = drctl.run(&["run", &file, "--as", "alice", "--key", &key, "--detach"]);
    assert_eq!(o.code, 3, "{}", o.text());
    let run = o.run_id();
    // Someone with write access to the store's prefix, holding the run once its lease is gone.
    let store = drctl::store::EtcdStore::open(
        drctl::store::EtcdAddress::parse(&cluster.url("drctl")).unwrap(),
        std::time::Duration::from_secs(2),
        drctl::store::Owner {
            name: "mallory".into(),
            host: "elsewhere".into(),
            pid: std::process::id(),
            since: String::new(),
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.claim(&run).is_err() {
        assert!(std::time::Instant::now() < deadline, "the run stayed held");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    inject_into(&store, &run, &forged_votes());
    store.release(&run).unwrap();
    drop(store);
    let o = drctl.run(&["resume", &run, "--as", "alice", "--key", &key]);
    assert_ne!(o.code, 0, "{}", o.text());
    never_driven_further(&k, &drctl, &run);
}

#[test]
fn an_unsigned_vote_written_into_the_store_is_never_driven_further() {
    let k = Keys::new();
    let run = k.start();
    inject(&k, &run, &forged_votes());
    // Read, the run already shows its journal does not hold up.
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["journal"]["intact"], false, "{status}");
    let problem = status["journal"]["problem"].as_str().unwrap();
    assert!(problem.contains("entry 3: bob approved"), "{problem}");
    let o = k.resume(&run, &[]);
    assert_ne!(o.code, 0, "{}", o.text());
    never_driven_further(&k, &k.drctl, &run);
    // And verify names the entry.
    let o = k.drctl(&["verify", &run]);
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(o.text().contains("entry 3: bob approved"), "{}", o.text());
}

#[test]
fn a_vote_backdated_into_an_expired_keys_window_is_refused() {
    let k = Keys::new();
    let (alice, bob, carol) = (public(&k, "alice"), public(&k, "bob"), public(&k, "carol"));
    // bob's key expired yesterday.
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .format("%Y%m%d")
        .to_string();
    rewrite(
        &k,
        &format!("alice {alice}\nbob valid-before=\"{yesterday}\" {bob}\ncarol {carol}\n"),
        &gated(r#"["bob", "carol"]"#, 1),
    );
    let run = k.start();
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    let digest = status["digest"].as_str().unwrap().to_string();
    let signed_at = |name: &str, at: chrono::DateTime<chrono::Utc>, out: &str| {
        let statement = Statement {
            kind: StatementKind::Approve,
            run_id: run.clone(),
            step: Some("gate".into()),
            round: Some(1),
            name: name.into(),
            comment: None,
            digest: digest.clone(),
            at: format_time(at),
            head: None,
        };
        let signed = sign(statement, Path::new(&k.key(name))).unwrap();
        std::fs::write(k.path(out), signed.to_json()).unwrap();
        k.path(out)
    };
    // Signed "two days ago", inside the window bob's key had: judged when it arrives.
    let backdated = signed_at(
        "bob",
        chrono::Utc::now() - chrono::TimeDelta::days(2),
        "bob.json",
    );
    k.drctl(&["approve", "--signed", &backdated]).refused(
        "is not valid at",
        "a vote backdated into an expired key's window",
    );
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    assert_eq!(status["status"], "awaiting_approval", "{status}");
}

#[test]
fn a_vote_must_name_a_place_in_this_runs_journal() {
    let k = Keys::new();
    let run = k.start();
    let status = k.drctl(&["status", &run, "--format", "json"]).json();
    let statement = Statement {
        kind: StatementKind::Approve,
        run_id: run.clone(),
        step: Some("gate".into()),
        round: Some(1),
        name: "bob".into(),
        comment: None,
        digest: status["digest"].as_str().unwrap().to_string(),
        at: format_time(chrono::Utc::now()),
        head: Some(drctl::identity::Head {
            len: 1,
            hash: "0".repeat(64),
        }),
    };
    let signed = sign(statement, Path::new(&k.key("bob"))).unwrap();
    std::fs::write(k.path("bob.json"), signed.to_json()).unwrap();
    k.drctl(&["approve", "--signed", &k.path("bob.json")])
        .refused(
            "is not this journal",
            "a vote naming another journal's head",
        );
    // Signed by drctl, the head is the one the signer was shown.
    k.sign(&run, "bob", "bob", "shown.json").ok();
    let shown = std::fs::read_to_string(k.path("shown.json")).unwrap();
    assert!(shown.contains("\"head\""), "{shown}");
    k.drctl(&["approve", "--signed", &k.path("shown.json")])
        .ok();
}

#[test]
fn an_agent_signs_the_journals_of_the_runs_it_drives_with_its_own_key() {
    let k = Keys::new();
    keygen(k.dir.path(), "agent");
    let (alice, bob, carol, agent) = (
        public(&k, "alice"),
        public(&k, "bob"),
        public(&k, "carol"),
        public(&k, "agent"),
    );
    rewrite(
        &k,
        &format!(
            "alice {alice}\nbob {bob}\ncarol {carol}\nagent-1 namespaces=\"drctl-journal\" {agent}\n"
        ),
        &gated(r#"["bob", "carol"]"#, 1),
    );
    let log = k.path("agent.log");
    let serve = |args: &[&str]| k.drctl.serve_logged(args, Path::new(&log));
    let file = k.file.display().to_string();
    let start = || {
        k.drctl(&[
            "run",
            &file,
            "--as",
            "alice",
            "--key",
            &k.key("alice"),
            "--detach",
        ])
    };
    let finish = |run: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // The agent accepted the run; its gate opens a moment later.
        while k
            .drctl(&[
                "approve",
                run,
                "gate",
                "--as",
                "bob",
                "--key",
                &k.key("bob"),
            ])
            .code
            != 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never opened"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        loop {
            let status = k.drctl(&["status", run, "--format", "json"]).json();
            if status["status"] == "succeeded" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{status}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    // An agent without a key of its own drives a run it starts with the initiator's.
    let mut keyless = serve(&["serve"]);
    // Handed to an agent, --detach returns once the run is accepted.
    let o = start().ok();
    let run = o.run_id();
    finish(&run);
    let o = k.drctl(&["verify", &run]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("alice signed the journal"),
        "{}",
        o.text()
    );
    keyless.kill();
    // With its own key, the agent signs as itself.
    let _agent = serve(&["serve", "--name", "agent-1", "--key", &k.key("agent")]);
    // Handed to an agent, --detach returns once the run is accepted.
    let o = start().ok();
    let run = o.run_id();
    finish(&run);
    let o = k.drctl(&["verify", &run]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("agent-1 signed the journal"),
        "{}",
        o.text()
    );
}

#[test]
fn a_vote_signed_more_than_five_minutes_before_it_arrives_is_refused() {
    use drctl::engine::{Input, Machine};
    let k = Keys::new();
    let (alice, bob) = (public(&k, "alice"), public(&k, "bob"));
    let signers = format!("alice {alice}\nbob {bob}\n");
    let text = gated(r#"["bob"]"#, 1);
    let checked = drctl::check::check_source(
        drctl::diagnostic::SourceFile::new("gated.toml", text),
        &drctl::actions::Registry::builtin(),
        &[],
    );
    let mut workflow = checked.workflow.expect("the workflow compiles");
    workflow.signers = Some(signers.clone());
    let mut machine = Machine::new(std::sync::Arc::new(workflow), "alice");
    machine.run_id = "r-late".into();
    machine.digest = "v2:late".into();
    machine.signers = Some(signers);
    let opened = chrono::Utc::now();
    machine.advance(Input::Start, opened).unwrap();
    let signed_at = opened + chrono::TimeDelta::minutes(1);
    let statement = Statement {
        kind: StatementKind::Approve,
        run_id: "r-late".into(),
        step: Some("gate".into()),
        round: Some(1),
        name: "bob".into(),
        comment: None,
        digest: "v2:late".into(),
        at: format_time(signed_at),
        head: None,
    };
    let signed = serde_json::to_value(sign(statement, Path::new(&k.key("bob"))).unwrap()).unwrap();
    let vote = || Input::SignedVote {
        signed: signed.clone(),
    };
    // Received seven minutes after it was signed: refused, whatever the key's window.
    let late = machine
        .decide(vote(), signed_at + chrono::TimeDelta::minutes(7))
        .unwrap_err();
    assert!(late.0.contains("more than 5 minutes"), "{late}");
    // Received within five minutes: it counts.
    machine
        .advance(vote(), signed_at + chrono::TimeDelta::minutes(4))
        .unwrap();
    assert_eq!(
        machine.step("gate").unwrap().status,
        drctl::store::StepStatus::Succeeded
    );
}
