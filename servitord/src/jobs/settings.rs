//! Job settings: `config/jobs/.settings.json`, then the `.settings.json` of each
//! folder down to the job's, then `X.settings.json` beside job `X`, each overriding
//! what it sets. Read when a run is asked for and when it starts, so editing them
//! needs no restart. A file that does not parse affects only the jobs below it.

use std::io;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use servitor_shared::env::RESERVED_PREFIX;
use servitor_shared::{Executor, JobSettings, OnBusy};

use super::schedule::{RetryError, RetryPolicy, Schedule, ScheduleError};
use super::slurm::{self, SlurmSettings};
use crate::signal::{Signal, UnknownSignal, parse_stop_signal};

const FOLDER_FILE: &str = ".settings.json";
const JOB_SUFFIX: &str = ".settings.json";

/// Settings as the runner uses them, checked and with defaults filled in.
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Option<Duration>,
    /// The signal that asks a run to stop; by default SIGINT on cancel (as the old
    /// tool), SIGTERM on timeout.
    pub stop_signal: Option<Signal>,
    pub stop_grace: Duration,
    pub concurrency: Option<u32>,
    pub on_busy: OnBusy,
    pub retention: Option<Retention>,
    pub env: IndexMap<String, String>,
    /// When the daemon runs the job on its own; `None`: only when asked.
    pub schedule: Option<Schedule>,
    pub retry: RetryPolicy,
    /// Where its runs go.
    pub executor: ExecutorChoice,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<u64>,
    pub max_age: Option<Duration>,
}

/// Why a job's settings cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {reason}")]
    Unparsable { file: String, reason: String },
    #[error("cannot read {file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{name} {text:?} is not a duration like \"90s\" or \"2h\": {reason}")]
    Duration {
        name: &'static str,
        text: String,
        reason: String,
    },
    #[error(transparent)]
    StopSignal(#[from] UnknownSignal),
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("env may not set {0:?}")]
    ReservedEnv(String),
    #[error("env values may not contain NUL")]
    NulInEnv,
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Retry(#[from] RetryError),
    #[error(transparent)]
    Slurm(#[from] slurm::SettingsError),
}

/// Where a job's runs go.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorChoice {
    /// A process group on this machine.
    Local,
    /// A batch job on a Slurm cluster, asking for these resources.
    Slurm(SlurmSettings),
}

/// The settings files of job `id`, merged; an error names the file that is broken.
pub fn read(jobs_dir: &Path, id: &str) -> Result<JobSettings, SettingsError> {
    let mut merged = read_file(&jobs_dir.join(FOLDER_FILE), FOLDER_FILE)?;
    let mut folder = jobs_dir.to_owned();
    let mut shown = String::new();
    let segments: Vec<&str> = id.split('/').collect();
    let (name, parents) = segments.split_last().expect("a job id has a name");
    for parent in parents {
        folder.push(parent);
        shown.push_str(parent);
        shown.push('/');
        merged = merged.overlay(read_file(
            &folder.join(FOLDER_FILE),
            &format!("{shown}{FOLDER_FILE}"),
        )?);
    }
    let job_file = folder.join(format!("{name}{JOB_SUFFIX}"));
    Ok(merged.overlay(read_file(&job_file, &format!("{id}{JOB_SUFFIX}"))?))
}

fn read_file(path: &Path, shown: &str) -> Result<JobSettings, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| SettingsError::Unparsable {
            file: shown.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(JobSettings::default()),
        Err(e) => Err(SettingsError::Unreadable {
            file: shown.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Checks merged settings; `stop_grace` is the daemon's default grace period.
pub fn check(settings: &JobSettings, stop_grace: Duration) -> Result<Settings, SettingsError> {
    let executor = match settings.executor.unwrap_or_default() {
        Executor::Local => ExecutorChoice::Local,
        Executor::Slurm => ExecutorChoice::Slurm(slurm::check(settings.slurm.as_ref())?),
    };
    let duration = |name: &'static str, text: &Option<String>| {
        text.as_deref()
            .map(|text| {
                humantime::parse_duration(text).map_err(|e| SettingsError::Duration {
                    name,
                    text: text.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    };
    let stop_signal = settings
        .stop_signal
        .as_deref()
        .map(parse_stop_signal)
        .transpose()?;
    if settings.concurrency == Some(0) {
        return Err(SettingsError::ZeroConcurrency);
    }
    let env = settings.env.clone().unwrap_or_default();
    if let Some(name) = env.keys().find(|name| {
        name.is_empty() || name.contains(['=', '\0']) || name.starts_with(RESERVED_PREFIX)
    }) {
        return Err(SettingsError::ReservedEnv(name.clone()));
    }
    if env.values().any(|value| value.contains('\0')) {
        return Err(SettingsError::NulInEnv);
    }
    let retention = match &settings.retention {
        Some(retention) => Some(Retention {
            keep_last: retention.keep_last,
            max_age: duration("retention.max_age", &retention.max_age)?,
        }),
        None => None,
    };
    Ok(Settings {
        timeout: duration("timeout", &settings.timeout)?.filter(|t| !t.is_zero()),
        stop_signal,
        stop_grace: duration("stop_grace", &settings.stop_grace)?.unwrap_or(stop_grace),
        concurrency: settings.concurrency,
        on_busy: settings.on_busy.unwrap_or_default(),
        retention,
        env,
        schedule: Schedule::from_settings(settings)?,
        retry: RetryPolicy::from_settings(settings.retry.as_ref())?,
        executor,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn files_are_merged_from_the_root_down() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path();
        fs::create_dir_all(jobs.join("a/b")).unwrap();
        fs::write(
            jobs.join(".settings.json"),
            r#"{"retention": {"keep_last": 100}, "timeout": "1h"}"#,
        )
        .unwrap();
        fs::write(
            jobs.join("a/.settings.json"),
            r#"{"timeout": "10m", "env": {"X": "1"}}"#,
        )
        .unwrap();
        fs::write(
            jobs.join("a/b/job.settings.json"),
            r#"{"concurrency": 1, "on_busy": "skip"}"#,
        )
        .unwrap();

        let merged = read(jobs, "a/b/job").unwrap();
        assert_eq!(merged.timeout.as_deref(), Some("10m"));
        assert_eq!(merged.retention.as_ref().unwrap().keep_last, Some(100));
        let checked = check(&merged, Duration::from_secs(10)).unwrap();
        assert_eq!(checked.timeout, Some(Duration::from_secs(600)));
        assert_eq!(checked.stop_signal, None);
        assert_eq!(checked.stop_grace, Duration::from_secs(10));
        assert_eq!(
            (checked.concurrency, checked.on_busy),
            (Some(1), OnBusy::Skip)
        );
        assert_eq!(checked.env["X"], "1");
        assert!(read(jobs, "other").unwrap().env.is_none());

        fs::write(jobs.join("a/b/.settings.json"), "{oops").unwrap();
        assert!(
            read(jobs, "a/b/job")
                .unwrap_err()
                .to_string()
                .starts_with("a/b/.settings.json: ")
        );
        assert!(
            read(jobs, "a/sibling").is_ok(),
            "damage stays below the broken file"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let parse = |json: &str| {
            check(
                &serde_json::from_str(json).unwrap(),
                Duration::from_secs(10),
            )
        };
        assert!(
            parse(r#"{"timeout": "soon"}"#)
                .unwrap_err()
                .to_string()
                .starts_with("timeout \"soon\" is not a duration")
        );
        assert!(
            parse(r#"{"stop_signal": "SIGSTOP"}"#)
                .unwrap_err()
                .to_string()
                .contains("not one of SIGINT")
        );
        assert_eq!(
            parse(r#"{"stop_signal": "term"}"#).unwrap().stop_signal,
            Some(Signal::TERM)
        );
        assert_eq!(
            parse(r#"{"concurrency": 0}"#).unwrap_err(),
            SettingsError::ZeroConcurrency
        );
        assert_eq!(
            parse(r#"{"executor": "slurm"}"#).unwrap().executor,
            ExecutorChoice::Slurm(SlurmSettings::default())
        );
        assert!(
            parse(r#"{"executor": "slurm", "slurm": {"sbatch_args": ["-o", "x"]}}"#)
                .unwrap_err()
                .to_string()
                .starts_with("slurm.sbatch_args: ")
        );
        assert!(parse(r#"{"executor": "local", "slurm": {"cpus": 2}}"#).is_ok());
        assert_eq!(
            parse(r#"{"env": {"SERVITOR_JOB": "x"}}"#)
                .unwrap_err()
                .to_string(),
            "env may not set \"SERVITOR_JOB\""
        );
        assert_eq!(
            parse(r#"{"schedule": ["@daily", "0 25 * * *"]}"#)
                .unwrap_err()
                .to_string(),
            "schedule \"0 25 * * *\" is not a cron expression: Component error: Number out of bounds"
        );
        assert!(
            parse(r#"{"schedule": "@daily", "timezone": "Europe/Nowhere"}"#)
                .unwrap_err()
                .to_string()
                .starts_with("timezone \"Europe/Nowhere\" is not an IANA time zone name")
        );
        assert_eq!(
            parse(r#"{"retry": {"attempts": 1000}}"#)
                .unwrap_err()
                .to_string(),
            "retry.attempts must be at most 100, not 1000"
        );
        let scheduled =
            parse(r#"{"schedule": "30 2 * * *", "timezone": "UTC", "retry": {"attempts": 2}}"#)
                .unwrap();
        assert_eq!(scheduled.schedule.unwrap().describe(), "At 02:30");
        assert_eq!(scheduled.retry.attempts(), 2);
        let plain = parse("{}").unwrap();
        assert!(plain.schedule.is_none());
        assert_eq!(plain.retry, RetryPolicy::NONE);
        let retention = parse(r#"{"retention": {"max_age": "7days"}}"#)
            .unwrap()
            .retention
            .unwrap();
        assert_eq!(retention.max_age, Some(Duration::from_secs(7 * 86_400)));
    }
}
