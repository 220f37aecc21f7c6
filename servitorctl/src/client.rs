//! HTTP over servitord's UNIX socket: the only place that knows about the transport.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use servitor_shared::api::ErrorBody;

use crate::error::CliError;

/// Everything but RFC 3986's unreserved characters is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Query parameters, in order.
pub type Query<'a> = &'a [(&'a str, &'a str)];

pub struct Client {
    socket: PathBuf,
    http: HttpClient<UnixConnector, Empty<Bytes>>,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            http: HttpClient::builder(TokioExecutor::new()).build(UnixConnector),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Query<'_>,
    ) -> Result<T, CliError> {
        let response = self.send(Method::GET, path, query).await?;
        self.read_json(response).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Query<'_>,
    ) -> Result<T, CliError> {
        let response = self.send(Method::POST, path, query).await?;
        self.read_json(response).await
    }

    /// A `GET` whose answer is JSON of type `T` whatever its status code (`/api/health`
    /// answers `503` while the daemon starts).
    pub async fn get_any<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let response = self.request(Method::GET, path, &[]).await?;
        self.read_json(response).await
    }

    /// Whether a `GET` of `path` succeeds.
    pub async fn serves(&self, path: &str) -> Result<bool, CliError> {
        match self.send(Method::GET, path, &[]).await {
            Ok(_) => Ok(true),
            Err(CliError::Refused { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts a streamed `GET` (a log, the events); read it with `next_chunk`.
    pub async fn open(&self, path: &str, query: Query<'_>) -> Result<Incoming, CliError> {
        Ok(self.send(Method::GET, path, query).await?.into_body())
    }

    /// The next bytes of a streamed answer; `None` at its end.
    pub async fn next_chunk(&self, body: &mut Incoming) -> Result<Option<Bytes>, CliError> {
        loop {
            match body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(self.lost(&e)),
            }
        }
    }

    /// Sends a request; any answer but a success becomes `Refused` with its message.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
    ) -> Result<Response<Incoming>, CliError> {
        let response = self.request(method, path, query).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.lost(&e))?
            .to_bytes();
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|error| error.message)
            .unwrap_or_else(|_| format!("servitord answered {status}"));
        Err(CliError::Refused { message })
    }

    /// Sends a request and returns whatever servitord answers.
    async fn request(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
    ) -> Result<Response<Incoming>, CliError> {
        let uri: hyper::Uri =
            hyperlocal::Uri::new(&self.socket, &path_and_query(path, query)).into();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Empty::new())
            .map_err(|e| CliError::Other(format!("cannot build a request: {e}")))?;
        self.http.request(request).await.map_err(|e| {
            let reason = root_cause(&e);
            if e.is_connect() {
                CliError::Unreachable {
                    socket: self.socket.clone(),
                    reason,
                }
            } else {
                CliError::Lost {
                    socket: self.socket.clone(),
                    reason,
                }
            }
        })
    }

    async fn read_json<T: DeserializeOwned>(
        &self,
        response: Response<Incoming>,
    ) -> Result<T, CliError> {
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.lost(&e))?
            .to_bytes();
        serde_json::from_slice(&body)
            .map_err(|e| CliError::Other(format!("unexpected answer from servitord: {e}")))
    }

    fn lost(&self, error: &(dyn std::error::Error + 'static)) -> CliError {
        CliError::Lost {
            socket: self.socket.clone(),
            reason: root_cause(error),
        }
    }
}

pub fn path_and_query(path: &str, query: Query<'_>) -> String {
    let mut text = path.to_owned();
    for (at, (name, value)) in query.iter().enumerate() {
        text.push(if at == 0 { '?' } else { '&' });
        text.push_str(name);
        text.push('=');
        text.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    text
}

/// The innermost cause ("Connection refused"), which is what a person can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    servitor_shared::os::error_text(cause)
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_queries() {
        assert_eq!(
            super::path_and_query(
                "/api/jobs/run",
                &[("job_id", "a/b c"), ("input_value_X", "1&2=ü")]
            ),
            "/api/jobs/run?job_id=a%2Fb%20c&input_value_X=1%262%3D%C3%BC"
        );
        assert_eq!(super::path_and_query("/api/events", &[]), "/api/events");
    }
}
