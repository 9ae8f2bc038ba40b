//! The incident room (SPEC §12), each figure beside the same run's raw fdatasync:
//!
//! - a 1,000-step run's page (`GET /runs/RUN`, the run finished: every step drawn, the whole
//!   timeline), median of 20 (goal: under 200 ms);
//! - a 1,000-step `noop` chain driven by the agent with no viewer, and with 100 open event
//!   streams on it (`/runs/RUN/events`, each read to the run's last entry), their readers at
//!   this machine's priority and then at the lowest (standing in for browsers elsewhere),
//!   alternated (goal: the streams slow the chain by less than 5 %). The chain is timed from
//!   its gate's approval to the run's end, as its journal records them; the CPU the agent
//!   (the room's threads apart) and the readers used is counted from `/proc`.
//!
//! Run with `cargo bench --bench room` (`-- --rounds N`, 3 by default). The drctl binary is
//! the one cargo built for the benchmark (release, or debug with `--profile dev`: the report
//! says which).

#![allow(
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    reason = "a benchmark report, written out plainly"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/measure.rs"]
mod measure;

use measure::{median, ms, raw_fsync};

const DRCTL: &str = env!("CARGO_BIN_EXE_drctl");

/// A gate, then a chain of `n` `noop` steps, as workflow `name`.
fn gated_chain(name: &str, n: usize) -> String {
    let mut text = format!(
        "[workflow]\nname = \"{name}\"\nkind = \"failover\"\n\n[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = {{ approvers = [\"bob\"], timeout = \"1h\" }}\n\n"
    );
    for i in 0..n {
        let need = if i == 0 {
            "gate".to_string()
        } else {
            format!("s{}", i - 1)
        };
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\naction = \"noop\"\nneeds = [\"{need}\"]\n\n"
        ));
    }
    text
}

fn drctl(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(DRCTL)
        .arg("--state")
        .arg(state)
        .args(args)
        .env("USER", "alice")
        .output()
        .unwrap()
}

fn json(state: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&drctl(state, args).stdout).unwrap()
}

/// The agent, killed by pid when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent with its room, and the room's address.
fn serve(state: &Path, log: &Path) -> (Agent, String) {
    let out = std::fs::File::create(log).unwrap();
    let agent = Agent(
        Command::new(DRCTL)
            .arg("--state")
            .arg(state)
            .args(["serve", "--http", "127.0.0.1:0"])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("drives the runs")
            && let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix("the incident room is at "))
        {
            return (agent, url.trim_end_matches('/').to_string());
        }
        assert!(Instant::now() < deadline, "the agent did not serve: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a run of `file`, handed to the agent; its id once its gate waits.
fn start(state: &Path, file: &Path) -> String {
    let out = drctl(state, &["run", "--detach", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let run = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no run started: {}", String::from_utf8_lossy(&out.stderr)))
        .to_string();
    wait(state, &run, "awaiting_approval");
    run
}

fn wait(state: &Path, run: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_mins(5);
    while json(state, &["status", run, "--format", "json"])["status"] != status {
        assert!(Instant::now() < deadline, "run {run} never {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// From the gate's approval to the run's end, as the journal records them.
fn chain_time(state: &Path, run: &str) -> Duration {
    let report = json(state, &["report", run, "--format", "json"]);
    let at =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    (at(&report["finished_at"]) - at(&report["steps"][0]["finished_at"]))
        .to_std()
        .unwrap()
}

/// `viewers` event streams of `run`, each read until the run's last step succeeded; joined,
/// each says how many events it read. The readers stand in for browsers on other machines,
/// but share this machine's cores with the agent: each does as little as it can (it counts
/// `id:` lines and looks for the last step's success, parsing nothing), and when `niced` runs
/// at the lowest priority (nice 19), closer to readers elsewhere. What they use is reported
/// apart.
fn viewers(url: &str, run: &str, viewers: usize, niced: bool) -> Vec<std::thread::JoinHandle<u64>> {
    (0..viewers)
        .map(|_| {
            let address = format!("{url}/runs/{run}/events");
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                const LAST: &[u8] = b"[\"s999\",\"succeeded\"]";
                if niced {
                    thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Min,
                    )
                    .unwrap();
                }
                let response = ureq::get(&address).call().unwrap();
                ready_tx.send(()).unwrap();
                let mut body = BufReader::new(response.into_body().into_reader());
                let (mut line, mut events) = (Vec::new(), 0);
                loop {
                    line.clear();
                    if body.read_until(b'\n', &mut line).unwrap() == 0 {
                        return events;
                    }
                    if line.starts_with(b"id:") {
                        events += 1;
                    } else if line.starts_with(b"data:")
                        && line.windows(LAST.len()).any(|w| w == LAST)
                    {
                        // The run ends with its last step.
                        return events;
                    }
                }
            });
            ready_rx.recv().unwrap();
            reader
        })
        .collect()
}

/// CPU time (user and system) of process `pid`'s threads, by group: the room's runtime
/// (`room`), the room's feeds (`room-feed-*`), and the rest; plus the whole process's,
/// threads gone included. From `/proc` (Linux), in clock ticks of 10 ms.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    room: u64,
    feeds: u64,
    process: u64,
}

fn ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name and state.
    let used = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, used))
}

fn cpu(pid: u32) -> Cpu {
    let mut cpu = Cpu::default();
    if let Some((_, used)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| ticks(&s))
    {
        cpu.process = used;
    }
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some((name, used)) = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|s| ticks(&s))
        else {
            continue;
        };
        if name == "room" {
            cpu.room += used;
        } else if name.starts_with("room-feed") {
            cpu.feeds += used;
        }
    }
    cpu
}

fn since(before: Cpu, after: Cpu) -> Cpu {
    Cpu {
        room: after.room.saturating_sub(before.room),
        feeds: after.feeds.saturating_sub(before.feeds),
        process: after.process.saturating_sub(before.process),
    }
}

fn main() {
    let mut rounds = 3;
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        if pair[0] == "--rounds" {
            rounds = pair[1].parse().expect("--rounds 3");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("chain.toml");
    std::fs::write(&file, gated_chain("room-chain", 1000)).unwrap();
    let (agent, url) = serve(&state, &dir.path().join("agent.log"));
    let raw = raw_fsync(dir.path());
    let build = if cfg!(debug_assertions) {
        "debug build (`--profile dev`)"
    } else {
        "release build"
    };
    println!("the incident room, {build}; {rounds} rounds, alternated");
    println!("| measure | result | raw write+fdatasync | |");
    println!("|---|---|---|---|");
    println!("| raw write+fdatasync, median of 200 | | {} | |", ms(raw));

    // No viewer; 100 readers at the machine's priority; 100 readers at the lowest.
    let variants = [
        (0, false, "no viewer"),
        (100, false, "100 open event streams, readers at nice 0"),
        (100, true, "100 open event streams, readers at nice 19"),
    ];
    let mut took = vec![Vec::new(); variants.len()];
    let mut used = vec![Vec::new(); variants.len()];
    let mut page_run = None;
    for _ in 0..rounds {
        for (i, (streams, niced, _)) in variants.into_iter().enumerate() {
            let run = start(&state, &file);
            let readers = viewers(&url, &run, streams, niced);
            let before = (cpu(agent.0.id()), cpu(std::process::id()));
            let out = drctl(&state, &["approve", &run, "gate", "--as", "bob"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            wait(&state, &run, "succeeded");
            for reader in readers {
                assert!(reader.join().unwrap() > 1000, "a viewer missed entries");
            }
            let after = (cpu(agent.0.id()), cpu(std::process::id()));
            used[i].push((since(before.0, after.0), since(before.1, after.1).process));
            took[i].push(chain_time(&state, &run));
            page_run = Some(run);
        }
    }
    let quiet = median(took[0].clone());
    for (i, (_, _, name)) in variants.into_iter().enumerate() {
        let time = median(took[i].clone());
        let slower = if i == 0 {
            String::new()
        } else {
            format!(
                "{:+.1} % (goal < 5 %)",
                (time.as_secs_f64() / quiet.as_secs_f64() - 1.0) * 100.0
            )
        };
        println!(
            "| 1,000-step chain, {name} (median; each: {}) | {} | {:.2}x per step | {slower} |",
            took[i]
                .iter()
                .map(|t| ms(*t))
                .collect::<Vec<_>>()
                .join(", "),
            ms(time),
            time.as_secs_f64() / 1000.0 / raw.as_secs_f64()
        );
    }
    for (i, (_, _, name)) in variants.into_iter().enumerate() {
        let n = used[i].len() as u64;
        let sum = used[i]
            .iter()
            .fold((Cpu::default(), 0), |(a, r), (c, readers)| {
                (
                    Cpu {
                        room: a.room + c.room,
                        feeds: a.feeds + c.feeds,
                        process: a.process + c.process,
                    },
                    r + readers,
                )
            });
        println!(
            "| CPU per chain, {name} (mean): the agent's; of it, the room's runtime and its feed; the benchmark's readers | {} ms; {} ms, {} ms; {} ms | | |",
            sum.0.process * 10 / n,
            sum.0.room * 10 / n,
            sum.0.feeds * 10 / n,
            sum.1 * 10 / n
        );
    }

    let run = page_run.expect("a run");
    let page = format!("{url}/runs/{run}");
    let body = ureq::get(&page)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(body.contains("data-step=\"s999\""));
    let times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let body = ureq::get(&page)
                .call()
                .unwrap()
                .into_body()
                .read_to_string()
                .unwrap();
            assert!(!body.is_empty());
            t.elapsed()
        })
        .collect();
    let page_time = median(times);
    println!(
        "| 1,001-step run's page, median of 20 ({} KiB) | {} | {:.0}x | goal < 200 ms |",
        body.len() / 1024,
        ms(page_time),
        page_time.as_secs_f64() / raw.as_secs_f64()
    );
    drop(agent);
}
