//! What a crash leaves of the sled store, and what opening it again makes of that.

use std::path::Path;

use super::super::commit_log;
use super::super::{Commit, JournalEntry, RunRecord, Store, StoreError};
use super::*;

#[test]
fn a_store_cut_off_while_being_created_is_finished_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    // What sled leaves when killed before it created its files.
    std::fs::create_dir_all(dir.path().join("store").join("blobs")).unwrap();
    let store = SledStore::open(dir.path()).expect("the store is created");
    assert!(store.runs().unwrap().is_empty());
}

/// A commit of `run` appending entry `seq` (a chain of made-up hashes) and its record.
fn commit(run: &str, seq: u64) -> Commit {
    let hash = |n: u64| format!("{n:064}");
    let entry = JournalEntry {
        seq,
        at: "2026-12-07T10:00:00.000Z".into(),
        event: serde_json::json!({"type": "step_started", "step": "a", "attempt": seq}),
        prev: if seq == 0 {
            super::super::GENESIS.into()
        } else {
            hash(seq - 1)
        },
        hash: hash(seq),
    };
    let record = RunRecord {
        run_id: run.into(),
        workflow: "wf".into(),
        mode: crate::store::RunMode::Run,
        status: super::super::RunStatus::Running,
        initiator: "me".into(),
        digest: "v2:0".into(),
        workflow_file: "wf.toml".into(),
        overrides: Vec::new(),
        started_at: crate::time::parse_time("2026-12-07T10:00:00.000Z").unwrap(),
        finished_at: None,
        journal_len: seq + 1,
        last_hash: hash(seq),
        incident_start: None,
        pid: None,
        detached: false,
    };
    Commit {
        run: Some(record),
        steps: Vec::new(),
        journal: vec![entry],
        source: (seq == 0).then(|| "[workflow]\nname = \"wf\"\n".to_string()),
    }
}

/// What a process killed at this moment leaves: the files as they are, sled's last
/// writes not flushed.
fn files_now(store: &Path, to: &Path) {
    for dir in ["store", "store/blobs"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for entry in std::fs::read_dir(store.join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(dir).join(entry.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn every_commit_acknowledged_is_in_the_files_a_crash_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let store = SledStore::open(&live).unwrap();
    for seq in 0..50 {
        store.commit("r1", &commit("r1", seq)).unwrap();
    }
    let crashed = dir.path().join("crashed");
    files_now(&live, &crashed);
    drop(store);
    assert_eq!(
        commit_log::files(&crashed.join("store")).unwrap().len(),
        1,
        "the commit log is in what the crash left"
    );

    let store = SledStore::open(&crashed).unwrap();
    let journal = store.journal("r1").unwrap();
    assert_eq!(journal.len(), 50, "acknowledged commits were lost");
    assert_eq!(store.run("r1").unwrap().unwrap().journal_len, 50);
    assert_eq!(store.anchor("r1").unwrap().unwrap().journal_len, 50);
    assert!(store.source("r1").unwrap().is_some());
    // Replayed into sled and removed.
    assert!(
        commit_log::files(&crashed.join("store"))
            .unwrap()
            .is_empty()
    );
    drop(store);

    // A store closed holds everything in sled, and no log.
    assert!(commit_log::files(&live.join("store")).unwrap().is_empty());
    assert_eq!(
        SledStore::open(&live).unwrap().journal("r1").unwrap().len(),
        50
    );
}

/// Each process goes on where the one before was killed: its commits come after the
/// replayed ones and overwrite none (sled's ids are drawn from a counter sled recovers
/// from its own files).
#[test]
fn commits_after_crashes_follow_the_replayed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = dir.path().join("crash-0");
    let mut seq = 0;
    for crash in 1..=4 {
        let store = SledStore::open(&state).unwrap();
        for _ in 0..20 {
            store.commit("r1", &commit("r1", seq)).unwrap();
            seq += 1;
        }
        let next = dir.path().join(format!("crash-{crash}"));
        files_now(&state, &next);
        drop(store);
        state = next;
    }
    let store = SledStore::open(&state).unwrap();
    let seqs: Vec<u64> = store.journal("r1").unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..seq).collect::<Vec<_>>());
}

/// A full log file is replaced, and removed once a checkpoint made sled hold it: what a
/// crash leaves then holds every commit.
#[test]
fn a_full_log_file_goes_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let store = SledStore::open(&live).unwrap();
    let big = "x".repeat(1 << 20);
    for seq in 0..6 {
        let mut c = commit("r1", seq);
        c.journal[0].event["outputs"] = serde_json::json!({ "big": big });
        store.commit("r1", &c).unwrap();
    }
    // (A copy of files made one after the other while a checkpoint runs is no crash.)
    store.durability.wait();
    let crashed = dir.path().join("crashed");
    files_now(&live, &crashed);
    let left: Vec<u64> = commit_log::files(&live.join("store"))
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, vec![2], "the full file stayed after its checkpoint");
    drop(store);
    let store = SledStore::open(&crashed).unwrap();
    assert_eq!(store.journal("r1").unwrap().len(), 6);
}

#[test]
fn a_store_of_schema_version_2_is_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        for seq in 0..3 {
            store.commit("r1", &commit("r1", seq)).unwrap();
        }
    }
    {
        let db = sled::open(dir.path().join("store")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "2")
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.journal("r1").unwrap().len(), 3);
    assert_eq!(store.anchor("r1").unwrap().unwrap().journal_len, 3);
    drop(store);
    let db = sled::open(dir.path().join("store")).unwrap();
    let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
    assert_eq!(
        version.unwrap().as_ref(),
        SCHEMA_VERSION.to_string().as_bytes()
    );
}

#[test]
fn a_directory_holding_anything_else_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store").join("notes.txt"), "mine").unwrap();
    let Err(StoreError::Corrupt { reason, .. }) = SledStore::open(dir.path()) else {
        panic!("a stranger's directory was opened as a store");
    };
    assert!(reason.contains("notes.txt"), "{reason}");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

/// sled writes a snapshot to `snap.N.generating` before renaming it; killed in between, it
/// leaves a file it then takes for a corrupt last snapshot. The store opens all the same,
/// with every commit.
#[test]
fn a_snapshot_left_unfinished_by_a_kill_does_not_stop_the_store_opening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store.commit("r1", &commit("r1", 0)).unwrap();
    store.commit("r1", &commit("r1", 1)).unwrap();
    drop(store);
    let unfinished = dir
        .path()
        .join("store")
        .join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, b"").unwrap();
    let store = SledStore::open(dir.path()).expect("the store opens");
    assert_eq!(store.journal("r1").unwrap().len(), 2);
    assert!(!unfinished.exists(), "the unfinished snapshot was removed");
}
