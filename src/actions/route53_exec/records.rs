//! `route53.upsert_record` and `route53.delete_record`, and their undos: each journals the
//! record set it replaces before changing it, and its undo puts that back only while the
//! record still holds what the step wrote.

use aws_sdk_route53::types::{ChangeAction, ResourceRecordSet};
use serde_json::Value;

use super::{Key, change_and_wait, changed_since, from_args, recorded};
use crate::actions::outcome::{ExecContext, Outputs, Resolved, StepError, replaced, text};
use crate::actions::route53_record::{describe, from_json, same, to_json};

/// The record set as it is now and what it replaces, journaled before anything changes.
async fn journal_current(
    ctx: &ExecContext,
    current: Option<&ResourceRecordSet>,
) -> Result<Value, StepError> {
    replaced(ctx, || current.map_or(Value::Null, to_json)).await
}

/// The outputs of a record change: its id and the record set it replaced.
fn outputs(change_id: Value, previous: Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("change_id".into(), change_id);
    out.insert("previous".into(), previous);
    out
}

/// `route53.upsert_record`.
pub async fn upsert(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let zone = text(args, "zone_id").unwrap_or_default();
    let wanted = from_args(args)?;
    let current = Key::of_set(zone, &wanted).find(&c).await?;
    let previous = journal_current(ctx, current.as_ref()).await?;
    let upsert = (ChangeAction::Upsert, wanted);
    let id = if args.get("wait").and_then(Value::as_bool) == Some(false) {
        super::change(&c, zone, upsert.0, upsert.1, "drctl: upsert").await?
    } else {
        change_and_wait(&c, zone, upsert, "drctl: upsert", ctx).await?
    };
    Ok(outputs(id.into(), previous))
}

/// Undo of `route53.upsert_record`: the previous record set back, or the record deleted when
/// there was none, only while the record still holds what the step wrote.
pub async fn undo_upsert(
    args: &Resolved,
    outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(previous) = recorded(ctx, outputs, "previous") else {
        return Ok(());
    };
    let c = ctx.aws.clients(None).await?;
    let zone = text(args, "zone_id").unwrap_or_default();
    let ours = from_args(args)?;
    let current = Key::of_set(zone, &ours).find(&c).await?;
    let before = if previous.is_null() {
        None
    } else {
        Some(from_json(&previous)?)
    };
    let (undo, comment) = match (current, before) {
        // Already as it was (the change never landed, or an undo already ran).
        (None, None) => return Ok(()),
        (Some(now), Some(was)) if same(&now, &was) => return Ok(()),
        (Some(now), _) if !same(&now, &ours) => {
            return Err(changed_since(&describe(&ours), &describe(&now)));
        }
        (None, Some(_)) => {
            return Err(changed_since(
                &describe(&ours),
                "no record (it was deleted)",
            ));
        }
        (Some(_), Some(was)) => (
            (ChangeAction::Upsert, was),
            "drctl: rollback, restore previous",
        ),
        (Some(now), None) => (
            (ChangeAction::Delete, now),
            "drctl: rollback, remove created record",
        ),
    };
    change_and_wait(&c, zone, undo, comment, ctx)
        .await
        .map(drop)
}

/// `route53.delete_record`.
pub async fn delete(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let key = Key::of(args);
    let current = key.find(&c).await?;
    if current.is_none() && ctx.previous.is_none() {
        let Key {
            zone, name, rtype, ..
        } = key;
        return Err(StepError::fatal(format!(
            "record {name} {rtype} does not exist in zone {zone} (check the name, type and set identifier)"
        )));
    }
    let previous = journal_current(ctx, current.as_ref()).await?;
    let id = match current {
        Some(current) => {
            let delete = (ChangeAction::Delete, current);
            Value::from(change_and_wait(&c, key.zone, delete, "drctl: delete", ctx).await?)
        }
        // An earlier attempt deleted it already.
        None => Value::Null,
    };
    Ok(outputs(id, previous))
}

/// Undo of `route53.delete_record`: the record recreated, unless someone created one since.
pub async fn undo_delete(
    args: &Resolved,
    outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(prev) = recorded(ctx, outputs, "previous").filter(|p| !p.is_null()) else {
        return Ok(());
    };
    let was = from_json(&prev)?;
    let c = ctx.aws.clients(None).await?;
    let zone = text(args, "zone_id").unwrap_or_default();
    match Key::of_set(zone, &was).find(&c).await? {
        None => {}
        Some(now) if same(&now, &was) => return Ok(()),
        Some(now) => {
            return Err(changed_since(
                "no record (drctl deleted it)",
                &describe(&now),
            ));
        }
    }
    let recreate = (ChangeAction::Upsert, was);
    change_and_wait(
        &c,
        zone,
        recreate,
        "drctl: rollback, recreate deleted record",
        ctx,
    )
    .await
    .map(drop)
}
