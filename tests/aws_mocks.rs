//! What the emulator cannot do, with SDK-level mocks: Aurora global-cluster failover and
//! switchover, throttling followed by success, and an exact count of what the SDK sends: a
//! promotion answered 5xx is not sent again by the SDK's own retries, while a throttled read
//! still is.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
use aws_sdk_rds::types::{DbInstance, Endpoint, GlobalCluster, GlobalClusterMember};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use drctl::actions::{ExecContext, Registry, Resolved, StepError};
use drctl::aws::{AwsContext, Clients};
use serde_json::json;

const TARGET: &str = "arn:aws:rds:us-west-2:123456789012:cluster:orders-usw2";
const OLD: &str = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";

fn context(rds: Client) -> ExecContext {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .build();
    let clients = Clients {
        rds,
        ..Clients::from_config(&config)
    };
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(clients)),
        incident_start: chrono::Utc::now(),
        previous: None,
        remember: None,
        processes: drctl::actions::processes::StepProcesses::default(),
    }
}

fn global(writer: &str) -> DescribeGlobalClustersOutput {
    let member = |arn: &str| {
        GlobalClusterMember::builder()
            .db_cluster_arn(arn)
            .is_writer(arn == writer)
            .build()
    };
    DescribeGlobalClustersOutput::builder()
        .global_clusters(
            GlobalCluster::builder()
                .global_cluster_identifier("orders")
                .global_cluster_members(member(OLD))
                .global_cluster_members(member(TARGET))
                .build(),
        )
        .build()
}

fn args(v: &serde_json::Value) -> Resolved {
    v.as_object().unwrap().clone()
}

async fn execute(
    action: &str,
    args: &Resolved,
    ctx: &ExecContext,
) -> Result<drctl::actions::Outputs, StepError> {
    Registry::builtin()
        .shared(action)
        .unwrap()
        .execute(args, ctx)
        .await
}

#[tokio::test]
async fn global_failover_waits_for_the_new_writer() {
    let failover = mock!(Client::failover_global_cluster)
        .match_requests(|r| {
            r.global_cluster_identifier() == Some("orders")
                && r.target_db_cluster_identifier() == Some(TARGET)
                && r.allow_data_loss() == Some(true)
        })
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    // The writer changes on the second look: the action must wait for it.
    let describe = mock!(Client::describe_global_clusters)
        .sequence()
        .output(|| global(OLD))
        .output(|| global(TARGET))
        .repeatedly()
        .build();
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&failover, &describe]);
    let ctx = context(rds);
    let a = args(
        &json!({ "global_cluster": "orders", "target_cluster_arn": TARGET, "allow_data_loss": true }),
    );
    let out = execute("rds.failover_global_cluster", &a, &ctx)
        .await
        .unwrap();
    assert_eq!(out["writer"], TARGET);
    assert_eq!(failover.num_calls(), 1);
    assert!(describe.num_calls() >= 2);

    // After a crash the probe sees the target is the writer: the failover took effect.
    let probe = Registry::builtin()
        .shared("rds.failover_global_cluster")
        .unwrap()
        .probe(&a, &ctx)
        .await;
    assert!(
        matches!(probe, drctl::actions::Probe::TookEffect(_)),
        "{probe:?}"
    );
}

#[tokio::test]
async fn global_switchover_waits_for_the_new_writer() {
    let switchover = mock!(Client::switchover_global_cluster)
        .match_requests(|r| r.target_db_cluster_identifier() == Some(TARGET))
        .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
    let describe = mock!(Client::describe_global_clusters).then_output(|| global(TARGET));
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&switchover, &describe]);
    let out = execute(
        "rds.switchover_global_cluster",
        &args(&json!({ "global_cluster": "orders", "target_cluster_arn": TARGET })),
        &context(rds),
    )
    .await
    .unwrap();
    assert_eq!(out["writer"], TARGET);
    assert_eq!(switchover.num_calls(), 1);
}

#[tokio::test]
async fn throttling_is_retryable_then_succeeds() {
    let available = || {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("orders-db")
                    .db_instance_status("available")
                    .endpoint(
                        Endpoint::builder()
                            .address("orders-db.example")
                            .port(5432)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let throttled = r"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
    let rule = mock!(Client::describe_db_instances)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .output(available)
        .build();
    // The SDK's own retries are off: drctl's retry policy decides, step by step.
    let rds = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&rule], |c| c
        .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()));
    let ctx = context(rds);
    let a = args(&json!({ "db_instance": "orders-db" }));
    let first = execute("rds.wait_available", &a, &ctx).await.unwrap_err();
    assert!(first.had_no_effect(), "{first:?}");
    assert!(
        first.message.contains("Throttling") && first.message.contains("orders-db"),
        "{}",
        first.message
    );
    let second = execute("rds.wait_available", &a, &ctx).await.unwrap();
    assert_eq!(second["endpoint"], "orders-db.example");
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn access_denied_is_not_retried_and_says_what_to_check() {
    let denied = r"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform rds:DescribeDBInstances</Message></Error></ErrorResponse>";
    let rule = mock!(Client::describe_db_instances)
        .sequence()
        .http_status(403, Some(denied.to_string()))
        .build();
    let rds = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&rule], |c| c
        .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()));
    let e = execute(
        "rds.wait_available",
        &args(&json!({ "db_instance": "orders-db" })),
        &context(rds),
    )
    .await
    .unwrap_err();
    assert_eq!(e.failure, drctl::actions::Failure::Fatal);
    assert!(
        e.message.contains("IAM permissions") && e.message.contains("us-west-2"),
        "{}",
        e.message
    );
}

/// The SDK's standard retries, as a client built from a default configuration has them
/// (with a short backoff, for a fast test).
fn sdk_retries(c: aws_sdk_rds::config::Builder) -> aws_sdk_rds::config::Builder {
    c.retry_config(
        aws_sdk_rds::config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(1)),
    )
}

fn replica() -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier("orders-replica")
                .db_instance_status("available")
                .read_replica_source_db_instance_identifier("orders-db")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn a_promotion_answered_500_is_ambiguous_and_not_sent_again_by_the_sdk() {
    let failed = r"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>internal error</Message></Error></ErrorResponse>";
    let promote = mock!(Client::promote_read_replica)
        .sequence()
        .http_status(500, Some(failed.to_string()))
        .repeatedly()
        .build();
    let describe = mock!(Client::describe_db_instances).then_output(replica);
    // The client retries like any client built from a default configuration: only drctl's
    // own call for the promotion may turn that off.
    let rds = mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&promote, &describe],
        sdk_retries
    );
    let e = execute(
        "rds.promote_read_replica",
        &args(&json!({ "db_instance": "orders-replica" })),
        &context(rds),
    )
    .await
    .unwrap_err();
    assert_eq!(e.failure, drctl::actions::Failure::Ambiguous, "{e:?}");
    assert!(e.message.contains("orders-replica"), "{}", e.message);
    assert_eq!(
        promote.num_calls(),
        1,
        "a promotion that may have happened is not sent again"
    );
}

#[tokio::test]
async fn a_throttled_read_is_still_retried_by_the_sdk() {
    let throttled = r"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
    let describe = mock!(Client::describe_db_instances)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .output(replica)
        .build();
    let rds = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&describe], sdk_retries);
    let out = execute(
        "rds.wait_available",
        &args(&json!({ "db_instance": "orders-replica" })),
        &context(rds),
    )
    .await
    .unwrap();
    assert_eq!(out["endpoint"], serde_json::Value::Null);
    assert_eq!(describe.num_calls(), 2, "the throttled read was retried");
}
