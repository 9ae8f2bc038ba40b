//! EC2 Auto Scaling through the SDK: a group's capacity (desired, minimum, maximum) read,
//! changed in one `UpdateAutoScalingGroup` (the capacity it replaces journaled first), waited
//! on until enough instances are in service, and put back by the undo only while the group
//! still has the capacity drctl set.

use aws_sdk_autoscaling::types::{AutoScalingGroup, LifecycleState};
use serde_json::{Value, json};

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, checked_count, journaled,
    live_or_unavailable, probe_or_undecided, replaced, text,
};
use crate::aws::{AwsContext, Clients, classify};

/// A group's capacity: what the step changes and the undo puts back, whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Capacity {
    desired: i32,
    min: i32,
    max: i32,
}

impl Capacity {
    fn of(g: &AutoScalingGroup) -> Self {
        Self {
            desired: g.desired_capacity().unwrap_or_default(),
            min: g.min_size().unwrap_or_default(),
            max: g.max_size().unwrap_or_default(),
        }
    }

    fn to_json(self) -> Value {
        json!({ "desired": self.desired, "min": self.min, "max": self.max })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let field = |k: &str| v[k].as_i64().and_then(|n| i32::try_from(n).ok());
        Some(Self {
            desired: field("desired")?,
            min: field("min")?,
            max: field("max")?,
        })
    }

    /// What the step's parameters make of `from`: the desired capacity, and the minimum and
    /// maximum it gives (the ones it leaves out stay as they were).
    fn wanted(args: &Resolved, from: Capacity) -> Result<Self, StepError> {
        Ok(Self {
            desired: checked_count(args, "desired")?
                .ok_or_else(|| StepError::fatal("`desired` is missing"))?,
            min: checked_count(args, "min")?.unwrap_or(from.min),
            max: checked_count(args, "max")?.unwrap_or(from.max),
        })
    }
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "desired {} (min {}, max {})",
            self.desired, self.min, self.max
        )
    }
}

fn what(group: &str) -> String {
    format!("Auto Scaling group {group}")
}

/// The group as Auto Scaling describes it now.
async fn describe(c: &Clients, group: &str) -> Result<AutoScalingGroup, StepError> {
    let out = c
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(|e| classify(&e, &what(group), &c.region))?;
    out.auto_scaling_groups().first().cloned().ok_or_else(|| {
        StepError::fatal(format!(
            "{} in {}: not found (check the name and the region)",
            what(group),
            c.region
        ))
    })
}

/// Sets the capacity in one request, sent once: the desired capacity, and the minimum and
/// maximum `args` give (`None`: all three, as an undo restores them). A size the step does not
/// change is not sent, so it is never written back over a change made meanwhile.
async fn update(
    c: &Clients,
    group: &str,
    to: Capacity,
    args: Option<&Resolved>,
) -> Result<(), StepError> {
    let given = |key: &str, value: i32| match args {
        Some(args) if args.get(key).is_none() => None,
        _ => Some(value),
    };
    c.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .set_min_size(given("min", to.min))
        .set_max_size(given("max", to.max))
        .desired_capacity(to.desired)
        .customize()
        .config_override(crate::aws::sent_once_autoscaling())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("setting {} to {to}", what(group)), &c.region))?;
    Ok(())
}

fn in_service(g: &AutoScalingGroup) -> usize {
    g.instances()
        .iter()
        .filter(|i| {
            i.lifecycle_state() == Some(&LifecycleState::InService)
                && i.health_status()
                    .is_some_and(|h| h.eq_ignore_ascii_case("healthy"))
        })
        .count()
}

/// Polls until as many instances are in service and healthy as desired (the step's timeout
/// bounds the wait).
async fn wait_in_service(c: &Clients, group: &str, ctx: &ExecContext) -> Result<(), StepError> {
    loop {
        let g = describe(c, group).await?;
        if usize::try_from(Capacity::of(&g).desired).ok() == Some(in_service(&g)) {
            return Ok(());
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

fn waits(args: &Resolved) -> bool {
    args.get("wait").and_then(Value::as_bool) != Some(false)
}

fn outputs(previous: &Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("previous".into(), previous.clone());
    out
}

/// `autoscaling.set_capacity`.
pub async fn set_capacity(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let group = text(args, "group").unwrap_or_default();
    let now = Capacity::of(&describe(&c, group).await?);
    let to = Capacity::wanted(args, now)?;
    if to.desired < to.min || to.desired > to.max {
        return Err(StepError::fatal(format!(
            "{} in {}: a desired capacity of {} is outside its size range (min {}, max {}); give `min` or `max` too",
            what(group),
            c.region,
            to.desired,
            to.min,
            to.max
        )));
    }
    let previous = replaced(ctx, || now.to_json()).await?;
    if now != to {
        update(&c, group, to, Some(args)).await?;
    }
    if waits(args) {
        wait_in_service(&c, group, ctx).await?;
    }
    Ok(outputs(&previous))
}

/// Undo of `autoscaling.set_capacity`: the previous capacity back, only while the group still
/// has the one the step set.
pub async fn undo_capacity(
    args: &Resolved,
    _outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(previous) = journaled(ctx).as_ref().and_then(Capacity::from_json) else {
        return Ok(());
    };
    let c = ctx.aws.clients(text(args, "region")).await?;
    let group = text(args, "group").unwrap_or_default();
    let now = Capacity::of(&describe(&c, group).await?);
    if now == previous {
        return Ok(());
    }
    let wrote = Capacity::wanted(args, previous)?;
    if now != wrote {
        return Err(StepError::conflict(format!(
            "the capacity of {} was changed after drctl set it: drctl set {wrote}, it now has {now} (before drctl: {previous})",
            what(group)
        )));
    }
    update(&c, group, previous, None).await?;
    if waits(args) {
        wait_in_service(&c, group, ctx).await?;
    }
    Ok(())
}

/// Probe of `autoscaling.set_capacity`: the group has the capacity the step set (it took
/// effect), or still the one it replaced (it did not).
pub async fn probe_capacity(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        // Nothing journaled: no attempt got as far as sending its change.
        let Some(journal) = journaled(ctx) else {
            return Ok(Probe::DidNot);
        };
        let Some(previous) = Capacity::from_json(&journal) else {
            return Ok(Probe::Undecided(format!(
                "the capacity journaled before the change cannot be read: {journal}"
            )));
        };
        let c = ctx.aws.clients(text(args, "region")).await?;
        let group = text(args, "group").unwrap_or_default();
        let now = Capacity::of(&describe(&c, group).await?);
        let wrote = Capacity::wanted(args, previous)?;
        if now == wrote {
            if waits(args) {
                wait_in_service(&c, group, ctx).await?;
            }
            return Ok(Probe::TookEffect(outputs(&journal)));
        }
        Ok(if now == previous {
            Probe::DidNot
        } else {
            Probe::Undecided(format!(
                "{} has {now}: neither the {wrote} drctl set nor the {previous} it replaced",
                what(group)
            ))
        })
    };
    probe_or_undecided(found.await)
}

/// Live capacity of the group a step would change, for plan.
pub async fn current_group(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let g = describe(&c, text(args, "group").unwrap_or_default()).await?;
        Ok(format!(
            "{}, {} in service",
            Capacity::of(&g),
            in_service(&g)
        ))
    };
    live_or_unavailable(lookup.await)
}
