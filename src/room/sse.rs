//! Server-Sent Events: a run's feed as one event per journal entry (`id:` is the entry's
//! number, so a browser that reconnects resumes with `Last-Event-ID`), and the runs list as
//! one event each time it changes. Every stream reads the in-memory feed, never the store.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::feed::Feed;

/// A run's events from entry `from` on, as they are committed.
pub fn run_events(
    (feed, length): (Arc<Feed>, watch::Receiver<usize>),
    from: u64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Reading {
        feed: Arc<Feed>,
        length: watch::Receiver<usize>,
        next: u64,
        ready: VecDeque<(u64, Arc<str>)>,
        over: bool,
    }
    let start = Reading {
        feed,
        length,
        next: from,
        ready: VecDeque::new(),
        over: false,
    };
    let stream = futures_util::stream::unfold(start, |mut r| async move {
        loop {
            if let Some((seq, data)) = r.ready.pop_front() {
                r.next = seq + 1;
                let event = Event::default().id(seq.to_string()).data(&*data);
                return Some((Ok(event), r));
            }
            if r.over {
                return None;
            }
            // Marked seen before reading, so a change after the read is waited for.
            r.length.borrow_and_update();
            let (items, failed) = r.feed.after(r.next);
            r.ready.extend(items);
            if r.ready.is_empty() {
                if let Some(why) = failed {
                    r.over = true;
                    let event = Event::default().event("failed").data(why);
                    return Some((Ok(event), r));
                }
                if r.length.changed().await.is_err() {
                    return None;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The runs list (its JSON, as `/api/runs` answers) each time it changes.
pub fn runs_events(
    mut runs: watch::Receiver<Arc<str>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    runs.mark_changed();
    let stream = futures_util::stream::unfold(runs, |mut runs| async move {
        runs.changed().await.ok()?;
        let data = runs.borrow_and_update().clone();
        Some((Ok(Event::default().event("runs").data(&*data)), runs))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
