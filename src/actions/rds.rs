//! RDS actions: promotions, cluster failovers (a global cluster's by the mode it is given or
//! finds), snapshots, restores, and the replica-lag reading that measures RPO. The global
//! replication lag is read with the other global databases' in `replication.rs`.

use std::time::Duration;

use super::rds_exec::{clusters, global_mode, instances, snapshots};
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, ArgProblem, Args, Effect};
use crate::workflow::format_duration;

/// The Aurora global database a global operation acts on.
const GLOBAL_CLUSTER: P = P::required("global_cluster", T::String, "the global cluster identifier");

/// The secondary cluster a global operation makes the writer.
const TARGET_CLUSTER_ARN: P = P::required(
    "target_cluster_arn",
    T::String,
    "ARN of the secondary cluster to promote",
);

/// The instance a restore creates.
const TARGET_DB_INSTANCE: P = P::required(
    "target_db_instance",
    T::String,
    "the new instance's identifier",
);

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![
        Box::new(PromoteReadReplica),
        Box::new(FailoverDbCluster),
        Box::new(FailoverGlobalCluster),
        Box::new(SwitchoverGlobalCluster),
        Box::new(CreateSnapshot),
        Box::new(RestoreFromSnapshot),
        Box::new(RestorePointInTime),
        Box::new(WaitAvailable),
        Box::new(ReplicaLag),
    ]
}

struct PromoteReadReplica;

static PROMOTE: ActionSpec = ActionSpec {
    name: "rds.promote_read_replica",
    summary: "Promote a read replica to a standalone primary and wait until it is available. Cannot be undone.",
    params: &[
        REGION,
        P::required(
            "db_instance",
            T::String,
            "the replica's instance identifier",
        ),
    ],
    outputs: &["endpoint", "port"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for PromoteReadReplica {
    fn spec(&self) -> &'static ActionSpec {
        &PROMOTE
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "promote read replica {} in {} to a standalone primary (irreversible: it stops replicating)",
            args.show("db_instance"),
            args.region()
        )
    }

    hooks! {
        execute = instances::promote,
        probe = instances::probe_promote,
        current = instances::current_instance,
    }
}

struct FailoverDbCluster;

static FAILOVER_CLUSTER: ActionSpec = ActionSpec {
    name: "rds.failover_db_cluster",
    summary: "Fail an Aurora or Multi-AZ DB cluster over to another instance and wait for the new writer.",
    params: &[
        REGION,
        P::required("db_cluster", T::String, "the cluster identifier"),
        P::optional(
            "target_instance",
            T::String,
            "the instance to promote; RDS picks when absent",
        ),
    ],
    outputs: &["writer"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for FailoverDbCluster {
    fn spec(&self) -> &'static ActionSpec {
        &FAILOVER_CLUSTER
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "fail cluster {} in {} over to {}",
            args.show("db_cluster"),
            args.region(),
            args.show_or("target_instance", "an instance RDS chooses")
        )
    }

    hooks! {
        execute = clusters::failover_cluster,
        current = clusters::current_cluster,
    }
}

struct FailoverGlobalCluster;

static FAILOVER_GLOBAL: ActionSpec = ActionSpec {
    name: "rds.failover_global_cluster",
    summary: "Fail an Aurora global database over to a secondary cluster (for a regional outage). With `mode`, the secondary's replication lag is measured first (`lag_seconds`); `auto` also asks the primary's region, and does a switchover (no data loss) when the primary cluster answers and is available, otherwise a failover, which it refuses unless `allow_data_loss = true`. `mode_used` says which was done.",
    params: &[
        REGION,
        GLOBAL_CLUSTER,
        TARGET_CLUSTER_ARN,
        P::defaulted(
            "allow_data_loss",
            T::Bool,
            "false",
            "allow failover when the secondary lags (loses the lagging writes)",
        ),
        P::optional(
            "mode",
            T::OneOf(&["switchover", "failover", "auto"]),
            "switchover, failover, or auto (switchover when the primary region answers, else failover); absent: a failover, without measuring",
        ),
    ],
    outputs: &["writer", "mode_used", "lag_seconds"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for FailoverGlobalCluster {
    fn spec(&self) -> &'static ActionSpec {
        &FAILOVER_GLOBAL
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        if args
            .get("mode")
            .and_then(super::Arg::literal_text)
            .as_deref()
            == Some("switchover")
            && args.get("allow_data_loss").is_some()
        {
            return vec![ArgProblem {
                param: Some("allow_data_loss"),
                message: "a switchover never loses data: `allow_data_loss` has no meaning with `mode = \"switchover\"`".into(),
            }];
        }
        Vec::new()
    }

    fn describe(&self, args: &Args) -> String {
        let allowed = args.bool("allow_data_loss") == Some(true);
        let loss = if allowed {
            ", accepting the loss of unreplicated writes"
        } else {
            ", refusing data loss"
        };
        let (global, target) = (args.show("global_cluster"), args.show("target_cluster_arn"));
        let mode = args.get("mode").map(super::Arg::literal_text);
        match mode.as_ref().map(Option::as_deref) {
            Some(Some("auto")) => format!(
                "fail global cluster {global} over to {target}: a switchover (no data loss) if the primary region answers, else a failover{}; the lag is measured first",
                if allowed {
                    ", accepting the loss of unreplicated writes"
                } else {
                    ", which is refused without allow_data_loss"
                }
            ),
            Some(Some("switchover")) => format!(
                "switch global cluster {global} over to {target} (no data loss); the lag is measured first"
            ),
            Some(Some(_)) => format!(
                "fail global cluster {global} over to {target}{loss}; the lag is measured first"
            ),
            Some(None) => format!(
                "fail global cluster {global} over to {target} by the mode {} gives at run time{loss}; the lag is measured first",
                args.show("mode")
            ),
            None => format!("fail global cluster {global} over to {target}{loss}"),
        }
    }

    hooks! {
        execute = global_mode::failover_global,
        probe = global_mode::probe_failover_global,
        current = clusters::current_global,
    }
}

struct SwitchoverGlobalCluster;

static SWITCHOVER_GLOBAL: ActionSpec = ActionSpec {
    name: "rds.switchover_global_cluster",
    summary: "Planned switchover of an Aurora global database to a secondary cluster, without data loss.",
    params: &[REGION, GLOBAL_CLUSTER, TARGET_CLUSTER_ARN],
    outputs: &["writer"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for SwitchoverGlobalCluster {
    fn spec(&self) -> &'static ActionSpec {
        &SWITCHOVER_GLOBAL
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "switch global cluster {} over to {} (no data loss)",
            args.show("global_cluster"),
            args.show("target_cluster_arn")
        )
    }

    hooks! {
        execute = clusters::switchover_global,
        probe = clusters::probe_global,
        current = clusters::current_global,
    }
}

struct CreateSnapshot;

static CREATE_SNAPSHOT: ActionSpec = ActionSpec {
    name: "rds.create_snapshot",
    summary: "Take a manual snapshot of an instance and wait until it is available.",
    params: &[
        REGION,
        P::required("db_instance", T::String, "the instance to snapshot"),
        P::required("snapshot_id", T::String, "the new snapshot's identifier"),
    ],
    outputs: &["snapshot_id", "snapshot_time"],
    idempotent: false,
    effect: Effect::Additive,
};

impl Action for CreateSnapshot {
    fn spec(&self) -> &'static ActionSpec {
        &CREATE_SNAPSHOT
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "snapshot {} in {} as {}",
            args.show("db_instance"),
            args.region(),
            args.show("snapshot_id")
        )
    }

    hooks! {
        execute = snapshots::create_snapshot,
        probe = snapshots::probe_snapshot,
    }
}

struct RestoreFromSnapshot;

static RESTORE_SNAPSHOT: ActionSpec = ActionSpec {
    name: "rds.restore_from_snapshot",
    summary: "Restore a new instance from a snapshot and wait until it is available.",
    params: &[
        REGION,
        P::required("snapshot_id", T::String, "the snapshot to restore"),
        TARGET_DB_INSTANCE,
        P::optional(
            "instance_class",
            T::String,
            "instance class; the snapshot's when absent",
        ),
    ],
    outputs: &["endpoint", "port", "rpo_seconds"],
    idempotent: false,
    effect: Effect::Additive,
};

impl Action for RestoreFromSnapshot {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_SNAPSHOT
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "restore snapshot {} in {} into a new instance {}{}",
            args.show("snapshot_id"),
            args.region(),
            args.show("target_db_instance"),
            args.get("instance_class")
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        )
    }

    hooks! {
        execute = snapshots::restore_snapshot,
        probe = snapshots::probe_restore,
    }
}

struct RestorePointInTime;

static RESTORE_PITR: ActionSpec = ActionSpec {
    name: "rds.restore_point_in_time",
    summary: "Restore a new instance to a point in time (or the latest restorable time) and wait until it is available.",
    params: &[
        REGION,
        P::required(
            "source_db_instance",
            T::String,
            "the instance whose backups are used",
        ),
        TARGET_DB_INSTANCE,
        P::optional(
            "restore_time",
            T::Timestamp,
            "the moment to restore to (RFC 3339)",
        ),
        P::optional(
            "use_latest_restorable_time",
            T::Bool,
            "restore to the latest restorable time",
        ),
    ],
    outputs: &["endpoint", "port", "restore_time", "rpo_seconds"],
    idempotent: false,
    effect: Effect::Additive,
};

/// What is wrong with the point a point-in-time restore is asked for (RDS and `DynamoDB`): a
/// `restore_time` or `use_latest_restorable_time = true`, exactly one of them.
pub(super) fn restore_point_problems(args: &Args) -> Vec<ArgProblem> {
    let latest = args.bool("use_latest_restorable_time") == Some(true);
    match (args.get("restore_time").is_some(), latest) {
        (true, true) => vec![ArgProblem {
            param: Some("use_latest_restorable_time"),
            message: "give either `restore_time` or `use_latest_restorable_time = true`, not both".into(),
        }],
        (false, false) => vec![ArgProblem {
            param: None,
            message: "say which point to restore to: `restore_time = \"...\"` or `use_latest_restorable_time = true`".into(),
        }],
        _ => Vec::new(),
    }
}

/// The point a point-in-time restore goes back to, in words for its plan.
pub(super) fn restore_point(args: &Args) -> String {
    args.get("restore_time").map_or_else(
        || "the latest restorable time".to_string(),
        ToString::to_string,
    )
}

impl Action for RestorePointInTime {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_PITR
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        restore_point_problems(args)
    }

    fn describe(&self, args: &Args) -> String {
        let point = restore_point(args);
        format!(
            "restore {} in {} to {point} into a new instance {}",
            args.show("source_db_instance"),
            args.region(),
            args.show("target_db_instance")
        )
    }

    hooks! {
        execute = snapshots::restore_pitr,
        probe = snapshots::probe_restore,
    }
}

struct WaitAvailable;

static WAIT_AVAILABLE: ActionSpec = ActionSpec {
    name: "rds.wait_available",
    summary: "Wait until an instance is available; outputs its endpoint.",
    params: &[
        REGION,
        P::required("db_instance", T::String, "the instance to wait for"),
    ],
    outputs: &["endpoint", "port"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for WaitAvailable {
    fn spec(&self) -> &'static ActionSpec {
        &WAIT_AVAILABLE
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "wait until {} in {} is available",
            args.show("db_instance"),
            args.region()
        )
    }

    hooks! {
        execute = instances::wait_available,
        current = instances::current_instance,
    }
}

struct ReplicaLag;

static REPLICA_LAG: ActionSpec = ActionSpec {
    name: "rds.replica_lag",
    summary: "Read a replica's lag (CloudWatch ReplicaLag); the lag is the data that would be lost (RPO).",
    params: &[
        REGION,
        P::required("db_instance", T::String, "the replica"),
        P::optional("max_lag", T::Duration, "fail when the lag is above this"),
    ],
    outputs: &["lag_seconds", "rpo_seconds"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for ReplicaLag {
    fn spec(&self) -> &'static ActionSpec {
        &REPLICA_LAG
    }

    fn describe(&self, args: &Args) -> String {
        let limit = args
            .duration("max_lag")
            .map(|d: Duration| format!("; fail above {}", format_duration(d)))
            .unwrap_or_default();
        format!(
            "read the replication lag of {} in {}{limit}",
            args.show("db_instance"),
            args.region()
        )
    }

    hooks! {
        execute = instances::replica_lag,
        current = instances::current_lag,
    }
}
