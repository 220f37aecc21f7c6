//! Restart recovery: what a previous daemon left unfinished.
//!
//! - Runs left `created` are queued again, oldest first, ahead of anything new.
//! - Runs left `running` whose processes are still alive are re-adopted: found by the
//!   `SERVITOR_*` variables in their environment, watched through pidfds until they
//!   end, cancellable as usual. Their exit code cannot be observed (they are not our
//!   children), so they end as `failure` with a message saying so.
//! - Runs left `running` whose processes are gone end as `failure` with a message.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use jiff::Timestamp;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, getpgid, pidfd_open};
use servitor_shared::{ExecutionStatus, RunResult};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::process_group;
use crate::queue::{RunKey, Ticket};
use crate::retention;
use crate::run_processes;
use crate::store::Unfinished;

/// Re-queues and re-adopts; returns the tasks watching adopted runs.
pub async fn recover(app: Arc<App>) -> JoinSet<()> {
    let mut adopted = JoinSet::new();
    let scan = Arc::clone(&app);
    let found = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let mut unfinished: Vec<(String, Unfinished)> = Vec::new();
        let mut limits = HashMap::new();
        let mut removed = Vec::new();
        for entry in &scan.catalog.snapshot().entries {
            let job = &entry.file;
            // Loads the job's history: from here on the API answers from memory.
            let runs = scan.store.unfinished(&job.id);
            unfinished.extend(runs.into_iter().map(|run| (job.id.clone(), run)));
            let settings = entry.settings().ok();
            let retention = settings.as_ref().and_then(|s| s.retention);
            // Without a policy, this only collects what a crash left half-deleted.
            removed.extend(
                scan.store
                    .remove_expired(&job.id, retention.unwrap_or_default(), now),
            );
            limits.insert(job.id.clone(), settings.and_then(|s| s.concurrency));
        }
        let alive = if unfinished
            .iter()
            .any(|(_, run)| run.status == ExecutionStatus::Running || run.starting)
        {
            run_processes::find(scan.workdir.root())
        } else {
            HashMap::new()
        };
        (unfinished, alive, limits, removed)
    })
    .await;
    let Ok((unfinished, mut alive, limits, removed)) = found else {
        tracing::error!("restart recovery failed");
        return adopted;
    };
    retention::delete_in_background(removed);

    let mut queued = Vec::new();
    for (job, run) in unfinished {
        let id = run.execution_id;
        if run.status == ExecutionStatus::Created && !run.starting {
            queued.push((run.created_at, job, id));
            continue;
        }
        // Running, or caught between its start and `running`: never run twice.
        match alive.remove(&(job.clone(), id)) {
            Some(pids) => {
                tracing::info!(
                    job,
                    execution = id,
                    ?pids,
                    "re-adopting a run left running by the previous servitord"
                );
                if run.status == ExecutionStatus::Created {
                    app.runner.record_started(&job, id);
                }
                let token = app.queue.track((job.clone(), id));
                adopted.spawn(watch_adopted(Arc::clone(&app), (job, id), pids, token));
            }
            None => {
                tracing::warn!(
                    job,
                    execution = id,
                    "a run left running by the previous servitord is gone"
                );
                let message = match run.status {
                    ExecutionStatus::Created => {
                        "servitord stopped while starting this run and its process is gone: it may have run, so it is not run again; its outcome is unknown"
                    }
                    _ => {
                        "servitord restarted while this run was running and its process is gone: its outcome is unknown"
                    }
                };
                let result = RunResult {
                    exit_code: -1,
                    message: message.into(),
                };
                app.runner
                    .record_end(&job, id, ExecutionStatus::Failure, result, None);
            }
        }
    }
    queued.sort();
    if !queued.is_empty() {
        tracing::info!(
            runs = queued.len(),
            "queuing again the runs left queued by the previous servitord"
        );
    }
    app.queue.push_front(
        queued
            .into_iter()
            .map(|(_, job, id)| {
                let limit = limits.get(&job).copied().flatten();
                Ticket::new(&job, id, limit)
            })
            .collect(),
    );
    adopted
}

/// Waits until every process of an adopted run has exited, stopping them on cancel.
async fn watch_adopted(app: Arc<App>, key: RunKey, pids: Vec<i32>, cancel: CancellationToken) {
    let (job, id) = (&key.0, key.1);
    let mut pidfds = Vec::new();
    let mut groups = Vec::new();
    for pid in pids.iter().filter_map(|pid| Pid::from_raw(*pid)) {
        // A process that exited since the scan has no pidfd to open, which is fine.
        let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
            continue;
        };
        if let Ok(group) = getpgid(Some(pid)) {
            groups.push(group.as_raw_nonzero().get().unsigned_abs());
        }
        pidfds.push(fd);
    }
    groups.sort_unstable();
    groups.dedup();
    let pidfds = Arc::new(pidfds);
    let (status, message) = tokio::select! {
        () = all_exited(Arc::clone(&pidfds)) => (
            ExecutionStatus::Failure,
            "servitord restarted while this run was running; it was watched until it ended, but its exit code could not be observed".to_owned(),
        ),
        () = cancel.cancelled() => {
            let (signal, grace) = app.catalog.cancel_stop(job);
            let ((), how) = process_group::stop(&groups, signal, grace, all_exited(pidfds)).await;
            app.runner.kill_leftovers(&key).await;
            (ExecutionStatus::Cancelled, format!("cancelled: {how}"))
        }
    };
    tracing::info!(job, execution = id, status = %status, "adopted run finished");
    let result = RunResult {
        exit_code: -1,
        message,
    };
    app.runner.record_end(job, id, status, result, None);
    app.queue.done(&key);
}

/// Resolves once every process has exited (a pidfd becomes readable then). Adopted
/// runs are rare, so a blocking thread per wait is simpler than registering pidfds
/// with the async reactor.
async fn all_exited(pidfds: Arc<Vec<OwnedFd>>) {
    let _ = tokio::task::spawn_blocking(move || {
        for fd in pidfds.iter() {
            let mut watched = [PollFd::new(fd, PollFlags::IN)];
            while poll(&mut watched, None) == Err(Errno::INTR) {}
        }
    })
    .await;
}
