//! `ElastiCache` global datastores through the SDK: which member is primary (read before a
//! failover, journaled, and read again by the probe), the failover sent once, and the wait
//! until the datastore is available with the new primary.

use serde_json::Value;

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, journaled, live_or_unavailable,
    probe_or_undecided, replaced, text,
};
use crate::aws::{AwsContext, Clients, classify};

/// One replication group of a global datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    group: String,
    region: String,
    primary: bool,
}

/// A global datastore as `ElastiCache` describes it now.
#[derive(Debug)]
struct Datastore {
    status: String,
    members: Vec<Member>,
}

impl Datastore {
    fn primary(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.primary)
    }

    /// Whether `group` in `region` is the primary.
    fn primary_is(&self, target: &Target) -> bool {
        self.primary()
            .is_some_and(|m| m.group == target.group && m.region == target.region)
    }

    fn available(&self) -> bool {
        self.status == "available"
    }

    /// The primary in words: "orders-use1 (us-east-1)".
    fn primary_shown(&self) -> String {
        self.primary().map_or_else(
            || "no primary".to_string(),
            |m| format!("{} ({})", m.group, m.region),
        )
    }
}

/// What the step makes primary.
struct Target<'a> {
    datastore: &'a str,
    group: &'a str,
    region: &'a str,
}

impl<'a> Target<'a> {
    fn of(args: &'a Resolved) -> Self {
        Self {
            datastore: text(args, "global_datastore").unwrap_or_default(),
            group: text(args, "primary_replication_group").unwrap_or_default(),
            region: text(args, "primary_region").unwrap_or_default(),
        }
    }
}

fn what(id: &str) -> String {
    format!("ElastiCache global datastore {id}")
}

/// The datastore `id` with its members.
async fn read(c: &Clients, id: &str) -> Result<Datastore, StepError> {
    let out = c
        .elasticache
        .describe_global_replication_groups()
        .global_replication_group_id(id)
        .show_member_info(true)
        .send()
        .await
        .map_err(|e| classify(&e, &what(id), &c.region))?;
    let Some(group) = out
        .global_replication_groups()
        .iter()
        .find(|g| g.global_replication_group_id() == Some(id))
    else {
        return Err(StepError::fatal(format!(
            "{} in {}: not found (check the name and the region)",
            what(id),
            c.region
        )));
    };
    Ok(Datastore {
        status: group.status().unwrap_or("?").to_string(),
        members: group
            .members()
            .iter()
            .map(|m| Member {
                group: m.replication_group_id().unwrap_or_default().to_string(),
                region: m.replication_group_region().unwrap_or_default().to_string(),
                primary: m.role().is_some_and(|r| r.eq_ignore_ascii_case("primary")),
            })
            .collect(),
    })
}

/// Polls until the datastore is available with `target` as its primary.
async fn wait_primary(
    c: &Clients,
    target: &Target<'_>,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    loop {
        let now = read(c, target.datastore).await?;
        if now.available() && now.primary_is(target) {
            return Ok(());
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

fn outputs(previous_region: &Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("previous_primary_region".into(), previous_region.clone());
    out
}

/// `elasticache.failover_global_datastore`.
pub async fn failover(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let target = Target::of(args);
    let now = read(&c, target.datastore).await?;
    if now.primary_is(&target) {
        // An earlier attempt of this step sent the failover: it only has to end.
        if let Some(previous) = journaled(ctx) {
            wait_primary(&c, &target, ctx).await?;
            return Ok(outputs(&previous));
        }
        return Err(StepError::fatal(format!(
            "{} in {} is already the primary of {}: nothing to fail over (failed over already, or the wrong region?)",
            target.group,
            target.region,
            what(target.datastore)
        )));
    }
    if !now
        .members
        .iter()
        .any(|m| m.group == target.group && m.region == target.region)
    {
        return Err(StepError::fatal(format!(
            "{} in {} is not a member of {} (its primary is {}): check `primary_replication_group` and `primary_region`",
            target.group,
            target.region,
            what(target.datastore),
            now.primary_shown()
        )));
    }
    let before = now
        .primary()
        .map_or(Value::Null, |m| Value::String(m.region.clone()));
    let previous = replaced(ctx, || before).await?;
    c.elasticache
        .failover_global_replication_group()
        .global_replication_group_id(target.datastore)
        .primary_region(target.region)
        .primary_replication_group_id(target.group)
        .customize()
        .config_override(crate::aws::sent_once_elasticache())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!(
                    "failover of {} to {} in {}",
                    what(target.datastore),
                    target.group,
                    target.region
                ),
                &c.region,
            )
        })?;
    wait_primary(&c, &target, ctx).await?;
    Ok(outputs(&previous))
}

/// Probe of `elasticache.failover_global_datastore`: which region is primary now. The target
/// is (the failover took effect), or the primary recorded before it still is and the datastore
/// is at rest (it did not).
pub async fn probe_failover(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        // Nothing journaled: no attempt got as far as sending the failover.
        let Some(previous) = journaled(ctx) else {
            return Ok(Probe::DidNot);
        };
        let c = ctx.aws.clients(text(args, "region")).await?;
        let target = Target::of(args);
        let now = read(&c, target.datastore).await?;
        if now.primary_is(&target) {
            wait_primary(&c, &target, ctx).await?;
            return Ok(Probe::TookEffect(outputs(&previous)));
        }
        let still = now.primary().map(|m| m.region.as_str()) == previous.as_str();
        Ok(if still && now.available() {
            Probe::DidNot
        } else {
            Probe::Undecided(format!(
                "{} is {} with primary {}: the failover may still be under way",
                what(target.datastore),
                now.status,
                now.primary_shown()
            ))
        })
    };
    probe_or_undecided(found.await)
}

/// The datastore's primary now, for plan.
pub async fn current_primary(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let id = text(args, "global_datastore").unwrap_or_default();
        let now = read(&c, id).await?;
        Ok(format!(
            "primary of {id}: {}; the datastore is {}",
            now.primary_shown(),
            now.status
        ))
    };
    live_or_unavailable(lookup.await)
}
