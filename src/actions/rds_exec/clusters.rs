//! DB clusters and Aurora global clusters: failing a cluster over to another instance,
//! failing over or switching over a global cluster to a secondary, waiting for the new
//! writer, and reading the current writer for probes and plan.

use serde_json::Value;

use super::region_of;
use crate::actions::LiveState;
use crate::actions::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, live_or_unavailable, probe_or_undecided, text,
};
use crate::aws::{AwsContext, Clients, classify};

async fn cluster_writer(c: &Clients, cluster: &str) -> Result<Option<String>, StepError> {
    let out = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("DB cluster {cluster}"), &c.region))?;
    Ok(out
        .db_clusters()
        .first()
        .and_then(|cl| {
            cl.db_cluster_members()
                .iter()
                .find(|m| m.is_cluster_writer() == Some(true))
        })
        .and_then(|m| m.db_instance_identifier().map(str::to_string)))
}

/// `rds.failover_db_cluster`.
pub async fn failover_cluster(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let cluster = text(args, "db_cluster").unwrap_or_default();
    let before = cluster_writer(&c, cluster).await?;
    let mut request = c.rds.failover_db_cluster().db_cluster_identifier(cluster);
    if let Some(target) = text(args, "target_instance") {
        request = request.target_db_instance_identifier(target);
    }
    send_once!(c, request, format!("failover of DB cluster {cluster}"))?;
    loop {
        let writer = cluster_writer(&c, cluster).await?;
        let done = match text(args, "target_instance") {
            Some(t) => writer.as_deref() == Some(t),
            None => writer.is_some() && writer != before,
        };
        if done {
            return Ok(writer_outputs(writer));
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

pub(super) async fn global_writer(c: &Clients, global: &str) -> Result<Option<String>, StepError> {
    let out = c
        .rds
        .describe_global_clusters()
        .global_cluster_identifier(global)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("global cluster {global}"), &c.region))?;
    Ok(out
        .global_clusters()
        .first()
        .and_then(|g| {
            g.global_cluster_members()
                .iter()
                .find(|m| m.is_writer() == Some(true))
        })
        .and_then(|m| m.db_cluster_arn().map(str::to_string)))
}

async fn wait_global_writer(
    c: &Clients,
    global: &str,
    target: &str,
    ctx: &ExecContext,
) -> Result<Outputs, StepError> {
    loop {
        let writer = global_writer(c, global).await?;
        if writer.as_deref() == Some(target) {
            return Ok(writer_outputs(writer));
        }
        tokio::time::sleep(ctx.aws.poll_interval).await;
    }
}

/// `rds.failover_global_cluster`.
pub async fn failover_global(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (global, target) = global_and_target(args);
    let allow_data_loss = args.get("allow_data_loss").and_then(Value::as_bool);
    send_once!(
        c,
        c.rds
            .failover_global_cluster()
            .global_cluster_identifier(global)
            .target_db_cluster_identifier(target)
            .allow_data_loss(allow_data_loss.unwrap_or(false)),
        format!("failover of global cluster {global} to {target}")
    )?;
    wait_global_writer(&c, global, target, ctx).await
}

/// `rds.switchover_global_cluster`.
pub async fn switchover_global(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(region_of(args)).await?;
    let (global, target) = global_and_target(args);
    send_once!(
        c,
        c.rds
            .switchover_global_cluster()
            .global_cluster_identifier(global)
            .target_db_cluster_identifier(target),
        format!("switchover of global cluster {global} to {target}")
    )?;
    wait_global_writer(&c, global, target, ctx).await
}

/// Probe of the global operations: the target is the writer.
pub async fn probe_global(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        let c = ctx.aws.clients(region_of(args)).await?;
        let (global, target) = global_and_target(args);
        Ok(match global_writer(&c, global).await? {
            writer @ Some(_) if writer.as_deref() == Some(target) => {
                Probe::TookEffect(writer_outputs(writer))
            }
            _ => Probe::Undecided(format!(
                "{target} is not the writer of {global} yet; the operation may still be under way"
            )),
        })
    };
    probe_or_undecided(found.await)
}

/// Live writer of a cluster, for plan.
pub async fn current_cluster(args: &Resolved, aws: &AwsContext) -> LiveState {
    let cluster = text(args, "db_cluster").unwrap_or_default();
    let lookup = async {
        let c = aws.clients(region_of(args)).await?;
        cluster_writer(&c, cluster).await
    };
    live_writer(cluster, lookup.await)
}

/// Live writer of a global cluster, for plan.
pub async fn current_global(args: &Resolved, aws: &AwsContext) -> LiveState {
    let global = text(args, "global_cluster").unwrap_or_default();
    let lookup = async {
        let c = aws.clients(region_of(args)).await?;
        global_writer(&c, global).await
    };
    live_writer(global, lookup.await)
}

/// The writer of `name` as plan shows it.
fn live_writer(name: &str, writer: Result<Option<String>, StepError>) -> LiveState {
    live_or_unavailable(writer.map(|writer| {
        format!(
            "writer of {name}: {}",
            writer.unwrap_or_else(|| "none".into())
        )
    }))
}

/// The global cluster and the secondary cluster's ARN a global operation names.
pub(super) fn global_and_target(args: &Resolved) -> (&str, &str) {
    (
        text(args, "global_cluster").unwrap_or_default(),
        text(args, "target_cluster_arn").unwrap_or_default(),
    )
}

/// The outputs of an operation that ends with `writer` writing.
fn writer_outputs(writer: Option<String>) -> Outputs {
    let mut out = Outputs::new();
    out.insert("writer".into(), writer.into());
    out
}
