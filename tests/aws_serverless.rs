//! The serverless actions (`DynamoDB` backups and restores, Lambda invocations and aliases,
//! Step Functions executions) with the real SDK against the emulator, seeded as the serverless
//! drill seeds it (`scripts/seed-emulator.py serverless-restore`), asserting what AWS reports
//! through the SDK:
//! - the serverless restore: its plan shows the live values; its drill backs the damaged table
//!   up, restores it to a point in time into a new table (RPO from the restore point), checks
//!   it with a function, rolls the alias back and reconciles; its rollback puts the alias and
//!   the parameter back and deletes nothing it created;
//! - undo restores what was there (SPEC §5.8.3): an alias someone moved after drctl is left
//!   where they put it, and the rollback says so;
//! - at most once (§5.8.2): an invocation whose answer is lost is not sent again (unless the
//!   step is idempotent); a start of an execution whose driver is killed before it records it
//!   is found again on resume, not started twice;
//! - probes read back what a lost backup or restore did.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use drctl::actions::processes::{AttemptMark, StepProcesses};
use drctl::actions::{
    ExecContext, Failure, Outputs, PreviousRequest, Probe, Registry, Remember, Resolved, StepError,
};
use drctl::aws::{AwsContext, Clients};
use serde_json::{Value, json};

use crate::aws::{Moto, drctl_at, rt};
use crate::aws_guarantees::{Answer, SlowProxy};
use crate::harness::root;

const MACHINE: &str = "arn:aws:states:us-west-2:123456789012:stateMachine:tasks-reconcile";

/// Seeds the emulator as the serverless drill does; returns the restore time it prints, a
/// moment inside the tasks table's restorable window.
fn seed(moto: &Moto) -> String {
    let out = Command::new("python3")
        .arg(root().join("scripts/seed-emulator.py"))
        .arg(&moto.url)
        .arg("serverless-restore")
        .output()
        .expect("python3 runs the seed");
    assert!(
        out.status.success(),
        "the seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn context(config: &aws_config::SdkConfig, previous: Option<Value>) -> ExecContext {
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(Clients::from_config(config))),
        incident_start: Utc::now(),
        previous,
        remember: None,
        processes: StepProcesses::default(),
    }
}

fn map(v: &Value) -> Resolved {
    v.as_object().unwrap().clone()
}

fn execute(name: &str, args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let action = Registry::builtin().shared(name).unwrap();
    rt().block_on(action.execute(args, ctx))
}

fn probe(name: &str, args: &Resolved, ctx: &ExecContext) -> Probe {
    let action = Registry::builtin().shared(name).unwrap();
    rt().block_on(action.probe(args, ctx))
}

fn time(text: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// A table as `DynamoDB` describes it.
async fn table(
    config: &aws_config::SdkConfig,
    name: &str,
) -> Option<aws_sdk_dynamodb::types::TableDescription> {
    let out = aws_sdk_dynamodb::Client::new(config)
        .describe_table()
        .table_name(name)
        .send()
        .await
        .ok()?;
    out.table().cloned()
}

async fn items(config: &aws_config::SdkConfig, name: &str) -> i32 {
    aws_sdk_dynamodb::Client::new(config)
        .scan()
        .table_name(name)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap()
        .count()
}

#[test]
fn a_backup_and_its_restore_create_new_things_measure_rpo_and_probes_read_them_back() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let mut ctx = context(&config, None);

    // A backup: available, of the table, as AWS lists it.
    let backup = map(&json!({"table": "tasks", "backup_name": "tasks-before-fix"}));
    let out = execute("dynamodb.create_backup", &backup, &ctx).unwrap();
    let arn = out["backup_arn"].as_str().unwrap().to_string();
    let described = rt
        .block_on(
            aws_sdk_dynamodb::Client::new(&config)
                .describe_backup()
                .backup_arn(&arn)
                .send(),
        )
        .unwrap();
    let details = described
        .backup_description()
        .unwrap()
        .backup_details()
        .unwrap();
    assert_eq!(details.backup_name(), "tasks-before-fix");
    assert_eq!(details.backup_status().as_str(), "AVAILABLE");
    // The probe finds it by table and name; another name was never taken.
    assert_eq!(
        probe("dynamodb.create_backup", &backup, &ctx),
        Probe::TookEffect(out.clone())
    );
    let other = map(&json!({"table": "tasks", "backup_name": "tasks-never-taken"}));
    assert_eq!(probe("dynamodb.create_backup", &other, &ctx), Probe::DidNot);

    // A restore from it: a new table with the items, its RPO measured from the backup.
    let taken = time(&out["backup_time"]);
    ctx.incident_start = taken + chrono::Duration::seconds(90);
    let from_backup = map(&json!({"backup_arn": arn, "target_table": "tasks-from-backup"}));
    let restored = execute("dynamodb.restore_from_backup", &from_backup, &ctx).unwrap();
    assert_eq!(restored["backup_time"], out["backup_time"]);
    let rpo = restored["rpo_seconds"].as_f64().unwrap();
    assert!((rpo - 90.0).abs() < 0.01, "{rpo}");
    let t = rt.block_on(table(&config, "tasks-from-backup")).unwrap();
    assert_eq!(restored["table_arn"], json!(t.table_arn().unwrap()));
    assert_eq!(
        t.restore_summary().unwrap().source_backup_arn(),
        Some(arn.as_str())
    );
    assert_eq!(rt.block_on(items(&config, "tasks-from-backup")), 25);
    assert_eq!(
        probe("dynamodb.restore_from_backup", &from_backup, &ctx),
        Probe::TookEffect(restored.clone())
    );
    // Sent again, it is refused: a restore never overwrites a table.
    let again = execute("dynamodb.restore_from_backup", &from_backup, &ctx).unwrap_err();
    assert_eq!(again.failure, Failure::Fatal, "{again:?}");
    assert!(
        again.message.contains("tasks-from-backup"),
        "{}",
        again.message
    );
}

#[test]
fn point_in_time_restores_restore_the_moment_asked_for_within_the_window() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let restore_time = seed(&moto);
    let mut ctx = context(&config, None);

    // To a point in time: the moment asked for, and the RPO from it.
    let point: DateTime<Utc> = time(&json!(restore_time));
    ctx.incident_start = point + chrono::Duration::seconds(30);
    let pitr = map(&json!({
        "source_table": "tasks", "target_table": "tasks-restored", "restore_time": restore_time,
    }));
    let restored = execute("dynamodb.restore_point_in_time", &pitr, &ctx).unwrap();
    assert_eq!(time(&restored["restore_time"]), point);
    let rpo = restored["rpo_seconds"].as_f64().unwrap();
    assert!((rpo - 30.0).abs() < 0.01, "{rpo}");
    let t = rt.block_on(table(&config, "tasks-restored")).unwrap();
    assert_eq!(t.table_status().unwrap().as_str(), "ACTIVE");
    let source = rt.block_on(table(&config, "tasks")).unwrap();
    assert_eq!(
        t.restore_summary().unwrap().source_table_arn(),
        source.table_arn()
    );
    assert_eq!(
        probe("dynamodb.restore_point_in_time", &pitr, &ctx),
        Probe::TookEffect(restored.clone())
    );
    // A table restored from elsewhere (a backup) is not this step's: the operator decides.
    let backup = execute(
        "dynamodb.create_backup",
        &map(&json!({"table": "tasks", "backup_name": "tasks-before-fix"})),
        &ctx,
    )
    .unwrap();
    execute(
        "dynamodb.restore_from_backup",
        &map(&json!({"backup_arn": backup["backup_arn"], "target_table": "tasks-from-backup"})),
        &ctx,
    )
    .unwrap();
    let elsewhere = map(&json!({
        "source_table": "tasks", "target_table": "tasks-from-backup", "restore_time": restore_time,
    }));
    let Probe::Undecided(why) = probe("dynamodb.restore_point_in_time", &elsewhere, &ctx) else {
        panic!("a table restored from a backup is not a point-in-time restore of tasks");
    };
    assert!(why.contains("not from this step's source"), "{why}");

    // The latest restorable time, read before the request, is what it restores to.
    let latest = map(&json!({
        "source_table": "tasks", "target_table": "tasks-latest", "use_latest_restorable_time": true,
    }));
    let before = Utc::now();
    let restored = execute("dynamodb.restore_point_in_time", &latest, &ctx).unwrap();
    let at = time(&restored["restore_time"]);
    assert!(
        at >= before - chrono::Duration::seconds(1) && at <= Utc::now(),
        "{at}"
    );

    // Outside the window, or from a table without recovery: refused, nothing created.
    let too_early = map(&json!({
        "source_table": "tasks", "target_table": "tasks-too-early",
        "restore_time": "2026-01-01T00:00:00Z",
    }));
    let e = execute("dynamodb.restore_point_in_time", &too_early, &ctx).unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(
        e.message.contains("InvalidRestoreTimeException"),
        "{}",
        e.message
    );
    assert_eq!(
        probe("dynamodb.restore_point_in_time", &too_early, &ctx),
        Probe::DidNot
    );
    let copy = map(&json!({
        "source_table": "tasks-from-backup", "target_table": "tasks-copy",
        "use_latest_restorable_time": true,
    }));
    let e = execute("dynamodb.restore_point_in_time", &copy, &ctx).unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(
        e.message.contains("point-in-time recovery is not enabled"),
        "{}",
        e.message
    );
    assert!(rt.block_on(table(&config, "tasks-copy")).is_none());
}

/// Runs an action's attempt as the driver does, with a journal that answers its request to
/// record what it replaces: returns the attempt's result and what it journaled, if anything.
async fn execute_journaled(
    name: &str,
    args: &Resolved,
    config: &aws_config::SdkConfig,
    previous: Option<Value>,
) -> (Result<Outputs, StepError>, Option<Value>) {
    execute_journaled_moving(name, args, config, previous, None).await
}

/// [`execute_journaled`], someone moving the alias to version `meanwhile` (when given) while
/// the attempt's record is journaled: after drctl read the alias, before it changes it.
async fn execute_journaled_moving(
    name: &str,
    args: &Resolved,
    config: &aws_config::SdkConfig,
    previous: Option<Value>,
    meanwhile: Option<&str>,
) -> (Result<Outputs, StepError>, Option<Value>) {
    let action = Registry::builtin().shared(name).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PreviousRequest>();
    let mut ctx = context(config, previous);
    ctx.remember = Some(Remember {
        step: "change".into(),
        attempt: 1,
        tx,
    });
    let journal = async {
        let mut journaled = None;
        while let Some(request) = rx.recv().await {
            if let Some(version) = meanwhile {
                move_alias(config, version).await;
            }
            journaled = Some(request.previous.clone());
            request.reply.send(Ok(())).unwrap();
        }
        journaled
    };
    let attempt = async move {
        let out = action.execute(args, &ctx).await;
        drop(ctx);
        out
    };
    tokio::join!(attempt, journal)
}

async fn alias(config: &aws_config::SdkConfig) -> String {
    aws_sdk_lambda::Client::new(config)
        .get_alias()
        .function_name("tasks-api")
        .name("live")
        .send()
        .await
        .unwrap()
        .function_version()
        .unwrap()
        .to_string()
}

/// Points the alias as someone other than drctl would.
async fn move_alias(config: &aws_config::SdkConfig, version: &str) {
    aws_sdk_lambda::Client::new(config)
        .update_alias()
        .function_name("tasks-api")
        .name("live")
        .function_version(version)
        .send()
        .await
        .unwrap();
}

#[test]
fn an_alias_is_moved_after_recording_where_it_pointed_and_put_back_only_from_drctls_version() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let action = Registry::builtin().shared("lambda.set_alias").unwrap();
    let args = map(&json!({"function": "tasks-api", "alias": "live", "version": "1"}));

    let (out, journaled) = rt.block_on(execute_journaled("lambda.set_alias", &args, &config, None));
    assert_eq!(out.unwrap(), map(&json!({"previous_version": "2"})));
    assert_eq!(
        journaled,
        Some(json!({"previous": {"version": "2", "weights": {}}})),
        "where it pointed is journaled first"
    );
    assert_eq!(rt.block_on(alias(&config)), "1");
    // A re-run finds drctl's own version: it keeps the first previous one and journals nothing.
    let (again, nothing) = rt.block_on(execute_journaled(
        "lambda.set_alias",
        &args,
        &config,
        journaled.clone(),
    ));
    assert_eq!(again.unwrap(), map(&json!({"previous_version": "2"})));
    assert!(nothing.is_none());

    // Probes: drctl's version is there (took effect); nothing journaled (no attempt sent it).
    let probe =
        |previous: Option<Value>| rt.block_on(action.probe(&args, &context(&config, previous)));
    assert_eq!(
        probe(journaled.clone()),
        Probe::TookEffect(map(&json!({"previous_version": "2"})))
    );
    assert_eq!(probe(None), Probe::DidNot);

    // The undo puts version 2 back while the alias is on drctl's version 1.
    rt.block_on(action.undo(&args, &Outputs::new(), &context(&config, journaled.clone())))
        .unwrap();
    assert_eq!(rt.block_on(alias(&config)), "2");
    assert_eq!(probe(journaled.clone()), Probe::DidNot);

    // Someone moves it on after drctl: the undo refuses and shows all three versions.
    rt.block_on(move_alias(&config, "1"));
    rt.block_on(move_alias(&config, "3"));
    let Probe::Undecided(why) = probe(journaled.clone()) else {
        panic!("an alias on neither version is for the operator");
    };
    assert!(why.contains("version 3"), "{why}");
    let e = rt
        .block_on(action.undo(&args, &Outputs::new(), &context(&config, journaled)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(
        e.message
            .contains("drctl set version 1, it now points to version 3 (before drctl: version 2)"),
        "{}",
        e.message
    );
    assert_eq!(rt.block_on(alias(&config)), "3");

    // A version that does not exist: refused, the alias untouched.
    let missing = map(&json!({"function": "tasks-api", "alias": "live", "version": "9"}));
    let (e, _) = rt.block_on(execute_journaled(
        "lambda.set_alias",
        &missing,
        &config,
        None,
    ));
    assert_eq!(e.unwrap_err().failure, Failure::Fatal);
    assert_eq!(rt.block_on(alias(&config)), "3");

    // Someone moves it between drctl's read and its change: the change is refused by its
    // revision, and their version stays.
    let (e, _) = rt.block_on(execute_journaled_moving(
        "lambda.set_alias",
        &args,
        &config,
        None,
        Some("2"),
    ));
    let e = e.unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(
        e.message
            .contains("moved by someone else between drctl's read"),
        "{}",
        e.message
    );
    assert_eq!(rt.block_on(alias(&config)), "2");
}

#[test]
fn an_invocation_returns_the_functions_answer_and_its_error_fails_the_step_in_its_words() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let ctx = context(&config, None);

    let verify = map(&json!({
        "function": "tasks-verify", "payload": {"table": "tasks", "min_items": 20},
    }));
    let out = execute("lambda.invoke", &verify, &ctx).unwrap();
    assert_eq!(
        out,
        map(&json!({
            "status_code": 200, "payload": {"table": "tasks", "items": 25}, "function_error": null,
        }))
    );

    // The function's own error, in its words.
    let short = map(&json!({
        "function": "tasks-verify", "payload": {"table": "tasks", "min_items": 30},
    }));
    let e = execute("lambda.invoke", &short, &ctx).unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(
        e.message.contains(
            "returned an error (Unhandled): ValueError: table tasks holds 25 items, fewer than 30"
        ),
        "{}",
        e.message
    );

    // A qualifier runs that version's code; without one, $LATEST.
    let release = |qualifier: Option<&str>| {
        let mut args = json!({"function": "tasks-api"});
        if let Some(q) = qualifier {
            args["qualifier"] = q.into();
        }
        execute("lambda.invoke", &map(&args), &ctx).unwrap()["payload"]["release"].clone()
    };
    assert_eq!(release(Some("1")), "2026.11.1");
    assert_eq!(release(Some("live")), "2026.11.2");
    assert_eq!(release(None), "2026.11.3");
}

/// A workflow of one invocation of `tasks-verify`, through a proxy whose answers to it fail.
fn lost_invocation(idempotent: bool) -> (usize, Value) {
    let moto = Moto::start();
    seed(&moto);
    let upstream: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = SlowProxy::start(upstream, "/invocations", Answer::Failed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verify.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "verify-restored"
kind = "restore"

[[steps]]
id = "verify"
action = "lambda.invoke"
idempotent = {idempotent}
retry = {{ attempts = 3, initial = "100ms", max = "100ms" }}
with = {{ region = "us-west-2", function = "tasks-verify", payload = {{ table = "tasks" }} }}
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let through = format!("http://127.0.0.1:{}", proxy.port);
    let o = drctl_at(&through, &state).run(&["run", file.to_str().unwrap(), "--as", "ops"]);
    let status = drctl_at(&moto.url, &state)
        .run(&["status", &o.run_id(), "--format", "json"])
        .json();
    (proxy.watched.load(Ordering::SeqCst), status)
}

#[test]
fn an_invocation_whose_answer_is_lost_is_not_sent_again_and_the_run_pauses() {
    let (sent, status) = lost_invocation(false);
    assert_eq!(sent, 1, "the invocation was sent again: {status}");
    assert_eq!(status["status"], "paused", "{status}");
    assert_eq!(status["steps"][0]["status"], "unknown", "{status}");
}

#[test]
fn an_invocation_the_step_declares_idempotent_is_sent_again_after_a_lost_answer() {
    let (sent, status) = lost_invocation(true);
    assert_eq!(sent, 3, "each attempt sends it once: {status}");
    assert_eq!(status["steps"][0]["status"], "failed", "{status}");
}

/// An attempt of a step `reconcile` of run `run`, as the driver marks it.
fn attempt(config: &aws_config::SdkConfig, attempt: u32) -> ExecContext {
    let mut ctx = context(config, None);
    ctx.processes.attempt = Some(AttemptMark {
        run: "20261207T060000Z-abcd".into(),
        step: "reconcile".into(),
        attempt,
    });
    ctx
}

async fn executions(config: &aws_config::SdkConfig, machine: &str) -> Vec<(String, String)> {
    aws_sdk_sfn::Client::new(config)
        .list_executions()
        .state_machine_arn(machine)
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .map(|e| (e.name().to_string(), e.status().as_str().to_string()))
        .collect()
}

#[test]
fn an_execution_is_started_once_per_step_and_waited_for_to_its_end() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let args = map(&json!({"state_machine_arn": MACHINE, "input": {"table": "tasks-restored"}}));

    let out = execute("stepfunctions.start_execution", &args, &attempt(&config, 1)).unwrap();
    assert_eq!(out["status"], "SUCCEEDED");
    assert_eq!(
        out["output"],
        json!({"table": "tasks-restored", "reconciled": true})
    );
    assert!(
        out["execution_arn"]
            .as_str()
            .unwrap()
            .ends_with(":execution:tasks-reconcile:drctl-20261207T060000Z-abcd-reconcile-1"),
        "{out:?}"
    );
    // A later attempt (the first one's answer lost) follows the first execution.
    let again = execute("stepfunctions.start_execution", &args, &attempt(&config, 2)).unwrap();
    assert_eq!(again, out);
    assert_eq!(rt.block_on(executions(&config, MACHINE)).len(), 1);

    // Outside a run there is no name to give it: refused before anything is sent.
    let e = execute(
        "stepfunctions.start_execution",
        &args,
        &context(&config, None),
    )
    .unwrap_err();
    assert_eq!(e.failure, Failure::Fatal);

    // An execution that fails fails the step with its error and cause; the next attempt, after
    // a failure, starts anew.
    let failing = rt
        .block_on(
            aws_sdk_sfn::Client::new(&config)
                .create_state_machine()
                .name("tasks-reconcile-broken")
                .role_arn("arn:aws:iam::123456789012:role/tasks-serverless")
                .definition(
                    r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"Reconcile.Failed","Cause":"3 tasks have no owner"}}}"#,
                )
                .send(),
        )
        .unwrap()
        .state_machine_arn()
        .to_string();
    let broken = map(&json!({"state_machine_arn": failing}));
    let e = execute(
        "stepfunctions.start_execution",
        &broken,
        &attempt(&config, 1),
    )
    .unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(
        e.message
            .contains("ended FAILED: Reconcile.Failed (3 tasks have no owner)"),
        "{}",
        e.message
    );
    execute(
        "stepfunctions.start_execution",
        &broken,
        &attempt(&config, 2),
    )
    .unwrap_err();
    let mut names: Vec<String> = rt
        .block_on(executions(&config, &failing))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "drctl-20261207T060000Z-abcd-reconcile-1",
            "drctl-20261207T060000Z-abcd-reconcile-2"
        ]
    );

    // Without waiting: started, still running.
    let quick = map(&json!({"state_machine_arn": MACHINE, "wait": false}));
    let out = execute(
        "stepfunctions.start_execution",
        &quick,
        &attempt(&config, 5),
    )
    .unwrap();
    assert_eq!(out["status"], "RUNNING");
    assert_eq!(out["output"], Value::Null);
}

#[test]
fn a_start_whose_driver_is_killed_before_recording_it_is_found_on_resume_not_started_again() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let upstream: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    // The start reaches the emulator, which starts the execution; its answer is held back.
    let proxy = SlowProxy::start(
        upstream,
        "AWSStepFunctions.StartExecution",
        Answer::Late(Duration::from_mins(1)),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reconcile.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "reconcile-after-restore"
kind = "restore"

[[steps]]
id = "reconcile"
action = "stepfunctions.start_execution"
timeout = "2m"
with = {{ region = "us-west-2", state_machine_arn = "{MACHINE}", input = {{ table = "tasks-restored" }} }}
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let through = format!("http://127.0.0.1:{}", proxy.port);
    let (mut driver, run) =
        drctl_at(&through, &state).start(&["run", file.to_str().unwrap(), "--as", "ops"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.watched.load(Ordering::SeqCst) == 0
        || rt.block_on(executions(&config, MACHINE)).is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the start never reached the emulator"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed between the start and its record.
    driver.kill();

    let resumed = drctl_at(&moto.url, &state).run(&["resume", &run]);
    assert_eq!(resumed.code, 0, "{}", resumed.text());
    let started = rt.block_on(executions(&config, MACHINE));
    assert_eq!(started.len(), 1, "one execution, not two: {started:?}");
    assert_eq!(started[0].0, format!("drctl-{run}-reconcile-1"));
    assert_eq!(started[0].1, "SUCCEEDED");
    assert_eq!(proxy.watched.load(Ordering::SeqCst), 1);
    let status = drctl_at(&moto.url, &state)
        .run(&["status", &run, "--format", "json"])
        .json();
    let step = &status["steps"][0];
    assert_eq!(step["status"], "succeeded", "{status}");
    assert!(
        step["outputs"]["execution_arn"]
            .as_str()
            .unwrap()
            .ends_with(&started[0].0),
        "{status}"
    );
    // The journal: the first attempt's outcome unknown, the second one followed the execution.
    let store = drctl::store::SledStore::open(&state).unwrap();
    let kinds: Vec<String> = drctl::store::Store::journal(&store, &run)
        .unwrap()
        .iter()
        .filter(|e| e.event["step"] == "reconcile")
        .map(|e| e.event["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "step_started").count(),
        2,
        "{kinds:?}"
    );
}

/// An HTTP server on loopback that answers every request 200 (the service's health check).
fn healthy() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The thread ends with the test binary.
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = client.read(&mut buf);
            let _ = client
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    format!("http://127.0.0.1:{port}/health")
}

/// The serverless example, without its allowed signers (names as typed: no keys in tests).
fn example(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join("workflows/serverless-restore.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("allowed_signers"))
        .flat_map(|l| [l, "\n"])
        .collect();
    let file = dir.join("serverless-restore.toml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

fn outputs_of(status: &Value, step: &str) -> Value {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {status}"))["outputs"]
        .clone()
}

async fn parameter(config: &aws_config::SdkConfig) -> String {
    aws_sdk_ssm::Client::new(config)
        .get_parameter()
        .name("/tasks/prod/table")
        .send()
        .await
        .unwrap()
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_string()
}

#[test]
fn the_serverless_restore_shows_live_values_restores_reconciles_and_rolls_back() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let restore_time = seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = example(dir.path());
    let health = healthy();
    let params = [
        "--param".to_string(),
        format!("restore_time={restore_time}"),
        "--param".to_string(),
        format!("health_url={health}"),
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(ToString::to_string)
            .chain(params.iter().cloned())
            .collect()
    };

    plan_shows_live_values(&moto, &state, &with(&["plan", &file]));
    assert_eq!(rt.block_on(alias(&config)), "2");
    assert!(rt.block_on(table(&config, "tasks-restored")).is_none());

    // The drill stops at the approval; a DBA approves; it goes on to the end.
    let args = with(&["drill", &file, "--as", "sre-oncall", "--detach"]);
    let run = moto
        .drctl(&state)
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 3, "{}", run.text());
    let run_id = run.run_id();
    moto.drctl(&state)
        .run(&["approve", &run_id, "approve-restore", "--as", "dba-oncall"])
        .ok();
    let resumed = moto
        .drctl(&state)
        .run(&["resume", &run_id, "--as", "sre-oncall"]);
    assert_eq!(resumed.code, 0, "{}", resumed.text());
    restored_as_planned(&config, &run_id);

    // What the steps returned: the RPO is the run's start (the incident start) minus the point
    // restored to.
    let status: Value = moto
        .drctl(&state)
        .run(&["status", &run_id, "--format", "json"])
        .json();
    let restore = outputs_of(&status, "restore");
    assert_eq!(time(&restore["restore_time"]), time(&json!(restore_time)));
    let rpo = (time(&status["started_at"]) - time(&json!(restore_time)))
        .to_std()
        .unwrap()
        .as_secs_f64();
    let measured = restore["rpo_seconds"].as_f64().unwrap();
    assert!(
        (measured - rpo).abs() < 0.001,
        "{measured} s, expected {rpo} s"
    );
    assert_eq!(
        outputs_of(&status, "verify-items")["payload"],
        json!({"table": "tasks-restored", "items": 25})
    );
    assert_eq!(
        outputs_of(&status, "rollback-alias"),
        json!({"previous_version": "2"})
    );
    assert_eq!(
        outputs_of(&status, "reconcile")["output"],
        json!({"table": "tasks-restored", "reconciled": true})
    );

    // The rollback puts the alias and the parameter back; the restored table and the backup
    // stay (a restore never deletes anything).
    let back = moto.drctl(&state).run(&["rollback", &run_id]);
    assert_eq!(back.code, 5, "{}", back.text());
    assert_eq!(rt.block_on(alias(&config)), "2");
    assert_eq!(rt.block_on(parameter(&config)), "tasks");
    assert!(rt.block_on(table(&config, "tasks-restored")).is_some());
    assert_eq!(rt.block_on(executions(&config, MACHINE)).len(), 1);
}

/// The plan of the serverless example reads each live value, and changes nothing.
fn plan_shows_live_values(moto: &Moto, state: &Path, args: &[String]) {
    let plan = moto
        .drctl(state)
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = plan.text();
    assert_eq!(plan.code, 0, "{out}");
    for current in [
        "current: table tasks ACTIVE (25 items), point-in-time recovery ENABLED, restorable from ",
        "; target tasks-restored does not exist yet",
        "current: function tasks-verify runs version $LATEST (Active",
        "current: alias live of Lambda function tasks-api points to version 2",
        "current: state machine tasks-reconcile is ACTIVE (STANDARD)",
    ] {
        assert!(out.contains(current), "the plan lacks {current:?}:\n{out}");
    }
}

/// What AWS holds after the serverless example's run `run_id`.
fn restored_as_planned(config: &aws_config::SdkConfig, run_id: &str) {
    let rt = rt();
    let restored = rt.block_on(table(config, "tasks-restored")).unwrap();
    assert_eq!(restored.table_status().unwrap().as_str(), "ACTIVE");
    assert_eq!(rt.block_on(items(config, "tasks-restored")), 25);
    assert_eq!(rt.block_on(alias(config)), "1");
    assert_eq!(rt.block_on(parameter(config)), "tasks-restored");
    let started = rt.block_on(executions(config, MACHINE));
    assert_eq!(
        started,
        [(
            format!("drctl-{run_id}-reconcile-1"),
            "SUCCEEDED".to_string()
        )]
    );
    let backups = rt
        .block_on(
            aws_sdk_dynamodb::Client::new(config)
                .list_backups()
                .table_name("tasks")
                .send(),
        )
        .unwrap();
    assert_eq!(backups.backup_summaries().len(), 1);
    assert_eq!(
        backups.backup_summaries()[0].backup_name(),
        Some("tasks-damaged")
    );
}

#[test]
fn a_rollback_leaves_an_alias_someone_moved_after_drctl_and_says_so() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    seed(&moto);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alias.toml");
    std::fs::write(
        &file,
        r#"
[workflow]
name = "tasks-api-rollback"
kind = "restore"

[[steps]]
id = "rollback-alias"
action = "lambda.set_alias"
with = { region = "us-west-2", function = "tasks-api", alias = "live", version = "1" }
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = moto
        .drctl(&state)
        .run(&["drill", file.to_str().unwrap(), "--as", "sre-oncall"]);
    assert_eq!(run.code, 0, "{}", run.text());
    let run_id = run.run_id();
    assert_eq!(rt.block_on(alias(&config)), "1");

    // The application team releases their fix after drctl's rollback of the alias.
    rt.block_on(move_alias(&config, "3"));
    let back = moto.drctl(&state).run(&["rollback", &run_id]);
    let out = back.text();
    assert_ne!(back.code, 5, "the rollback did not stop: {out}");
    assert!(
        out.contains("drctl set version 1, it now points to version 3 (before drctl: version 2)"),
        "both versions are shown: {out}"
    );
    let status: Value = moto
        .drctl(&state)
        .run(&["status", &run_id, "--format", "json"])
        .json();
    assert_eq!(status["status"], "paused", "{status}");
    assert_eq!(rt.block_on(alias(&config)), "3", "their version stays");
}
