//! The local executor: a run is the job file started directly on this machine, in its
//! own folder and process group, with its output going straight to the log file (a
//! daemon crash cannot lose any of it). Its processes carry the run's `SERVITOR_*`
//! variables, which is how they are found again after a restart.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, getpgid};
use servitor_shared::os::error_text;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};

use super::process_group::{self, all_ended, watch_all};
use super::{Exit, Launch, Progress, StartError, Stop, processes};
use crate::jobs::id::RunId;

pub struct Local {
    /// The working directory: runs carry it as `SERVITOR_ROOT`.
    root: PathBuf,
}

pub struct Process {
    run: RunId,
    root: PathBuf,
    /// Told the lifecycle it runs: a local run runs from its start.
    told_running: bool,
    state: State,
}

enum State {
    /// Started by this daemon: its child, and so its exit status, are ours.
    Child {
        child: Child,
        group: u32,
    },
    /// Re-found after a restart: watched through pidfds; its exit status is not ours
    /// to read.
    Adopted {
        pids: Vec<i32>,
        pidfds: Vec<AsyncFd<OwnedFd>>,
        groups: Vec<u32>,
    },
    Ended,
}

impl Local {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// Starts the job file. The log is opened, and so made, just before (appending: a
    /// run re-queued after a crash keeps what its first attempt wrote). Holds the
    /// thread until the child has exec'd (a vfork): cheaper than a trip to another
    /// thread and back.
    pub fn start(&self, launch: &Launch) -> Result<Process, StartError> {
        let log = open_log(&launch.log).map_err(|e| StartError::Log {
            path: launch.log.clone(),
            reason: error_text(&e),
        })?;
        let folder = launch.program.parent().unwrap_or(Path::new("/"));
        let spawned = log.try_clone().and_then(|stderr| {
            Command::new(&launch.program)
                .current_dir(folder)
                .stdin(Stdio::null())
                .stderr(stderr)
                .stdout(log)
                .process_group(0)
                .envs(launch.environment())
                .spawn()
        });
        let child = spawned.map_err(|e| StartError::Spawn(error_text(&e)))?;
        let group = child.id().unwrap_or_default();
        Ok(Process {
            run: launch.run.clone(),
            root: self.root.clone(),
            told_running: false,
            state: State::Child { child, group },
        })
    }

    /// The runs among `runs` whose processes are alive: adopted, to be watched until
    /// they end.
    pub async fn refind(&self, runs: Vec<RunId>) -> Vec<(RunId, Process)> {
        if runs.is_empty() {
            return Vec::new();
        }
        let root = self.root.clone();
        let Ok(mut alive) = tokio::task::spawn_blocking(move || processes::find(&root)).await
        else {
            return Vec::new();
        };
        runs.into_iter()
            .filter_map(|run| {
                let pids = alive.remove(&run)?;
                let pidfds = watch_all(&pids);
                let mut groups: Vec<u32> = pids
                    .iter()
                    .filter_map(|pid| getpgid(Pid::from_raw(*pid)).ok())
                    .map(|group| group.as_raw_nonzero().get().unsigned_abs())
                    .collect();
                groups.sort_unstable();
                groups.dedup();
                let process = Process {
                    run: run.clone(),
                    root: self.root.clone(),
                    told_running: false,
                    state: State::Adopted {
                        pids,
                        pidfds,
                        groups,
                    },
                };
                Some((run, process))
            })
            .collect()
    }
}

impl Process {
    pub async fn next(&mut self) -> Progress {
        if !self.told_running {
            self.told_running = true;
            return Progress::Running;
        }
        let exit = match &mut self.state {
            State::Child { child, .. } => exit(child.wait().await),
            State::Adopted { pidfds, .. } => {
                all_ended(pidfds).await;
                Exit::Unobserved
            }
            State::Ended => return std::future::pending().await,
        };
        self.state = State::Ended;
        Progress::Ended(exit)
    }

    pub async fn stop(&mut self, stop: Stop) -> (Exit, String) {
        let state = std::mem::replace(&mut self.state, State::Ended);
        let (exit, how) = match state {
            State::Child { mut child, group } => {
                let (status, how) =
                    process_group::stop(&[group], stop.signal, stop.grace, child.wait()).await;
                (exit(status), how)
            }
            State::Adopted { pidfds, groups, .. } => {
                let ((), how) =
                    process_group::stop(&groups, stop.signal, stop.grace, all_ended(&pidfds)).await;
                (Exit::Unobserved, how)
            }
            State::Ended => return (Exit::Lost("it had already ended".into()), String::new()),
        };
        // Processes that left the run's group (`setsid`) are killed too.
        let (root, run) = (self.root.clone(), self.run.clone());
        let _ = tokio::task::spawn_blocking(move || processes::kill_leftovers(&root, &run)).await;
        (exit, how)
    }

    pub fn describe(&self) -> String {
        match &self.state {
            State::Child { group, .. } => format!("pid {group}"),
            State::Adopted { pids, .. } => format!("pids {pids:?}"),
            State::Ended => "ended".into(),
        }
    }
}

fn exit(status: io::Result<ExitStatus>) -> Exit {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Lost("it ended in a way that has no exit code".into()),
        },
        Err(e) => Exit::Lost(format!("lost track of the process: {}", error_text(&e))),
    }
}

fn open_log(path: &Path) -> io::Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
    };
    match open() {
        // An execution made by the old tool has no logs/ yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()
        }
        opened => opened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals() {
        assert_eq!(exit(Ok(ExitStatus::from_raw(42 << 8))), Exit::Code(42));
        assert_eq!(exit(Ok(ExitStatus::from_raw(9))), Exit::Signal(9));
        assert_eq!(exit(Ok(ExitStatus::from_raw(0))), Exit::Code(0));
        assert_eq!(
            exit(Err(io::Error::from_raw_os_error(10))),
            Exit::Lost("lost track of the process: No child processes".into())
        );
    }
}
