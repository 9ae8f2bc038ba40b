//! What the engine and crowd benchmarks both measure: runs started at once through a `drctl
//! serve` agent's own start path (no process, no socket), over sled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl::store::{RunStatus, SledStore, Store};

/// How long runs started at once took.
pub struct Started {
    /// Until the last run's start was durable.
    pub started: Duration,
    /// Until every run had finished.
    pub finished: Duration,
}

/// Starts `runs` runs at once on one agent, run `i` of the workflow `source(i)` (each of its
/// own workflow), and waits until all finished; every one must succeed.
pub fn runs_at_once(runs: usize, source: impl Fn(usize) -> String) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let services = drctl::engine::Services::new(drctl::aws::AwsContext::new(None));
    let (agent, router) = drctl::service::agent::Agent::new(
        (sled.clone(), services),
        Arc::new(|_| {}),
        runtime.handle().clone(),
        None,
    );
    let requests: Vec<drctl::control::StartRequest> = (0..runs)
        .map(|i| drctl::control::StartRequest {
            file: format!("/bench/run-{i}.toml"),
            source: source(i),
            overrides: vec![],
            mode: drctl::store::RunMode::Drill,
            initiator: "bench".into(),
            incident_start: None,
            key: None,
        })
        .collect();
    let began = Instant::now();
    std::thread::scope(|scope| {
        for request in requests {
            let agent = &agent;
            scope.spawn(move || agent.start_run(request).expect("started"));
        }
    });
    let started = began.elapsed();
    agent.wait();
    let finished = began.elapsed();
    drop(router);
    let succeeded = sled
        .runs()
        .unwrap()
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .count();
    assert_eq!(succeeded, runs, "every run of the agent succeeded");
    Started { started, finished }
}
