//! `/api/jobs/*`: the job list, one job, and starting a run.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use servitor_shared::InputValues;
use servitor_shared::api::{
    PARAM_INPUT_VALUE_PREFIX, RESERVED_ENV_PREFIX, RunAccepted, STATUS_SUCCESS,
};

use super::body::IgnoredBody;
use super::params::Params;
use super::{ApiError, find_job, json};
use crate::app::App;
use crate::queue::Ticket;

pub async fn list(State(app): State<Arc<App>>) -> Response {
    let jobs: Vec<_> = app
        .catalog
        .list()
        .iter()
        .map(|job| job.describe())
        .collect();
    json(&jobs)
}

pub async fn get(State(app): State<Arc<App>>, params: Params) -> Result<Response, ApiError> {
    Ok(json(&find_job(&app, &params)?.describe()))
}

/// Records a run as `created` and queues it. Only inputs named in the job's spec are
/// kept; none may set a `SERVITOR_*` variable.
pub async fn run(
    State(app): State<Arc<App>>,
    params: Params,
    _body: IgnoredBody,
) -> Result<Response, ApiError> {
    let job = find_job(&app, &params)?;
    let spec = job.input_spec().map_err(|e| {
        ApiError::Conflict(format!(
            "job {:?} cannot run until its input spec is fixed: {e}",
            job.id
        ))
    })?;
    let mut inputs = InputValues::new();
    for (key, value) in params.with_prefix(PARAM_INPUT_VALUE_PREFIX) {
        if key.starts_with(RESERVED_ENV_PREFIX) {
            return Err(ApiError::BadRequest(format!(
                "input {key} is refused: inputs may not set {RESERVED_ENV_PREFIX}* variables"
            )));
        }
        if !spec.contains_key(key) {
            continue;
        }
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(ApiError::BadRequest(format!(
                "input name {key:?} cannot be an environment variable"
            )));
        }
        if value.contains('\0') {
            return Err(ApiError::BadRequest(format!(
                "input {key} contains a NUL byte"
            )));
        }
        inputs.insert(key.to_owned(), value.to_owned());
    }
    app.store.preload(&job.id).await;
    let id = app
        .store
        .create(&job.id, inputs)
        .map_err(|e| ApiError::Internal(format!("cannot record a run of {:?}: {e}", job.id)))?;
    app.queue.push(Ticket::new(&job.id, id));
    tracing::info!(job = %job.id, execution = id, "run queued");
    Ok(json(&RunAccepted {
        status: STATUS_SUCCESS.to_owned(),
        execution_id: id.to_string(),
    }))
}
