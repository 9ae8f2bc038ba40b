//! The server side: runs inside the process that drives a run. It must never be taken down by
//! a client, and it serves every honest client (SPEC §5.8.6, §11):
//!
//! - a request line is at most [`MAX_REQUEST`] bytes, and only [`LARGE_AT_ONCE`] connections
//!   at a time read a line longer than [`SMALL_REQUEST`] (the others wait their turn), so the
//!   lines being read hold at most `MAX_CONNECTIONS × SMALL_REQUEST + LARGE_AT_ONCE ×
//!   MAX_REQUEST` (48 MiB);
//! - at most [`MAX_CONNECTIONS`] connections are open at once. A newcomer past the bound takes
//!   the place of a connection idle for [`EVICT_IDLE`] or more; when there is none, it waits
//!   (not accepted yet, in the socket's backlog) until a connection ends: a crowd of clients
//!   is served in turn, never refused;
//! - one process holds at most [`MAX_PER_PROCESS`] connections (its idlest makes room for its
//!   next; when all of them are answering, the next is refused, saying so): a process flooding
//!   the socket cannot starve the others;
//! - a connection without a complete request for [`IDLE_TIMEOUT`] is dropped;
//! - an `accept` error is waited out rather than ending the loop;
//! - the handler answers (`service::Host` reads the store off the runtime's worker threads,
//!   so the driver is never starved).
//!
//! It prints nothing: the terminal belongs to the run's output.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::protocol::{MAX_REQUEST, Request, Response, SMALL_REQUEST, parse_request, size};
use super::socket_path;

/// What answers the requests the socket reads (the run service of the process serving it).
pub trait Handler: Send + Sync + 'static {
    /// The answer to `request`.
    fn answer(&self, request: Request) -> Answering<'_>;
}

/// An answer under way.
pub type Answering<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send + 'a>>;

/// Connections open at once. Past the bound, a newcomer takes the place of a connection idle
/// for [`EVICT_IDLE`], or waits its turn.
pub const MAX_CONNECTIONS: usize = 256;

/// Connections that may read a request line longer than [`SMALL_REQUEST`] at once.
pub const LARGE_AT_ONCE: usize = 4;

/// Connections one process may hold at once. A drctl command holds one (two for a moment).
pub const MAX_PER_PROCESS: usize = 8;

/// How long a connection must have been idle to be closed for a newcomer when every slot is
/// taken. An honest client between two requests (a follower polls every 100 ms) is never
/// idle that long.
pub const EVICT_IDLE: Duration = Duration::from_secs(1);

/// How long a connection may go without a complete request before it is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an answer may take to be written to a client that does not read it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before accepting again after `accept` failed (out of file descriptors,
/// say): the failure is the process's, not a client's, and passes when connections close.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Listens on the store's control socket until the returned guard is dropped; `handler`
/// answers each request.
pub fn serve(state_dir: &Path, handler: Arc<dyn Handler>) -> std::io::Result<SocketGuard> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(state_dir);
    // A socket file left by a process that died: this process owns the store now.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    // Only the owner may talk to the run (the state directory is 0700 as well).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let slots = Arc::new(Mutex::new(Slots::default()));
    let server = Server {
        handler,
        slots: slots.clone(),
        freed: Arc::new(Notify::new()),
        large: Arc::new(Semaphore::new(LARGE_AT_ONCE)),
    };
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                // The next connection is accepted once this one has its place: meanwhile
                // newcomers wait in the socket's backlog.
                Ok((stream, _)) => server.admit(stream).await,
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            }
        }
    });
    Ok(SocketGuard { path, task, slots })
}

/// How long a closing socket waits for the answers it owes.
const CLOSE_PATIENCE: Duration = Duration::from_secs(2);

/// Removes the socket when the run stops being driven.
pub struct SocketGuard {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
    slots: Arc<Mutex<Slots>>,
}

impl SocketGuard {
    /// Stops taking connections, then waits (a little) until every request already taken is
    /// answered: a vote that ended the run is told it was recorded before the process exits,
    /// rather than finding the socket gone and reporting a failure.
    pub async fn close(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
        let until = Instant::now() + CLOSE_PATIENCE;
        while Instant::now() < until && lock(&self.slots).open.values().any(|s| s.busy) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the accept loop shares with the connections it starts.
#[derive(Clone)]
struct Server {
    handler: Arc<dyn Handler>,
    slots: Arc<Mutex<Slots>>,
    /// Told when a connection ends, for a newcomer waiting for a place.
    freed: Arc<Notify>,
    /// Turns to read a line longer than [`SMALL_REQUEST`].
    large: Arc<Semaphore>,
}

/// The open connections.
#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    /// When it last completed a request, or connected.
    active: Instant,
    /// Whether a request is being answered (such a connection is never evicted).
    busy: bool,
    /// The process at the other end, when the kernel says.
    peer: Option<i32>,
    abort: AbortHandle,
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees its slot when the connection ends, however it ends (an abort included).
struct SlotGuard {
    id: u64,
    slots: Arc<Mutex<Slots>>,
    freed: Arc<Notify>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.slots).open.remove(&self.id);
        self.freed.notify_one();
    }
}

/// Where a newcomer goes.
enum Place {
    /// In a free slot.
    Free,
    /// In the slot of this idle connection, closed for it.
    Evict(u64),
    /// Nowhere yet: every slot is answering a request.
    Wait,
    /// Nowhere: its process holds too many connections, each answering a request.
    Refuse(String),
}

impl Slots {
    /// Where a newcomer from process `peer` goes.
    fn place(&self, peer: Option<i32>) -> Place {
        if let Some(pid) = peer {
            let mine = || self.open.iter().filter(move |(_, s)| s.peer == Some(pid));
            if mine().count() >= MAX_PER_PROCESS {
                return match idlest(mine(), Duration::ZERO) {
                    Some(id) => Place::Evict(id),
                    None => Place::Refuse(format!(
                        "process {pid} has {MAX_PER_PROCESS} requests under way on this socket already; a drctl command makes one at a time"
                    )),
                };
            }
        }
        if self.open.len() < MAX_CONNECTIONS {
            return Place::Free;
        }
        match idlest(self.open.iter(), EVICT_IDLE) {
            Some(id) => Place::Evict(id),
            None => Place::Wait,
        }
    }
}

/// The connection idle the longest among `slots`, if it has been idle for `at_least`.
fn idlest<'a>(slots: impl Iterator<Item = (&'a u64, &'a Slot)>, at_least: Duration) -> Option<u64> {
    slots
        .filter(|(_, s)| !s.busy && s.active.elapsed() >= at_least)
        .min_by_key(|(_, s)| s.active)
        .map(|(id, _)| *id)
}

impl Server {
    /// Starts serving `stream` once it has a place: a free slot, or the slot of an idle
    /// connection; else waits until a connection ends. Only a process holding too many
    /// connections is refused.
    async fn admit(&self, mut stream: UnixStream) {
        let peer = stream.peer_cred().ok().and_then(|c| c.pid());
        loop {
            let freed = self.freed.notified();
            match self.seat(stream, peer) {
                Some(waiting) => stream = waiting,
                None => return,
            }
            // A slot also frees when a connection has been idle long enough to give up its
            // place: look again now and then.
            let _ = tokio::time::timeout(EVICT_IDLE / 4, freed).await;
        }
    }

    /// Gives `stream` its place, or refuses it; gives it back when it must wait.
    fn seat(&self, stream: UnixStream, peer: Option<i32>) -> Option<UnixStream> {
        let mut slots = lock(&self.slots);
        match slots.place(peer) {
            Place::Free => {}
            Place::Evict(id) => {
                if let Some(evicted) = slots.open.remove(&id) {
                    evicted.abort.abort();
                }
            }
            Place::Wait => return Some(stream),
            Place::Refuse(why) => {
                tokio::spawn(refuse(stream, why));
                return None;
            }
        }
        self.open(&mut slots, stream, peer);
        None
    }

    /// Serves `stream` in a slot of its own (the caller made room).
    fn open(&self, slots: &mut Slots, stream: UnixStream, peer: Option<i32>) {
        let id = slots.next;
        slots.next += 1;
        let guard = SlotGuard {
            id,
            slots: self.slots.clone(),
            freed: self.freed.clone(),
        };
        let server = self.clone();
        // The slot is inserted before the task can end and remove it: the lock is held.
        let task = tokio::spawn(async move {
            let _guard = guard;
            server.connection(id, stream).await;
        });
        slots.open.insert(
            id,
            Slot {
                active: Instant::now(),
                busy: false,
                peer,
                abort: task.abort_handle(),
            },
        );
    }

    fn mark(&self, id: u64, busy: bool) {
        if let Some(slot) = lock(&self.slots).open.get_mut(&id) {
            slot.busy = busy;
            slot.active = Instant::now();
        }
    }

    /// Answers one request per line until the client leaves, idles, or misbehaves.
    async fn connection(&self, id: u64, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let reading = read_line(&mut reader, &self.large);
            // A large line's turn is held until it is answered: its request holds its text.
            let (line, _turn) = match tokio::time::timeout(IDLE_TIMEOUT, reading).await {
                Err(_) | Ok(Err(_) | Ok(Line::End)) => return,
                Ok(Ok(Line::TooLong)) => {
                    let refusal = Response::refused(format!(
                        "the request is longer than {}; the connection is closed",
                        size(MAX_REQUEST)
                    ));
                    let _ = send(&mut write, &refusal).await;
                    return;
                }
                Ok(Ok(Line::Complete(line, turn))) => (line, turn),
            };
            self.mark(id, true);
            let response = match parse_request(&line) {
                Ok(request) => self.handler.answer(request).await,
                Err(why) => Response::refused(why),
            };
            if send(&mut write, &response).await.is_err() {
                return;
            }
            self.mark(id, false);
        }
    }
}

/// A request line as read.
enum Line {
    /// A whole line, without its newline, with its turn as a large line when it is one.
    Complete(Vec<u8>, Option<OwnedSemaphorePermit>),
    /// The client closed the connection.
    End,
    /// More than [`MAX_REQUEST`] bytes without a newline; the rest is not read.
    TooLong,
}

/// Reads up to a newline, never holding more than [`MAX_REQUEST`] bytes of it, nor more than
/// [`SMALL_REQUEST`] without a turn among the `large` lines.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    large: &Arc<Semaphore>,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut turn = None;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(Line::End);
        }
        let (taken, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        if line.len() + taken > MAX_REQUEST + 1 {
            return Ok(Line::TooLong);
        }
        if turn.is_none() && line.len() + taken > SMALL_REQUEST + 1 {
            // The semaphore is never closed.
            turn = Some(
                large
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(std::io::Error::other)?,
            );
            continue;
        }
        line.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if done {
            line.pop();
            return Ok(Line::Complete(line, turn));
        }
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(response).unwrap_or_default();
    out.push(b'\n');
    tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Tells a client there is no room for it, and closes the connection.
async fn refuse(stream: UnixStream, why: String) {
    let (_, mut write) = stream.into_split();
    let _ = send(&mut write, &Response::refused(why)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot of process `peer`, answering a request or idle for `idle`.
    fn slot(peer: i32, busy: bool, idle: Duration) -> Slot {
        let task = tokio::spawn(std::future::pending::<()>());
        Slot {
            active: Instant::now() - idle,
            busy,
            peer: Some(peer),
            abort: task.abort_handle(),
        }
    }

    fn slots(open: impl IntoIterator<Item = Slot>) -> Slots {
        let open: BTreeMap<u64, Slot> = (0..).zip(open).collect();
        Slots {
            next: open.len() as u64,
            open,
        }
    }

    #[tokio::test]
    async fn a_crowd_waits_its_turn_and_only_a_flooding_process_is_refused() {
        let moment = Duration::from_millis(100);
        let every = i32::try_from(MAX_CONNECTIONS).unwrap();
        // Room: in.
        let some = slots((0..10).map(|i| slot(i, true, moment)));
        assert!(matches!(some.place(Some(100)), Place::Free));

        // Every slot answering a request, each of another process: the newcomer waits.
        let full = slots((0..every).map(|i| slot(i, true, moment)));
        assert!(matches!(full.place(Some(10_000)), Place::Wait));
        // Idle a moment (a follower between two polls): still waits, nobody is cut off.
        let between = slots((0..every).map(|i| slot(i, i == 7, moment)));
        assert!(matches!(between.place(Some(10_000)), Place::Wait));
        // Idle past EVICT_IDLE: its place goes to the newcomer.
        let idle = slots((0..every).map(|i| slot(i, i != 7, EVICT_IDLE + moment)));
        assert!(matches!(idle.place(Some(10_000)), Place::Evict(7)));

        // One process at its bound: its idlest connection makes room for its next one...
        let mut mine: Vec<Slot> = (0..MAX_PER_PROCESS)
            .map(|_| slot(42, true, moment))
            .collect();
        mine[3].busy = false;
        assert!(matches!(slots(mine).place(Some(42)), Place::Evict(3)));
        // ...and when all of them are answering, its next one is refused, saying why,
        // while another process still gets in.
        let flood = slots((0..MAX_PER_PROCESS).map(|_| slot(42, true, moment)));
        match flood.place(Some(42)) {
            Place::Refuse(why) => assert!(why.contains("process 42 has 8 requests"), "{why}"),
            _ => panic!("a ninth connection of a flooding process was let in"),
        }
        assert!(matches!(flood.place(Some(43)), Place::Free));
    }
}
