//! A `/api/events` client on its own thread, stamping each event when it arrives.

use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::client::Conn;

const TIMEOUT: Duration = Duration::from_secs(60);

/// One event, as the API sends it, and when it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub job: String,
    pub execution: String,
    /// `None` for a cancel request.
    pub status: Option<String>,
}

impl Seen {
    pub fn is(&self, job: &str, execution: &str, status: &str) -> bool {
        self.job == job && self.execution == execution && self.status.as_deref() == Some(status)
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("success" | "failure" | "cancelled")
        )
    }
}

#[derive(Deserialize)]
struct Wire {
    payload: Payload,
}

#[derive(Deserialize)]
struct Payload {
    job_id: String,
    execution_id: String,
    status: Option<String>,
}

pub struct Events {
    seen: Receiver<Seen>,
}

impl Events {
    /// Connects; events published from the moment this returns are seen.
    pub fn open(socket: &Path) -> Self {
        let mut conn = Conn::open_stream(socket, "/api/events").expect("GET /api/events");
        let (sender, seen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            // Ends with the stream (the daemon stops) or when nobody listens any more.
            let ended = conn.chunks(|data| {
                let at = Instant::now();
                for piece in data.split_inclusive(|b| *b == b'\n') {
                    line.extend_from_slice(piece);
                    if !line.ends_with(b"\n") {
                        continue;
                    }
                    let wire: Wire = serde_json::from_slice(&line).expect("an event");
                    line.clear();
                    let event = Seen {
                        at,
                        job: wire.payload.job_id,
                        execution: wire.payload.execution_id,
                        status: wire.payload.status,
                    };
                    if sender.send(event).is_err() {
                        return false;
                    }
                }
                true
            });
            if let Err(e) = ended {
                eprintln!("e2e: the event stream failed: {e}");
            }
        });
        Self { seen }
    }

    /// The next event that satisfies `wanted`, skipping others.
    pub fn wait(&self, wanted: impl Fn(&Seen) -> bool) -> io::Result<Seen> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(seen) if wanted(&seen) => return Ok(seen),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::other(format!(
                        "no awaited event within {TIMEOUT:?}"
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::other("the event stream ended"));
                }
            }
        }
    }

    /// Forgets the events received so far.
    pub fn drain(&self) {
        while self.seen.try_recv().is_ok() {}
    }
}
