//! Hooks: executables in `config/hooks/` that run when a run ends, e.g. to send a
//! mail on failure. A hook named `on_<event>` (or `on_<event>.<anything>`, so several
//! can share an event) runs for that event: `on_success`, `on_failure`,
//! `on_cancelled`, or `on_end` for every end.
//!
//! Hooks run after the run's result is recorded, a few at a time, off the workers: a
//! failing or hanging hook (stopped after its timeout) never touches a job's result
//! or holds up other runs. Each hook's output goes to `state/hooks/<hook>.log`, between
//! a line saying which run it was for and a line saying how it ended.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use servitor_shared::{ExecutionStatus, RunResult, env};
use tokio::process::Command;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::executor::process_group;
use crate::jobs::catalog::is_executable_file;
use crate::jobs::id::RunId;
use crate::signal::Signal;
use crate::state::Workdir;
use crate::state::timestamp;

/// Hooks running at once; more wait their turn.
const AT_ONCE: usize = 4;
/// How long a stopped hook may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct Hooks {
    dir: PathBuf,
    logs_dir: PathBuf,
    root: PathBuf,
    timeout: Duration,
    turns: Arc<Semaphore>,
    running: TaskTracker,
    /// The daemon's main runtime: hooks outlive the worker threads that report the ends.
    runtime: Handle,
}

/// A run that has ended, as hooks learn of it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub run: RunId,
    pub status: ExecutionStatus,
    pub result: RunResult,
    /// How long its process ran; `None` when it never started.
    pub ran: Option<Duration>,
    pub log: PathBuf,
    /// A failure that the job's `retry` setting retries: not the final word.
    pub will_retry: bool,
}

impl Hooks {
    pub fn new(workdir: &Workdir, timeout: Duration) -> Self {
        Self {
            dir: workdir.hooks_dir(),
            logs_dir: workdir.hook_logs_dir(),
            root: workdir.root().to_owned(),
            timeout,
            turns: Arc::new(Semaphore::new(AT_ONCE)),
            running: TaskTracker::new(),
            runtime: Handle::current(),
        }
    }

    /// Starts the hooks for this end, if there are any, in a task of their own. Reads
    /// the hooks folder: call it where blocking is allowed, as the run lifecycle does.
    pub fn run_ended(self: &Arc<Self>, ended: Ended) {
        let hooks = self.matching(ended.status);
        if hooks.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        let task = async move {
            for hook in hooks {
                let Ok(_turn) = this.turns.acquire().await else {
                    return;
                };
                this.run_one(&hook, &ended).await;
            }
        };
        self.running.spawn_on(task, &self.runtime);
    }

    /// Waits for the hooks still running (each is bounded by the timeout).
    pub async fn wait(&self) {
        self.running.close();
        self.running.wait().await;
    }

    fn matching(&self, status: ExecutionStatus) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let events = ["on_end".to_owned(), format!("on_{status}")];
        let mut hooks: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                events.iter().any(|event| {
                    name.strip_prefix(event.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                })
            })
            .map(|entry| entry.path())
            .filter(|path| fs::metadata(path).is_ok_and(|meta| is_executable_file(&meta)))
            .collect();
        hooks.sort();
        hooks
    }

    async fn run_one(&self, hook: &Path, run: &Ended) {
        let name = hook
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let about = format!("{} ({})", run.run, run.status);
        let log = match self.open_log(&name) {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(hook = %name, "cannot open the hook's log: {e}");
                return;
            }
        };
        let _ = writeln!(&log, "--- {} {name} for {about}", timestamp::now());
        let started = Instant::now();
        let spawned = log.try_clone().and_then(|stderr| {
            Command::new(hook)
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(stderr)
                .process_group(0)
                .env(env::ROOT, &self.root)
                .env(env::HOOK, &name)
                .env(env::JOB, run.run.job.as_str())
                .env(env::JOB_EXECUTION, run.run.execution.to_string())
                .env(env::STATUS, run.status.as_str())
                .env(env::EXIT_CODE, run.result.exit_code.to_string())
                .env(env::MESSAGE, &run.result.message)
                .env(
                    env::DURATION,
                    run.ran
                        .map(|d| format!("{:.3}", d.as_secs_f64()))
                        .unwrap_or_default(),
                )
                .env(env::LOG, &run.log)
                .env(env::WILL_RETRY, if run.will_retry { "1" } else { "0" })
                .spawn()
        });
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(hook = %name, run = %about, "hook could not start: {e}");
                let _ = writeln!(&log, "--- could not start: {e}");
                return;
            }
        };
        let group = child.id().unwrap_or_default();
        let ending = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map(|s| format!("{s}")),
            Err(_) => {
                let (status, how) =
                    process_group::stop(&[group], Signal::TERM, STOP_GRACE, child.wait()).await;
                status.map(|s| {
                    format!(
                        "timed out after {}: {how} ({s})",
                        humantime::format_duration(self.timeout)
                    )
                })
            }
        };
        let ending = ending.unwrap_or_else(|e| format!("lost: {e}"));
        let took = started.elapsed();
        let _ = writeln!(
            &log,
            "--- {} {name} ended: {ending} in {took:.2?}",
            timestamp::now()
        );
        tracing::info!(hook = %name, run = %about, ending = %ending, "hook ran");
    }

    fn open_log(&self, name: &str) -> std::io::Result<fs::File> {
        fs::create_dir_all(&self.logs_dir)?;
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.logs_dir.join(format!("{name}.log")))
    }
}
