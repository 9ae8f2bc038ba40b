//! Route 53 through the SDK: record changes that remember what they replaced
//! ([`records`], [`weights`]), INSYNC waits, health checks and the live values plan shows
//! ([`reads`]). This file holds what they share: finding a record set, sending one change,
//! waiting for it.

mod reads;
mod records;
mod weights;

pub use reads::{current_record, health, insync};
pub use records::{delete, undo_delete, undo_upsert, upsert};
pub use weights::{set_weight, undo_set_weight};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet, RrType,
};
use serde_json::{Value, json};

use super::outcome::{ExecContext, Outputs, Resolved, StepError, journaled, text};
use super::route53_record::from_json;
use crate::aws::{Clients, classify};

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

/// Which record set: its zone, name, type and set identifier (for weighted or failover
/// records).
struct Key<'a> {
    zone: &'a str,
    name: &'a str,
    rtype: &'a str,
    set: Option<&'a str>,
}

impl<'a> Key<'a> {
    /// The record set a step's parameters name.
    fn of(args: &'a Resolved) -> Self {
        Self {
            zone: text(args, "zone_id").unwrap_or_default(),
            name: text(args, "name").unwrap_or_default(),
            rtype: text(args, "type").unwrap_or_default(),
            set: text(args, "set_identifier"),
        }
    }

    /// The key of `set`, in `zone`.
    fn of_set(zone: &'a str, set: &'a ResourceRecordSet) -> Self {
        Self {
            zone,
            name: set.name(),
            rtype: set.r#type().as_str(),
            set: set.set_identifier(),
        }
    }

    /// The record set as it is now, if it exists.
    async fn find(&self, c: &Clients) -> Result<Option<ResourceRecordSet>, StepError> {
        let Self {
            zone,
            name,
            rtype,
            set,
        } = *self;
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
                    && r.set_identifier() == set
            })
            .cloned())
    }
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

/// Submits one change and waits until it is INSYNC.
async fn change_and_wait(
    c: &Clients,
    zone: &str,
    (action, set): (ChangeAction, ResourceRecordSet),
    comment: &str,
    ctx: &ExecContext,
) -> Result<String, StepError> {
    let id = change(c, zone, action, set, comment).await?;
    wait_insync(c, &id, ctx).await?;
    Ok(id)
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
async fn wait_insync(c: &Clients, change_id: &str, ctx: &ExecContext) -> Result<(), StepError> {
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

/// The refusal of an undo that finds someone else's value where drctl's should be.
fn changed_since(wrote: &str, now: &str) -> StepError {
    StepError::conflict(format!(
        "the record was changed after drctl wrote it: drctl wrote {wrote}, it now holds {now}"
    ))
}
