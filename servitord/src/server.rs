//! Serving the API on the socket: a task per connection, HTTP/1.1 with limits that
//! keep hostile or broken clients cheap, and every request tagged with the client's
//! credentials (SO_PEERCRED), the audit trail of who ran and cancelled what.

use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use servitor_shared::Peer;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Most bytes of a request line and headers: longer ones get `431`.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a request: more get `431`.
pub const MAX_HEADERS: usize = 100;
/// How long a client may take to send a request's line and headers (slowloris).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown`, then stops accepting at once and
/// returns a handle that waits for the open connections to finish.
pub async fn serve(
    listener: UnixListener,
    router: Router,
    shutdown: CancellationToken,
) -> GracefulShutdown {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let connections = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let peer = stream.peer_cred().ok().map(|cred| Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        });
        let tagged = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                if let Some(peer) = peer {
                    request.extensions_mut().insert(peer);
                }
                request
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(tagged));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    connections
}
