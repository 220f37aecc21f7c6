use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A job's settings: `X.settings.json` beside job `X`, over the `.settings.json` of
/// the folders above it. Every field is optional; durations are written as text
/// (`"90s"`, `"2h 30m"`, `"7days"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Stop a run that takes longer; it ends as `failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The signal that asks a run to stop, on cancel and timeout (`"SIGINT"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long a run may take to stop before its process group is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace: Option<String>,
    /// How many runs of the job may go at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// What a new run does when `concurrency` runs are already queued or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_busy: Option<OnBusy>,
    /// Which finished executions to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Variables added to the job's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBusy {
    /// Wait in line (FIFO) until a slot frees up.
    #[default]
    Queue,
    /// Refuse the new run (`409`).
    Skip,
}

/// Finished executions are deleted once they are beyond the newest `keep_last` and
/// older than `max_age` (either alone when only one is given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

impl JobSettings {
    /// `self` with every field that `over` sets replaced by `over`'s.
    pub fn overlay(self, over: JobSettings) -> JobSettings {
        JobSettings {
            timeout: over.timeout.or(self.timeout),
            stop_signal: over.stop_signal.or(self.stop_signal),
            stop_grace: over.stop_grace.or(self.stop_grace),
            concurrency: over.concurrency.or(self.concurrency),
            on_busy: over.on_busy.or(self.on_busy),
            retention: over.retention.or(self.retention),
            env: match (self.env, over.env) {
                (Some(mut base), Some(over)) => {
                    base.extend(over);
                    Some(base)
                }
                (base, over) => over.or(base),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &JobSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_settings_are_overlaid() {
        let folder: JobSettings = serde_json::from_str(
            r#"{"timeout": "1h", "concurrency": 2, "env": {"A": "1", "B": "1"}}"#,
        )
        .unwrap();
        let job: JobSettings =
            serde_json::from_str(r#"{"timeout": "90s", "env": {"B": "2"}}"#).unwrap();
        let merged = folder.overlay(job);
        assert_eq!(merged.timeout.as_deref(), Some("90s"));
        assert_eq!(merged.concurrency, Some(2));
        let env = merged.env.unwrap();
        assert_eq!((env["A"].as_str(), env["B"].as_str()), ("1", "2"));
    }

    #[test]
    fn typos_are_refused() {
        let error = serde_json::from_str::<JobSettings>(r#"{"timout": "1h"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `timout`"),
            "{error}"
        );
        assert!(serde_json::from_str::<JobSettings>(r#"{"on_busy": "later"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&JobSettings {
                on_busy: Some(OnBusy::Skip),
                ..JobSettings::default()
            })
            .unwrap(),
            r#"{"on_busy":"skip"}"#
        );
    }
}
