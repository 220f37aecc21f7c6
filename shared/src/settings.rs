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
    /// Where a run goes: a local process (the default) or a job on a Slurm cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Executor>,
    /// What a run asks of the Slurm cluster, with `"executor": "slurm"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSettings>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// A process group on this machine.
    #[default]
    Local,
    /// A batch job submitted with `sbatch`.
    Slurm,
}

/// The resources and placement of a Slurm run, as `sbatch` options. Checked by
/// servitord when a run starts; `sbatch_args` may not set what Servitor owns (the
/// job's name, output, folder, environment...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// `--partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--cpus-per-task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// `--mem`: `"16G"`, `"500M"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// `--gpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// `--account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// `--constraint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// More `sbatch` arguments, as separate words: `["--exclusive", "-N", "2"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbatch_args: Option<Vec<String>>,
}

impl SlurmSettings {
    /// `self` with every field that `over` sets replaced by `over`'s: a job can
    /// change its folder's memory and keep its partition. `sbatch_args` is one field:
    /// a job's list replaces its folder's whole, so it can drop an argument too.
    pub fn overlay(self, over: SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            partition: over.partition.or(self.partition),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.or(self.mem),
            gpus: over.gpus.or(self.gpus),
            account: over.account.or(self.account),
            qos: over.qos.or(self.qos),
            constraint: over.constraint.or(self.constraint),
            sbatch_args: over.sbatch_args.or(self.sbatch_args),
        }
    }
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
            executor: over.executor.or(self.executor),
            slurm: match (self.slurm, over.slurm) {
                (Some(base), Some(over)) => Some(base.overlay(over)),
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
    fn a_folder_moves_its_jobs_to_slurm_and_a_job_adjusts_fields() {
        let folder: JobSettings = serde_json::from_str(
            r#"{"executor": "slurm",
                "slurm": {"partition": "gpu", "mem": "16G", "sbatch_args": ["--exclusive"]}}"#,
        )
        .unwrap();
        let job: JobSettings =
            serde_json::from_str(r#"{"slurm": {"mem": "64G", "sbatch_args": []}}"#).unwrap();
        let merged = folder.clone().overlay(job);
        assert_eq!(merged.executor, Some(Executor::Slurm));
        let slurm = merged.slurm.unwrap();
        assert_eq!(slurm.partition.as_deref(), Some("gpu"));
        assert_eq!(slurm.mem.as_deref(), Some("64G"));
        assert_eq!(
            slurm.sbatch_args,
            Some(vec![]),
            "a job's list replaces the folder's"
        );

        let local: JobSettings = serde_json::from_str(r#"{"executor": "local"}"#).unwrap();
        let merged = folder.clone().overlay(local);
        assert_eq!(merged.executor, Some(Executor::Local));
        assert_eq!(merged.slurm, folder.slurm, "kept, unused, for jobs below");
        assert_eq!(
            JobSettings::default().executor.unwrap_or_default(),
            Executor::Local
        );
    }

    #[test]
    fn slurm_settings_are_checked_for_shape() {
        let full: JobSettings = serde_json::from_str(
            r#"{"executor": "slurm", "slurm": {"partition": "gpu", "cpus": 8, "mem": "16G",
                "gpus": 1, "account": "lab", "qos": "normal", "constraint": "a100",
                "sbatch_args": ["--exclusive"]}}"#,
        )
        .unwrap();
        let text = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<JobSettings>(&text).unwrap(), full);
        for bad in [
            r#"{"executor": "kubernetes"}"#,
            r#"{"executor": "Slurm"}"#,
            r#"{"slurm": {"partiton": "gpu"}}"#,
            r#"{"slurm": {"cpus": -1}}"#,
            r#"{"slurm": {"cpus": "8"}}"#,
            r#"{"slurm": {"sbatch_args": "--exclusive"}}"#,
        ] {
            assert!(serde_json::from_str::<JobSettings>(bad).is_err(), "{bad}");
        }
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
