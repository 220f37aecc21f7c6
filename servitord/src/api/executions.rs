//! `/api/jobs/executions/*`: listing, reading, cancelling and following runs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use servitor_shared::api::{Acknowledged, PARAM_BEFORE, PARAM_FOLLOW, PARAM_LIMIT};
use servitor_shared::{Event, ExecutionStatus};
use tokio_stream::wrappers::ReceiverStream;

use super::body::IgnoredBody;
use super::params::Params;
use super::{ApiError, Caller, find_execution, find_job, json, text_stream};
use crate::app::App;
use crate::ids;
use crate::queue::Cancelled;

/// Newest first. Servitor adds paging: `limit=N` (at most N) and `before=ID` (only
/// older executions); without them, all of them, as the old tool answered.
pub async fn list(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let limit = match params.get(PARAM_LIMIT) {
        Some(text) => Some(parse_count(text).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let before = match params.get(PARAM_BEFORE) {
        Some(text) => Some(ids::parse_execution_id(text).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let job = find_job(&app, &params)?;
    app.store.preload(&job.file.id).await;
    Ok(json(&app.store.list(&job.file.id, limit, before)))
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if count > 0 && !text.starts_with('+') => Ok(count),
        _ => Err(format!(
            "{PARAM_LIMIT} must be a positive number, not {text:?}"
        )),
    }
}

pub async fn get(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let (job, id) = find_execution(&app, &params).await?;
    let execution = app
        .store
        .get(&job.file.id, id)
        .expect("find_execution checked it exists");
    Ok(json(&execution))
}

/// A queued run ends `cancelled` without starting; a running one has its process
/// group stopped (SIGINT, then SIGKILL after the grace period) by its worker.
pub async fn cancel(
    State(app): State<Arc<App>>,
    Caller(peer): Caller,
    params: Params,
    _body: IgnoredBody,
) -> Result<Response, ApiError> {
    let (job, id) = find_execution(&app, &params).await?;
    let not_running = |status: ExecutionStatus| {
        ApiError::Conflict(format!(
            "execution {id} of job {:?} is not running: it is {status}",
            job.file.id
        ))
    };
    let status = app
        .store
        .status(&job.file.id, id)
        .unwrap_or(ExecutionStatus::Unknown);
    if !matches!(status, ExecutionStatus::Created | ExecutionStatus::Running) {
        return Err(not_running(status));
    }
    app.bus.publish(Event::JobExecutionCancellationRequested {
        job_id: job.file.id.clone(),
        execution_id: id.to_string(),
    });
    tracing::info!(job = %job.file.id, execution = id, by = ?peer, "cancel requested");
    if let Some(peer) = peer {
        app.store.record_cancel_request(&job.file.id, id, peer);
    }
    match app.queue.cancel(&(job.file.id.clone(), id)) {
        Cancelled::WasWaiting => app.runner.end_unstarted(&job.file.id, id),
        Cancelled::Signalled => {}
        Cancelled::NotHere => {
            let status = app
                .store
                .status(&job.file.id, id)
                .unwrap_or(ExecutionStatus::Unknown);
            if status.is_terminal() {
                return Err(not_running(status));
            }
            return Err(ApiError::Unavailable(format!(
                "execution {id} of job {:?} is being recovered after a restart; try again in a moment",
                job.file.id
            )));
        }
    }
    Ok(json(&Acknowledged::success()))
}

/// The log from byte 0; while the run is queued or running, the answer stays open
/// and streams new bytes until the run has ended. With `follow=false` (added by
/// Servitor), it ends at the log's current end instead.
pub async fn logs(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let follow = match params.get(PARAM_FOLLOW) {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "{PARAM_FOLLOW} must be true or false, not {other:?}"
            )));
        }
    };
    let (job, id) = find_execution(&app, &params).await?;
    let chunks = app.follow().stream(job.file.id.clone(), id, follow);
    Ok(text_stream(Body::from_stream(ReceiverStream::new(chunks))))
}
