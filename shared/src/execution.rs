use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Where an execution is in its lifecycle:
/// `created` → `running` → `success` | `failure` | `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Accepted and queued.
    Created,
    /// The process was started.
    Running,
    /// Exited with code 0.
    Success,
    /// Exited non-zero, was killed by a signal, or could not start.
    Failure,
    /// Cancel was requested.
    Cancelled,
    /// The execution's state on disk is damaged; its `error` says how.
    #[serde(other)]
    Unknown,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 5] = [
        Self::Created,
        Self::Running,
        Self::Success,
        Self::Failure,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a status word as written in `status_history.tsv`.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == word)
    }

    /// True once the run has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failure | Self::Cancelled)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `status_history.tsv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// ISO-8601 UTC with microseconds, e.g. `2024-03-17T00:59:08.123456+00:00`;
    /// timestamps read from older files are passed through verbatim.
    pub timestamp: String,
    pub status: ExecutionStatus,
}

/// `result.tsv`: how the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The process's exit code, `-N` when killed by signal N, `-1` when it could not start.
    pub exit_code: i64,
    pub message: String,
}

/// A client of the socket, as the kernel vouches for it (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The input values of a run, input name → value, in the order given.
pub type InputValues = IndexMap<String, String>;

/// One execution of a job, as answered by `/api/jobs/executions/get` and `get_list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// A positive decimal number, as a string.
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub status_history: Vec<StatusChange>,
    /// `null` until the run has ended.
    pub result: Option<RunResult>,
    pub input_values: InputValues,
    /// Who asked for the run (additive; absent for runs recorded by the old tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<Peer>,
    /// Who asked to cancel the run (additive; absent unless cancelled through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<Peer>,
    /// The run was stopped because it exceeded its `timeout` (additive; absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// What is damaged in this execution's state on disk (additive; absent when all is well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the run went on a Slurm cluster (additive; absent for local runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmPlacement>,
}

/// An execution as the API answers it: its fields, then what made the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionWithTrigger {
    #[serde(flatten)]
    pub execution: Execution,
    #[serde(flatten)]
    pub trigger: RunTrigger,
}

/// What made a run (additive fields of an execution).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTrigger {
    /// `api` for a client's request, also for every run recorded before triggers
    /// were (and every run of the old tool); `schedule`; `retry`.
    #[serde(default)]
    pub trigger: Trigger,
    /// For a retry: the execution it retries (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// For a retry: its number, 1 for the first (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// What kind of thing made a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A request to `/api/jobs/run` (`servitorctl run`).
    #[default]
    Api,
    /// The job's `schedule` fired.
    Schedule,
    /// The job's `retry` setting, after a run ended as `failure`.
    Retry,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Schedule => "schedule",
            Self::Retry => "retry",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's job on a Slurm cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmPlacement {
    /// Slurm's job id, as `squeue` and `scancel` take it.
    pub job_id: String,
    /// The node it runs or ran on, once Slurm has placed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}
