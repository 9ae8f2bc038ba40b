//! Followers of a run on etcd (SPEC §11, "a crowd of clients"): what one and fifty processes
//! following the same run cost the etcd cluster. A follower is what `drctl run` is once it
//! has handed its run to the agents: it reads the run's journal from the store as it grows,
//! until the run ends.
//!
//! A three-member cluster is started on 127.0.0.1 for each number of followers. A driver
//! commits to one run at a steady pace (two journal entries, their step record and the run
//! record every 50 ms, on a run that already holds 200 entries); each follower has a store of
//! its own (its own connection and client thread, as a separate process has) and reads the
//! run as `drctl run` does, through the store's follower of the run (`Store::follow_journal`:
//! on etcd a watch from the revision last read); with `-- --poll`, as `drctl run` did before
//! it (the run's record and its whole journal every 100 ms), for a comparison. Over a window of 10 s it measures the CPU the three etcd members
//! used (from `/proc/PID/stat`), what they served (from their `/metrics`: Range calls, ranges
//! read by their key-value store, transactions, watch events, bytes sent to clients), and how
//! long after its commit a follower saw an entry. Then the run ends, and every follower must
//! have seen every entry, in order, and stopped.
//!
//! Run with `cargo bench --bench followers` (needs `etcd`);
//! `-- --followers 1,50 --seconds 10` are the defaults, `-- --poll` reads as before.

#![allow(
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark report, written out plainly"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drctl::store::{
    Commit, EtcdAddress, EtcdStore, GENESIS, JournalEntry, Owner, RunRecord, StepRecord, Store,
    chain_hash,
};
use serde_json::json;

#[path = "../tests/support/etcd.rs"]
#[allow(dead_code, reason = "the benchmark uses a part of the test cluster")]
mod etcd;

const RUN: &str = "r-followed";
/// Entries the run holds when the followers start.
const HISTORY: usize = 200;
/// The driver's pace.
const COMMIT_EVERY: Duration = Duration::from_millis(50);
/// Before the window: followers connect and catch up.
const WARM_UP: Duration = Duration::from_secs(2);

fn main() {
    let mut counts = vec![1, 50];
    let mut seconds = 10;
    let args: Vec<String> = std::env::args().collect();
    let poll = args.iter().any(|a| a == "--poll");
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--followers" => {
                counts = pair[1]
                    .split(',')
                    .map(|n| n.parse().expect("--followers 1,50"))
                    .collect();
            }
            "--seconds" => seconds = pair[1].parse().expect("--seconds 10"),
            _ => {}
        }
    }
    if std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("etcd is not installed: nothing measured");
        return;
    }
    println!(
        "followers of one run on a three-member etcd cluster; a commit of 2 entries every {} ms; window {seconds} s; {}",
        COMMIT_EVERY.as_millis(),
        if poll {
            "followers read the run's record and whole journal every 100 ms (as before)"
        } else {
            "followers read through the store's follower"
        }
    );
    println!();
    println!(
        "| followers | etcd CPU (3 members) | Range calls/s | ranges read/s | Txn/s | watch events/s | sent to clients | bench process CPU | seen after commit (median, p99) | commits/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in counts {
        let m = measure(n, Duration::from_secs(seconds), poll);
        println!(
            "| {n} | {:.1} % | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} KB/s | {:.1} % | {} | {:.1} |",
            m.etcd_cpu * 100.0,
            m.rate("range_calls"),
            m.rate("ranges"),
            m.rate("txns"),
            m.rate("events"),
            m.rate("sent_bytes") / 1000.0,
            m.own_cpu * 100.0,
            if n == 0 {
                "–".to_string()
            } else {
                format!("{:.1} ms, {:.1} ms", m.delay_median, m.delay_p99)
            },
            m.commits as f64 / m.window.as_secs_f64(),
        );
    }
}

/// What one window measured.
struct Measured {
    window: Duration,
    /// CPU seconds per second, the three members together (1.0 is one core).
    etcd_cpu: f64,
    /// The same for this process (driver and followers).
    own_cpu: f64,
    /// Counters from the members' `/metrics`, summed, over the window.
    counters: HashMap<&'static str, f64>,
    delay_median: f64,
    delay_p99: f64,
    commits: u64,
}

impl Measured {
    fn rate(&self, counter: &str) -> f64 {
        self.counters.get(counter).copied().unwrap_or(0.0) / self.window.as_secs_f64()
    }
}

fn owner(name: &str) -> Owner {
    Owner {
        name: name.into(),
        host: "bench".into(),
        pid: std::process::id(),
        since: String::new(),
    }
}

fn open(cluster: &etcd::Cluster, name: &str) -> EtcdStore {
    let address = EtcdAddress::parse(&cluster.url("followers")).unwrap();
    EtcdStore::open(address, Duration::from_secs(5), owner(name)).unwrap()
}

/// What every follower saw: the delay of each entry after its commit, in ms.
#[derive(Default)]
struct Seen {
    delays: Mutex<Vec<f64>>,
}

fn measure(followers: usize, window: Duration, poll: bool) -> Measured {
    let cluster = etcd::Cluster::start();
    let driver = open(&cluster, "driver");
    let mut journal = Vec::new();
    let history = entries(&mut journal, HISTORY);
    driver
        .commit(
            RUN,
            &Commit {
                run: Some(record(&journal, "running")),
                steps: vec![step("s0", "running")],
                journal: history,
                source: Some("[workflow]\nname = \"followed\"\n".into()),
            },
        )
        .unwrap();

    let seen = Arc::new(Seen::default());
    let stores: Vec<EtcdStore> = (0..followers)
        .map(|i| open(&cluster, &format!("follower-{i}")))
        .collect();
    let handles: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let seen = seen.clone();
            std::thread::spawn(move || {
                if poll {
                    follow_polling(&store, &seen)
                } else {
                    follow(&store, &seen)
                }
            })
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let driving = {
        let (stop, commits) = (stop.clone(), commits.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                let added = entries(&mut journal, 2);
                let step_id = format!("s{}", journal.len() / 2);
                driver
                    .commit(
                        RUN,
                        &Commit {
                            run: Some(record(&journal, "running")),
                            steps: vec![step(&step_id, "succeeded")],
                            journal: added,
                            source: None,
                        },
                    )
                    .unwrap();
                commits.fetch_add(1, Ordering::SeqCst);
                next += COMMIT_EVERY;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            let last = entries(&mut journal, 1);
            driver
                .commit(
                    RUN,
                    &Commit {
                        run: Some(record(&journal, "succeeded")),
                        steps: Vec::new(),
                        journal: last,
                        source: None,
                    },
                )
                .unwrap();
            journal.len()
        })
    };

    std::thread::sleep(WARM_UP);
    seen.delays.lock().unwrap().clear();
    let pids = cluster.pids();
    let (commits0, cpu0, own0, counters0, t0) = (
        commits.load(Ordering::SeqCst),
        cpu_seconds(&pids),
        own_cpu_seconds(),
        counters(&cluster),
        Instant::now(),
    );
    std::thread::sleep(window);
    let (commits1, cpu1, own1, counters1, elapsed) = (
        commits.load(Ordering::SeqCst),
        cpu_seconds(&pids),
        own_cpu_seconds(),
        counters(&cluster),
        t0.elapsed(),
    );
    let mut delays = seen.delays.lock().unwrap().clone();
    stop.store(true, Ordering::SeqCst);
    let length = driving.join().unwrap();
    for handle in handles {
        let read = handle.join().unwrap();
        assert_eq!(read, length, "a follower saw {read} entries of {length}");
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Measured {
        window: elapsed,
        etcd_cpu: (cpu1 - cpu0) / elapsed.as_secs_f64(),
        own_cpu: (own1 - own0) / elapsed.as_secs_f64(),
        counters: counters1
            .iter()
            .map(|(k, v)| (*k, v - counters0.get(k).copied().unwrap_or(0.0)))
            .collect(),
        delay_median: at(0.5),
        delay_p99: at(0.99),
        commits: commits1 - commits0,
    }
}

/// Follows the run as `drctl run` does until the run ends; the number of entries it saw, each
/// checked to follow the one before.
fn follow(store: &dyn Store, seen: &Seen) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut follower = store.follow_journal(RUN, 0).unwrap();
    let mut from = 0;
    loop {
        let news = follower.read().unwrap();
        from = take(&news.entries, from, seen);
        if !news.under_way {
            return usize::try_from(from).unwrap();
        }
        runtime.block_on(follower.changed());
    }
}

/// Follows the run as `drctl run` did before it read through the store's follower.
fn follow_polling(store: &dyn Store, seen: &Seen) -> usize {
    let mut from = 0;
    loop {
        // As `cli/follow.rs` read a run from a shared store: the status first, then the
        // whole journal, keeping what is new, every 100 ms.
        let driving = store
            .run(RUN)
            .unwrap()
            .is_some_and(|r| r.status.is_under_way());
        let entries: Vec<JournalEntry> = store
            .journal(RUN)
            .unwrap()
            .into_iter()
            .filter(|e| e.seq >= from)
            .collect();
        from = take(&entries, from, seen);
        if !driving {
            return usize::try_from(from).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks `entries` follow entry `from - 1` and records their delays; the next `from`.
fn take(entries: &[JournalEntry], mut from: u64, seen: &Seen) -> u64 {
    let now = chrono::Utc::now();
    let mut delays = Vec::with_capacity(entries.len());
    for e in entries {
        assert_eq!(e.seq, from, "entries are read in order, none missing");
        from += 1;
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&e.at) {
            delays.push((now - at.with_timezone(&chrono::Utc)).as_seconds_f64() * 1000.0);
        }
    }
    seen.delays.lock().unwrap().extend(delays);
    from
}

/// Appends `n` chained entries, as a run's step events, stamped now.
fn entries(journal: &mut Vec<JournalEntry>, n: usize) -> Vec<JournalEntry> {
    let mut added = Vec::new();
    for _ in 0..n {
        let seq = journal.len() as u64;
        let prev = journal
            .last()
            .map_or(GENESIS.to_string(), |e| e.hash.clone());
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let step = format!("s{}", seq / 2);
        let event = if seq.is_multiple_of(2) {
            json!({"type": "step_started", "step": step, "attempt": 1})
        } else {
            json!({"type": "step_succeeded", "step": step, "attempt": 1, "outputs": {"changed": "true"}})
        };
        let hash = chain_hash(&prev, seq, &at, &event);
        let entry = JournalEntry {
            seq,
            at,
            event,
            prev,
            hash,
        };
        journal.push(entry.clone());
        added.push(entry);
    }
    added
}

fn record(journal: &[JournalEntry], status: &str) -> RunRecord {
    serde_json::from_value(json!({
        "run_id": RUN,
        "workflow": "followed",
        "mode": "drill",
        "status": status,
        "initiator": "bench",
        "digest": "v2:00",
        "workflow_file": "followed.toml",
        "overrides": [],
        "started_at": "2026-12-07T10:00:00.000Z",
        "finished_at": null,
        "journal_len": journal.len(),
        "last_hash": journal.last().map_or(GENESIS, |e| e.hash.as_str()),
        "incident_start": null,
        "pid": 42,
    }))
    .expect("run record")
}

fn step(id: &str, status: &str) -> StepRecord {
    serde_json::from_value(json!({
        "run_id": RUN,
        "step": id,
        "status": status,
        "attempts": [{"n": 1, "started_at": "2026-12-07T10:00:00.000Z", "finished_at": null, "outcome": null, "error": null}],
        "outputs": {"changed": "true"},
        "error": null,
    }))
    .expect("step record")
}

/// CPU seconds (user and system) the processes `pids` used so far. `/proc/PID/stat` counts
/// in `USER_HZ`, which Linux fixes at 100 a second.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|pid| stat_cpu(&format!("/proc/{pid}/stat")))
        .sum()
}

fn own_cpu_seconds() -> f64 {
    stat_cpu("/proc/self/stat")
}

fn stat_cpu(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command's name, which is in parentheses and may hold spaces:
    // state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The counters of the members' `/metrics` this benchmark reports, summed over the members.
fn counters(cluster: &etcd::Cluster) -> HashMap<&'static str, f64> {
    let mut out = HashMap::new();
    for url in cluster.client_urls() {
        // A member that does not answer at once is asked again: a counter left out would
        // make the difference over the window wrong.
        let text = (0..5)
            .find_map(|_| {
                let text = ureq::get(&format!("{url}/metrics"))
                    .call()
                    .and_then(|mut r| r.body_mut().read_to_string());
                if text.is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                text.ok()
            })
            .unwrap_or_else(|| panic!("{url}/metrics did not answer"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            let counter = if name.starts_with("grpc_server_handled_total{")
                && name.contains("grpc_method=\"Range\"")
            {
                "range_calls"
            } else if name.starts_with("grpc_server_handled_total{")
                && name.contains("grpc_method=\"Txn\"")
            {
                "txns"
            } else {
                match name {
                    "etcd_mvcc_range_total" => "ranges",
                    "etcd_debugging_mvcc_events_total" => "events",
                    "etcd_network_client_grpc_sent_bytes_total" => "sent_bytes",
                    _ => continue,
                }
            };
            *out.entry(counter).or_insert(0.0) += value;
        }
    }
    out
}
