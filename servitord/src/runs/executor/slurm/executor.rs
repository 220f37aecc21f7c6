//! The Slurm executor: a run is its job file, started by a small wrapper script
//! submitted with `sbatch`, followed by polling, stopped with `scancel`, and its exit
//! code read from the file the wrapper writes.
//!
//! One poller lists all of this daemon's jobs with one `squeue` call per cycle
//! (never one per run) and tells each run's watcher what Slurm says of its job. A
//! failed or timed-out `squeue` tells nobody anything: no run's status changes on
//! it, and the poller backs off. A run is found by its job's name (`names`), so a
//! submission whose `sbatch` failed or timed out is looked for before anything else
//! happens, and a restarted daemon finds its runs again: a run is submitted at most
//! once.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servitor_shared::SlurmPlacement;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::super::{Exit, Launch, Placement, Progress, StartError, Stop};
use super::cli::{self, CliError};
use super::command::{self, Submission};
use super::names::{DaemonPrefix, host_name};
use super::parse::{self, JobState, QueueEntry, SlurmJobId};
use super::wrapper::{self, EXIT_CODE_FILE, WRAPPER_FILE};
use crate::jobs::id::RunId;
use crate::jobs::slurm::SlurmSettings;
use crate::signal::{Described, Name, Signal};
use crate::sync::lock;

/// The longest wait between two polls after failed ones.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a run that left Slurm's queue looks for its exit code file.
const EXIT_FILE_RECHECK: Duration = Duration::from_millis(250);
/// How long a stopped run waits for its exit code file (it may never come: the
/// wrapper may have been killed).
const STOPPED_EXIT_WAIT: Duration = Duration::from_secs(2);
/// How long the escalation to SIGKILL may take to end a job (Slurm's `KillWait`
/// comes into it) before the run is given up as stopped.
const KILL_WAIT: Duration = Duration::from_secs(120);

/// The Slurm executor's daemon-wide knobs.
#[derive(Debug, Clone, Copy)]
pub struct SlurmConfig {
    /// How often the daemon's jobs are listed.
    pub poll: Duration,
    /// How long a run that left the queue without its exit code file waits for it
    /// (shared filesystems lag) before its outcome counts as lost.
    pub exit_wait: Duration,
    /// How long an `sbatch`, `squeue` or `scancel` may take.
    pub command_timeout: Duration,
}

pub struct Slurm {
    root: PathBuf,
    poller: Arc<Poller>,
    config: SlurmConfig,
}

/// What the poller last saw of a job, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Not listed yet.
    Unknown,
    Listed(QueueEntry),
    /// Not in a listing that succeeded, asked for at this time: never submitted,
    /// refused, or finished and forgotten by Slurm (`MinJobAge`).
    Missing(Instant),
}

struct Poller {
    prefix: DaemonPrefix,
    config: SlurmConfig,
    watched: Mutex<HashMap<String, watch::Sender<Seen>>>,
    /// Told when the first job is watched after none were.
    wake: Notify,
    started: AtomicBool,
    polls: AtomicU64,
}

/// A run on the cluster, as its watcher follows it.
pub struct Process {
    name: String,
    run_dir: PathBuf,
    job_id: Option<SlurmJobId>,
    node: Option<String>,
    /// Why `sbatch` failed or timed out: a job not found by name was never submitted.
    submit_error: Option<String>,
    seen: watch::Receiver<Seen>,
    /// When it was first followed: a listing asked for before cannot say it is missing.
    since: Instant,
    poller: Arc<Poller>,
    exit_wait: Duration,
    phase: Phase,
    /// What `next` has learnt but not told yet.
    told: VecDeque<Progress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Queued, or not listed yet.
    Waiting,
    Running,
    /// Out of the queue, or in a final state: waiting for its exit code file.
    Ending {
        state: Option<JobState>,
        since: Instant,
    },
    Ended,
}

/// Whether a run's folder says it went to Slurm (its wrapper is written before the
/// submission).
pub fn was_submitted(run_dir: &Path) -> bool {
    run_dir.join(WRAPPER_FILE).exists()
}

impl Slurm {
    pub fn new(root: &Path, config: SlurmConfig) -> Self {
        Self {
            root: root.to_owned(),
            poller: Arc::new(Poller {
                prefix: DaemonPrefix::new(&host_name(), root),
                config,
                watched: Mutex::default(),
                wake: Notify::new(),
                started: AtomicBool::new(false),
                polls: AtomicU64::new(0),
            }),
            config,
        }
    }

    /// How many `squeue` calls the poller has made.
    pub fn polls(&self) -> u64 {
        self.poller.polls.load(Ordering::Relaxed)
    }

    /// Submits a run. Its wrapper goes into its folder first; then `sbatch`, once.
    /// When `sbatch` fails or times out, the job may exist anyway: the run then waits
    /// for a listing to say, and is never submitted again.
    pub async fn start(
        &self,
        launch: &Launch,
        settings: &SlurmSettings,
    ) -> Result<Process, StartError> {
        let run = &launch.run;
        let name = self.poller.prefix.run_name(run.job.as_str(), run.execution);
        let wrapper = wrapper::write(&launch.program, &launch.run_dir)
            .map_err(|e| StartError::Spawn(format!("cannot write the Slurm wrapper: {e}")))?;
        let submission = Submission {
            root: &self.root,
            job: run.job.as_str(),
            execution: run.execution,
            job_file: &launch.program,
            log: &launch.log,
            wrapper: &wrapper,
            name: &name,
            timeout: launch.timeout,
            slurm: settings,
            env: &launch.env,
            inputs: &launch.inputs,
        };
        let sbatch = command::sbatch(&submission).map_err(|e| StartError::Spawn(e.to_string()))?;
        let submitted = cli::run(&sbatch, self.config.command_timeout).await;
        // Followed from now on: listings asked for earlier may not have the job yet.
        let mut process = self.follow(name, launch.run_dir.clone());
        match submitted {
            Ok(output) => match parse::sbatch_output(&output.stdout) {
                Ok(submitted) => process.learn_job_id(submitted.job_id),
                Err(e) => process.submit_error = Some(format!("sbatch printed no job id: {e}")),
            },
            // Not run at all: nothing was submitted.
            Err(e @ CliError::Start { .. }) => return Err(StartError::Spawn(e.to_string())),
            Err(e) => {
                tracing::warn!(%run, "{e}; looking for its job by name before anything else");
                process.submit_error = Some(e.to_string());
            }
        }
        Ok(process)
    }

    /// A run submitted by a previous daemon, followed again by its name: to its end
    /// if it still runs, or to its exit code file if it ended meanwhile.
    pub fn refind(&self, run: &RunId, run_dir: &Path) -> Process {
        let name = self.poller.prefix.run_name(run.job.as_str(), run.execution);
        self.follow(name, run_dir.to_owned())
    }

    fn follow(&self, name: String, run_dir: PathBuf) -> Process {
        let since = Instant::now();
        let seen = self.poller.watch(&name);
        Process {
            name,
            run_dir,
            job_id: None,
            node: None,
            submit_error: None,
            seen,
            since,
            poller: Arc::clone(&self.poller),
            exit_wait: self.config.exit_wait,
            phase: Phase::Waiting,
            told: VecDeque::new(),
        }
    }
}

impl Poller {
    /// Follows the job named `name`; starts polling if nothing was.
    fn watch(self: &Arc<Self>, name: &str) -> watch::Receiver<Seen> {
        let receiver = {
            let mut watched = lock(&self.watched);
            let sender = watched
                .entry(name.to_owned())
                .or_insert_with(|| watch::channel(Seen::Unknown).0);
            sender.subscribe()
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(Arc::clone(self).poll());
        }
        self.wake.notify_one();
        receiver
    }

    fn forget(&self, name: &str) {
        let mut watched = lock(&self.watched);
        if watched
            .get(name)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            watched.remove(name);
        }
    }

    /// Lists the daemon's jobs once per cycle while any is followed.
    async fn poll(self: Arc<Self>) {
        let mut delay = self.config.poll;
        loop {
            let woken = self.wake.notified();
            if lock(&self.watched).is_empty() {
                woken.await;
                continue;
            }
            self.polls.fetch_add(1, Ordering::Relaxed);
            let asked = Instant::now();
            match cli::run(&command::squeue(), self.config.command_timeout).await {
                Ok(output) => {
                    let listing = parse::squeue_output(&output.stdout, &self.prefix);
                    for skipped in &listing.skipped {
                        tracing::warn!(line = skipped.number, text = %skipped.text, "squeue: {}", skipped.why);
                    }
                    self.tell(&listing.entries, asked);
                    delay = self.config.poll;
                }
                Err(e) => {
                    delay = (delay * 2).min(MAX_BACKOFF);
                    tracing::warn!(
                        "cannot list the Slurm jobs, trying again in {}: {e}",
                        humantime::format_duration(delay)
                    );
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Tells every followed job what the listing asked for at `asked` says of it.
    fn tell(&self, entries: &[QueueEntry], asked: Instant) {
        let by_name: HashMap<&str, &QueueEntry> =
            entries.iter().map(|e| (e.name.as_str(), e)).collect();
        for (name, sender) in lock(&self.watched).iter() {
            let seen = match by_name.get(name.as_str()) {
                Some(entry) => Seen::Listed((*entry).clone()),
                None => Seen::Missing(asked),
            };
            sender.send_if_modified(|old| {
                let changed = *old != seen;
                *old = seen;
                changed
            });
        }
    }
}

impl Process {
    pub async fn next(&mut self) -> Progress {
        loop {
            if let Some(progress) = self.told.pop_front() {
                return progress;
            }
            match self.phase.clone() {
                Phase::Ended => return std::future::pending().await,
                Phase::Ending { state, since } => {
                    let exit = self
                        .exit_after(state.as_ref(), since + self.exit_wait)
                        .await;
                    self.phase = Phase::Ended;
                    return Progress::Ended(exit);
                }
                Phase::Waiting | Phase::Running => {
                    let seen = self.seen.borrow_and_update().clone();
                    if !self.learn(seen) && self.seen.changed().await.is_err() {
                        // The poller never drops a followed job's sender.
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Takes in what the poller saw; true when there is something to tell or do.
    fn learn(&mut self, seen: Seen) -> bool {
        match seen {
            Seen::Unknown => false,
            // Asked for before this run was followed: its job may not have been there yet.
            Seen::Missing(asked) if asked < self.since => false,
            Seen::Missing(_) => {
                self.end_phase(None);
                true
            }
            Seen::Listed(entry) => {
                self.learn_job_id(entry.job_id);
                if entry.node.is_some() && entry.node != self.node {
                    self.node = entry.node.clone();
                    self.tell_placement();
                }
                match entry.state {
                    JobState::Running | JobState::Completing if self.phase == Phase::Waiting => {
                        self.phase = Phase::Running;
                        self.told.push_back(Progress::Running);
                    }
                    state if state.is_final() => self.end_phase(Some(state)),
                    _ => {}
                }
                !self.told.is_empty() || matches!(self.phase, Phase::Ending { .. })
            }
        }
    }

    fn learn_job_id(&mut self, job_id: SlurmJobId) {
        if self.job_id != Some(job_id) {
            self.job_id = Some(job_id);
            self.tell_placement();
        }
    }

    fn tell_placement(&mut self) {
        if let Some(job_id) = self.job_id {
            self.told
                .push_back(Progress::Placed(Placement::Slurm(SlurmPlacement {
                    job_id: job_id.to_string(),
                    node: self.node.clone(),
                })));
        }
    }

    fn end_phase(&mut self, state: Option<JobState>) {
        // Ended between two listings without being seen running: it ran if Slurm
        // placed it, or if it left an exit code.
        if self.phase == Phase::Waiting
            && (self.node.is_some() || self.run_dir.join(EXIT_CODE_FILE).exists())
        {
            self.phase = Phase::Running;
            self.told.push_back(Progress::Running);
        }
        if !matches!(self.phase, Phase::Ending { .. } | Phase::Ended) {
            self.phase = Phase::Ending {
                state,
                since: Instant::now(),
            };
        }
    }

    /// How the run ended: its exit code file, waited for until `deadline`, and what
    /// Slurm said.
    async fn exit_after(&self, state: Option<&JobState>, deadline: Instant) -> Exit {
        // A submission that failed and left no job behind, or one Slurm refused (it
        // lists it as FAILED, never placed), never ran: no exit code is coming.
        if let Some(why) = &self.submit_error
            && self.node.is_none()
            && !self.run_dir.join(EXIT_CODE_FILE).exists()
        {
            return Exit::Failed {
                code: None,
                message: format!("Slurm did not take the job: {why}"),
            };
        }
        let code = loop {
            match read_exit_code(&self.run_dir).await {
                Some(code) => break Some(code),
                None if Instant::now() >= deadline => break None,
                None => tokio::time::sleep(EXIT_FILE_RECHECK).await,
            }
        };
        exit_of(state, code)
    }

    /// Stops the run: a queued job is cancelled; a running one gets `stop.signal`
    /// through `scancel --signal --full`, then SIGKILL once `stop.grace` is over.
    pub async fn stop(&mut self, stop: Stop) -> (Exit, String) {
        let how = match self.phase.clone() {
            Phase::Ended => return (Exit::Lost("it had already ended".into()), String::new()),
            Phase::Ending { .. } => "it had already left Slurm's queue".to_owned(),
            Phase::Waiting => {
                self.scancel(None).await;
                self.wait_end(stop.grace + KILL_WAIT).await;
                "cancelled in Slurm's queue".to_owned()
            }
            Phase::Running => {
                self.scancel(Some(stop.signal)).await;
                if self.wait_end(stop.grace).await {
                    format!("stopped by {}", Name(stop.signal.as_raw()))
                } else {
                    self.scancel(Some(Signal::KILL)).await;
                    self.wait_end(KILL_WAIT).await;
                    format!(
                        "killed by SIGKILL after {}",
                        humantime::format_duration(stop.grace)
                    )
                }
            }
        };
        let state = match &self.phase {
            Phase::Ending { state, .. } => state.clone(),
            _ => None,
        };
        let exit = self
            .exit_after(state.as_ref(), Instant::now() + STOPPED_EXIT_WAIT)
            .await;
        self.phase = Phase::Ended;
        (exit, how)
    }

    /// Waits until the job is out of the queue or ended, at most `patience`; true if
    /// it did.
    async fn wait_end(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.seen.borrow_and_update().clone();
            self.learn(seen);
            if matches!(self.phase, Phase::Ending { .. }) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.seen.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }

    /// `scancel` (with a signal for a running job); a failure is logged: the run is
    /// then given the time it has, and ends as Slurm says when it does.
    async fn scancel(&mut self, signal: Option<Signal>) {
        if self.job_id.is_none() {
            // Not listed yet: learn its id from the next listing.
            self.wait_listed().await;
        }
        let Some(job_id) = self.job_id else {
            return;
        };
        let command = match signal {
            Some(signal) => command::scancel_signal(job_id, signal),
            None => command::scancel(job_id),
        };
        if let Err(e) = cli::run(&command, self.poller.config.command_timeout).await {
            tracing::warn!(job = %self.name, "{e}");
        }
    }

    async fn wait_listed(&mut self) {
        let patience = self.poller.config.poll * 4 + self.poller.config.command_timeout;
        let _ = tokio::time::timeout(patience, async {
            loop {
                let seen = self.seen.borrow_and_update().clone();
                if self.learn(seen.clone()) || matches!(seen, Seen::Listed(_)) {
                    return;
                }
                if self.seen.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    pub fn describe(&self) -> String {
        match self.job_id {
            Some(job_id) => format!("Slurm job {job_id}"),
            None => format!("Slurm job named {}", self.name),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.poller.forget(&self.name);
    }
}

/// The wrapper's exit code, if its file is there and whole.
async fn read_exit_code(run_dir: &Path) -> Option<parse::ExitCode> {
    let bytes = tokio::fs::read(run_dir.join(EXIT_CODE_FILE)).await.ok()?;
    parse::exit_code(&bytes).ok()
}

/// How a run ended, from Slurm's last word on its job (`None`: no longer listed) and
/// the exit code its wrapper wrote. The exit code file is the truth for the code;
/// Slurm's state says whether something else ended it. Never a success without an
/// exit code of 0 and a job that completed (or was forgotten after completing).
fn exit_of(state: Option<&JobState>, code: Option<parse::ExitCode>) -> Exit {
    let Some(code) = code else {
        let message = match state {
            Some(state) if !matches!(state, JobState::Completed | JobState::Failed) => {
                format!("{}; it wrote no exit code", ended_by_slurm(state))
            }
            Some(state) => format!(
                "its outcome was lost: Slurm says {}, but it wrote no exit code",
                state.as_str()
            ),
            None => "its outcome was lost: its job left Slurm's queue without writing an exit code"
                .to_owned(),
        };
        return Exit::Failed {
            code: None,
            message,
        };
    };
    let signal = code.signal();
    let code = i32::from(code.0);
    match state {
        // The shell reports a job killed by signal N as 128+N.
        None | Some(JobState::Completed | JobState::Failed) if signal.is_some() => Exit::Failed {
            code: Some(code),
            message: format!(
                "exit code {code}, as a job killed by {} ends",
                Described(signal.unwrap_or_default())
            ),
        },
        None | Some(JobState::Completed) => Exit::Code(code),
        Some(JobState::Failed) if code != 0 => Exit::Code(code),
        Some(JobState::Failed) => Exit::Failed {
            code: Some(code),
            message: "Slurm says it FAILED".to_owned(),
        },
        Some(state) => Exit::Failed {
            code: Some(code),
            message: ended_by_slurm(state),
        },
    }
}

fn ended_by_slurm(state: &JobState) -> String {
    let how = match state {
        JobState::Timeout => "Slurm stopped it at its time limit",
        JobState::OutOfMemory => "it ran out of memory",
        JobState::NodeFail => "its node failed",
        JobState::Cancelled => "it was cancelled in Slurm",
        JobState::Preempted => "Slurm preempted it",
        _ => "Slurm ended it",
    };
    format!("{how} ({})", state.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_a_success_without_a_clean_exit() {
        let code = |n| Some(parse::ExitCode(n));
        assert_eq!(exit_of(Some(&JobState::Completed), code(0)), Exit::Code(0));
        assert_eq!(exit_of(None, code(0)), Exit::Code(0));
        assert_eq!(exit_of(Some(&JobState::Failed), code(3)), Exit::Code(3));
        assert_eq!(
            exit_of(Some(&JobState::Failed), code(137)),
            Exit::Failed {
                code: Some(137),
                message: "exit code 137, as a job killed by signal 9 (SIGKILL) ends".into()
            }
        );
        for state in [
            JobState::Timeout,
            JobState::OutOfMemory,
            JobState::NodeFail,
            JobState::Cancelled,
            JobState::Failed,
        ] {
            assert!(
                matches!(
                    exit_of(Some(&state), code(0)),
                    Exit::Failed { code: Some(0), .. }
                ),
                "{state:?}"
            );
        }
        let Exit::Failed { message, code } = exit_of(Some(&JobState::OutOfMemory), code(0)) else {
            unreachable!()
        };
        assert_eq!(
            (code, message.as_str()),
            (Some(0), "it ran out of memory (OUT_OF_MEMORY)")
        );
        let Exit::Failed {
            message,
            code: None,
        } = exit_of(None, None)
        else {
            panic!("a lost outcome is a failure")
        };
        assert!(message.starts_with("its outcome was lost"), "{message}");
        let Exit::Failed { message, .. } = exit_of(Some(&JobState::Timeout), None) else {
            unreachable!()
        };
        assert_eq!(
            message,
            "Slurm stopped it at its time limit (TIMEOUT); it wrote no exit code"
        );
    }
}
