use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ExecutionStatus, JobSettings, RunResult};

/// A job's input spec: the parsed `X.input.json`, input name → field object.
/// Fields are kept as written (today always `{}`), in file order.
pub type InputSpec = Map<String, Value>;

/// One job, as answered by `/api/jobs/get` and `/api/jobs/get_list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub input_spec: InputSpec,
    /// The job's effective settings (additive; absent when it has none).
    #[serde(default, skip_serializing_if = "JobSettings::is_empty")]
    pub settings: JobSettings,
    /// Why the job's input spec or settings could not be read (additive; absent when
    /// all is well). Such a job cannot run until they are fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The job's newest execution, `null` for a job never run (additive: one request
    /// gives an overview of every job).
    #[serde(default)]
    pub last_execution: Option<LastExecution>,
    /// When the job's schedule fires next, RFC 3339; `null` when it has no schedule
    /// or is paused (additive; servitord gives it on every job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The job's schedule (additive; absent when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<JobSchedule>,
}

/// A scheduled job's schedule, as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSchedule {
    /// In words: "At 02:30", several joined with "; ".
    pub description: String,
    /// The IANA zone it is read in ("local" for a system zone without a name).
    pub timezone: String,
    /// Paused through the API (`/api/jobs/schedule/pause`): it does not fire.
    pub paused: bool,
}

/// The newest execution of a job, in short, as `GET /api/jobs/get_list` and `get` give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExecution {
    pub execution_id: String,
    pub status: ExecutionStatus,
    /// When it was created (queued), started running and ended, as in its status
    /// history; `null` for a step it has not reached (or whose line is damaged).
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// `null` until it has ended.
    pub result: Option<RunResult>,
}
