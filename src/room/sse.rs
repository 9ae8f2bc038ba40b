//! Server-Sent Events: a run's feed as one event per journal entry (`id:` is the entry's
//! number, so a browser that reconnects resumes with `Last-Event-ID`), and the runs list as
//! one event each time it changes. Every stream reads the in-memory feed, never the store.
//!
//! A run's events are sent as they come while they come apart, and gathered while they come
//! fast: after a write, a viewer is written to again [`GATHER`] later at the soonest, with
//! every event committed meanwhile in one write. A hundred viewers of a run committing a
//! thousand entries a second then cost a hundred writes every quarter of a second, not a
//! hundred thousand writes a second, and no event is left out or merged with another.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::feed::{Feed, sse_event};

/// How long after a write a viewer is written to again, at the soonest.
pub const GATHER: Duration = Duration::from_millis(250);

/// How long a stream stays silent before a comment keeps it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A run's events from entry `from` on, as they are committed.
pub fn run_events((feed, length): (Arc<Feed>, watch::Receiver<usize>), from: u64) -> Response {
    struct Reading {
        feed: Arc<Feed>,
        length: watch::Receiver<usize>,
        next: u64,
        written: Option<Instant>,
        over: bool,
    }
    let start = Reading {
        feed,
        length,
        next: from,
        written: None,
        over: false,
    };
    let stream = futures_util::stream::unfold(start, |mut r| async move {
        loop {
            if r.over {
                return None;
            }
            if let Some(written) = r.written {
                tokio::time::sleep_until(written + GATHER).await;
            }
            // Marked seen before reading, so a change after the read is waited for.
            r.length.borrow_and_update();
            let batch = r.feed.after(r.next);
            if let Some(last) = batch.last {
                r.next = last + 1;
                r.written = Some(Instant::now());
                return Some((Ok::<_, Infallible>(batch.events), r));
            }
            if let Some(why) = batch.failed {
                r.over = true;
                return Some((Ok(sse_event(Some("failed"), None, &why)), r));
            }
            match tokio::time::timeout(KEEP_ALIVE, r.length.changed()).await {
                Ok(Ok(())) => {}
                // The feed is gone: the agent is stopping.
                Ok(Err(_)) => return None,
                Err(_) => return Some((Ok(Bytes::from_static(b":\n\n")), r)),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
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
