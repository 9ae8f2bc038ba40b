//! What only reads Route 53: waiting for a change to be INSYNC, a health check's status, and
//! the live value of a record for plan.

use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet};

use super::{Key, wait_insync};
use crate::actions::LiveState;
use crate::actions::outcome::{
    ExecContext, Outputs, Resolved, StepError, live_or_unavailable, text,
};
use crate::aws::{AwsContext, classify};

/// `route53.wait_insync`.
pub async fn insync(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(None).await?;
    wait_insync(&c, text(args, "change_id").unwrap_or_default(), ctx).await?;
    Ok(Outputs::new())
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

/// A record set as plan shows it.
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
        let key = Key::of(args);
        let record = key.find(&c).await?;
        let Key {
            zone, name, rtype, ..
        } = key;
        Ok(record.map_or_else(
            || format!("{name} {rtype} does not exist in zone {zone}"),
            |r| describe_set(&r),
        ))
    };
    live_or_unavailable(lookup.await)
}
