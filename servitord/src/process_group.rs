//! Signals to a run's process group (the job and every child it started).

use std::future::Future;

pub use rustix::process::Signal;
use rustix::process::{Pid, kill_process_group, test_kill_process_group};
use tokio::time::{Duration, Instant};

/// How often `wait_until_empty` looks again. Only a cancelled run whose children
/// outlive it is watched this way, and only for the grace period.
const RECHECK: Duration = Duration::from_millis(20);

const NAMES: [(i32, &str); 15] = [
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
];

fn known_name(signal: i32) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(number, _)| *number == signal)
        .map(|(_, name)| *name)
}

/// `"signal 9 (SIGKILL)"`.
pub fn describe(signal: i32) -> String {
    match known_name(signal) {
        Some(name) => format!("signal {signal} ({name})"),
        None => format!("signal {signal}"),
    }
}

/// `"SIGKILL"`, or `"signal 64"`.
fn name(signal: i32) -> String {
    known_name(signal).map_or_else(|| format!("signal {signal}"), str::to_owned)
}

/// Sends `signal` to every process in the group; a group already gone is not an error.
pub fn signal(group: u32, signal: Signal) {
    if let Some(pid) = pid(group) {
        let _ = kill_process_group(pid, signal);
    }
}

/// True when no live process is left in the group. Zombies do not count: where
/// nothing reaps orphans (some containers' init), they linger forever, yet still
/// receive signals.
fn is_empty(group: u32) -> bool {
    if pid(group).is_none_or(|pid| test_kill_process_group(pid).is_err()) {
        return true;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    !entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let member = fields.nth(1).and_then(|g| g.parse::<u32>().ok()) == Some(group);
        member && !matches!(state, Some("Z" | "X"))
    })
}

/// Waits until no process is left in the group, or `deadline`; true when empty.
async fn wait_until_empty(group: u32, deadline: Instant) -> bool {
    loop {
        if is_empty(group) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep_until((Instant::now() + RECHECK).min(deadline)).await;
    }
}

/// Stops a run (cancel, timeout): asks its process groups to stop with `signal`, and
/// kills them (SIGKILL) once `grace` is over. Processes that outlive the run's own
/// (children that ignored the signal) get the rest of the grace period, then are
/// killed too. `exited` resolves when the run's own process has ended; returns its
/// output and how it was stopped ("stopped by SIGINT").
pub async fn stop<F: Future>(
    groups: &[u32],
    signal: Signal,
    grace: Duration,
    exited: F,
) -> (F::Output, String) {
    for group in groups {
        self::signal(*group, signal);
    }
    let deadline = Instant::now() + grace;
    let mut exited = std::pin::pin!(exited);
    let stopped = match tokio::time::timeout_at(deadline, &mut exited).await {
        Ok(output) => (output, format!("stopped by {}", name(signal.as_raw()))),
        Err(_) => {
            for group in groups {
                self::signal(*group, Signal::KILL);
            }
            let how = format!(
                "killed by SIGKILL after {}",
                humantime::format_duration(grace)
            );
            (exited.await, how)
        }
    };
    for group in groups {
        if !wait_until_empty(*group, deadline).await {
            self::signal(*group, Signal::KILL);
        }
    }
    stopped
}

fn pid(group: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(group).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::describe(9), "signal 9 (SIGKILL)");
        assert_eq!(super::describe(64), "signal 64");
    }
}
