//! The worker pool: takes runs off the queue and executes them, one task owning each
//! child process from spawn to result.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use servitor_shared::inputs::SECRET_MASK;
use servitor_shared::{ExecutionStatus, InputValues, RunResult};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, Entry};
use crate::hooks::{Ended, Hooks};
use crate::metrics::Metrics;
use crate::process_group::{self, Signal};
use crate::queue::{RunKey, RunQueue, Ticket};
use crate::retention;
use crate::run_processes;
use crate::settings::Settings;
use crate::state_files::TIMED_OUT;
use crate::store::Store;

pub struct Runner {
    store: Arc<Store>,
    queue: Arc<RunQueue>,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    hooks: Arc<Hooks>,
    /// `<wd>`, given to jobs as `SERVITOR_ROOT`.
    root: PathBuf,
}

/// Why a started process was stopped before it ended by itself.
enum Stopped {
    Cancelled,
    TimedOut(Duration),
}

/// How a started process ended.
struct Ending {
    status: io::Result<ExitStatus>,
    /// Why it was stopped, and how ("stopped by SIGINT").
    stopped: Option<(Stopped, String)>,
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        queue: Arc<RunQueue>,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        hooks: Arc<Hooks>,
        root: PathBuf,
    ) -> Self {
        Self {
            store,
            queue,
            catalog,
            metrics,
            hooks,
            root,
        }
    }

    /// Starts `count` workers, each on a thread of its own, so that no load on the API
    /// (a crowd of event streams, say) delays a run's steps: the OS shares the CPUs
    /// between threads fairly, where one runtime would queue a run's next step behind
    /// every stream woken before it. One thread per worker, like the floor's spawning
    /// loops: starting a process holds its thread (a vfork), and holds up no other
    /// worker. The workers begin once `start` is cancelled (restart recovery is done)
    /// and stop taking runs once `shutdown` is; the answer's `recv` gives `None` when
    /// their last runs have ended.
    pub fn spawn_workers(
        self: &Arc<Self>,
        count: usize,
        start: CancellationToken,
        shutdown: CancellationToken,
    ) -> io::Result<mpsc::Receiver<()>> {
        let (running, finished) = mpsc::channel(1);
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (runner, start, shutdown) = (Arc::clone(self), start.clone(), shutdown.clone());
            let running = running.clone();
            std::thread::Builder::new()
                .name(format!("servitor-run-{n}"))
                .spawn(move || {
                    runtime.block_on(async {
                        start.cancelled().await;
                        runner.work(shutdown).await;
                    });
                    // Dropping the runtime waits for its blocking tasks (pruning) to end.
                    drop(runtime);
                    drop(running);
                })?;
        }
        Ok(finished)
    }

    /// One worker: takes runs off the queue until `shutdown`.
    async fn work(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let ticket = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                ticket = self.queue.pop() => ticket,
            };
            let key = ticket.key.clone();
            // Its own task, so that even a bug in one run cannot take the worker down.
            let run = tokio::spawn({
                let runner = Arc::clone(&self);
                async move { runner.execute(ticket).await }
            });
            if let Err(e) = run.await {
                tracing::error!(job = %key.0, execution = key.1, "run task failed: {e}");
            }
            self.queue.done(&key);
        }
    }

    /// Ends a run that never started because it was cancelled while queued.
    pub fn end_unstarted(&self, job: &str, id: u64) {
        self.fail_to_start(
            job,
            id,
            ExecutionStatus::Cancelled,
            "cancelled before it started".into(),
        );
    }

    fn fail_to_start(&self, job: &str, id: u64, status: ExecutionStatus, message: String) {
        let result = RunResult {
            exit_code: -1,
            message,
        };
        self.record_end(job, id, status, result, None);
    }

    async fn execute(&self, ticket: Ticket) {
        let (job, id) = (&ticket.key.0, ticket.key.1);
        if ticket.cancel.is_cancelled() {
            return self.end_unstarted(job, id);
        }
        // Read now, so that edited settings apply from the next run on.
        let settings = match self.catalog.find(job).as_deref().map(Entry::settings) {
            Ok(Ok(settings)) => settings.clone(),
            // Gone from config/jobs: starting it fails with the OS's words.
            Err(_) => self.catalog.default_settings(),
            Ok(Err(e)) => {
                tracing::warn!(job, execution = id, "cannot start: {e}");
                return self.fail_to_start(
                    job,
                    id,
                    ExecutionStatus::Failure,
                    format!("cannot start: {e}"),
                );
            }
        };
        let mut inputs = self
            .store
            .get(job, id)
            .map(|e| e.input_values)
            .unwrap_or_default();
        inputs.extend(ticket.secrets.clone());
        if let Some(name) = inputs
            .iter()
            .find(|(_, v)| *v == SECRET_MASK)
            .map(|(k, _)| k)
        {
            let message = format!(
                "cannot start: the secret input {name} is not kept across a restart of servitord"
            );
            return self.fail_to_start(job, id, ExecutionStatus::Failure, message);
        }
        let started = Instant::now();
        let child = match self.spawn(job, id, &inputs, &settings) {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(job, execution = id, "could not start: {e}");
                return self.fail_to_start(job, id, ExecutionStatus::Failure, os_message(&e));
            }
        };
        tracing::info!(job, execution = id, pid = child.id(), "run started");
        self.metrics.run_started(job);
        if let Err(e) = self.store.record_status(job, id, ExecutionStatus::Running) {
            tracing::error!(job, execution = id, "cannot save the running status: {e}");
        }

        let ending = self.supervise(child, &ticket.cancel, &settings).await;
        if ending.stopped.is_some() {
            self.kill_leftovers(&ticket.key).await;
        }
        let ran = started.elapsed();
        let (status, result) = outcome(ending);
        tracing::info!(
            job,
            execution = id,
            status = %status,
            exit_code = result.exit_code,
            duration_ms = ran.as_millis() as u64,
            "run finished"
        );
        self.record_end(job, id, status, result, Some(ran));
        if let Some(policy) = settings.retention {
            retention::prune_in_background(&self.store, job, policy);
        }
    }

    /// Kills the processes of a stopped run that left its process group.
    pub async fn kill_leftovers(&self, key: &RunKey) {
        let (root, key) = (self.root.clone(), key.clone());
        let _ =
            tokio::task::spawn_blocking(move || run_processes::kill_leftovers(&root, &key)).await;
    }

    /// Records that a run re-adopted after a restart had started after all.
    pub fn record_started(&self, job: &str, id: u64) {
        if let Err(e) = self.store.record_status(job, id, ExecutionStatus::Running) {
            tracing::error!(job, execution = id, "cannot save the running status: {e}");
        }
    }

    /// Records how a run ended (`ran`: how long its process ran, if it started),
    /// counts it, and tells the hooks. Every end of a run comes through here.
    pub fn record_end(
        &self,
        job: &str,
        id: u64,
        status: ExecutionStatus,
        result: RunResult,
        ran: Option<Duration>,
    ) {
        if let Err(e) = self.store.finish(job, id, status, result.clone()) {
            tracing::error!(job, execution = id, "cannot save the end of the run: {e}");
        }
        self.metrics.run_finished(job, status, ran);
        self.hooks.run_ended(Ended {
            job: job.to_owned(),
            id,
            status,
            result,
            ran,
            log: self.store.log_path(job, id),
        });
    }

    /// Starts the job file directly, in its own folder and process group, with its
    /// output going straight to the log file (a daemon crash cannot lose any of it).
    /// The log is opened, and so made, just before: a crash from here to `running`
    /// leaves a `created` run with a log, which the next start knows may have run.
    fn spawn(
        &self,
        job: &str,
        id: u64,
        inputs: &InputValues,
        settings: &Settings,
    ) -> io::Result<Child> {
        let log_path = self.store.log_path(job, id);
        let log = open_log(&log_path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot open the log {}: {}",
                    log_path.display(),
                    os_message(&e)
                ),
            )
        })?;
        let path = self.catalog.jobs_dir().join(job);
        let folder = path.parent().expect("a job lies inside config/jobs");
        let mut command = Command::new(&path);
        command
            .current_dir(folder)
            .stdin(Stdio::null())
            .stderr(log.try_clone()?)
            .stdout(log)
            .process_group(0)
            .envs(&settings.env)
            .envs(inputs)
            // Set last: nothing overrides these.
            .env("SERVITOR_ROOT", &self.root)
            .env("SERVITOR_JOB", job)
            .env("SERVITOR_JOB_EXECUTION", id.to_string());
        // Holds the runs thread until the child has exec'd (a vfork): cheaper than a trip
        // to another thread and back, and the API's threads keep answering meanwhile.
        command.spawn()
    }

    /// Waits for the process, or stops its whole group when the run is cancelled or
    /// exceeds its timeout.
    async fn supervise(
        &self,
        mut child: Child,
        cancel: &CancellationToken,
        settings: &Settings,
    ) -> Ending {
        let group = child.id().expect("a child not yet waited for has a pid");
        let timeout = async {
            match settings.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            status = child.wait() => return Ending { status, stopped: None },
            () = cancel.cancelled() => Stopped::Cancelled,
            () = timeout => Stopped::TimedOut(settings.timeout.unwrap_or_default()),
        };
        // The old tool cancelled with SIGINT; a timeout asks with SIGTERM.
        let signal = settings.stop_signal.unwrap_or(match stopped {
            Stopped::Cancelled => Signal::INT,
            Stopped::TimedOut(_) => Signal::TERM,
        });
        let (status, how) =
            process_group::stop(&[group], signal, settings.stop_grace, child.wait()).await;
        Ending {
            status,
            stopped: Some((stopped, how)),
        }
    }
}

/// The status and result a run ends with.
fn outcome(ending: Ending) -> (ExecutionStatus, RunResult) {
    let exit = match ending.status {
        Ok(exit) => exit,
        Err(e) => {
            let result = RunResult {
                exit_code: -1,
                message: format!("lost track of the process: {}", os_message(&e)),
            };
            return (ExecutionStatus::Failure, result);
        }
    };
    let (status, message) = match ending.stopped {
        Some((Stopped::Cancelled, how)) => {
            (ExecutionStatus::Cancelled, format!("cancelled: {how}"))
        }
        Some((Stopped::TimedOut(after), how)) => (
            ExecutionStatus::Failure,
            format!("{TIMED_OUT}{}: {how}", humantime::format_duration(after)),
        ),
        None if exit.success() => (ExecutionStatus::Success, String::new()),
        None => {
            let message = exit
                .signal()
                .map(|signal| format!("killed by {}", process_group::describe(signal)))
                .unwrap_or_default();
            (ExecutionStatus::Failure, message)
        }
    };
    let result = RunResult {
        exit_code: exit_code(exit),
        message,
    };
    (status, result)
}

fn open_log(path: &std::path::Path) -> io::Result<std::fs::File> {
    // Append: a run re-queued after a crash keeps what its first attempt wrote.
    let open = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
    };
    match open() {
        // An execution made by the old tool has no logs/ yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path.parent().expect("a log lies in logs/"))?;
            open()
        }
        opened => opened,
    }
}

/// The exit code, or `-N` for a process killed by signal N.
fn exit_code(status: ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.into(),
        (None, Some(signal)) => -i64::from(signal),
        (None, None) => -1,
    }
}

/// The OS's words for an error ("No such file or directory"), without Rust's
/// " (os error 2)" suffix, as the old tool recorded them.
fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes() {
        let missing = io::Error::from_raw_os_error(2);
        assert_eq!(os_message(&missing), "No such file or directory");
        assert_eq!(exit_code(ExitStatus::from_raw(42 << 8)), 42);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), -9);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
    }
}
