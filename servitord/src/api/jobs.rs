//! `/api/jobs/*`: the job list, one job, and starting a run.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use servitor_shared::InputValues;
use servitor_shared::api::{Acknowledged, PARAM_INPUT_VALUE_PREFIX, RunAccepted, STATUS_SUCCESS};

use super::body::IgnoredBody;
use super::params::Params;
use super::{ApiError, Caller, find_job, json, json_bytes};
use crate::app::App;
use crate::jobs::catalog::Entry;
use crate::runs::SubmitError;
use crate::state::files::Origin;

/// Every job with its newest execution, in one answer.
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let entries = app.catalog().snapshot().await.entries.clone();
    json_bytes(with_last_executions(&app, &entries, b"[", b"]").await)
}

pub async fn get(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let entry = find_job(&app, &params).await?;
    Ok(json_bytes(
        with_last_executions(&app, &[entry], b"", b"").await,
    ))
}

/// The jobs' JSON, each with its newest execution, between `open` and `close`.
async fn with_last_executions(
    app: &App,
    entries: &[Arc<Entry>],
    open: &[u8],
    close: &[u8],
) -> Bytes {
    let jobs = entries.iter().map(|entry| entry.file.id.clone()).collect();
    let lasts = app.history().last_executions_json(jobs).await;
    // Only scheduled jobs are looked up: the others' `next_run` is `null`.
    let scheduled = entries.iter().filter(|entry| entry.schedule_head.is_some());
    let mut schedules = (app.schedules().scheduler())
        .states(scheduled.map(|entry| entry.file.id.as_str()))
        .into_iter();
    let size: usize = (entries.iter())
        .map(|e| e.json_head.len() + e.schedule_head.as_ref().map_or(0, Bytes::len) + 40)
        .sum::<usize>()
        + lasts.iter().map(Bytes::len).sum::<usize>();
    let mut body = Vec::with_capacity(size + entries.len() * 2 + open.len() + close.len());
    body.extend_from_slice(open);
    let mut formatted: Option<(jiff::Timestamp, String)> = None;
    for (at, (entry, last)) in entries.iter().zip(&lasts).enumerate() {
        let (next, paused) = match entry.schedule_head {
            Some(_) => schedules.next().unwrap_or_default(),
            None => (None, false),
        };
        if at > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&entry.json_head);
        body.extend_from_slice(last);
        body.extend_from_slice(b",\"next_run\":");
        match (next, &entry.schedule_head) {
            // Fire times are whole seconds: RFC 3339 without a fraction. Many jobs
            // share one (`@hourly`): formatted once for a run of them.
            (Some(next), Some(_)) => {
                if formatted.as_ref().is_none_or(|(at, _)| *at != next) {
                    formatted = Some((next, format!("\"{next}\"")));
                }
                if let Some((_, text)) = &formatted {
                    body.extend_from_slice(text.as_bytes());
                }
            }
            _ => body.extend_from_slice(b"null"),
        }
        if let Some(schedule) = &entry.schedule_head {
            body.extend_from_slice(schedule);
            body.extend_from_slice(if paused { b"true}" } else { b"false}" });
        }
        body.push(b'}');
    }
    body.extend_from_slice(close);
    body.into()
}

/// `POST /api/jobs/schedule/pause`: the job's schedule stops firing, across restarts
/// too, until resumed. A job without a schedule may be paused: it stays paused when it
/// gets one.
pub async fn pause(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    set_paused(&app, &params, true).await
}

/// `POST /api/jobs/schedule/resume`: the job's schedule fires again from its next fire
/// time on; those missed while paused are not made up. Resuming a job that is not
/// paused changes nothing.
pub async fn resume(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    set_paused(&app, &params, false).await
}

async fn set_paused(app: &App, params: &Params, paused: bool) -> Result<Response, ApiError> {
    let job = find_job(app, params).await?;
    let schedules = Arc::clone(app.schedules());
    // Saving the state writes a file.
    tokio::task::spawn_blocking(move || {
        let job = job.file.id.as_str();
        match paused {
            true => schedules.pause(job),
            false => schedules.resume(job),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("saving the schedules failed: {e}")))?
    .map_err(|e| ApiError::Internal(format!("cannot save the schedules' state: {e}")))?;
    Ok(json(&Acknowledged::success()))
}

/// Records a run as `created` and queues it (see `Runs::submit`).
pub async fn run(
    State(app): State<Arc<App>>,
    Caller(peer): Caller,
    params: Params,
    _body: IgnoredBody,
) -> Result<Response, ApiError> {
    let job = find_job(&app, &params).await?;
    let given: InputValues = params
        .with_prefix(PARAM_INPUT_VALUE_PREFIX)
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let runs = Arc::clone(app.runs());
    // Recording a run makes its folder and files.
    let run = tokio::task::spawn_blocking(move || runs.submit(&job, given, peer, Origin::Api))
        .await
        .map_err(|e| ApiError::Internal(format!("recording a run failed: {e}")))?
        .map_err(|e| match e {
            SubmitError::ReservedInput(_) | SubmitError::BadInputs(_) => {
                ApiError::BadRequest(e.to_string())
            }
            SubmitError::Unrunnable(_) | SubmitError::Busy { .. } => {
                ApiError::Conflict(e.to_string())
            }
            SubmitError::Unrecorded { .. } => ApiError::Internal(e.to_string()),
        })?;
    Ok(json(&RunAccepted {
        status: STATUS_SUCCESS.to_owned(),
        execution_id: run.execution.to_string(),
    }))
}
