//! The `mode` of `rds.failover_global_cluster`: a switchover (no data loss, needs the primary
//! region), a failover (for an outage, may lose what was not replicated), or `auto`, which
//! measures first and chooses: the switchover when the primary cluster answers from its region
//! and is available, else the failover, refused unless the step allows data loss. What was
//! done and the lag measured before are outputs (`mode_used`, `lag_seconds`).
//!
//! The mode used and the lag are journaled before the operation is sent, as a self-undoing
//! step journals what it replaces (SPEC §5.8.3): an attempt after a crash does the operation
//! the first one chose (it does not choose again, which could turn a switchover under way into
//! a failover that loses data), and a probe that finds the target the writer says which mode
//! did it and what the lag was.
//!
//! A primary region that times out, cannot be reached or answers 5xx "does not answer"; one
//! that answers with a throttle or a refusal (access denied, say) answers, and the step fails
//! on that error instead: a failover that may lose data is never chosen from a misconfiguration.

use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use serde_json::{Value, json};

use super::clusters::{self, global_and_target, global_writer};
use super::region_of;
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, journaled, replaced, text,
};
use crate::actions::replication_exec::Lag;
use crate::aws::{Clients, classify};

/// What the step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Switchover,
    Failover,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Switchover => "switchover",
            Mode::Failover => "failover",
        }
    }

    /// The mode `name` names (`auto` is not one: it chooses one of these).
    fn named(name: &str) -> Option<Mode> {
        [Mode::Switchover, Mode::Failover]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// How long the primary's region has to answer before `auto` takes it as down.
const PRIMARY_ATTEMPT: Duration = Duration::from_secs(5);
const PRIMARY_TOTAL: Duration = Duration::from_secs(15);

/// The region and the cluster identifier of a cluster ARN
/// (`arn:aws:rds:REGION:ACCOUNT:cluster:NAME`).
fn parse_cluster_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(7, ':');
    let (arn_, _, rds, region, _, kind, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn_ == "arn" && rds == "rds" && kind == "cluster" && !region.is_empty() && !name.is_empty())
        .then_some((region, name))
}

fn cluster_arn<'a>(arn: &'a str, param: &str) -> Result<(&'a str, &'a str), StepError> {
    parse_cluster_arn(arn).ok_or_else(|| {
        StepError::fatal(format!(
            "{param} `{arn}` is not a DB cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:NAME)"
        ))
    })
}

/// Whether the primary cluster `writer` answers from its region and is available: `Ok(None)`
/// when it is, `Ok(Some(why))` when it does not answer or is not available.
async fn primary_down(ctx: &ExecContext, writer: &str) -> Result<Option<String>, StepError> {
    let (region, cluster) = cluster_arn(writer, "the global cluster's writer")?;
    let c = ctx.aws.clients(Some(region)).await?;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(PRIMARY_ATTEMPT)
        .operation_timeout(PRIMARY_TOTAL)
        .build();
    let asked = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .customize()
        .config_override(
            aws_sdk_rds::config::Builder::default()
                .timeout_config(timeouts)
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2)),
        )
        .send()
        .await;
    let what = format!("primary cluster {cluster}");
    match asked {
        Ok(out) => {
            let status = out
                .db_clusters()
                .first()
                .and_then(|cl| cl.status())
                .unwrap_or("not described");
            Ok((status != "available").then(|| format!("{what} in {region} is {status}")))
        }
        Err(e) => {
            let silent = match &e {
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
                SdkError::DispatchFailure(f) => !f.is_user(),
                SdkError::ServiceError(s) => s.raw().status().is_server_error(),
                _ => false,
            };
            let error = classify(&e, &what, region);
            if silent {
                Ok(Some(error.to_string()))
            } else {
                Err(error.into())
            }
        }
    }
}

/// The secondary's replication lag, in seconds, from `CloudWatch` in its region; `None`
/// without a datapoint in the last 10 minutes.
async fn measure_lag(ctx: &ExecContext, target: &str) -> Result<Option<f64>, StepError> {
    let (region, cluster) = cluster_arn(target, "target_cluster_arn")?;
    let c = ctx.aws.clients(Some(region)).await?;
    Lag::aurora_global(cluster).read(&c).await
}

/// The mode `auto` chooses, or why it refuses to.
async fn choose(
    args: &Resolved,
    ctx: &ExecContext,
    c: &Clients,
    lag: Option<f64>,
) -> Result<Mode, StepError> {
    let (global, target) = global_and_target(args);
    let writer = global_writer(c, global).await?;
    if writer.as_deref() == Some(target) {
        return Err(StepError::fatal(format!(
            "{target} is already the writer of global cluster {global}: nothing to fail over (failed over already?)"
        )));
    }
    let down = match &writer {
        Some(writer) => primary_down(ctx, writer).await?,
        None => Some(format!("global cluster {global} has no writer")),
    };
    let Some(why) = down else {
        return Ok(Mode::Switchover);
    };
    if args.get("allow_data_loss").and_then(Value::as_bool) == Some(true) {
        tracing::warn!(%why, "the primary does not answer: failing over, accepting data loss");
        return Ok(Mode::Failover);
    }
    let lag = lag.map_or_else(
        || "no lag datapoint in the last 10 minutes".to_string(),
        |s| format!("the secondary lagged {s:.1}s"),
    );
    Err(StepError::fatal(format!(
        "a switchover of global cluster {global} needs its primary, which does not answer ({why}); a failover to {target} would lose the writes not yet replicated ({lag}), and this step does not allow data loss: set `allow_data_loss = true` to fail over, or wait for the primary region"
    )))
}

/// `rds.failover_global_cluster`: without `mode`, the failover as it always was; with it, the
/// lag measured, the mode chosen (`auto`) or given, and that operation done.
pub async fn failover_global(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let Some(mode) = text(args, "mode") else {
        let mut out = clusters::failover_global(args, ctx).await?;
        out.insert("mode_used".into(), Mode::Failover.as_str().into());
        out.insert("lag_seconds".into(), Value::Null);
        return Ok(out);
    };
    // An earlier attempt's choice, journaled before it sent anything, stands.
    let (used, lag) = match journaled(ctx).as_ref().and_then(chosen) {
        Some(chosen) => chosen,
        None => {
            let (used, lag) = choice(args, ctx, mode).await?;
            replaced(
                ctx,
                || json!({ "mode_used": used.as_str(), "lag_seconds": lag }),
            )
            .await?;
            (used, lag)
        }
    };
    let mut out = match used {
        Mode::Switchover => clusters::switchover_global(args, ctx).await?,
        Mode::Failover => clusters::failover_global(args, ctx).await?,
    };
    out.insert("mode_used".into(), used.as_str().into());
    out.insert("lag_seconds".into(), lag.into());
    Ok(out)
}

/// The mode to use and the lag measured, for `mode`.
async fn choice(
    args: &Resolved,
    ctx: &ExecContext,
    mode: &str,
) -> Result<(Mode, Option<f64>), StepError> {
    let (_, target) = global_and_target(args);
    let lag = measure_lag(ctx, target).await?;
    let used = match (Mode::named(mode), mode) {
        (Some(given), _) => given,
        (None, "auto") => {
            let c = ctx.aws.clients(region_of(args)).await?;
            choose(args, ctx, &c, lag).await?
        }
        (None, other) => {
            return Err(StepError::fatal(format!(
                "`mode` is \"{other}\": expected \"switchover\", \"failover\" or \"auto\""
            )));
        }
    };
    Ok((used, lag))
}

/// The mode and lag an earlier attempt journaled.
fn chosen(journaled: &Value) -> Option<(Mode, Option<f64>)> {
    let used = Mode::named(journaled["mode_used"].as_str()?)?;
    Some((used, journaled["lag_seconds"].as_f64()))
}

/// Probe of `rds.failover_global_cluster`: the target is the writer. The mode used and the lag
/// are what the attempt journaled before it sent the operation; without `mode`, a failover.
pub async fn probe_failover_global(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = clusters::probe_global(args, ctx).await;
    let Probe::TookEffect(mut out) = found else {
        return found;
    };
    let (mode_used, lag) = match (text(args, "mode"), journaled(ctx).as_ref().and_then(chosen)) {
        (_, Some((used, lag))) => (used.as_str().into(), lag.into()),
        // Without `mode`, the failover as it always was; `auto`'s choice is not known.
        (None, None) => (Mode::Failover.as_str().into(), Value::Null),
        (Some(mode), None) => (
            Mode::named(mode).map_or(Value::Null, |m| m.as_str().into()),
            Value::Null,
        ),
    };
    out.insert("mode_used".into(), mode_used);
    out.insert("lag_seconds".into(), lag);
    Probe::TookEffect(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_arn_gives_its_region_and_name() {
        assert_eq!(
            parse_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:orders-use1"),
            Some(("us-east-1", "orders-use1"))
        );
        for bad in [
            "orders-use1",
            "arn:aws:rds:us-east-1:123456789012:db:orders",
            "arn:aws:rds::123456789012:cluster:orders",
            "arn:aws:rds:us-east-1:123456789012:cluster:",
            "arn:aws:s3:us-east-1:123456789012:cluster:orders",
        ] {
            assert_eq!(parse_cluster_arn(bad), None, "{bad}");
        }
    }
}
