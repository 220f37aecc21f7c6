use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A job's settings: `X.settings.json` beside job `X`, over the `.settings.json` of
/// the folders above it. Every field is optional; durations are written as text
/// (`"90s"`, `"2h 30m"`, `"7days"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// When the daemon runs the job on its own: cron expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// The IANA time zone `schedule` is read in (`"Europe/Madrid"`); by default the
    /// daemon's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What happens to fire times missed while the daemon was down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    /// Runs that end as `failure` start again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
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

/// `"schedule"`: one cron expression, or a list of them (`[]`: not scheduled, even
/// when a folder above says so). Written back as it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CronSchedule {
    One(String),
    List(Vec<String>),
}

impl CronSchedule {
    pub fn expressions(&self) -> &[String] {
        match self {
            CronSchedule::One(one) => std::slice::from_ref(one),
            CronSchedule::List(list) => list,
        }
    }
}

/// By hand rather than `untagged`, whose error says only "did not match any variant".
impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrList;
        impl<'de> Visitor<'de> for OneOrList {
            type Value = CronSchedule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cron expression or a list of them")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CronSchedule, E> {
                Ok(CronSchedule::One(text.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CronSchedule, A::Error> {
                let mut list = Vec::new();
                while let Some(expression) = seq.next_element()? {
                    list.push(expression);
                }
                Ok(CronSchedule::List(list))
            }
        }
        deserializer.deserialize_any(OneOrList)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed fire times are dropped.
    #[default]
    Skip,
    /// One run at start stands for all the fire times that were missed.
    Once,
}

/// `{"attempts": 3, "delay": "30s", "backoff": 2}`: up to `attempts` new executions
/// after a failure, the first `delay` after it, each next one `backoff` times longer.
/// Nearer settings files override field by field, so a folder can set the delays and
/// each job its own `attempts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<f64>,
}

impl Retry {
    fn overlay(self, over: Retry) -> Retry {
        Retry {
            attempts: over.attempts.or(self.attempts),
            delay: over.delay.or(self.delay),
            backoff: over.backoff.or(self.backoff),
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
            schedule: over.schedule.or(self.schedule),
            timezone: over.timezone.or(self.timezone),
            catch_up: over.catch_up.or(self.catch_up),
            retry: match (self.retry, over.retry) {
                (Some(base), Some(over)) => Some(base.overlay(over)),
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
    fn schedules_are_one_expression_or_a_list() {
        let parse = |json: &str| serde_json::from_str::<JobSettings>(json);
        let one = parse(r#"{"schedule": "30 2 * * *"}"#)
            .unwrap()
            .schedule
            .unwrap();
        assert_eq!(one.expressions(), ["30 2 * * *"]);
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""30 2 * * *""#);
        let list = parse(r#"{"schedule": ["0 9 * * 1-5", "@monthly"]}"#)
            .unwrap()
            .schedule
            .unwrap();
        assert_eq!(list.expressions(), ["0 9 * * 1-5", "@monthly"]);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["0 9 * * 1-5","@monthly"]"#
        );
        let error = parse(r#"{"schedule": 5}"#).unwrap_err().to_string();
        assert!(
            error.contains("expected a cron expression or a list of them"),
            "{error}"
        );
        assert!(parse(r#"{"schedule": ["@daily", 1]}"#).is_err());

        let folder =
            parse(r#"{"schedule": "@daily", "timezone": "UTC", "catch_up": "once"}"#).unwrap();
        let unscheduled = folder
            .clone()
            .overlay(parse(r#"{"schedule": []}"#).unwrap());
        assert_eq!(
            unscheduled.schedule.unwrap().expressions(),
            [] as [String; 0]
        );
        let inherited = folder.overlay(parse(r#"{"timezone": "Europe/Madrid"}"#).unwrap());
        assert_eq!(inherited.timezone.as_deref(), Some("Europe/Madrid"));
        assert_eq!(inherited.catch_up, Some(CatchUp::Once));
        assert!(parse(r#"{"catch_up": "twice"}"#).is_err());
    }

    #[test]
    fn retry_is_overlaid_field_by_field() {
        let parse = |json: &str| serde_json::from_str::<JobSettings>(json).unwrap();
        let folder = parse(r#"{"retry": {"attempts": 3, "delay": "30s", "backoff": 2}}"#);
        let job = parse(r#"{"retry": {"delay": "5m"}}"#);
        assert_eq!(
            folder.clone().overlay(job).retry,
            Some(Retry {
                attempts: Some(3),
                delay: Some("5m".into()),
                backoff: Some(2.0),
            })
        );
        let off = folder
            .clone()
            .overlay(parse(r#"{"retry": {"attempts": 0}}"#));
        assert_eq!(off.retry.unwrap().attempts, Some(0));
        assert_eq!(
            folder.clone().overlay(JobSettings::default()).retry,
            folder.retry
        );
        assert_eq!(
            parse(r#"{"retry": {"backoff": 1.5}}"#)
                .retry
                .unwrap()
                .backoff,
            Some(1.5)
        );
        let error = serde_json::from_str::<JobSettings>(r#"{"retry": {"attempt": 3}}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `attempt`"), "{error}");
        assert!(serde_json::from_str::<JobSettings>(r#"{"retry": {"attempts": -1}}"#).is_err());
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
