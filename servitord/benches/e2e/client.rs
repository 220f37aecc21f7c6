//! A lean blocking HTTP/1.1 client over the UNIX socket. The tests' client (in
//! `test-support/`) favours control over speed (a read timeout set on every read,
//! copies of every chunk); here the client must cost next to nothing next to what it
//! measures, so it reads into one buffer and hands out chunk data without copying.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Longer than anything the benchmark waits for: only a hung daemon hits it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const BUFFER: usize = 256 * 1024;

pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

/// A whole answer.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A string field of a JSON object answer (`execution_id` of `run`).
    pub fn field(&self, name: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value.get(name)?.as_str().map(str::to_owned)
    }
}

/// How the body of an answer is framed.
enum Framing {
    Length(usize),
    Chunked,
}

impl Conn {
    pub fn open(socket: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Self {
            stream,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
        })
    }

    /// The socket, and the bytes already read from it but not parsed.
    pub fn into_parts(self) -> (UnixStream, Vec<u8>) {
        let buffered = self.buf[self.start..self.end].to_vec();
        (self.stream, buffered)
    }

    pub fn send(&mut self, method: &str, target: &str) -> io::Result<()> {
        let length = if method == "POST" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        let request = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n{length}\r\n");
        self.stream.write_all(request.as_bytes())
    }

    /// One request and its whole answer, on this kept-alive connection.
    pub fn request(&mut self, method: &str, target: &str) -> io::Result<Answer> {
        self.send(method, target)?;
        let (status, framing) = self.head()?;
        let mut body = Vec::new();
        match framing {
            Framing::Length(length) => {
                while self.end - self.start < length {
                    self.fill()?;
                }
                body.extend_from_slice(&self.buf[self.start..self.start + length]);
                self.start += length;
            }
            Framing::Chunked => self.chunks(|data| {
                body.extend_from_slice(data);
                true
            })?,
        }
        Ok(Answer { status, body })
    }

    pub fn get(&mut self, target: &str) -> io::Result<Answer> {
        self.request("GET", target)
    }

    /// Sends `GET target` and reads the head of a streamed answer; its body is read
    /// with `chunks`.
    pub fn open_stream(socket: &Path, target: &str) -> io::Result<Self> {
        let mut conn = Self::open(socket)?;
        conn.send("GET", target)?;
        match conn.head()? {
            (200, Framing::Chunked) => Ok(conn),
            (status, _) => Err(io::Error::other(format!("GET {target}: status {status}"))),
        }
    }

    /// Reads a status line and headers.
    fn head(&mut self) -> io::Result<(u16, Framing)> {
        let end = loop {
            if let Some(at) = find(&self.buf[self.start..self.end], b"\r\n\r\n") {
                break self.start + at;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[self.start..end]).into_owned();
        self.start = end + 4;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.strip_prefix("HTTP/1.1 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad answer head {head:?}")))?;
        let mut framing = Framing::Length(0);
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            if name.eq_ignore_ascii_case("content-length") {
                let length = value.trim().parse().map_err(io::Error::other)?;
                framing = Framing::Length(length);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                framing = Framing::Chunked;
            }
        }
        Ok((status, framing))
    }

    /// Hands each piece of chunk data to `on_data` as soon as it is read, until the
    /// last chunk or until `on_data` returns false.
    pub fn chunks(&mut self, mut on_data: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
        let mut decoder = ChunkDecoder::default();
        loop {
            let (used, step) = decoder.feed(&self.buf[self.start..self.end], &mut on_data)?;
            self.start += used;
            match step {
                Step::Ended | Step::Stopped => return Ok(()),
                Step::More => self.fill()?,
            }
        }
    }

    /// Reads more bytes into the buffer, moving unparsed ones to its front first, or
    /// growing it when it is full.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < BUFFER / 4 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            // A large answer read whole.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Decodes `Transfer-Encoding: chunked` from bytes as they come, in any split.
#[derive(Default)]
pub struct ChunkDecoder {
    /// Data bytes left in the current chunk, then its CRLF.
    left: usize,
    in_data: bool,
}

pub enum Step {
    /// Every byte given was used; more are needed.
    More,
    /// The last chunk was read.
    Ended,
    /// The callback asked to stop.
    Stopped,
}

impl ChunkDecoder {
    /// Feeds bytes; returns how many were used (the rest must be fed again, with more).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        on_data: &mut impl FnMut(&[u8]) -> bool,
    ) -> io::Result<(usize, Step)> {
        let mut at = 0;
        loop {
            if self.in_data {
                let take = self.left.min(bytes.len() - at);
                if take > 0 {
                    self.left -= take;
                    at += take;
                    if !on_data(&bytes[at - take..at]) {
                        return Ok((at, Step::Stopped));
                    }
                }
                if self.left > 0 || bytes.len() - at < 2 {
                    return Ok((at, Step::More));
                }
                at += 2; // the CRLF after the data
                self.in_data = false;
            }
            let Some(line_end) = find(&bytes[at..], b"\r\n") else {
                return Ok((at, Step::More));
            };
            let line = &bytes[at..at + line_end];
            let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|text| usize::from_str_radix(text.trim(), 16).ok())
                .ok_or_else(|| io::Error::other("bad chunk size line"))?;
            if size == 0 {
                // No trailers are sent: the last chunk is followed by one empty line.
                if bytes.len() - at < line_end + 4 {
                    return Ok((at, Step::More));
                }
                return Ok((at + line_end + 4, Step::Ended));
            }
            at += line_end + 2;
            self.left = size;
            self.in_data = true;
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
