//! The engine's incremental bookkeeping against the plain rules: on random DAGs with random
//! outcomes (successes, retryable and fatal failures, approvals, operator skips), every
//! decision keeps the tally equal to a count from scratch, never starts a step before its
//! needs or beyond `concurrency`, and a replay of the journal lands in the same state. And the
//! driver's use of the store: results that arrive together are journaled in one commit, and a
//! commit that fails stops the driver before anything builds on the decision it lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use drctl::actions::{ExecContext, Failure, Registry};
use drctl::aws::AwsContext;
use drctl::check::check_source;
use drctl::dag::CompiledWorkflow;
use drctl::diagnostic::SourceFile;
use drctl::engine::{
    Choice, ControlRequest, Decision, Driver, EngineError, Event, Input, Machine, NewRun, Run,
    SystemClock, Until,
};
use drctl::store::{
    Commit, JournalEntry, MemoryStore, RunRecord, RunStatus, StepRecord, StepStatus, Store,
    StoreError,
};
use proptest::prelude::*;

/// A workflow of `needs.len()` steps; `approval[i]` makes step i an approval.
fn workflow_text(needs: &[Vec<usize>], approval: &[bool], concurrency: u32) -> String {
    let mut s = format!(
        "[workflow]\nname = \"random\"\nkind = \"failover\"\nconcurrency = {concurrency}\non_failure = \"pause\"\n\n"
    );
    for (i, deps) in needs.iter().enumerate() {
        s.push_str(&format!("[[steps]]\nid = \"s{i}\"\n"));
        if approval[i] {
            s.push_str(
                "action = \"approval\"\nwith = { approvers = [\"bob\"], timeout = \"1h\" }\n",
            );
        } else {
            s.push_str("action = \"noop\"\nretry = { attempts = 2, initial = \"1s\" }\n");
        }
        if !deps.is_empty() {
            let list: Vec<String> = deps.iter().map(|d| format!("\"s{d}\"")).collect();
            s.push_str(&format!("needs = [{}]\n", list.join(", ")));
        }
        s.push('\n');
    }
    s
}

fn compile(text: &str) -> Arc<CompiledWorkflow> {
    let checked = check_source(
        SourceFile::new("random.toml", text),
        &Registry::builtin(),
        &[],
    );
    Arc::new(checked.workflow.unwrap_or_else(|| panic!("valid:\n{text}")))
}

fn random_case() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<bool>, u32, Vec<u8>)> {
    (1usize..14).prop_flat_map(|n| {
        let needs = (0..n)
            .map(|i| {
                proptest::collection::btree_set(0..i.max(1), 0..=i.min(3))
                    .prop_map(move |s| s.into_iter().filter(|&d| d < i).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>();
        let approval = proptest::collection::vec(proptest::bool::weighted(0.15), n);
        let choices = proptest::collection::vec(any::<u8>(), 0..120);
        (needs, approval, 1u32..4, choices)
    })
}

/// Checks what an event may do given the state before it.
fn check_start(m: &Machine, w: &CompiledWorkflow, event: &Event) {
    if let Event::StepStarted { step, attempt: 1 } = event {
        let i = m.index(step).unwrap();
        for &d in &w.steps[i].needs {
            // No approval is bypassed: a gate is passed only by its approval.
            if w.steps[d].action == "approval" {
                assert_eq!(
                    m.steps[d].status,
                    StepStatus::Succeeded,
                    "`{step}` started past its approval `{}`",
                    w.steps[d].id
                );
            }
            assert!(
                matches!(
                    m.steps[d].status,
                    StepStatus::Succeeded | StepStatus::Skipped
                ),
                "`{step}` started before its need `{}`",
                w.steps[d].id
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn incremental_scheduling_keeps_the_rules((needs, approval, concurrency, choices) in random_case()) {
        let text = workflow_text(&needs, &approval, concurrency);
        let w = compile(&text);
        let now = chrono::Utc::now();
        let mut m = Machine::new(Arc::clone(&w), "alice");
        let mut journal: Vec<Event> = Vec::new();
        let take = |m: &mut Machine, input: Input, journal: &mut Vec<Event>| {
            let before = m.clone();
            let preview = m.decide(input.clone(), now);
            match m.advance(input, now) {
                Ok(events) => {
                    prop_assert_eq!(preview.as_ref().ok(), Some(&events), "decide previews advance");
                    let mut shadow = before;
                    for e in &events {
                        check_start(&shadow, &w, e);
                        shadow.apply(e, now);
                    }
                    journal.extend(events);
                }
                Err(_) => {
                    prop_assert!(preview.is_err());
                    prop_assert_eq!(&m.steps, &before.steps, "a refusal changes nothing");
                }
            }
            prop_assert!(m.tally_consistent(), "the tally drifted");
            let running = m.steps.iter().filter(|s| s.status == StepStatus::Running).count();
            prop_assert!(running <= concurrency as usize, "{running} running, limit {concurrency}");
            Ok(())
        };
        take(&mut m, Input::Start, &mut journal)?;
        for c in choices {
            let running: Vec<usize> = (0..m.steps.len())
                .filter(|&i| m.steps[i].status == StepStatus::Running)
                .collect();
            let waiting: Vec<usize> = (0..m.steps.len())
                .filter(|&i| m.steps[i].status == StepStatus::AwaitingApproval)
                .collect();
            let failed: Vec<usize> = (0..m.steps.len())
                .filter(|&i| m.steps[i].status == StepStatus::Failed)
                .collect();
            let pick = |v: &[usize]| v[usize::from(c) % v.len()];
            let input = if !failed.is_empty() && m.paused.is_some() {
                let i = pick(&failed);
                // Every choice, also those refused on a decided approval.
                let choice = [Choice::Retry, Choice::Skip, Choice::MarkSucceeded][usize::from(c) % 3];
                Input::Resume { by: "alice".into(), choices: vec![(w.steps[i].id.clone(), choice)] }
            } else if !waiting.is_empty() && c % 3 == 0 {
                let i = pick(&waiting);
                let decision = if c % 7 == 0 { Decision::Reject } else { Decision::Approve };
                Input::Vote { step: w.steps[i].id.clone(), by: "bob".into(), decision, comment: None }
            } else if !running.is_empty() {
                let i = pick(&running);
                let step = w.steps[i].id.clone();
                if m.steps[i].retry_pending {
                    Input::RetryDue { step }
                } else {
                    let attempt = m.steps[i].attempt;
                    let result = match c % 5 {
                        0 => Err(("flaky".to_string(), Failure::NoEffect)),
                        1 => Err(("broken".to_string(), Failure::Fatal)),
                        2 if c % 2 == 0 => Err(("timed out".to_string(), Failure::Ambiguous)),
                        _ => Ok(serde_json::Map::new()),
                    };
                    Input::Finished { step, attempt, result }
                }
            } else if !waiting.is_empty() {
                let i = pick(&waiting);
                Input::Vote { step: w.steps[i].id.clone(), by: "bob".into(), decision: Decision::Approve, comment: None }
            } else {
                // A refused or idle input: a vote by someone who is no approver.
                Input::Vote { step: "s0".into(), by: "mallory".into(), decision: Decision::Approve, comment: None }
            };
            take(&mut m, input, &mut journal)?;
        }
        // The journal replayed into a fresh machine is the same run.
        let mut replayed = Machine::new(Arc::clone(&w), "alice");
        for e in &journal {
            replayed.apply(e, now);
        }
        prop_assert_eq!(&replayed.steps, &m.steps);
        prop_assert_eq!(replayed.status(), m.status());
        prop_assert!(replayed.tally_consistent());
        if m.steps.iter().all(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped)) {
            prop_assert_eq!(m.status(), RunStatus::Succeeded);
        }
    }
}

/// A memory store that counts commits, can take its time over each as a disk would, and can
/// be made to fail them.
#[derive(Default)]
struct TestStore {
    inner: MemoryStore,
    delay: Duration,
    broken: AtomicBool,
    commits: AtomicUsize,
    events: AtomicUsize,
}

impl Store for TestStore {
    fn commit(&self, run_id: &str, commit: &Commit) -> Result<(), StoreError> {
        std::thread::sleep(self.delay);
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Io("disk full".into()));
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.events
            .fetch_add(commit.journal.len(), Ordering::SeqCst);
        self.inner.commit(run_id, commit)
    }
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id)
    }
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs()
    }
    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.inner.steps(run_id)
    }
    fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(run_id)
    }
    fn anchor(&self, run_id: &str) -> Result<Option<drctl::store::Anchor>, StoreError> {
        self.inner.anchor(run_id)
    }

    fn source(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.source(run_id)
    }

    fn commit_async<'a>(
        &'a self,
        run_id: &'a str,
        commit: &'a Commit,
    ) -> drctl::store::Committing<'a> {
        drctl::store::committed(self.commit(run_id, commit))
    }

    fn journal_from(&self, run_id: &str, from: u64) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal_from(run_id, from)
    }

    fn follow_journal(
        &self,
        run_id: &str,
        from: u64,
    ) -> Result<Box<dyn drctl::store::JournalFollower + '_>, StoreError> {
        self.inner.follow_journal(run_id, from)
    }

    fn shared(&self) -> Option<&dyn drctl::store::SharedStore> {
        None
    }
}

/// A new run of `w` on `store`, with a driver that reports to nobody.
fn driver(w: &Arc<CompiledWorkflow>, text: &str, store: Arc<dyn Store>) -> Driver {
    let new = NewRun {
        workflow: Arc::clone(w),
        workflow_file: "random.toml".into(),
        workflow_source: text.into(),
        overrides: vec![],
        mode: drctl::store::RunMode::Drill,
        initiator: "alice".into(),
        incident_start: None,
        key: None,
    };
    let run = Run::start(store, &new, &SystemClock).unwrap();
    let exec = ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::new(None)),
        incident_start: chrono::Utc::now(),
        previous: None,
        remember: None,
        processes: drctl::actions::processes::StepProcesses::default(),
    };
    Driver::new(
        run,
        &drctl::engine::Services::new(AwsContext::new(None)),
        exec,
        Box::new(|_, _, _| {}),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn results_that_arrive_together_share_one_commit() {
    let n = 40;
    let needs = vec![Vec::new(); n];
    let text = workflow_text(&needs, &vec![false; n], 64);
    let w = compile(&text);
    let store = Arc::new(TestStore {
        delay: Duration::from_millis(20),
        ..TestStore::default()
    });
    let mut driver = driver(&w, &text, store.clone());
    let status = runtime()
        .block_on(driver.drive(
            Input::Start,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        ))
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    let commits = store.commits.load(Ordering::SeqCst);
    // RunStarted, the 40 starts, then the results: the first one alone at most, the rest
    // together while that commit is on its way to the disk (and a few stragglers).
    assert!(
        commits <= 8,
        "{commits} commits for {n} parallel steps: results are not grouped"
    );
    let journal = store.journal(&driver.run.recorder.run.run_id).unwrap();
    assert_eq!(
        journal.len(),
        store.events.load(Ordering::SeqCst),
        "every event journaled"
    );
    assert_eq!(
        journal.len(),
        1 + 2 * n + 1,
        "started, succeeded per step, begun and finished"
    );
}

#[test]
fn a_vote_the_store_could_not_record_stops_the_driver() {
    let needs = vec![Vec::new(), vec![0]];
    let text = workflow_text(&needs, &[true, false], 2);
    let w = compile(&text);
    let store = Arc::new(TestStore::default());
    let mut driver = driver(&w, &text, store.clone());
    let run_id = driver.run.recorder.run.run_id.clone();
    let (control_tx, control_rx) = tokio::sync::mpsc::channel(4);
    let broken = store.clone();
    let (driven, answer) = runtime().block_on(async move {
        let voter = tokio::spawn(async move {
            // Let the run reach the approval, then lose the disk and vote.
            tokio::time::sleep(Duration::from_millis(200)).await;
            broken.broken.store(true, Ordering::SeqCst);
            let (reply, answer) = tokio::sync::oneshot::channel();
            let vote = Input::Vote {
                step: "s0".into(),
                by: "bob".into(),
                decision: Decision::Approve,
                comment: None,
            };
            control_tx
                .send(ControlRequest { input: vote, reply })
                .await
                .unwrap();
            answer.await.unwrap()
        });
        let driven = tokio::time::timeout(
            Duration::from_secs(10),
            driver.drive(
                Input::Start,
                Until::Done,
                Some(control_rx),
                Box::pin(std::future::pending()),
            ),
        )
        .await;
        (driven, voter.await.unwrap())
    });
    let driven = driven.expect("the driver stops instead of waiting on a decision it lost");
    assert!(matches!(driven, Err(EngineError::Store(_))), "{driven:?}");
    assert!(answer.unwrap_err().contains("disk full"));
    let journal = store.journal(&run_id).unwrap();
    assert!(
        journal
            .iter()
            .all(|e| e.event["type"] != "approval_voted" && e.event["type"] != "step_succeeded"),
        "nothing after the failed commit is journaled"
    );
}

#[test]
fn runs_started_in_the_same_second_never_share_an_id() {
    let text = workflow_text(&[Vec::new()], &[false], 1);
    let w = compile(&text);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for n in 0..2000 {
        // One unfinished run per workflow: each draw starts a run of its own workflow.
        let mut w = CompiledWorkflow::clone(&w);
        w.name = format!("random-{n}");
        let new = NewRun {
            workflow: Arc::new(w),
            workflow_file: "random.toml".into(),
            workflow_source: text.clone(),
            overrides: vec![],
            mode: drctl::store::RunMode::Drill,
            initiator: "test".into(),
            incident_start: None,
            key: None,
        };
        Run::start(store.clone(), &new, &SystemClock).unwrap();
    }
    // Ids carry 16 random bits per second: 2,000 draws in a second or two collide dozens of
    // times unless a taken id is drawn again.
    assert_eq!(store.runs().unwrap().len(), 2000, "a run overwrote another");
}

#[test]
fn the_recovery_clock_ticks_for_the_terminal_between_events() {
    let text = "[workflow]\nname = \"clocked\"\nkind = \"failover\"\nrto = \"15m\"\n\n[[steps]]\nid = \"drain\"\naction = \"wait\"\nwith = { duration = \"1500ms\" }\n";
    let w = compile(text);
    let mut driver = driver(&w, text, Arc::new(MemoryStore::new()));
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = ticks.clone();
    driver.on_tick(Box::new(move |_, machine| {
        assert!(machine.projection(chrono::Utc::now()).is_some());
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    let status = runtime()
        .block_on(driver.drive(
            Input::Start,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        ))
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    // One tick at the start, one a second later, while the only step waits and nothing is
    // journaled.
    assert!(ticks.load(Ordering::SeqCst) >= 2, "{ticks:?}");
}
