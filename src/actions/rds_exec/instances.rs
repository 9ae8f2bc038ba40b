//! DB instances: reading one, waiting until it is available, promoting a read replica, and
//! its replica lag from `CloudWatch`. The restores, which also end in an available instance,
//! are in [`super::snapshots`].

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_rds::types::DbInstance;
use chrono::Utc;
use serde_json::Value;

use super::region_of;
use crate::actions::LiveState;
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, duration, live_or_unavailable,
    probe_or_undecided, text,
};
use crate::aws::{AwsContext, Clients, classify};

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

/// The `endpoint` and `port` outputs of an instance.
pub(super) fn endpoint_outputs(db: &DbInstance) -> Outputs {
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
pub(super) async fn wait_until_available(
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
    send_once!(
        c,
        c.rds.promote_read_replica().db_instance_identifier(id),
        format!("promotion of DB instance {id}")
    )?;
    let db = wait_until_available(&c, id, true, ctx).await?;
    Ok(endpoint_outputs(&db))
}

/// Probe of `rds.promote_read_replica`: an instance that is no longer a replica was promoted.
pub async fn probe_promote(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        let c = ctx.aws.clients(region_of(args)).await?;
        let id = text(args, "db_instance").unwrap_or_default();
        let db = describe(&c, id).await?;
        if db.read_replica_source_db_instance_identifier().is_none() {
            let db = wait_until_available(&c, id, true, ctx).await?;
            return Ok(Probe::TookEffect(endpoint_outputs(&db)));
        }
        Ok(if db.db_instance_status() == Some("available") {
            Probe::DidNot
        } else {
            Probe::Undecided(format!(
                "{id} is still a replica, in state {}",
                db.db_instance_status().unwrap_or("?")
            ))
        })
    };
    probe_or_undecided(found.await)
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

/// Live role and state of the instance a step names, for plan.
pub async fn current_instance(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(region_of(args)).await?;
        let id = text(args, "db_instance").unwrap_or_default();
        let db = describe(&c, id).await?;
        let status = db.db_instance_status().unwrap_or("?");
        Ok(match db.read_replica_source_db_instance_identifier() {
            Some(source) => format!("{id} is a read replica of {source} ({status})"),
            None => format!("{id} is a standalone primary ({status})"),
        })
    };
    live_or_unavailable(lookup.await)
}

/// Live replica lag, for plan.
pub async fn current_lag(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(region_of(args)).await?;
        let lag = read_lag(&c, text(args, "db_instance").unwrap_or_default()).await?;
        Ok(format!("replica lag now {lag:.0}s"))
    };
    live_or_unavailable(lookup.await)
}
