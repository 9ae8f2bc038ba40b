//! Replication lag of global databases, read from `CloudWatch`: how far an Aurora global
//! database's secondary cluster and a `DynamoDB` global table's replica are behind. The lag is
//! the data a failover would lose now, so each reading is also an RPO (`rpo_seconds`), and
//! with a limit it is the gate before a failover.

use std::time::Duration;

use super::replication_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, Args, Effect};
use crate::workflow::format_duration;

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(GlobalReplicationLag), Box::new(ReplicationLatency)]
}

/// "; fail above 5m" for a limit given in `name`, nothing without one.
fn limit(args: &Args, name: &str) -> String {
    args.duration(name)
        .map(|d: Duration| format!("; fail above {}", format_duration(d)))
        .unwrap_or_default()
}

struct GlobalReplicationLag;

static GLOBAL_REPLICATION_LAG: ActionSpec = ActionSpec {
    name: "rds.global_replication_lag",
    summary: "Read how far a secondary cluster of an Aurora global database lags its primary (CloudWatch AuroraGlobalDBReplicationLag, the newest datapoint of the last 10 minutes); the lag is the data a failover would lose (RPO).",
    params: &[
        REGION,
        P::required(
            "db_cluster",
            T::String,
            "the secondary cluster's identifier (the region is the secondary's)",
        ),
        P::optional("max_lag", T::Duration, "fail when the lag is above this"),
    ],
    outputs: &["lag_seconds", "rpo_seconds"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for GlobalReplicationLag {
    fn spec(&self) -> &'static ActionSpec {
        &GLOBAL_REPLICATION_LAG
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "read the global replication lag of cluster {} in {}{}",
            args.show("db_cluster"),
            args.region(),
            limit(args, "max_lag")
        )
    }

    hooks! {
        execute = exec::global_lag,
        current = exec::current_global_lag,
    }
}

struct ReplicationLatency;

static REPLICATION_LATENCY: ActionSpec = ActionSpec {
    name: "dynamodb.replication_latency",
    summary: "Read how long a DynamoDB global table's writes in this region take to reach a replica in another region (CloudWatch ReplicationLatency, the newest datapoint of the last 10 minutes); the latency is the data a failover to that region would lose (RPO).",
    params: &[
        REGION,
        P::required("table", T::String, "the global table's name"),
        P::required(
            "receiving_region",
            T::String,
            "the region of the replica the writes travel to",
        ),
        P::optional(
            "max_latency",
            T::Duration,
            "fail when the latency is above this",
        ),
    ],
    outputs: &["latency_seconds", "rpo_seconds"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for ReplicationLatency {
    fn spec(&self) -> &'static ActionSpec {
        &REPLICATION_LATENCY
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "read the replication latency of global table {} from {} to {}{}",
            args.show("table"),
            args.region(),
            args.show("receiving_region"),
            limit(args, "max_latency")
        )
    }

    hooks! {
        execute = exec::replication_latency,
        current = exec::current_latency,
    }
}
