//! One contract for every store (SPEC §5.2, §11): the in-memory one, sled, and etcd on a real
//! three-member cluster. Then what only a shared store has to hold: a run's owner and no one
//! else writes it, a write after the owner's lease is gone is refused whole, and one unfinished
//! run per workflow is decided by the store itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drctl::store::{
    Commit, EtcdAddress, EtcdStore, GENESIS, JournalEntry, JournalFollower, MemoryStore, Owner,
    RunRecord, SledStore, StepRecord, Store, StoreError, chain_hash, verify_chain,
};
use serde_json::json;

use crate::support::etcd::Cluster;

fn run_record(
    run: &str,
    workflow: &str,
    status: &str,
    started: &str,
    journal: &[JournalEntry],
) -> RunRecord {
    serde_json::from_value(json!({
        "run_id": run,
        "workflow": workflow,
        "mode": "drill",
        "status": status,
        "initiator": "alice",
        "digest": "v2:00",
        "workflow_file": "w.toml",
        "overrides": ["region=eu-west-1"],
        "started_at": started,
        "finished_at": null,
        "journal_len": journal.len(),
        "last_hash": journal.last().map_or(GENESIS, |e| e.hash.as_str()),
        "incident_start": null,
        "pid": 42,
    }))
    .expect("run record")
}

fn step(run: &str, id: &str, status: &str, attempts: u32) -> StepRecord {
    serde_json::from_value(json!({
        "run_id": run,
        "step": id,
        "status": status,
        "attempts": (1..=attempts).map(|n| json!({"n": n, "started_at": "2026-11-23T10:00:00.000Z", "finished_at": null, "outcome": null, "error": null})).collect::<Vec<_>>(),
        "outputs": {"n": attempts},
        "error": null,
    }))
    .expect("step record")
}

/// Appends `n` chained entries to `journal`.
fn extend(journal: &mut Vec<JournalEntry>, n: usize, step: &str) -> Vec<JournalEntry> {
    let mut added = Vec::new();
    for _ in 0..n {
        let seq = journal.len() as u64;
        let prev = journal
            .last()
            .map_or(GENESIS.to_string(), |e| e.hash.clone());
        let at = "2026-11-23T10:00:00.000Z".to_string();
        let event = json!({"type": "step_started", "step": step, "attempt": seq + 1});
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

/// What every store must do.
fn contract(store: &dyn Store) {
    let journal = contract_one_run(store);
    contract_second_run(store, &journal);
    contract_reading_from(store, &journal);
    contract_following(store);
}

/// One run, written in three commits, reads back as written; returns its journal.
fn contract_one_run(store: &dyn Store) -> Vec<JournalEntry> {
    assert!(store.run("r1").unwrap().is_none());
    assert!(store.journal("r1").unwrap().is_empty());
    assert!(store.steps("r1").unwrap().is_empty());
    assert!(store.source("r1").unwrap().is_none());
    assert!(store.anchor("r1").unwrap().is_none());

    let mut journal = Vec::new();
    let first = extend(&mut journal, 2, "a");
    store
        .commit(
            "r1",
            &Commit {
                run: Some(run_record(
                    "r1",
                    "wf-1",
                    "running",
                    "2026-11-23T10:00:00.000Z",
                    &journal,
                )),
                steps: vec![step("r1", "a", "running", 1)],
                journal: first,
                source: Some("[workflow]\nname = \"wf-1\"\n".into()),
            },
        )
        .unwrap();
    let second = extend(&mut journal, 3, "b");
    store
        .commit(
            "r1",
            &Commit {
                run: Some(run_record(
                    "r1",
                    "wf-1",
                    "running",
                    "2026-11-23T10:00:00.000Z",
                    &journal,
                )),
                steps: vec![
                    step("r1", "a", "succeeded", 1),
                    step("r1", "b", "running", 2),
                ],
                journal: second,
                source: None,
            },
        )
        .unwrap();
    // A commit of the run record alone (a run let go of with `--detach`).
    let mut detached = run_record(
        "r1",
        "wf-1",
        "awaiting_approval",
        "2026-11-23T10:00:00.000Z",
        &journal,
    );
    detached.detached = true;
    store
        .commit(
            "r1",
            &Commit {
                run: Some(detached.clone()),
                ..Commit::default()
            },
        )
        .unwrap();

    assert_eq!(store.run("r1").unwrap(), Some(detached));
    let read = store.journal("r1").unwrap();
    assert_eq!(read, journal, "the journal reads back whole and in order");
    verify_chain(&read).unwrap();
    let mut steps = store.steps("r1").unwrap();
    steps.sort_by(|a, b| a.step.cmp(&b.step));
    assert_eq!(
        steps,
        vec![
            step("r1", "a", "succeeded", 1),
            step("r1", "b", "running", 2)
        ]
    );
    assert_eq!(
        store.source("r1").unwrap().as_deref(),
        Some("[workflow]\nname = \"wf-1\"\n")
    );
    let anchor = store.anchor("r1").unwrap().expect("anchor");
    assert_eq!(anchor.journal_len, 5);
    assert_eq!(anchor.last_hash, journal[4].hash);

    journal
}

/// A second run, started earlier, lists first; a big commit goes in whole; the first run
/// (whose journal is `journal`) is untouched.
fn contract_second_run(store: &dyn Store, journal: &[JournalEntry]) {
    let mut other = Vec::new();
    let big = extend(&mut other, 1500, "fan");
    let many: Vec<StepRecord> = (0..1500)
        .map(|i| step("r0", &format!("s{i}"), "running", 1))
        .collect();
    store
        .commit(
            "r0",
            &Commit {
                run: Some(run_record(
                    "r0",
                    "wf-0",
                    "running",
                    "2026-11-23T09:00:00.000Z",
                    &other,
                )),
                steps: many,
                journal: big,
                source: Some("[workflow]\nname = \"wf-0\"\n".into()),
            },
        )
        .unwrap();
    let ids: Vec<String> = store
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, ["r0", "r1"]);
    assert_eq!(store.journal("r0").unwrap().len(), 1500);
    assert_eq!(store.steps("r0").unwrap().len(), 1500);
    // The first run is untouched by the second.
    assert_eq!(store.journal("r1").unwrap(), journal);
}

/// A journal read from an entry on: from the first, from inside a commit, from where one
/// begins, from its end and past it, inside a commit of 1,500 entries; and, once the run went
/// on, what it added. `journal` is run r1's, written in commits of entries 0-1 and 2-4.
fn contract_reading_from(store: &dyn Store, journal: &[JournalEntry]) {
    for from in 0..=7 {
        assert_eq!(
            store.journal_from("r1", from as u64).unwrap(),
            journal[journal.len().min(from)..],
            "r1 from entry {from}"
        );
    }
    assert!(store.journal_from("r1", u64::MAX).unwrap().is_empty());
    assert!(store.journal_from("nobody", 0).unwrap().is_empty());

    let mut all = store.journal("r0").unwrap();
    for from in [1, 15, 17, 300, 1000, 1499, 1500, 1600] {
        assert_eq!(
            store.journal_from("r0", from as u64).unwrap(),
            all[all.len().min(from)..],
            "r0 (one commit of 1,500 entries) from entry {from}"
        );
    }
    let more = extend(&mut all, 3, "more");
    store
        .commit(
            "r0",
            &Commit {
                run: Some(run_record(
                    "r0",
                    "wf-0",
                    "running",
                    "2026-11-23T09:00:00.000Z",
                    &all,
                )),
                journal: more.clone(),
                ..Commit::default()
            },
        )
        .unwrap();
    assert_eq!(store.journal_from("r0", 1500).unwrap(), more);
    assert_eq!(store.journal_from("r0", 1502).unwrap(), more[2..]);
    assert_eq!(store.journal_from("r0", 1499).unwrap(), all[1499..]);
    assert!(store.journal_from("r0", 1503).unwrap().is_empty());
}

/// A run followed as it goes, from its first entry and from inside its first commit: each
/// follower reads every entry once, in order, and says the run is over once it rests and
/// every entry was read; a follower of a run that rests reads what it asks for and stops.
fn contract_following(store: &dyn Store) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut journal = Vec::new();
    let commit = |journal: &[JournalEntry], added: Vec<JournalEntry>, status: &str| Commit {
        run: Some(run_record(
            "r2",
            "wf-2",
            status,
            "2026-11-23T11:00:00.000Z",
            journal,
        )),
        steps: vec![step("r2", "a", status, 1)],
        journal: added,
        source: None,
    };
    let first = extend(&mut journal, 3, "a");
    let start = Commit {
        source: Some("text".into()),
        ..commit(&journal, first, "running")
    };
    store.commit("r2", &start).unwrap();
    let mut from_start = store.follow_journal("r2", 0).unwrap();
    let mut from_inside = store.follow_journal("r2", 1).unwrap();
    let read = read_until(&runtime, from_start.as_mut(), |read, _| read.len() == 3);
    assert_eq!(read, journal);
    let read = read_until(&runtime, from_inside.as_mut(), |read, _| read.len() == 2);
    assert_eq!(read, journal[1..]);

    let more = extend(&mut journal, 2, "b");
    store
        .commit("r2", &commit(&journal, more, "running"))
        .unwrap();
    let last = extend(&mut journal, 1, "b");
    store
        .commit("r2", &commit(&journal, last, "succeeded"))
        .unwrap();
    for follower in [&mut from_start, &mut from_inside] {
        let read = read_until(&runtime, follower.as_mut(), |_, under_way| !under_way);
        assert_eq!(read, journal[3..], "the rest, once, and the run is over");
    }
    let mut late = store.follow_journal("r2", 4).unwrap();
    let read = read_until(&runtime, late.as_mut(), |_, under_way| !under_way);
    assert_eq!(read, journal[4..]);
}

/// Reads `follower` until `done(what it read, whether the run goes on)`, waiting for news in
/// between; what it read. Fails after 60 s.
fn read_until(
    runtime: &tokio::runtime::Runtime,
    follower: &mut dyn JournalFollower,
    done: impl Fn(&[JournalEntry], bool) -> bool,
) -> Vec<JournalEntry> {
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut read = Vec::new();
    loop {
        let news = follower.read().unwrap();
        read.extend(news.entries);
        if done(&read, news.under_way) {
            return read;
        }
        assert!(
            Instant::now() < deadline,
            "the follower read {} entries and the run goes on: {}",
            read.len(),
            news.under_way
        );
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(1), follower.changed()).await;
        });
    }
}

#[test]
fn the_memory_store_keeps_the_contract() {
    contract(&MemoryStore::new());
}

#[test]
fn the_sled_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&SledStore::open(dir.path()).unwrap());
}

fn owner(name: &str) -> Owner {
    Owner {
        name: name.into(),
        host: "test".into(),
        pid: std::process::id(),
        since: String::new(),
    }
}

fn etcd(cluster: &Cluster, prefix: &str, name: &str, ttl: Duration) -> EtcdStore {
    EtcdStore::open(
        EtcdAddress::parse(&cluster.url(prefix)).unwrap(),
        ttl,
        owner(name),
    )
    .unwrap()
}

fn first_commit(run: &str, workflow: &str) -> Commit {
    let mut journal = Vec::new();
    let entries = extend(&mut journal, 1, "a");
    Commit {
        run: Some(run_record(
            run,
            workflow,
            "running",
            "2026-11-23T10:00:00.000Z",
            &journal,
        )),
        steps: vec![step(run, "a", "running", 1)],
        journal: entries,
        source: Some("text".into()),
    }
}

fn next_commit(store: &dyn Store, run: &str, workflow: &str, status: &str) -> Commit {
    let mut journal = store.journal(run).unwrap();
    let entries = extend(&mut journal, 1, "a");
    Commit {
        run: Some(run_record(
            run,
            workflow,
            status,
            "2026-11-23T10:00:00.000Z",
            &journal,
        )),
        steps: vec![step(run, "a", status, 1)],
        journal: entries,
        source: None,
    }
}

#[test]
fn the_etcd_store_keeps_the_contract_and_fences_every_write() {
    let cluster = Cluster::start();
    contract(&etcd(&cluster, "contract", "a", Duration::from_secs(5)));

    // Only the run's owner writes it; others read it.
    let a = etcd(&cluster, "fence", "agent-a", Duration::from_secs(5));
    let b = etcd(&cluster, "fence", "agent-b", Duration::from_secs(5));
    a.commit("r1", &first_commit("r1", "wf")).unwrap();
    let refused = b.commit("r1", &next_commit(&b, "r1", "wf", "running"));
    assert!(
        matches!(&refused, Err(StoreError::Fenced { reason, .. }) if reason.contains("agent-a")),
        "{refused:?}"
    );
    assert_eq!(
        b.journal("r1").unwrap().len(),
        1,
        "nothing of the refused write landed"
    );
    assert_eq!(
        b.owner("r1").unwrap().map(|o| o.name).as_deref(),
        Some("agent-a")
    );

    // The owner's lease ends (here revoked from outside, as when it expires): its next write
    // is refused whole, and another agent takes the run over.
    let lease = lease_of(&cluster, "/fence/owners/r1");
    revoke(&cluster, lease);
    let late = a.commit("r1", &next_commit(&a, "r1", "wf", "running"));
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    assert_eq!(a.journal("r1").unwrap().len(), 1);
    b.commit("r1", &next_commit(&b, "r1", "wf", "running"))
        .unwrap();
    assert_eq!(
        a.owner("r1").unwrap().map(|o| o.name).as_deref(),
        Some("agent-b")
    );
    let again = a.commit("r1", &next_commit(&a, "r1", "wf", "running"));
    assert!(matches!(again, Err(StoreError::Fenced { .. })), "{again:?}");

    // One unfinished run per workflow, decided by the store even for two writers at once.
    let second = a.commit("r2", &first_commit("r2", "wf"));
    assert!(
        matches!(&second, Err(StoreError::Unfinished { run }) if run == "r1"),
        "{second:?}"
    );
    assert!(
        a.run("r2").unwrap().is_none(),
        "the refused run left nothing"
    );
    b.commit("r1", &next_commit(&b, "r1", "wf", "succeeded"))
        .unwrap();
    a.commit("r2", &first_commit("r2", "wf")).unwrap();

    // A dropped store lets go of its runs at once.
    drop(b);
    let c = etcd(&cluster, "fence", "agent-c", Duration::from_secs(5));
    assert!(c.owner("r1").unwrap().is_none());

    // A request in a run's inbox is either taken by the run's driver or withdrawn by its
    // sender, never both: a withdrawn decision is never applied later, by surprise.
    let id = c.post("r2", b"vote").unwrap();
    assert_eq!(a.inbox("r2").unwrap().len(), 1);
    assert!(a.take_request("r2", &id).unwrap());
    assert!(
        !c.withdraw("r2", &id).unwrap(),
        "taken first: not withdrawn"
    );
    assert!(a.inbox("r2").unwrap().is_empty());
    a.answer("r2", &id, b"ok").unwrap();
    assert_eq!(
        c.take_answer("r2", &id).unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    assert_eq!(
        c.take_answer("r2", &id).unwrap(),
        None,
        "an answer is taken once"
    );
    let late = c.post("r2", b"vote").unwrap();
    assert!(c.withdraw("r2", &late).unwrap());
    assert!(
        !a.take_request("r2", &late).unwrap(),
        "withdrawn first: not taken"
    );
    assert!(a.inbox("r2").unwrap().is_empty());
}

#[test]
fn the_etcd_store_goes_on_when_a_member_dies_and_after_all_restart() {
    let mut cluster = Cluster::start();
    let store = etcd(&cluster, "members", "a", Duration::from_secs(5));
    store.commit("r1", &first_commit("r1", "wf")).unwrap();
    cluster.kill_member(0);
    for _ in 0..5 {
        store
            .commit("r1", &next_commit(&store, "r1", "wf", "running"))
            .unwrap();
    }
    assert_eq!(store.journal("r1").unwrap().len(), 6);
    drop(store);
    for i in 1..3 {
        cluster.kill_member(i);
    }
    for i in 0..3 {
        cluster.start_member(i);
    }
    cluster.wait_healthy(Duration::from_secs(30));
    let store = Arc::new(etcd(&cluster, "members", "b", Duration::from_secs(5)));
    let journal = store.journal("r1").unwrap();
    assert_eq!(journal.len(), 6, "every acknowledged commit survived");
    verify_chain(&journal).unwrap();
    // The first owner may not have been able to let go of the run while the cluster went
    // down; its lease (5 s) then ends by itself, and the run is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5 + 5);
    loop {
        match store.commit("r1", &next_commit(store.as_ref(), "r1", "wf", "running")) {
            Ok(()) => break,
            Err(StoreError::Fenced { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the run could not be taken up after the restart: {e:?}"),
        }
    }
}

/// The lease a key is attached to.
fn lease_of(cluster: &Cluster, key: &str) -> i64 {
    let endpoints: Vec<String> = cluster.endpoints().split(',').map(str::to_string).collect();
    let key = key.to_string();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let mut client = etcd_client::Client::connect(endpoints, None).await.unwrap();
            let response = client.get(key, None).await.unwrap();
            response.kvs()[0].lease()
        })
}

fn revoke(cluster: &Cluster, lease: i64) {
    let endpoints: Vec<String> = cluster.endpoints().split(',').map(str::to_string).collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let mut client = etcd_client::Client::connect(endpoints, None).await.unwrap();
            client.lease_revoke(lease).await.unwrap();
        });
}

/// A follower on etcd reads a run that keeps committing while each member in turn is killed
/// and started again (its watch breaks when its member goes): it reads every entry once, in
/// order, and stops when the run ends. A driver that failed meanwhile (its lease ran out when
/// a renewal was lost with a member, or the cluster did not answer in time) is replaced by
/// another process, as an agent takes a run over.
#[test]
fn an_etcd_follower_reads_every_entry_once_in_order_while_members_die() {
    let mut cluster = Cluster::start();
    let url = cluster.url("follow");
    let open = |name: &str| {
        EtcdStore::open(
            EtcdAddress::parse(&url).unwrap(),
            Duration::from_secs(5),
            owner(name),
        )
        .unwrap()
    };
    let reader = open("reader");
    open("driver-0")
        .commit("r1", &first_commit("r1", "wf"))
        .unwrap();
    let members_done = AtomicBool::new(false);
    // Commits the driver made: each member is let go of, and started again, only once the
    // run went on without it (a count over a fixed time would measure the machine's speed).
    let committed = AtomicUsize::new(0);
    let went_on = |what: &str| {
        let from = committed.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_mins(1);
        while committed.load(Ordering::SeqCst) < from + 5 {
            assert!(Instant::now() < deadline, "the run did not go on {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let read = std::thread::scope(|scope| {
        let following = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut follower = reader.follow_journal("r1", 0).unwrap();
            read_until(&runtime, follower.as_mut(), |_, under_way| !under_way)
        });
        scope.spawn(|| {
            let mut failures = Vec::new();
            let mut driver = open("driver-1");
            let mut ended = false;
            while !ended {
                ended = members_done.load(Ordering::SeqCst);
                let status = if ended { "succeeded" } else { "running" };
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(e) = driver.commit("r1", &next_commit(&driver, "r1", "wf", status)) {
                    failures.push(format!("{e:?}"));
                    assert!(
                        Instant::now() < deadline,
                        "the run could not be driven on: {failures:#?}"
                    );
                    driver = open(&format!("driver-{}", failures.len() + 1));
                    std::thread::sleep(Duration::from_millis(200));
                }
                committed.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        for i in 0..3 {
            went_on(&format!("before member {i} was killed"));
            cluster.kill_member(i);
            went_on(&format!("while member {i} was down"));
            cluster.start_member(i);
            cluster.wait_healthy(Duration::from_secs(30));
            went_on(&format!("once member {i} was back"));
        }
        members_done.store(true, Ordering::SeqCst);
        following.join().unwrap()
    });
    let journal = reader.journal("r1").unwrap();
    assert!(
        journal.len() > 45,
        "the run went on through every member's death: {} entries",
        journal.len()
    );
    assert_eq!(read, journal, "every entry once, in order");
    verify_chain(&read).unwrap();
}

/// A run whose record counts more journal entries than its journal holds (a damaged or
/// tampered store): a follower on etcd says so, naming the run, whether it learns of the end
/// by its watch or by its first read; it does not wait forever for entries that never come.
#[test]
fn an_etcd_follower_of_a_journal_cut_short_fails_naming_the_run() {
    let cluster = Cluster::start();
    let store = etcd(&cluster, "cut", "a", Duration::from_secs(5));
    store.commit("r1", &first_commit("r1", "wf")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut watching = store.follow_journal("r1", 0).unwrap();
    let read = read_until(&runtime, watching.as_mut(), |read, _| !read.is_empty());
    assert_eq!(read.len(), 1);
    // The run rests, its record counting three entries; its journal gets one more.
    let mut journal = store.journal("r1").unwrap();
    let entries = extend(&mut journal, 2, "a");
    let commit = Commit {
        run: Some(run_record(
            "r1",
            "wf",
            "succeeded",
            "2026-11-23T10:00:00.000Z",
            &journal,
        )),
        steps: vec![step("r1", "a", "succeeded", 1)],
        journal: entries[..1].to_vec(),
        source: None,
    };
    store.commit("r1", &commit).unwrap();
    let mut reading = store.follow_journal("r1", 0).unwrap();
    for follower in [&mut watching, &mut reading] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let error = loop {
            match follower.read() {
                Err(e) => break e,
                Ok(news) => assert!(news.under_way, "a run cut short taken as over"),
            }
            assert!(Instant::now() < deadline, "the follower waits forever");
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(1), follower.changed()).await;
            });
        };
        assert!(
            matches!(&error, StoreError::BadRecord { run, .. } if run == "r1"),
            "{error:?}"
        );
    }
}
