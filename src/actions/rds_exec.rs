//! RDS and `CloudWatch` through the SDK. Asynchronous operations wait for their end state,
//! polling; the step's timeout bounds the wait.

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_rds::types::DbInstance;
use aws_smithy_types::date_time::Format;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::outcome::{ExecContext, Outputs, Probe, Resolved, StepError, duration, text};
use crate::aws::{Clients, classify};

fn region_of(args: &Resolved) -> Option<&str> {
    text(args, "region")
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    crate::time::rfc3339(t)
}

/// The instance `id` as RDS describes it now.
pub async fn describe(c: &Clients, id: &str) -> Result<DbInstance, StepError> {
    let what = format!("DB instance {id}");
    let out = c
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| classify(&e, &what, &c.region))?;
    out.db_instances().first().cloned().ok_or_else(|| {
        StepError::fatal(format!(
            "{what} in {}: not found (check the name and the region)",
            c.region
        ))
    })
}

fn endpoint_outputs(db: &DbInstance) -> Outputs {
    let mut out = Outputs::new();
    let endpoint = db.endpoint();
    out.insert(
        "endpoint".into(),
        endpoint
            .and_then(|e| e.address())
            .map_or(Value::Null, Into::into),
    );
    out.insert(
        "port".into(),
        endpoint
            .and_then(aws_sdk_rds::types::Endpoint::port)
            .map_or(Value::Null, Into::into),
    );
    out
}

/// Polls until the instance is available (and, with `standalone`, no longer a replica).
async fn wait_until_available(
    c: &Clients,
    id: &str,
    standalone: bool,
    ctx: &ExecContext,
) -> Result<DbInstance, StepError> {
    loop {
        let db = describe(c, id).await?;
        let available = db.db_instance_status() == Some("available");
        if available && (!standalone || db.read_replica_source_db_instance_identifier().is_none()) {
            return Ok(db);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// `rds.wait_available`.
pub async fn wait_available(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let db = wait_until_available(
        &c,
        text(args, "db_instance").unwrap_or_default(),
        false,
        ctx,
    )
    .await?;
    Ok(endpoint_outputs(&db))
}

/// `rds.promote_read_replica`.
pub async fn promote(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let id = text(args, "db_instance").unwrap_or_default();
    let before = describe(&c, id).await?;
    if before
        .read_replica_source_db_instance_identifier()
        .is_none()
    {
        return Err(StepError::fatal(format!(
            "DB instance {id} in {} is not a read replica: nothing to promote (already promoted, or the wrong instance?)",
            c.region
        )));
    }
    c.rds
        .promote_read_replica()
        .db_instance_identifier(id)
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("promotion of DB instance {id}"), &c.region))?;
    let db = wait_until_available(&c, id, true, ctx).await?;
    Ok(endpoint_outputs(&db))
}

/// Probe of `rds.promote_read_replica`: an instance that is no longer a replica was promoted.
pub async fn probe_promote(args: &Resolved, ctx: &ExecContext) -> Probe {
    let c = match ctx.aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return Probe::Undecided(e.message),
    };
    let id = text(args, "db_instance").unwrap_or_default();
    match describe(&c, id).await {
        Ok(db) if db.read_replica_source_db_instance_identifier().is_none() => {
            match wait_until_available(&c, id, true, ctx).await {
                Ok(db) => Probe::TookEffect(endpoint_outputs(&db)),
                Err(e) => Probe::Undecided(e.message),
            }
        }
        Ok(db) if db.db_instance_status() == Some("available") => Probe::DidNot,
        Ok(db) => Probe::Undecided(format!(
            "{id} is still a replica, in state {}",
            db.db_instance_status().unwrap_or("?")
        )),
        Err(e) => Probe::Undecided(e.message),
    }
}

/// `rds.replica_lag`: the latest `CloudWatch` `ReplicaLag` of the last 10 minutes.
pub async fn replica_lag(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let id = text(args, "db_instance").unwrap_or_default();
    let lag = read_lag(&c, id).await?;
    if let Some(max) = duration(args, "max_lag")
        && lag > max.as_secs_f64()
    {
        return Err(StepError::fatal(format!(
            "replica {id} in {} lags {lag:.0}s, above max_lag {}: failing over now would lose that much data",
            c.region,
            crate::workflow::format_duration(max)
        )));
    }
    let mut out = Outputs::new();
    out.insert("lag_seconds".into(), lag.into());
    out.insert("rpo_seconds".into(), lag.into());
    Ok(out)
}

/// The newest `ReplicaLag` datapoint, in seconds.
pub async fn read_lag(c: &Clients, id: &str) -> Result<f64, StepError> {
    let now = Utc::now();
    let start = now - chrono::Duration::minutes(10);
    let dimension = Dimension::builder()
        .name("DBInstanceIdentifier")
        .value(id)
        .build();
    let out = c
        .cloudwatch
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .dimensions(dimension)
        .start_time(aws_smithy_types::DateTime::from_secs(start.timestamp()))
        .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp() + 60))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("ReplicaLag of {id}"), &c.region))?;
    out.datapoints()
        .iter()
        .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, lag)| lag)
        .ok_or_else(|| {
            StepError::no_effect(format!(
                "no ReplicaLag datapoint for {id} in {} in the last 10 minutes (is it a read replica? CloudWatch may lag a minute)",
                c.region
            ))
        })
}

/// `rds.create_snapshot`.
pub async fn create_snapshot(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (db, snap) = (
        text(args, "db_instance").unwrap_or_default(),
        text(args, "snapshot_id").unwrap_or_default(),
    );
    c.rds
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(snap)
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("snapshot {snap} of DB instance {db}"),
                &c.region,
            )
        })?;
    wait_snapshot(&c, snap, ctx).await
}

async fn snapshot(
    c: &Clients,
    snap: &str,
) -> Result<Option<aws_sdk_rds::types::DbSnapshot>, StepError> {
    let result = c
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snap)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out.db_snapshots().first().cloned()),
        Err(e) if e.as_service_error().is_some_and(aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError::is_db_snapshot_not_found_fault) => Ok(None),
        Err(e) => Err(classify(&e, &format!("snapshot {snap}"), &c.region)),
    }
}

async fn wait_snapshot(c: &Clients, snap: &str, ctx: &ExecContext) -> Result<Outputs, StepError> {
    loop {
        let s = snapshot(c, snap).await?.ok_or_else(|| {
            StepError::fatal(format!("snapshot {snap} in {}: not found", c.region))
        })?;
        if s.status() == Some("available") {
            let mut out = Outputs::new();
            out.insert("snapshot_id".into(), snap.into());
            out.insert(
                "snapshot_time".into(),
                s.snapshot_create_time()
                    .and_then(to_chrono)
                    .map_or(Value::Null, |t| rfc3339(t).into()),
            );
            return Ok(out);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// Probe of `rds.create_snapshot`: the snapshot exists.
pub async fn probe_snapshot(args: &Resolved, ctx: &ExecContext) -> Probe {
    let c = match ctx.aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return Probe::Undecided(e.message),
    };
    let snap = text(args, "snapshot_id").unwrap_or_default();
    match snapshot(&c, snap).await {
        Ok(Some(_)) => match wait_snapshot(&c, snap, ctx).await {
            Ok(out) => Probe::TookEffect(out),
            Err(e) => Probe::Undecided(e.message),
        },
        Ok(None) => Probe::DidNot,
        Err(e) => Probe::Undecided(e.message),
    }
}

fn rpo_since(incident_start: DateTime<Utc>, point: DateTime<Utc>) -> f64 {
    (incident_start - point)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64()
}

/// `rds.restore_from_snapshot`.
pub async fn restore_snapshot(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (snap, target) = (
        text(args, "snapshot_id").unwrap_or_default(),
        text(args, "target_db_instance").unwrap_or_default(),
    );
    let taken = snapshot(&c, snap)
        .await?
        .ok_or_else(|| {
            StepError::fatal(format!(
                "snapshot {snap} in {}: not found (check the name and the region)",
                c.region
            ))
        })?
        .snapshot_create_time()
        .and_then(to_chrono);
    let mut request = c
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_snapshot_identifier(snap)
        .db_instance_identifier(target);
    if let Some(class) = text(args, "instance_class") {
        request = request.db_instance_class(class);
    }
    request
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("restore of snapshot {snap} into {target}"),
                &c.region,
            )
        })?;
    let db = wait_until_available(&c, target, false, ctx).await?;
    let mut out = endpoint_outputs(&db);
    out.insert(
        "rpo_seconds".into(),
        taken.map_or(Value::Null, |t| rpo_since(ctx.incident_start, t).into()),
    );
    Ok(out)
}

/// `rds.restore_point_in_time`.
pub async fn restore_pitr(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (source, target) = (
        text(args, "source_db_instance").unwrap_or_default(),
        text(args, "target_db_instance").unwrap_or_default(),
    );
    let mut request = c
        .rds
        .restore_db_instance_to_point_in_time()
        .source_db_instance_identifier(source)
        .target_db_instance_identifier(target);
    let point = if let Some(t) = text(args, "restore_time") {
        let parsed = aws_smithy_types::DateTime::from_str(t, Format::DateTime).map_err(|e| {
            StepError::fatal(format!(
                "restore_time {t} is not an RFC 3339 timestamp: {e}"
            ))
        })?;
        request = request.restore_time(parsed);
        to_chrono(&parsed)
    } else {
        request = request.use_latest_restorable_time(true);
        describe(&c, source)
            .await?
            .latest_restorable_time()
            .and_then(to_chrono)
    };
    request
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("point-in-time restore of {source} into {target}"),
                &c.region,
            )
        })?;
    let db = wait_until_available(&c, target, false, ctx).await?;
    let mut out = endpoint_outputs(&db);
    out.insert(
        "restore_time".into(),
        point.map_or(Value::Null, |p| rfc3339(p).into()),
    );
    out.insert(
        "rpo_seconds".into(),
        point.map_or(Value::Null, |p| rpo_since(ctx.incident_start, p).into()),
    );
    Ok(out)
}

/// Probe of the restores: the target instance exists.
pub async fn probe_restore(args: &Resolved, ctx: &ExecContext) -> Probe {
    let c = match ctx.aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return Probe::Undecided(e.message),
    };
    let target = text(args, "target_db_instance").unwrap_or_default();
    match c.rds.describe_db_instances().db_instance_identifier(target).send().await {
        Ok(_) => Probe::Undecided(format!("{target} exists, but its restore point cannot be read back: decide, or --retry after deleting it")),
        Err(e) if e.as_service_error().is_some_and(aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError::is_db_instance_not_found_fault) => Probe::DidNot,
        Err(e) => Probe::Undecided(classify(&e, &format!("DB instance {target}"), &c.region).message),
    }
}

async fn cluster_writer(c: &Clients, cluster: &str) -> Result<Option<String>, StepError> {
    let out = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("DB cluster {cluster}"), &c.region))?;
    Ok(out
        .db_clusters()
        .first()
        .and_then(|cl| {
            cl.db_cluster_members()
                .iter()
                .find(|m| m.is_cluster_writer() == Some(true))
        })
        .and_then(|m| m.db_instance_identifier().map(str::to_string)))
}

/// `rds.failover_db_cluster`.
pub async fn failover_cluster(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let cluster = text(args, "db_cluster").unwrap_or_default();
    let before = cluster_writer(&c, cluster).await?;
    let mut request = c.rds.failover_db_cluster().db_cluster_identifier(cluster);
    if let Some(target) = text(args, "target_instance") {
        request = request.target_db_instance_identifier(target);
    }
    request
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("failover of DB cluster {cluster}"), &c.region))?;
    loop {
        let writer = cluster_writer(&c, cluster).await?;
        let done = match text(args, "target_instance") {
            Some(t) => writer.as_deref() == Some(t),
            None => writer.is_some() && writer != before,
        };
        if done {
            let mut out = Outputs::new();
            out.insert("writer".into(), writer.into());
            return Ok(out);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

async fn global_writer(c: &Clients, global: &str) -> Result<Option<String>, StepError> {
    let out = c
        .rds
        .describe_global_clusters()
        .global_cluster_identifier(global)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("global cluster {global}"), &c.region))?;
    Ok(out
        .global_clusters()
        .first()
        .and_then(|g| {
            g.global_cluster_members()
                .iter()
                .find(|m| m.is_writer() == Some(true))
        })
        .and_then(|m| m.db_cluster_arn().map(str::to_string)))
}

async fn wait_global_writer(
    c: &Clients,
    global: &str,
    target: &str,
    ctx: &ExecContext,
) -> Result<Outputs, StepError> {
    loop {
        let writer = global_writer(c, global).await?;
        if writer.as_deref() == Some(target) {
            let mut out = Outputs::new();
            out.insert("writer".into(), target.into());
            return Ok(out);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// `rds.failover_global_cluster`.
pub async fn failover_global(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (global, target) = (
        text(args, "global_cluster").unwrap_or_default(),
        text(args, "target_cluster_arn").unwrap_or_default(),
    );
    c.rds
        .failover_global_cluster()
        .global_cluster_identifier(global)
        .target_db_cluster_identifier(target)
        .allow_data_loss(
            args.get("allow_data_loss")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("failover of global cluster {global} to {target}"),
                &c.region,
            )
        })?;
    wait_global_writer(&c, global, target, ctx).await
}

/// `rds.switchover_global_cluster`.
pub async fn switchover_global(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (global, target) = (
        text(args, "global_cluster").unwrap_or_default(),
        text(args, "target_cluster_arn").unwrap_or_default(),
    );
    c.rds
        .switchover_global_cluster()
        .global_cluster_identifier(global)
        .target_db_cluster_identifier(target)
        .customize()
        .config_override(crate::aws::sent_once_rds())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("switchover of global cluster {global} to {target}"),
                &c.region,
            )
        })?;
    wait_global_writer(&c, global, target, ctx).await
}

/// Probe of the global operations: the target is the writer.
pub async fn probe_global(args: &Resolved, ctx: &ExecContext) -> Probe {
    let c = match ctx.aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return Probe::Undecided(e.message),
    };
    let (global, target) = (
        text(args, "global_cluster").unwrap_or_default(),
        text(args, "target_cluster_arn").unwrap_or_default(),
    );
    match global_writer(&c, global).await {
        Ok(Some(w)) if w == target => {
            let mut out = Outputs::new();
            out.insert("writer".into(), target.into());
            Probe::TookEffect(out)
        }
        Ok(_) => Probe::Undecided(format!(
            "{target} is not the writer of {global} yet; the operation may still be under way"
        )),
        Err(e) => Probe::Undecided(e.message),
    }
}

/// Live role and state of the instance a step names, for plan.
pub async fn current_instance(args: &Resolved, aws: &crate::aws::AwsContext) -> super::LiveState {
    let c = match aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return super::LiveState::Unavailable(e.message),
    };
    let id = text(args, "db_instance").unwrap_or_default();
    match describe(&c, id).await {
        Ok(db) => {
            let status = db.db_instance_status().unwrap_or("?");
            super::LiveState::Current(match db.read_replica_source_db_instance_identifier() {
                Some(source) => format!("{id} is a read replica of {source} ({status})"),
                None => format!("{id} is a standalone primary ({status})"),
            })
        }
        Err(e) => super::LiveState::Unavailable(e.message),
    }
}

/// Live replica lag, for plan.
pub async fn current_lag(args: &Resolved, aws: &crate::aws::AwsContext) -> super::LiveState {
    let c = match aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return super::LiveState::Unavailable(e.message),
    };
    match read_lag(&c, text(args, "db_instance").unwrap_or_default()).await {
        Ok(lag) => super::LiveState::Current(format!("replica lag now {lag:.0}s")),
        Err(e) => super::LiveState::Unavailable(e.message),
    }
}

/// Live writer of a cluster, for plan.
pub async fn current_cluster(args: &Resolved, aws: &crate::aws::AwsContext) -> super::LiveState {
    let c = match aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return super::LiveState::Unavailable(e.message),
    };
    let cluster = text(args, "db_cluster").unwrap_or_default();
    match cluster_writer(&c, cluster).await {
        Ok(w) => super::LiveState::Current(format!(
            "writer of {cluster}: {}",
            w.unwrap_or_else(|| "none".into())
        )),
        Err(e) => super::LiveState::Unavailable(e.message),
    }
}

/// Live writer of a global cluster, for plan.
pub async fn current_global(args: &Resolved, aws: &crate::aws::AwsContext) -> super::LiveState {
    let c = match aws.clients(region_of(args)).await {
        Ok(c) => c,
        Err(e) => return super::LiveState::Unavailable(e.message),
    };
    let global = text(args, "global_cluster").unwrap_or_default();
    match global_writer(&c, global).await {
        Ok(w) => super::LiveState::Current(format!(
            "writer of {global}: {}",
            w.unwrap_or_else(|| "none".into())
        )),
        Err(e) => super::LiveState::Unavailable(e.message),
    }
}
