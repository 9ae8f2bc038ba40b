//! Group commit: commits of different runs written at the same time share one flush.
//!
//! Each commit takes a ticket once its writes are in sled's memory, then waits until a flush
//! that began after it took its ticket has finished. One committer at a time flushes, for every
//! ticket taken so far; those that arrived meanwhile are covered by it or by the next. A commit
//! still returns only once what it wrote is on disk.
//!
//! The runs of `drctl serve` wait as tasks sharing a runtime ([`GroupCommit::durable_async`]):
//! a waiting task is woken once, when its ticket is durable, or to flush for those waiting
//! when nobody else does, so that many waiting runs cost no thread each and no herd of
//! wake-ups. A commit made on a thread of its own ([`GroupCommit::durable`], a run driven
//! alone, or a decision recorded) never waits for a task's turn (the task may need that very
//! thread to run): it flushes itself, and what it flushed counts for the tasks it covered.
//!
//! A task flushes on a thread that may block, so that the runtime's threads go on with the
//! other runs meanwhile, except when its commit is alone: nobody waits, no other commit is
//! pending, and the flush before covered one commit. That is a run driven by itself, whose
//! runtime has nothing else to do, and handing its flush to another thread and back would
//! cost two thread wake-ups per commit.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// What a waiting task is woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Its ticket is durable.
    Durable,
    /// The flush that was to cover its ticket failed.
    Failed,
    /// Nobody flushes: it flushes, for every ticket taken so far.
    Flush,
}

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
    /// Tasks waiting, with their tickets, in the order they came.
    waiting: Vec<(u64, oneshot::Sender<Turn>)>,
    /// How many tickets the last flush made durable.
    last_covered: u64,
}

impl Tickets {
    /// Records how the flushing turn's flush, covering tickets up to `upto`, ended, wakes the
    /// tasks it covered, and hands the next flush to a task still waiting, if any.
    fn flushed(&mut self, upto: u64, ok: bool) {
        self.flushing = false;
        if ok {
            self.made_durable(upto);
        } else {
            self.failed_upto = self.failed_upto.max(upto);
            for (_, waiter) in self.waiting.extract_if(.., |(ticket, _)| *ticket <= upto) {
                let _ = waiter.send(Turn::Failed);
            }
        }
        self.hand_on();
    }

    /// Every ticket up to `upto` is durable: the tasks waiting for them are told.
    fn made_durable(&mut self, upto: u64) {
        self.last_covered = upto.saturating_sub(self.durable);
        self.durable = self.durable.max(upto);
        for (_, waiter) in self.waiting.extract_if(.., |(ticket, _)| *ticket <= upto) {
            let _ = waiter.send(Turn::Durable);
        }
    }

    /// Gives the flushing turn to the first task still waiting, if any (one whose commit was
    /// given up, its future dropped, is passed over).
    fn hand_on(&mut self) {
        while !self.waiting.is_empty() {
            let (_, next) = self.waiting.remove(0);
            if next.send(Turn::Flush).is_ok() {
                self.flushing = true;
                return;
            }
        }
    }

    /// Whether the ticket just taken is the only one pending, with nobody waiting, after a
    /// flush that covered one commit: commits come one at a time.
    fn alone(&self) -> bool {
        self.waiting.is_empty() && self.taken == self.durable + 1 && self.last_covered <= 1
    }
}

/// Shares flushes between concurrent committers.
#[derive(Default)]
pub struct GroupCommit {
    tickets: Mutex<Tickets>,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, Tickets> {
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flushes for every ticket taken so far (the caller holds the flushing turn).
    fn flush_for_all<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), Option<E>> {
        let upto = self.lock().taken;
        let result = flush();
        self.lock().flushed(upto, result.is_ok());
        result.map_err(Some)
    }

    /// Makes what the caller wrote before calling durable: flushes on this thread, whoever
    /// else is flushing, and wakes the tasks the flush covered.
    pub fn durable<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let upto = {
            let mut t = self.lock();
            t.taken += 1;
            t.taken
        };
        flush()?;
        self.lock().made_durable(upto);
        Ok(())
    }

    /// As [`GroupCommit::durable`], waiting as a task: the thread is free for other runs
    /// meanwhile. When the flush falls to this task, it runs on a thread that may block (on a
    /// multi-threaded runtime), so that the runtime's threads go on with the other runs while
    /// the disk works; on a runtime of one thread, or for a commit alone, it runs in place.
    pub async fn durable_async<E: Send + 'static>(
        self: &Arc<Self>,
        flush: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) -> Result<(), Option<E>> {
        let (waiting, alone) = {
            let mut t = self.lock();
            t.taken += 1;
            let mine = t.taken;
            if t.flushing {
                let (tx, rx) = oneshot::channel();
                t.waiting.push((mine, tx));
                (Some(rx), false)
            } else {
                t.flushing = true;
                (None, t.alone())
            }
        };
        if let Some(rx) = waiting {
            let mut waiting = Waiting {
                group: self,
                rx: Some(rx),
            };
            match waiting.turn().await {
                Turn::Durable => return Ok(()),
                Turn::Failed => return Err(None),
                Turn::Flush => {}
            }
        }
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_threaded || alone {
            return self.flush_for_all(flush);
        }
        // The flush ends the turn itself, whatever becomes of this task meanwhile.
        let group = Arc::clone(self);
        match tokio::task::spawn_blocking(move || group.flush_for_all(flush)).await {
            Ok(result) => result,
            // The flush panicked: the commits it was to cover are not known to be durable.
            Err(_) => {
                self.lock().flushed(0, false);
                Err(None)
            }
        }
    }

    /// Passes on a flushing turn its task gave up: to the next task waiting, or to whoever
    /// comes next.
    fn pass_turn(&self) {
        let mut t = self.lock();
        t.flushing = false;
        t.hand_on();
    }
}

/// A task waiting for its turn; a flushing turn sent to it as its commit is given up is
/// passed on, not lost.
struct Waiting<'g> {
    group: &'g GroupCommit,
    rx: Option<oneshot::Receiver<Turn>>,
}

impl Waiting<'_> {
    async fn turn(&mut self) -> Turn {
        let Some(rx) = self.rx.as_mut() else {
            return Turn::Failed;
        };
        // The sender is only dropped once it sent a turn.
        let turn = rx.await.unwrap_or(Turn::Failed);
        self.rx = None;
        turn
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take()
            && rx.try_recv() == Ok(Turn::Flush)
        {
            self.group.pass_turn();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::GroupCommit;

    /// What has been "written", what the last flush made durable, and how many flushes ran.
    #[derive(Clone, Default)]
    struct Ledger {
        written: Arc<AtomicU64>,
        on_disk: Arc<AtomicU64>,
        flushes: Arc<AtomicU64>,
    }

    impl Ledger {
        /// A commit written: its number.
        fn write(&self) -> u64 {
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        }

        /// A flush, taking its time: what was written before it is durable after it.
        fn flush(&self) {
            let upto = self.written.load(Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_micros(200));
            self.on_disk.fetch_max(upto, Ordering::SeqCst);
            self.flushes.fetch_add(1, Ordering::SeqCst);
        }

        /// Fails when commit `mine` is not durable yet.
        fn assert_durable(&self, mine: u64) {
            assert!(
                self.on_disk.load(Ordering::SeqCst) >= mine,
                "returned before durable"
            );
        }

        fn flushes(&self) -> u64 {
            self.flushes.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn every_commit_waits_for_a_flush_begun_after_it() {
        let group = Arc::new(GroupCommit::default());
        let ledger = Ledger::default();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, ledger) = (group.clone(), ledger.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = ledger.write();
                        group
                            .durable(|| -> Result<(), ()> {
                                ledger.flush();
                                Ok(())
                            })
                            .unwrap();
                        ledger.assert_durable(mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // How many flushes the 800 commits shared is a benchmark's figure, not this test's.
        assert!(ledger.flushes() >= 1);
    }

    #[test]
    fn a_failed_flush_fails_the_commits_it_covered() {
        let group = GroupCommit::default();
        assert_eq!(group.durable(|| Err("disk")), Err("disk"));
        assert_eq!(group.durable(|| Ok::<(), &str>(())), Ok(()));
    }

    /// Tasks committing at once, as the runs of one `drctl serve`: each returns only once a
    /// flush begun after its write has finished, and they share flushes.
    #[test]
    fn tasks_wait_for_a_flush_begun_after_their_write() {
        let group = Arc::new(GroupCommit::default());
        let ledger = Ledger::default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let (group, ledger) = (group.clone(), ledger.clone());
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            let mine = ledger.write();
                            let flushing = ledger.clone();
                            group
                                .durable_async(move || -> Result<(), ()> {
                                    flushing.flush();
                                    Ok(())
                                })
                                .await
                                .unwrap();
                            ledger.assert_durable(mine);
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        // 2,000 commits by 100 tasks on two threads: flushes are shared, or this would be
        // one flush per commit.
        assert!(ledger.flushes() < 2000);
    }

    /// A commit alone flushes on its task's thread; one with another commit pending hands
    /// its flush to a thread that may block.
    #[test]
    fn a_commit_alone_flushes_in_place() {
        let group = Arc::new(GroupCommit::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let flushed_on = |group: Arc<GroupCommit>| async move {
            let (tx, rx) = std::sync::mpsc::channel();
            let here = std::thread::current().id();
            group
                .durable_async(move || tx.send(std::thread::current().id()))
                .await
                .unwrap();
            (here, rx.recv().unwrap())
        };
        runtime.block_on(async {
            for _ in 0..3 {
                let (here, flushed) = tokio::spawn(flushed_on(group.clone())).await.unwrap();
                assert_eq!(here, flushed, "a commit alone left its thread to flush");
            }
            // A commit made on a thread of its own is pending meanwhile.
            group.lock().taken += 1;
            let (here, flushed) = tokio::spawn(flushed_on(group.clone())).await.unwrap();
            assert_ne!(
                here, flushed,
                "the flush of two commits ran on a runtime thread"
            );
        });
    }

    /// A task handed the flushing turn just as its commit is given up passes it on: the
    /// others are not left waiting for a flush nobody runs.
    #[test]
    fn a_flushing_turn_given_up_is_passed_on() {
        let group = Arc::new(GroupCommit::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Someone is flushing; two tasks wait behind.
            group.lock().flushing = true;
            let mut first = Box::pin(group.durable_async(|| Ok::<(), ()>(())));
            let second = group.durable_async(|| Ok::<(), ()>(()));
            let mut second = Box::pin(second);
            assert!(pending(first.as_mut()));
            assert!(pending(second.as_mut()));
            // The flush ends having covered neither: the first is given the turn, then
            // dropped before it runs.
            group.lock().flushed(0, true);
            drop(first);
            // The turn went to the second, which flushes and returns.
            let second = tokio::time::timeout(std::time::Duration::from_secs(5), second);
            assert_eq!(second.await, Ok(Ok(())), "the turn was lost");
        });
        assert!(!group.lock().flushing);
    }

    /// Polls `future` once: whether it is still waiting.
    fn pending<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        future.poll(&mut cx).is_pending()
    }

    #[test]
    fn a_failed_flush_fails_the_tasks_it_covered() {
        let group = Arc::new(GroupCommit::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(group.durable_async(|| Err("disk")).await, Err(Some("disk")));
            assert_eq!(group.durable_async(|| Ok::<(), &str>(())).await, Ok(()));
        });
    }
}
