//! `route53.set_weight` and its undo: the whole record set is journaled before the weight
//! changes, so that the undo can tell whether anything else about the record changed since.

use aws_sdk_route53::types::{ChangeAction, ResourceRecordSet};
use serde_json::Value;

use super::{Key, change_and_wait, changed_since, recorded};
use crate::actions::outcome::{ExecContext, Outputs, Resolved, StepError, replaced};
use crate::actions::route53_record::{describe, from_json, same, to_json};
use crate::aws::Clients;

/// The weighted record set the step names, as it is now; an error when it does not exist.
async fn weighted(c: &Clients, key: &Key<'_>) -> Result<ResourceRecordSet, StepError> {
    key.find(c).await?.ok_or_else(|| {
        let Key {
            zone, name, rtype, ..
        } = key;
        StepError::fatal(format!(
            "record {name} {rtype} with set identifier {} does not exist in zone {zone}",
            key.set.unwrap_or_default()
        ))
    })
}

/// `current` with weight `weight`, sent and waited for.
async fn put_weight(
    c: &Clients,
    zone: &str,
    current: &ResourceRecordSet,
    weight: i64,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let mut v = to_json(current);
    v["weight"] = weight.into();
    let upsert = (ChangeAction::Upsert, from_json(&v)?);
    change_and_wait(c, zone, upsert, "drctl: set weight", ctx)
        .await
        .map(drop)
}

/// The weight the step sets.
fn step_weight(args: &Resolved) -> i64 {
    args.get("weight").and_then(Value::as_i64).unwrap_or(0)
}

/// The record set a weight step names: a weighted record always has a set identifier.
fn weighted_key(args: &Resolved) -> Key<'_> {
    let key = Key::of(args);
    Key {
        set: Some(key.set.unwrap_or_default()),
        ..key
    }
}

/// `route53.set_weight`. It journals the whole record set it changes, not only the weight, so
/// that its undo can tell whether anything else about the record changed since.
pub async fn set_weight(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let key = weighted_key(args);
    let current = weighted(&c, &key).await?;
    let previous = replaced(ctx, || to_json(&current)).await?;
    put_weight(&c, key.zone, &current, step_weight(args), ctx).await?;
    let mut out = Outputs::new();
    out.insert("previous_weight".into(), previous_weight(&previous));
    Ok(out)
}

/// The weight in what `set_weight` journaled: a record set, or a bare weight (journaled by
/// an earlier version).
fn previous_weight(previous: &Value) -> Value {
    if previous.is_object() {
        previous["weight"].clone()
    } else {
        previous.clone()
    }
}

/// Undo of `route53.set_weight`: the record set back as it was, while it still holds exactly
/// what the step wrote (its values, TTL and routing, with the step's weight).
pub async fn undo_set_weight(
    args: &Resolved,
    outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(previous) = recorded(ctx, outputs, "previous_weight").filter(|p| !p.is_null()) else {
        return Ok(());
    };
    let c = ctx.aws.clients(None).await?;
    let key = weighted_key(args);
    let ours = step_weight(args);
    let Some(current) = key.find(&c).await? else {
        let Key {
            name, rtype, set, ..
        } = key;
        return Err(changed_since(
            &format!(
                "{name} {rtype} (set {}) with weight {ours}",
                set.unwrap_or_default()
            ),
            "no record (it was deleted)",
        ));
    };
    if !previous.is_object() {
        // Only the weight was journaled: only the weight can be checked and restored.
        let Some(weight) = previous.as_i64() else {
            return Ok(());
        };
        return match current.weight() {
            Some(w) if w == weight => Ok(()),
            Some(w) if w == ours => put_weight(&c, key.zone, &current, weight, ctx).await,
            now => Err(changed_since(
                &format!("weight {ours}"),
                &now.map_or_else(|| "no weight".to_string(), |w| format!("weight {w}")),
            )),
        };
    }
    let was = from_json(&previous)?;
    if same(&current, &was) {
        return Ok(());
    }
    let mut wrote = previous.clone();
    wrote["weight"] = ours.into();
    let wrote = from_json(&wrote)?;
    if !same(&current, &wrote) {
        return Err(changed_since(&describe(&wrote), &describe(&current)));
    }
    let restore = (ChangeAction::Upsert, was);
    change_and_wait(
        &c,
        key.zone,
        restore,
        "drctl: rollback, restore previous weight",
        ctx,
    )
    .await
    .map(drop)
}
