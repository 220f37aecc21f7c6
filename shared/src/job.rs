use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::JobSettings;

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
}
