//! The run's projection: folded by the machine's own `apply`, the same entry by entry as from
//! the whole journal, and saying what its readers show.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::actions::Registry;
use crate::check::check_source;
use crate::diagnostic::SourceFile;
use crate::engine::{Decision, Event};
use crate::store::{GENESIS, JournalEntry};
use std::sync::Arc;

/// [`APPROVAL`](super::tests::APPROVAL)'s gate and step, the step with a compensation, and a
/// step after it.
fn workflow() -> Arc<CompiledWorkflow> {
    let gated = super::tests::APPROVAL.replace(
        "needs = [\"gate\"]",
        "needs = [\"gate\"]\nrollback = { action = \"noop\" }",
    );
    compile(&format!(
        "[workflow]\nname = \"t\"\nkind = \"failover\"\n{gated}\n[[steps]]\nid = \"after\"\naction = \"noop\"\nneeds = [\"go\"]\n"
    ))
}

fn compile(text: &str) -> Arc<CompiledWorkflow> {
    let checked = check_source(SourceFile::new("t.toml", text), &Registry::builtin(), &[]);
    Arc::new(checked.workflow.expect("the workflow compiles"))
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn vote(by: &str, decision: Decision) -> Input {
    Input::Vote {
        step: "gate".into(),
        by: by.into(),
        decision,
        comment: Some(format!("{by} says so")),
    }
}

fn finished(step: &str, attempt: u32, result: Result<Outputs, (String, Failure)>) -> Input {
    Input::Finished {
        step: step.into(),
        attempt,
        result,
    }
}

/// A run driven through a rejection, a second round, a failure, a pause, a cancel and a
/// rollback; every event with the time it was decided at, as the journal holds them.
fn drive(w: &Arc<CompiledWorkflow>) -> (Machine, Vec<(Event, DateTime<Utc>)>) {
    let mut m = Machine::new(Arc::clone(w), "op").projected();
    m.run_id = "r-1".into();
    let started = Event::RunStarted {
        workflow: "t".into(),
        mode: "drill".into(),
        initiator: "op".into(),
        digest: "v2:aa".into(),
        incident_start: None,
        allowed_signers: None,
        signature: None,
    };
    m.apply(&started, t(0));
    let mut journal = vec![(started, t(0))];
    let inputs = [
        Input::Start,
        vote("bob", Decision::Reject),
        Input::Resume {
            by: "op".into(),
            choices: vec![("gate".into(), Choice::Retry)],
        },
        vote("alice", Decision::Approve),
        vote("carol", Decision::Approve),
        finished("go", 1, Ok(Outputs::new())),
        finished("after", 1, Err(("boom".into(), Failure::Fatal))),
        Input::Cancel { by: "op".into() },
        Input::Rollback { by: "op".into() },
        Input::CompensationFinished {
            step: "go".into(),
            result: Ok(()),
        },
    ];
    for (n, input) in (1..).zip(inputs) {
        let now = t(n * 60);
        for event in m.advance(input, now).expect("input taken") {
            journal.push((event, now));
        }
    }
    (m, journal)
}

/// The journal's entries as the store holds them (the chain's hashes are not read here).
fn entries(journal: &[(Event, DateTime<Utc>)]) -> Vec<JournalEntry> {
    (0..)
        .zip(journal)
        .map(|(seq, (event, at))| JournalEntry {
            seq,
            at: crate::time::rfc3339(*at),
            event: serde_json::to_value(event).unwrap(),
            prev: GENESIS.into(),
            hash: String::new(),
        })
        .collect()
}

#[test]
fn entry_by_entry_is_the_projection_of_the_whole_journal() {
    let w = workflow();
    let (driven, journal) = drive(&w);
    let entries = entries(&journal);
    let whole = crate::engine::project("r-1", &entries, Some(Arc::clone(&w))).unwrap();
    assert_eq!(
        &whole,
        driven.run_projection().unwrap(),
        "the driver's own projection"
    );

    // A follower folds one entry at a time, and is at every point where a reader of the
    // journal up to there is.
    let mut follower = Machine::new(Arc::clone(&w), "op").projected();
    for (n, (event, at)) in journal.iter().enumerate() {
        follower.apply(event, *at);
        let read = crate::engine::project("r-1", &entries[..=n], Some(Arc::clone(&w))).unwrap();
        assert_eq!(follower.run_projection().unwrap(), &read, "after entry {n}");
    }
    assert_eq!(follower.into_run_projection().unwrap(), whole);
}

#[test]
fn it_says_what_happened_to_the_run_and_its_steps() {
    let w = workflow();
    let (m, _) = drive(&w);
    let p = m.run_projection().unwrap();
    assert_eq!((p.workflow.as_str(), p.mode.as_str()), ("t", "drill"));
    assert_eq!(p.initiator, "op");
    assert_eq!(p.started_at, Some(t(0)));
    assert_eq!(p.versions.len(), 1);
    for (spec, state) in w.steps.iter().zip(&m.steps) {
        assert_eq!(
            p.step(&spec.id).unwrap().status,
            state.status,
            "{}",
            spec.id
        );
        // The round a signed vote names, as a reader counts it, is the one the machine checks.
        assert_eq!(
            p.step(&spec.id).unwrap().round(),
            state.attempt,
            "{}",
            spec.id
        );
    }

    let gate = p.step("gate").unwrap();
    assert_eq!(gate.round(), 2, "asked again once");
    assert_eq!(gate.attempts.len(), 2);
    assert_eq!(gate.first_started_at, Some(t(60)));
    let voters: Vec<&str> = gate.votes.iter().map(|v| v.by.as_str()).collect();
    assert_eq!(voters, ["alice", "carol"], "the rejection was voided");
    let outcomes: Vec<(Option<&str>, Outcome)> = p
        .decisions
        .iter()
        .map(|d| (d.by.as_deref(), d.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some("bob"), Outcome::Reject),
            (Some("alice"), Outcome::Approve),
            (Some("carol"), Outcome::Approve)
        ]
    );

    let after = p.step("after").unwrap();
    assert_eq!(after.error.as_deref(), Some("boom"));
    assert_eq!(after.attempts[0].error.as_deref(), Some("boom"));
    assert_eq!(after.ended_at, after.attempts[0].ended_at);
    assert!(p.pauses.iter().any(|pause| pause.at == t(7 * 60)));
    assert_eq!(p.cancels.len(), 1);
    assert_eq!(p.rollback.as_ref().map(|r| r.at), Some(t(9 * 60)));
    let undone: Vec<&str> = p.compensations.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(undone, ["go"]);
    assert_eq!(p.pause, None, "the rollback took the run out of its pause");
    assert!(serde_json::to_value(p).is_ok(), "a page serves it as JSON");
}

#[test]
fn a_changed_workflow_voids_the_votes_of_undecided_approvals() {
    let w = workflow();
    let mut m = Machine::new(Arc::clone(&w), "op").projected();
    m.advance(Input::Start, t(0)).unwrap();
    m.advance(vote("bob", Decision::Approve), t(1)).unwrap();
    assert_eq!(
        m.run_projection()
            .unwrap()
            .step("gate")
            .unwrap()
            .votes
            .len(),
        1
    );
    let changed = Event::WorkflowChanged {
        from_digest: "v2:aa".into(),
        to_digest: "v2:bb".into(),
        source: "text".into(),
        changed_steps: vec!["go".into()],
        by: "op".into(),
        signature: None,
    };
    m.apply(&changed, t(2));
    let p = m.run_projection().unwrap();
    assert!(p.step("gate").unwrap().votes.is_empty());
    assert_eq!(p.versions[0].source.as_deref(), Some("text"));
    assert_eq!(p.versions[0].changed_steps, ["go"]);
}

#[test]
fn without_its_workflow_the_journal_still_names_its_steps() {
    let w = workflow();
    let (_, journal) = drive(&w);
    let p = crate::engine::project("r-1", &entries(&journal), None).unwrap();
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["gate", "go", "after"]);
    assert_eq!(p.step("gate").unwrap().votes.len(), 2);
    assert_eq!(
        p.step("go").unwrap().status,
        StepStatus::Pending,
        "no machine to say"
    );
}

#[test]
fn a_machine_that_drives_keeps_no_projection() {
    let w = workflow();
    let mut m = Machine::new(Arc::clone(&w), "op");
    m.advance(Input::Start, t(0)).unwrap();
    assert!(m.run_projection().is_none());
}
