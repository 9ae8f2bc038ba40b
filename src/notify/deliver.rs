//! Delivering run-event messages off the run's path: a bounded queue and one thread per run
//! that posts them, each tried a few times with backoff. Nothing here waits on the run, and
//! the run never waits on it: a full queue drops the message with a warning, a failed post is
//! logged. The webhook is a secret when it came from `${env.NAME}`: no log line names it.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// Messages waiting to be posted, at most; more are dropped.
const QUEUE: usize = 64;
/// Tries per message.
const TRIES: u32 = 3;
/// The wait before the second try; doubled before each further one.
const BACKOFF: Duration = Duration::from_millis(500);
/// How long one post may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One message to post: a Slack-compatible JSON body (`text` and structured fields).
#[derive(Debug, Clone)]
pub struct Message {
    /// The event's name (`approval_waiting`...), for logs.
    pub event: &'static str,
    /// The body.
    pub body: serde_json::Value,
}

/// Where messages are queued for a run's webhook. Cheap to clone; the thread posting them ends
/// when every clone is gone and the queue is empty.
#[derive(Clone)]
pub struct Outbox {
    queue: SyncSender<Message>,
    /// Messages queued and not yet delivered or given up on.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Outbox {
    /// An outbox posting to `url` (what logs call it: `shown`), on a thread of its own.
    pub fn start(url: String, shown: String) -> std::io::Result<Self> {
        let (queue, messages) = std::sync::mpsc::sync_channel(QUEUE);
        let pending = Arc::new((Mutex::new(0), Condvar::new()));
        let counted = pending.clone();
        std::thread::Builder::new()
            .name("run events".into())
            .spawn(move || post_all(&messages, &url, &shown, &counted))?;
        Ok(Self { queue, pending })
    }

    /// Queues `message`, at once: when the queue is full it is dropped, with a warning.
    pub fn send(&self, message: Message) {
        let event = message.event;
        *self
            .pending
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        match self.queue.try_send(message) {
            Ok(()) => debug!(event, "run event queued"),
            Err(e) => {
                self.delivered();
                match e {
                    TrySendError::Full(_) => warn!(
                        event,
                        "run event dropped: {QUEUE} messages are waiting for the webhook already"
                    ),
                    TrySendError::Disconnected(_) => {
                        warn!(event, "run event dropped: its delivery thread is gone");
                    }
                }
            }
        }
    }

    /// Waits until every queued message was delivered or given up on, for `grace` at most
    /// (a process about to exit gives its last messages that long).
    pub fn drain(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let (count, changed) = &*self.pending;
        let mut left = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *left > 0 {
            let now = Instant::now();
            if now >= deadline {
                warn!(
                    undelivered = *left,
                    "run events not delivered before drctl exits"
                );
                return;
            }
            left = changed
                .wait_timeout(left, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn delivered(&self) {
        done(&self.pending);
    }
}

fn done(pending: &(Mutex<usize>, Condvar)) {
    let mut left = pending.0.lock().unwrap_or_else(PoisonError::into_inner);
    *left = left.saturating_sub(1);
    pending.1.notify_all();
}

/// The delivery thread: posts each message in turn until the queue is closed.
fn post_all(
    messages: &Receiver<Message>,
    url: &str,
    shown: &str,
    pending: &(Mutex<usize>, Condvar),
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    for message in messages {
        post(&agent, url, shown, &message);
        done(pending);
    }
}

/// Posts one message, trying again after a connection error, a 429 or a 5xx.
fn post(agent: &ureq::Agent, url: &str, shown: &str, message: &Message) {
    let body = message.body.to_string();
    let mut wait = BACKOFF;
    for attempt in 1..=TRIES {
        let outcome = agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.as_str());
        let (again, why) = match outcome {
            Ok(response) if response.status().is_success() => {
                debug!(
                    event = message.event,
                    webhook = shown,
                    attempt,
                    "run event delivered"
                );
                return;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                (
                    status == 429 || status >= 500,
                    format!("the webhook answered {status}"),
                )
            }
            // The error names the URL; it is said without it.
            Err(e) => (true, describe(&e)),
        };
        if !again || attempt == TRIES {
            warn!(
                event = message.event,
                webhook = shown,
                attempt,
                "run event not delivered: {why}"
            );
            return;
        }
        debug!(
            event = message.event,
            webhook = shown,
            attempt,
            "run event not delivered yet: {why}; trying again"
        );
        std::thread::sleep(wait);
        wait *= 2;
    }
}

/// A transport error in words that do not repeat the URL.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the webhook did not answer in time".into(),
        ureq::Error::ConnectionFailed => "the webhook could not be reached".into(),
        ureq::Error::HostNotFound => "the webhook's host was not found".into(),
        ureq::Error::Io(io) => format!("the connection failed ({})", io.kind()),
        _ => "the request failed".into(),
    }
}
