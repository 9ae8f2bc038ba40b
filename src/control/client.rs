//! The client side: used by commands run from another terminal.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{MAX_REQUEST, Request, Response};
use super::socket_path;

/// The longest answer read: a report of a very large run fits many times over; a process that
/// sends more is not a drctl.
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// A connection to a live drctl process.
pub struct Connection {
    stream: UnixStream,
}

/// Connects to the live process owning the store in `state_dir`, if there is one, and checks
/// that it answers. A socket can accept a connection and never answer: when a drctl is killed
/// while it spawns a step's process, the child holds a copy of the listening socket until its
/// exec closes it, and the connection is then reset. Such a socket counts as no live process;
/// the store's lock decides who owns the store. A process that refuses the connection (every
/// slot busy) is not there for this command either, for now: the caller may try again.
pub fn connect(state_dir: &Path) -> Option<Connection> {
    let path = socket_path(state_dir);
    let stream = UnixStream::connect(&path).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut connection = Connection { stream };
    let answer = connection.call(&Request::Active).ok()?;
    answer.ok.then_some(connection)
}

impl Connection {
    /// Sends one request and reads the answer.
    pub fn call(&mut self, request: &Request) -> std::io::Result<Response> {
        let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
        if line.len() > MAX_REQUEST {
            return Err(std::io::Error::other(format!(
                "the request is longer than the {} KiB the live process reads; shorten the comment",
                MAX_REQUEST / 1024
            )));
        }
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        let mut answer = String::new();
        BufReader::new((&self.stream).take(MAX_ANSWER)).read_line(&mut answer)?;
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    }
}
