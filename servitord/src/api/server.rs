//! Serving the API on the socket: a task per connection, HTTP/1.1 with limits that
//! keep hostile or broken clients cheap, and every request tagged with the client's
//! credentials (SO_PEERCRED), the audit trail of who ran and cancelled what.
//!
//! Connections may not starve runs of file descriptors: past the open files limit
//! minus what runs need, the oldest connections are asked to close (at once when idle,
//! after their answer otherwise) to make room for new ones.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use servitor_shared::Peer;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::sync::lock;

/// Most bytes of a request line and headers: longer ones get `431`.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a request: more get `431`.
pub const MAX_HEADERS: usize = 100;
/// How long a client may take to send a request's line and headers (slowloris); an
/// idle kept-alive connection is closed after this long too.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors kept back from connections for runs (a log, the child's
/// descriptors, the state files).
const RESERVED_FDS: u64 = 256;
/// And for each worker: its thread's runtime (an epoll, its waker, the signal pipe)
/// and the pidfd of its running child.
const FDS_PER_WORKER: u64 = 5;
/// How long to wait after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Open connections, oldest first, each with the bell that asks it to close.
#[derive(Default)]
struct Open {
    next: u64,
    connections: VecDeque<(u64, Arc<Notify>)>,
}

/// Serves `router` on `listener` until `shutdown`, then stops accepting at once and
/// returns the connections' tasks, which end once their answers are done. `workers`
/// tells how many file descriptors the runs need.
pub async fn serve(
    listener: UnixListener,
    router: Router,
    workers: usize,
    shutdown: CancellationToken,
) -> TaskTracker {
    let reserved = RESERVED_FDS + FDS_PER_WORKER * workers as u64;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let tasks = TaskTracker::new();
    let open = Arc::new(Mutex::new(Open::default()));
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
        let (id, close) = admit(&open, reserved);
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
        let (open, shutdown) = (Arc::clone(&open), shutdown.clone());
        tasks.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!("connection ended: {e}");
                        }
                        break;
                    }
                    () = close.notified(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    () = shutdown.cancelled(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            lock(&open).connections.retain(|(other, _)| *other != id);
        });
    }
    drop(listener);
    tasks.close();
    tasks
}

/// Registers a new connection, first asking the oldest ones to close while there are
/// as many as the open files limit allows.
fn admit(open: &Mutex<Open>, reserved: u64) -> (u64, Arc<Notify>) {
    let cap = connection_cap(reserved);
    let mut open = lock(open);
    while open.connections.len() as u64 >= cap {
        let Some((_, oldest)) = open.connections.pop_front() else {
            break;
        };
        oldest.notify_one();
    }
    let id = open.next;
    open.next += 1;
    let close = Arc::new(Notify::new());
    open.connections.push_back((id, Arc::clone(&close)));
    (id, close)
}

/// How many connections may be open: the open files limit minus what runs need.
fn connection_cap(reserved: u64) -> u64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(u64::MAX, |current| current.saturating_sub(reserved).max(1))
}
