//! The global-data actions (SPEC §6): the replication-lag gates of Aurora global databases and
//! `DynamoDB` global tables, an Aurora global failover by `mode`, an `ElastiCache` global
//! datastore failover, and SSM Automation runbooks.
//!
//! `CloudWatch` is moto's (`tests/support/moto_server.py`): the lag gates and the lag a global
//! failover measures are read from metric data put there. moto has no Aurora global-cluster
//! failover or switchover, no `ElastiCache` global datastores and no SSM Automation, so those
//! are SDK-level mocks (`aws-smithy-mocks`), each test saying so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use drctl::actions::processes::{AttemptMark, StepProcesses};
use drctl::actions::{
    ExecContext, Failure, LiveState, Outputs, Probe, Registry, Resolved, StepError,
};
use drctl::aws::{AwsContext, Clients};
use serde_json::{Value, json};

use crate::aws::{Moto, rt};

/// A client of SDK `$sdk` answered by `rules` (matched in any order), without the SDK crate's
/// test-util feature.
macro_rules! mocked {
    ($sdk:ident, [$($rule:expr),+ $(,)?]) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        $(interceptor = interceptor.with_rule($rule);)+
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-west-2"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "test", "test", None, None, "mock",
                ))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

/// Clients from `config` (moto's, or one that reaches nothing), changed by `with`.
fn clients(config: &aws_config::SdkConfig, with: impl FnOnce(&mut Clients)) -> Clients {
    let mut clients = Clients::from_config(config);
    with(&mut clients);
    clients
}

/// A configuration whose clients are never called (every service the test uses is mocked).
fn unreachable_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .build()
}

fn context(clients: Clients, previous: Option<Value>, attempt: Option<u32>) -> ExecContext {
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(clients)),
        incident_start: chrono::Utc::now(),
        previous,
        remember: None,
        processes: StepProcesses {
            guard: None,
            attempt: attempt.map(|attempt| AttemptMark {
                run: "r-global".into(),
                step: "runbook".into(),
                attempt,
            }),
        },
    }
}

fn map(v: &Value) -> Resolved {
    v.as_object().unwrap().clone()
}

/// Runs an action's attempt as the driver does, with a journal that answers its request to
/// record what it is about to change; `on_record` runs when that request arrives (before the
/// change is sent). Returns the attempt's result and what it journaled, if anything.
async fn execute_journaled(
    name: &str,
    args: &Resolved,
    mut ctx: ExecContext,
    on_record: impl FnOnce(),
) -> (Result<Outputs, StepError>, Option<Value>) {
    let action = Registry::builtin().shared(name).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<drctl::actions::PreviousRequest>();
    ctx.remember = Some(drctl::actions::Remember {
        step: "step".into(),
        attempt: 1,
        tx,
    });
    let journal = async {
        let mut journaled = None;
        let mut on_record = Some(on_record);
        while let Some(request) = rx.recv().await {
            if let Some(f) = on_record.take() {
                f();
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

async fn execute(name: &str, args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    Registry::builtin()
        .shared(name)
        .unwrap()
        .execute(args, ctx)
        .await
}

/// An HTTP answer of `status` with `body`, as a service error arrives.
fn http(status: u16, body: &'static str) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// A datapoint of `metric` in milliseconds, as AWS publishes replication lag.
async fn put_millis(
    config: &aws_config::SdkConfig,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    millis: f64,
) {
    let mut datum = MetricDatum::builder()
        .metric_name(metric)
        .value(millis)
        .unit(StandardUnit::Milliseconds);
    for (name, value) in dimensions {
        datum = datum.dimensions(Dimension::builder().name(*name).value(*value).build());
    }
    aws_sdk_cloudwatch::Client::new(config)
        .put_metric_data()
        .namespace(namespace)
        .metric_data(datum.build())
        .send()
        .await
        .unwrap();
}

#[test]
#[allow(clippy::too_many_lines, reason = "one emulator, every reading in turn")]
fn lag_gates_read_cloudwatch_in_seconds_and_stop_above_their_limit() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(async {
        put_millis(
            &config,
            "AWS/RDS",
            "AuroraGlobalDBReplicationLag",
            &[("DBClusterIdentifier", "orders-usw2")],
            1500.0,
        )
        .await;
        put_millis(
            &config,
            "AWS/DynamoDB",
            "ReplicationLatency",
            &[("TableName", "orders"), ("ReceivingRegion", "us-west-2")],
            800.0,
        )
        .await;
        // Another receiving region, far behind: only the one asked about is read.
        put_millis(
            &config,
            "AWS/DynamoDB",
            "ReplicationLatency",
            &[("TableName", "orders"), ("ReceivingRegion", "eu-west-1")],
            90_000.0,
        )
        .await;
    });
    let ctx = context(clients(&config, |_| {}), None, None);
    let run = |name: &str, args: Value| rt.block_on(execute(name, &map(&args), &ctx));

    let lag = run(
        "rds.global_replication_lag",
        json!({ "db_cluster": "orders-usw2", "max_lag": "5s" }),
    )
    .unwrap();
    assert_eq!(lag, map(&json!({ "lag_seconds": 1.5, "rpo_seconds": 1.5 })));
    let above = run(
        "rds.global_replication_lag",
        json!({ "db_cluster": "orders-usw2", "max_lag": "1s" }),
    )
    .unwrap_err();
    assert_eq!(above.failure, Failure::Fatal, "{above:?}");
    assert!(
        above.message.contains("lags 1.5s, above max_lag 1s"),
        "{}",
        above.message
    );
    // No datapoint (a cluster that is not a secondary, or CloudWatch a minute behind): a later
    // attempt may find one.
    let none = run(
        "rds.global_replication_lag",
        json!({ "db_cluster": "orders-euw1" }),
    )
    .unwrap_err();
    assert_eq!(none.failure, Failure::NoEffect, "{none:?}");

    let latency = run(
        "dynamodb.replication_latency",
        json!({ "table": "orders", "receiving_region": "us-west-2", "max_latency": "1m" }),
    )
    .unwrap();
    assert_eq!(
        latency,
        map(&json!({ "latency_seconds": 0.8, "rpo_seconds": 0.8 }))
    );
    let behind = run(
        "dynamodb.replication_latency",
        json!({ "table": "orders", "receiving_region": "eu-west-1", "max_latency": "1m" }),
    )
    .unwrap_err();
    assert_eq!(behind.failure, Failure::Fatal);
    assert!(behind.message.contains("90.0s"), "{}", behind.message);

    // A limit known only at run time and not a duration fails the step, without echoing it.
    let bad = run(
        "rds.global_replication_lag",
        json!({ "db_cluster": "orders-usw2", "max_lag": "soon" }),
    )
    .unwrap_err();
    assert_eq!(bad.failure, Failure::Fatal);
    assert!(!bad.message.contains("soon"), "{}", bad.message);

    // Plan shows the live values.
    let aws = AwsContext::with_clients(clients(&config, |_| {}));
    let current = |name: &str, args: Value| {
        rt.block_on(
            Registry::builtin()
                .shared(name)
                .unwrap()
                .current(&map(&args), &aws),
        )
    };
    assert_eq!(
        current(
            "rds.global_replication_lag",
            json!({ "db_cluster": "orders-usw2" })
        ),
        LiveState::Current("AuroraGlobalDBReplicationLag of cluster orders-usw2 now 1.5s".into())
    );
    assert_eq!(
        current(
            "dynamodb.replication_latency",
            json!({ "table": "orders", "receiving_region": "us-west-2" })
        ),
        LiveState::Current(
            "ReplicationLatency of global table orders to us-west-2 now 0.8s".into()
        )
    );
}

// ---- rds.failover_global_cluster's mode: moto's CloudWatch for the lag, mocked RDS (moto has
// no FailoverGlobalCluster or SwitchoverGlobalCluster).

mod global {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
    use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
    use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
    use aws_sdk_rds::types::{DbCluster, GlobalCluster, GlobalClusterMember};

    use super::*;

    pub const TARGET: &str = "arn:aws:rds:us-west-2:123456789012:cluster:orders-usw2";
    pub const PRIMARY: &str = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";

    pub fn global(writer: &str) -> DescribeGlobalClustersOutput {
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
                    .global_cluster_members(member(PRIMARY))
                    .global_cluster_members(member(TARGET))
                    .build(),
            )
            .build()
    }

    /// How the primary cluster's region answers.
    #[derive(Clone, Copy)]
    pub enum Primary {
        /// It answers: the cluster is in this state.
        Is(&'static str),
        /// It answers every try with this HTTP status and body.
        Http(u16, &'static str),
    }

    /// The RDS the step sees: the global cluster's writer moves to the target once it is
    /// asked to; the primary cluster's region answers as `primary` says.
    pub struct Rds {
        pub client: Client,
        pub failover: Rule,
        pub switchover: Rule,
        pub primary: Rule,
    }

    pub fn rds(primary: Primary) -> Rds {
        let moved = Arc::new(Mutex::new(false));
        let (on_failover, on_switchover, seen) = (moved.clone(), moved.clone(), moved);
        let failover = mock!(Client::failover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some("orders")
                    && r.target_db_cluster_identifier() == Some(TARGET)
                    && r.allow_data_loss() == Some(true)
            })
            .then_compute_output(move |_| {
                *on_failover.lock().unwrap() = true;
                FailoverGlobalClusterOutput::builder().build()
            });
        let switchover = mock!(Client::switchover_global_cluster)
            .match_requests(|r| r.target_db_cluster_identifier() == Some(TARGET))
            .then_compute_output(move |_| {
                *on_switchover.lock().unwrap() = true;
                SwitchoverGlobalClusterOutput::builder().build()
            });
        let describe = mock!(Client::describe_global_clusters).then_compute_output(move |_| {
            global(if *seen.lock().unwrap() {
                TARGET
            } else {
                PRIMARY
            })
        });
        // The primary's region is asked about the primary cluster by its identifier. (A
        // sequence, not a computed answer: the mock computes nothing for the SDK's retries.)
        let asked = mock!(Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("orders-use1"));
        let primary = match primary {
            Primary::Is(status) => asked.then_output(move || {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_identifier("orders-use1")
                            .status(status)
                            .build(),
                    )
                    .build()
            }),
            Primary::Http(status, body) => asked
                .sequence()
                .http_response(move || http(status, body))
                .repeatedly()
                .build(),
        };
        let client = mocked!(aws_sdk_rds, [&failover, &switchover, &describe, &primary]);
        Rds {
            client,
            failover,
            switchover,
            primary,
        }
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one emulator, every answer of the primary in turn"
)]
fn auto_mode_switches_over_when_the_primary_answers_and_fails_over_only_when_allowed() {
    use global::{Primary, TARGET, rds};
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(put_millis(
        &config,
        "AWS/RDS",
        "AuroraGlobalDBReplicationLag",
        &[("DBClusterIdentifier", "orders-usw2")],
        2500.0,
    ));
    let args = |allow: Option<bool>| {
        let mut a =
            json!({ "global_cluster": "orders", "target_cluster_arn": TARGET, "mode": "auto" });
        if let Some(allow) = allow {
            a["allow_data_loss"] = allow.into();
        }
        map(&a)
    };
    let with = |rds: &global::Rds| {
        let client = rds.client.clone();
        context(clients(&config, move |c| c.rds = client), None, None)
    };
    let failover = |a: &Resolved, rds: &global::Rds| {
        rt.block_on(execute("rds.failover_global_cluster", a, &with(rds)))
    };

    // The primary answers and is available: a switchover, no data lost, even though the step
    // would allow a loss.
    let up = rds(Primary::Is("available"));
    let out = failover(&args(Some(true)), &up).unwrap();
    assert_eq!(
        out,
        map(&json!({ "writer": TARGET, "mode_used": "switchover", "lag_seconds": 2.5 }))
    );
    assert_eq!((up.switchover.num_calls(), up.failover.num_calls()), (1, 0));

    // The primary's region answers 503: the primary does not answer, so a failover, which
    // this step allows.
    let down = rds(Primary::Http(503, "Service Unavailable"));
    let out = failover(&args(Some(true)), &down).unwrap();
    assert_eq!(
        out,
        map(&json!({ "writer": TARGET, "mode_used": "failover", "lag_seconds": 2.5 }))
    );
    assert_eq!(
        (down.switchover.num_calls(), down.failover.num_calls()),
        (0, 1)
    );

    // The primary cluster answers, but not available (its region half down): a failover too.
    let degraded = rds(Primary::Is("inaccessible-encryption-credentials"));
    let out = failover(&args(Some(true)), &degraded).unwrap();
    assert_eq!(out["mode_used"], "failover");

    // Without allow_data_loss the failover is refused in words, and nothing is sent.
    for allow in [None, Some(false)] {
        let down = rds(Primary::Http(503, "Service Unavailable"));
        let refused = failover(&args(allow), &down).unwrap_err();
        assert_eq!(refused.failure, Failure::Fatal, "{refused:?}");
        for words in [
            "needs its primary, which does not answer",
            "would lose the writes not yet replicated (the secondary lagged 2.5s)",
            "set `allow_data_loss = true`",
        ] {
            assert!(refused.message.contains(words), "{}", refused.message);
        }
        assert_eq!(
            (down.switchover.num_calls(), down.failover.num_calls()),
            (0, 0)
        );
    }

    // A primary region that answers with a refusal answers: no failover is chosen from a
    // permission missing, the step fails on it and sends nothing.
    let denied = rds(Primary::Http(
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>",
    ));
    let err = failover(&args(Some(true)), &denied).unwrap_err();
    assert_eq!(err.failure, Failure::Fatal, "{err:?}");
    assert!(err.message.contains("AccessDenied"), "{}", err.message);
    assert_eq!(
        (denied.switchover.num_calls(), denied.failover.num_calls()),
        (0, 0)
    );

    // Explicit modes measure the lag and do what they say, without asking the primary.
    let explicit = rds(Primary::Is("available"));
    let mut a = args(None);
    a.insert("mode".into(), "switchover".into());
    let out = failover(&a, &explicit).unwrap();
    assert_eq!(out["mode_used"], "switchover");
    assert_eq!(out["lag_seconds"], 2.5);
    assert_eq!(
        explicit.primary.num_calls(),
        0,
        "an explicit mode does not ask the primary"
    );

    // Without a mode: the failover as before, nothing measured.
    let plain = rds(Primary::Is("available"));
    let mut a = args(Some(true));
    a.remove("mode");
    let out = failover(&a, &plain).unwrap();
    assert_eq!(
        out,
        map(&json!({ "writer": TARGET, "mode_used": "failover", "lag_seconds": null }))
    );
    assert_eq!(
        (plain.failover.num_calls(), plain.primary.num_calls()),
        (1, 0)
    );

    // The choice is journaled before the operation is sent.
    let up = rds(Primary::Is("available"));
    let (out, journaled) = rt.block_on(execute_journaled(
        "rds.failover_global_cluster",
        &args(Some(true)),
        with(&up),
        || {},
    ));
    assert_eq!(out.unwrap()["mode_used"], "switchover");
    let journaled = journaled.unwrap();
    assert_eq!(
        journaled,
        json!({ "previous": { "mode_used": "switchover", "lag_seconds": 2.5 } })
    );

    // An attempt after a crash does what the first chose, without choosing again: here the
    // primary has stopped answering since, and a new choice would be a failover that loses
    // data while the switchover is under way.
    let since = rds(Primary::Http(503, "Service Unavailable"));
    let retried = || {
        let client = since.client.clone();
        context(
            clients(&config, move |c| c.rds = client),
            Some(journaled.clone()),
            None,
        )
    };
    let out = rt
        .block_on(execute(
            "rds.failover_global_cluster",
            &args(Some(true)),
            &retried(),
        ))
        .unwrap();
    assert_eq!(out["mode_used"], "switchover");
    assert_eq!(out["lag_seconds"], 2.5);
    assert_eq!(
        (
            since.switchover.num_calls(),
            since.failover.num_calls(),
            since.primary.num_calls()
        ),
        (1, 0, 0)
    );

    // The probe finds the target writing and says, from the journal, which mode did it and
    // the lag measured before; with nothing journaled (the crash came before), it cannot say.
    let action = Registry::builtin()
        .shared("rds.failover_global_cluster")
        .unwrap();
    let probe = rt.block_on(action.probe(&args(Some(true)), &retried()));
    assert_eq!(
        probe,
        Probe::TookEffect(map(
            &json!({ "writer": TARGET, "mode_used": "switchover", "lag_seconds": 2.5 })
        ))
    );
    let probe = rt.block_on(action.probe(&args(Some(true)), &with(&plain)));
    assert_eq!(
        probe,
        Probe::TookEffect(map(
            &json!({ "writer": TARGET, "mode_used": null, "lag_seconds": null })
        ))
    );
}

// ---- elasticache.failover_global_datastore: mocked (moto has no ElastiCache global
// datastores).

mod datastore {
    use aws_sdk_elasticache::Client;
    use aws_sdk_elasticache::operation::describe_global_replication_groups::DescribeGlobalReplicationGroupsOutput;
    use aws_sdk_elasticache::operation::failover_global_replication_group::FailoverGlobalReplicationGroupOutput;
    use aws_sdk_elasticache::types::{GlobalReplicationGroup, GlobalReplicationGroupMember};

    use super::*;

    /// The datastore as described: `primary` is `(group, region)` of the primary member.
    pub fn described(status: &str, primary: &str) -> DescribeGlobalReplicationGroupsOutput {
        let member = |group: &str, region: &str| {
            GlobalReplicationGroupMember::builder()
                .replication_group_id(group)
                .replication_group_region(region)
                .role(if group == primary {
                    "PRIMARY"
                } else {
                    "SECONDARY"
                })
                .status("associated")
                .build()
        };
        DescribeGlobalReplicationGroupsOutput::builder()
            .global_replication_groups(
                GlobalReplicationGroup::builder()
                    .global_replication_group_id("ldgnf-sessions")
                    .status(status)
                    .members(member("sessions-use1", "us-east-1"))
                    .members(member("sessions-usw2", "us-west-2"))
                    .build(),
            )
            .build()
    }

    pub struct Ec {
        pub client: Client,
        pub failover: Rule,
    }

    /// A datastore answering `states` in turn (the last one repeatedly), failing over when
    /// asked with `answer`.
    pub fn elasticache(
        states: Vec<(&'static str, &'static str)>,
        answer: Option<HttpResponse>,
    ) -> Ec {
        let failover = mock!(Client::failover_global_replication_group).match_requests(|r| {
            r.global_replication_group_id() == Some("ldgnf-sessions")
                && r.primary_region() == Some("us-west-2")
                && r.primary_replication_group_id() == Some("sessions-usw2")
        });
        let failover = match answer {
            None => {
                failover.then_output(|| FailoverGlobalReplicationGroupOutput::builder().build())
            }
            Some(answer) => {
                let answer = Mutex::new(Some(answer));
                failover.then_http_response(move || answer.lock().unwrap().take().unwrap())
            }
        };
        let mut sequence = mock!(Client::describe_global_replication_groups)
            .match_requests(|r| {
                r.global_replication_group_id() == Some("ldgnf-sessions")
                    && r.show_member_info() == Some(true)
            })
            .sequence();
        let last = states.len() - 1;
        for (i, (status, primary)) in states.into_iter().enumerate() {
            if i < last {
                sequence = sequence.output(move || described(status, primary));
            } else {
                return Ec {
                    client: mocked!(
                        aws_sdk_elasticache,
                        [
                            &failover,
                            &sequence
                                .output(move || described(status, primary))
                                .repeatedly()
                                .build()
                        ]
                    ),
                    failover,
                };
            }
        }
        unreachable!("states is not empty")
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one failover, then every probe and refusal in turn"
)]
fn a_global_datastore_failover_journals_the_primary_region_first_and_probes_which_is_primary() {
    use datastore::elasticache;
    let rt = rt();
    let args = map(&json!({
        "region": "us-west-2", "global_datastore": "ldgnf-sessions",
        "primary_region": "us-west-2", "primary_replication_group": "sessions-usw2",
    }));
    let with = |ec: &datastore::Ec, previous: Option<Value>| {
        let client = ec.client.clone();
        context(
            clients(&unreachable_config(), move |c| c.elasticache = client),
            previous,
            None,
        )
    };

    // us-east-1 is primary; the failover passes through "modifying" before the datastore is
    // available with us-west-2 primary, and the step waits for that.
    let ec = elasticache(
        vec![
            ("available", "sessions-use1"),
            ("modifying", "sessions-use1"),
            ("modifying", "sessions-usw2"),
            ("available", "sessions-usw2"),
        ],
        None,
    );
    let sent_before_record = Arc::new(Mutex::new(None));
    let seen = sent_before_record.clone();
    let failover = ec.failover.clone();
    let (out, journaled) = rt.block_on(execute_journaled(
        "elasticache.failover_global_datastore",
        &args,
        with(&ec, None),
        move || *seen.lock().unwrap() = Some(failover.num_calls()),
    ));
    assert_eq!(
        out.unwrap(),
        map(&json!({ "previous_primary_region": "us-east-1" }))
    );
    assert_eq!(journaled, Some(json!({ "previous": "us-east-1" })));
    assert_eq!(
        *sent_before_record.lock().unwrap(),
        Some(0),
        "the primary region was journaled before the failover was sent"
    );
    assert_eq!(ec.failover.num_calls(), 1);

    let probe = |ec: &datastore::Ec, previous: Option<Value>| {
        rt.block_on(
            Registry::builtin()
                .shared("elasticache.failover_global_datastore")
                .unwrap()
                .probe(&args, &with(ec, previous)),
        )
    };
    // After a crash: us-west-2 primary, so the lost attempt took effect.
    assert_eq!(
        probe(&ec, journaled.clone()),
        Probe::TookEffect(map(&json!({ "previous_primary_region": "us-east-1" })))
    );
    // Nothing journaled: no attempt got as far as sending.
    assert_eq!(probe(&ec, None), Probe::DidNot);
    // us-east-1 still primary and at rest: it did not happen; mid-change, nobody can tell.
    let at_rest = elasticache(vec![("available", "sessions-use1")], None);
    assert_eq!(probe(&at_rest, journaled.clone()), Probe::DidNot);
    let moving = elasticache(vec![("modifying", "sessions-use1")], None);
    assert!(matches!(
        probe(&moving, journaled.clone()),
        Probe::Undecided(_)
    ));

    // A re-run after the failover landed keeps the region journaled first.
    let again = rt
        .block_on(execute(
            "elasticache.failover_global_datastore",
            &args,
            &with(&ec, journaled.clone()),
        ))
        .unwrap();
    assert_eq!(again["previous_primary_region"], "us-east-1");
    assert_eq!(ec.failover.num_calls(), 1, "not sent again");

    // Already primary, and not by this step: nothing to fail over.
    let done = elasticache(vec![("available", "sessions-usw2")], None);
    let err = rt
        .block_on(execute(
            "elasticache.failover_global_datastore",
            &args,
            &with(&done, None),
        ))
        .unwrap_err();
    assert_eq!(err.failure, Failure::Fatal);
    assert!(
        err.message.contains("already the primary"),
        "{}",
        err.message
    );

    // The datastore busy with another change turns the failover down: nothing changed, a
    // later attempt may pass.
    let busy = elasticache(
        vec![("available", "sessions-use1")],
        Some(http(
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidGlobalReplicationGroupState</Code><Message>The global datastore is modifying</Message></Error></ErrorResponse>",
        )),
    );
    let err = rt
        .block_on(execute(
            "elasticache.failover_global_datastore",
            &args,
            &with(&busy, None),
        ))
        .unwrap_err();
    assert_eq!(err.failure, Failure::NoEffect, "{err:?}");

    // Plan shows which region is primary now.
    let aws = AwsContext::with_clients(clients(&unreachable_config(), |c| {
        c.elasticache = at_rest.client.clone();
    }));
    assert_eq!(
        rt.block_on(
            Registry::builtin()
                .shared("elasticache.failover_global_datastore")
                .unwrap()
                .current(&args, &aws)
        ),
        LiveState::Current(
            "primary of ldgnf-sessions: sessions-use1 (us-east-1); the datastore is available"
                .into()
        )
    );
}

// ---- ssm.start_automation: mocked (moto has no SSM Automation). The mock is a small SSM that
// keeps its executions by client token, as SSM does: a start sent again with a token it
// knows answers with the execution that token started.

mod automation {
    use aws_sdk_ssm::Client;
    use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
    use aws_sdk_ssm::operation::start_automation_execution::StartAutomationExecutionOutput;
    use aws_sdk_ssm::types::{AutomationExecution, AutomationExecutionStatus};

    use super::*;

    #[derive(Default)]
    pub struct Ssm {
        /// Execution id by client token.
        pub executions: HashMap<String, String>,
        /// The token of every start received, in order.
        pub starts: Vec<String>,
        /// The parameters of every start received.
        pub parameters: Vec<HashMap<String, Vec<String>>>,
        /// What a read of an execution answers.
        pub status: Option<AutomationExecutionStatus>,
        /// What a read of one execution answers, when not `status`.
        pub statuses: HashMap<String, AutomationExecutionStatus>,
    }

    pub fn ssm(state: &Arc<Mutex<Ssm>>) -> Client {
        let starts = state.clone();
        let start = mock!(Client::start_automation_execution).then_compute_output(move |r| {
            let mut ssm = starts.lock().unwrap();
            let token = r.client_token().expect("a client token").to_string();
            ssm.starts.push(token.clone());
            ssm.parameters
                .push(r.parameters().cloned().unwrap_or_default());
            let next = format!("exec-{}", ssm.executions.len() + 1);
            let id = ssm.executions.entry(token).or_insert(next).clone();
            StartAutomationExecutionOutput::builder()
                .automation_execution_id(id)
                .build()
        });
        let reads = state.clone();
        let get = mock!(Client::get_automation_execution).then_compute_output(move |r| {
            let ssm = reads.lock().unwrap();
            let status = ssm
                .statuses
                .get(r.automation_execution_id().unwrap())
                .or(ssm.status.as_ref())
                .cloned()
                .unwrap_or(AutomationExecutionStatus::Inprogress);
            let mut execution = AutomationExecution::builder()
                .automation_execution_id(r.automation_execution_id().unwrap())
                .automation_execution_status(status.clone());
            if status == AutomationExecutionStatus::Success {
                execution = execution.outputs("RestartInstances.Output", vec!["i-0123".into()]);
            }
            if status == AutomationExecutionStatus::Failed {
                execution = execution.failure_message("Step RestartInstances failed");
            }
            GetAutomationExecutionOutput::builder()
                .automation_execution(execution.build())
                .build()
        });
        mocked!(aws_sdk_ssm, [&start, &get])
    }
}

const RUNBOOK: &str = r#"
[workflow]
name = "restart-app"
kind = "failover"

[[steps]]
id = "runbook"
action = "ssm.start_automation"
with = { region = "us-west-2", document = "AWS-RestartEC2Instance", parameters = { InstanceId = ["i-0123"] } }
timeout = "1m"
"#;

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one run: its start, the crash, the take-up"
)]
fn a_runbook_started_then_killed_before_its_record_is_found_again_not_started_twice() {
    use automation::{Ssm, ssm};
    use aws_sdk_ssm::types::AutomationExecutionStatus;
    use drctl::engine::{Driver, Input, NewRun, Run, Services, SystemClock, Until};
    use drctl::store::{MemoryStore, StepStatus, Store};

    let state = Arc::new(Mutex::new(Ssm::default()));
    let services = Services::new(AwsContext::with_clients(clients(
        &unreachable_config(),
        |c| c.ssm = ssm(&state),
    )));
    let checked = drctl::check::check_source(
        drctl::diagnostic::SourceFile::new("runbook.toml", RUNBOOK),
        &services.registry,
        &[],
    );
    let workflow = Arc::new(
        checked
            .workflow
            .unwrap_or_else(|| panic!("invalid: {:?}", checked.diagnostics)),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let exec = || ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: services.aws.clone(),
        incident_start: chrono::Utc::now(),
        previous: None,
        remember: None,
        processes: StepProcesses::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The first driver starts the runbook and dies while it runs: the start was answered, its
    // outcome never recorded (the state a kill -9 leaves: what was committed, nothing more).
    let run = Run::start(
        store.clone(),
        &NewRun {
            workflow: Arc::clone(&workflow),
            workflow_file: "runbook.toml".into(),
            workflow_source: RUNBOOK.into(),
            overrides: vec![],
            mode: drctl::store::RunMode::Run,
            initiator: "alice".into(),
            incident_start: None,
            key: None,
        },
        &SystemClock,
    )
    .unwrap();
    let run_id = run.id().to_string();
    let mut first = Driver::new(run, &services, exec(), Box::new(|_, _, _| {}));
    rt.block_on(async {
        let drive = first.drive(
            Input::Start,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        );
        let started = async {
            while state.lock().unwrap().starts.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Let it read the running execution once or twice.
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::select! {
            ended = drive => panic!("the run ended while the runbook runs: {ended:?}"),
            () = started => {}
        }
    });
    drop(first);
    let steps = store.steps(&run_id).unwrap();
    assert_eq!(steps[0].status, StepStatus::Running, "no outcome recorded");
    let journal = store.journal(&run_id).unwrap();
    let recorded: Vec<Value> = journal
        .iter()
        .filter_map(|e| match serde_json::from_value(e.event.clone()).unwrap() {
            drctl::engine::Event::PreviousRecorded { previous, .. } => Some(previous),
            _ => None,
        })
        .collect();
    assert_eq!(recorded.len(), 1, "the token is journaled before the start");
    assert_eq!(
        recorded[0]["previous"]["client_token"],
        state.lock().unwrap().starts[0].as_str(),
        "the token journaled is the one sent"
    );

    // Taken up: the step's outcome is unknown and it is idempotent, so attempt 2 runs. It
    // sends the first attempt's token and finds the first execution, which has succeeded.
    state.lock().unwrap().status = Some(AutomationExecutionStatus::Success);
    let record = store.run(&run_id).unwrap().unwrap();
    let run = Run::load_record(store.clone(), record, Arc::clone(&workflow)).unwrap();
    let mut second = Driver::new(run, &services, exec(), Box::new(|_, _, _| {}));
    let entered = rt.enter();
    second.feed(Input::Interrupted).unwrap();
    second.feed(Input::Recover).unwrap();
    drop(entered);
    let status = rt
        .block_on(second.drive(
            Input::Start,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        ))
        .unwrap();
    assert_eq!(status, drctl::store::RunStatus::Succeeded);

    let ssm = state.lock().unwrap();
    assert_eq!(ssm.executions.len(), 1, "exactly one execution exists");
    assert_eq!(
        ssm.starts.len(),
        2,
        "the start was sent again after the crash"
    );
    assert_eq!(ssm.starts[0], ssm.starts[1], "with the same client token");
    assert_eq!(
        ssm.parameters[0].get("InstanceId"),
        Some(&vec!["i-0123".to_string()])
    );
    let steps = store.steps(&run_id).unwrap();
    assert_eq!(steps[0].status, StepStatus::Succeeded);
    assert_eq!(steps[0].attempts.len(), 2, "{:?}", steps[0].attempts);
    assert_eq!(
        Value::Object(steps[0].outputs.clone()),
        json!({
            "execution_id": "exec-1",
            "status": "Success",
            "outputs": { "RestartInstances.Output": ["i-0123"] },
        })
    );
}

#[test]
fn a_runbook_waits_for_its_end_and_fails_unless_it_succeeded() {
    use automation::{Ssm, ssm};
    use aws_sdk_ssm::types::AutomationExecutionStatus;
    let rt = rt();
    let args = |wait: bool| {
        map(&json!({
            "document": "AWS-RestartEC2Instance",
            "parameters": { "InstanceId": ["i-0123", "i-0456"], "Count": [2] },
            "wait": wait,
        }))
    };
    let with = |state: &Arc<Mutex<Ssm>>, attempt: Option<u32>| {
        context(
            clients(&unreachable_config(), |c| c.ssm = ssm(state)),
            None,
            attempt,
        )
    };

    // Without waiting: started, still in progress.
    let state = Arc::new(Mutex::new(Ssm::default()));
    let (out, journaled) = rt.block_on(execute_journaled(
        "ssm.start_automation",
        &args(false),
        with(&state, Some(1)),
        || {},
    ));
    let out = out.unwrap();
    assert_eq!(out["execution_id"], "exec-1");
    assert_eq!(out["status"], "InProgress");
    let token = state.lock().unwrap().starts[0].clone();
    assert_eq!(
        journaled,
        Some(json!({ "previous": { "client_token": token, "attempt": 1 } }))
    );
    assert_eq!(
        state.lock().unwrap().parameters[0],
        HashMap::from([
            (
                "InstanceId".to_string(),
                vec!["i-0123".to_string(), "i-0456".to_string()]
            ),
            ("Count".to_string(), vec!["2".to_string()]),
        ])
    );
    // A token looks like the UUID SSM requires, and another attempt or run derives another.
    assert!(
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            .unwrap()
            .is_match(&token),
        "{token}"
    );
    let other = Arc::new(Mutex::new(Ssm::default()));
    rt.block_on(execute(
        "ssm.start_automation",
        &args(false),
        &with(&other, Some(2)),
    ))
    .unwrap();
    assert_ne!(other.lock().unwrap().starts[0], token);

    // It failed: the step fails, saying how.
    state.lock().unwrap().status = Some(AutomationExecutionStatus::Failed);
    let err = rt
        .block_on(execute(
            "ssm.start_automation",
            &args(true),
            &with(&state, Some(1)),
        ))
        .unwrap_err();
    assert_eq!(err.failure, Failure::Fatal);
    assert!(
        err.message
            .contains("ended Failed: Step RestartInstances failed"),
        "{}",
        err.message
    );

    // Outside a run's attempt there is no token to derive: nothing is started.
    let none = Arc::new(Mutex::new(Ssm::default()));
    let err = rt
        .block_on(execute(
            "ssm.start_automation",
            &args(true),
            &with(&none, None),
        ))
        .unwrap_err();
    assert_eq!(err.failure, Failure::Fatal);
    assert!(none.lock().unwrap().starts.is_empty());
}

/// The step retried after its runbook failed (`on_failure = "pause"`, then `drctl resume`):
/// the failed execution is not waited on again, the runbook runs again, once.
#[test]
fn a_runbook_that_ended_without_succeeding_is_run_again_by_a_later_attempt_and_only_once() {
    use automation::{Ssm, ssm};
    use aws_sdk_ssm::types::AutomationExecutionStatus as Status;
    let rt = rt();
    let args = map(&json!({ "document": "AWS-RestartEC2Instance", "wait": false }));
    let with = |state: &Arc<Mutex<Ssm>>, previous: &Value, attempt: u32| {
        context(
            clients(&unreachable_config(), |c| c.ssm = ssm(state)),
            Some(previous.clone()),
            Some(attempt),
        )
    };
    // Attempt 1 started exec-1, which failed.
    let state = Arc::new(Mutex::new(Ssm::default()));
    let (first, journaled) = rt.block_on(execute_journaled(
        "ssm.start_automation",
        &args,
        context(
            clients(&unreachable_config(), |c| c.ssm = ssm(&state)),
            None,
            Some(1),
        ),
        || {},
    ));
    assert_eq!(first.unwrap()["execution_id"], "exec-1");
    let journaled = journaled.unwrap();
    let attempt = |n: u32| {
        rt.block_on(execute(
            "ssm.start_automation",
            &args,
            &with(&state, &journaled, n),
        ))
        .unwrap()
    };
    state
        .lock()
        .unwrap()
        .statuses
        .insert("exec-1".into(), Status::Failed);

    // Attempt 3 (attempt 2 died before it sent anything): exec-1 failed, so the token of
    // attempt 2 is sent, which starts exec-2.
    let out = attempt(3);
    assert_eq!(out["execution_id"], "exec-2");
    assert_eq!(out["status"], "InProgress");
    {
        let ssm = state.lock().unwrap();
        assert_eq!(ssm.executions.len(), 2);
        assert_eq!(ssm.starts.len(), 3, "{:?}", ssm.starts);
        assert_eq!(ssm.starts[1], ssm.starts[0], "the journaled token first");
        assert_ne!(ssm.starts[2], ssm.starts[0], "then the next attempt's");
    }

    // Attempt 4, exec-2 still going: it is found and waited on, nothing else is started.
    let out = attempt(4);
    assert_eq!(out["execution_id"], "exec-2");
    assert_eq!(state.lock().unwrap().executions.len(), 2);

    // Attempt 5, exec-2 succeeded: found, and the step succeeds on it.
    state
        .lock()
        .unwrap()
        .statuses
        .insert("exec-2".into(), Status::Success);
    let out = attempt(5);
    assert_eq!(out["execution_id"], "exec-2");
    assert_eq!(out["status"], "Success");
    assert_eq!(state.lock().unwrap().executions.len(), 2, "never a third");

    // The failed one found by the attempt that started it: the step fails, nothing new.
    let lone = Arc::new(Mutex::new(Ssm {
        status: Some(Status::Failed),
        ..Ssm::default()
    }));
    let err = rt
        .block_on(execute_journaled(
            "ssm.start_automation",
            &args,
            context(
                clients(&unreachable_config(), |c| c.ssm = ssm(&lone)),
                None,
                Some(1),
            ),
            || {},
        ))
        .0
        .unwrap_err();
    assert_eq!(err.failure, Failure::Fatal, "{err:?}");
    assert_eq!(lone.lock().unwrap().executions.len(), 1);
}

#[test]
fn a_runbook_start_turned_down_changed_nothing_and_one_with_other_parameters_is_refused() {
    use aws_sdk_ssm::Client;
    let rt = rt();
    let args = map(&json!({ "document": "AWS-RestartEC2Instance" }));
    let answered = |body: &'static str| {
        let start =
            mock!(Client::start_automation_execution).then_http_response(move || http(400, body));
        let client = mocked!(aws_sdk_ssm, [&start]);
        context(
            clients(&unreachable_config(), move |c| c.ssm = client),
            None,
            Some(1),
        )
    };
    let limit = rt
        .block_on(execute(
            "ssm.start_automation",
            &args,
            &answered(
                r#"{"__type":"AutomationExecutionLimitExceededException","Message":"too many running"}"#,
            ),
        ))
        .unwrap_err();
    assert_eq!(limit.failure, Failure::NoEffect, "{limit:?}");
    let mismatch = rt
        .block_on(execute(
            "ssm.start_automation",
            &args,
            &answered(r#"{"__type":"IdempotentParameterMismatch","Message":"mismatch"}"#),
        ))
        .unwrap_err();
    assert_eq!(mismatch.failure, Failure::Fatal, "{mismatch:?}");
    assert!(
        mismatch
            .message
            .contains("started it with other parameters under the same client token"),
        "{}",
        mismatch.message
    );
}

const AUTO_FAILOVER: &str = r#"
[workflow]
name = "orders-global"
kind = "failover"
rpo = "1m"

[[steps]]
id = "lag"
action = "rds.global_replication_lag"
with = { region = "us-west-2", db_cluster = "orders-usw2", max_lag = "5m" }
measures = "rpo"

[[steps]]
id = "move-writer"
action = "rds.failover_global_cluster"
needs = ["lag"]
with = { region = "us-west-2", global_cluster = "orders", target_cluster_arn = "arn:aws:rds:us-west-2:123456789012:cluster:orders-usw2", mode = "auto", allow_data_loss = true }
"#;

/// A run of an Aurora global failover in `auto` mode, lag from moto's `CloudWatch`, the global
/// cluster mocked (moto has no `FailoverGlobalCluster`), the primary's region answering 503:
/// its report says which mode was used and what lag was measured.
#[test]
fn the_report_of_an_auto_failover_shows_the_mode_used_and_the_lag() {
    use drctl::engine::{Driver, Input, NewRun, Run, Services, SystemClock, Until};
    use drctl::store::{MemoryStore, RunStatus, Store};
    use global::{Primary, rds};

    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = rt.block_on(moto.config());
    rt.block_on(put_millis(
        &config,
        "AWS/RDS",
        "AuroraGlobalDBReplicationLag",
        &[("DBClusterIdentifier", "orders-usw2")],
        2500.0,
    ));
    let down = rds(Primary::Http(503, "Service Unavailable"));
    let client = down.client.clone();
    let services = Services::new(AwsContext::with_clients(clients(&config, move |c| {
        c.rds = client;
    })));
    let checked = drctl::check::check_source(
        drctl::diagnostic::SourceFile::new("global.toml", AUTO_FAILOVER),
        &services.registry,
        &[],
    );
    let workflow = Arc::new(
        checked
            .workflow
            .unwrap_or_else(|| panic!("invalid: {:?}", checked.diagnostics)),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let run = Run::start(
        store.clone(),
        &NewRun {
            workflow: Arc::clone(&workflow),
            workflow_file: "global.toml".into(),
            workflow_source: AUTO_FAILOVER.into(),
            overrides: vec![],
            mode: drctl::store::RunMode::Run,
            initiator: "alice".into(),
            incident_start: None,
            key: None,
        },
        &SystemClock,
    )
    .unwrap();
    let run_id = run.id().to_string();
    let exec = ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: services.aws.clone(),
        incident_start: chrono::Utc::now(),
        previous: None,
        remember: None,
        processes: StepProcesses::default(),
    };
    let mut driver = Driver::new(run, &services, exec, Box::new(|_, _, _| {}));
    let status = rt
        .block_on(driver.drive(
            Input::Start,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        ))
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    assert_eq!(down.failover.num_calls(), 1);

    let report = drctl::report::build(&*store, &run_id).unwrap();
    let step = report.steps.iter().find(|s| s.id == "move-writer").unwrap();
    assert_eq!(step.outputs["mode_used"], "failover");
    assert_eq!(step.outputs["lag_seconds"], 2.5);
    let markdown = drctl::report::markdown(&report);
    for words in ["\"mode_used\":\"failover\"", "\"lag_seconds\":2.5"] {
        assert!(markdown.contains(words), "{words} not in:\n{markdown}");
    }
    let json: Value = serde_json::from_str(&drctl::report::json(&report)).unwrap();
    assert_eq!(json["rpo"]["achieved_seconds"], 2.5, "{}", json["rpo"]);
}

const LAG_GATES: &str = r#"
[workflow]
name = "orders-lag-gates"
kind = "failover"
rpo = "1m"

[[steps]]
id = "aurora-lag"
action = "rds.global_replication_lag"
with = { region = "us-west-2", db_cluster = "orders-usw2", max_lag = "1m" }
measures = "rpo"

[[steps]]
id = "table-latency"
action = "dynamodb.replication_latency"
with = { region = "us-east-1", table = "orders", receiving_region = "us-west-2", max_latency = "1m" }
"#;

/// The lag gates through the command line, every request sent to the emulator by
/// `--aws-endpoint-url`: plan shows the lag now, the run passes both gates and logs each
/// `CloudWatch` request, and the report's RPO is the lag measured.
#[test]
fn the_lag_gates_run_from_the_command_line_against_the_endpoint_given() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(put_millis(
        &config,
        "AWS/RDS",
        "AuroraGlobalDBReplicationLag",
        &[("DBClusterIdentifier", "orders-usw2")],
        1500.0,
    ));
    // The table's writes are in us-east-1: its latency is published there.
    let east = rt.block_on(async {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    });
    rt.block_on(put_millis(
        &east,
        "AWS/DynamoDB",
        "ReplicationLatency",
        &[("TableName", "orders"), ("ReceivingRegion", "us-west-2")],
        700.0,
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gates.toml");
    std::fs::write(&file, LAG_GATES).unwrap();
    let file = file.to_str().unwrap();
    let state = dir.path().join("state");

    let plan = moto.drctl(&state).run(&["plan", file]);
    let text = plan.text();
    assert_eq!(plan.code, 0, "{text}");
    for now in [
        "current: AuroraGlobalDBReplicationLag of cluster orders-usw2 now 1.5s",
        "current: ReplicationLatency of global table orders to us-west-2 now 0.7s",
    ] {
        assert!(text.contains(now), "{now} not in:\n{text}");
    }

    let out = moto
        .drctl(&state)
        .run(&["run", file, "--as", "ops", "--json", "-vv"])
        .code(0);
    let calls: Vec<Value> = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "AWS call" && l["operation"] == "GetMetricStatistics")
        .collect();
    for step in ["aurora-lag", "table-latency"] {
        let call = calls
            .iter()
            .find(|c| c["step"] == step)
            .unwrap_or_else(|| panic!("no CloudWatch call of {step} logged:\n{}", out.stderr));
        assert_eq!(
            (call["status"].as_u64(), call["outcome"].as_str()),
            (Some(200), Some("ok"))
        );
    }
    let run_id = out.run_id();
    let report = moto
        .drctl(&state)
        .run(&["report", &run_id, "--format", "json"])
        .ok()
        .json();
    assert_eq!(report["rpo"]["achieved_seconds"], 1.5, "{}", report["rpo"]);
    let steps = report["steps"].as_array().unwrap();
    let latency = steps.iter().find(|s| s["id"] == "table-latency").unwrap();
    assert_eq!(latency["outputs"]["latency_seconds"], 0.7);
}
