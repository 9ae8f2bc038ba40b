//! One in-memory feed per run, fanned out to every viewer: a thread follows the run's journal
//! through the store's follower (on etcd a watch, whichever agent drives the run), folds each
//! entry into the run's projection with the machine's own `apply`, and appends what a page
//! needs (the entry's line, the steps whose status it changed) to the feed. Viewers read the
//! feed, never the store: a hundred viewers cost one follower.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::engine::{Machine, Redactor, events};
use crate::service::CliError;
use crate::store::Store;

/// What one journal entry changed, as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    /// The entry's number in the journal (the SSE `id:`).
    pub seq: u64,
    /// When it was journaled (RFC 3339).
    pub at: String,
    /// The line a person reads for it, when it has one.
    pub line: Option<String>,
    /// The steps whose status it changed, with their new status (as `drctl status` names it).
    pub steps: Vec<(String, &'static str)>,
    /// The run's status once it is folded in.
    pub status: &'static str,
    /// The RTO projected now, when it was worked out again with this entry (at most every
    /// [`PROJECT_EVERY`], and at the entry that ends the run's clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projected>,
}

/// The RTO projection as the run page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Projected {
    /// In words (empty once the run recovered or ended: nothing is projected any more).
    pub text: String,
    /// Whether it passes the objective.
    pub at_risk: bool,
}

/// How often the RTO projection is worked out again while entries come.
const PROJECT_EVERY: Duration = Duration::from_secs(1);

/// Where a feed stands.
#[derive(Default)]
struct Log {
    /// Every item so far, each as the SSE event a viewer is sent (`id:` and `data:` lines,
    /// scrubbed of the run's secrets), encoded once for every viewer.
    items: Vec<(u64, Bytes)>,
    /// Why following the run failed, when it did.
    failed: Option<String>,
}

/// The feed of one run.
pub struct Feed {
    log: Mutex<Log>,
    /// How many items there are: viewers wait on its changes.
    length: watch::Sender<usize>,
}

impl Feed {
    fn new() -> Self {
        Self {
            log: Mutex::default(),
            length: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, seq: u64, data: &str) {
        let event = sse_event(None, Some(seq), data);
        let length = {
            let mut log = self.lock();
            log.items.push((seq, event));
            log.items.len()
        };
        self.length.send_replace(length);
    }

    fn fail(&self, why: String) {
        let length = {
            let mut log = self.lock();
            log.failed = Some(why);
            log.items.len()
        };
        // Wakes the viewers, who then see the failure.
        self.length.send_replace(length + 1);
    }

    /// The items from entry `from` on, and why following failed when it did.
    pub fn after(&self, from: u64) -> Batch {
        let (items, failed) = {
            let log = self.lock();
            let first = log.items.partition_point(|(seq, _)| *seq < from);
            (log.items[first..].to_vec(), log.failed.clone())
        };
        let last = items.last().map(|(seq, _)| *seq);
        let events = match items.as_slice() {
            [] => Bytes::new(),
            [(_, one)] => one.clone(),
            many => {
                let mut all = Vec::with_capacity(many.iter().map(|(_, e)| e.len()).sum());
                for (_, event) in many {
                    all.extend_from_slice(event);
                }
                Bytes::from(all)
            }
        };
        Batch {
            events,
            last,
            failed,
        }
    }
}

/// What a viewer has not been sent yet.
pub struct Batch {
    /// The SSE events of the items, one after another, ready to write at once.
    pub events: Bytes,
    /// The last item's entry number, when there is an item.
    pub last: Option<u64>,
    /// Why following the run failed, when it did.
    pub failed: Option<String>,
}

/// One Server-Sent Event: its name when it has one, its `id:` when it has one (item `seq`'s
/// entry number, so a browser that reconnects resumes after it), then its data, a `data:`
/// line for each of its lines.
pub fn sse_event(name: Option<&str>, id: Option<u64>, data: &str) -> Bytes {
    let mut event = String::with_capacity(data.len() + 32);
    if let Some(name) = name {
        event.push_str(&format!("event: {name}\n"));
    }
    if let Some(id) = id {
        event.push_str(&format!("id: {id}\n"));
    }
    for line in data.split('\n') {
        event.push_str("data: ");
        event.push_str(line.trim_end_matches('\r'));
        event.push('\n');
    }
    event.push('\n');
    Bytes::from(event)
}

/// The feeds of the runs being viewed, each followed by a thread of its own.
pub struct Feeds {
    store: Arc<dyn Store>,
    registry: Arc<crate::actions::Registry>,
    by_run: Mutex<HashMap<String, Arc<Feed>>>,
}

/// How long a run at rest is waited on before its journal is looked at again (an approval
/// recorded by another process, a resume).
const AT_REST: Duration = Duration::from_millis(500);

impl Feeds {
    /// The feeds of `store`'s runs, whose workflows compile with `registry`'s actions.
    pub fn new(store: Arc<dyn Store>, registry: Arc<crate::actions::Registry>) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry,
            by_run: Mutex::default(),
        })
    }

    /// Run `run`'s feed, followed from now on if nobody followed it yet, and a viewer of it
    /// (waiting on its length's changes). The viewer is counted before the feed is handed
    /// out: a feed is let go of only when nobody views it.
    pub fn view(
        self: &Arc<Self>,
        run: &str,
    ) -> Result<(Arc<Feed>, watch::Receiver<usize>), CliError> {
        let mut feeds = self.by_run.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = feeds.get(run) {
            return Ok((feed.clone(), feed.length.subscribe()));
        }
        let feed = Arc::new(Feed::new());
        let (feeds_, run_, feed_) = (self.clone(), run.to_string(), feed.clone());
        std::thread::Builder::new()
            .name(format!("room-feed-{run}"))
            .spawn(move || {
                super::priority::lower();
                let followed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    feeds_.follow(&run_, &feed_)
                }))
                .unwrap_or_else(|_| {
                    Err(CliError::internal(format!(
                        "following run {run_} failed (drctl's log says why)"
                    )))
                });
                if let Err(e) = followed {
                    // Its viewers see why; the next viewer follows the run anew.
                    feed_.fail(e.to_string());
                    feeds_.let_go(&run_, &feed_, true);
                }
            })
            .map_err(|e| CliError::internal(format!("cannot follow run {run}: {e}")))?;
        let viewer = feed.length.subscribe();
        feeds.insert(run.to_string(), feed.clone());
        Ok((feed, viewer))
    }

    /// Forgets `feed` when nobody views it, or `always` (its following failed); says whether
    /// it did. The next viewer follows the run anew.
    fn let_go(&self, run: &str, feed: &Arc<Feed>, always: bool) -> bool {
        let mut feeds = self.by_run.lock().unwrap_or_else(PoisonError::into_inner);
        if !always && feed.length.receiver_count() > 0 {
            return false;
        }
        if feeds.get(run).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(run);
        }
        true
    }

    /// Follows run `run`'s journal into `feed` while it goes on or someone views it.
    fn follow(&self, run: &str, feed: &Arc<Feed>) -> Result<(), CliError> {
        let record = self.store.run(run)?.ok_or_else(|| {
            CliError::invalid(format!(
                "no run `{run}` in this store (`drctl runs` lists them)"
            ))
        })?;
        // The workflow the run executes as its journal stands now (a change later in the run
        // keeps the steps; only a step it adds is shown as the journal names it).
        let journal = self.store.journal(run)?;
        let (workflow, _) = crate::stored::stored_workflow(
            self.store.as_ref(),
            (&record, &journal),
            &self.registry,
        )?;
        drop(journal);
        let redactor = Redactor::for_workflow(&workflow);
        let mut machine = Machine::new(Arc::new(workflow), "").projected();
        machine.run_id = run.to_string();
        let mut shown: HashMap<String, &'static str> = HashMap::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| CliError::internal(e.to_string()))?;
        let mut next = 0;
        let mut projected: Option<(std::time::Instant, bool)> = None;
        loop {
            let mut follower = self.store.follow_journal(run, next)?;
            loop {
                let news = follower.read()?;
                for recorded in events(run, &news.entries)? {
                    machine.apply(&recorded.event, recorded.time);
                    let item = FeedItem {
                        seq: recorded.seq,
                        line: crate::view::event_line(&recorded.event, &machine),
                        at: recorded.at,
                        steps: changed(&machine, recorded.event.step(), &mut shown),
                        status: machine.status().as_str(),
                        projection: projection(&machine, &mut projected),
                    };
                    let data = serde_json::to_string(&item)
                        .map_err(|e| CliError::internal(e.to_string()))?;
                    feed.push(item.seq, &redactor.scrub(&data));
                    next = item.seq + 1;
                }
                if !news.under_way {
                    break;
                }
                // The wait is made inside the runtime: its timer belongs to it.
                runtime.block_on(async { follower.changed().await });
            }
            drop(follower);
            // At rest: kept while someone views it, in case it goes on.
            std::thread::sleep(AT_REST);
            if self.let_go(run, feed, false) {
                return Ok(());
            }
        }
    }
}

/// The RTO projected now, worked out again when [`PROJECT_EVERY`] passed since the last time
/// (`last`: when, and whether there was a projection), or when the run's clock just stopped.
fn projection(
    machine: &Machine,
    last: &mut Option<(std::time::Instant, bool)>,
) -> Option<Projected> {
    let projection = machine.run_projection()?;
    let going = projection.finished.is_none() && projection.succeeded_at.is_none();
    let due = match *last {
        None => true,
        Some((at, shown)) => at.elapsed() >= PROJECT_EVERY || (shown && !going),
    };
    if !due {
        return None;
    }
    let now = super::model::rto_now(machine.workflow(), projection, chrono::Utc::now());
    *last = Some((std::time::Instant::now(), now.is_some()));
    Some(now.map_or_else(
        || Projected {
            text: String::new(),
            at_risk: false,
        },
        |p| Projected {
            text: super::model::projected_words(&p),
            at_risk: p.at_risk(),
        },
    ))
}

/// The steps whose status differs from what was `shown`, now shown: after an event of one
/// step (`step`), that step only (an event folds into its own step and no other); after an
/// event of the run, every step.
fn changed(
    machine: &Machine,
    step: Option<&str>,
    shown: &mut HashMap<String, &'static str>,
) -> Vec<(String, &'static str)> {
    let Some(projection) = machine.run_projection() else {
        return Vec::new();
    };
    let one = step.and_then(|id| {
        let i = machine.index(id)?;
        projection.steps.get(i).filter(|s| s.id == id)
    });
    let mut steps = Vec::new();
    for step in one.map_or(projection.steps.as_slice(), std::slice::from_ref) {
        let status = step.status.as_str();
        if shown.get(&step.id) != Some(&status) {
            shown.insert(step.id.clone(), status);
            steps.push((step.id.clone(), status));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_gets_every_item_after_the_one_it_has_in_one_write_each_an_event_of_its_own() {
        let feed = Feed::new();
        for seq in 0..3 {
            feed.push(seq, &format!("{{\"seq\":{seq}}}"));
        }
        let batch = feed.after(1);
        assert_eq!(batch.last, Some(2));
        assert_eq!(
            &batch.events[..],
            b"id: 1\ndata: {\"seq\":1}\n\nid: 2\ndata: {\"seq\":2}\n\n"
        );
        let none = feed.after(3);
        assert!(none.events.is_empty() && none.last.is_none() && none.failed.is_none());
        feed.fail("the store went away".into());
        assert_eq!(feed.after(3).failed.as_deref(), Some("the store went away"));
    }

    #[test]
    fn data_of_several_lines_is_sent_as_a_data_line_each() {
        let event = sse_event(Some("failed"), None, "one\r\ntwo");
        assert_eq!(&event[..], b"event: failed\ndata: one\ndata: two\n\n");
    }
}
