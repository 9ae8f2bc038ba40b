//! Replaying the commit log a process left (it ended without its last checkpoint) into sled,
//! when the store is opened. Writing a logged write twice is writing it once, so a replay cut
//! off is simply done again.

use std::path::Path;

use super::super::Anchor;
use super::super::commit_log::{self, CommitLog, Tree};
use super::super::sync::DiskSync;
use super::durability::flush;

/// The trees a commit writes.
pub(super) struct Trees<'a> {
    pub(super) run_ids: &'a sled::Tree,
    pub(super) bundles: &'a sled::Tree,
    pub(super) sources: &'a sled::Tree,
}

/// Replays the commit log files a process left (it ended without its last checkpoint) into
/// sled, makes sled hold them durably, and removes them. Returns the log to append to.
pub(super) fn recover(
    db: &sled::Db,
    trees: &Trees<'_>,
    disk: &DiskSync,
    path: &Path,
) -> Result<CommitLog, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let left = commit_log::files(path).map_err(|e| text(&e))?;
    for (_, file) in &left {
        let bytes = std::fs::read(file).map_err(|e| text(&e))?;
        for body in commit_log::records(&bytes) {
            let writes = commit_log::writes(body)
                .ok_or_else(|| format!("a record of {} is not a commit", file.display()))?;
            for put in writes {
                replay(trees, &put).map_err(|e| text(&e))?;
            }
        }
    }
    if !left.is_empty() {
        flush(db, disk)?;
        for (_, file) in &left {
            std::fs::remove_file(file).map_err(|e| text(&e))?;
        }
    }
    let next = left.last().map_or(1, |(number, _)| number + 1);
    Ok(CommitLog::new(path, next))
}

/// Writes one logged write again. Writing it twice is writing it once: a bundle, a source and
/// a run's id have one value; and an anchor never moves back (sled may hold a later one than
/// the log, written before a power cut took the record of it).
fn replay(trees: &Trees<'_>, put: &commit_log::Put<'_>) -> sled::Result<()> {
    let tree = match put.tree {
        Tree::Bundles => trees.bundles,
        Tree::Sources => trees.sources,
        Tree::RunIds => {
            let held = trees.run_ids.get(put.key)?;
            if held.is_some_and(|held| !anchor_not_before(put.value, &held)) {
                return Ok(());
            }
            trees.run_ids
        }
    };
    tree.insert(put.key, put.value)?;
    Ok(())
}

/// Whether the anchor `logged` is not before the anchor `held` (an empty one is before any).
fn anchor_not_before(logged: &[u8], held: &[u8]) -> bool {
    let len = |bytes: &[u8]| {
        serde_json::from_slice::<Anchor>(bytes)
            .ok()
            .map(|a| a.journal_len)
    };
    match (len(logged), len(held)) {
        (None, Some(_)) => false,
        (Some(logged), Some(held)) => logged >= held,
        (_, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_anchor_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let trees = (
            db.open_tree("run_ids").unwrap(),
            db.open_tree("bundles").unwrap(),
            db.open_tree("sources").unwrap(),
        );
        let trees = Trees {
            run_ids: &trees.0,
            bundles: &trees.1,
            sources: &trees.2,
        };
        let anchor = |len: u64| {
            serde_json::to_vec(&Anchor {
                journal_len: len,
                last_hash: format!("{len:064}"),
            })
            .unwrap()
        };
        let put = |value: &[u8]| {
            let put = commit_log::Put {
                tree: Tree::RunIds,
                key: b"r1",
                value,
            };
            replay(&trees, &put).unwrap();
            trees.run_ids.get(b"r1").unwrap().unwrap().to_vec()
        };
        assert_eq!(put(b""), b"", "a run's id is written");
        assert_eq!(put(&anchor(5)), anchor(5));
        assert_eq!(
            put(&anchor(3)),
            anchor(5),
            "an older anchor replayed over a later"
        );
        assert_eq!(put(b""), anchor(5));
        assert_eq!(put(&anchor(5)), anchor(5));
        assert_eq!(put(&anchor(8)), anchor(8));
    }
}
