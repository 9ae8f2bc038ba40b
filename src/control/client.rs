//! The client side: used by commands run from another terminal.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Request, Response};
use super::socket_path;

/// A connection to a live drctl process.
pub struct Connection {
    stream: UnixStream,
}

/// Connects to the live process owning the store in `state_dir`, if there is one. A socket
/// file left by a process that died is removed.
pub fn connect(state_dir: &Path) -> Option<Connection> {
    let path = socket_path(state_dir);
    match UnixStream::connect(&path) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            Some(Connection { stream })
        }
        Err(_) => None,
    }
}

impl Connection {
    /// Sends one request and reads the answer.
    pub fn call(&mut self, request: &Request) -> std::io::Result<Response> {
        let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        let mut answer = String::new();
        BufReader::new(&self.stream).read_line(&mut answer)?;
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    }
}
