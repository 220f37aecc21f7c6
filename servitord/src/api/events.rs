//! `/api/events`: every event, one JSON line per chunk, until the daemon stops.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use super::text_stream;
use crate::app::{App, Counted};

pub async fn stream(State(app): State<Arc<App>>) -> Response {
    let counted = Counted::new(&app.event_clients);
    let state = (app.bus.subscribe(), app.shutdown.clone(), counted);
    let lines = stream::unfold(state, |(mut events, shutdown, counted)| async move {
        let next = tokio::select! {
            () = shutdown.cancelled() => return None,
            next = events.recv() => next,
        };
        match next {
            Ok(published) => Some((
                Ok::<Bytes, Infallible>(published.line.clone()),
                (events, shutdown, counted),
            )),
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
    });
    text_stream(Body::from_stream(lines))
}
