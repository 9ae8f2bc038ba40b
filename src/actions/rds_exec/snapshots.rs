//! DB snapshots and restores: taking a manual snapshot, restoring a new instance from a
//! snapshot or to a point in time, the probes that tell whether a lost attempt created
//! something, and the RPO each restore implies.

use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
use aws_sdk_rds::types::DbSnapshot;
use aws_smithy_types::date_time::Format;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::instances::{describe, endpoint_outputs, wait_until_available};
use super::{region_of, rfc3339, to_chrono};
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, probe_or_undecided, text,
};
use crate::aws::{Clients, classify};

/// `rds.create_snapshot`.
pub async fn create_snapshot(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (db, snap) = (
        text(args, "db_instance").unwrap_or_default(),
        text(args, "snapshot_id").unwrap_or_default(),
    );
    send_once!(
        c,
        c.rds
            .create_db_snapshot()
            .db_instance_identifier(db)
            .db_snapshot_identifier(snap),
        format!("snapshot {snap} of DB instance {db}")
    )?;
    wait_snapshot(&c, snap, ctx).await
}

async fn snapshot(c: &Clients, snap: &str) -> Result<Option<DbSnapshot>, StepError> {
    let result = c
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snap)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out.db_snapshots().first().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(DescribeDBSnapshotsError::is_db_snapshot_not_found_fault) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e, &format!("snapshot {snap}"), &c.region).into()),
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
    let found = async {
        let c = ctx.aws.clients(region_of(args)).await?;
        let snap = text(args, "snapshot_id").unwrap_or_default();
        Ok(match snapshot(&c, snap).await? {
            Some(_) => Probe::TookEffect(wait_snapshot(&c, snap, ctx).await?),
            None => Probe::DidNot,
        })
    };
    probe_or_undecided(found.await)
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
    send_once!(
        c,
        request,
        format!("restore of snapshot {snap} into {target}")
    )?;
    restored(&c, target, (Outputs::new(), taken), ctx).await
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
    send_once!(
        c,
        request,
        format!("point-in-time restore of {source} into {target}")
    )?;
    let mut restore_time = Outputs::new();
    restore_time.insert(
        "restore_time".into(),
        point.map_or(Value::Null, |p| rfc3339(p).into()),
    );
    restored(&c, target, (restore_time, point), ctx).await
}

/// Waits for restored instance `target`, and says where it is, then `extra`, then the RPO of
/// its data, as of `data`.
async fn restored(
    c: &Clients,
    target: &str,
    (extra, data): (Outputs, Option<DateTime<Utc>>),
    ctx: &ExecContext,
) -> Result<Outputs, StepError> {
    let db = wait_until_available(c, target, false, ctx).await?;
    let mut out = endpoint_outputs(&db);
    out.extend(extra);
    out.insert(
        "rpo_seconds".into(),
        data.map_or(Value::Null, |t| rpo_since(ctx.incident_start, t).into()),
    );
    Ok(out)
}

/// Probe of the restores: the target instance exists.
pub async fn probe_restore(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        let c = ctx.aws.clients(region_of(args)).await?;
        let target = text(args, "target_db_instance").unwrap_or_default();
        let result = c
            .rds
            .describe_db_instances()
            .db_instance_identifier(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Probe::Undecided(format!(
                "{target} exists, but its restore point cannot be read back: decide, or --retry after deleting it"
            ))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(DescribeDBInstancesError::is_db_instance_not_found_fault) =>
            {
                Ok(Probe::DidNot)
            }
            Err(e) => Err(classify(&e, &format!("DB instance {target}"), &c.region).into()),
        }
    };
    probe_or_undecided(found.await)
}
