//! Signals to process groups (a run's job and every child it started, a hook), and
//! waiting for the processes in them to end: told by pidfds, never by polling.

use std::future::Future;
use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, kill_process_group, pidfd_open, test_kill_process_group};
use tokio::io::unix::AsyncFd;
use tokio::time::{Duration, Instant};

use crate::signal::{Name, Signal};

/// How long to wait before looking again at a group whose members could not be
/// watched (they left between the scan and the pidfd, or the kernel refused one).
const RESCAN: Duration = Duration::from_millis(20);

/// Sends `signal` to every process in the group; a group already gone is not an error.
pub fn signal(group: u32, signal: Signal) {
    if let Some(pid) = pid(group) {
        let _ = kill_process_group(pid, signal);
    }
}

/// Stops processes (a cancelled or timed-out run, a hook): asks their groups to stop
/// with `signal`, and kills them (SIGKILL) once `grace` is over. Processes that outlive
/// the main one (children that ignored the signal) get the rest of the grace period,
/// then are killed too. `exited` resolves when the main process has ended; returns its
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
        Ok(output) => (output, format!("stopped by {}", Name(signal.as_raw()))),
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

/// Waits until no live process is left in the group, or `deadline`; true when empty.
/// The group's members are found once, then watched through their pidfds; it is
/// looked at again only when they have all ended (a member may have forked meanwhile).
async fn wait_until_empty(group: u32, deadline: Instant) -> bool {
    loop {
        if pid(group).is_none_or(|pid| test_kill_process_group(pid).is_err()) {
            return true;
        }
        let members = match tokio::task::spawn_blocking(move || live_members(group)).await {
            Ok(members) => members,
            Err(_) => return false,
        };
        if members.is_empty() {
            return true;
        }
        let watched = watch_all(&members);
        let ended = async {
            if watched.is_empty() {
                tokio::time::sleep(RESCAN).await;
            } else {
                all_ended(&watched).await;
            }
        };
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            return false;
        }
    }
}

/// Pidfds of these processes, ready to be waited for; those already gone are left out.
pub fn watch_all(pids: &[i32]) -> Vec<AsyncFd<OwnedFd>> {
    pids.iter()
        .filter_map(|pid| Pid::from_raw(*pid))
        .filter_map(|pid| pidfd_open(pid, PidfdFlags::NONBLOCK).ok())
        .filter_map(|fd| register(fd).ok())
        .collect()
}

/// Registers a pidfd with the runtime. `AsyncFd::new` is deprecated because a caller
/// could close a borrowed fd while it is registered; an `OwnedFd` moved into the
/// `AsyncFd` cannot be, so this is the sound use. Its replacement is `unsafe`, which
/// this crate forbids.
#[allow(deprecated)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

/// Resolves once every watched process has ended (its pidfd becomes readable then).
pub async fn all_ended(pidfds: &[AsyncFd<OwnedFd>]) {
    for fd in pidfds {
        // An error means the fd is unusable: nothing left to wait for there.
        let _ = fd.readable().await;
    }
}

/// The live processes of a group. Zombies do not count: where nothing reaps orphans
/// (some containers' init), they linger forever, yet still receive signals.
fn live_members(group: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let member = fields.nth(1).and_then(|g| g.parse::<u32>().ok()) == Some(group);
            (member && !matches!(state, Some("Z" | "X"))).then_some(pid)
        })
        .collect()
}

fn pid(group: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(group).ok()?)
}
