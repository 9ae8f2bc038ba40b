//! Route 53 through the SDK: record changes that remember what they replaced, INSYNC waits,
//! weights, health checks.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::{Value, json};

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Resolved, StepError, journaled, live_or_unavailable, replaced, text,
};
use super::route53_record::{describe, from_json, same, to_json};
use crate::aws::{AwsContext, Clients, classify};

fn build_err(e: impl std::fmt::Display) -> StepError {
    StepError::fatal(format!("could not build the Route 53 request: {e}"))
}

fn record_name(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn same_name(a: &str, b: &str) -> bool {
    record_name(a).eq_ignore_ascii_case(&record_name(b))
}

/// The record set `name`/`type` (and `set_identifier`) as it is now, if it exists.
pub async fn find(
    c: &Clients,
    zone: &str,
    name: &str,
    rtype: &str,
    set_id: Option<&str>,
) -> Result<Option<ResourceRecordSet>, StepError> {
    let what = format!("record {name} {rtype} in zone {zone}");
    let out = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::from(rtype))
        .max_items(100)
        .send()
        .await
        .map_err(|e| classify(&e, &what, "Route 53"))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| {
            same_name(r.name(), name)
                && r.r#type().as_str() == rtype
                && r.set_identifier() == set_id
        })
        .cloned())
}

fn from_args(args: &Resolved) -> Result<ResourceRecordSet, StepError> {
    let mut v = json!({
        "name": text(args, "name"),
        "type": text(args, "type"),
        "ttl": args.get("ttl").and_then(Value::as_i64),
        "values": args.get("values").cloned().unwrap_or(Value::Null),
        "set_identifier": text(args, "set_identifier"),
        "weight": args.get("weight").and_then(Value::as_i64),
        "failover": text(args, "failover"),
        "health_check_id": text(args, "health_check_id"),
    });
    if v["values"].is_string() {
        v["values"] = json!([v["values"].clone()]);
    }
    from_json(&v)
}

/// Submits one change; returns the change id.
async fn change(
    c: &Clients,
    zone: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
    comment: &str,
) -> Result<String, StepError> {
    let what = format!(
        "{} of {} {} in zone {zone}",
        action.as_str(),
        set.name(),
        set.r#type().as_str()
    );
    let batch = ChangeBatch::builder()
        .comment(comment)
        .changes(
            Change::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .map_err(build_err)?,
        )
        .build()
        .map_err(build_err)?;
    let out = c
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .customize()
        .config_override(crate::aws::sent_once_route53())
        .send()
        .await
        .map_err(|e| classify(&e, &what, "Route 53"))?;
    Ok(out
        .change_info()
        .map(|i| i.id().to_string())
        .unwrap_or_default())
}

/// Polls the change until INSYNC (the driver's timeout bounds the wait).
pub async fn wait_insync(c: &Clients, change_id: &str, ctx: &ExecContext) -> Result<(), StepError> {
    loop {
        let out = c
            .route53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| classify(&e, &format!("change {change_id}"), "Route 53"))?;
        if out
            .change_info()
            .map(aws_sdk_route53::types::ChangeInfo::status)
            == Some(&ChangeStatus::Insync)
        {
            return Ok(());
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// What the step replaced: journaled (this version), else its `previous` output (runs
/// recorded before values were journaled). `None` when nothing was recorded: then the
/// change was never sent.
fn recorded(ctx: &ExecContext, outputs: &Outputs, key: &str) -> Option<Value> {
    journaled(ctx).or_else(|| outputs.get(key).cloned())
}

/// `route53.upsert_record`.
pub async fn upsert(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let zone = text(args, "zone_id").unwrap_or_default();
    let wanted = from_args(args)?;
    let current = find(
        &c,
        zone,
        wanted.name(),
        wanted.r#type().as_str(),
        wanted.set_identifier(),
    )
    .await?;
    let previous = replaced(ctx, || current.as_ref().map_or(Value::Null, to_json)).await?;
    let id = change(&c, zone, ChangeAction::Upsert, wanted, "drctl: upsert").await?;
    if args.get("wait").and_then(Value::as_bool) != Some(false) {
        wait_insync(&c, &id, ctx).await?;
    }
    let mut out = Outputs::new();
    out.insert("change_id".into(), id.into());
    out.insert("previous".into(), previous);
    Ok(out)
}

/// The refusal of an undo that finds someone else's value where drctl's should be.
fn changed_since(wrote: &str, now: &str) -> StepError {
    StepError::conflict(format!(
        "the record was changed after drctl wrote it: drctl wrote {wrote}, it now holds {now}"
    ))
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
    let current = find(
        &c,
        zone,
        ours.name(),
        ours.r#type().as_str(),
        ours.set_identifier(),
    )
    .await?;
    let before = if previous.is_null() {
        None
    } else {
        Some(from_json(&previous)?)
    };
    let id = match (&current, &before) {
        // Already as it was (the change never landed, or an undo already ran).
        (None, None) => return Ok(()),
        (Some(now), Some(was)) if same(now, was) => return Ok(()),
        (Some(now), _) if !same(now, &ours) => {
            return Err(changed_since(&describe(&ours), &describe(now)));
        }
        (None, Some(_)) => {
            return Err(changed_since(
                &describe(&ours),
                "no record (it was deleted)",
            ));
        }
        (Some(_), Some(was)) => {
            change(
                &c,
                zone,
                ChangeAction::Upsert,
                was.clone(),
                "drctl: rollback, restore previous",
            )
            .await?
        }
        (Some(now), None) => {
            change(
                &c,
                zone,
                ChangeAction::Delete,
                now.clone(),
                "drctl: rollback, remove created record",
            )
            .await?
        }
    };
    wait_insync(&c, &id, ctx).await
}

/// `route53.delete_record`.
pub async fn delete(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let zone = text(args, "zone_id").unwrap_or_default();
    let (name, rtype) = (
        text(args, "name").unwrap_or_default(),
        text(args, "type").unwrap_or_default(),
    );
    let current = find(&c, zone, name, rtype, text(args, "set_identifier")).await?;
    if current.is_none() && ctx.previous.is_none() {
        return Err(StepError::fatal(format!(
            "record {name} {rtype} does not exist in zone {zone} (check the name, type and set identifier)"
        )));
    }
    let previous = replaced(ctx, || current.as_ref().map_or(Value::Null, to_json)).await?;
    let id = match current {
        Some(current) => {
            let id = change(&c, zone, ChangeAction::Delete, current, "drctl: delete").await?;
            wait_insync(&c, &id, ctx).await?;
            Value::from(id)
        }
        // An earlier attempt deleted it already.
        None => Value::Null,
    };
    let mut out = Outputs::new();
    out.insert("change_id".into(), id);
    out.insert("previous".into(), previous);
    Ok(out)
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
    match find(
        &c,
        zone,
        was.name(),
        was.r#type().as_str(),
        was.set_identifier(),
    )
    .await?
    {
        None => {}
        Some(now) if same(&now, &was) => return Ok(()),
        Some(now) => {
            return Err(changed_since(
                "no record (drctl deleted it)",
                &describe(&now),
            ));
        }
    }
    let id = change(
        &c,
        zone,
        ChangeAction::Upsert,
        was,
        "drctl: rollback, recreate deleted record",
    )
    .await?;
    wait_insync(&c, &id, ctx).await
}

/// `route53.wait_insync`.
pub async fn insync(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    wait_insync(&c, text(args, "change_id").unwrap_or_default(), ctx).await?;
    Ok(Outputs::new())
}

async fn weighted(c: &Clients, args: &Resolved) -> Result<ResourceRecordSet, StepError> {
    let zone = text(args, "zone_id").unwrap_or_default();
    let (name, rtype, set) = (
        text(args, "name").unwrap_or_default(),
        text(args, "type").unwrap_or_default(),
        text(args, "set_identifier").unwrap_or_default(),
    );
    find(c, zone, name, rtype, Some(set)).await?.ok_or_else(|| {
        StepError::fatal(format!(
            "record {name} {rtype} with set identifier {set} does not exist in zone {zone}"
        ))
    })
}

async fn put_weight(
    c: &Clients,
    args: &Resolved,
    current: &ResourceRecordSet,
    weight: i64,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let mut v = to_json(current);
    v["weight"] = weight.into();
    let zone = text(args, "zone_id").unwrap_or_default();
    let id = change(
        c,
        zone,
        ChangeAction::Upsert,
        from_json(&v)?,
        "drctl: set weight",
    )
    .await?;
    wait_insync(c, &id, ctx).await
}

/// `route53.set_weight`. It journals the whole record set it changes, not only the weight, so
/// that its undo can tell whether anything else about the record changed since.
pub async fn set_weight(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let current = weighted(&c, args).await?;
    let previous = replaced(ctx, || to_json(&current)).await?;
    put_weight(
        &c,
        args,
        &current,
        args.get("weight").and_then(Value::as_i64).unwrap_or(0),
        ctx,
    )
    .await?;
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
    let zone = text(args, "zone_id").unwrap_or_default();
    let (name, rtype, set) = (
        text(args, "name").unwrap_or_default(),
        text(args, "type").unwrap_or_default(),
        text(args, "set_identifier").unwrap_or_default(),
    );
    let ours = args.get("weight").and_then(Value::as_i64).unwrap_or(0);
    let Some(current) = find(&c, zone, name, rtype, Some(set)).await? else {
        return Err(changed_since(
            &format!("{name} {rtype} (set {set}) with weight {ours}"),
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
            Some(w) if w == ours => put_weight(&c, args, &current, weight, ctx).await,
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
    let id = change(
        &c,
        zone,
        ChangeAction::Upsert,
        was,
        "drctl: rollback, restore previous weight",
    )
    .await?;
    wait_insync(&c, &id, ctx).await
}

/// `route53.health_check_status`.
pub async fn health(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    let id = text(args, "health_check_id").unwrap_or_default();
    let out = c
        .route53
        .get_health_check_status()
        .health_check_id(id)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("health check {id}"), "Route 53"))?;
    let observations = out.health_check_observations();
    let healthy_count = observations
        .iter()
        .filter(|o| {
            o.status_report()
                .and_then(|r| r.status())
                .is_some_and(|s| s.starts_with("Success"))
        })
        .count();
    // Route 53 calls a check healthy when more than half of its checkers see it healthy.
    let healthy = !observations.is_empty() && healthy_count * 2 > observations.len();
    let expect_healthy = text(args, "expect").unwrap_or("healthy") == "healthy";
    if healthy != expect_healthy {
        return Err(StepError::no_effect(format!(
            "health check {id} is {} ({healthy_count} of {} checkers report success), expected {}",
            if healthy { "healthy" } else { "unhealthy" },
            observations.len(),
            if expect_healthy {
                "healthy"
            } else {
                "unhealthy"
            }
        )));
    }
    let mut o = Outputs::new();
    o.insert("healthy".into(), healthy.into());
    Ok(o)
}

fn describe_set(r: &ResourceRecordSet) -> String {
    let values: Vec<&str> = r
        .resource_records()
        .iter()
        .map(ResourceRecord::value)
        .collect();
    let mut out = format!(
        "{} {} = [{}]",
        r.name().trim_end_matches('.'),
        r.r#type().as_str(),
        values.join(", ")
    );
    if let Some(ttl) = r.ttl() {
        out.push_str(&format!(" TTL {ttl}s"));
    }
    if let Some(w) = r.weight() {
        out.push_str(&format!(" weight {w}"));
    }
    out
}

/// Live value of the record a step would change, for plan.
pub async fn current_record(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(None).await?;
        let (zone, name, rtype) = (
            text(args, "zone_id").unwrap_or_default(),
            text(args, "name").unwrap_or_default(),
            text(args, "type").unwrap_or_default(),
        );
        let record = find(&c, zone, name, rtype, text(args, "set_identifier")).await?;
        Ok(record.map_or_else(
            || format!("{name} {rtype} does not exist in zone {zone}"),
            |r| describe_set(&r),
        ))
    };
    live_or_unavailable(lookup.await)
}
