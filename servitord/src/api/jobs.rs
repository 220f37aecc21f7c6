//! `/api/jobs/*`: the job list, one job, and starting a run.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use servitor_shared::api::{
    PARAM_INPUT_VALUE_PREFIX, RESERVED_ENV_PREFIX, RunAccepted, STATUS_SUCCESS,
};
use servitor_shared::inputs::{self, SECRET_MASK};
use servitor_shared::{InputValues, OnBusy};

use super::body::IgnoredBody;
use super::params::Params;
use super::{ApiError, Caller, find_job, json, json_bytes};
use crate::app::App;
use crate::catalog::Entry;
use crate::queue::{Busy, Ticket};
use crate::store::Store;

/// Every job with its newest execution, in one answer.
pub async fn list(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let entries = app.catalog.snapshot().entries.clone();
    with_last_executions(&app, entries, b"[", b"]").await
}

pub async fn get(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    let entry = find_job(&app, &params)?;
    with_last_executions(&app, vec![entry], b"", b"").await
}

/// The jobs' JSON, each with its newest execution, between `open` and `close`. The
/// newest executions are in memory once known; those that are not yet (jobs whose
/// history is still being loaded after a start) are read off the async threads.
async fn with_last_executions(
    app: &App,
    entries: Vec<Arc<Entry>>,
    open: &'static [u8],
    close: &'static [u8],
) -> Result<Response, ApiError> {
    let build = move |store: &Store, entries: &[Arc<Entry>], read: bool| -> Option<Bytes> {
        let size: usize = entries.iter().map(|e| e.json_head.len() + 256).sum();
        let mut body = Vec::with_capacity(size + 2);
        body.extend_from_slice(open);
        for (at, entry) in entries.iter().enumerate() {
            if at > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&entry.json_head);
            body.extend_from_slice(&store.last_execution_json(&entry.file.id, read)?);
            body.push(b'}');
        }
        body.extend_from_slice(close);
        Some(body.into())
    };
    if let Some(body) = build(&app.store, &entries, false) {
        return Ok(json_bytes(body));
    }
    let store = Arc::clone(&app.store);
    let body = tokio::task::spawn_blocking(move || build(&store, &entries, true))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Internal("cannot read the jobs' last executions".into()))?;
    Ok(json_bytes(body))
}

/// Records a run as `created` and queues it. The inputs are checked against the job's
/// spec (required ones, choices), defaults filled in, and inputs the spec does not name
/// dropped, as the old tool did; none may set a `SERVITOR_*` variable. Secret values
/// reach the job but are stored masked.
pub async fn run(
    State(app): State<Arc<App>>,
    Caller(peer): Caller,
    params: Params,
    _body: IgnoredBody,
) -> Result<Response, ApiError> {
    let job = find_job(&app, &params)?;
    let mut given = InputValues::new();
    for (key, value) in params.with_prefix(PARAM_INPUT_VALUE_PREFIX) {
        if key.starts_with(RESERVED_ENV_PREFIX) {
            return Err(ApiError::BadRequest(format!(
                "input {key} is refused: inputs may not set {RESERVED_ENV_PREFIX}* variables"
            )));
        }
        given.insert(key.to_owned(), value.to_owned());
    }
    let (spec, settings) = job.run.clone().map_err(|e| {
        ApiError::Conflict(format!(
            "job {:?} cannot run until this is fixed: {e}",
            job.file.id
        ))
    })?;
    let mut stored = inputs::resolve(&spec, &given).map_err(ApiError::BadRequest)?;
    let mut secrets = InputValues::new();
    for (name, field) in inputs::fields(&spec).map_err(ApiError::Conflict)? {
        if field.secret
            && let Some(value) = stored.get_mut(name)
        {
            secrets.insert(
                name.to_owned(),
                std::mem::replace(value, SECRET_MASK.to_owned()),
            );
        }
    }
    // `on_busy: skip` refuses a run while the job has `concurrency` runs already.
    let reservation = match (settings.on_busy, settings.concurrency) {
        (OnBusy::Skip, Some(limit)) => Some(app.queue.reserve(&job.file.id, limit).map_err(|Busy| {
            ApiError::Conflict(format!(
                "job {:?} is busy: {limit} of its runs are already queued or running (on_busy: skip)",
                job.file.id
            ))
        })?),
        _ => None,
    };
    app.store.preload(&job.file.id).await;
    let id = app.store.create(&job.file.id, stored, peer).map_err(|e| {
        ApiError::Internal(format!("cannot record a run of {:?}: {e}", job.file.id))
    })?;
    let ticket = Ticket {
        secrets,
        ..Ticket::new(&job.file.id, id, settings.concurrency)
    };
    match reservation {
        Some(reservation) => reservation.queue(ticket),
        None => app.queue.push(ticket),
    }
    tracing::info!(job = %job.file.id, execution = id, by = ?peer, "run queued");
    Ok(json(&RunAccepted {
        status: STATUS_SUCCESS.to_owned(),
        execution_id: id.to_string(),
    }))
}
