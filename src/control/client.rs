//! The client side: used by commands run from another terminal.
//!
//! A busy process is waited for, not given up on (SPEC §5.8.6, §11): a process answering a
//! crowd of clients takes newcomers in turn, so an answer may be a while coming. After
//! [`BUSY_NOTICE`] the client says it is waiting; after [`BUSY_PATIENCE`] it gives up, saying
//! why. A client concludes that no process serves the store only when nothing listens on its
//! socket.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::protocol::{
    Active, Envelope, MAX_REQUEST, Reply, Request, Response, parse_response, size,
};
use super::socket_path;

/// The longest answer read: a report of a very large run fits many times over; a process that
/// sends more is not a drctl.
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// How long a client waits for an answer before it says that it is waiting.
pub const BUSY_NOTICE: Duration = Duration::from_secs(30);

/// How long a client waits for an answer before it gives up.
pub const BUSY_PATIENCE: Duration = Duration::from_mins(5);

/// How often a wait for an answer wakes up, to say it waits or to give up.
const WAKE: Duration = Duration::from_millis(500);

/// How many times a connection closed before its first answer is tried again, and the pause
/// between tries (see [`connect`]).
const RESETS: u32 = 20;
const RESET_PAUSE: Duration = Duration::from_millis(50);

/// A connection to a live drctl process.
pub struct Connection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    path: PathBuf,
    active: Active,
}

/// How a connection's first exchange failed.
enum Opening {
    /// The connection was closed before an answer: try again.
    Closed,
    /// Anything else: this is the command's error.
    Failed(std::io::Error),
}

/// Connects to the live process owning the store in `state_dir`. `Ok(None)` when there is
/// none this command can reach: no socket, nothing listening on it (left by a process that
/// died), or no way to it (not a directory, another user's).
///
/// A connection closed before its first answer is tried again, [`RESETS`] times: a socket can
/// accept a connection and close it unanswered when a drctl is killed while it spawns a step's
/// process (the child holds a copy of the listening socket until its exec closes it), or when
/// the process is ending. Past that, it counts as no live process: the store's lock decides.
/// A process that refuses the connection, or does not answer within [`BUSY_PATIENCE`], is an
/// error that says why.
pub fn connect(state_dir: &Path) -> std::io::Result<Option<Connection>> {
    let path = socket_path(state_dir);
    let mut closed = 0;
    loop {
        // No socket, nothing listening on it, or no way to it: no live process that this
        // command could reach; opening the store tells what there is.
        let Ok(stream) = UnixStream::connect(&path) else {
            return Ok(None);
        };
        match Connection::open(stream, &path) {
            Ok(connection) => return Ok(Some(connection)),
            Err(Opening::Closed) if closed < RESETS => {
                closed += 1;
                std::thread::sleep(RESET_PAUSE);
            }
            Err(Opening::Closed) => return Ok(None),
            Err(Opening::Failed(e)) => return Err(e),
        }
    }
}

impl Connection {
    /// Asks the process on `stream` what it is.
    fn open(stream: UnixStream, path: &Path) -> Result<Self, Opening> {
        let failed = Opening::Failed;
        stream.set_read_timeout(Some(WAKE)).map_err(failed)?;
        stream
            .set_write_timeout(Some(BUSY_PATIENCE))
            .map_err(failed)?;
        let reader = BufReader::new(stream.try_clone().map_err(failed)?);
        let mut connection = Connection {
            writer: stream,
            reader,
            path: path.to_path_buf(),
            active: Active::default(),
        };
        let answer = match connection.call(&Request::Active) {
            Ok(answer) => answer,
            Err(e) if is_closed(&e) => return Err(Opening::Closed),
            Err(e) => return Err(Opening::Failed(e)),
        };
        connection.active = match answer.into_result() {
            Ok(Reply::Active(active)) => active,
            Ok(other) => {
                return Err(Opening::Failed(std::io::Error::other(format!(
                    "the process on {} answered {other:?} to who it is: it is not a drctl of this version",
                    path.display()
                ))));
            }
            Err(refusal) => {
                return Err(Opening::Failed(std::io::Error::other(format!(
                    "it refused the connection: {}",
                    refusal.error
                ))));
            }
        };
        Ok(connection)
    }

    /// What the live process said it is when this connection was made.
    pub fn active(&self) -> &Active {
        &self.active
    }

    /// Sends one request and reads the answer, waiting as long as the process is busy (up to
    /// [`BUSY_PATIENCE`], saying so after [`BUSY_NOTICE`]).
    pub fn call(&mut self, request: &Request) -> std::io::Result<Response> {
        let mut line = serde_json::to_string(&Envelope::new(request.clone()))
            .map_err(std::io::Error::other)?;
        if line.len() > MAX_REQUEST {
            return Err(std::io::Error::other(format!(
                "the request is {} long, more than the {} the live process reads (a workflow or a comment that long is refused)",
                size(line.len()),
                size(MAX_REQUEST)
            )));
        }
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let answer = self.answer()?;
        Ok(parse_response(&answer))
    }

    /// Reads one answer line, through the read timeouts of a busy process.
    fn answer(&mut self) -> std::io::Result<Vec<u8>> {
        let began = Instant::now();
        let mut noticed = false;
        let mut answer = Vec::new();
        loop {
            let room = MAX_ANSWER.saturating_sub(answer.len() as u64);
            match (&mut self.reader).take(room).read_until(b'\n', &mut answer) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(_) if answer.ends_with(b"\n") => return Ok(answer),
                // Cut off: the process closed the connection, or sent more than an answer.
                Ok(_) => return Err(ErrorKind::UnexpectedEof.into()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let waited = began.elapsed();
                    if waited >= BUSY_PATIENCE {
                        return Err(std::io::Error::new(
                            ErrorKind::TimedOut,
                            format!(
                                "{} took the request but gave no answer in {} s",
                                self.who(),
                                waited.as_secs()
                            ),
                        ));
                    }
                    if waited >= BUSY_NOTICE && !noticed {
                        noticed = true;
                        tracing::warn!(
                            "waiting for {} to answer: it is busy serving other clients ({} s so far; giving up after {} s)",
                            self.who(),
                            waited.as_secs(),
                            BUSY_PATIENCE.as_secs()
                        );
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The live process, in words.
    fn who(&self) -> String {
        match (self.active.pid, self.active.agent) {
            (0, _) => format!("the drctl process on {}", self.path.display()),
            (pid, true) => format!("drctl serve (pid {pid})"),
            (pid, false) => format!("the drctl process driving runs here (pid {pid})"),
        }
    }
}

/// Whether `e` says the connection was closed under the request.
fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}
