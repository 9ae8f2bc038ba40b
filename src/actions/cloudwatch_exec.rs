//! `CloudWatch` alarms through the SDK: an alarm's state and the reason `CloudWatch` gives
//! for it. Read-only.

use aws_sdk_cloudwatch::types::AlarmType;

use super::LiveState;
use super::outcome::{ExecContext, Outputs, Resolved, StepError, live_or_unavailable, text};
use crate::aws::{AwsContext, Clients, classify};

/// An alarm's state, as `CloudWatch` reports it.
struct Reading {
    state: String,
    reason: String,
    since: Option<String>,
}

/// The alarm `name`, metric or composite.
async fn read(c: &Clients, name: &str) -> Result<Reading, StepError> {
    let what = format!("CloudWatch alarm {name}");
    let out = c
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| classify(&e, &what, &c.region))?;
    // A metric alarm and a composite one say the same three things, as different types.
    let metric = out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name));
    let composite = out
        .composite_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name));
    let found = metric
        .map(|a| {
            (
                a.state_value(),
                a.state_reason(),
                a.state_updated_timestamp(),
            )
        })
        .or_else(|| {
            composite.map(|a| {
                (
                    a.state_value(),
                    a.state_reason(),
                    a.state_updated_timestamp(),
                )
            })
        });
    let Some((state, reason, updated)) = found else {
        return Err(StepError::fatal(format!(
            "{what} in {}: not found (check the name and the region)",
            c.region
        )));
    };
    let since = updated
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
        .map(crate::time::rfc3339);
    Ok(Reading {
        state: state
            .map_or("INSUFFICIENT_DATA", |s| s.as_str())
            .to_string(),
        reason: reason.unwrap_or_default().to_string(),
        since,
    })
}

/// `cloudwatch.alarm_state`.
pub async fn alarm_state(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let name = text(args, "alarm").unwrap_or_default();
    let reading = read(&c, name).await?;
    if let Some(expect) = text(args, "expect")
        && reading.state != expect
    {
        // Not yet: a later attempt (the step's retry policy) may find it there.
        return Err(StepError::no_effect(format!(
            "CloudWatch alarm {name} in {} is {}, expected {expect}: {}",
            c.region, reading.state, reading.reason
        )));
    }
    let mut out = Outputs::new();
    out.insert("state".into(), reading.state.into());
    out.insert("reason".into(), reading.reason.into());
    Ok(out)
}

/// The alarm's state now, for plan.
pub async fn current_alarm(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let reading = read(&c, text(args, "alarm").unwrap_or_default()).await?;
        let since = reading
            .since
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        Ok(format!("{}{since}: {}", reading.state, reading.reason))
    };
    live_or_unavailable(lookup.await)
}
