//! The processes of runs, found by the `SERVITOR_*` variables every run's environment
//! holds (and its children inherit): through a restart, or after a child left the
//! run's process group (`setsid`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use rustix::process::{Pid, Signal, kill_process};

use crate::queue::RunKey;

/// Processes started for runs of this working directory, found by the variables every
/// run gets (children inherit them too).
pub fn find(root: &Path) -> HashMap<RunKey, Vec<i32>> {
    let mut found: HashMap<RunKey, Vec<i32>> = HashMap::new();
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
                && matches!(
                    name,
                    "SERVITOR_ROOT" | "SERVITOR_JOB" | "SERVITOR_JOB_EXECUTION" | "SERVITOR_HOOK"
                )
            {
                vars.insert(name.to_owned(), value.to_owned());
            }
        }
        // Hooks carry SERVITOR_JOB too, but are not part of the run.
        if vars.get("SERVITOR_ROOT").map(String::as_str) != Some(&*root)
            || vars.contains_key("SERVITOR_HOOK")
        {
            continue;
        }
        if let (Some(job), Some(Ok(id))) = (
            vars.remove("SERVITOR_JOB"),
            vars.get("SERVITOR_JOB_EXECUTION").map(|n| n.parse::<u64>()),
        ) {
            found.entry((job, id)).or_default().push(pid);
        }
    }
    found
}

/// Kills what is left of a run that was stopped (cancelled, timed out): processes
/// that escaped its process group. Its group was stopped already.
pub fn kill_leftovers(root: &Path, key: &RunKey) {
    for pid in find(root).remove(key).unwrap_or_default() {
        if let Some(pid) = Pid::from_raw(pid) {
            tracing::info!(job = %key.0, execution = key.1, pid = pid.as_raw_nonzero().get(), "killing a process that left the stopped run's group");
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}
