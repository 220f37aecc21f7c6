//! The execution store: each job's executions under `state/jobs/<job>/executions/`,
//! mirrored in memory so listings never re-read every file.
//!
//! The files stay the source of truth. Every change is written to disk first (appends
//! for the status history, write-then-rename for the rest), then to memory. A job's
//! history is loaded on first use. Every method may touch the disk: call them from a
//! worker's thread or the blocking pool, never from the API's async threads (`History`
//! is the read side the API uses, with that in mind).
//!
//! The store only records: it does not decide anything about runs. The run lifecycle
//! (`runs::lifecycle`) is the one caller that changes an execution.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use jiff::Timestamp;
use servitor_shared::{
    ExecutionStatus, ExecutionWithTrigger, InputValues, Peer, RunResult, SlurmPlacement,
    StatusChange,
};

use super::files::{self, Asked, Origin};
use super::history::{self, CREATING_PREFIX, JobHistory, Record};
use super::retention::{self, REMOVED_PREFIX};
use super::timestamp;
use super::workdir::Workdir;
use super::write;
use crate::jobs::id::{JobId, RunId};
use crate::jobs::settings::Retention;
use crate::sync::lock;

pub struct Store {
    workdir: Workdir,
    /// Flush every change to the disk before going on (`--fsync`), so it survives a
    /// power loss, not only a crash of servitord.
    fsync: bool,
    /// servitord's own process, as the audit names it when servitord starts or makes
    /// a run.
    itself: Peer,
    jobs: Mutex<HashMap<JobId, Arc<Mutex<Slot>>>>,
}

/// One job's history, loaded from disk on first use.
#[derive(Default)]
struct Slot {
    history: Option<JobHistory>,
    /// The newest execution in short, as JSON (`null`: never run), kept between
    /// changes: `GET /api/jobs/get_list` gives it for every job. Known before the
    /// history is loaded when read alone (`history::read_last_execution`).
    last_execution: Option<Bytes>,
}

/// A run a previous daemon left unfinished, with what its files say about it.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub run: RunId,
    pub status: ExecutionStatus,
    /// The previous daemon was starting it (its audit says so).
    pub started: bool,
    /// A client's request for it is in the audit (servitord made it, not the old tool).
    pub requested: bool,
    /// Its log file exists.
    pub has_log: bool,
    /// When it was created (its first history line), to queue runs again in order.
    pub created_at: String,
}

impl Store {
    pub fn new(workdir: Workdir, fsync: bool) -> Self {
        let itself = Peer {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            pid: i32::try_from(std::process::id()).ok(),
        };
        Self {
            workdir,
            fsync,
            itself,
            jobs: Mutex::default(),
        }
    }

    pub fn log_path(&self, run: &RunId) -> PathBuf {
        self.workdir.log_path(run)
    }

    fn slot(&self, job: &JobId) -> Arc<Mutex<Slot>> {
        lock(&self.jobs).entry(job.clone()).or_default().clone()
    }

    /// Whether the job's history is in memory (asking about it costs no disk access).
    pub fn is_loaded(&self, job: &JobId) -> bool {
        lock(&self.slot(job)).history.is_some()
    }

    /// Runs `f` on the job's history, loading it first if needed.
    fn with_history<R>(&self, job: &JobId, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        self.in_slot(job, false, f)
    }

    /// `with_history` for a change to the job's executions: the newest one is worked
    /// out again when next asked for.
    fn change<R>(&self, job: &JobId, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        self.in_slot(job, true, f)
    }

    fn in_slot<R>(&self, job: &JobId, changes: bool, f: impl FnOnce(&mut JobHistory) -> R) -> R {
        let slot = self.slot(job);
        let mut slot = lock(&slot);
        if changes {
            slot.last_execution = None;
        }
        let history = slot
            .history
            .get_or_insert_with(|| JobHistory::load(job, self.workdir.executions_dir(job)));
        f(history)
    }

    /// Records a new execution as `created`; `by` asked for it, or servitord made it
    /// (`origin` not `Api`).
    pub fn create(
        &self,
        job: &JobId,
        inputs: InputValues,
        by: Option<Peer>,
        origin: Origin,
    ) -> io::Result<RunId> {
        let fsync = self.fsync;
        self.change(job, |history| {
            // Above every entry `load` found, and every id handed out since.
            let id = history.last_id + 1;
            let change = new_change(ExecutionStatus::Created);
            // Built under a hidden name, then renamed into place: an execution appears
            // whole or not at all, whenever a crash comes. Ids never repeat: the
            // counter is saved before the execution appears.
            let building = history.dir.join(format!("{CREATING_PREFIX}{id}"));
            let mut built = build(fsync, &building, &inputs, &change);
            if built
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            {
                // No `executions/` yet (the job's first run), or it went (deleted by
                // hand): made, then the execution built again.
                built = history
                    .make_dir()
                    .and_then(|()| build(fsync, &building, &inputs, &change));
            }
            let made = built
                .and_then(|()| history.save_counter(id, fsync))
                .and_then(|()| fs::rename(&building, history.execution_dir(id)));
            if let Err(e) = made {
                let _ = fs::remove_dir_all(&building);
                return Err(e);
            }
            history.last_id = id;
            if fsync {
                write::sync_dir(&history.dir)?;
            }
            let mut record = Record {
                history: vec![change],
                inputs: (!inputs.is_empty()).then(|| Box::new(inputs)),
                ..Record::default()
            };
            if origin != Origin::Api {
                // In the audit, as who asked is: no file more per run.
                record.audit.get_or_insert_default().origin = origin;
                note_in_audit(
                    fsync,
                    &history.audit_path(),
                    &mut record,
                    id,
                    Asked::Made(origin),
                    self.itself,
                );
            } else if let Some(peer) = by {
                record.audit.get_or_insert_default().triggered_by = Some(peer);
                note_in_audit(
                    fsync,
                    &history.audit_path(),
                    &mut record,
                    id,
                    Asked::Run,
                    peer,
                );
            }
            history.executions.insert(id, record);
            Ok(RunId::new(job.clone(), id))
        })
    }

    /// Notes in the audit that servitord is about to start the run: from here on it may
    /// have run, and a restart must not run it again. It must be saved before the start.
    pub fn mark_starting(&self, run: &RunId) -> io::Result<()> {
        let fsync = self.fsync;
        self.with_history(&run.job, |history| {
            let line = files::format_audit_line(run.execution, Asked::Start, self.itself);
            write::append(fsync, &history.audit_path(), line.as_bytes())?;
            if let Some(record) = history.executions.get_mut(&run.execution) {
                record.audit.get_or_insert_default().started = true;
            }
            Ok(())
        })
    }

    /// Records where a run went on a Slurm cluster (its job id, its node once known).
    pub fn record_slurm(&self, run: &RunId, placement: SlurmPlacement) -> io::Result<()> {
        let fsync = self.fsync;
        self.with_history(&run.job, |history| {
            let path = history.execution_dir(run.execution).join(files::SLURM);
            let written = write::replace(fsync, &path, files::format_slurm(&placement).as_bytes());
            if let Some(record) = history.executions.get_mut(&run.execution) {
                record.slurm = Some(Box::new(placement));
            }
            written
        })
    }

    /// Notes who asked to cancel a run.
    pub fn note_cancel_request(&self, run: &RunId, peer: Peer) {
        let fsync = self.fsync;
        self.with_history(&run.job, |history| {
            let path = history.audit_path();
            if let Some(record) = history.executions.get_mut(&run.execution) {
                record.audit.get_or_insert_default().cancelled_by = Some(peer);
                note_in_audit(fsync, &path, record, run.execution, Asked::Cancel, peer);
            }
        });
    }

    /// Appends a status change. Memory follows even when the disk refuses, so the API
    /// tells the truth about this run; the error is returned to be reported.
    pub fn record_status(&self, run: &RunId, status: ExecutionStatus) -> io::Result<()> {
        self.change_status(run, status, true)
    }

    /// `record_status`, with the disk left as it is unless `save`.
    fn change_status(&self, run: &RunId, status: ExecutionStatus, save: bool) -> io::Result<()> {
        let fsync = self.fsync;
        self.change(&run.job, |history| {
            let dir = history.execution_dir(run.execution);
            let record = history.executions.entry(run.execution).or_default();
            let change = new_change(status);
            let written = match save {
                true => append_status(fsync, &dir, &change, record.needs_newline),
                false => Ok(()),
            };
            match &written {
                Ok(()) => record.needs_newline = false,
                Err(e) => record
                    .problems
                    .push(format!("could not save status {status}: {e}")),
            }
            record.history.push(change);
            let end = record.end();
            history.note_end(end);
            written
        })
    }

    /// Ends a run: `result.tsv` first, then the terminal status, so whoever reacts to
    /// the terminal status finds the result.
    pub fn finish(
        &self,
        run: &RunId,
        status: ExecutionStatus,
        result: RunResult,
    ) -> io::Result<()> {
        debug_assert!(status.is_terminal());
        let fsync = self.fsync;
        // Memory holds what the file will hold.
        let result = files::parse_result(&files::format_result(&result)).unwrap_or(result);
        let written = self.change(&run.job, |history| {
            let path = history.execution_dir(run.execution).join(files::RESULT);
            let written = write::replace(fsync, &path, files::format_result(&result).as_bytes());
            let record = history.executions.entry(run.execution).or_default();
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
        let recorded = self.change_status(run, status, written.is_ok());
        written.and(recorded)
    }

    pub fn status(&self, run: &RunId) -> Option<ExecutionStatus> {
        self.with_history(&run.job, |history| {
            history.executions.get(&run.execution).map(Record::status)
        })
    }

    pub fn get(&self, run: &RunId) -> Option<ExecutionWithTrigger> {
        self.with_history(&run.job, |history| {
            history
                .executions
                .get(&run.execution)
                .map(|r| r.describe(run.execution))
        })
    }

    /// What made the run.
    pub fn origin(&self, run: &RunId) -> Origin {
        self.with_history(&run.job, |history| {
            history
                .executions
                .get(&run.execution)
                .map_or(Origin::Api, |r| r.audit().origin)
        })
    }

    /// The run's stored input values (secret ones masked).
    pub fn inputs(&self, run: &RunId) -> InputValues {
        self.with_history(&run.job, |history| {
            history
                .executions
                .get(&run.execution)
                .and_then(|r| r.inputs.as_deref().cloned())
                .unwrap_or_default()
        })
    }

    /// A job's executions, newest first: those with ids below `before`, at most `limit`.
    pub fn list(
        &self,
        job: &JobId,
        limit: Option<usize>,
        before: Option<u64>,
    ) -> Vec<ExecutionWithTrigger> {
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

    /// The job's newest execution in short, as JSON (`null` for a job never run).
    /// `None` when that needs reading the disk and `read` is false.
    pub fn last_execution_json(&self, job: &JobId, read: bool) -> Option<Bytes> {
        let slot = self.slot(job);
        let mut slot = lock(&slot);
        if let Some(json) = &slot.last_execution {
            return Some(json.clone());
        }
        let last = match &slot.history {
            Some(history) => history.last_execution(),
            None if read => history::read_last_execution(job, &self.workdir.executions_dir(job)),
            None => return None,
        };
        let json = Bytes::from(serde_json::to_vec(&last).expect("an execution serializes"));
        slot.last_execution = Some(json.clone());
        Some(json)
    }

    /// The job's runs that a previous daemon left queued or running, oldest first.
    pub fn unfinished(&self, job: &JobId) -> Vec<Unfinished> {
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
                .map(|(id, r)| {
                    let run = RunId::new(job.clone(), *id);
                    let audit = r.audit();
                    Unfinished {
                        status: r.status(),
                        started: audit.started,
                        requested: audit.triggered_by.is_some() || audit.origin != Origin::Api,
                        has_log: self.workdir.log_path(&run).exists(),
                        created_at: r
                            .history
                            .first()
                            .map(|c| c.timestamp.clone())
                            .unwrap_or_default(),
                        run,
                    }
                })
                .collect()
        })
    }

    /// For every job loaded so far: when its last success and last failure ended.
    pub fn last_ends(&self) -> Vec<(JobId, Option<Timestamp>, Option<Timestamp>)> {
        let slots: Vec<(JobId, Arc<Mutex<Slot>>)> = lock(&self.jobs)
            .iter()
            .map(|(job, slot)| (job.clone(), Arc::clone(slot)))
            .collect();
        slots
            .into_iter()
            .filter_map(|(job, slot)| {
                let slot = lock(&slot);
                let history = slot.history.as_ref()?;
                Some((job, history.last_success, history.last_failure))
            })
            .collect()
    }

    /// Moves out of sight the finished executions `policy` lets go, and returns their
    /// folders for deleting (with what a crash left half-deleted).
    pub fn remove_expired(&self, job: &JobId, policy: Retention, now: Timestamp) -> Vec<PathBuf> {
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
                match fs::rename(history.execution_dir(id), &hidden) {
                    Ok(()) => {
                        history.executions.remove(&id);
                        moved.push(hidden);
                    }
                    Err(e) => {
                        tracing::warn!(%job, execution = id, "cannot remove an old execution: {e}")
                    }
                }
            }
            moved
        })
    }
}

/// The store as the API reads it: answers from memory, with the disk read off the
/// async threads when a job's history is not loaded yet; no way to change anything.
#[derive(Clone)]
pub struct History(Arc<Store>);

impl History {
    pub fn new(store: Arc<Store>) -> Self {
        Self(store)
    }

    /// Runs `read` on the store, off the async threads when it may need the disk.
    pub async fn read<R: Send + 'static>(
        &self,
        job: &JobId,
        read: impl FnOnce(&Store) -> R + Send + 'static,
    ) -> R {
        if self.0.is_loaded(job) {
            return read(&self.0);
        }
        let store = Arc::clone(&self.0);
        match tokio::task::spawn_blocking(move || read(&store)).await {
            Ok(answer) => answer,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    pub async fn get(&self, run: &RunId) -> Option<ExecutionWithTrigger> {
        let run = run.clone();
        self.read(&run.job.clone(), move |store| store.get(&run))
            .await
    }

    pub async fn list(
        &self,
        job: &JobId,
        limit: Option<usize>,
        before: Option<u64>,
    ) -> Vec<ExecutionWithTrigger> {
        let owned = job.clone();
        self.read(job, move |store| store.list(&owned, limit, before))
            .await
    }

    /// The newest executions of these jobs, as JSON, in order; from memory when known,
    /// else read off the async threads.
    pub async fn last_executions_json(&self, jobs: Vec<JobId>) -> Vec<Bytes> {
        let known: Option<Vec<Bytes>> = jobs
            .iter()
            .map(|job| self.0.last_execution_json(job, false))
            .collect();
        if let Some(known) = known {
            return known;
        }
        let store = Arc::clone(&self.0);
        let read = move || {
            jobs.iter()
                .map(|job| {
                    store
                        .last_execution_json(job, true)
                        .expect("reading is allowed")
                })
                .collect()
        };
        match tokio::task::spawn_blocking(read).await {
            Ok(answer) => answer,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    pub fn log_path(&self, run: &RunId) -> PathBuf {
        self.0.log_path(run)
    }

    pub fn last_ends(&self) -> Vec<(JobId, Option<Timestamp>, Option<Timestamp>)> {
        self.0.last_ends()
    }
}

/// Appends to the job's `audit.tsv`. The audit trail of requests is a record, not
/// state: a failure is logged and noted on the execution, and changes nothing else.
fn note_in_audit(fsync: bool, path: &Path, record: &mut Record, id: u64, asked: Asked, peer: Peer) {
    let line = files::format_audit_line(id, asked, peer);
    if let Err(e) = write::append(fsync, path, line.as_bytes()) {
        tracing::warn!(path = %path.display(), "cannot append to the audit trail: {e}");
        record
            .problems
            .push(format!("who asked could not be saved: {e}"));
    }
}

/// Writes a new execution's files into `dir`.
fn build(fsync: bool, dir: &Path, inputs: &InputValues, change: &StatusChange) -> io::Result<()> {
    if let Err(e) = fs::create_dir(dir) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        // A leftover of a crash in the middle of this.
        fs::remove_dir_all(dir)?;
        fs::create_dir(dir)?;
    }
    fs::create_dir(dir.join(files::LOGS_DIR))?;
    write::create(
        fsync,
        &dir.join(files::INPUT),
        files::format_input_values(inputs).as_bytes(),
    )?;
    append_status(fsync, dir, change, false)
}

fn new_change(status: ExecutionStatus) -> StatusChange {
    StatusChange {
        timestamp: timestamp::now(),
        status,
    }
}

/// Appends a status line (after a newline when the last line was cut short).
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
    write::append(fsync, &dir.join(files::STATUS_HISTORY), line.as_bytes())?;
    if fsync {
        write::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> JobId {
        JobId::parse(id).unwrap()
    }

    /// A store on a fresh working directory, whose `state/jobs` is the second value.
    fn store(dir: &Path, fsync: bool) -> (Store, PathBuf) {
        let workdir = Workdir::new(dir).unwrap();
        let jobs = workdir.root().join("state/jobs");
        (Store::new(workdir, fsync), jobs)
    }

    #[test]
    fn writes_the_old_layout_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, jobs) = store(dir.path(), true);
        let ab = job("a/b");

        let mut inputs = InputValues::new();
        inputs.insert("NAME".into(), "Ada".into());
        let first = store
            .create(&ab, inputs.clone(), None, Origin::Api)
            .unwrap();
        assert_eq!(first, RunId::new(ab.clone(), 1));
        assert_eq!(
            store
                .create(&ab, InputValues::new(), None, Origin::Api)
                .unwrap()
                .execution,
            2
        );
        store.mark_starting(&first).unwrap();
        store
            .record_status(&first, ExecutionStatus::Running)
            .unwrap();
        let result = RunResult {
            exit_code: 3,
            message: "bad\tthing".into(),
        };
        store
            .finish(&first, ExecutionStatus::Failure, result)
            .unwrap();

        let executions = jobs.join("a/b/executions");
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
        let audit = fs::read_to_string(jobs.join("a/b/audit.tsv")).unwrap();
        assert!(audit.starts_with("1\tstart\t"), "{audit}");

        let (fresh, _) = store_again(dir.path());
        assert_eq!(fresh.list(&ab, None, None), store.list(&ab, None, None));
        let read = fresh.get(&first).unwrap();
        assert_eq!(read.execution.status, ExecutionStatus::Failure);
        assert_eq!(read.execution.input_values, inputs);
        assert_eq!(read.execution.result.unwrap().message, "bad thing");
        assert_eq!(fresh.list(&ab, None, None)[0].execution.execution_id, "2");
        let page = fresh.list(&ab, Some(1), Some(2));
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].execution.execution_id, "1");
        let unfinished = fresh.unfinished(&ab);
        assert_eq!(unfinished.len(), 1);
        assert!(!unfinished[0].started && !unfinished[0].requested);
        assert_eq!(
            fresh
                .create(&ab, InputValues::new(), None, Origin::Api)
                .unwrap()
                .execution,
            3
        );
        // A run of this daemon is not a previous daemon's leftover.
        assert_eq!(fresh.unfinished(&ab).len(), 1);
    }

    #[test]
    fn new_executions_take_no_name_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let executions = dir.path().join("state/jobs/j/executions");
        fs::create_dir_all(executions.join("3")).unwrap();
        fs::write(executions.join("3/status_history.tsv"), "").unwrap();
        fs::write(executions.join("5"), "a stray file").unwrap();
        // Half made by a crash, under the name the next execution is built under.
        fs::create_dir_all(executions.join(".creating-6/logs")).unwrap();
        fs::write(executions.join(".creating-6/junk"), "x").unwrap();
        fs::write(executions.join("last_execution.txt"), "2\n").unwrap();
        let (store, _) = store(dir.path(), false);
        let j = job("j");
        let create = || {
            store
                .create(&j, InputValues::new(), None, Origin::Api)
                .unwrap()
                .execution
        };

        assert_eq!(create(), 6);
        let mut made: Vec<_> = fs::read_dir(executions.join("6"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        made.sort();
        assert_eq!(made, ["input.json", "logs", "status_history.tsv"]);
        assert_eq!(create(), 7);
        assert_eq!(
            fs::read_to_string(executions.join("last_execution.txt")).unwrap(),
            "7"
        );
        assert_eq!(
            fs::read_to_string(executions.join("5")).unwrap(),
            "a stray file"
        );

        // Deleted by hand under the running daemon: made again, counter and all.
        fs::remove_dir_all(&executions).unwrap();
        assert_eq!(create(), 8);
        assert_eq!(
            fs::read_to_string(executions.join("last_execution.txt")).unwrap(),
            "8"
        );
    }

    fn store_again(dir: &Path) -> (Store, PathBuf) {
        store(dir, false)
    }

    #[test]
    fn a_start_noted_in_the_audit_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store(dir.path(), false);
        let run = store
            .create(&job("j"), InputValues::new(), None, Origin::Api)
            .unwrap();
        store.mark_starting(&run).unwrap();
        let (fresh, _) = store_again(dir.path());
        let unfinished = fresh.unfinished(&run.job);
        assert_eq!(unfinished.len(), 1);
        assert!(unfinished[0].started, "{unfinished:?}");
        assert_eq!(unfinished[0].status, ExecutionStatus::Created);
    }

    #[test]
    fn damage_stays_local() {
        let dir = tempfile::tempdir().unwrap();
        let (store, jobs) = store(dir.path(), false);
        let executions = jobs.join("j/executions");
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

        let j = job("j");
        let list = store.list(&j, None, None);
        let ids: Vec<_> = list
            .iter()
            .map(|e| e.execution.execution_id.as_str())
            .collect();
        assert_eq!(ids, ["7", "3", "2", "1"]);
        assert_eq!(list[0].execution.status, ExecutionStatus::Unknown);
        assert_eq!(list[2].execution.status, ExecutionStatus::Unknown);
        assert!(
            list[3]
                .execution
                .error
                .as_deref()
                .unwrap()
                .contains("unreadable result")
        );
        assert_eq!(list[1].execution.status, ExecutionStatus::Created);

        // The torn line is completed before the next append.
        store
            .record_status(&RunId::new(j.clone(), 3), ExecutionStatus::Running)
            .unwrap();
        let text = fs::read_to_string(executions.join("3/status_history.tsv")).unwrap();
        assert!(
            text.starts_with("t\tcreated\nt\trunn\n") && text.ends_with("\trunning\n"),
            "{text}"
        );
        // A garbage counter yields to the highest folder.
        assert_eq!(
            store
                .create(&j, InputValues::new(), None, Origin::Api)
                .unwrap()
                .execution,
            8
        );
    }
}
