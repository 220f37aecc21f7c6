//! The `slurm` object of a job's settings, checked: what `sbatch` is asked for. A
//! value that does not pass makes the job unrunnable with the error's message, as
//! other broken settings do.

use std::time::Duration;

use servitor_shared::SlurmSettings as Written;
use thiserror::Error;

use super::sbatch_args::{self, ArgsError};

/// Slurm's largest time limit in minutes: above are its "no value" and "infinite".
const MAX_TIME_LIMIT_MINUTES: u64 = 0xFFFF_FFFD;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub cpus: Option<u32>,
    /// As written, once checked: `16G`, `500M`, `1024` (megabytes).
    pub mem: Option<String>,
    pub gpus: Option<u32>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub constraint: Option<String>,
    pub sbatch_args: Vec<String>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("slurm.{field} may not be empty")]
    Empty { field: &'static str },
    #[error("slurm.{field} {value:?} may not contain spaces or control characters")]
    Characters { field: &'static str, value: String },
    #[error("slurm.{field} must be at least 1")]
    Zero { field: &'static str },
    #[error(
        "slurm.mem {0:?} is not a size like \"16G\" or \"500M\" \
         (a whole number, then K, M, G or T; megabytes without a unit)"
    )]
    Memory(String),
    #[error("slurm.sbatch_args: {0}")]
    SbatchArgs(#[from] ArgsError),
}

/// Checks a job's merged `slurm` object (`None`: the job has none, and asks for
/// nothing beyond the cluster's defaults).
pub fn check(written: Option<&Written>) -> Result<SlurmSettings, SettingsError> {
    let Some(written) = written else {
        return Ok(SlurmSettings::default());
    };
    let count = |field: &'static str, value: Option<u32>| match value {
        Some(0) => Err(SettingsError::Zero { field }),
        value => Ok(value),
    };
    let mem = written.mem.as_deref().map(memory).transpose()?;
    let sbatch_args = written.sbatch_args.clone().unwrap_or_default();
    sbatch_args::check(&sbatch_args)?;
    Ok(SlurmSettings {
        partition: word("partition", &written.partition)?,
        cpus: count("cpus", written.cpus)?,
        mem,
        gpus: count("gpus", written.gpus)?,
        account: word("account", &written.account)?,
        qos: word("qos", &written.qos)?,
        constraint: word("constraint", &written.constraint)?,
        sbatch_args,
    })
}

/// A name given to sbatch as `--field=VALUE`: one word, so that a stray space or
/// newline cannot turn into something else further down.
fn word(field: &'static str, value: &Option<String>) -> Result<Option<String>, SettingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(SettingsError::Empty { field });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SettingsError::Characters {
            field,
            value: value.clone(),
        });
    }
    Ok(Some(value.clone()))
}

/// `--mem`'s syntax: a whole number and an optional unit (`16G`, `16GB`, `500m`).
/// Slurm refuses fractions ("1.5G"); `0` asks for all of a node's memory.
fn memory(text: &str) -> Result<String, SettingsError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let unit_ok = matches!(
        unit.to_ascii_uppercase().as_str(),
        "" | "K" | "M" | "G" | "T" | "KB" | "MB" | "GB" | "TB"
    );
    if number.is_empty() || number.parse::<u64>().is_err() || !unit_ok {
        return Err(SettingsError::Memory(text.to_owned()));
    }
    Ok(text.to_owned())
}

/// `--time` for a run's timeout, in minutes: whole minutes rounded up, at least 1
/// (Slurm reads 0 as "no limit"). `None` for a timeout beyond Slurm's largest limit:
/// then only Servitor enforces it.
pub fn time_limit_minutes(timeout: Duration) -> Option<u64> {
    let minutes = timeout.as_nanos().div_ceil(60 * 1_000_000_000).max(1);
    u64::try_from(minutes)
        .ok()
        .filter(|m| *m <= MAX_TIME_LIMIT_MINUTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(json: &str) -> Written {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_issue_example_passes() {
        let checked = check(Some(&written(
            r#"{"partition": "gpu", "cpus": 8, "mem": "16G", "gpus": 1, "account": "lab",
                "qos": "normal", "constraint": "a100", "sbatch_args": ["--exclusive"]}"#,
        )))
        .unwrap();
        assert_eq!(
            checked,
            SlurmSettings {
                partition: Some("gpu".into()),
                cpus: Some(8),
                mem: Some("16G".into()),
                gpus: Some(1),
                account: Some("lab".into()),
                qos: Some("normal".into()),
                constraint: Some("a100".into()),
                sbatch_args: vec!["--exclusive".into()],
            }
        );
        assert_eq!(check(None).unwrap(), SlurmSettings::default());
        assert_eq!(
            check(Some(&written("{}"))).unwrap(),
            SlurmSettings::default()
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let error = |json: &str| check(Some(&written(json))).unwrap_err().to_string();
        assert_eq!(
            error(r#"{"partition": ""}"#),
            "slurm.partition may not be empty"
        );
        assert_eq!(
            error(r#"{"account": "lab two"}"#),
            "slurm.account \"lab two\" may not contain spaces or control characters"
        );
        assert_eq!(
            error(r#"{"constraint": "a100\n--wrap=x"}"#),
            "slurm.constraint \"a100\\n--wrap=x\" may not contain spaces or control characters"
        );
        assert_eq!(error(r#"{"cpus": 0}"#), "slurm.cpus must be at least 1");
        assert_eq!(error(r#"{"gpus": 0}"#), "slurm.gpus must be at least 1");
        assert_eq!(
            error(r#"{"mem": "1.5G"}"#),
            "slurm.mem \"1.5G\" is not a size like \"16G\" or \"500M\" \
             (a whole number, then K, M, G or T; megabytes without a unit)"
        );
        assert_eq!(
            error(r#"{"sbatch_args": ["-J", "mine"]}"#),
            "slurm.sbatch_args: \"-J\" may not be used: \
             Servitor names the job, to find it again after a restart"
        );
    }

    #[test]
    fn memory_sizes() {
        for good in ["16G", "16GB", "500M", "500m", "1024", "0", "2T", "64k"] {
            assert_eq!(memory(good), Ok(good.to_owned()), "{good}");
        }
        for bad in [
            "",
            "G",
            "1.5G",
            "16 G",
            "-1G",
            "+1G",
            "16GiB",
            "16X",
            "99999999999999999999999G",
        ] {
            assert!(memory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_become_whole_minutes() {
        let minutes = |secs: f64| time_limit_minutes(Duration::from_secs_f64(secs));
        assert_eq!(minutes(0.0), Some(1));
        assert_eq!(minutes(0.5), Some(1));
        assert_eq!(minutes(1.0), Some(1));
        assert_eq!(minutes(60.0), Some(1));
        assert_eq!(minutes(60.001), Some(2));
        assert_eq!(minutes(61.0), Some(2));
        assert_eq!(minutes(90.0 * 60.0), Some(90));
        assert_eq!(minutes(7.0 * 86_400.0), Some(7 * 1440));
        assert_eq!(
            time_limit_minutes(Duration::from_secs(MAX_TIME_LIMIT_MINUTES * 60)),
            Some(MAX_TIME_LIMIT_MINUTES)
        );
        assert_eq!(
            time_limit_minutes(Duration::from_secs(MAX_TIME_LIMIT_MINUTES * 60 + 1)),
            None
        );
        assert_eq!(time_limit_minutes(Duration::MAX), None);
    }
}
