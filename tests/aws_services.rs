//! The actions around a failover (ECS services, Auto Scaling groups, SSM parameters, SNS
//! topics, `CloudWatch` alarms) with the real SDK against the emulator, asserting what AWS
//! reports through the SDK, not drctl's view of it:
//! - a workflow confirms the outage, scales, publishes and pages; the plan shows the live
//!   values; a rollback restores the counts, the capacity and the parameter;
//! - undo restores what was there (SPEC §5.8.3): the value replaced is journaled before the
//!   change and kept across re-runs, and an undo that finds someone else's value pauses the
//!   rollback, showing both, instead of overwriting it;
//! - probes tell a lost change that landed from one that did not; a page whose answer is lost
//!   was sent once, and the operator decides (§5.8.2).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use drctl::actions::{ExecContext, Failure, Outputs, Probe, Registry, Resolved};
use drctl::aws::{AwsContext, Clients};
use serde_json::{Value, json};

use crate::aws::{Moto, drctl_at, rt};
use crate::aws_guarantees::{Answer, SlowProxy};
use crate::harness::root;

const CLUSTER: &str = "orders-usw2";
const GROUP: &str = "orders-workers-usw2";
const PARAMETER: &str = "/orders/db/endpoint";
const OLD_ENDPOINT: &str = "orders-db.use1.example.com";
const NEW_ENDPOINT: &str = "orders-replica.usw2.example.com";
const ALARM: &str = "orders-use1-5xx";

/// What the seed made that tests need to name.
struct Seeded {
    topic_arn: String,
    /// An SQS queue subscribed to the topic: what the topic delivered is read from it.
    inbox: String,
}

/// The standby region as it waits: two ECS services at 2 tasks each, a worker group at 2
/// instances (min 1, max 4), the database endpoint in Parameter Store, a pager topic with a
/// queue subscribed, and the primary region's 5xx alarm firing.
async fn seed(config: &aws_config::SdkConfig) -> Seeded {
    seed_capacity(config).await;
    set_parameter(config, OLD_ENDPOINT).await;
    let seeded = seed_pager(config).await;
    seed_alarm(config).await;
    seeded
}

/// The ECS services and the worker group, as the standby region keeps them.
async fn seed_capacity(config: &aws_config::SdkConfig) {
    let ecs = aws_sdk_ecs::Client::new(config);
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    for service in ["auth", "tasks"] {
        ecs.register_task_definition()
            .family(service)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name(service)
                    .image(format!("registry.example.com/{service}:stable"))
                    .memory(256)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name(service)
            .task_definition(service)
            .desired_count(2)
            .send()
            .await
            .unwrap();
    }
    let asg = aws_sdk_autoscaling::Client::new(config);
    asg.create_launch_configuration()
        .launch_configuration_name("orders-workers")
        .image_id("ami-12c6146b")
        .instance_type("t3.medium")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(GROUP)
        .launch_configuration_name("orders-workers")
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .availability_zones("us-west-2a")
        .send()
        .await
        .unwrap();
}

/// The pager topic, and a queue subscribed to it to read what it delivered.
async fn seed_pager(config: &aws_config::SdkConfig) -> Seeded {
    let sns = aws_sdk_sns::Client::new(config);
    let topic_arn = sns
        .create_topic()
        .name("orders-pager")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let sqs = aws_sdk_sqs::Client::new(config);
    let inbox = sqs
        .create_queue()
        .queue_name("orders-pager-inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&inbox)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    Seeded { topic_arn, inbox }
}

/// The primary region's 5xx alarm, firing.
async fn seed_alarm(config: &aws_config::SdkConfig) {
    let cw = aws_sdk_cloudwatch::Client::new(config);
    cw.put_metric_alarm()
        .alarm_name(ALARM)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    cw.set_alarm_state()
        .alarm_name(ALARM)
        .state_value(StateValue::Alarm)
        .state_reason("5xx above 10 per minute for 1 datapoint")
        .send()
        .await
        .unwrap();
}

/// Writes the endpoint parameter as someone other than drctl would.
async fn set_parameter(config: &aws_config::SdkConfig, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(PARAMETER)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

async fn parameter(config: &aws_config::SdkConfig) -> Option<(String, i64)> {
    let out = aws_sdk_ssm::Client::new(config)
        .get_parameter()
        .name(PARAMETER)
        .send()
        .await
        .ok()?;
    let p = out.parameter()?;
    Some((p.value()?.to_string(), p.version()))
}

/// (desired, running) of an ECS service, as ECS describes it.
async fn service(config: &aws_config::SdkConfig, name: &str) -> (i32, i32) {
    let out = aws_sdk_ecs::Client::new(config)
        .describe_services()
        .cluster(CLUSTER)
        .services(name)
        .send()
        .await
        .unwrap();
    let s = &out.services()[0];
    (s.desired_count(), s.running_count())
}

/// Sets a service's desired count as someone other than drctl would.
async fn scale_by_hand(config: &aws_config::SdkConfig, name: &str, count: i32) {
    aws_sdk_ecs::Client::new(config)
        .update_service()
        .cluster(CLUSTER)
        .service(name)
        .desired_count(count)
        .send()
        .await
        .unwrap();
}

/// (desired, min, max, instances in service) of the worker group.
async fn group(config: &aws_config::SdkConfig) -> (i32, i32, i32, usize) {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(GROUP)
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    let in_service = g
        .instances()
        .iter()
        .filter(|i| {
            i.lifecycle_state() == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
        })
        .count();
    (
        g.desired_capacity().unwrap(),
        g.min_size().unwrap(),
        g.max_size().unwrap(),
        in_service,
    )
}

/// Every message the topic delivered to the queue so far (their SNS envelopes, as JSON).
async fn delivered(config: &aws_config::SdkConfig, inbox: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut all = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(inbox)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            return all;
        }
        for m in out.messages() {
            all.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(inbox)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn workflow(dir: &Path, topic_arn: &str) -> String {
    let text = std::fs::read_to_string(root().join("tests/fixtures/aws/services.toml")).unwrap();
    let file = dir.join("services.toml");
    std::fs::write(&file, text.replace("TOPIC_ARN", topic_arn)).unwrap();
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

#[test]
fn a_multi_service_failover_scales_publishes_pages_and_its_rollback_restores_each_value() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let seeded = rt.block_on(seed(&config));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = workflow(dir.path(), &seeded.topic_arn);

    // The plan reads each live value and changes nothing.
    let plan = moto.drctl(&state).run(&["plan", &file]);
    let out = plan.text();
    assert_eq!(plan.code, 0, "{out}");
    for current in [
        "current: ALARM since ",
        "current: 2 tasks desired, 2 running (steady)",
        "current: desired 2 (min 1, max 4), 2 in service",
        &format!("current: {PARAMETER} = \"{OLD_ENDPOINT}\" (String) (version 1)"),
        "current: topic exists, 1 confirmed subscriptions",
    ] {
        assert!(out.contains(current), "the plan lacks {current:?}:\n{out}");
    }
    assert!(out.contains("5xx above 10 per minute"), "{out}");
    assert_eq!(rt.block_on(service(&config, "auth")), (2, 2));
    assert_eq!(rt.block_on(group(&config)).0, 2);
    assert_eq!(
        rt.block_on(parameter(&config)),
        Some((OLD_ENDPOINT.into(), 1))
    );

    let run = moto.drctl(&state).run(&["drill", &file]);
    let out = run.text();
    assert_eq!(run.code, 0, "{out}");
    let run_id = run.run_id();

    // What AWS reports.
    assert_eq!(rt.block_on(service(&config, "auth")), (6, 6));
    assert_eq!(rt.block_on(service(&config, "tasks")), (8, 8));
    assert_eq!(rt.block_on(group(&config)), (5, 1, 6, 5));
    assert_eq!(
        rt.block_on(parameter(&config)),
        Some((NEW_ENDPOINT.into(), 2))
    );
    let pages = rt.block_on(delivered(&config, &seeded.inbox));
    assert_eq!(pages.len(), 1, "one page: {pages:?}");
    assert_eq!(pages[0]["Subject"], "orders failed over");
    assert_eq!(
        pages[0]["Message"],
        format!("orders now write to {NEW_ENDPOINT} (configuration version 2)")
    );

    // What the steps returned, for later steps and the report.
    let status: Value = moto
        .drctl(&state)
        .run(&["status", &run_id, "--format", "json"])
        .json();
    assert_eq!(outputs_of(&status, "outage")["state"], "ALARM");
    assert_eq!(
        outputs_of(&status, "outage")["reason"],
        "5xx above 10 per minute for 1 datapoint"
    );
    assert_eq!(
        outputs_of(&status, "scale-auth"),
        json!({"previous_desired_count": 2, "running_count": 6})
    );
    assert_eq!(
        outputs_of(&status, "grow-workers"),
        json!({"previous": {"desired": 2, "min": 1, "max": 4}})
    );
    assert_eq!(
        outputs_of(&status, "publish-endpoint"),
        json!({"version": 2, "previous_value": OLD_ENDPOINT})
    );
    assert_eq!(
        outputs_of(&status, "page")["message_id"],
        pages[0]["MessageId"]
    );

    // The rollback puts every count, the capacity and the parameter back; the page stays sent.
    let back = moto.drctl(&state).run(&["rollback", &run_id]);
    let out = back.text();
    assert_eq!(back.code, 5, "{out}");
    assert_eq!(rt.block_on(service(&config, "auth")), (2, 2));
    assert_eq!(rt.block_on(service(&config, "tasks")), (2, 2));
    assert_eq!(rt.block_on(group(&config)), (2, 1, 4, 2));
    assert_eq!(
        rt.block_on(parameter(&config)),
        Some((OLD_ENDPOINT.into(), 3))
    );
    assert!(rt.block_on(delivered(&config, &seeded.inbox)).is_empty());
}

#[test]
fn a_rollback_that_finds_someone_elses_values_pauses_and_shows_both() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let seeded = rt.block_on(seed(&config));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = workflow(dir.path(), &seeded.topic_arn);
    let run = moto.drctl(&state).run(&["drill", &file]);
    assert_eq!(run.code, 0, "{}", run.text());
    let run_id = run.run_id();

    // After the failover, someone edits the endpoint and the auth service by hand.
    rt.block_on(set_parameter(&config, "orders-db.manual.example.com"));
    rt.block_on(scale_by_hand(&config, "auth", 4));

    let back = moto.drctl(&state).run(&["rollback", &run_id]);
    let out = back.text();
    assert_ne!(back.code, 5, "the rollback did not stop: {out}");
    assert!(
        out.contains(&format!("drctl wrote \"{NEW_ENDPOINT}\" (String)"))
            && out.contains("\"orders-db.manual.example.com\" (String)"),
        "both values of the parameter are shown: {out}"
    );
    let status: Value = moto
        .drctl(&state)
        .run(&["status", &run_id, "--format", "json"])
        .json();
    assert_eq!(status["status"], "paused", "{status}");
    // Nothing of theirs was overwritten.
    assert_eq!(
        rt.block_on(parameter(&config)).unwrap().0,
        "orders-db.manual.example.com"
    );
    assert_eq!(rt.block_on(service(&config, "auth")).0, 4);

    // The operator keeps the parameter as it is now; the rollback goes on to the next undo,
    // which finds the auth service changed too, and stops again, showing both counts.
    let on = moto
        .drctl(&state)
        .run(&["resume", &run_id, "--step", "publish-endpoint", "--skip"]);
    let out = on.text();
    assert!(
        out.contains("drctl set 6 tasks, it now asks for 4"),
        "both counts are shown: {out}"
    );
    assert_eq!(rt.block_on(service(&config, "auth")).0, 4);
}

fn context(config: &aws_config::SdkConfig, previous: Option<Value>) -> ExecContext {
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(Clients::from_config(config))),
        incident_start: chrono::Utc::now(),
        previous,
        remember: None,
        processes: drctl::actions::processes::StepProcesses::default(),
    }
}

fn map(v: &Value) -> Resolved {
    v.as_object().unwrap().clone()
}

/// Runs an action's attempt as the driver does, with a journal that answers its request to
/// record what it replaces: returns the attempt's result and what it journaled, if anything.
async fn execute_journaled(
    name: &str,
    args: &Resolved,
    config: &aws_config::SdkConfig,
    previous: Option<Value>,
) -> (Result<Outputs, drctl::actions::StepError>, Option<Value>) {
    let action = Registry::builtin().shared(name).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<drctl::actions::PreviousRequest>();
    let mut ctx = context(config, previous);
    ctx.remember = Some(drctl::actions::Remember {
        step: "change".into(),
        attempt: 1,
        tx,
    });
    let journal = async {
        let mut journaled = None;
        while let Some(request) = rx.recv().await {
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

#[test]
fn scaling_a_service_keeps_the_first_count_waits_for_its_tasks_and_probes_tell_what_landed() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let action = Registry::builtin().shared("ecs.scale_service").unwrap();
    let scale = |count: i32, wait: bool| {
        map(&json!({
            "region": "us-west-2", "cluster": CLUSTER, "service": "auth",
            "desired_count": count, "wait": wait,
        }))
    };

    // Without waiting, the step returns while ECS is still starting the tasks.
    let (out, journaled) = rt.block_on(execute_journaled(
        "ecs.scale_service",
        &scale(6, false),
        &config,
        None,
    ));
    let out = out.unwrap();
    assert_eq!(journaled, Some(json!({"previous": 2})), "journaled first");
    assert_eq!(out["previous_desired_count"], 2);
    assert!(out["running_count"].as_i64().unwrap() < 6, "{out:?}");

    // A re-run (the step is idempotent) finds its own 6: it keeps the 2 journaled first, and
    // this time waits until the six tasks run.
    let (again, nothing) = rt.block_on(execute_journaled(
        "ecs.scale_service",
        &scale(6, true),
        &config,
        journaled.clone(),
    ));
    assert!(nothing.is_none(), "a re-run journals nothing new");
    let again = again.unwrap();
    assert_eq!(
        again,
        map(&json!({"previous_desired_count": 2, "running_count": 6}))
    );

    // Probes: the count drctl set is there, so the lost attempt took effect.
    let probe = |previous: Option<Value>| {
        rt.block_on(action.probe(&scale(6, true), &context(&config, previous)))
    };
    assert_eq!(probe(journaled.clone()), Probe::TookEffect(again.clone()));
    // Nothing journaled: no attempt sent its change.
    assert_eq!(probe(None), Probe::DidNot);
    rt.block_on(scale_by_hand(&config, "auth", 2));
    assert_eq!(probe(journaled.clone()), Probe::DidNot);
    rt.block_on(scale_by_hand(&config, "auth", 3));
    let Probe::Undecided(why) = probe(journaled.clone()) else {
        panic!("a count that is neither drctl's nor the previous one is for the operator");
    };
    assert!(why.contains("asks for 3 tasks"), "{why}");

    // The undo, on drctl's count, brings the previous one back and waits for it.
    rt.block_on(scale_by_hand(&config, "auth", 6));
    rt.block_on(action.undo(&scale(6, true), &again, &context(&config, journaled)))
        .unwrap();
    assert_eq!(rt.block_on(service(&config, "auth")), (2, 2));

    // A service that does not exist fails at once, naming it.
    let missing = map(&json!({
        "region": "us-west-2", "cluster": CLUSTER, "service": "billing", "desired_count": 1,
    }));
    let e = rt
        .block_on(action.execute(&missing, &context(&config, None)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(
        e.message.contains("billing") && e.message.contains(CLUSTER),
        "{}",
        e.message
    );
}

#[test]
fn a_group_is_resized_whole_and_put_back_only_while_it_has_drctls_capacity() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let action = Registry::builtin()
        .shared("autoscaling.set_capacity")
        .unwrap();

    // Above the group's maximum without a new `max`: refused before anything is journaled or
    // sent.
    let too_many = map(&json!({"region": "us-west-2", "group": GROUP, "desired": 8}));
    let (out, journaled) = rt.block_on(execute_journaled(
        "autoscaling.set_capacity",
        &too_many,
        &config,
        None,
    ));
    let e = out.unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(e.message.contains("max 4"), "{}", e.message);
    assert!(journaled.is_none());
    assert_eq!(rt.block_on(group(&config)), (2, 1, 4, 2));

    let grow =
        map(&json!({"region": "us-west-2", "group": GROUP, "desired": 6, "min": 3, "max": 8}));
    let (out, journaled) = rt.block_on(execute_journaled(
        "autoscaling.set_capacity",
        &grow,
        &config,
        None,
    ));
    let out = out.unwrap();
    let previous = json!({"desired": 2, "min": 1, "max": 4});
    assert_eq!(journaled, Some(json!({ "previous": previous })));
    assert_eq!(out["previous"], previous);
    assert_eq!(rt.block_on(group(&config)), (6, 3, 8, 6));
    assert_eq!(
        rt.block_on(action.probe(&grow, &context(&config, journaled.clone()))),
        Probe::TookEffect(out.clone())
    );

    // Someone lowers the desired capacity (a scaling policy, an operator): the undo refuses,
    // showing both capacities, and leaves theirs.
    rt.block_on(
        aws_sdk_autoscaling::Client::new(&config)
            .set_desired_capacity()
            .auto_scaling_group_name(GROUP)
            .desired_capacity(5)
            .send(),
    )
    .unwrap();
    let e = rt
        .block_on(action.undo(&grow, &out, &context(&config, journaled.clone())))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(
        e.message.contains("drctl set desired 6 (min 3, max 8)")
            && e.message.contains("it now has desired 5 (min 3, max 8)"),
        "{}",
        e.message
    );
    assert_eq!(rt.block_on(group(&config)).0, 5);

    // Back to what drctl set: the undo restores the whole previous capacity.
    rt.block_on(
        aws_sdk_autoscaling::Client::new(&config)
            .set_desired_capacity()
            .auto_scaling_group_name(GROUP)
            .desired_capacity(6)
            .send(),
    )
    .unwrap();
    rt.block_on(action.undo(&grow, &out, &context(&config, journaled)))
        .unwrap();
    assert_eq!(rt.block_on(group(&config)), (2, 1, 4, 2));
}

#[test]
fn a_parameter_is_restored_a_created_one_deleted_and_a_secure_one_never_touched() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let action = Registry::builtin().shared("ssm.put_parameter").unwrap();
    let ssm = aws_sdk_ssm::Client::new(&config);

    // A parameter that did not exist: journaled as absent, and deleted by the undo.
    let flag =
        map(&json!({"region": "us-west-2", "name": "/orders/failover/active", "value": "usw2"}));
    let (out, journaled) =
        rt.block_on(execute_journaled("ssm.put_parameter", &flag, &config, None));
    let out = out.unwrap();
    assert_eq!(journaled, Some(json!({"previous": null})));
    assert_eq!(out, map(&json!({"version": 1, "previous_value": null})));
    rt.block_on(action.undo(&flag, &out, &context(&config, journaled)))
        .unwrap();
    let gone = rt.block_on(ssm.get_parameter().name("/orders/failover/active").send());
    assert!(
        gone.is_err_and(|e| e.into_service_error().is_parameter_not_found()),
        "the parameter drctl created is gone"
    );

    // An existing one: a re-run keeps the first value, the probe sees the write, the undo
    // puts the old value back.
    let publish = map(&json!({"region": "us-west-2", "name": PARAMETER, "value": NEW_ENDPOINT}));
    let (out, journaled) = rt.block_on(execute_journaled(
        "ssm.put_parameter",
        &publish,
        &config,
        None,
    ));
    let out = out.unwrap();
    assert_eq!(out["previous_value"], OLD_ENDPOINT);
    let (again, nothing) = rt.block_on(execute_journaled(
        "ssm.put_parameter",
        &publish,
        &config,
        journaled.clone(),
    ));
    assert!(nothing.is_none());
    assert_eq!(again.unwrap(), out, "the re-run found its own write");
    assert_eq!(
        rt.block_on(parameter(&config)),
        Some((NEW_ENDPOINT.into(), 2)),
        "not written twice"
    );
    assert_eq!(
        rt.block_on(action.probe(&publish, &context(&config, journaled.clone()))),
        Probe::TookEffect(out.clone())
    );
    rt.block_on(action.undo(&publish, &out, &context(&config, journaled.clone())))
        .unwrap();
    assert_eq!(rt.block_on(parameter(&config)).unwrap().0, OLD_ENDPOINT);
    assert_eq!(
        rt.block_on(action.probe(&publish, &context(&config, journaled))),
        Probe::DidNot
    );

    // A SecureString is refused before anything is journaled or written.
    rt.block_on(
        ssm.put_parameter()
            .name("/orders/db/password")
            .value("s3cret-value")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send(),
    )
    .unwrap();
    let secret =
        map(&json!({"region": "us-west-2", "name": "/orders/db/password", "value": "other"}));
    let (out, journaled) = rt.block_on(execute_journaled(
        "ssm.put_parameter",
        &secret,
        &config,
        None,
    ));
    let e = out.unwrap_err();
    assert_eq!(e.failure, Failure::Fatal, "{e:?}");
    assert!(e.message.contains("SecureString"), "{}", e.message);
    assert!(!e.message.contains("s3cret-value"), "{}", e.message);
    assert!(journaled.is_none());
}

#[test]
fn an_alarm_in_another_state_than_expected_fails_without_effect() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let action = Registry::builtin()
        .shared("cloudwatch.alarm_state")
        .unwrap();
    let read = |expect: &str| {
        rt.block_on(action.execute(
            &map(&json!({"region": "us-west-2", "alarm": ALARM, "expect": expect})),
            &context(&config, None),
        ))
    };
    let out = read("ALARM").unwrap();
    assert_eq!(out["state"], "ALARM");
    let e = read("OK").unwrap_err();
    assert_eq!(
        e.failure,
        Failure::NoEffect,
        "a later attempt may find it OK"
    );
    assert!(e.message.contains("is ALARM, expected OK"), "{}", e.message);
    rt.block_on(
        aws_sdk_cloudwatch::Client::new(&config)
            .set_alarm_state()
            .alarm_name(ALARM)
            .state_value(StateValue::Ok)
            .state_reason("5xx back under 10 per minute")
            .send(),
    )
    .unwrap();
    assert_eq!(
        read("OK").unwrap()["reason"],
        "5xx back under 10 per minute"
    );
    let e = rt
        .block_on(action.execute(
            &map(&json!({"region": "us-west-2", "alarm": "no-such-alarm"})),
            &context(&config, None),
        ))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Fatal);
    assert!(e.message.contains("no-such-alarm"), "{}", e.message);
}

#[test]
fn a_page_answered_500_after_it_went_out_is_sent_once_and_left_to_the_operator() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let seeded = rt.block_on(seed(&config));
    let upstream: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = SlowProxy::start(upstream, "Action=Publish", Answer::Failed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "page-once"
kind = "failover"

[[steps]]
id = "page"
action = "sns.publish"
retry = {{ attempts = 3, initial = "100ms", max = "100ms" }}
with = {{ topic_arn = "{}", message = "orders failing over" }}
"#,
            seeded.topic_arn
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let slow = format!("http://127.0.0.1:{}", proxy.port);
    let o = drctl_at(&slow, &state).run(&["run", file.to_str().unwrap(), "--as", "ops"]);
    let out = o.text();
    assert_eq!(
        proxy.watched.load(Ordering::SeqCst),
        1,
        "the page was sent more than once: {out}"
    );
    assert_eq!(
        rt.block_on(delivered(&config, &seeded.inbox)).len(),
        1,
        "one page reached the team"
    );
    assert!(
        out.contains("may or may not have taken effect"),
        "the operator is asked: {out}"
    );
    let status: Value = drctl_at(&slow, &state)
        .run(&["status", &o.run_id(), "--format", "json"])
        .json();
    assert_eq!(status["status"], "paused", "{status}");
    assert_eq!(status["steps"][0]["status"], "unknown", "{status}");
}
