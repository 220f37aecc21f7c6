//! The command lines the executor runs: `sbatch` to submit a run, one `squeue` for
//! all of the daemon's jobs, `scancel` to stop one. Built here, run by `cli`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use servitor_shared::{InputValues, env};
use thiserror::Error;

use super::parse::{SQUEUE_FORMAT, SlurmJobId};
use crate::jobs::slurm::{SlurmSettings, time_limit_minutes};
use crate::signal::Signal;

/// A Slurm command: the program (found on `PATH`), its arguments, and what changes
/// in the environment it inherits from the daemon (which keeps `SLURM_CONF`, as
/// Slurm's own commands expect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmCommand {
    pub program: &'static str,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub env_remove: &'static [&'static str],
}

impl SlurmCommand {
    fn new(program: &'static str, args: Vec<OsString>) -> Self {
        Self {
            program,
            args,
            env: Vec::new(),
            env_remove: &[],
        }
    }
}

/// Variables of sbatch's environment that would set what Servitor owns (the name,
/// output, environment, requeueing, array, cluster...) and that no option Servitor
/// passes overrides: a daemon started with them must not change its runs. The
/// others (SBATCH_ACCOUNT, SBATCH_PARTITION...) are a site's defaults, and stay.
const OWNED_SBATCH_VARIABLES: &[&str] = &[
    "SBATCH_ARRAY_INX",
    "SBATCH_CLUSTERS",
    "SLURM_CLUSTERS",
    "SBATCH_ERROR",
    "SBATCH_EXPORT",
    "SBATCH_JOB_NAME",
    "SBATCH_NO_REQUEUE",
    "SBATCH_OPEN_MODE",
    "SBATCH_OUTPUT",
    "SBATCH_REQUEUE",
    "SBATCH_WAIT",
];

/// What a run's variables may not be named: sbatch and Slurm read these themselves
/// (`SBATCH_ARRAY_INX` would make an array, `SLURM_CONF` another cluster).
const SLURM_PREFIXES: [&str; 2] = ["SBATCH_", "SLURM_"];

/// One run to submit.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// The working directory (`SERVITOR_ROOT`), absolute.
    pub root: &'a Path,
    pub job: &'a str,
    pub execution: u64,
    /// The job file, absolute: it runs in its folder.
    pub job_file: &'a Path,
    /// The log, `<run>/logs/main.txt`, absolute; its folder exists.
    pub log: &'a Path,
    /// The run's wrapper script (see `wrapper`).
    pub wrapper: &'a Path,
    /// The run's Slurm job name (see `names`).
    pub name: &'a str,
    pub timeout: Option<Duration>,
    pub slurm: &'a SlurmSettings,
    /// The settings' `env`, checked already.
    pub env: &'a IndexMap<String, String>,
    pub inputs: &'a InputValues,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error(
        "{origin} {name} cannot reach a Slurm run: sbatch reads SBATCH_* and SLURM_* \
         variables as its own settings"
    )]
    SlurmVariable { origin: &'static str, name: String },
    #[error(
        "the log path {0:?} holds a backslash, which sbatch's --output drops (it turns \
         off its %-patterns): a Slurm run needs a working directory and job id without one"
    )]
    BackslashInLog(String),
}

/// `sbatch --parsable --no-requeue` for one run: its name, its job's folder, its log
/// (appended: a log may already hold a line from a first attempt) and the
/// environment it inherits, then the settings' resources, then `sbatch_args` (last,
/// so they win over Servitor's defaults such as `--time`), then the wrapper. Inputs
/// and the settings' env reach the job through sbatch's own environment with
/// `--export=ALL`: a `--export=A=x,y` list would cut values at commas.
pub fn sbatch(run: &Submission<'_>) -> Result<SlurmCommand, CommandError> {
    for (origin, names) in [("env", run.env.keys()), ("input", run.inputs.keys())] {
        for name in names {
            if SLURM_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
                return Err(CommandError::SlurmVariable {
                    origin,
                    name: name.clone(),
                });
            }
        }
    }
    let folder = run.job_file.parent().unwrap_or(Path::new("/"));
    let mut args: Vec<OsString> = vec![
        "--parsable".into(),
        "--no-requeue".into(),
        option("--job-name", run.name.as_ref()),
        option("--chdir", folder.as_os_str()),
        option("--output", &output_pattern(run.log)?),
        "--open-mode=append".into(),
        "--export=ALL".into(),
    ];
    if let Some(minutes) = run.timeout.and_then(time_limit_minutes) {
        args.push(format!("--time={minutes}").into());
    }
    let slurm = run.slurm;
    let texts = [
        ("--partition", &slurm.partition),
        ("--mem", &slurm.mem),
        ("--account", &slurm.account),
        ("--qos", &slurm.qos),
        ("--constraint", &slurm.constraint),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            args.push(option(name, value.as_ref()));
        }
    }
    for (name, value) in [("--cpus-per-task", slurm.cpus), ("--gpus", slurm.gpus)] {
        if let Some(value) = value {
            args.push(format!("{name}={value}").into());
        }
    }
    args.extend(slurm.sbatch_args.iter().map(OsString::from));
    args.push(run.wrapper.as_os_str().to_owned());

    let mut env: Vec<(String, String)> = run
        .env
        .iter()
        .chain(run.inputs)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // Last: nothing overrides these, as for local runs.
    env.extend([
        (env::ROOT.into(), run.root.to_string_lossy().into_owned()),
        (env::JOB.into(), run.job.to_owned()),
        (env::JOB_EXECUTION.into(), run.execution.to_string()),
    ]);
    Ok(SlurmCommand {
        program: "sbatch",
        args,
        env,
        env_remove: OWNED_SBATCH_VARIABLES,
    })
}

/// `--name=value`, whatever bytes `value` holds.
fn option(name: &str, value: &OsStr) -> OsString {
    let mut option = OsString::from(format!("{name}="));
    option.push(value);
    option
}

/// `--output`'s value for `log`: sbatch expands `%j`, `%x`... in it, so each `%` is
/// written `%%`; any backslash in the path turns the expansion off and is dropped
/// (verified on 22.05: the job then fails to start, JobLaunchFailure), so a path
/// with one is refused.
fn output_pattern(log: &Path) -> Result<OsString, CommandError> {
    let bytes = log.as_os_str().as_bytes();
    if bytes.contains(&b'\\') {
        return Err(CommandError::BackslashInLog(log.display().to_string()));
    }
    let mut pattern = Vec::with_capacity(bytes.len());
    for byte in bytes {
        pattern.push(*byte);
        if *byte == b'%' {
            pattern.push(b'%');
        }
    }
    Ok(OsString::from_vec(pattern))
}

/// One listing of all the daemon user's jobs that Slurm still remembers (finished
/// ones for `MinJobAge`, 300 s by default), to be filtered by name prefix with
/// `parse::squeue_output`: `squeue --name` takes exact names only, and
/// `squeue --json` in 22.05 ignores every filter.
pub fn squeue() -> SlurmCommand {
    SlurmCommand::new(
        "squeue",
        vec![
            "--me".into(),
            "--noheader".into(),
            "--states=all".into(),
            format!("--format={SQUEUE_FORMAT}").into(),
        ],
    )
}

/// Cancels a pending job (a running one too: Slurm then sends SIGTERM to all its
/// processes, and SIGKILL after `KillWait`). This is also how a run that outlived
/// its grace is killed: `scancel --signal=KILL` does the same in 22.05 (the job
/// ends CANCELLED once `KillWait` is over), while plain `scancel` says so.
pub fn scancel(job: SlurmJobId) -> SlurmCommand {
    SlurmCommand::new("scancel", vec![job.to_string().into()])
}

/// Sends a running job's stop signal. `--full` reaches the batch shell (the
/// wrapper) and every process of the job, those that left the job's process group
/// too; the wrapper passes it on to the group as well, which within microseconds
/// merges with Slurm's own delivery as a standard signal still pending (once per
/// job in all our trials). A job that traps it decides how it ends, and Slurm's
/// state follows its exit status (COMPLETED, FAILED), not CANCELLED. On a pending
/// job it fails: "Job can not be altered now" (exit status 228): use `scancel`.
pub fn scancel_signal(job: SlurmJobId, signal: Signal) -> SlurmCommand {
    SlurmCommand::new(
        "scancel",
        vec![
            format!("--signal={}", signal_name(signal)).into(),
            "--full".into(),
            job.to_string().into(),
        ],
    )
}

/// `TERM`, as scancel takes it; a number for others.
fn signal_name(signal: Signal) -> String {
    let known = [
        (Signal::INT, "INT"),
        (Signal::TERM, "TERM"),
        (Signal::HUP, "HUP"),
        (Signal::QUIT, "QUIT"),
        (Signal::USR1, "USR1"),
        (Signal::USR2, "USR2"),
        (Signal::KILL, "KILL"),
    ];
    known.iter().find(|(s, _)| *s == signal).map_or_else(
        || signal.as_raw().to_string(),
        |(_, name)| (*name).to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    struct Paths {
        root: PathBuf,
        job_file: PathBuf,
        log: PathBuf,
        wrapper: PathBuf,
    }

    fn paths(root: &str, job: &str) -> Paths {
        let root = PathBuf::from(root);
        let run = root.join("state/jobs").join(job).join("executions/7");
        Paths {
            job_file: root.join("config/jobs").join(job),
            log: run.join("logs/main.txt"),
            wrapper: run.join("slurm_wrapper.sh"),
            root,
        }
    }

    fn submission<'a>(
        paths: &'a Paths,
        job: &'a str,
        slurm: &'a SlurmSettings,
        env: &'a IndexMap<String, String>,
        inputs: &'a InputValues,
    ) -> Submission<'a> {
        Submission {
            root: &paths.root,
            job,
            execution: 7,
            job_file: &paths.job_file,
            log: &paths.log,
            wrapper: &paths.wrapper,
            name: "servitor-0123456789abcdef-fedcba9876543210-7-greet",
            timeout: None,
            slurm,
            env,
            inputs,
        }
    }

    fn words(command: &SlurmCommand) -> Vec<String> {
        command
            .args
            .iter()
            .map(|a| a.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_plain_run() {
        let paths = paths("/srv/servitor", "demo/greet");
        let (slurm, env, inputs) = Default::default();
        let command = sbatch(&submission(&paths, "demo/greet", &slurm, &env, &inputs)).unwrap();
        assert_eq!(command.program, "sbatch");
        assert_eq!(
            words(&command),
            [
                "--parsable",
                "--no-requeue",
                "--job-name=servitor-0123456789abcdef-fedcba9876543210-7-greet",
                "--chdir=/srv/servitor/config/jobs/demo",
                "--output=/srv/servitor/state/jobs/demo/greet/executions/7/logs/main.txt",
                "--open-mode=append",
                "--export=ALL",
                "/srv/servitor/state/jobs/demo/greet/executions/7/slurm_wrapper.sh",
            ]
        );
        assert_eq!(
            command.env,
            [
                ("SERVITOR_ROOT".into(), "/srv/servitor".into()),
                ("SERVITOR_JOB".into(), "demo/greet".into()),
                ("SERVITOR_JOB_EXECUTION".into(), "7".into()),
            ]
        );
        assert!(command.env_remove.contains(&"SBATCH_ARRAY_INX"));
        assert!(!command.env_remove.contains(&"SBATCH_PARTITION"));
    }

    #[test]
    fn every_setting_and_the_timeout() {
        let paths = paths("/srv/servitor", "train");
        let slurm = SlurmSettings {
            partition: Some("gpu".into()),
            cpus: Some(8),
            mem: Some("16G".into()),
            gpus: Some(1),
            account: Some("lab".into()),
            qos: Some("normal".into()),
            constraint: Some("a100&ib".into()),
            sbatch_args: vec!["--exclusive".into(), "-N".into(), "1".into()],
        };
        let env = IndexMap::from([("MODE".to_owned(), "fast, then slow".to_owned())]);
        let inputs = IndexMap::from([
            ("LIST".to_owned(), "a,b,c".to_owned()),
            ("TEXT".to_owned(), "line 1\nline 2".to_owned()),
            // The job's own values cannot override Servitor's.
            ("MODE".to_owned(), "input wins over env".to_owned()),
        ]);
        let mut run = submission(&paths, "train", &slurm, &env, &inputs);
        run.timeout = Some(Duration::from_secs(90));
        let command = sbatch(&run).unwrap();
        let args = words(&command);
        assert_eq!(
            args[7..],
            [
                "--time=2",
                "--partition=gpu",
                "--mem=16G",
                "--account=lab",
                "--qos=normal",
                "--constraint=a100&ib",
                "--cpus-per-task=8",
                "--gpus=1",
                "--exclusive",
                "-N",
                "1",
                "/srv/servitor/state/jobs/train/executions/7/slurm_wrapper.sh",
            ]
        );
        assert!(!args.iter().any(|a| a.starts_with("--export=ALL,")));
        assert_eq!(
            command.env[..3],
            [
                ("MODE".into(), "fast, then slow".into()),
                ("LIST".into(), "a,b,c".into()),
                ("TEXT".into(), "line 1\nline 2".into()),
            ]
        );
        assert_eq!(
            command.env[3],
            ("MODE".into(), "input wins over env".into())
        );
    }

    #[test]
    fn odd_paths_reach_sbatch_intact() {
        let job = "100% \"sure\"/it's ünï";
        let odd = paths("/srv/my servitor", job);
        let (slurm, env, inputs) = Default::default();
        let command = sbatch(&submission(&odd, job, &slurm, &env, &inputs)).unwrap();
        let args = words(&command);
        assert_eq!(
            args[3],
            "--chdir=/srv/my servitor/config/jobs/100% \"sure\""
        );
        assert_eq!(
            args[4],
            "--output=/srv/my servitor/state/jobs/100%% \"sure\"/it's ünï/executions/7/logs/main.txt"
        );

        let job = "back\\slash";
        let backslash = paths("/srv/servitor", job);
        let error = sbatch(&submission(&backslash, job, &slurm, &env, &inputs)).unwrap_err();
        assert!(matches!(error, CommandError::BackslashInLog(_)), "{error}");
    }

    #[test]
    fn slurm_variables_are_refused() {
        let paths = paths("/srv/servitor", "job");
        let slurm = SlurmSettings::default();
        let none = IndexMap::new();
        let bad = IndexMap::from([("SBATCH_ARRAY_INX".to_owned(), "1-100".to_owned())]);
        let error = sbatch(&submission(&paths, "job", &slurm, &none, &bad)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "input SBATCH_ARRAY_INX cannot reach a Slurm run: sbatch reads SBATCH_* and \
             SLURM_* variables as its own settings"
        );
        let bad = IndexMap::from([("SLURM_CONF".to_owned(), "/elsewhere".to_owned())]);
        let error = sbatch(&submission(&paths, "job", &slurm, &bad, &none)).unwrap_err();
        assert_eq!(
            error,
            CommandError::SlurmVariable {
                origin: "env",
                name: "SLURM_CONF".into()
            }
        );
    }

    #[test]
    fn squeue_and_scancel() {
        assert_eq!(
            words(&squeue()),
            [
                "--me",
                "--noheader",
                "--states=all",
                "--format=%i|%T|%r|%N|%j"
            ]
        );
        let job = SlurmJobId(42);
        assert_eq!(words(&scancel(job)), ["42"]);
        assert_eq!(
            words(&scancel_signal(job, Signal::INT)),
            ["--signal=INT", "--full", "42"]
        );
        assert_eq!(
            words(&scancel_signal(job, Signal::USR2)),
            ["--signal=USR2", "--full", "42"]
        );
        assert_eq!(signal_name(Signal::ALARM), "14");
    }
}
