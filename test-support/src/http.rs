//! A small blocking HTTP/1.1 client over a UNIX socket, written here rather than taken
//! from a crate so that tests control every byte: raw and malformed requests, bodies on
//! keep-alive connections, and chunked answers read one chunk at a time as they arrive.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use servitor_shared::Event;

use super::wait::TIMEOUT;

/// One connection; requests on it are kept alive.
pub struct Connection {
    stream: UnixStream,
    /// Bytes read from the socket and not yet parsed.
    buffer: Vec<u8>,
}

/// A status line and headers.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A chunked answer read as it arrives (log follow, `/api/events`).
pub struct Stream {
    connection: Connection,
    pub head: Head,
    /// Every body byte received so far.
    pub received: Vec<u8>,
    ended: bool,
}

impl Head {
    /// The first header with this name, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    /// The body as `T`; panics with the body when it does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not the expected JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as a JSON value (key order as sent).
    pub fn value(&self) -> serde_json::Value {
        self.json()
    }

    /// The `message` of an error answer, after checking it is one with this status.
    #[track_caller]
    pub fn error_message(&self, status: u16) -> String {
        assert_eq!(self.status, status, "answer: {}", self.text());
        self.assert_json();
        let body: servitor_shared::api::ErrorBody = self.json();
        body.message
    }

    /// Checks the headers every JSON answer has.
    #[track_caller]
    pub fn assert_json(&self) {
        assert_eq!(
            self.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{self:?}"
        );
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str()),
            "{self:?}"
        );
        assert_eq!(self.header("transfer-encoding"), None, "{self:?}");
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Connection {
    pub fn open(socket: &Path) -> io::Result<Self> {
        Ok(Self {
            stream: UnixStream::connect(socket)?,
            buffer: Vec::new(),
        })
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request; a body gets its `Content-Length`.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes)
    }

    /// Sends a request without body and reads its whole answer.
    pub fn request(&mut self, method: &str, target: &str) -> io::Result<Response> {
        self.send(method, target, &[], b"")?;
        self.response(method == "HEAD")
    }

    /// Reads a whole answer (`Content-Length`, chunked, or up to the end of the connection).
    pub fn response(&mut self, to_head_request: bool) -> io::Result<Response> {
        let deadline = Instant::now() + TIMEOUT;
        let head = self.head(deadline)?;
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let length = head.header("content-length").map(str::parse::<usize>);
        let body = if to_head_request || matches!(head.status, 100..=199 | 204 | 304) {
            Vec::new()
        } else if chunked {
            let mut body = Vec::new();
            while let Some(chunk) = self.chunk(deadline)? {
                body.extend(chunk);
            }
            body
        } else if let Some(length) = length {
            let length = length.map_err(|e| invalid(format!("bad Content-Length: {e}")))?;
            while self.buffer.len() < length {
                self.fill(deadline)?;
            }
            self.buffer.drain(..length).collect()
        } else {
            loop {
                match self.fill(deadline) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            std::mem::take(&mut self.buffer)
        };
        Ok(Response {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Reads a status line and headers.
    pub fn head(&mut self, deadline: Instant) -> io::Result<Head> {
        let end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            self.fill(deadline)?;
        };
        let text = String::from_utf8(self.buffer[..end].to_vec())
            .map_err(|_| invalid("a head that is not UTF-8".into()))?;
        self.buffer.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        Ok(Head { status, headers })
    }

    /// The next chunk of a chunked body, `None` after the last one. On a timeout nothing
    /// is consumed, so the caller may try again.
    fn chunk(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(line_end) = find(&self.buffer, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
                let size_text = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
                let start = line_end + 2;
                if size == 0 {
                    // The last chunk, then (no) trailers and an empty line.
                    if let Some(end) = find(&self.buffer[line_end..], b"\r\n\r\n") {
                        self.buffer.drain(..line_end + end + 4);
                        return Ok(None);
                    }
                } else if self.buffer.len() >= start + size + 2 {
                    if &self.buffer[start + size..start + size + 2] != b"\r\n" {
                        return Err(invalid("a chunk not followed by CRLF".into()));
                    }
                    let chunk = self.buffer[start..start + size].to_vec();
                    self.buffer.drain(..start + size + 2);
                    return Ok(Some(chunk));
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Reads more bytes; `TimedOut` at the deadline, `UnexpectedEof` when the peer closed.
    fn fill(&mut self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut bytes = [0; 16 * 1024];
        match self.stream.read(&mut bytes) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.buffer.extend_from_slice(&bytes[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {
                Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the head of a streamed answer sent earlier with `send`.
    pub fn into_stream(mut self) -> io::Result<Stream> {
        let head = self.head(Instant::now() + TIMEOUT)?;
        Ok(Stream {
            connection: self,
            head,
            received: Vec::new(),
            ended: false,
        })
    }

    /// True when the peer has closed the connection (or does so before `timeout`).
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> bool {
        match self.fill(Instant::now() + timeout) {
            Err(e) => e.kind() != io::ErrorKind::TimedOut,
            Ok(()) => false,
        }
    }
}

impl Stream {
    /// Sends `GET target` and reads the head.
    pub fn open(socket: &Path, target: &str) -> io::Result<Self> {
        let mut connection = Connection::open(socket)?;
        connection.send("GET", target, &[], b"")?;
        connection.into_stream()
    }

    /// The next chunk, `None` once the answer has ended; panics after `timeout`.
    #[track_caller]
    pub fn next_chunk(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        match self.try_next_chunk(timeout) {
            Ok(chunk) => chunk,
            Err(e) => panic!(
                "no chunk within {timeout:?}: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.received)
            ),
        }
    }

    /// The next chunk, `None` once the answer has ended, `TimedOut` when nothing came.
    pub fn try_next_chunk(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        if self.ended {
            return Ok(None);
        }
        let chunk = self.connection.chunk(Instant::now() + timeout)?;
        match &chunk {
            Some(bytes) => self.received.extend_from_slice(bytes),
            None => self.ended = true,
        }
        Ok(chunk)
    }

    /// Reads until the bytes received so far contain `needle`.
    #[track_caller]
    pub fn read_until(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while find(&self.received, needle.as_bytes()).is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next_chunk(left).is_none() {
                panic!(
                    "the answer ended without {needle:?}: {:?}",
                    String::from_utf8_lossy(&self.received)
                );
            }
        }
    }

    /// Reads until the answer ends; returns every body byte.
    #[track_caller]
    pub fn read_to_end(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            self.next_chunk(left);
        }
        self.received.clone()
    }

    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// The next event; checks that it came whole, as one JSON line in its own chunk.
    #[track_caller]
    pub fn next_event(&mut self, timeout: Duration) -> Event {
        let chunk = self
            .next_chunk(timeout)
            .expect("the event stream ended unexpectedly");
        let line = String::from_utf8(chunk).expect("an event is UTF-8");
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "a chunk of the event stream is not exactly one line: {line:?}"
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line:?}"))
    }

    /// Skips events until one satisfies `wanted`; returns it.
    #[track_caller]
    pub fn wait_event(&mut self, timeout: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next_event(left);
            if wanted(&event) {
                return event;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Percent-encodes a query parameter value (`/` is kept: the daemon decodes `%2F` too).
pub fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
