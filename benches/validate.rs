//! Benchmark: validate a generated 10,000-step workflow (SPEC §10: under 200 ms in release).
//!
//! Run with `cargo bench --bench validate`. Prints each phase and the whole, best and median
//! of several runs, beside the goal.

use std::time::{Duration, Instant};

use drctl::actions::Registry;
use drctl::check::check_source;
use drctl::diagnostic::{Diagnostics, SourceFile};
use drctl::synthetic::large_workflow;
use drctl::workflow::read_workflow;

const STEPS: usize = 10_000;
const RUNS: usize = 15;
const GOAL: Duration = Duration::from_millis(200);

fn measure(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[RUNS / 2])
}

fn main() {
    let text = large_workflow(STEPS, 42);
    let registry = Registry::builtin();
    let source = SourceFile::new("generated.toml", text.clone());

    let checked = check_source(source.clone(), &registry, &[]);
    assert!(
        !checked.diagnostics.has_errors(),
        "the generated workflow must be valid"
    );
    let workflow = checked.workflow.expect("valid");

    let (read_best, read_median) = measure(|| {
        let mut d = Diagnostics::default();
        std::hint::black_box(read_workflow(&source, &mut d));
    });
    let (all_best, all_median) = measure(|| {
        std::hint::black_box(check_source(source.clone(), &registry, &[]));
    });
    let (sched_best, _) = measure(|| {
        std::hint::black_box(workflow.schedule());
    });

    println!(
        "validate: generated workflow, {STEPS} steps, {} KiB, {} warnings",
        text.len() / 1024,
        checked.diagnostics.warning_count()
    );
    println!("  parse + read     best {read_best:>10.2?}  median {read_median:>10.2?}");
    println!("  schedule         best {sched_best:>10.2?}");
    println!(
        "  whole validate   best {all_best:>10.2?}  median {all_median:>10.2?}  goal < {GOAL:?}  ({:.1}x under the goal)  {}",
        GOAL.as_secs_f64() / all_median.as_secs_f64(),
        if all_median < GOAL { "MET" } else { "NOT MET" }
    );
}
