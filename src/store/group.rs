//! Group commit: commits of different runs written at the same time share one flush.
//!
//! Each commit takes a ticket once its writes are in sled's memory, then waits until a flush
//! that began after it took its ticket has finished. One committer at a time flushes, for every
//! ticket taken so far; those that arrived meanwhile are covered by it or by the next. A commit
//! still returns only once what it wrote is on disk.

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
struct Tickets {
    /// Tickets handed out.
    taken: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A committer is flushing now.
    flushing: bool,
    /// The last flush failed: the tickets it was to cover fail too.
    failed_upto: u64,
}

/// Shares flushes between concurrent committers.
#[derive(Default)]
pub struct GroupCommit {
    tickets: Mutex<Tickets>,
    turn: Condvar,
}

impl GroupCommit {
    /// Waits until what the caller wrote before calling is durable, running `flush` itself
    /// when no one else is flushing. A failed flush fails every commit it was to cover.
    pub fn durable<E: Clone>(
        &self,
        flush: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), Option<E>> {
        let mut t = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        t.taken += 1;
        let mine = t.taken;
        loop {
            if t.durable >= mine {
                return Ok(());
            }
            if t.failed_upto >= mine {
                return Err(None);
            }
            if !t.flushing {
                t.flushing = true;
                let upto = t.taken;
                drop(t);
                let result = flush();
                let mut t = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
                t.flushing = false;
                match &result {
                    Ok(()) => t.durable = t.durable.max(upto),
                    Err(_) => t.failed_upto = t.failed_upto.max(upto),
                }
                self.turn.notify_all();
                return result.map_err(Some);
            }
            t = self.turn.wait(t).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::GroupCommit;

    #[test]
    fn every_commit_waits_for_a_flush_begun_after_it() {
        let group = Arc::new(GroupCommit::default());
        // What has been "written" and what the last flush made durable.
        let written = Arc::new(AtomicU64::new(0));
        let on_disk = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, written, on_disk, flushes) = (
                    group.clone(),
                    written.clone(),
                    on_disk.clone(),
                    flushes.clone(),
                );
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .durable(|| -> Result<(), ()> {
                                let upto = written.load(Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                on_disk.fetch_max(upto, Ordering::SeqCst);
                                flushes.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(
                            on_disk.load(Ordering::SeqCst) >= mine,
                            "returned before durable"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // How many flushes the 800 commits shared is a benchmark's figure, not this test's.
        assert!(flushes.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn a_failed_flush_fails_the_commits_it_covered() {
        let group = GroupCommit::default();
        assert_eq!(group.durable(|| Err("disk")), Err(Some("disk")));
        assert_eq!(group.durable(|| Ok::<(), &str>(())), Ok(()));
    }
}
