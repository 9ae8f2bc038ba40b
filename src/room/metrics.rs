//! `/metrics` in the Prometheus text format, with the names of SPEC §12. What a run's records
//! say (runs by status, steps by action and outcome and their durations, approvals waiting,
//! the last RTO achieved per workflow) is read at each scrape from the same reports `drctl
//! report` builds; the store's commit times are observed as they happen (`timed.rs`); the
//! runs this agent drives are its router's.

use std::collections::BTreeMap;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::report::{Compiled, build_with};
use crate::service::CliError;
use crate::store::Store;
use crate::view::RunLine;

type Labels = Vec<(String, String)>;

/// The buckets of step durations and of commit times, in seconds: 1 ms to about 4.6 h.
fn buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 4.0, 13)
}

/// The histogram of the store's commit times, observed by the agent's store.
pub fn commit_histogram() -> Histogram {
    Histogram::new(buckets())
}

/// The metrics' text: `lines` are the runs as the run service lists them, `driven` the runs
/// this agent drives, `commits` the store's commit times so far. Blocking: reads every run's
/// records.
pub fn render(
    store: &dyn Store,
    lines: &[RunLine],
    driven: usize,
    commits: &Histogram,
) -> Result<String, CliError> {
    let mut registry = Registry::default();
    let runs = Family::<Labels, Gauge>::default();
    let steps = Family::<Labels, Counter>::default();
    let durations =
        Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(commit_histogram);
    let waiting = Gauge::<i64>::default();
    let rto = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let runs_driven = Gauge::<i64>::default();
    registry.register("drctl_runs", "Runs of the store by status", runs.clone());
    registry.register(
        "drctl_steps",
        "Steps that ended, by action and outcome",
        steps.clone(),
    );
    registry.register(
        "drctl_step_duration_seconds",
        "How long steps took, by action",
        durations.clone(),
    );
    registry.register(
        "drctl_approvals_waiting",
        "Approvals waiting for people in runs under way",
        waiting.clone(),
    );
    registry.register(
        "drctl_run_rto_seconds",
        "The RTO achieved by each workflow's last recovered run",
        rto.clone(),
    );
    registry.register(
        "drctl_store_commit_seconds",
        "How long the store took to make a commit durable",
        commits.clone(),
    );
    registry.register(
        "drctl_agent_runs_driven",
        "Runs this agent drives now",
        runs_driven.clone(),
    );

    for line in lines {
        runs.get_or_create(&vec![("status".into(), line.status.clone())])
            .inc();
    }
    let mut compiled = Compiled::default();
    let mut last_rto: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for line in lines {
        let report = build_with(store, &line.run_id, &mut compiled)?;
        // As `drctl runs` shows it: an interrupted run waits for nobody's approval.
        let under_way = matches!(
            line.status.as_str(),
            "running" | "awaiting_approval" | "rolling_back"
        );
        for step in &report.steps {
            if step.is_approval && step.status == "awaiting_approval" && under_way {
                waiting.inc();
            }
            if !ended(&step.status) {
                continue;
            }
            steps
                .get_or_create(&vec![
                    ("action".into(), step.action.clone()),
                    ("outcome".into(), step.status.clone()),
                ])
                .inc();
            if let Some(seconds) = step.duration_seconds {
                durations
                    .get_or_create(&vec![("action".into(), step.action.clone())])
                    .observe(seconds);
            }
        }
        if let (Some(achieved), Some(at)) = (report.rto.achieved_seconds, &report.recovered_at)
            && last_rto
                .get(&report.workflow)
                .is_none_or(|(last, _)| last < at)
        {
            last_rto.insert(report.workflow.clone(), (at.clone(), achieved));
        }
    }
    for (workflow, (_, seconds)) in last_rto {
        rto.get_or_create(&vec![("workflow".into(), workflow)])
            .set(seconds);
    }
    runs_driven.set(i64::try_from(driven).unwrap_or(i64::MAX));
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| CliError::internal(e.to_string()))?;
    Ok(text)
}

/// Whether a step with this status has ended.
fn ended(status: &str) -> bool {
    matches!(
        status,
        "succeeded" | "failed" | "skipped" | "rolled_back" | "unknown"
    )
}
