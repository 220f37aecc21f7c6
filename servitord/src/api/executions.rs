//! `/api/jobs/executions/*`: listing, reading, cancelling and following runs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use servitor_shared::api::{Acknowledged, PARAM_BEFORE, PARAM_FOLLOW, PARAM_LIMIT};
use tokio_stream::wrappers::ReceiverStream;

use super::body::IgnoredBody;
use super::params::Params;
use super::{ApiError, Caller, find_job, find_run, json, text_stream, unknown_execution};
use crate::app::App;
use crate::jobs::id::parse_execution_id;
use crate::jobs::settings::ExecutorChoice;
use crate::runs::CancelError;

/// Newest first. Servitor adds paging: `limit=N` (at most N) and `before=ID` (only
/// older executions); without them, all of them, as the old tool answered.
pub async fn list(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let limit = match params.get(PARAM_LIMIT) {
        Some(text) => Some(parse_count(text).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let before = match params.get(PARAM_BEFORE) {
        Some(text) => {
            Some(parse_execution_id(text).map_err(|e| ApiError::BadRequest(e.to_string()))?)
        }
        None => None,
    };
    let job = find_job(&app, &params).await?;
    Ok(json(&app.history().list(&job.file.id, limit, before).await))
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
    let (_, run) = find_run(&app, &params).await?;
    let execution = app
        .history()
        .get(&run)
        .await
        .ok_or_else(|| unknown_execution(&run))?;
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
    let (_, run) = find_run(&app, &params).await?;
    let runs = Arc::clone(app.runs());
    // Recording the request and ending a queued run touch the disk.
    tokio::task::spawn_blocking(move || runs.cancel(&run, peer))
        .await
        .map_err(|e| ApiError::Internal(format!("cancelling failed: {e}")))?
        .map_err(|e| match e {
            CancelError::Unknown(_) => ApiError::NotFound(e.to_string()),
            CancelError::NotRunning { .. } => ApiError::Conflict(e.to_string()),
            CancelError::Recovering(_) => ApiError::Unavailable(e.to_string()),
        })?;
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
    let (job, run) = find_run(&app, &params).await?;
    // Loads the job's history if needed: following reads its status from memory.
    let execution = app
        .history()
        .get(&run)
        .await
        .ok_or_else(|| unknown_execution(&run))?;
    let statuses = app
        .runs()
        .follow(&run)
        .ok_or_else(|| unknown_execution(&run))?;
    // A run on a cluster writes its log from another machine.
    let remote = execution.execution.slurm.is_some()
        || job
            .settings()
            .is_ok_and(|settings| settings.executor != ExecutorChoice::Local);
    let chunks = app
        .follow()
        .stream(statuses, app.history().log_path(&run), follow, remote);
    Ok(text_stream(Body::from_stream(ReceiverStream::new(chunks))))
}
