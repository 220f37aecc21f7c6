use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job's input spec: the parsed `X.input.json`, input name → field object.
/// Fields are kept as written (today always `{}`), in file order.
pub type InputSpec = Map<String, Value>;

/// One job, as answered by `/api/jobs/get` and `/api/jobs/get_list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub input_spec: InputSpec,
    /// Why the job's spec could not be read (additive; absent when all is well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
