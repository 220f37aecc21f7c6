//! Paths, query parameters and the small response bodies of the HTTP API.

use serde::{Deserialize, Serialize};

pub const JOBS_GET_LIST: &str = "/api/jobs/get_list";
pub const JOBS_GET: &str = "/api/jobs/get";
pub const JOBS_RUN: &str = "/api/jobs/run";
pub const EXECUTIONS_GET_LIST: &str = "/api/jobs/executions/get_list";
pub const EXECUTIONS_GET: &str = "/api/jobs/executions/get";
pub const EXECUTIONS_CANCEL: &str = "/api/jobs/executions/cancel";
pub const EXECUTIONS_LOGS_GET: &str = "/api/jobs/executions/logs/get";
pub const EVENTS: &str = "/api/events";
/// Added by Servitor: stop a job's schedule from firing, and let it fire again.
pub const SCHEDULE_PAUSE: &str = "/api/jobs/schedule/pause";
pub const SCHEDULE_RESUME: &str = "/api/jobs/schedule/resume";
/// Added by Servitor: readiness and a summary (`Health`).
pub const HEALTH: &str = "/api/health";
/// Added by Servitor: Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// Added by Servitor: the OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = "/api/openapi.json";

/// Query parameter naming a job.
pub const PARAM_JOB_ID: &str = "job_id";
/// Query parameter naming an execution of a job.
pub const PARAM_EXECUTION_ID: &str = "execution_id";
/// Prefix of the query parameters carrying input values: `input_value_<KEY>=<value>`.
pub const PARAM_INPUT_VALUE_PREFIX: &str = "input_value_";
/// Paging of `executions/get_list` (added by Servitor): at most this many executions...
pub const PARAM_LIMIT: &str = "limit";
/// ...with ids below this one.
pub const PARAM_BEFORE: &str = "before";
/// `logs/get` with `follow=false` (added by Servitor): the log as it is now, without
/// waiting for the run to end.
pub const PARAM_FOLLOW: &str = "follow";

/// The API's socket, relative to the working directory.
pub const SOCKET_PATH: &str = "sockets/servitor.sock";

/// The `"status"` of a successful command answer.
pub const STATUS_SUCCESS: &str = "success";

/// Answer of `POST /api/jobs/run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAccepted {
    pub status: String,
    /// Added by Servitor; the old tool did not say which execution it created.
    pub execution_id: String,
}

/// Answer of commands that only acknowledge, such as cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub status: String,
}

impl Acknowledged {
    pub fn success() -> Self {
        Self {
            status: STATUS_SUCCESS.to_owned(),
        }
    }
}

/// Body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// Answer of `GET /api/health`: `200` once the daemon is ready (history loaded,
/// workers up), `503` with `"status": "starting"` before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` or `"starting"`.
    pub status: String,
    pub version: String,
    pub uptime_seconds: f64,
    pub workdir: String,
    pub jobs: usize,
    pub running: usize,
    pub queued: usize,
    pub workers: usize,
}
