//! Every transition of the state machine, driven by hand: inputs in, events out.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use std::sync::Arc;
use std::time::Duration;

use super::schedule::backoff_ms;
use crate::actions::Registry;
use crate::check::check_source;
use crate::diagnostic::SourceFile;
use crate::engine::{Decision, Event};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap()
}

fn compile(text: &str) -> Arc<CompiledWorkflow> {
    let checked = check_source(SourceFile::new("t.toml", text), &Registry::builtin(), &[]);
    let rendered = crate::diagnostic::render_text(&checked.source, &checked.diagnostics, false);
    Arc::new(checked.workflow.unwrap_or_else(|| panic!("{rendered}")))
}

const HEADER: &str = "[workflow]\nname = \"t\"\nkind = \"failover\"\n";

fn wf(extra: &str, steps: &str) -> Arc<CompiledWorkflow> {
    compile(&format!("{HEADER}{extra}\n{steps}"))
}

/// Takes an input, like the driver does, and checks the incremental tally against a count
/// from scratch.
fn step(m: &mut Machine, input: Input) -> Vec<Event> {
    let events = m.advance(input, t0()).expect("input taken");
    assert!(m.tally_consistent(), "the tally drifted from the steps");
    events
}

fn started(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

fn ok(step_id: &str, attempt: u32) -> Input {
    Input::Finished {
        step: step_id.into(),
        attempt,
        result: Ok(Outputs::new()),
    }
}

/// A compensation of `step_id` that ended well.
fn undone(step_id: &str) -> Input {
    Input::CompensationFinished {
        step: step_id.into(),
        result: Ok(()),
    }
}

/// The last of `events` finishes the run as `status`.
fn ended_as(events: &[Event], status: RunStatus) {
    assert_eq!(events.last(), Some(&Event::RunFinished { status }));
}

fn fail(step_id: &str, attempt: u32, retryable: bool) -> Input {
    let failure = if retryable {
        Failure::NoEffect
    } else {
        Failure::Fatal
    };
    Input::Finished {
        step: step_id.into(),
        attempt,
        result: Err(("boom".into(), failure)),
    }
}

const CHAIN: &str = r#"
[[steps]]
id = "a"
action = "noop"

[[steps]]
id = "b"
action = "noop"
needs = ["a"]
"#;

#[test]
fn start_runs_the_roots_then_dependants_then_finishes() {
    let w = wf("", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    assert_eq!(started(&step(&mut m, Input::Start)), ["a"]);
    assert_eq!(m.status(), RunStatus::Running);
    let events = step(&mut m, ok("a", 1));
    assert!(matches!(events[0], Event::StepSucceeded { .. }));
    assert_eq!(started(&events), ["b"]);
    let events = step(&mut m, ok("b", 1));
    ended_as(&events, RunStatus::Succeeded);
    assert_eq!(m.status(), RunStatus::Succeeded);
}

#[test]
fn concurrency_limits_how_many_start() {
    let steps = (0..5).fold(String::new(), |mut s, i| {
        s.push_str(&format!("[[steps]]\nid = \"s{i}\"\naction = \"noop\"\n"));
        s
    });
    let w = wf("concurrency = 2", &steps);
    let mut m = Machine::new(Arc::clone(&w), "op");
    assert_eq!(started(&step(&mut m, Input::Start)).len(), 2);
    assert_eq!(started(&step(&mut m, ok("s0", 1))), ["s2"]);
}

#[test]
fn retryable_failures_retry_with_backoff_until_attempts_run_out() {
    let w = wf(
        "[defaults]\nretry = { attempts = 2, initial = \"1s\", max = \"4s\" }\n",
        CHAIN,
    );
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(&mut m, fail("a", 1, true));
    let Event::StepFailed {
        retry_in_ms: Some(ms),
        ..
    } = events[0]
    else {
        panic!("{events:?}")
    };
    assert!((500..=1000).contains(&ms), "{ms}");
    assert_eq!(m.status(), RunStatus::Running);
    assert_eq!(
        started(&step(&mut m, Input::RetryDue { step: "a".into() })),
        ["a"]
    );
    assert_eq!(m.step("a").unwrap().attempt, 2);
    let events = step(&mut m, fail("a", 2, true));
    assert!(matches!(
        events[0],
        Event::StepFailed {
            retry_in_ms: None,
            ..
        }
    ));
    assert!(
        matches!(events.last(), Some(Event::RunPaused { .. })),
        "on_failure defaults to pause"
    );
}

#[test]
fn fatal_failures_do_not_retry() {
    let w = wf("[defaults]\nretry = { attempts = 5 }\n", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(&mut m, fail("a", 1, false));
    assert!(matches!(
        events[0],
        Event::StepFailed {
            retry_in_ms: None,
            ..
        }
    ));
    assert_eq!(m.status(), RunStatus::Paused);
}

#[test]
fn on_failure_abort_ends_the_run_failed() {
    let w = wf("on_failure = \"abort\"", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, fail("a", 1, false));
    assert_eq!(m.status(), RunStatus::Failed);
}

/// Step `a`, which can be undone, then `b`.
const UNDOABLE_THEN_B: &str = r#"
[[steps]]
id = "a"
action = "noop"
rollback = { action = "noop" }

[[steps]]
id = "b"
action = "noop"
needs = ["a"]
"#;

#[test]
fn on_failure_rollback_compensates_at_once() {
    let w = wf("on_failure = \"rollback\"", UNDOABLE_THEN_B);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, ok("a", 1));
    let events = step(&mut m, fail("b", 1, false));
    assert!(events.contains(&Event::RollbackStarted {
        by: "on_failure".into()
    }));
    assert!(events.contains(&Event::CompensationStarted { step: "a".into() }));
    let events = step(&mut m, undone("a"));
    ended_as(&events, RunStatus::RolledBack);
}

/// A step whose action this build lacks ran nothing: the run pauses for an operator, even
/// when the workflow would roll back on a failure.
#[test]
fn a_missing_action_pauses_the_run_whatever_on_failure_says() {
    let w = wf("on_failure = \"rollback\"", UNDOABLE_THEN_B);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, ok("a", 1));
    let missing = Input::Finished {
        step: "b".into(),
        attempt: 1,
        result: Err(("this drctl has no action `noop`".into(), Failure::Missing)),
    };
    let events = step(&mut m, missing);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RollbackStarted { .. })),
        "{events:?}"
    );
    assert!(events.contains(&Event::RunPaused {
        reason: PauseReason::ActionMissing {
            step: "b".into(),
            error: "this drctl has no action `noop`".into(),
        }
    }));
    assert_eq!(m.status(), RunStatus::Paused);
    assert_eq!(m.step("a").unwrap().status, StepStatus::Succeeded);
}

#[test]
fn a_late_result_of_an_old_attempt_is_ignored() {
    let w = wf("[defaults]\nretry = { attempts = 3 }\n", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, fail("a", 1, true));
    step(&mut m, Input::RetryDue { step: "a".into() });
    assert!(step(&mut m, ok("a", 1)).is_empty());
    assert_eq!(m.step("a").unwrap().status, StepStatus::Running);
}

pub(super) const APPROVAL: &str = r#"
[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["alice", "bob", "carol"], quorum = 2, timeout = "30m" }

[[steps]]
id = "go"
action = "noop"
needs = ["gate"]
"#;

fn vote(by: &str, decision: Decision) -> Input {
    Input::Vote {
        step: "gate".into(),
        by: by.into(),
        decision,
        comment: Some("ok".into()),
    }
}

#[test]
fn approvals_need_a_quorum_of_distinct_allowed_approvers() {
    let w = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&w), "alice");
    step(&mut m, Input::Start);
    assert_eq!(m.status(), RunStatus::AwaitingApproval);
    assert!(
        m.decide(vote("alice", Decision::Approve), t0())
            .unwrap_err()
            .0
            .contains("started this run")
    );
    assert!(
        m.decide(vote("mallory", Decision::Approve), t0())
            .unwrap_err()
            .0
            .contains("not an approver")
    );
    let events = step(&mut m, vote("bob", Decision::Approve));
    assert_eq!(events.len(), 1, "one approval of two: still waiting");
    assert!(
        m.decide(vote("bob", Decision::Approve), t0())
            .unwrap_err()
            .0
            .contains("already decided")
    );
    let events = step(&mut m, vote("carol", Decision::Approve));
    assert!(
        matches!(&events[1], Event::StepSucceeded { outputs, .. } if outputs["approved_by"] == serde_json::json!(["bob", "carol"]))
    );
    assert_eq!(started(&events), ["go"]);
}

#[test]
fn one_rejection_ends_the_wait() {
    let w = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(&mut m, vote("bob", Decision::Reject));
    assert!(
        matches!(&events[1], Event::StepFailed { error, .. } if error.contains("rejected by bob"))
    );
    assert_eq!(m.status(), RunStatus::Paused);
}

#[test]
fn approval_timeout_follows_on_timeout() {
    let reject = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&reject), "op");
    step(&mut m, Input::Start);
    step(
        &mut m,
        Input::ApprovalTimeout {
            step: "gate".into(),
        },
    );
    assert_eq!(m.step("gate").unwrap().status, StepStatus::Failed);

    let approve = wf(
        "",
        &APPROVAL.replace(
            "timeout = \"30m\"",
            "timeout = \"30m\", on_timeout = \"approve\"",
        ),
    );
    let mut m = Machine::new(Arc::clone(&approve), "op");
    step(&mut m, Input::Start);
    let events = step(
        &mut m,
        Input::ApprovalTimeout {
            step: "gate".into(),
        },
    );
    assert_eq!(started(&events), ["go"]);
}

#[test]
fn self_approval_when_allowed() {
    let w = wf(
        "",
        &APPROVAL.replace("quorum = 2,", "quorum = 1, allow_self_approval = true,"),
    );
    let mut m = Machine::new(Arc::clone(&w), "alice");
    step(&mut m, Input::Start);
    step(&mut m, vote("alice", Decision::Approve));
    assert_eq!(m.step("gate").unwrap().status, StepStatus::Succeeded);
}

#[test]
fn votes_on_a_step_not_waiting_are_refused() {
    let w = wf("", APPROVAL);
    let m = Machine::new(Arc::clone(&w), "op");
    assert!(
        m.decide(vote("bob", Decision::Approve), t0())
            .unwrap_err()
            .0
            .contains("not waiting")
    );
}

const SHELLS: &str = r#"
[[steps]]
id = "safe"
action = "shell"
with = { argv = ["true"] }
idempotent = true

[[steps]]
id = "risky"
action = "shell"
with = { argv = ["true"] }
"#;

#[test]
fn after_a_crash_idempotent_steps_rerun_and_others_pause() {
    let w = wf("", SHELLS);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(&mut m, Input::Interrupted);
    assert_eq!(events.len(), 2);
    assert_eq!(m.step("safe").unwrap().status, StepStatus::Unknown);
    let events = step(&mut m, Input::Recover);
    assert_eq!(started(&events), ["safe"]);
    assert_eq!(m.step("safe").unwrap().attempt, 2);
    assert!(
        matches!(events.last(), Some(Event::RunPaused { reason }) if reason.describe("RUN").contains("`risky`"))
    );
}

#[test]
fn the_operator_decides_unknown_steps() {
    let w = wf("", SHELLS);
    for (choice, expected) in [
        (Choice::MarkSucceeded, StepStatus::Succeeded),
        (Choice::Retry, StepStatus::Running),
        (Choice::Skip, StepStatus::Skipped),
    ] {
        let mut m = Machine::new(Arc::clone(&w), "op");
        step(&mut m, Input::Start);
        step(&mut m, ok("safe", 1));
        step(&mut m, Input::Interrupted);
        step(&mut m, Input::Recover);
        step(
            &mut m,
            Input::Resume {
                by: "op".into(),
                choices: vec![("risky".into(), choice)],
            },
        );
        assert_eq!(m.step("risky").unwrap().status, expected, "{choice:?}");
        assert!(m.paused.is_none());
    }
}

#[test]
fn resume_refuses_a_run_that_is_not_paused_and_choices_on_settled_steps() {
    let w = wf("", SHELLS);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    assert!(
        m.decide(
            Input::Resume {
                by: "op".into(),
                choices: vec![]
            },
            t0()
        )
        .is_err()
    );
    step(&mut m, ok("safe", 1));
    step(&mut m, Input::Cancel { by: "op".into() });
    let refused = m.decide(
        Input::Resume {
            by: "op".into(),
            choices: vec![("safe".into(), Choice::Retry)],
        },
        t0(),
    );
    assert!(refused.unwrap_err().0.contains("only unknown or failed"));
}

#[test]
fn cancel_stops_new_starts_and_resume_continues() {
    let w = wf("", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, Input::Cancel { by: "op".into() });
    assert_eq!(m.status(), RunStatus::Running, "a runs on until it ends");
    let events = step(&mut m, ok("a", 1));
    assert!(started(&events).is_empty());
    assert_eq!(m.status(), RunStatus::Cancelled);
    assert_eq!(
        started(&step(
            &mut m,
            Input::Resume {
                by: "op".into(),
                choices: vec![]
            }
        )),
        ["b"]
    );
}

#[test]
fn rollback_undoes_in_reverse_dependency_order_and_lists_what_it_cannot() {
    // root -> {left, right} -> join; right has no compensation and is irreversible.
    let steps = r#"
[[steps]]
id = "root"
action = "noop"
rollback = { action = "noop" }

[[steps]]
id = "left"
action = "noop"
needs = ["root"]
rollback = { action = "noop" }

[[steps]]
id = "right"
action = "shell"
needs = ["root"]
with = { argv = ["true"] }

[[steps]]
id = "join"
action = "noop"
needs = ["left", "right"]
rollback = { action = "noop" }
"#;
    let w = wf("", steps);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    for s in ["root", "left", "right", "join"] {
        step(&mut m, ok(s, 1));
    }
    assert_eq!(m.status(), RunStatus::Succeeded);
    let events = step(&mut m, Input::Rollback { by: "op".into() });
    let compensating = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::CompensationStarted { step } => Some(step.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(compensating(&events), ["join"]);
    let events = step(&mut m, undone("join"));
    assert!(events.contains(&Event::StepNotUndone {
        step: "right".into()
    }));
    assert_eq!(compensating(&events), ["left"]);
    let events = step(&mut m, undone("left"));
    assert_eq!(compensating(&events), ["root"]);
    let events = step(&mut m, undone("root"));
    ended_as(&events, RunStatus::RolledBack);
}

#[test]
fn a_failed_compensation_fails_the_rollback() {
    let steps = "[[steps]]\nid = \"a\"\naction = \"noop\"\nrollback = { action = \"noop\" }\n";
    let w = wf("", steps);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, ok("a", 1));
    step(&mut m, Input::Rollback { by: "op".into() });
    step(
        &mut m,
        Input::CompensationFinished {
            step: "a".into(),
            result: Err(("nope".into(), Failure::Fatal)),
        },
    );
    assert_eq!(m.status(), RunStatus::Failed);
}

#[test]
fn rollback_is_refused_while_steps_run() {
    let w = wf("", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    assert!(
        m.decide(Input::Rollback { by: "op".into() }, t0())
            .unwrap_err()
            .0
            .contains("still running")
    );
}

#[test]
fn replaying_the_events_rebuilds_the_same_state() {
    let w = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&w), "alice");
    let mut all = step(&mut m, Input::Start);
    all.extend(step(&mut m, vote("bob", Decision::Approve)));
    all.extend(step(&mut m, vote("carol", Decision::Approve)));
    let mut replayed = Machine::new(Arc::clone(&w), "alice");
    for e in &all {
        replayed.apply(e, t0());
    }
    assert_eq!(replayed.steps, m.steps);
    assert_eq!(replayed.status(), m.status());
}

#[test]
fn hold_records_without_starting_anything() {
    let w = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&w), "alice");
    step(&mut m, Input::Start);
    m.hold = true;
    step(&mut m, vote("bob", Decision::Approve));
    let events = step(&mut m, vote("carol", Decision::Approve));
    assert!(started(&events).is_empty());
    assert_eq!(m.step("go").unwrap().status, StepStatus::Pending);
}

#[test]
fn backoff_grows_and_is_capped() {
    let (i, max) = (Duration::from_secs(1), Duration::from_secs(8));
    for attempt in 1..10 {
        let ms = backoff_ms(i, max, attempt, "s");
        let base = (1000u64 << (attempt - 1)).min(8000);
        assert!(ms >= base / 2 && ms <= base, "attempt {attempt}: {ms}");
    }
}

const TIMED: &str = r#"
[[steps]]
id = "restore"
action = "noop"
estimate = "10m"

[[steps]]
id = "verify"
action = "noop"
needs = ["restore"]
estimate = "4m"
marks = "recovered"

[[steps]]
id = "announce"
action = "noop"
needs = ["verify"]
estimate = "1h"
"#;

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(minutes)
}

fn step_at(m: &mut Machine, input: Input, now: DateTime<Utc>) -> Vec<Event> {
    let events = m.decide(input, now).expect("input taken");
    for e in &events {
        m.apply(e, now);
    }
    events
}

fn rto_events(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RtoAtRisk { .. } => Some("at_risk"),
            Event::RtoBreached { .. } => Some("breached"),
            _ => None,
        })
        .collect()
}

fn started_run(w: &Arc<CompiledWorkflow>, incident_start: Option<DateTime<Utc>>) -> Machine {
    let mut m = Machine::new(Arc::clone(w), "op");
    let started = Event::RunStarted {
        workflow: "t".into(),
        mode: "drill".into(),
        initiator: "op".into(),
        digest: "d".into(),
        incident_start,
        allowed_signers: None,
        signature: None,
    };
    m.apply(&started, t0());
    m
}

#[test]
fn rto_at_risk_fires_once_when_the_projection_passes_the_objective() {
    // Objective 15m; critical path to recovery 10m + 4m = 14m: on track at the start.
    let w = wf("rto = \"15m\"", TIMED);
    let mut m = started_run(&w, None);
    assert!(rto_events(&step_at(&mut m, Input::Start, at(0))).is_empty());
    // At 9m the restore (10m estimate) still has 1m left: projected 14m.
    assert!(rto_events(&step_at(&mut m, Input::Tick, at(9))).is_empty());
    // It runs late: at 12m it is done, verify's 4m remain: projected 16m > 15m.
    let events = step_at(&mut m, ok("restore", 1), at(12));
    assert_eq!(rto_events(&events), ["at_risk"]);
    assert!(
        matches!(events.iter().find(|e| matches!(e, Event::RtoAtRisk { .. })), Some(Event::RtoAtRisk { projected_seconds, .. }) if (*projected_seconds - 960.0).abs() < 1e-6)
    );
    // Once only.
    assert!(rto_events(&step_at(&mut m, Input::Tick, at(13))).is_empty());
    // The objective itself passes at 15m: breached, once.
    assert!(
        rto_events(&step_at(&mut m, Input::Tick, at(15))).is_empty(),
        "at exactly the objective it is not yet breached"
    );
    assert_eq!(
        rto_events(&step_at(&mut m, Input::Tick, at(16))),
        ["breached"]
    );
    assert!(rto_events(&step_at(&mut m, Input::Tick, at(17))).is_empty());
}

#[test]
fn the_clock_starts_at_the_incident_and_stops_at_recovery() {
    // The outage began 10 minutes before the run: the 14m path projects 24m > 15m at once.
    let w = wf("rto = \"15m\"", TIMED);
    let mut m = started_run(&w, Some(at(-10)));
    assert_eq!(
        rto_events(&step_at(&mut m, Input::Start, at(0))),
        ["at_risk"]
    );
    assert_eq!(
        m.projection(at(0)).unwrap().elapsed,
        Duration::from_mins(10)
    );

    // Recovered in time: no breach afterwards, even though `announce` takes an hour.
    let w2 = wf("rto = \"15m\"", TIMED);
    let mut m2 = started_run(&w2, None);
    step_at(&mut m2, Input::Start, at(0));
    step_at(&mut m2, ok("restore", 1), at(9));
    step_at(&mut m2, ok("verify", 1), at(13));
    assert!(m2.recovered());
    assert!(rto_events(&step_at(&mut m2, Input::Tick, at(40))).is_empty());
}

#[test]
fn approval_waits_count_toward_the_projection() {
    let steps = r#"
[[steps]]
id = "gate"
action = "approval"
with = { approvers = ["bob"], timeout = "1h" }
estimate = "5m"

[[steps]]
id = "fix"
action = "noop"
needs = ["gate"]
estimate = "5m"
marks = "recovered"
"#;
    let w = wf("rto = \"15m\"", steps);
    let mut m = started_run(&w, None);
    step_at(&mut m, Input::Start, at(0));
    // Nobody answers for 11 minutes: 11m elapsed + 5m of fixing = 16m.
    assert!(rto_events(&step_at(&mut m, Input::Tick, at(10))).is_empty());
    assert_eq!(
        rto_events(&step_at(&mut m, Input::Tick, at(11))),
        ["at_risk"]
    );
}

fn resume_with(by: &str, choices: &[(&str, Choice)]) -> Input {
    Input::Resume {
        by: by.into(),
        choices: choices.iter().map(|(s, c)| ((*s).into(), *c)).collect(),
    }
}

/// A run whose gate was rejected by carol, paused (`on_failure = "pause"`).
fn rejected_gate(w: &Arc<CompiledWorkflow>) -> Machine {
    let mut m = Machine::new(Arc::clone(w), "alice");
    step(&mut m, Input::Start);
    step(&mut m, vote("bob", Decision::Approve));
    step(&mut m, vote("carol", Decision::Reject));
    assert_eq!(m.status(), RunStatus::Paused);
    m
}

#[test]
fn guarantee_a_rejected_approval_cannot_be_skipped_or_marked_succeeded() {
    let w = wf("", APPROVAL);
    let m = rejected_gate(&w);
    for choice in [Choice::Skip, Choice::MarkSucceeded] {
        let refusal = m
            .decide(resume_with("alice", &[("gate", choice)]), t0())
            .unwrap_err();
        assert!(refusal.0.contains("final"), "{choice:?}: {refusal}");
    }
    // Nothing ran past the gate.
    assert_eq!(m.step("go").unwrap().status, StepStatus::Pending);
    // A timed-out approval (on_timeout = reject) is as final.
    let mut m = Machine::new(Arc::clone(&w), "alice");
    step(&mut m, Input::Start);
    step(
        &mut m,
        Input::ApprovalTimeout {
            step: "gate".into(),
        },
    );
    let refusal = m
        .decide(resume_with("alice", &[("gate", Choice::Skip)]), t0())
        .unwrap_err();
    assert!(refusal.0.contains("not given in time"), "{refusal}");
}

#[test]
fn guarantee_retrying_an_approval_voids_every_earlier_vote() {
    let w = wf("", APPROVAL);
    let mut m = rejected_gate(&w);
    let events = step(&mut m, resume_with("alice", &[("gate", Choice::Retry)]));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ApprovalRoundOpened { round: 2, voided, .. } if voided == &["bob", "carol"]
    )));
    assert_eq!(m.status(), RunStatus::AwaitingApproval);
    assert!(m.step("gate").unwrap().votes.is_empty());
    // bob's approval of the first round does not count: two fresh approvals are needed.
    step(&mut m, vote("bob", Decision::Approve));
    assert_eq!(m.step("go").unwrap().status, StepStatus::Pending);
    let events = step(&mut m, vote("carol", Decision::Approve));
    assert_eq!(started(&events), ["go"]);
}

#[test]
fn guarantee_votes_after_the_deadline_are_refused() {
    let w = wf("", APPROVAL);
    let mut m = Machine::new(Arc::clone(&w), "alice");
    step(&mut m, Input::Start);
    let late = t0() + chrono::Duration::minutes(31);
    let refusal = m.decide(vote("bob", Decision::Approve), late).unwrap_err();
    assert!(refusal.0.contains("deadline"), "{refusal}");
    assert!(m.decide(vote("bob", Decision::Approve), t0()).is_ok());
}

#[test]
fn guarantee_an_ambiguous_failure_of_a_step_that_is_not_idempotent_is_never_retried() {
    let w = wf(
        "[defaults]\nretry = { attempts = 3, initial = \"1s\", max = \"1s\" }\n",
        SHELLS,
    );
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let timed_out = |s: &str| Input::Finished {
        step: s.into(),
        attempt: 1,
        result: Err(("timed out after 1s".into(), Failure::Ambiguous)),
    };
    // The idempotent step is tried again; the other one's outcome is unknown and, with no
    // probe, the operator decides.
    let events = step(&mut m, timed_out("safe"));
    assert!(matches!(
        events[0],
        Event::StepFailed {
            retry_in_ms: Some(_),
            ..
        }
    ));
    let events = step(&mut m, timed_out("risky"));
    assert!(
        matches!(&events[0], Event::StepUnknown { error: Some(e), .. } if e.contains("timed out"))
    );
    assert_eq!(m.step("risky").unwrap().status, StepStatus::Unknown);
    assert!(
        matches!(events.last(), Some(Event::RunPaused { reason }) if reason.describe("RUN").contains("--step risky"))
    );
    assert!(started(&events).is_empty());
    // A failure proved to have changed nothing is retried as before.
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(
        &mut m,
        Input::Finished {
            step: "risky".into(),
            attempt: 1,
            result: Err(("throttled".into(), Failure::NoEffect)),
        },
    );
    assert!(matches!(
        events[0],
        Event::StepFailed {
            retry_in_ms: Some(_),
            ..
        }
    ));
}

#[test]
fn guarantee_an_ambiguous_failure_of_a_probed_action_goes_to_the_probe() {
    let w = wf(
        "",
        "[[steps]]\nid = \"promote\"\naction = \"rds.promote_read_replica\"\nwith = { db_instance = \"db\" }\n",
    );
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let events = step(
        &mut m,
        Input::Finished {
            step: "promote".into(),
            attempt: 1,
            result: Err(("connection reset".into(), Failure::Ambiguous)),
        },
    );
    assert!(events.contains(&Event::StepProbing {
        step: "promote".into(),
        attempt: 1
    }));
    let events = step(
        &mut m,
        Input::Probed {
            step: "promote".into(),
            probe: crate::actions::Probe::TookEffect(Outputs::new()),
        },
    );
    assert!(matches!(events[0], Event::StepSucceeded { attempt: 1, .. }));
}

#[test]
fn guarantee_the_first_recorded_previous_value_is_kept() {
    let w = wf("", CHAIN);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    let record = |attempt: u32, v: &str| Input::RecordPrevious {
        step: "a".into(),
        attempt,
        previous: serde_json::json!(v),
    };
    assert_eq!(step(&mut m, record(1, "primary")).len(), 1);
    // A second read (a re-run would read drctl's own write) records nothing.
    assert!(step(&mut m, record(1, "standby")).is_empty());
    assert_eq!(
        m.step("a").unwrap().previous,
        Some(serde_json::json!("primary"))
    );
    // An attempt that is no longer current may not record (nor go on to change anything).
    assert!(m.decide(record(7, "x"), t0()).is_err());
}

#[test]
fn guarantee_an_undo_that_finds_someone_elses_value_pauses_the_rollback() {
    let steps = "[[steps]]\nid = \"a\"\naction = \"noop\"\nrollback = { action = \"noop\" }\n";
    let w = wf("", steps);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, ok("a", 1));
    step(&mut m, Input::Rollback { by: "op".into() });
    let events = step(
        &mut m,
        Input::CompensationFinished {
            step: "a".into(),
            result: Err(("now X, drctl wrote Y".into(), Failure::Conflict)),
        },
    );
    assert!(
        matches!(events.last(), Some(Event::RunPaused { reason }) if reason.describe("RUN").contains("now X, drctl wrote Y"))
    );
    assert_eq!(m.status(), RunStatus::Paused);
    // The operator leaves their value: the step is listed as not undone and the rollback ends.
    let events = step(&mut m, resume_with("op", &[("a", Choice::Skip)]));
    assert!(events.contains(&Event::StepNotUndone { step: "a".into() }));
    assert_eq!(m.status(), RunStatus::RolledBack);
}

#[test]
fn a_resume_may_decide_several_steps_but_each_once() {
    let w = wf("", SHELLS);
    let mut m = Machine::new(Arc::clone(&w), "op");
    step(&mut m, Input::Start);
    step(&mut m, Input::Interrupted);
    step(&mut m, Input::Recover);
    step(&mut m, fail("safe", 2, false));
    let refusal = m
        .decide(
            resume_with("op", &[("risky", Choice::Skip), ("risky", Choice::Retry)]),
            t0(),
        )
        .unwrap_err();
    assert!(refusal.0.contains("more than once"), "{refusal}");
    let events = step(
        &mut m,
        resume_with(
            "op",
            &[("risky", Choice::MarkSucceeded), ("safe", Choice::Skip)],
        ),
    );
    assert_eq!(m.step("safe").unwrap().status, StepStatus::Skipped);
    assert!(!events.is_empty());
    assert_eq!(m.step("risky").unwrap().status, StepStatus::Succeeded);
}

/// The steps beside [`APPROVAL`]'s gate in [`gate_and_side`]: `side` (what an edit could turn
/// into the gated step) and `other`.
const SIDE: &str = r#"
[[steps]]
id = "side"
action = "noop"
idempotent = true

[[steps]]
id = "other"
action = "noop"
"#;

/// A gate every step past it waits for, and two steps beside it.
fn gate_and_side() -> Arc<CompiledWorkflow> {
    wf("", &format!("{APPROVAL}{SIDE}"))
}

fn change(to: &str, steps: &[&str]) -> Box<WorkflowChange> {
    Box::new(WorkflowChange {
        to_digest: to.into(),
        source: format!("# version {to}"),
        changed_steps: steps.iter().map(|s| (*s).to_string()).collect(),
        signature: None,
    })
}

fn resume_changed(by: &str, choices: &[(&str, Choice)], to: &str, steps: &[&str]) -> Input {
    Input::ResumeChanged {
        by: by.into(),
        choices: choices.iter().map(|(s, c)| ((*s).into(), *c)).collect(),
        change: change(to, steps),
    }
}

/// `side` and `other` failed, then carol rejected the gate: the run is paused.
fn rejected_beside(w: &Arc<CompiledWorkflow>) -> Machine {
    let mut m = started_run(w, None);
    assert_eq!(
        started(&step(&mut m, Input::Start)),
        ["gate", "side", "other"]
    );
    step(&mut m, fail("side", 1, false));
    step(&mut m, fail("other", 1, false));
    step(&mut m, vote("carol", Decision::Reject));
    assert_eq!(m.step("gate").unwrap().status, StepStatus::Failed);
    assert_eq!(m.status(), RunStatus::Paused);
    m
}

#[test]
fn guarantee_a_changed_step_may_not_run_while_a_gate_stands_rejected() {
    let w = gate_and_side();
    let mut m = rejected_beside(&w);
    // The change and the retry of the step it changed, in one resume: refused, nothing kept.
    let refusal = m
        .decide(
            resume_changed("alice", &[("side", Choice::Retry)], "d2", &["side"]),
            t0(),
        )
        .unwrap_err();
    assert!(
        refusal.0.contains("`side`") && refusal.0.contains("`gate`"),
        "{refusal}"
    );
    assert_eq!(m.digest, "d");
    // The change alone is journaled, and remembered: a later retry of `side` is refused too.
    let events = step(&mut m, resume_changed("alice", &[], "d2", &["side"]));
    assert!(matches!(
        &events[0],
        Event::WorkflowChanged { from_digest, to_digest, changed_steps, by, .. }
            if from_digest == "d" && to_digest == "d2" && changed_steps == &["side"] && by == "alice"
    ));
    assert_eq!(m.digest, "d2");
    assert!(started(&events).is_empty(), "{events:?}");
    let refusal = m
        .decide(resume_with("alice", &[("side", Choice::Retry)]), t0())
        .unwrap_err();
    assert!(refusal.0.contains("stands rejected"), "{refusal}");
    // A step the change did not touch may be retried; so may the gate (a new round).
    let events = m
        .decide(resume_with("alice", &[("other", Choice::Retry)]), t0())
        .unwrap();
    assert_eq!(started(&events), ["other"]);
    step(&mut m, resume_with("alice", &[("gate", Choice::Retry)]));
    assert_eq!(m.step("gate").unwrap().status, StepStatus::AwaitingApproval);
    // The gate asks again: it no longer stands rejected, the changed step may run.
    let events = step(&mut m, resume_with("alice", &[("side", Choice::Retry)]));
    assert_eq!(started(&events), ["side"]);
}

#[test]
fn guarantee_a_changed_step_is_not_restarted_after_a_crash_while_a_gate_stands_rejected() {
    let w = gate_and_side();
    let mut m = started_run(&w, None);
    step(&mut m, Input::Start);
    step(&mut m, ok("other", 1));
    step(&mut m, vote("carol", Decision::Reject));
    // The driver dies with `side` (idempotent) running; the run is taken up with a change.
    step(&mut m, Input::Interrupted);
    assert_eq!(m.step("side").unwrap().status, StepStatus::Unknown);
    step(&mut m, resume_changed("alice", &[], "d2", &["side"]));
    let events = step(&mut m, Input::Recover);
    assert!(started(&events).is_empty(), "{events:?}");
    assert_eq!(m.step("side").unwrap().status, StepStatus::Unknown);
    assert_eq!(m.status(), RunStatus::Paused);
    // Unchanged, the same idempotent step is run again at once.
    let mut m = started_run(&w, None);
    step(&mut m, Input::Start);
    step(&mut m, vote("carol", Decision::Reject));
    step(&mut m, Input::Interrupted);
    step(&mut m, resume_changed("alice", &[], "d2", &["other"]));
    assert_eq!(started(&step(&mut m, Input::Recover)), ["side"]);
}

#[test]
fn guarantee_votes_on_a_gate_that_has_not_passed_count_only_for_their_digest() {
    let w = wf("", APPROVAL);
    let mut m = started_run(&w, None);
    step(&mut m, Input::Start);
    let events = step(&mut m, vote("bob", Decision::Approve));
    assert!(matches!(&events[0], Event::ApprovalVoted { digest, .. } if digest == "d"));
    let mut journal = vec![events[0].clone()];
    // The workflow changes while the gate waits: bob's vote no longer counts.
    let events = step(&mut m, resume_changed("alice", &[], "d2", &["go"]));
    journal.extend(events);
    assert!(m.step("gate").unwrap().votes.is_empty());
    let events = step(&mut m, vote("carol", Decision::Approve));
    assert!(matches!(&events[0], Event::ApprovalVoted { digest, .. } if digest == "d2"));
    journal.extend(events.clone());
    assert_eq!(
        m.step("gate").unwrap().status,
        StepStatus::AwaitingApproval,
        "carol's vote and bob's of the old digest are not a quorum: {events:?}"
    );
    // bob is asked again, and his vote on what the run is now counts.
    let events = step(&mut m, vote("bob", Decision::Approve));
    assert_eq!(started(&events), ["go"]);
    // Replayed, the journal gives the same count; a vote recorded for the old digest after
    // the change does not count.
    let mut replayed = started_run(&w, None);
    replayed.apply(
        &Event::StepStarted {
            step: "gate".into(),
            attempt: 1,
        },
        t0(),
    );
    for event in &journal {
        replayed.apply(event, t0());
    }
    assert_eq!(replayed.digest, "d2");
    assert_eq!(replayed.step("gate").unwrap().votes.len(), 1);
    replayed.apply(
        &Event::ApprovalVoted {
            step: "gate".into(),
            by: "bob".into(),
            decision: Decision::Approve,
            comment: None,
            signature: None,
            fingerprint: None,
            digest: "d".into(),
        },
        t0(),
    );
    assert_eq!(replayed.step("gate").unwrap().votes.len(), 1);
}

#[test]
fn a_change_is_refused_when_it_changes_nothing_or_is_unsigned_with_allowed_signers() {
    let w = gate_and_side();
    let mut m = started_run(&w, None);
    step(&mut m, Input::Start);
    let refusal = m
        .decide(resume_changed("alice", &[], "d", &["side"]), t0())
        .unwrap_err();
    assert!(refusal.0.contains("nothing changed"), "{refusal}");
    m.signers = Some("alice ssh-ed25519 AAAA".into());
    let refusal = m
        .decide(resume_changed("alice", &[], "d2", &["side"]), t0())
        .unwrap_err();
    assert!(
        refusal.0.contains("--key") && refusal.0.contains("nothing was recorded"),
        "{refusal}"
    );
    assert_eq!(m.digest, "d");
}
