//! The run lifecycle: the one owner of every run, from request to end.
//!
//! ```text
//!  submit ──▶ created ──(worker: execute)──▶ running ──▶ success | failure | cancelled
//!                │                             │
//!                └── cancel: ends it ──────────┴── cancel / timeout: stops it
//! ```
//!
//! - **Created** by [`Runs::submit`] (an API request): inputs checked against the job's
//!   spec, recorded, announced, queued.
//! - **Started** by [`Runs::execute`], on a worker's thread: the job's settings read
//!   afresh, the start noted in the audit, then its executor starts it.
//! - **Watched** by the same task until it ends; a cancel request or the job's
//!   `timeout` stops it through its executor.
//! - **Cancelled** by [`Runs::cancel`]: a queued run ends at once without starting.
//! - **Ended** in one place, [`Runs::end`]: result and status recorded, announced,
//!   counted, hooks told, its slot freed, old executions pruned.
//! - **Recovered** after a restart by `recovery`, through the same steps.
//!
//! Every status change is written to the store, then announced to followers and on the
//! event bus, so an event always finds its state on disk. The methods that record
//! touch the disk: they are called from worker threads or the blocking pool, never
//! from the API's async threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use servitor_shared::inputs::{self, SECRET_MASK};
use servitor_shared::{Event, ExecutionStatus, InputValues, OnBusy, Peer, RunResult, env};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::executor::{Executors, Launch, Placement, Process, Progress, SlurmConfig, Stop};
use super::hooks::{Ended, Hooks};
use super::outcome::{self, Ending, StopReason};
use super::queue::{Busy, Cancelled, Lane, RunQueue, Ticket};
use super::retries::PendingRetry;
use crate::jobs::catalog::{Broken, Catalog, Entry};
use crate::jobs::id::{JobId, RunId};
use crate::jobs::schedule::RetryPolicy;
use crate::jobs::settings::{ExecutorChoice, Settings};
use crate::observe::events::EventBus;
use crate::observe::metrics::Metrics;
use crate::observe::statuses::Statuses;
use crate::signal::Signal;
use crate::state::files::Origin;
use crate::state::{Store, Workdir, retention};

/// The run lifecycle and what it drives.
pub struct Runs {
    workdir: Workdir,
    catalog: Arc<Catalog>,
    store: Arc<Store>,
    queue: RunQueue,
    executors: Executors,
    statuses: Statuses,
    bus: EventBus,
    metrics: Arc<Metrics>,
    hooks: Arc<Hooks>,
    /// Retries to make once their delay has passed (`retries::run` makes them).
    retries: mpsc::UnboundedSender<PendingRetry>,
    retries_to_make: Mutex<Option<mpsc::UnboundedReceiver<PendingRetry>>>,
}

/// Why a run was not created.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("input {0} is refused: inputs may not set {prefix}* variables", prefix = env::RESERVED_PREFIX)]
    ReservedInput(String),
    #[error("job {job:?} cannot run until this is fixed: {broken}", job = .0.job(), broken = .0)]
    Unrunnable(Box<Broken>),
    /// The inputs do not fit the job's spec (a required one missing, a value not
    /// among the choices).
    #[error("{0}")]
    BadInputs(String),
    #[error(
        "job {job:?} is busy: {limit} of its runs are already queued or running (on_busy: skip)"
    )]
    Busy { job: JobId, limit: u32 },
    #[error("cannot record a run of {job:?}: {source}")]
    Unrecorded { job: JobId, source: std::io::Error },
}

/// Why a cancel request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("unknown execution {} of job {:?}", .0.execution, .0.job)]
    Unknown(RunId),
    #[error("execution {} of job {:?} is not running: it is {status}", run.execution, run.job)]
    NotRunning { run: RunId, status: ExecutionStatus },
    #[error(
        "execution {} of job {:?} is being recovered after a restart; try again in a moment",
        .0.execution, .0.job
    )]
    Recovering(RunId),
}

impl Runs {
    pub fn new(
        workdir: Workdir,
        catalog: Arc<Catalog>,
        store: Arc<Store>,
        bus: EventBus,
        metrics: Arc<Metrics>,
        hooks: Arc<Hooks>,
        slurm: SlurmConfig,
    ) -> Self {
        let (retries, retries_to_make) = mpsc::unbounded_channel();
        Self {
            retries,
            retries_to_make: Mutex::new(Some(retries_to_make)),
            executors: Executors::new(workdir.root(), slurm),
            workdir,
            catalog,
            store,
            queue: RunQueue::default(),
            statuses: Statuses::default(),
            bus,
            metrics,
            hooks,
        }
    }

    /// Records a run of `job` as `created` and queues it; `by` asked for it. The inputs
    /// are checked against the job's spec (required ones, choices), defaults filled in,
    /// and inputs the spec does not name dropped, as the old tool did; none may set a
    /// `SERVITOR_*` variable. Secret values reach the job but are stored masked.
    /// Touches the disk.
    /// `origin` says what made it: a request (`Api`), or servitord itself.
    pub fn submit(
        &self,
        job: &Entry,
        given: InputValues,
        by: Option<Peer>,
        origin: Origin,
    ) -> Result<RunId, SubmitError> {
        let id = &job.file.id;
        if let Some(key) = given.keys().find(|k| k.starts_with(env::RESERVED_PREFIX)) {
            return Err(SubmitError::ReservedInput(key.clone()));
        }
        let (spec, settings) = job
            .run
            .as_ref()
            .map_err(|broken| SubmitError::Unrunnable(Box::new(broken.clone())))?;
        let mut stored = inputs::resolve(spec, &given).map_err(SubmitError::BadInputs)?;
        let mut secrets = InputValues::new();
        // The catalog checked the spec's fields: a job whose spec is broken is unrunnable.
        for (name, field) in inputs::fields(spec).unwrap_or_default() {
            if field.secret
                && let Some(value) = stored.get_mut(name)
            {
                secrets.insert(
                    name.to_owned(),
                    std::mem::replace(value, SECRET_MASK.to_owned()),
                );
            }
        }
        // `on_busy: skip` refuses a run while the job has `concurrency` runs already.
        let reservation =
            match (settings.on_busy, settings.concurrency) {
                (OnBusy::Skip, Some(limit)) => Some(self.queue.reserve(id, limit).map_err(
                    |Busy| SubmitError::Busy {
                        job: id.clone(),
                        limit,
                    },
                )?),
                _ => None,
            };
        let run = self
            .store
            .create(id, stored, by, origin)
            .map_err(|source| SubmitError::Unrecorded {
                job: id.clone(),
                source,
            })?;
        self.announce(&run, ExecutionStatus::Created);
        let ticket = Ticket {
            secrets,
            lane: lane_of(settings),
            ..Ticket::new(run.clone(), settings.concurrency)
        };
        match reservation {
            Some(reservation) => reservation.queue(ticket),
            None => self.queue.push(ticket),
        }
        tracing::info!(%run, by = ?by, ?origin, "run queued");
        Ok(run)
    }

    /// Asks a run to stop: a queued run ends `cancelled` without starting; a running
    /// one is stopped by the task that watches it (the job's stop signal, SIGINT by
    /// default, then SIGKILL after the grace period). Touches the disk.
    pub fn cancel(&self, run: &RunId, by: Option<Peer>) -> Result<(), CancelError> {
        let status = self
            .store
            .status(run)
            .ok_or_else(|| CancelError::Unknown(run.clone()))?;
        if !matches!(status, ExecutionStatus::Created | ExecutionStatus::Running) {
            return Err(CancelError::NotRunning {
                run: run.clone(),
                status,
            });
        }
        self.bus.publish(Event::JobExecutionCancellationRequested {
            job_id: run.job.to_string(),
            execution_id: run.execution.to_string(),
        });
        tracing::info!(%run, by = ?by, "cancel requested");
        if let Some(peer) = by {
            self.store.note_cancel_request(run, peer);
        }
        match self.queue.cancel(run) {
            Cancelled::WasWaiting => {
                self.end_unstarted(
                    run,
                    ExecutionStatus::Cancelled,
                    "cancelled before it started",
                );
                Ok(())
            }
            Cancelled::Signalled => Ok(()),
            Cancelled::NotHere => match self.store.status(run) {
                Some(status) if status.is_terminal() => Err(CancelError::NotRunning {
                    run: run.clone(),
                    status,
                }),
                _ => Err(CancelError::Recovering(run.clone())),
            },
        }
    }

    /// The next run of `lane` to take: the oldest waiting one whose job has room.
    pub(super) async fn next_ticket(&self, lane: Lane) -> Ticket {
        self.queue.pop(lane).await
    }

    /// Starts a run taken off the queue and watches it to its end. On a worker's own
    /// thread (or the remote lane's): the steps that touch the disk block it, and
    /// nothing else.
    pub(super) async fn execute(&self, ticket: Ticket) {
        let run = &ticket.run;
        if ticket.cancel.is_cancelled() {
            return self.end_unstarted(
                run,
                ExecutionStatus::Cancelled,
                "cancelled before it started",
            );
        }
        // Read now, so that edited settings apply from the next run on.
        let settings = match self.catalog.find(run.job.as_str()).await {
            Ok(job) => match job.settings() {
                Ok(settings) => settings.clone(),
                Err(broken) => {
                    tracing::warn!(%run, "cannot start: {broken}");
                    let message = format!("cannot start: {broken}");
                    return self.end_unstarted(run, ExecutionStatus::Failure, &message);
                }
            },
            // Gone from config/jobs: starting it fails with the OS's words.
            Err(_) => self.catalog.default_settings(),
        };
        let mut inputs = self.store.inputs(run);
        inputs.extend(ticket.secrets.clone());
        if let Some(name) = inputs
            .iter()
            .find(|(_, v)| *v == SECRET_MASK)
            .map(|(k, _)| k)
        {
            let message = format!(
                "cannot start: the secret input {name} is not kept across a restart of servitord"
            );
            return self.end_unstarted(run, ExecutionStatus::Failure, &message);
        }
        let launch = self.launch(run, &settings, inputs);
        // Noted before the start: a crash from here on must not run it twice.
        if let Err(e) = self.store.mark_starting(run) {
            tracing::error!(%run, "cannot note the start in the audit: {e}");
            let message = format!("cannot start: cannot note that it starts: {e}");
            return self.end_unstarted(run, ExecutionStatus::Failure, &message);
        }
        let started = Instant::now();
        let process = match self.executors.start(&launch, &settings.executor).await {
            Ok(process) => process,
            Err(e) => {
                tracing::warn!(%run, "could not start: {e}");
                // A start that failed (a full cluster, say) is a failure to retry.
                let ended = outcome::unstarted(ExecutionStatus::Failure, e.to_string());
                let retry = Some((&settings, &ticket.secrets));
                return self.end(run, (ended, "none"), None, retry);
            }
        };
        tracing::info!(%run, process = %process.describe(), "run started");
        let ending = self
            .watch(
                run,
                process,
                &ticket.cancel,
                settings.timeout,
                stop_of(&settings),
            )
            .await;
        let ran = Some(started.elapsed());
        let ended = self.ended_of(run, ending, ran);
        let retry = Some((&settings, &ticket.secrets));
        self.end(run, ended, ran, retry);
    }

    /// What the executor needs to start a run.
    fn launch(&self, run: &RunId, settings: &Settings, inputs: InputValues) -> Launch {
        Launch {
            run: run.clone(),
            root: self.workdir.root().to_owned(),
            program: self.catalog.jobs_dir().join(run.job.as_str()),
            env: settings.env.clone(),
            inputs,
            run_dir: self.workdir.execution_dir(run),
            log: self.workdir.log_path(run),
            timeout: settings.timeout,
        }
    }

    /// Watches a started run until it ends, stopping it when `cancel` is cancelled or
    /// it runs longer than `timeout`.
    pub(super) async fn watch(
        &self,
        run: &RunId,
        mut process: Process,
        cancel: &CancellationToken,
        timeout: Option<Duration>,
        stop: impl Fn(StopReason) -> Stop,
    ) -> Ending {
        let mut deadline: Option<tokio::time::Instant> = None;
        let reason = loop {
            let timeout_passes = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                progress = process.next() => match progress {
                    Progress::Placed(Placement::Slurm(placement)) => {
                        if let Err(e) = self.store.record_slurm(run, placement) {
                            tracing::warn!(%run, "cannot save where the run went: {e}");
                        }
                    }
                    Progress::Running => {
                        self.record_running(run, process.executor());
                        deadline = timeout.map(|t| tokio::time::Instant::now() + t);
                    }
                    Progress::Ended(exit) => {
                        return Ending { executor: process.executor(), exit, stopped: None };
                    }
                },
                () = cancel.cancelled() => break StopReason::Cancelled,
                () = timeout_passes => break StopReason::TimedOut(timeout.unwrap_or_default()),
            }
        };
        let (exit, how) = process.stop(stop(reason)).await;
        Ending {
            executor: process.executor(),
            exit,
            stopped: Some((reason, how)),
        }
    }

    /// Records that a run is running (unless it already was: a run re-found after a
    /// restart). Touches the disk.
    pub(super) fn record_running(&self, run: &RunId, executor: &'static str) {
        if self.store.status(run) == Some(ExecutionStatus::Running) {
            return;
        }
        self.metrics.run_started(run.job.as_str(), executor);
        self.record(run, ExecutionStatus::Running);
    }

    /// Appends a status change and announces it.
    fn record(&self, run: &RunId, status: ExecutionStatus) {
        if let Err(e) = self.store.record_status(run, status) {
            tracing::error!(%run, "cannot save the {status} status: {e}");
        }
        self.announce(run, status);
    }

    /// Tells the run's followers and the event bus of a status change already recorded.
    fn announce(&self, run: &RunId, status: ExecutionStatus) {
        self.statuses.changed(run, status);
        self.bus.publish(Event::JobExecutionStatusChanged {
            job_id: run.job.to_string(),
            execution_id: run.execution.to_string(),
            status,
        });
    }

    /// Ends a run whose process ran: its status and result follow from how it ended.
    /// Not retried: a run re-found after a restart (its settings then are not known).
    pub(super) fn end_watched(&self, run: &RunId, ending: Ending, ran: Option<Duration>) {
        let ended = self.ended_of(run, ending, ran);
        self.end(run, ended, ran, None);
    }

    /// How a run whose process ran ended, and on which executor.
    fn ended_of(
        &self,
        run: &RunId,
        ending: Ending,
        ran: Option<Duration>,
    ) -> ((ExecutionStatus, RunResult), &'static str) {
        let (status, result) = outcome::of(&ending);
        tracing::info!(
            %run,
            status = %status,
            exit_code = result.exit_code,
            duration_ms = ran.map(|ran| ran.as_millis() as u64),
            "run finished"
        );
        ((status, result), ending.executor)
    }

    /// Ends a run that never started (cancelled while queued, could not start, lost).
    pub(super) fn end_unstarted(&self, run: &RunId, status: ExecutionStatus, message: &str) {
        let ended = outcome::unstarted(status, message.to_owned());
        self.end(run, (ended, "none"), None, None);
    }

    /// Ends a run: every end of a run comes through here. `executor` ran it (`none`:
    /// it never started). Records the result, then the
    /// terminal status (so whoever reacts to it finds the result), announces it, counts
    /// it, tells the hooks, frees the run's place, prunes old executions as the
    /// job's retention says, and plans a retry of a failure as its `retry` says.
    /// `ran` is how long its process ran, if it started; `settings` are those it ran
    /// with, and `secrets` its secret inputs (for a retry), when known.
    fn end(
        &self,
        run: &RunId,
        ((status, result), executor): ((ExecutionStatus, RunResult), &'static str),
        ran: Option<Duration>,
        settings: Option<(&Settings, &InputValues)>,
    ) {
        // A client that sees the end may ask for the next run at once: the job is not
        // busy any more, though this run holds its worker's place until it is done.
        self.queue.ending(run);
        if let Err(e) = self.store.finish(run, status, result.clone()) {
            tracing::error!(%run, "cannot save the end of the run: {e}");
        }
        self.announce(run, status);
        self.metrics
            .run_finished(run.job.as_str(), executor, status, ran);
        let retry = match (status, settings) {
            (ExecutionStatus::Failure, Some((settings, secrets))) => {
                self.plan_retry(run, settings.retry, secrets)
            }
            _ => None,
        };
        self.hooks.run_ended(Ended {
            run: run.clone(),
            status,
            result,
            ran,
            log: self.workdir.log_path(run),
            will_retry: retry.is_some(),
        });
        self.queue.done(run);
        if let Some(policy) = settings.and_then(|(s, _)| s.retention) {
            let removed = self
                .store
                .remove_expired(&run.job, policy, jiff::Timestamp::now());
            if !removed.is_empty() {
                tracing::info!(job = %run.job, removed = removed.len(), "retention removed old executions");
                retention::delete_in_background(removed);
            }
        }
        if let Some(retry) = retry {
            tracing::info!(%run, delay = ?retry.delay, attempt = ?retry.origin, "failed: a retry follows");
            // Only fails once the daemon stops: then no retry is made anyway.
            let _ = self.retries.send(retry);
        }
    }

    /// The retry that follows a failure of `run`, if `policy` allows one more: with
    /// the same inputs, secret ones included (kept in memory only).
    fn plan_retry(
        &self,
        run: &RunId,
        policy: RetryPolicy,
        secrets: &InputValues,
    ) -> Option<PendingRetry> {
        let done = match self.store.origin(run) {
            Origin::Retry { attempt, .. } => attempt,
            Origin::Api | Origin::Schedule => 0,
        };
        let delay = policy.next_retry(done)?;
        let mut inputs = self.store.inputs(run);
        inputs.extend(secrets.clone());
        Some(PendingRetry {
            of: run.clone(),
            origin: Origin::Retry {
                of: run.execution,
                attempt: done + 1,
            },
            delay,
            inputs,
        })
    }

    /// The retries to make, for the one task that makes them (`None` after the first call).
    pub fn take_retries(&self) -> Option<mpsc::UnboundedReceiver<PendingRetry>> {
        crate::sync::lock(&self.retries_to_make).take()
    }

    /// Counts a retry made.
    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The run's status now and as it changes, for a log follower; `None` for an
    /// unknown run. The channel closes once the run has ended. Reads the store: call it
    /// once the job's history is loaded (`History` does).
    pub fn follow(&self, run: &RunId) -> Option<watch::Receiver<ExecutionStatus>> {
        self.statuses.follow(run, || self.store.status(run))
    }

    /// How many `squeue` calls the Slurm executor has made.
    pub fn slurm_polls(&self) -> u64 {
        self.executors.slurm_polls()
    }

    /// Runs being executed (or watched after a restart).
    pub fn active(&self) -> usize {
        self.queue.active()
    }

    /// Runs waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.queue.waiting()
    }

    pub(super) fn queue(&self) -> &RunQueue {
        &self.queue
    }

    pub(super) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(super) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(super) fn run_dir(&self, run: &RunId) -> std::path::PathBuf {
        self.workdir.execution_dir(run)
    }

    pub(super) fn executors(&self) -> &Executors {
        &self.executors
    }
}

/// Who takes runs of a job with these settings off the queue.
pub(super) fn lane_of(settings: &Settings) -> Lane {
    match settings.executor {
        ExecutorChoice::Local => Lane::Local,
        ExecutorChoice::Slurm(_) => Lane::Remote,
    }
}

/// How a run of a job with these settings is stopped: its `stop_signal`, else SIGINT
/// on cancel (as the old tool did) and SIGTERM on timeout, then SIGKILL after its grace.
pub(super) fn stop_of(settings: &Settings) -> impl Fn(StopReason) -> Stop + use<> {
    let (signal, grace) = (settings.stop_signal, settings.stop_grace);
    move |reason| Stop {
        signal: signal.unwrap_or(match reason {
            StopReason::Cancelled => Signal::INT,
            StopReason::TimedOut(_) => Signal::TERM,
        }),
        grace,
    }
}
