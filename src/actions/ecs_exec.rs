//! ECS through the SDK: a service's desired count read, changed (the count it replaces
//! journaled first), waited on until the service is steady, and put back by the undo only
//! while the service still asks for the count drctl set.

use aws_sdk_ecs::types::{DeploymentRolloutState, Service};
use serde_json::Value;

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, checked_count, journaled,
    live_or_unavailable, probe_or_undecided, replaced, text,
};
use crate::aws::{AwsContext, Clients, classify};

/// The service a step names: its cluster and its name.
struct Target<'a> {
    cluster: &'a str,
    service: &'a str,
}

impl<'a> Target<'a> {
    fn of(args: &'a Resolved) -> Self {
        Self {
            cluster: text(args, "cluster").unwrap_or_default(),
            service: text(args, "service").unwrap_or_default(),
        }
    }

    fn what(&self) -> String {
        format!("ECS service {} in cluster {}", self.service, self.cluster)
    }
}

/// The service as ECS describes it now.
async fn describe(c: &Clients, t: &Target<'_>) -> Result<Service, StepError> {
    let out = c
        .ecs
        .describe_services()
        .cluster(t.cluster)
        .services(t.service)
        .send()
        .await
        .map_err(|e| classify(&e, &t.what(), &c.region))?;
    match out.services().first() {
        Some(s) if s.status() == Some("INACTIVE") => Err(StepError::fatal(format!(
            "{} in {}: the service is inactive (deleted); check the name and the cluster",
            t.what(),
            c.region
        ))),
        Some(s) => Ok(s.clone()),
        None => {
            let reason = out
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("MISSING");
            Err(StepError::fatal(format!(
                "{} in {}: {reason} (check the name, the cluster and the region)",
                t.what(),
                c.region
            )))
        }
    }
}

/// Sets the desired count, sent once (drctl, not the SDK, decides what a lost answer means).
async fn set_desired(c: &Clients, t: &Target<'_>, count: i32) -> Result<Service, StepError> {
    let out = c
        .ecs
        .update_service()
        .cluster(t.cluster)
        .service(t.service)
        .desired_count(count)
        .customize()
        .config_override(crate::aws::sent_once_ecs())
        .send()
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("scaling {} to {count} tasks", t.what()),
                &c.region,
            )
        })?;
    out.service().cloned().ok_or_else(|| {
        StepError::ambiguous(format!(
            "scaling {} to {count} tasks in {}: ECS answered without the service",
            t.what(),
            c.region
        ))
    })
}

/// Steady as the SDK's `ServicesStable` waiter has it: one deployment, and as many tasks
/// running as desired.
fn steady(s: &Service) -> bool {
    s.deployments().len() == 1 && s.running_count() == s.desired_count()
}

/// Polls until the service is steady (the step's timeout bounds the wait); a deployment that
/// ECS rolled back (its circuit breaker tripped) fails the step at once.
async fn wait_steady(c: &Clients, t: &Target<'_>, ctx: &ExecContext) -> Result<Service, StepError> {
    loop {
        let s = describe(c, t).await?;
        if let Some(failed) = s
            .deployments()
            .iter()
            .find(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed))
        {
            return Err(StepError::fatal(format!(
                "{} in {}: deployment {} failed: {}",
                t.what(),
                c.region,
                failed.id().unwrap_or("?"),
                failed.rollout_state_reason().unwrap_or("no reason given")
            )));
        }
        if steady(&s) {
            return Ok(s);
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

fn waits(args: &Resolved) -> bool {
    args.get("wait").and_then(Value::as_bool) != Some(false)
}

fn wanted(args: &Resolved) -> Result<i32, StepError> {
    checked_count(args, "desired_count")?
        .ok_or_else(|| StepError::fatal("`desired_count` is missing"))
}

fn outputs(previous: &Value, running: i32) -> Outputs {
    let mut out = Outputs::new();
    out.insert("previous_desired_count".into(), previous.clone());
    out.insert("running_count".into(), running.into());
    out
}

/// `ecs.scale_service`.
pub async fn scale(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let t = Target::of(args);
    let count = wanted(args)?;
    let now = describe(&c, &t).await?;
    let previous = replaced(ctx, || now.desired_count().into()).await?;
    let mut service = if now.desired_count() == count {
        now
    } else {
        set_desired(&c, &t, count).await?
    };
    if waits(args) {
        service = wait_steady(&c, &t, ctx).await?;
    }
    Ok(outputs(&previous, service.running_count()))
}

/// The count journaled as replaced, as a count.
fn journaled_count(ctx: &ExecContext) -> Option<i32> {
    journaled(ctx)
        .and_then(|v| v.as_i64())
        .and_then(|n| i32::try_from(n).ok())
}

/// Undo of `ecs.scale_service`: the previous desired count back, only while the service
/// still asks for the count the step set.
pub async fn undo_scale(
    args: &Resolved,
    _outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(previous) = journaled_count(ctx) else {
        return Ok(());
    };
    let c = ctx.aws.clients(text(args, "region")).await?;
    let t = Target::of(args);
    let wrote = wanted(args)?;
    let now = describe(&c, &t).await?.desired_count();
    if now == previous {
        return Ok(());
    }
    if now != wrote {
        return Err(StepError::conflict(format!(
            "the desired count of {} was changed after drctl set it: drctl set {wrote} tasks, it now asks for {now} (before drctl: {previous})",
            t.what()
        )));
    }
    set_desired(&c, &t, previous).await?;
    if waits(args) {
        wait_steady(&c, &t, ctx).await?;
    }
    Ok(())
}

/// Probe of `ecs.scale_service`: the service asks for the count the step set (it took
/// effect), or still for the one it replaced (it did not).
pub async fn probe_scale(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        // Nothing journaled: no attempt got as far as sending its change.
        let Some(previous) = journaled_count(ctx) else {
            return Ok(Probe::DidNot);
        };
        let c = ctx.aws.clients(text(args, "region")).await?;
        let t = Target::of(args);
        let count = wanted(args)?;
        let now = describe(&c, &t).await?;
        if now.desired_count() == count {
            let running = if waits(args) {
                wait_steady(&c, &t, ctx).await?.running_count()
            } else {
                now.running_count()
            };
            return Ok(Probe::TookEffect(outputs(&previous.into(), running)));
        }
        Ok(if now.desired_count() == previous {
            Probe::DidNot
        } else {
            Probe::Undecided(format!(
                "{} asks for {} tasks: neither the {count} drctl set nor the {previous} it replaced",
                t.what(),
                now.desired_count()
            ))
        })
    };
    probe_or_undecided(found.await)
}

/// Live task counts of the service a step would scale, for plan.
pub async fn current_service(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let t = Target::of(args);
        let s = describe(&c, &t).await?;
        let deployments = s.deployments().len();
        let state = if steady(&s) {
            "steady".to_string()
        } else {
            format!(
                "not steady: {deployments} deployment{}, {} pending",
                if deployments == 1 { "" } else { "s" },
                s.pending_count()
            )
        };
        Ok(format!(
            "{} tasks desired, {} running ({state})",
            s.desired_count(),
            s.running_count()
        ))
    };
    live_or_unavailable(lookup.await)
}
