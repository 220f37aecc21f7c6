//! The HTTP API served on the socket: routes, and what every answer has in common.

mod body;
mod error;
mod events;
mod executions;
mod jobs;
mod openapi;
mod params;
pub mod server;
pub mod socket;
mod status;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use servitor_shared::{Peer, api};

pub use self::error::ApiError;
pub use self::params::Params;
use crate::app::App;
use crate::jobs::catalog::{Entry, NotAJob};
use crate::jobs::id::{RunId, parse_execution_id};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(api::JOBS_GET_LIST, get(jobs::list).fallback(only_get))
        .route(api::JOBS_GET, get(jobs::get).fallback(only_get))
        .route(api::JOBS_RUN, post(jobs::run).fallback(only_post))
        .route(api::SCHEDULE_PAUSE, post(jobs::pause).fallback(only_post))
        .route(api::SCHEDULE_RESUME, post(jobs::resume).fallback(only_post))
        .route(
            api::EXECUTIONS_GET_LIST,
            get(executions::list).fallback(only_get),
        )
        .route(api::EXECUTIONS_GET, get(executions::get).fallback(only_get))
        .route(
            api::EXECUTIONS_CANCEL,
            post(executions::cancel).fallback(only_post),
        )
        .route(
            api::EXECUTIONS_LOGS_GET,
            get(executions::logs).fallback(only_get),
        )
        .route(api::EVENTS, get(events::stream).fallback(only_get))
        .route(api::HEALTH, get(status::health).fallback(only_get))
        .route(api::METRICS, get(status::metrics).fallback(only_get))
        .route(api::OPENAPI, get(openapi::get).fallback(only_get))
        .fallback(ui::serve)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            count_requests,
        ))
        .with_state(app)
}

/// Counts every request by route (the matched path: a bounded set of labels) and
/// status code.
async fn count_requests(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let route = ROUTES
        .iter()
        .find(|route| **route == request.uri().path())
        .copied()
        .unwrap_or("other");
    let response = next.run(request).await;
    app.metrics().request(route, response.status().as_u16());
    response
}

/// The API's routes, as metrics labels. Every route of `router` is here, and described
/// in `openapi.json` (a test of `openapi` checks it).
const ROUTES: [&str; 13] = [
    api::JOBS_GET_LIST,
    api::JOBS_GET,
    api::JOBS_RUN,
    api::SCHEDULE_PAUSE,
    api::SCHEDULE_RESUME,
    api::EXECUTIONS_GET_LIST,
    api::EXECUTIONS_GET,
    api::EXECUTIONS_CANCEL,
    api::EXECUTIONS_LOGS_GET,
    api::EVENTS,
    api::HEALTH,
    api::METRICS,
    api::OPENAPI,
];

async fn only_get() -> ApiError {
    ApiError::MethodNotAllowed("GET, HEAD")
}

async fn only_post() -> ApiError {
    ApiError::MethodNotAllowed("POST")
}

/// A JSON answer already serialized.
fn json_bytes(body: bytes::Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A JSON answer, `Content-Type: application/json; charset=utf-8`.
pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("cannot serialize an answer: {e}")).into_response(),
    }
}

/// A streamed text answer (chunked), shown by browsers as it arrives.
fn text_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

impl<S: Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Params::parse(parts.uri.query())
    }
}

/// Who sent the request, as the kernel vouches for it (`None` off the socket).
pub struct Caller(pub Option<Peer>);

impl<S: Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Peer>().copied()))
    }
}

/// The job named by `job_id`, which must be a discovered job.
async fn find_job(app: &App, params: &Params) -> Result<Arc<Entry>, ApiError> {
    let id = params.require(api::PARAM_JOB_ID)?;
    app.catalog().find(id).await.map_err(|e| match e {
        NotAJob::Malformed(why) => ApiError::NotFound(format!("unknown job {id:?}: {why}")),
        NotAJob::Unknown => ApiError::NotFound(format!("unknown job {id:?}")),
    })
}

/// The run named by `job_id` and `execution_id`, of a discovered job. Whether the
/// execution exists is for the caller to find out, in the same step as it reads it:
/// retention may delete it at any moment.
async fn find_run(app: &App, params: &Params) -> Result<(Arc<Entry>, RunId), ApiError> {
    params.require(api::PARAM_JOB_ID)?;
    let execution = parse_execution_id(params.require(api::PARAM_EXECUTION_ID)?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let job = find_job(app, params).await?;
    let run = RunId::new(job.file.id.clone(), execution);
    Ok((job, run))
}

/// The answer for an execution that does not exist (or no longer does).
fn unknown_execution(run: &RunId) -> ApiError {
    ApiError::NotFound(format!(
        "unknown execution {} of job {:?}",
        run.execution, run.job
    ))
}
