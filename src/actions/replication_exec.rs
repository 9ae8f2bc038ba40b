//! Replication lag from `CloudWatch` metrics: the newest datapoint of the last 10 minutes of
//! `AuroraGlobalDBReplicationLag` (an Aurora global database's secondary cluster) or
//! `ReplicationLatency` (a `DynamoDB` global table, to one receiving region). Both are published
//! in milliseconds and read here in seconds. Read-only.

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use chrono::Utc;

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Resolved, StepError, checked_duration, live_or_unavailable, text,
};
use crate::aws::{AwsContext, Clients, classify};

/// A replication metric of one resource, as `CloudWatch` keys it.
pub(super) struct Lag<'a> {
    /// `AWS/RDS` or `AWS/DynamoDB`.
    namespace: &'static str,
    /// The metric's name.
    metric: &'static str,
    /// Its dimensions, name and value.
    dimensions: Vec<(&'static str, &'a str)>,
    /// The resource, in words, for messages.
    what: String,
}

impl<'a> Lag<'a> {
    /// `AuroraGlobalDBReplicationLag` of the secondary cluster `cluster`.
    pub(super) fn aurora_global(cluster: &'a str) -> Self {
        Self {
            namespace: "AWS/RDS",
            metric: "AuroraGlobalDBReplicationLag",
            dimensions: vec![("DBClusterIdentifier", cluster)],
            what: format!("cluster {cluster}"),
        }
    }

    /// `ReplicationLatency` of global table `table` towards `receiving_region`.
    fn dynamodb(table: &'a str, receiving_region: &'a str) -> Self {
        Self {
            namespace: "AWS/DynamoDB",
            metric: "ReplicationLatency",
            dimensions: vec![("TableName", table), ("ReceivingRegion", receiving_region)],
            what: format!("global table {table} to {receiving_region}"),
        }
    }

    /// The newest datapoint of the last 10 minutes, in seconds; `None` when there is none.
    pub(super) async fn read(&self, c: &Clients) -> Result<Option<f64>, StepError> {
        let now = Utc::now();
        let start = now - chrono::Duration::minutes(10);
        let mut request = c
            .cloudwatch
            .get_metric_statistics()
            .namespace(self.namespace)
            .metric_name(self.metric)
            .start_time(aws_smithy_types::DateTime::from_secs(start.timestamp()))
            .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp() + 60))
            .period(60)
            .statistics(Statistic::Maximum);
        for (name, value) in &self.dimensions {
            request = request.dimensions(Dimension::builder().name(*name).value(*value).build());
        }
        let out = request
            .send()
            .await
            .map_err(|e| classify(&e, &format!("{} of {}", self.metric, self.what), &c.region))?;
        Ok(out
            .datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, millis)| millis / 1000.0))
    }

    /// [`Lag::read`], where no datapoint is a failure that a later attempt may not have.
    async fn required(&self, c: &Clients) -> Result<f64, StepError> {
        self.read(c).await?.ok_or_else(|| {
            StepError::no_effect(format!(
                "no {} datapoint for {} in {} in the last 10 minutes (CloudWatch may lag a minute; check the name and the region)",
                self.metric, self.what, c.region
            ))
        })
    }
}

/// The outputs of a reading `lag`, named `name` (`lag_seconds`, `latency_seconds`), failed
/// when above the step's `limit` parameter: failing over now would lose that much data.
fn gate(
    args: &Resolved,
    limit: &str,
    name: &str,
    lag: f64,
    what: &str,
) -> Result<Outputs, StepError> {
    if let Some(max) = checked_duration(args, limit)?
        && lag > max.as_secs_f64()
    {
        return Err(StepError::fatal(format!(
            "{what} lags {lag:.1}s, above {limit} {}: failing over now would lose that much data",
            crate::workflow::format_duration(max)
        )));
    }
    let mut out = Outputs::new();
    out.insert(name.into(), lag.into());
    out.insert("rpo_seconds".into(), lag.into());
    Ok(out)
}

/// `rds.global_replication_lag`.
pub async fn global_lag(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let cluster = text(args, "db_cluster").unwrap_or_default();
    let lag = Lag::aurora_global(cluster).required(&c).await?;
    let what = format!("secondary cluster {cluster} in {}", c.region);
    gate(args, "max_lag", "lag_seconds", lag, &what)
}

/// `dynamodb.replication_latency`.
pub async fn replication_latency(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let table = text(args, "table").unwrap_or_default();
    let receiving = text(args, "receiving_region").unwrap_or_default();
    let latency = Lag::dynamodb(table, receiving).required(&c).await?;
    let what = format!(
        "global table {table}'s replication from {} to {receiving}",
        c.region
    );
    gate(args, "max_latency", "latency_seconds", latency, &what)
}

/// The lag now, in words, for plan.
async fn current(lag: &Lag<'_>, region: Option<&str>, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(region).await?;
        Ok(match lag.read(&c).await? {
            Some(seconds) => format!("{} of {} now {seconds:.1}s", lag.metric, lag.what),
            None => format!(
                "no {} datapoint for {} in the last 10 minutes",
                lag.metric, lag.what
            ),
        })
    };
    live_or_unavailable(lookup.await)
}

/// Live global replication lag, for plan.
pub async fn current_global_lag(args: &Resolved, aws: &AwsContext) -> LiveState {
    let cluster = text(args, "db_cluster").unwrap_or_default();
    current(&Lag::aurora_global(cluster), text(args, "region"), aws).await
}

/// Live replication latency of a global table, for plan.
pub async fn current_latency(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lag = Lag::dynamodb(
        text(args, "table").unwrap_or_default(),
        text(args, "receiving_region").unwrap_or_default(),
    );
    current(&lag, text(args, "region"), aws).await
}
