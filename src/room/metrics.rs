//! `/metrics` in the Prometheus text format, with the names of SPEC §12. What a run's records
//! say (runs by status, steps by action and outcome and their durations, approvals waiting,
//! the last RTO achieved per workflow) comes from the same reports `drctl report` builds: each
//! run's share is derived from its report, and kept for a run at rest (`settled.rs`), so that
//! a scrape builds the reports of the runs under way only. The store's commit times are
//! observed as they happen (`timed.rs`); the runs this agent drives are its router's.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::settled::Settled;
use crate::report::Report;
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

/// Observations in the buckets of [`buckets`] (and a last one, `+Inf`): their sum, their
/// count, and how many fell in each bucket.
#[derive(Debug, Clone, Default)]
struct Tally {
    sum: f64,
    count: u64,
    each: Vec<u64>,
}

impl Tally {
    fn observe(&mut self, seconds: f64) {
        static BOUNDS: std::sync::LazyLock<Vec<f64>> =
            std::sync::LazyLock::new(|| buckets().collect());
        let bounds = &*BOUNDS;
        self.each.resize(bounds.len() + 1, 0);
        // The first bucket whose upper bound holds it; past the last, `+Inf`.
        let at = bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(bounds.len());
        self.each[at] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn add(&mut self, other: &Tally) {
        if self.each.len() < other.each.len() {
            self.each.resize(other.each.len(), 0);
        }
        for (mine, theirs) in self.each.iter_mut().zip(&other.each) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// A histogram made of tallies, as `/metrics` writes it.
#[derive(Debug, Default)]
struct Tallied(Mutex<Tally>);

impl TypedMetric for Tallied {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Tallied {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let bounds = buckets().chain(std::iter::once(f64::INFINITY));
        let each = tally.each.iter().copied().chain(std::iter::repeat(0));
        let buckets: Vec<(f64, u64)> = bounds.zip(each).collect();
        encoder.encode_histogram::<NoLabelSet>(tally.sum, tally.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// What one run adds to the metrics.
#[derive(Debug, Clone, Default)]
pub struct Share {
    /// Approvals waiting in it, when it is under way.
    waiting: i64,
    /// Its steps that ended, by action and outcome.
    steps: BTreeMap<(String, String), u64>,
    /// How long they took, by action.
    durations: BTreeMap<String, Tally>,
    /// The RTO it achieved: its workflow, when it recovered, the seconds.
    rto: Option<(String, String, f64)>,
}

/// Run `line`'s share, from its report.
fn share(line: &RunLine, report: &Report) -> Share {
    let mut share = Share::default();
    // As `drctl runs` shows it: an interrupted run waits for nobody's approval.
    let under_way = matches!(
        line.status.as_str(),
        "running" | "awaiting_approval" | "rolling_back"
    );
    for step in &report.steps {
        if step.is_approval && step.status == "awaiting_approval" && under_way {
            share.waiting += 1;
        }
        if !ended(&step.status) {
            continue;
        }
        *share
            .steps
            .entry((step.action.clone(), step.status.clone()))
            .or_default() += 1;
        if let Some(seconds) = step.duration_seconds {
            share
                .durations
                .entry(step.action.clone())
                .or_default()
                .observe(seconds);
        }
    }
    if let (Some(achieved), Some(at)) = (report.rto.achieved_seconds, &report.recovered_at) {
        share.rto = Some((report.workflow.clone(), at.clone(), achieved));
    }
    share
}

/// The runs' shares of the metrics, kept for the runs at rest.
#[derive(Default)]
pub struct Shares(Settled<Share>);

/// The metrics' text: `lines` are the runs as the run service lists them, `driven` the runs
/// this agent drives, `commits` the store's commit times so far. Blocking: reads the records
/// of the runs not at rest, or not seen yet.
pub fn render(
    store: &dyn Store,
    shares: &Shares,
    lines: Vec<RunLine>,
    driven: usize,
    commits: &Histogram,
) -> Result<String, CliError> {
    let mut registry = Registry::default();
    let runs = Family::<Labels, Gauge>::default();
    let steps = Family::<Labels, Counter>::default();
    let durations = Family::<Labels, Tallied>::default();
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

    let mut last_rto: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for (line, share) in shares
        .0
        .each(store, lines, |line, report| Ok(share(line, report)))?
    {
        runs.get_or_create(&vec![("status".into(), line.status.clone())])
            .inc();
        waiting.inc_by(share.waiting);
        for ((action, outcome), n) in share.steps {
            steps
                .get_or_create(&vec![
                    ("action".into(), action),
                    ("outcome".into(), outcome),
                ])
                .inc_by(n);
        }
        for (action, tally) in share.durations {
            durations
                .get_or_create(&vec![("action".into(), action)])
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(&tally);
        }
        if let Some((workflow, at, achieved)) = share.rto
            && last_rto.get(&workflow).is_none_or(|(last, _)| *last < at)
        {
            last_rto.insert(workflow, (at, achieved));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of a registry holding `metric` as `m`.
    fn text(metric: impl EncodeMetric + Send + Sync + std::fmt::Debug + 'static) -> String {
        let mut registry = Registry::default();
        registry.register("m", "m", metric);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn tallies_added_up_are_written_as_the_client_s_own_histogram_of_the_same_observations() {
        // Binary fractions, so that their sum is exact in any order.
        let seconds = [0.000_976_562_5, 0.003_906_25, 0.007_812_5, 2.5, 700.0, 1e9];
        let histogram = commit_histogram();
        let (mut one, mut other) = (Tally::default(), Tally::default());
        for (i, s) in seconds.iter().enumerate() {
            histogram.observe(*s);
            if i % 2 == 0 {
                one.observe(*s);
            } else {
                other.observe(*s);
            }
        }
        let tallied = Tallied::default();
        tallied.0.lock().unwrap().add(&one);
        tallied.0.lock().unwrap().add(&other);
        assert_eq!(text(tallied), text(histogram));
    }
}
