//! `/api/events`: every event, one JSON line per chunk, until the daemon stops.
//!
//! Every event wakes every client's task, and each writes to its own socket: with a
//! crowd of clients and a fast stream of events, that fan-out would cost more than the
//! runs themselves. So a crowded, busy stream waits a moment after it wakes and sends
//! what arrived meanwhile in one go (hyper writes the ready chunks with one syscall);
//! each event stays a chunk of its own. A lone client, or a quiet stream, is never
//! delayed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use futures_util::stream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::text_stream;
use crate::app::App;
use crate::observe::Counted;
use crate::observe::events::EventBus;

/// Above this many event clients, busy streams batch.
const CROWD: usize = 64;
/// How long a busy stream in a crowd gathers events after it wakes; also what counts
/// as busy: woken again within this time.
const GATHER: Duration = Duration::from_millis(20);

struct Client {
    events: Receiver<Bytes>,
    bus: EventBus,
    shutdown: CancellationToken,
    last_wake: Option<Instant>,
    _counted: Counted,
}

pub async fn stream(State(app): State<Arc<App>>) -> Response {
    let client = Client {
        events: app.bus().subscribe(),
        bus: app.bus().clone(),
        shutdown: app.shutdown().clone(),
        last_wake: None,
        _counted: app.count_event_client(),
    };
    let lines = stream::unfold(client, |mut client| async move {
        let line = client.next().await?;
        Some((Ok::<Bytes, Infallible>(line), client))
    });
    text_stream(Body::from_stream(lines))
}

impl Client {
    /// The next line to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        // What is already there goes out at once, with the chunks before it.
        let next = match self.events.try_recv() {
            Err(TryRecvError::Empty) => {
                let next = tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    next = self.events.recv() => next,
                };
                let now = Instant::now();
                let busy = self.last_wake.is_some_and(|last| now - last < GATHER);
                self.last_wake = Some(now);
                if busy && self.bus.subscribers() > CROWD {
                    tokio::time::sleep(GATHER).await;
                }
                next
            }
            Ok(line) => Ok(line),
            Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
        };
        match next {
            Ok(line) => Some(line),
            // A client this far behind is not reading: drop it rather than hold anything
            // for it. It sees the stream end and can reconnect.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "closing the event stream of a client that stopped reading"
                );
                None
            }
            Err(RecvError::Closed) => None,
        }
    }
}
