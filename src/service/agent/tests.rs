//! The agent's starts raced from many threads at once.

use std::sync::Barrier;

use crate::control::StartRequest;

fn request(workflow: &str) -> StartRequest {
    super::drill(
        workflow,
        "[[steps]]\nid = \"hold\"\naction = \"wait\"\nwith = { duration = \"2s\" }\n",
    )
}

/// Starts released at the same instant: of one workflow, exactly one run starts (the
/// others are refused as the workflow's run is unfinished); of different workflows, all.
#[test]
fn racing_starts_leave_one_run_per_workflow_and_start_different_workflows_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (agent, _router, store) = super::in_memory(&runtime);
    let race = |workflows: Vec<String>| -> Vec<bool> {
        let barrier = Barrier::new(workflows.len());
        std::thread::scope(|scope| {
            let racers: Vec<_> = workflows
                .iter()
                .map(|w| {
                    let (agent, barrier) = (&agent, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        agent.start_run(request(w)).is_ok()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        })
    };
    let same = race(vec!["contested".to_string(); 8]);
    assert_eq!(same.iter().filter(|&&ok| ok).count(), 1, "{same:?}");
    let different = race((0..8).map(|i| format!("team-{i}")).collect());
    assert!(different.iter().all(|&ok| ok), "{different:?}");
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 9, "{runs:?}");
    agent.wait();
}
