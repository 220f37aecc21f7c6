//! `ui`: a loopback HTTP bridge to the socket, so a browser can open the web UI.
//!
//! The API has no authentication, so the bridge guards against the two ways a web
//! page in the same browser could reach it: requests from another origin (a form
//! posting to `/api/jobs/run`) and DNS rebinding (a foreign `Host` header).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyperlocal::UnixConnector;
use servitor_shared::api::ErrorBody;
use tokio::net::TcpListener;

use crate::client::Client;
use crate::error::CliError;
use crate::output;

type Body = Either<Incoming, Full<Bytes>>;

struct Bridge {
    socket: PathBuf,
    http: HttpClient<UnixConnector, Incoming>,
    /// `Host` values a request may carry; any when remote access is allowed.
    hosts: Option<Vec<String>>,
}

pub async fn run(
    client: &Client,
    listen: SocketAddr,
    allow_remote: bool,
) -> Result<ExitCode, CliError> {
    if !listen.ip().is_loopback() && !allow_remote {
        return Err(CliError::Invalid(format!(
            "refusing to listen on {listen}, which is not a loopback address: there is no authentication, \
             so anyone who can reach it could run every job (add --allow-remote if that is what you want)"
        )));
    }
    if !client.serves("/").await? {
        return Err(CliError::Invalid(
            "servitord serves no web UI: start it with SERVITOR_UI_ROOT (or --ui-root) set to the UI's folder, \
             e.g. the repository's ui/"
                .into(),
        ));
    }
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        CliError::Invalid(format!(
            "cannot listen on {listen}: {e} (choose another with --listen)"
        ))
    })?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: the web UI is reachable from the network at {bound}, without authentication"
        );
    }
    let bridge = Arc::new(Bridge {
        socket: client.socket().to_owned(),
        http: HttpClient::builder(TokioExecutor::new()).build(UnixConnector),
        hosts: (!allow_remote).then(|| loopback_hosts(bound)),
    });
    output::line(format!("Servitor web UI: http://{bound}/ (Ctrl-C to stop)"))?;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("warning: cannot accept a connection: {e}");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let bridge = Arc::clone(&bridge);
                async move { Ok::<_, Infallible>(bridge.forward(request).await) }
            });
            // A browser closing its connection is not worth a word.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Bridge {
    async fn forward(&self, mut request: Request<Incoming>) -> Response<Body> {
        if let Err(why) = self.check(&request) {
            return refuse(StatusCode::FORBIDDEN, why);
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = hyperlocal::Uri::new(&self.socket, &path).into();
        match self.http.request(request).await {
            Ok(response) => response.map(Either::Left),
            Err(e) => refuse(
                StatusCode::BAD_GATEWAY,
                format!("cannot reach servitord at {}: {e}", self.socket.display()),
            ),
        }
    }

    /// Only requests for this bridge's own address, from its own pages.
    fn check(&self, request: &Request<Incoming>) -> Result<(), String> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(hosts) = &self.hosts
            && !hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
        {
            return Err(format!("refused: unexpected Host {host:?}"));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && origin
                != HeaderValue::from_str(&format!("http://{host}"))
                    .unwrap_or(HeaderValue::from_static("-"))
        {
            return Err(format!(
                "refused: a request from another origin ({origin:?})"
            ));
        }
        Ok(())
    }
}

/// The `Host` values that name a loopback address and port.
fn loopback_hosts(bound: SocketAddr) -> Vec<String> {
    let port = bound.port();
    vec![
        bound.to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ]
}

fn refuse(status: StatusCode, message: String) -> Response<Body> {
    let body = serde_json::to_vec(&ErrorBody { message }).unwrap_or_default();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
