//! Executors: how a run's process is started, watched, signalled, and found again after
//! a restart. The run lifecycle drives every run the same way, whatever executes it:
//!
//! 1. [`Executors::start`] starts a run from its [`Launch`] and hands back its
//!    [`Process`], owned by the one task that watches the run;
//! 2. [`Process::next`] tells what happens next: the run is running, or it ended
//!    (with an [`Exit`]);
//! 3. [`Process::stop`] asks it to stop with a signal, and kills it after a grace period;
//! 4. after a restart, [`Executors::refind`] gives back the processes of runs that
//!    are still going.
//!
//! An executor that only learns what happens by asking (a batch scheduler polled for
//! its jobs' states) fits the same shape: its `next` resolves when a poll says the
//! run started or ended.
//!
//! The local executor runs the job file as a process group of this machine; the
//! Slurm executor submits it as a batch job to a cluster and follows it by polling.

mod local;
pub mod process_group;
mod processes;
mod slurm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use servitor_shared::{InputValues, SlurmPlacement, env};

pub use self::slurm::SlurmConfig;
use crate::jobs::id::RunId;
use crate::jobs::settings::ExecutorChoice;
use crate::signal::Signal;

/// What a run needs to start, whatever runs it.
#[derive(Debug)]
pub struct Launch {
    pub run: RunId,
    /// The working directory, given to the run as `SERVITOR_ROOT`.
    pub root: PathBuf,
    /// The job file, started directly (no shell) in its own folder.
    pub program: PathBuf,
    /// The settings' `env`, then the run's inputs, added to servitord's environment.
    pub env: IndexMap<String, String>,
    pub inputs: InputValues,
    /// The run's folder, where an executor may keep files of its own.
    pub run_dir: PathBuf,
    /// The run's log: stdout and stderr go there.
    pub log: PathBuf,
    /// The job's `timeout` (servitord enforces it; an executor may pass it on).
    pub timeout: Option<Duration>,
}

impl Launch {
    /// The variables a run adds to servitord's environment, in order (a later name
    /// wins): the settings' `env`, the inputs, then the `SERVITOR_*` variables, which
    /// nothing overrides.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .env
            .iter()
            .chain(&self.inputs)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend([
            (env::ROOT.to_owned(), self.root.display().to_string()),
            (env::JOB.to_owned(), self.run.job.to_string()),
            (
                env::JOB_EXECUTION.to_owned(),
                self.run.execution.to_string(),
            ),
        ]);
        vars
    }
}

/// How a run's process ended, as far as its executor can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// It ended, but how cannot be observed (a process re-found after a restart is not
    /// servitord's child).
    Unobserved,
    /// The executor lost track of it, for this reason.
    Lost(String),
    /// It ended badly by its executor's account (a cluster stopped it at its time
    /// limit, say), whatever exit code it may have left: `code` if it left one.
    Failed { code: Option<i32>, message: String },
}

/// What a started run's watcher learns next.
#[derive(Debug)]
pub enum Progress {
    /// Where the run went, as the execution shows it (a cluster's job id and node).
    Placed(Placement),
    /// The run is running (it may have been waiting, on another machine's queue).
    Running,
    Ended(Exit),
}

/// Where a run went, for executors that place runs elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Slurm(SlurmPlacement),
}

/// How to stop a run: the signal that asks, and how long it may take before it is
/// killed.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub signal: Signal,
    pub grace: Duration,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its log cannot be opened.
    #[error("cannot open the log {}: {reason}", path.display())]
    Log { path: PathBuf, reason: String },
    /// It cannot be started: the OS's words ("No such file or directory"), as the old
    /// tool recorded them.
    #[error("{0}")]
    Spawn(String),
}

/// A started run, owned by the one task that watches it.
pub enum Process {
    Local(local::Process),
    Slurm(slurm::Process),
}

impl Process {
    /// What happens next to the run. Cancel-safe: a call dropped before it resolves
    /// loses nothing.
    pub async fn next(&mut self) -> Progress {
        match self {
            Self::Local(process) => process.next().await,
            Self::Slurm(process) => process.next().await,
        }
    }

    /// Stops the run: `stop.signal`, then SIGKILL after `stop.grace`; returns how it
    /// ended and how it was stopped ("stopped by SIGINT", "killed by SIGKILL after 10s").
    pub async fn stop(&mut self, stop: Stop) -> (Exit, String) {
        match self {
            Self::Local(process) => process.stop(stop).await,
            Self::Slurm(process) => process.stop(stop).await,
        }
    }

    /// Which executor runs it, as metrics label it.
    pub fn executor(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Slurm(_) => "slurm",
        }
    }

    /// What to call it in the daemon's log (`pid 4242`, `Slurm job 17`).
    pub fn describe(&self) -> String {
        match self {
            Self::Local(process) => process.describe(),
            Self::Slurm(process) => process.describe(),
        }
    }
}

/// The executors of a daemon.
pub struct Executors {
    local: local::Local,
    slurm: slurm::Slurm,
}

impl Executors {
    /// `root` is the working directory (given to runs as `SERVITOR_ROOT`).
    pub fn new(root: &Path, slurm: SlurmConfig) -> Self {
        Self {
            local: local::Local::new(root),
            slurm: slurm::Slurm::new(root, slurm),
        }
    }

    /// Starts a run where its settings say. A local start holds the thread for a
    /// moment (a vfork); a Slurm one waits for `sbatch`.
    pub async fn start(
        &self,
        launch: &Launch,
        executor: &ExecutorChoice,
    ) -> Result<Process, StartError> {
        match executor {
            ExecutorChoice::Local => self.local.start(launch).map(Process::Local),
            ExecutorChoice::Slurm(settings) => {
                self.slurm.start(launch, settings).await.map(Process::Slurm)
            }
        }
    }

    /// The processes of these runs that are still going after a restart (or, for runs
    /// on a cluster, that can still tell how they ended); runs left out are gone.
    /// `run_dirs` gives each run's folder.
    pub async fn refind(&self, runs: Vec<(RunId, PathBuf)>) -> HashMap<RunId, Process> {
        let (remote, local): (Vec<_>, Vec<_>) = runs
            .into_iter()
            .partition(|(_, dir)| slurm::was_submitted(dir));
        let mut found: HashMap<RunId, Process> = self
            .local
            .refind(local.into_iter().map(|(run, _)| run).collect())
            .await
            .into_iter()
            .map(|(run, process)| (run, Process::Local(process)))
            .collect();
        found.extend(remote.into_iter().map(|(run, dir)| {
            let process = self.slurm.refind(&run, &dir);
            (run, Process::Slurm(process))
        }));
        found
    }

    /// The Slurm executor's counters, for monitoring.
    pub fn slurm_polls(&self) -> u64 {
        self.slurm.polls()
    }
}
