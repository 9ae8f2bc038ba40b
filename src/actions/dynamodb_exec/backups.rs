//! On-demand backups: one taken (sent once) and waited for until available, a backup read
//! back, and the probe that finds a lost attempt's backup by the table and the backup's name.

use aws_sdk_dynamodb::operation::describe_backup::DescribeBackupError;
use aws_sdk_dynamodb::types::{BackupStatus, BackupSummary};
use serde_json::Value;

use super::{clients, send_once, to_chrono};
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, probe_or_undecided, text,
};
use crate::aws::{Clients, classify};

/// A backup as `DynamoDB` describes it.
#[derive(Debug, Clone)]
pub(super) struct Backup {
    pub arn: String,
    /// The table it was taken of.
    pub table: String,
    pub status: String,
    /// When it was taken: the moment its data is as of.
    pub taken: aws_smithy_types::DateTime,
}

/// The backup `arn`; a missing one is a fatal error naming it.
pub(super) async fn describe(c: &Clients, arn: &str) -> Result<Backup, StepError> {
    let out = c
        .dynamodb
        .describe_backup()
        .backup_arn(arn)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(DescribeBackupError::is_backup_not_found_exception)
            {
                StepError::fatal(format!(
                    "DynamoDB backup {arn} in {}: not found (check the ARN and the region)",
                    c.region
                ))
            } else {
                classify(&e, &format!("DynamoDB backup {arn}"), &c.region).into()
            }
        })?;
    let description = out.backup_description();
    let details = description
        .and_then(|d| d.backup_details())
        .ok_or_else(|| {
            StepError::ambiguous(format!(
                "DynamoDB backup {arn} in {}: the answer holds no backup details",
                c.region
            ))
        })?;
    Ok(Backup {
        arn: details.backup_arn().to_string(),
        table: description
            .and_then(|d| d.source_table_details())
            .map_or_else(|| "?".to_string(), |t| t.table_name().to_string()),
        status: details.backup_status().as_str().to_string(),
        taken: *details.backup_creation_date_time(),
    })
}

fn outputs(backup: &Backup) -> Outputs {
    let mut out = Outputs::new();
    out.insert("backup_arn".into(), backup.arn.clone().into());
    out.insert(
        "backup_time".into(),
        to_chrono(&backup.taken).map_or(Value::Null, |t| crate::time::rfc3339(t).into()),
    );
    out
}

/// Waits until backup `arn` is available.
async fn wait_available(c: &Clients, arn: &str, ctx: &ExecContext) -> Result<Outputs, StepError> {
    loop {
        let backup = describe(c, arn).await?;
        match backup.status.as_str() {
            "AVAILABLE" => return Ok(outputs(&backup)),
            "DELETED" => {
                return Err(StepError::fatal(format!(
                    "DynamoDB backup {arn} in {}: it was deleted while drctl waited for it",
                    c.region
                )));
            }
            _ => tokio::time::sleep(ctx.aws.poll_interval).await,
        }
    }
}

/// `dynamodb.create_backup`.
pub async fn create_backup(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let (table, name) = (
        text(args, "table").unwrap_or_default(),
        text(args, "backup_name").unwrap_or_default(),
    );
    let out = send_once!(
        c,
        c.dynamodb
            .create_backup()
            .table_name(table)
            .backup_name(name),
        format!("backup {name} of DynamoDB table {table}")
    )?;
    let arn = out
        .backup_details()
        .map(|d| d.backup_arn().to_string())
        .ok_or_else(|| {
            StepError::ambiguous(format!(
                "backup {name} of DynamoDB table {table} in {}: the answer names no backup",
                c.region
            ))
        })?;
    wait_available(&c, &arn, ctx).await
}

/// The backups of `table` called `name` that have not been deleted.
async fn named(c: &Clients, table: &str, name: &str) -> Result<Vec<BackupSummary>, StepError> {
    let mut found = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let out = c
            .dynamodb
            .list_backups()
            .table_name(table)
            .set_exclusive_start_backup_arn(from.take())
            .send()
            .await
            .map_err(|e| {
                classify(
                    &e,
                    &format!("the backups of DynamoDB table {table}"),
                    &c.region,
                )
            })?;
        found.extend(
            out.backup_summaries()
                .iter()
                .filter(|b| {
                    b.backup_name() == Some(name)
                        && b.backup_status() != Some(&BackupStatus::Deleted)
                })
                .cloned(),
        );
        match out.last_evaluated_backup_arn() {
            Some(next) => from = Some(next.to_string()),
            None => return Ok(found),
        }
    }
}

/// Probe of `dynamodb.create_backup`: one backup of the table by that name took effect (it is
/// waited for); none did not; several are for the operator, who knows which is this run's.
pub async fn probe_backup(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        let c = clients(args, &ctx.aws).await?;
        let (table, name) = (
            text(args, "table").unwrap_or_default(),
            text(args, "backup_name").unwrap_or_default(),
        );
        let backups = named(&c, table, name).await?;
        Ok(match backups.as_slice() {
            [] => Probe::DidNot,
            [one] => {
                let arn = one.backup_arn().unwrap_or_default();
                Probe::TookEffect(wait_available(&c, arn, ctx).await?)
            }
            several => Probe::Undecided(format!(
                "table {table} has {} backups named {name}: which one this step took cannot be told",
                several.len()
            )),
        })
    };
    probe_or_undecided(found.await)
}
