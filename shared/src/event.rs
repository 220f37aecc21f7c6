use serde::{Deserialize, Serialize};

use crate::ExecutionStatus;

/// One line of `GET /api/events`:
/// `{"id": "job_execution_status_changed", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "id", content = "payload", rename_all = "snake_case")]
pub enum Event {
    /// An execution's status changed (a line was appended to its history).
    JobExecutionStatusChanged {
        job_id: String,
        execution_id: String,
        status: ExecutionStatus,
    },
    /// Someone asked to cancel an execution.
    JobExecutionCancellationRequested {
        job_id: String,
        execution_id: String,
    },
}

impl Event {
    /// The job and execution the event is about.
    pub fn execution(&self) -> (&str, &str) {
        match self {
            Self::JobExecutionStatusChanged {
                job_id,
                execution_id,
                ..
            }
            | Self::JobExecutionCancellationRequested {
                job_id,
                execution_id,
            } => (job_id, execution_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_contract_shape() {
        let changed = Event::JobExecutionStatusChanged {
            job_id: "a/b".into(),
            execution_id: "3".into(),
            status: ExecutionStatus::Running,
        };
        assert_eq!(
            serde_json::to_string(&changed).unwrap(),
            r#"{"id":"job_execution_status_changed","payload":{"job_id":"a/b","execution_id":"3","status":"running"}}"#
        );
        let cancel = Event::JobExecutionCancellationRequested {
            job_id: "a".into(),
            execution_id: "1".into(),
        };
        assert_eq!(
            serde_json::to_string(&cancel).unwrap(),
            r#"{"id":"job_execution_cancellation_requested","payload":{"job_id":"a","execution_id":"1"}}"#
        );
        let back: Event = serde_json::from_str(&serde_json::to_string(&cancel).unwrap()).unwrap();
        assert_eq!(back, cancel);
    }
}
