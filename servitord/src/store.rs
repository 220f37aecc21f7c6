//! The execution store: each job's executions under `state/jobs/<job>/executions/`,
//! mirrored in memory so listings never re-read every file.
//!
//! The files stay the source of truth. Every change is written to disk first (appends
//! for the status history, write-then-rename for the rest), then to memory, then
//! announced on the event bus, so an event always finds its state on disk. A job's
//! history is loaded on first use.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use jiff::Timestamp;
use servitor_shared::{
    Event, Execution, ExecutionStatus, InputValues, LastExecution, Peer, RunResult, StatusChange,
};
use tokio::sync::watch;

use crate::events::EventBus;
use crate::ids;
use crate::retention::{self, REMOVED_PREFIX};
use crate::settings::Retention;
use crate::state_files::{self as files, Asked, Audit, History};
use crate::timestamp;

/// Prefix of an execution folder being created (hidden: loading skips it).
const CREATING_PREFIX: &str = ".creating-";

pub struct Store {
    jobs_root: PathBuf,
    bus: EventBus,
    /// Per unfinished execution someone follows: its status as it changes.
    watchers: Mutex<HashMap<(String, u64), watch::Sender<ExecutionStatus>>>,
    /// Flush every change to the disk before going on (`--fsync`), so it survives a
    /// power loss, not only a crash of servitord.
    fsync: bool,
    jobs: Mutex<HashMap<String, Arc<Mutex<JobSlot>>>>,
}

/// One job's history, loaded from disk on first use.
#[derive(Default)]
struct JobSlot {
    history: Option<JobHistory>,
    /// The newest execution in short, as JSON (`null`: never run), kept between
    /// changes: `GET /api/jobs/get_list` gives it for every job. Known before the
    /// history is loaded when read alone (`read_last_execution`).
    last_execution: Option<Bytes>,
}

struct JobHistory {
    dir: PathBuf,
    last_id: u64,
    /// `last_execution.txt`, kept open: rewritten in place for every run.
    counter: Option<fs::File>,
    executions: BTreeMap<u64, Record>,
    /// Folders a crash left half-made or half-deleted, to delete.
    leftovers: Vec<PathBuf>,
    /// When a run last ended in success, and in failure (for monitoring).
    last_success: Option<Timestamp>,
    last_failure: Option<Timestamp>,
}

/// One execution, as read from or written to its folder. Kept in memory for every
/// execution, so what most runs lack is boxed, and absent when empty.
#[derive(Default)]
struct Record {
    history: Vec<StatusChange>,
    result: Option<RunResult>,
    inputs: Option<Box<InputValues>>,
    problems: Vec<String>,
    /// The history file lacks its final newline.
    needs_newline: bool,
    audit: Option<Box<Audit>>,
    /// Read from disk: a previous daemon's run. Runs this daemon creates are queued by
    /// their creator, so recovery must not queue them again, even while it still scans.
    inherited: bool,
}

/// A run the previous daemon left unfinished.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub execution_id: u64,
    pub status: ExecutionStatus,
    /// Left `created` while a worker was starting it: it may have run.
    pub starting: bool,
    /// When it was created (its first history line), to re-queue runs in order.
    pub created_at: String,
}

impl Store {
    pub fn new(jobs_root: PathBuf, bus: EventBus, fsync: bool) -> Self {
        Self {
            jobs_root,
            bus,
            fsync,
            watchers: Mutex::default(),
            jobs: Mutex::default(),
        }
    }

    pub fn execution_dir(&self, job: &str, id: u64) -> PathBuf {
        self.executions_dir(job).join(id.to_string())
    }

    pub fn log_path(&self, job: &str, id: u64) -> PathBuf {
        self.execution_dir(job, id)
            .join(files::LOGS_DIR)
            .join(files::LOG)
    }

    fn executions_dir(&self, job: &str) -> PathBuf {
        debug_assert!(ids::check_job_id(job).is_ok());
        self.jobs_root.join(job).join("executions")
    }

    fn slot(&self, job: &str) -> Arc<Mutex<JobSlot>> {
        lock(&self.jobs).entry(job.to_owned()).or_default().clone()
    }

    /// Loads a job's history off the async threads, if it is not in memory yet.
    pub async fn preload(self: &Arc<Self>, job: &str) {
        let slot = self.slot(job);
        if lock(&slot).history.is_some() {
            return;
        }
        let store = Arc::clone(self);
        let job = job.to_owned();
        let _ = tokio::task::spawn_blocking(move || store.with_history(&job, |_| ())).await;
    }

    /// Runs `f` on the job's history, loading it first if needed.
    fn with_history<R>(&self, job: &str, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        self.in_slot(job, false, f)
    }

    /// `with_history` for a change to the job's executions: the newest one is worked
    /// out again when next asked for.
    fn change<R>(&self, job: &str, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        self.in_slot(job, true, f)
    }

    fn in_slot<R>(&self, job: &str, changes: bool, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        let slot = self.slot(job);
        let mut slot = lock(&slot);
        if changes {
            slot.last_execution = None;
        }
        let history = slot
            .history
            .get_or_insert_with(|| JobHistory::load(job, self.executions_dir(job)));
        f(history)
    }

    /// The job's newest execution in short, as JSON (`null` for a job never run).
    /// `None` when that needs reading the disk and `read` is false: then call again
    /// off the async threads with `read`.
    pub fn last_execution_json(&self, job: &str, read: bool) -> Option<Bytes> {
        let slot = self.slot(job);
        let mut slot = lock(&slot);
        if let Some(json) = &slot.last_execution {
            return Some(json.clone());
        }
        let last = match &slot.history {
            Some(history) => history
                .executions
                .iter()
                .next_back()
                .map(|(id, record)| record.last_execution(*id)),
            None if read => read_last_execution(job, &self.executions_dir(job)),
            None => return None,
        };
        let json = Bytes::from(serde_json::to_vec(&last).expect("an execution serializes"));
        slot.last_execution = Some(json.clone());
        Some(json)
    }

    /// Records a new execution as `created` and returns its id; `peer` asked for it.
    pub fn create(&self, job: &str, inputs: InputValues, peer: Option<Peer>) -> io::Result<u64> {
        self.change(job, |history| {
            fs::create_dir_all(&history.dir)?;
            let mut id = history.last_id + 1;
            while history.dir.join(id.to_string()).exists() {
                id += 1;
            }
            let dir = history.dir.join(id.to_string());
            let change = new_change(ExecutionStatus::Created);
            // Built under a hidden name, then renamed into place: an execution appears
            // whole or not at all, whenever a crash comes. Ids never repeat: the
            // counter is saved before the execution appears.
            let building = history.dir.join(format!("{CREATING_PREFIX}{id}"));
            let made = self
                .build(&building, &inputs, &change)
                .and_then(|()| history.save_counter(id, self.fsync))
                .and_then(|()| fs::rename(&building, &dir));
            if let Err(e) = made {
                let _ = fs::remove_dir_all(&building);
                return Err(e);
            }
            history.last_id = id;
            if let Some(peer) = peer {
                self.append_audit(history, id, Asked::Run, peer);
            }
            if self.fsync {
                sync_dir(&history.dir)?;
            }
            history.executions.insert(
                id,
                Record {
                    history: vec![change],
                    inputs: (!inputs.is_empty()).then(|| Box::new(inputs)),
                    audit: peer.map(|peer| {
                        Box::new(Audit {
                            triggered_by: Some(peer),
                            cancelled_by: None,
                        })
                    }),
                    ..Record::default()
                },
            );
            self.announce(job, id, ExecutionStatus::Created);
            Ok(id)
        })
    }

    /// Writes a new execution's files into `dir`.
    fn build(&self, dir: &Path, inputs: &InputValues, change: &StatusChange) -> io::Result<()> {
        // A leftover of a crash in the middle of this.
        let _ = fs::remove_dir_all(dir);
        fs::create_dir(dir)?;
        fs::create_dir(dir.join(files::LOGS_DIR))?;
        write_new(
            self.fsync,
            &dir.join(files::INPUT),
            files::format_input_values(inputs).as_bytes(),
        )?;
        append_status(self.fsync, dir, change, false)
    }

    /// Notes who asked to cancel a run.
    pub fn record_cancel_request(&self, job: &str, id: u64, peer: Peer) {
        self.with_history(job, |history| {
            if let Some(record) = history.executions.get_mut(&id) {
                record.audit.get_or_insert_default().cancelled_by = Some(peer);
                self.append_audit(history, id, Asked::Cancel, peer);
            }
        });
    }

    /// Appends to the job's `audit.tsv`. The audit trail is a record, not state: a
    /// failure is logged and noted on the execution, and changes nothing else.
    fn append_audit(&self, history: &mut JobHistory, id: u64, asked: Asked, peer: Peer) {
        let path = history.dir.with_file_name(files::AUDIT_LOG);
        let appended = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(files::format_audit_line(id, asked, peer).as_bytes())?;
                if self.fsync {
                    file.sync_data()?;
                }
                Ok(())
            });
        if let Err(e) = appended {
            tracing::warn!(path = %path.display(), "cannot append to the audit trail: {e}");
            if let Some(record) = history.executions.get_mut(&id) {
                record
                    .problems
                    .push(format!("who asked could not be saved: {e}"));
            }
        }
    }

    /// Appends a status change. Memory follows even when the disk refuses, so the API
    /// tells the truth about this run; the error is returned to be reported.
    pub fn record_status(&self, job: &str, id: u64, status: ExecutionStatus) -> io::Result<()> {
        self.change_status(job, id, status, true)
    }

    /// `record_status`, with the disk left as it is unless `save`.
    fn change_status(
        &self,
        job: &str,
        id: u64,
        status: ExecutionStatus,
        save: bool,
    ) -> io::Result<()> {
        self.change(job, |history| {
            let dir = history.dir.join(id.to_string());
            let record = history.executions.entry(id).or_default();
            let change = new_change(status);
            let written = match save {
                true => append_status(self.fsync, &dir, &change, record.needs_newline),
                false => Ok(()),
            };
            match &written {
                Ok(()) => record.needs_newline = false,
                Err(e) => record
                    .problems
                    .push(format!("could not save status {status}: {e}")),
            }
            record.history.push(change);
            history.note_end(record_end(&history.executions[&id]));
            self.announce(job, id, status);
            written
        })
    }

    /// Ends a run: `result.tsv` first, then the terminal status, so whoever reacts to
    /// the terminal event finds the result.
    pub fn finish(
        &self,
        job: &str,
        id: u64,
        status: ExecutionStatus,
        result: RunResult,
    ) -> io::Result<()> {
        debug_assert!(status.is_terminal());
        // Memory holds what the file will hold.
        let result = files::parse_result(&files::format_result(&result)).unwrap_or(result);
        let written = self.change(job, |history| {
            let path = history.dir.join(id.to_string()).join(files::RESULT);
            let written = write_atomic(self.fsync, &path, files::format_result(&result).as_bytes());
            let record = history.executions.entry(id).or_default();
            if let Err(e) = &written {
                record
                    .problems
                    .push(format!("could not save the result: {e}"));
            }
            record.result = Some(result);
            written
        });
        // A terminal status without its result would read as ended for good: left
        // unfinished on disk instead, the next start ends it with a message.
        let recorded = self.change_status(job, id, status, written.is_ok());
        written.and(recorded)
    }

    /// The execution's status now and as it changes; `None` for an unknown execution.
    /// The channel closes once the run has ended.
    pub fn watch_status(&self, job: &str, id: u64) -> Option<watch::Receiver<ExecutionStatus>> {
        // Under the job's lock, as status changes are: none can slip in between.
        self.with_history(job, |history| {
            let status = history.executions.get(&id)?.status();
            if status.is_terminal() {
                return Some(watch::channel(status).1);
            }
            let mut watchers = lock(&self.watchers);
            let sender = watchers
                .entry((job.to_owned(), id))
                .or_insert_with(|| watch::channel(status).0);
            Some(sender.subscribe())
        })
    }

    /// Tells the execution's followers and the event bus (called under the job's lock).
    fn announce(&self, job: &str, id: u64, status: ExecutionStatus) {
        let key = (job.to_owned(), id);
        let mut watchers = lock(&self.watchers);
        if let Some(sender) = watchers.get(&key) {
            sender.send_replace(status);
            if status.is_terminal() {
                watchers.remove(&key);
            }
        }
        drop(watchers);
        self.bus.publish(Event::JobExecutionStatusChanged {
            job_id: job.to_owned(),
            execution_id: id.to_string(),
            status,
        });
    }

    pub fn status(&self, job: &str, id: u64) -> Option<ExecutionStatus> {
        self.with_history(job, |history| {
            history.executions.get(&id).map(Record::status)
        })
    }

    pub fn get(&self, job: &str, id: u64) -> Option<Execution> {
        self.with_history(job, |history| {
            history.executions.get(&id).map(|r| r.describe(id))
        })
    }

    /// A job's executions, newest first: those with ids below `before`, at most `limit`.
    pub fn list(&self, job: &str, limit: Option<usize>, before: Option<u64>) -> Vec<Execution> {
        self.with_history(job, |history| {
            history
                .executions
                .range(..before.unwrap_or(u64::MAX))
                .rev()
                .take(limit.unwrap_or(usize::MAX))
                .map(|(id, r)| r.describe(*id))
                .collect()
        })
    }

    /// The job's runs that a previous daemon left queued or running, oldest first.
    pub fn unfinished(&self, job: &str) -> Vec<Unfinished> {
        self.with_history(job, |history| {
            history
                .executions
                .iter()
                .filter(|(_, r)| {
                    r.inherited
                        && matches!(
                            r.status(),
                            ExecutionStatus::Created | ExecutionStatus::Running
                        )
                })
                .map(|(id, r)| Unfinished {
                    execution_id: *id,
                    status: r.status(),
                    // A worker opens the log just before it starts the process: a
                    // run of servitord's (it has an audit) left `created` with a log
                    // was caught starting. The old tool's runs are run again.
                    starting: r.status() == ExecutionStatus::Created
                        && r.audit.is_some()
                        && self.log_path(job, *id).exists(),
                    created_at: r
                        .history
                        .first()
                        .map(|c| c.timestamp.clone())
                        .unwrap_or_default(),
                })
                .collect()
        })
    }
}

impl Store {
    /// For every job loaded so far: when its last success and last failure ended.
    pub fn last_ends(&self) -> Vec<(String, Option<Timestamp>, Option<Timestamp>)> {
        let slots: Vec<(String, Arc<Mutex<JobSlot>>)> = lock(&self.jobs)
            .iter()
            .map(|(job, slot)| (job.clone(), Arc::clone(slot)))
            .collect();
        slots
            .into_iter()
            .filter_map(|(job, slot)| {
                let guard = lock(&slot);
                let history = guard.history.as_ref()?;
                Some((job, history.last_success, history.last_failure))
            })
            .collect()
    }

    /// Moves out of sight the finished executions `policy` lets go, and returns their
    /// folders for deleting (with what a crash left half-deleted).
    pub fn remove_expired(&self, job: &str, policy: Retention, now: Timestamp) -> Vec<PathBuf> {
        self.with_history(job, |history| {
            let expired: Vec<u64> = history
                .executions
                .iter()
                .rev()
                .enumerate()
                .filter(|(rank, (_, record))| {
                    record.status().is_terminal()
                        && retention::expired(policy, *rank, record.ended_at(), now)
                })
                .map(|(_, (id, _))| *id)
                .collect();
            let mut moved = std::mem::take(&mut history.leftovers);
            for id in expired {
                let hidden = history.dir.join(format!("{REMOVED_PREFIX}{id}"));
                match fs::rename(history.dir.join(id.to_string()), &hidden) {
                    Ok(()) => {
                        history.executions.remove(&id);
                        moved.push(hidden);
                    }
                    Err(e) => {
                        tracing::warn!(job, execution = id, "cannot remove an old execution: {e}")
                    }
                }
            }
            moved
        })
    }
}

impl JobHistory {
    fn load(job: &str, dir: PathBuf) -> Self {
        let mut history = Self {
            last_id: 0,
            counter: None,
            executions: BTreeMap::new(),
            leftovers: Vec::new(),
            last_success: None,
            last_failure: None,
            dir,
        };
        let entries = match fs::read_dir(&history.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return history,
            Err(e) => {
                tracing::error!(job, dir = %history.dir.display(), "cannot read executions: {e}");
                return history;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match ids::parse_execution_id(&name) {
                Ok(id) if entry.path().is_dir() => {
                    let record = Record::load(&entry.path());
                    if !record.problems.is_empty() {
                        tracing::warn!(
                            job,
                            execution = id,
                            "damaged execution: {}",
                            record.problems.join("; ")
                        );
                    }
                    history.executions.insert(id, record);
                }
                _ if name.starts_with(REMOVED_PREFIX) || name.starts_with(CREATING_PREFIX) => {
                    history.leftovers.push(entry.path());
                }
                _ if name == files::LAST_EXECUTION || name.starts_with('.') => {}
                _ => {
                    tracing::warn!(job, entry = %name, "ignoring a stray entry among the executions")
                }
            }
        }
        let counter = history.dir.join(files::LAST_EXECUTION);
        let saved = match fs::read_to_string(&counter) {
            Ok(text) => files::parse_last_execution(&text).or_else(|| {
                tracing::warn!(
                    job,
                    "unreadable {}: {text:?}; numbering from the highest execution",
                    files::LAST_EXECUTION
                );
                None
            }),
            Err(_) => None,
        };
        let highest = history.executions.keys().next_back().copied();
        history.last_id = saved.max(highest).unwrap_or(0);
        // Runs of the old tool have no audit.
        if let Ok(text) = fs::read_to_string(history.dir.with_file_name(files::AUDIT_LOG)) {
            for (id, audit) in files::parse_audit_log(&text) {
                if let Some(record) = history.executions.get_mut(&id) {
                    record.audit = Some(Box::new(audit));
                }
            }
        }
        let ends: Vec<_> = history.executions.values().map(record_end).collect();
        for end in ends {
            history.note_end(end);
        }
        history
    }

    /// Saves `last_execution.txt` with one write at its start. Ids only grow, so the
    /// new text covers the old; a crash cannot tear a single write of a few bytes, and a
    /// power loss that did would be read back as at most the highest folder's id, which
    /// `load` takes anyway.
    fn save_counter(&mut self, id: u64, fsync: bool) -> io::Result<()> {
        let counter = match &mut self.counter {
            Some(counter) => counter,
            empty => empty.insert(
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(self.dir.join(files::LAST_EXECUTION))?,
            ),
        };
        let text = files::format_last_execution(id);
        let written = counter
            .write_all_at(text.as_bytes(), 0)
            // What was there before may have been longer (a newline, garbage).
            .and_then(|()| match counter.metadata()?.len() > text.len() as u64 {
                true => counter.set_len(text.len() as u64),
                false => Ok(()),
            })
            .and_then(|()| match fsync {
                true => counter.sync_data(),
                false => Ok(()),
            });
        if written.is_err() {
            // Opened afresh next time.
            self.counter = None;
        }
        written
    }

    fn note_end(&mut self, end: Option<(ExecutionStatus, Timestamp)>) {
        let last = match end {
            Some((ExecutionStatus::Success, _)) => &mut self.last_success,
            Some((ExecutionStatus::Failure, _)) => &mut self.last_failure,
            _ => return,
        };
        let time = end.map(|(_, time)| time);
        if *last < time {
            *last = time;
        }
    }
}

impl Record {
    fn load(dir: &Path) -> Self {
        let mut record = Record {
            inherited: true,
            ..Record::default()
        };
        match fs::read(dir.join(files::STATUS_HISTORY)) {
            Ok(bytes) => {
                let History {
                    changes,
                    problems,
                    needs_newline,
                } = files::parse_status_history(&String::from_utf8_lossy(&bytes));
                record.history = changes;
                record.problems = problems;
                record.needs_newline = needs_newline;
            }
            Err(e) => record
                .problems
                .push(format!("cannot read {}: {e}", files::STATUS_HISTORY)),
        }
        let problems = &mut record.problems;
        record.result = read_optional(dir, files::RESULT, files::parse_result, problems);
        let inputs = read_optional(dir, files::INPUT, files::parse_input_values, problems);
        record.inputs = inputs.filter(|i| !i.is_empty()).map(Box::new);
        record
    }

    fn status(&self) -> ExecutionStatus {
        self.history
            .last()
            .map_or(ExecutionStatus::Unknown, |c| c.status)
    }

    /// When the run ended, if it has and its timestamp reads.
    fn ended_at(&self) -> Option<Timestamp> {
        let last = self.history.last().filter(|c| c.status.is_terminal())?;
        last.timestamp.parse().ok()
    }

    fn last_execution(&self, id: u64) -> LastExecution {
        let at = |wanted: fn(ExecutionStatus) -> bool| {
            self.history
                .iter()
                .find(|change| wanted(change.status))
                .map(|change| change.timestamp.clone())
        };
        LastExecution {
            execution_id: id.to_string(),
            status: self.status(),
            created_at: at(|status| status == ExecutionStatus::Created),
            started_at: at(|status| status == ExecutionStatus::Running),
            ended_at: at(ExecutionStatus::is_terminal),
            result: self.result.clone(),
        }
    }

    fn describe(&self, id: u64) -> Execution {
        Execution {
            execution_id: id.to_string(),
            status: self.status(),
            status_history: self.history.clone(),
            result: self.result.clone(),
            input_values: self.inputs.as_deref().cloned().unwrap_or_default(),
            triggered_by: self.audit.as_ref().and_then(|a| a.triggered_by),
            cancelled_by: self.audit.as_ref().and_then(|a| a.cancelled_by),
            timed_out: self.status() == ExecutionStatus::Failure
                && self
                    .result
                    .as_ref()
                    .is_some_and(|r| r.message.starts_with(files::TIMED_OUT)),
            error: (!self.problems.is_empty()).then(|| self.problems.join("; ")),
        }
    }
}

/// Reads an optional file of an execution: `None` when it is missing, and a problem
/// noted when it cannot be read.
fn read_optional<T>(
    dir: &Path,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let parsed = match fs::read_to_string(dir.join(name)) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => Err(format!("cannot read {name}: {e}")),
    };
    parsed.map_err(|problem| problems.push(problem)).ok()
}

/// The newest execution of a job whose history is not loaded, read alone: the one
/// `last_execution.txt` names, or the highest folder when that one is missing (a crash
/// between saving the counter and the folder, or an old tool's state).
fn read_last_execution(job: &str, dir: &Path) -> Option<LastExecution> {
    let counted = fs::read_to_string(dir.join(files::LAST_EXECUTION))
        .ok()
        .and_then(|text| files::parse_last_execution(&text))
        .filter(|id| dir.join(id.to_string()).is_dir());
    let id = counted.or_else(|| {
        let entries = fs::read_dir(dir).ok()?;
        entries
            .flatten()
            .filter_map(|entry| ids::parse_execution_id(&entry.file_name().to_string_lossy()).ok())
            .filter(|id| dir.join(id.to_string()).is_dir())
            .max()
    })?;
    let record = Record::load(&dir.join(id.to_string()));
    if !record.problems.is_empty() {
        tracing::debug!(
            job,
            execution = id,
            "damaged execution: {}",
            record.problems.join("; ")
        );
    }
    Some(record.last_execution(id))
}

/// How and when a record's run ended, if it has.
fn record_end(record: &Record) -> Option<(ExecutionStatus, Timestamp)> {
    Some((record.status(), record.ended_at()?))
}

fn new_change(status: ExecutionStatus) -> StatusChange {
    StatusChange {
        timestamp: timestamp::now(),
        status,
    }
}

fn append_status(
    fsync: bool,
    dir: &Path,
    change: &StatusChange,
    needs_newline: bool,
) -> io::Result<()> {
    let mut line = String::with_capacity(48);
    if needs_newline {
        line.push('\n');
    }
    line.push_str(&files::format_status_line(&change.timestamp, change.status));
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(files::STATUS_HISTORY))?;
    // One write: appends of a few bytes land whole.
    file.write_all(line.as_bytes())?;
    if fsync {
        file.sync_data()?;
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `path` so that readers see either the old or the new content, never a mix.
/// With `fsync`, the content and the rename are on the disk when it returns.
fn write_atomic(fsync: bool, path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(contents)?;
    if fsync {
        file.sync_data()?;
    }
    fs::rename(&temporary, path)?;
    if fsync {
        sync_dir(path.parent().expect("state files lie in folders"))?;
    }
    Ok(())
}

/// Writes a file that does not exist yet (in a folder nobody reads yet).
fn write_new(fsync: bool, path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    if fsync {
        file.sync_data()?;
    }
    Ok(())
}

/// Makes a folder's entries (new files, renames) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// A poisoned lock only means another thread panicked mid-way; the maps stay usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_old_layout_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let bus = EventBus::default();
        let mut events = bus.subscribe();
        let store = Store::new(dir.path().to_owned(), bus.clone(), true);

        let mut inputs = InputValues::new();
        inputs.insert("NAME".into(), "Ada".into());
        assert_eq!(store.create("a/b", inputs.clone(), None).unwrap(), 1);
        assert_eq!(store.create("a/b", InputValues::new(), None).unwrap(), 2);
        store
            .record_status("a/b", 1, ExecutionStatus::Running)
            .unwrap();
        let result = RunResult {
            exit_code: 3,
            message: "bad\tthing".into(),
        };
        store
            .finish("a/b", 1, ExecutionStatus::Failure, result)
            .unwrap();

        let executions = dir.path().join("a/b/executions");
        assert_eq!(
            fs::read_to_string(executions.join("last_execution.txt")).unwrap(),
            "2"
        );
        assert_eq!(
            fs::read_to_string(executions.join("1/input.json")).unwrap(),
            "{\n  \"NAME\": \"Ada\"\n}\n"
        );
        assert_eq!(
            fs::read_to_string(executions.join("1/result.tsv")).unwrap(),
            "3\tbad thing\n"
        );
        let history = fs::read_to_string(executions.join("1/status_history.tsv")).unwrap();
        let statuses: Vec<_> = history
            .lines()
            .map(|l| l.split('\t').nth(1).unwrap())
            .collect();
        assert_eq!(statuses, ["created", "running", "failure"]);

        let fresh = Store::new(dir.path().to_owned(), EventBus::default(), false);
        assert_eq!(fresh.list("a/b", None, None), store.list("a/b", None, None));
        let first = fresh.get("a/b", 1).unwrap();
        assert_eq!(first.status, ExecutionStatus::Failure);
        assert_eq!(first.input_values, inputs);
        assert_eq!(first.result.unwrap().message, "bad thing");
        assert_eq!(fresh.list("a/b", None, None)[0].execution_id, "2");
        let page = fresh.list("a/b", Some(1), Some(2));
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].execution_id, "1");
        assert_eq!(fresh.unfinished("a/b").len(), 1);
        assert_eq!(fresh.create("a/b", InputValues::new(), None).unwrap(), 3);
        // A run of this daemon is not a previous daemon's leftover.
        assert_eq!(fresh.unfinished("a/b").len(), 1);

        let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn damage_stays_local() {
        let dir = tempfile::tempdir().unwrap();
        let executions = dir.path().join("j/executions");
        for (n, history) in [
            ("1", "t\tcreated\nt\trunning\nt\tsuccess\n"),
            ("2", ""),
            ("3", "t\tcreated\nt\trunn"),
        ] {
            fs::create_dir_all(executions.join(n)).unwrap();
            fs::write(executions.join(n).join("status_history.tsv"), history).unwrap();
        }
        fs::create_dir_all(executions.join("stray")).unwrap();
        fs::create_dir_all(executions.join("7")).unwrap();
        fs::write(executions.join("1/result.tsv"), "garbage").unwrap();
        fs::write(executions.join("last_execution.txt"), "x").unwrap();

        let store = Store::new(dir.path().to_owned(), EventBus::default(), false);
        let list = store.list("j", None, None);
        let ids: Vec<_> = list.iter().map(|e| e.execution_id.as_str()).collect();
        assert_eq!(ids, ["7", "3", "2", "1"]);
        assert_eq!(list[0].status, ExecutionStatus::Unknown);
        assert_eq!(list[2].status, ExecutionStatus::Unknown);
        assert!(
            list[3]
                .error
                .as_deref()
                .unwrap()
                .contains("unreadable result")
        );
        assert_eq!(list[1].status, ExecutionStatus::Created);

        // The torn line is completed before the next append.
        store
            .record_status("j", 3, ExecutionStatus::Running)
            .unwrap();
        let text = fs::read_to_string(executions.join("3/status_history.tsv")).unwrap();
        assert!(
            text.starts_with("t\tcreated\nt\trunn\n") && text.ends_with("\trunning\n"),
            "{text}"
        );
        // A garbage counter yields to the highest folder.
        assert_eq!(store.create("j", InputValues::new(), None).unwrap(), 8);
    }
}
