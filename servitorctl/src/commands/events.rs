//! `events`: servitord's event stream, and the reader `run --wait` uses too.

use std::process::ExitCode;

use bytes::{Buf, BytesMut};
use hyper::body::Incoming;
use jiff::Timestamp;
use servitor_shared::Event;
use servitor_shared::api::EVENTS;

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, json: bool) -> Result<ExitCode, CliError> {
    let mut events = EventStream::open(client).await?;
    while let Some(line) = events.next_line(client).await? {
        if json {
            output::write(&line)?;
            continue;
        }
        let time = output::local(Timestamp::now());
        let text = match serde_json::from_slice::<Event>(&line) {
            Ok(Event::JobExecutionStatusChanged {
                job_id,
                execution_id,
                status,
            }) => format!("{time}  {job_id} #{execution_id}  {status}"),
            Ok(Event::JobExecutionCancellationRequested {
                job_id,
                execution_id,
            }) => {
                format!("{time}  {job_id} #{execution_id}  cancel requested")
            }
            // An event this version does not know: show it as it came.
            Err(_) => format!("{time}  {}", String::from_utf8_lossy(&line).trim_end()),
        };
        output::line(text)?;
    }
    Err(CliError::Lost {
        socket: client.socket().to_owned(),
        reason: "the event stream ended".into(),
    })
}

/// `/api/events`, one line at a time (a line may arrive split or joined with others).
pub struct EventStream {
    body: Incoming,
    pending: BytesMut,
}

impl EventStream {
    pub async fn open(client: &Client) -> Result<Self, CliError> {
        Ok(Self {
            body: client.open(EVENTS, &[]).await?,
            pending: BytesMut::new(),
        })
    }

    /// The next line, newline included; `None` when the stream ends.
    pub async fn next_line(&mut self, client: &Client) -> Result<Option<BytesMut>, CliError> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                return Ok(Some(self.pending.split_to(end + 1)));
            }
            match client.next_chunk(&mut self.body).await? {
                Some(chunk) => self.pending.extend_from_slice(chunk.chunk()),
                None => return Ok(None),
            }
        }
    }

    /// The next event this version understands; `None` when the stream ends.
    pub async fn next(&mut self, client: &Client) -> Result<Option<Event>, CliError> {
        while let Some(line) = self.next_line(client).await? {
            if let Ok(event) = serde_json::from_slice(&line) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}
