//! Restores into a new table, to a point in time or from a backup, each sent once and waited
//! for (unless the step says `wait = false`); the RPO each implies; and the probe that reads a
//! lost attempt's table back: its restore summary says what it was restored from and to.

use aws_sdk_dynamodb::types::TableDescription;
use aws_smithy_types::date_time::Format;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    backups, clients, recovery, rpo_since, send_once, shown, table, to_chrono, wait_active,
};
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, probe_or_undecided, text,
};
use crate::aws::Clients;

/// Whether the step waits for its table (`wait`, true unless it says false).
fn waits(args: &Resolved) -> bool {
    args.get("wait").and_then(Value::as_bool).unwrap_or(true)
}

/// The restored table's outputs: its ARN, then `point` under `point_key`, and the RPO of data
/// as of `point`.
fn outputs(
    t: &TableDescription,
    (point_key, point): (&str, Option<DateTime<Utc>>),
    ctx: &ExecContext,
) -> Outputs {
    let mut out = Outputs::new();
    out.insert(
        "table_arn".into(),
        t.table_arn().map_or(Value::Null, Into::into),
    );
    out.insert(
        point_key.into(),
        point.map_or(Value::Null, |p| crate::time::rfc3339(p).into()),
    );
    out.insert(
        "rpo_seconds".into(),
        point.map_or(Value::Null, |p| rpo_since(ctx.incident_start, p).into()),
    );
    out
}

/// The new table, waited for when the step waits, with its outputs.
async fn restored(
    c: &Clients,
    args: &Resolved,
    (answered, point): (Option<&TableDescription>, (&str, Option<DateTime<Utc>>)),
    ctx: &ExecContext,
) -> Result<Outputs, StepError> {
    let target = text(args, "target_table").unwrap_or_default();
    let t = match answered {
        Some(t) if !waits(args) => t.clone(),
        _ => wait_active(c, target, ctx).await?,
    };
    Ok(outputs(&t, point, ctx))
}

/// The moment a point-in-time restore restores to: `restore_time`, else the source's latest
/// restorable time, read before the request so that it is what the request asks for.
async fn point(
    c: &Clients,
    args: &Resolved,
    source: &str,
) -> Result<aws_smithy_types::DateTime, StepError> {
    if let Some(t) = text(args, "restore_time") {
        return aws_smithy_types::DateTime::from_str(t, Format::DateTime).map_err(|e| {
            StepError::fatal(format!(
                "restore_time {t} is not an RFC 3339 timestamp: {e}"
            ))
        });
    }
    let window = recovery(c, source).await?;
    if !window.enabled {
        return Err(StepError::fatal(format!(
            "DynamoDB table {source} in {}: point-in-time recovery is not enabled, so there is no restorable time (enable it, or restore from a backup)",
            c.region
        )));
    }
    window.latest.ok_or_else(|| {
        StepError::no_effect(format!(
            "DynamoDB table {source} in {}: no latest restorable time yet",
            c.region
        ))
    })
}

/// `dynamodb.restore_point_in_time`.
pub async fn restore_pitr(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let (source, target) = (
        text(args, "source_table").unwrap_or_default(),
        text(args, "target_table").unwrap_or_default(),
    );
    let at = point(&c, args, source).await?;
    // The moment read is sent as such: the latest restorable time moves on meanwhile, and the
    // RPO is measured from the point asked for.
    let out = send_once!(
        c,
        c.dynamodb
            .restore_table_to_point_in_time()
            .source_table_name(source)
            .target_table_name(target)
            .restore_date_time(at),
        format!(
            "point-in-time restore of DynamoDB table {source} to {} into {target}",
            shown(Some(&at))
        )
    )?;
    restored(
        &c,
        args,
        (out.table_description(), ("restore_time", to_chrono(&at))),
        ctx,
    )
    .await
}

/// `dynamodb.restore_from_backup`.
pub async fn restore_backup(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let (arn, target) = (
        text(args, "backup_arn").unwrap_or_default(),
        text(args, "target_table").unwrap_or_default(),
    );
    let backup = backups::describe(&c, arn).await?;
    let out = send_once!(
        c,
        c.dynamodb
            .restore_table_from_backup()
            .backup_arn(arn)
            .target_table_name(target),
        format!("restore of DynamoDB backup {arn} into {target}")
    )?;
    restored(
        &c,
        args,
        (
            out.table_description(),
            ("backup_time", to_chrono(&backup.taken)),
        ),
        ctx,
    )
    .await
}

/// What a restored table was restored from, by the step's parameters: the source table's ARN
/// (point in time) or the backup's ARN.
async fn expected_source(c: &Clients, args: &Resolved) -> Result<Source, StepError> {
    if let Some(arn) = text(args, "backup_arn") {
        return Ok(Source::Backup(arn.to_string()));
    }
    let name = text(args, "source_table").unwrap_or_default();
    let source = table(c, name).await?.ok_or_else(|| {
        StepError::fatal(format!(
            "DynamoDB table {name} in {}: not found, so what a table was restored from cannot be compared with it",
            c.region
        ))
    })?;
    Ok(Source::Table(
        source.table_arn().unwrap_or_default().to_string(),
    ))
}

enum Source {
    Table(String),
    Backup(String),
}

/// Probe of the restores: the target table exists and its restore summary names this step's
/// source (it took effect, and is waited for when the step waits); no such table (it did not);
/// a table restored from something else, or not restored at all, is for the operator.
pub async fn probe_restore(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        let c = clients(args, &ctx.aws).await?;
        let target = text(args, "target_table").unwrap_or_default();
        let Some(t) = table(&c, target).await? else {
            return Ok(Probe::DidNot);
        };
        let Some(summary) = t.restore_summary() else {
            return Ok(Probe::Undecided(format!(
                "table {target} exists but was not restored: it is not this step's"
            )));
        };
        let ours = match expected_source(&c, args).await? {
            // A restore from a backup of the same table names it too, beside the backup.
            Source::Table(arn) => {
                summary.source_backup_arn().is_none()
                    && summary.source_table_arn() == Some(arn.as_str())
            }
            Source::Backup(arn) => summary.source_backup_arn() == Some(arn.as_str()),
        };
        if !ours {
            return Ok(Probe::Undecided(format!(
                "table {target} was restored from {}, not from this step's source",
                summary
                    .source_backup_arn()
                    .or(summary.source_table_arn())
                    .unwrap_or("an unknown source")
            )));
        }
        let key = if text(args, "backup_arn").is_some() {
            "backup_time"
        } else {
            "restore_time"
        };
        let point = to_chrono(summary.restore_date_time());
        Ok(Probe::TookEffect(
            restored(&c, args, (Some(&t), (key, point)), ctx).await?,
        ))
    };
    probe_or_undecided(found.await)
}
