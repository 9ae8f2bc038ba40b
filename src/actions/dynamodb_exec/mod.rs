//! `DynamoDB` through the SDK: [`backups`] (on-demand backups) and [`restores`] (new tables
//! restored to a point in time or from a backup), over what both read here: a table as
//! `DynamoDB` describes it, its point-in-time recovery window, and the wait for a table to be
//! ACTIVE, bounded by the step's timeout.

pub mod backups;
pub mod restores;

use aws_sdk_dynamodb::operation::describe_continuous_backups::DescribeContinuousBackupsError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{PointInTimeRecoveryStatus, TableDescription, TableStatus};
use chrono::{DateTime, Utc};

use super::LiveState;
use super::outcome::{ExecContext, Resolved, StepError, live_or_unavailable, text};
use crate::aws::{AwsContext, Clients, classify};

/// Sends `$request`, a `DynamoDB` call that creates something, once (no retry by the SDK:
/// drctl decides by the step's idempotence and its probe), its failure classified as about
/// `$what` in the region of the clients `$c`.
macro_rules! send_once {
    ($c:expr, $request:expr, $what:expr) => {
        $request
            .customize()
            .config_override(crate::aws::sent_once_dynamodb())
            .send()
            .await
            .map_err(|e| crate::aws::classify(&e, &$what, &$c.region))
    };
}
pub(crate) use send_once;

async fn clients(args: &Resolved, aws: &AwsContext) -> Result<Clients, StepError> {
    Ok(aws.clients(text(args, "region")).await?)
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn shown(t: Option<&aws_smithy_types::DateTime>) -> String {
    t.and_then(to_chrono)
        .map_or_else(|| "an unknown time".into(), crate::time::rfc3339)
}

/// RPO of data as of `point`: the incident start minus `point`, never below zero.
fn rpo_since(incident_start: DateTime<Utc>, point: DateTime<Utc>) -> f64 {
    (incident_start - point)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64()
}

fn what(table: &str) -> String {
    format!("DynamoDB table {table}")
}

/// The table as `DynamoDB` describes it now, if it exists.
async fn table(c: &Clients, name: &str) -> Result<Option<TableDescription>, StepError> {
    match c.dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => Ok(out.table().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(DescribeTableError::is_resource_not_found_exception) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e, &what(name), &c.region).into()),
    }
}

/// A table's point-in-time recovery: whether it is on, and its window when it is.
#[derive(Debug, Clone, PartialEq)]
struct Recovery {
    enabled: bool,
    earliest: Option<aws_smithy_types::DateTime>,
    latest: Option<aws_smithy_types::DateTime>,
}

impl Recovery {
    fn shown(&self) -> String {
        if self.enabled {
            format!(
                "point-in-time recovery ENABLED, restorable from {} to {}",
                shown(self.earliest.as_ref()),
                shown(self.latest.as_ref())
            )
        } else {
            "point-in-time recovery DISABLED".into()
        }
    }
}

/// The point-in-time recovery of table `name`.
async fn recovery(c: &Clients, name: &str) -> Result<Recovery, StepError> {
    let out = c
        .dynamodb
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .map_err(|e| {
            let missing = e
                .as_service_error()
                .is_some_and(DescribeContinuousBackupsError::is_table_not_found_exception);
            if missing {
                StepError::fatal(format!(
                    "{} in {}: not found (check the name and the region)",
                    what(name),
                    c.region
                ))
            } else {
                classify(&e, &what(name), &c.region).into()
            }
        })?;
    let pitr = out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description());
    Ok(Recovery {
        enabled: pitr.and_then(|p| p.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled),
        earliest: pitr.and_then(|p| p.earliest_restorable_date_time().copied()),
        latest: pitr.and_then(|p| p.latest_restorable_date_time().copied()),
    })
}

/// Waits until table `name` is ACTIVE with no restore in progress, and returns it.
async fn wait_active(
    c: &Clients,
    name: &str,
    ctx: &ExecContext,
) -> Result<TableDescription, StepError> {
    loop {
        let t = table(c, name).await?.ok_or_else(|| {
            StepError::fatal(format!(
                "{} in {}: it disappeared while drctl waited for it",
                what(name),
                c.region
            ))
        })?;
        let restoring = t
            .restore_summary()
            .is_some_and(aws_sdk_dynamodb::types::RestoreSummary::restore_in_progress);
        if t.table_status() == Some(&TableStatus::Active) && !restoring {
            return Ok(t);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// A table in words, for plan: its status and item count.
fn table_shown(t: &TableDescription) -> String {
    format!(
        "{} ({} items)",
        t.table_status()
            .map_or("status unknown", TableStatus::as_str),
        t.item_count().unwrap_or_default()
    )
}

/// The table a backup would be taken of, for plan: its status and point-in-time recovery.
pub async fn current_table(args: &Resolved, aws: &AwsContext) -> LiveState {
    live_or_unavailable(describe_source(args, aws, "table").await)
}

/// The table a point-in-time restore reads, and whether its target is free, for plan.
pub async fn current_source(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let source = describe_source(args, aws, "source_table").await?;
        let c = clients(args, aws).await?;
        Ok(format!("{source}; {}", target_shown(&c, args).await?))
    };
    live_or_unavailable(lookup.await)
}

async fn describe_source(
    args: &Resolved,
    aws: &AwsContext,
    key: &str,
) -> Result<String, StepError> {
    let c = clients(args, aws).await?;
    let name = text(args, key).unwrap_or_default();
    let Some(t) = table(&c, name).await? else {
        return Ok(format!("table {name} does not exist"));
    };
    Ok(format!(
        "table {name} {}, {}",
        table_shown(&t),
        recovery(&c, name).await?.shown()
    ))
}

/// Whether the table a restore would create exists already (the restore would be refused).
async fn target_shown(c: &Clients, args: &Resolved) -> Result<String, StepError> {
    let target = text(args, "target_table").unwrap_or_default();
    Ok(match table(c, target).await? {
        None => format!("target {target} does not exist yet"),
        Some(t) => format!(
            "target {target} exists already ({}): the restore would be refused",
            table_shown(&t)
        ),
    })
}

/// The backup a restore would read, and whether its target is free, for plan.
pub async fn current_backup(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = clients(args, aws).await?;
        let backup = backups::describe(&c, text(args, "backup_arn").unwrap_or_default()).await?;
        Ok(format!(
            "backup of table {} {}, taken at {}; {}",
            backup.table,
            backup.status,
            shown(Some(&backup.taken)),
            target_shown(&c, args).await?
        ))
    };
    live_or_unavailable(lookup.await)
}
