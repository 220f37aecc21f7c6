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
//! The local executor runs the job file as a process group of this machine.

mod local;
pub mod process_group;
mod processes;
mod slurm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::jobs::id::RunId;
use crate::signal::Signal;

/// What a run needs to start, whatever runs it.
#[derive(Debug)]
pub struct Launch {
    pub run: RunId,
    /// The job file, started directly (no shell) in its own folder.
    pub program: PathBuf,
    /// Added to servitord's environment, in order (a later name wins).
    pub env: Vec<(String, String)>,
    /// The run's log: stdout and stderr go there.
    pub log: PathBuf,
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
}

/// What a started run's watcher learns next.
#[derive(Debug)]
pub enum Progress {
    /// The run is running (it may have been waiting, on another machine's queue).
    Running,
    Ended(Exit),
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
}

impl Process {
    /// What happens next to the run. Cancel-safe: a call dropped before it resolves
    /// loses nothing.
    pub async fn next(&mut self) -> Progress {
        match self {
            Self::Local(process) => process.next().await,
        }
    }

    /// Stops the run: `stop.signal`, then SIGKILL after `stop.grace`; returns how it
    /// ended and how it was stopped ("stopped by SIGINT", "killed by SIGKILL after 10s").
    pub async fn stop(&mut self, stop: Stop) -> (Exit, String) {
        match self {
            Self::Local(process) => process.stop(stop).await,
        }
    }

    /// What to call it in the daemon's log (`pid 4242`).
    pub fn describe(&self) -> String {
        match self {
            Self::Local(process) => process.describe(),
        }
    }
}

/// The executors of a daemon.
pub struct Executors {
    local: local::Local,
}

impl Executors {
    /// `root` is the working directory (given to runs as `SERVITOR_ROOT`).
    pub fn new(root: &Path) -> Self {
        Self {
            local: local::Local::new(root),
        }
    }

    /// Starts a run. On a worker's thread: it may block for a moment.
    pub fn start(&self, launch: &Launch) -> Result<Process, StartError> {
        self.local.start(launch).map(Process::Local)
    }

    /// The processes of these runs that are still going after a restart; runs left out
    /// are gone.
    pub async fn refind(&self, runs: Vec<RunId>) -> HashMap<RunId, Process> {
        self.local
            .refind(runs)
            .await
            .into_iter()
            .map(|(run, process)| (run, Process::Local(process)))
            .collect()
    }
}
