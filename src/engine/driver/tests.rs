//! The driver with a registry that lacks a step's action: the run pauses, it does not hang.

use std::sync::Arc;
use std::time::Duration;

use super::Driver;
use crate::actions::{ExecContext, Registry};
use crate::aws::AwsContext;
use crate::check::check_source;
use crate::diagnostic::SourceFile;
use crate::engine::{Input, NewRun, PauseReason, Run, Services, Until};
use crate::store::{MemoryStore, RunStatus, StepStatus, Store};

const WORKFLOW: &str = r#"
[workflow]
name = "missing"
kind = "failover"

[[steps]]
id = "first"
action = "noop"
"#;

fn exec() -> ExecContext {
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::new(None)),
        incident_start: chrono::Utc::now(),
        previous: None,
        remember: None,
        processes: crate::actions::processes::StepProcesses::default(),
    }
}

#[tokio::test]
async fn a_step_whose_action_is_missing_pauses_the_run_for_an_operator() {
    let workflow = check_source(
        SourceFile::new("missing.toml", WORKFLOW),
        &Registry::builtin(),
        &[],
    )
    .workflow
    .expect("valid");
    let workflow = Arc::new(workflow);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let services = Services::new(AwsContext::new(None));
    let new = NewRun {
        workflow: Arc::clone(&workflow),
        workflow_file: "missing.toml".into(),
        workflow_source: WORKFLOW.into(),
        overrides: vec![],
        mode: crate::store::RunMode::Drill,
        initiator: "alice".into(),
        incident_start: None,
        key: None,
    };
    let run = Run::start(store, &new, services.clock.as_ref()).unwrap();
    // This build's registry lacks the action the workflow was compiled with.
    let services = Services {
        registry: Arc::new(Registry::builtin().without("noop")),
        ..services
    };
    let mut driver = Driver::new(run, &services, exec(), Box::new(|_, _, _| {}));
    let driving = driver.drive(
        Input::Start,
        Until::Done,
        None,
        Box::pin(std::future::pending()),
    );
    let status = tokio::time::timeout(Duration::from_secs(10), driving)
        .await
        .expect("the run rests instead of waiting for an action that never runs")
        .unwrap();
    assert_eq!(status, RunStatus::Paused);
    let machine = &driver.run.machine;
    assert_eq!(machine.step("first").unwrap().status, StepStatus::Failed);
    match &machine.paused {
        Some(PauseReason::ActionMissing { step, error }) => {
            assert_eq!(step, "first");
            assert!(error.contains("no action `noop`"), "{error}");
        }
        other => panic!("paused for {other:?}"),
    }
}
