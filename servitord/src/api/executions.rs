//! `/api/jobs/executions/*`: listing, reading, cancelling and following runs.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use servitor_shared::api::Acknowledged;
use servitor_shared::{Event, ExecutionStatus};
use tokio_stream::wrappers::ReceiverStream;

use super::params::Params;
use super::{ApiError, find_execution, find_job, json, text_stream};
use crate::app::App;
use crate::queue::Cancelled;

pub async fn list(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let job = find_job(&app, &params)?;
    app.store.preload(&job.id).await;
    Ok(json(&app.store.list(&job.id)))
}

pub async fn get(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let (job, id) = find_execution(&app, &params).await?;
    let execution = app
        .store
        .get(&job.id, id)
        .expect("find_execution checked it exists");
    Ok(json(&execution))
}

/// A queued run ends `cancelled` without starting; a running one has its process
/// group stopped (SIGINT, then SIGKILL after the grace period) by its worker.
pub async fn cancel(
    State(app): State<Arc<App>>,
    params: Params,
    _body: Bytes,
) -> Result<Response, ApiError> {
    let (job, id) = find_execution(&app, &params).await?;
    let not_running = |status: ExecutionStatus| {
        ApiError::Conflict(format!(
            "execution {id} of job {:?} is not running: it is {status}",
            job.id
        ))
    };
    let status = app
        .store
        .status(&job.id, id)
        .unwrap_or(ExecutionStatus::Unknown);
    if !matches!(status, ExecutionStatus::Created | ExecutionStatus::Running) {
        return Err(not_running(status));
    }
    app.bus.publish(Event::JobExecutionCancellationRequested {
        job_id: job.id.clone(),
        execution_id: id.to_string(),
    });
    tracing::info!(job = %job.id, execution = id, "cancel requested");
    match app.queue.cancel(&(job.id.clone(), id)) {
        Cancelled::WasWaiting => app.runner.end_unstarted(&job.id, id),
        Cancelled::Signalled => {}
        Cancelled::NotHere => {
            let status = app
                .store
                .status(&job.id, id)
                .unwrap_or(ExecutionStatus::Unknown);
            if status.is_terminal() {
                return Err(not_running(status));
            }
            return Err(ApiError::Unavailable(format!(
                "execution {id} of job {:?} is being recovered after a restart; try again in a moment",
                job.id
            )));
        }
    }
    Ok(json(&Acknowledged::success()))
}

/// The log from byte 0; while the run is queued or running, the answer stays open
/// and streams new bytes until the run has ended.
pub async fn logs(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let (job, id) = find_execution(&app, &params).await?;
    let chunks = app.follow().stream(job.id, id);
    Ok(text_stream(Body::from_stream(ReceiverStream::new(chunks))))
}
