//! The processes of local runs, found by the `SERVITOR_*` variables every run's
//! environment holds (and its children inherit): through a restart, or after a child
//! left the run's process group (`setsid`). Reading `/proc` blocks: call these off the
//! async threads.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use rustix::process::{Pid, Signal, kill_process};
use servitor_shared::env;

use crate::jobs::id::{JobId, RunId};

/// Processes started for runs of this working directory, by run.
pub fn find(root: &Path) -> HashMap<RunId, Vec<i32>> {
    let mut found: HashMap<RunId, Vec<i32>> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    let root = root.to_string_lossy();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let mut vars = HashMap::new();
        for pair in environ.split(|b| *b == 0) {
            let pair = String::from_utf8_lossy(pair);
            if let Some((name, value)) = pair.split_once('=')
                && [env::ROOT, env::JOB, env::JOB_EXECUTION, env::HOOK].contains(&name)
            {
                vars.insert(name.to_owned(), value.to_owned());
            }
        }
        // Hooks carry SERVITOR_JOB too, but are not part of the run.
        if vars.get(env::ROOT).map(String::as_str) != Some(&*root) || vars.contains_key(env::HOOK) {
            continue;
        }
        let job = vars.get(env::JOB).and_then(|job| JobId::parse(job).ok());
        let execution = vars.get(env::JOB_EXECUTION).and_then(|n| n.parse().ok());
        if let (Some(job), Some(execution)) = (job, execution) {
            found
                .entry(RunId::new(job, execution))
                .or_default()
                .push(pid);
        }
    }
    found
}

/// Kills what is left of a run that was stopped (cancelled, timed out): processes
/// that escaped its process group. Its group was stopped already.
pub fn kill_leftovers(root: &Path, run: &RunId) {
    for pid in find(root).remove(run).unwrap_or_default() {
        if let Some(pid) = Pid::from_raw(pid) {
            tracing::info!(%run, pid = pid.as_raw_nonzero().get(), "killing a process that left the stopped run's group");
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}
