//! The pieces together against a real Slurm cluster: the wrapper, the commands, the
//! runner and the parsers. They run where `sbatch` is on `PATH` and `SLURM_CONF` is
//! set (`eval "$(scripts/slurm-local.sh start)"`); they are skipped only where
//! `sbatch` is absent and `SERVITOR_SKIP_SLURM_TESTS=1`, and fail otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::time::Instant;

use super::cli::{self, CliError};
use super::command::{self, SlurmCommand, Submission};
use super::names::{DaemonPrefix, host_name};
use super::parse::{self, ExitCode, JobState, QueueEntry, SlurmJobId};
use super::wrapper::{self, EXIT_CODE_FILE};
use crate::jobs::slurm::SlurmSettings;
use crate::signal::Signal;

/// Bound on each Slurm command.
const CALL: Duration = Duration::from_secs(30);
/// Bound on each wait for the cluster; reached only when something is wrong.
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);

/// Whether the tests can reach a cluster; panics when they should and cannot.
fn cluster_available() -> bool {
    let sbatch = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("sbatch").is_file()));
    let conf = std::env::var_os("SLURM_CONF").is_some_and(|c| !c.is_empty());
    if sbatch && conf {
        return true;
    }
    if !sbatch && std::env::var("SERVITOR_SKIP_SLURM_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "skipping the Slurm cluster tests: sbatch is not installed and \
             SERVITOR_SKIP_SLURM_TESTS=1"
        );
        return false;
    }
    panic!(
        "the Slurm cluster tests need a cluster (sbatch on PATH: {sbatch}, SLURM_CONF set: \
         {conf}): start the local one with `eval \"$(scripts/slurm-local.sh start)\"`, or \
         set SERVITOR_SKIP_SLURM_TESTS=1 where sbatch is not installed"
    );
}

/// A working directory of a daemon that submits to the cluster.
struct Daemon {
    _dir: tempfile::TempDir,
    /// As the daemon makes its root: absolute, without symbolic links.
    root: PathBuf,
    prefix: DaemonPrefix,
}

/// A run prepared for submission: its job file, log and wrapper exist.
struct Run {
    job: String,
    job_file: PathBuf,
    run_dir: PathBuf,
    log: PathBuf,
    wrapper: PathBuf,
    name: String,
}

impl Daemon {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let prefix = DaemonPrefix::new(&host_name(), &root);
        Self {
            _dir: dir,
            root,
            prefix,
        }
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn run(&self, job: &str, body: &str) -> Run {
        let job_file = self.root().join("config/jobs").join(job);
        fs::create_dir_all(job_file.parent().unwrap()).unwrap();
        fs::write(&job_file, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&job_file, fs::Permissions::from_mode(0o755)).unwrap();
        let run_dir = self
            .root()
            .join("state/jobs")
            .join(job)
            .join("executions/1");
        let log = run_dir.join("logs/main.txt");
        fs::create_dir_all(log.parent().unwrap()).unwrap();
        let wrapper = wrapper::write(&job_file, &run_dir).unwrap();
        Run {
            job: job.to_owned(),
            name: self.prefix.run_name(job, 1),
            job_file,
            run_dir,
            log,
            wrapper,
        }
    }

    fn sbatch(
        &self,
        run: &Run,
        slurm: &SlurmSettings,
        inputs: &IndexMap<String, String>,
    ) -> SlurmCommand {
        let env = IndexMap::from([("GREETING".to_owned(), "hello, world".to_owned())]);
        command::sbatch(&Submission {
            root: self.root(),
            job: &run.job,
            execution: 1,
            job_file: &run.job_file,
            log: &run.log,
            wrapper: &run.wrapper,
            name: &run.name,
            timeout: Some(Duration::from_secs(300)),
            slurm,
            env: &env,
            inputs,
        })
        .unwrap()
    }

    async fn submit(&self, run: &Run, slurm: &SlurmSettings) -> SlurmJobId {
        let output = cli::run(&self.sbatch(run, slurm, &IndexMap::new()), CALL)
            .await
            .unwrap();
        parse::sbatch_output(&output.stdout).unwrap().job_id
    }

    /// One `squeue` listing of this daemon's jobs.
    async fn listing(&self) -> Vec<QueueEntry> {
        let output = cli::run(&command::squeue(), CALL).await.unwrap();
        parse::squeue_output(&output.stdout, &self.prefix).entries
    }

    /// Waits until every run in `runs` is in a state `done` accepts, polling with
    /// one listing for all; returns their entries, in order.
    async fn wait_for(&self, runs: &[&Run], done: impl Fn(&JobState) -> bool) -> Vec<QueueEntry> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let listing = self.listing().await;
            let found: Vec<_> = runs
                .iter()
                .filter_map(|run| listing.iter().find(|e| e.name == run.name).cloned())
                .collect();
            if found.len() == runs.len() && found.iter().all(|e| done(&e.state)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "waited {DEADLINE:?}; last listing: {listing:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Run {
    /// Waits for the wrapper's exit code file (the job's state can be final a moment
    /// before a shared filesystem shows it; here it is local).
    async fn exit_code(&self) -> ExitCode {
        let path = self.run_dir.join(EXIT_CODE_FILE);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(bytes) = fs::read(&path) {
                return parse::exit_code(&bytes).unwrap();
            }
            assert!(Instant::now() < deadline, "no {}", path.display());
            tokio::time::sleep(POLL).await;
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the job's log holds `text`.
    async fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in {}",
                self.log.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

#[tokio::test]
async fn runs_are_submitted_listed_and_followed_to_their_exit_code() {
    if !cluster_available() {
        return;
    }
    let daemon = Daemon::new();
    let ok = daemon.run("ok", "echo fine");
    let failing = daemon.run(
        "with space/it's \"odd\" 100%.sh",
        "pwd\n\
         printf '[%s]\\n' \"$GREETING\" \"$LIST\" \"$TEXT\" \"$SERVITOR_JOB\" \
         \"$SERVITOR_JOB_EXECUTION\" \"$SERVITOR_ROOT\"\n\
         echo to stderr >&2\n\
         exit 3",
    );
    let inputs = IndexMap::from([
        ("LIST".to_owned(), "a,b,c".to_owned()),
        ("TEXT".to_owned(), "two  spaces\nand a newline".to_owned()),
    ]);
    let slurm = SlurmSettings::default();
    let submitted = cli::run(&daemon.sbatch(&failing, &slurm, &inputs), CALL)
        .await
        .unwrap();
    let failing_id = parse::sbatch_output(&submitted.stdout).unwrap().job_id;
    let ok_id = daemon.submit(&ok, &slurm).await;

    // Both in one listing, picked out by the daemon's prefix, each by its own name.
    let ended = daemon.wait_for(&[&ok, &failing], JobState::is_final).await;
    assert_eq!(ended[0].job_id, ok_id);
    assert_eq!(ended[0].state, JobState::Completed);
    assert_eq!(ended[1].job_id, failing_id);
    assert_eq!(ended[1].state, JobState::Failed);
    assert_eq!(ended[1].reason, "NonZeroExitCode");
    assert!(ended[1].node.is_some());
    assert!(
        ended.iter().all(|e| daemon.prefix.parse(&e.name).is_some()),
        "{ended:?}"
    );

    assert_eq!(ok.exit_code().await, ExitCode(0));
    assert_eq!(ok.log(), "fine\n");
    assert_eq!(failing.exit_code().await, ExitCode(3));
    let folder = failing.job_file.parent().unwrap();
    assert_eq!(
        failing.log(),
        format!(
            "{}\n[hello, world]\n[a,b,c]\n[two  spaces\nand a newline]\n[{}]\n[1]\n[{}]\n\
             to stderr\n",
            folder.display(),
            failing.job,
            daemon.root().display(),
        )
    );
}

#[tokio::test]
async fn cancelling_a_pending_and_a_running_run() {
    if !cluster_available() {
        return;
    }
    let daemon = Daemon::new();
    let held = SlurmSettings {
        sbatch_args: vec!["--hold".into()],
        ..SlurmSettings::default()
    };
    let pending = daemon.run("pending", "echo never");
    let pending_id = daemon.submit(&pending, &held).await;
    let running = daemon.run(
        "running",
        "trap 'echo got TERM; exit 42' TERM\n\
         echo ready\n\
         while :; do sleep 1 & wait $!; done",
    );
    let running_id = daemon.submit(&running, &SlurmSettings::default()).await;
    let entries = daemon
        .wait_for(&[&pending, &running], |state| {
            matches!(state, JobState::Pending | JobState::Running)
        })
        .await;
    assert_eq!(entries[0].state, JobState::Pending);
    assert_eq!(entries[0].reason, "JobHeldUser");
    assert_eq!(entries[0].node, None);

    // A signal cannot reach a pending job: scancel --signal retries "Job can not be
    // altered now" for about 95 s, then fails (exit 228). Plain scancel cancels it.
    let error = cli::run(
        &command::scancel_signal(pending_id, Signal::TERM),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, CliError::TimedOut { .. } | CliError::Failed { .. }),
        "{error}"
    );
    cli::run(&command::scancel(pending_id), CALL).await.unwrap();

    // A running one gets the stop signal; it traps it and decides how it ends.
    daemon
        .wait_for(&[&running], |state| *state == JobState::Running)
        .await;
    running.wait_for_log("ready\n").await;
    cli::run(&command::scancel_signal(running_id, Signal::TERM), CALL)
        .await
        .unwrap();

    let ended = daemon
        .wait_for(&[&pending, &running], JobState::is_final)
        .await;
    assert_eq!(ended[0].state, JobState::Cancelled);
    assert!(!pending.run_dir.join(EXIT_CODE_FILE).exists());
    assert_eq!(fs::read(&pending.log).unwrap_or_default(), b"");
    assert_eq!(ended[1].state, JobState::Failed, "it exited with 42");
    assert_eq!(running.exit_code().await, ExitCode(42));
    let log = running.log();
    assert!(log.starts_with("ready\n"), "{log}");
    assert!(log.ends_with("got TERM\n"), "{log}");
    // Slurm adds its own line to the log when it signals a job.
    assert!(log.contains(&format!("*** JOB {running_id} ON ")), "{log}");
}

#[tokio::test]
async fn a_refused_submission_says_why() {
    if !cluster_available() {
        return;
    }
    let daemon = Daemon::new();
    let run = daemon.run("refused", "true");
    let slurm = SlurmSettings {
        partition: Some("servitor-no-such-partition".into()),
        ..SlurmSettings::default()
    };
    let error = cli::run(&daemon.sbatch(&run, &slurm, &IndexMap::new()), CALL)
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), Some(1));
    assert!(
        error
            .to_string()
            .ends_with("Batch job submission failed: Invalid partition name specified"),
        "{error}"
    );
    // Refused outright: nothing under its name.
    let listing = daemon.listing().await;
    assert!(listing.iter().all(|e| e.name != run.name), "{listing:?}");
}
