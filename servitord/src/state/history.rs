//! One job's executions as read from `state/jobs/<job>/executions/`: what the store
//! keeps in memory for each, and how it is loaded.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use servitor_shared::{
    Execution, ExecutionStatus, ExecutionWithTrigger, InputValues, LastExecution, RunResult,
    RunTrigger, SlurmPlacement, StatusChange, Trigger,
};

use super::files::{self, Audit, History, Origin};
use super::retention::REMOVED_PREFIX;
use crate::jobs::id::{JobId, parse_execution_id};

/// Prefix of an execution folder being created (hidden: loading skips it).
pub const CREATING_PREFIX: &str = ".creating-";

/// One job's executions.
pub struct JobHistory {
    /// `executions/`.
    pub dir: PathBuf,
    /// The highest id handed out or taken by an entry of `dir`: the next is above it.
    pub last_id: u64,
    /// `last_execution.txt`, kept open: rewritten in place for every run, with its
    /// length as left by the last write (so a shorter text can be cut to size).
    counter: Option<(fs::File, u64)>,
    pub executions: BTreeMap<u64, Record>,
    /// Folders a crash left half-made or half-deleted, to delete.
    pub leftovers: Vec<PathBuf>,
    /// When a run last ended in success, and in failure (for monitoring).
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
}

/// One execution, as read from or written to its folder. Kept in memory for every
/// execution, so what most runs lack is boxed, and absent when empty.
#[derive(Default)]
pub struct Record {
    pub history: Vec<StatusChange>,
    pub result: Option<RunResult>,
    pub inputs: Option<Box<InputValues>>,
    pub problems: Vec<String>,
    /// The history file lacks its final newline.
    pub needs_newline: bool,
    pub audit: Option<Box<Audit>>,
    /// Where it went on a Slurm cluster.
    pub slurm: Option<Box<SlurmPlacement>>,
    /// Read from disk: a previous daemon's run. Runs this daemon creates are queued by
    /// their creator, so recovery must not queue them again, even while it still scans.
    pub inherited: bool,
}

impl JobHistory {
    /// Reads every execution of `job` in `dir`; damage is noted, never fatal.
    pub fn load(job: &JobId, dir: PathBuf) -> Self {
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
                tracing::error!(%job, dir = %history.dir.display(), "cannot read executions: {e}");
                return history;
            }
        };
        let mut taken = None;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let id = parse_execution_id(&name);
            // Whatever holds an execution's name (a stray file too) keeps it from reuse.
            taken = taken.max(id.as_ref().ok().copied());
            match id {
                Ok(id) if entry.path().is_dir() => {
                    let record = Record::load(&entry.path());
                    if !record.problems.is_empty() {
                        tracing::warn!(
                            %job,
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
                    tracing::warn!(%job, entry = %name, "ignoring a stray entry among the executions")
                }
            }
        }
        let counter = history.dir.join(files::LAST_EXECUTION);
        let saved = match fs::read_to_string(&counter) {
            Ok(text) => files::parse_last_execution(&text).or_else(|| {
                tracing::warn!(
                    %job,
                    "unreadable {}: {text:?}; numbering from the highest execution",
                    files::LAST_EXECUTION
                );
                None
            }),
            Err(_) => None,
        };
        history.last_id = saved.max(taken).unwrap_or(0);
        // Runs of the old tool have no audit.
        if let Ok(text) = fs::read_to_string(history.audit_path()) {
            for (id, audit) in files::parse_audit_log(&text) {
                if let Some(record) = history.executions.get_mut(&id) {
                    record.audit = Some(Box::new(audit));
                }
            }
        }
        let ends: Vec<_> = history.executions.values().map(Record::end).collect();
        for end in ends {
            history.note_end(end);
        }
        history
    }

    /// The job's `audit.tsv`, beside `executions/`.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.with_file_name(files::AUDIT_LOG)
    }

    pub fn execution_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Makes `dir`, missing (never made, or deleted by hand), with a new counter file.
    pub fn make_dir(&mut self) -> io::Result<()> {
        self.counter = None;
        fs::create_dir_all(&self.dir)
    }

    /// Saves `last_execution.txt` with one write at its start. Ids only grow, so the
    /// new text covers the old; a crash cannot tear a single write of a few bytes, and a
    /// power loss that did would be read back as at most the highest folder's id, which
    /// `load` takes anyway.
    pub fn save_counter(&mut self, id: u64, fsync: bool) -> io::Result<()> {
        let (counter, length) = match &mut self.counter {
            Some(counter) => counter,
            empty => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(self.dir.join(files::LAST_EXECUTION))?;
                let length = file.metadata()?.len();
                empty.insert((file, length))
            }
        };
        let text = files::format_last_execution(id);
        let new_length = text.len() as u64;
        let written = counter
            .write_all_at(text.as_bytes(), 0)
            // What was there before may have been longer (a newline, garbage).
            .and_then(|()| match *length > new_length {
                true => counter.set_len(new_length),
                false => Ok(()),
            })
            .inspect(|()| *length = new_length)
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

    /// Keeps the last success and failure times up to date with a run's end.
    pub fn note_end(&mut self, end: Option<(ExecutionStatus, Timestamp)>) {
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

    /// The newest execution, in short.
    pub fn last_execution(&self) -> Option<LastExecution> {
        let (id, record) = self.executions.iter().next_back()?;
        Some(record.last_execution(*id))
    }
}

impl Record {
    pub fn load(dir: &Path) -> Self {
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
        let slurm = read_optional(dir, files::SLURM, files::parse_slurm, problems);
        record.slurm = slurm.map(Box::new);
        record
    }

    pub fn status(&self) -> ExecutionStatus {
        self.history
            .last()
            .map_or(ExecutionStatus::Unknown, |c| c.status)
    }

    /// When the run ended, if it has and its timestamp reads.
    pub fn ended_at(&self) -> Option<Timestamp> {
        let last = self.history.last().filter(|c| c.status.is_terminal())?;
        last.timestamp.parse().ok()
    }

    /// How and when the run ended, if it has.
    pub fn end(&self) -> Option<(ExecutionStatus, Timestamp)> {
        Some((self.status(), self.ended_at()?))
    }

    pub fn audit(&self) -> Audit {
        self.audit.as_deref().copied().unwrap_or_default()
    }

    pub fn last_execution(&self, id: u64) -> LastExecution {
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

    pub fn describe(&self, id: u64) -> ExecutionWithTrigger {
        let audit = self.audit();
        let trigger = match audit.origin {
            Origin::Api => RunTrigger::default(),
            Origin::Schedule => RunTrigger {
                trigger: Trigger::Schedule,
                ..RunTrigger::default()
            },
            Origin::Retry { of, attempt } => RunTrigger {
                trigger: Trigger::Retry,
                retry_of: Some(of.to_string()),
                attempt: Some(attempt),
            },
        };
        let execution = Execution {
            execution_id: id.to_string(),
            status: self.status(),
            status_history: self.history.clone(),
            result: self.result.clone(),
            input_values: self.inputs.as_deref().cloned().unwrap_or_default(),
            triggered_by: audit.triggered_by,
            cancelled_by: audit.cancelled_by,
            timed_out: self.status() == ExecutionStatus::Failure
                && self
                    .result
                    .as_ref()
                    .is_some_and(|r| r.message.starts_with(files::TIMED_OUT)),
            error: (!self.problems.is_empty()).then(|| self.problems.join("; ")),
            slurm: self.slurm.as_deref().cloned(),
        };
        ExecutionWithTrigger { execution, trigger }
    }
}

/// The newest execution of a job whose history is not loaded, read alone: the one
/// `last_execution.txt` names, or the highest folder when that one is missing (a crash
/// between saving the counter and the folder, or an old tool's state).
pub fn read_last_execution(job: &JobId, dir: &Path) -> Option<LastExecution> {
    let counted = fs::read_to_string(dir.join(files::LAST_EXECUTION))
        .ok()
        .and_then(|text| files::parse_last_execution(&text))
        .filter(|id| dir.join(id.to_string()).is_dir());
    let id = counted.or_else(|| {
        fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|entry| parse_execution_id(&entry.file_name().to_string_lossy()).ok())
            .filter(|id| dir.join(id.to_string()).is_dir())
            .max()
    })?;
    let record = Record::load(&dir.join(id.to_string()));
    if !record.problems.is_empty() {
        tracing::debug!(%job, execution = id, "damaged execution: {}", record.problems.join("; "));
    }
    Some(record.last_execution(id))
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
