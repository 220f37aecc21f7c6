//! Restart recovery: what a previous daemon left unfinished, taken up again through
//! the run lifecycle.
//!
//! - Runs left `created` that never started are queued again, oldest first, ahead of
//!   anything new.
//! - Runs that may have started (left `running`, or left `created` after servitord
//!   noted their start) are never run twice. Those whose processes are still alive are
//!   re-found by their executor and watched until they end, cancellable as usual;
//!   those whose processes are gone end as `failure` with a message saying so.
//! - Retention runs once for every job, and what a crash left half-deleted goes.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use servitor_shared::ExecutionStatus;
use tokio::task::JoinSet;

use super::lifecycle::{Runs, lane_of, stop_of};
use super::queue::{Lane, Ticket};
use crate::jobs::id::{JobId, RunId};
use crate::state::{Unfinished, retention};

/// What a scan of the history found.
struct Found {
    unfinished: Vec<Unfinished>,
    /// Each job's `concurrency` and lane, as its settings say now.
    limits: HashMap<JobId, (Option<u32>, Lane)>,
    removed: Vec<std::path::PathBuf>,
}

/// Queues again and re-finds what the previous daemon left; returns the tasks
/// watching the re-found runs.
pub async fn recover(runs: &Arc<Runs>) -> JoinSet<()> {
    let mut watching = JoinSet::new();
    let snapshot = runs.catalog().snapshot().await;
    let store = Arc::clone(runs.store());
    let scanned = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let mut found = Found {
            unfinished: Vec::new(),
            limits: HashMap::new(),
            removed: Vec::new(),
        };
        for entry in &snapshot.entries {
            let job = &entry.file.id;
            // Loads the job's history: from here on the API answers from memory.
            found.unfinished.extend(store.unfinished(job));
            let settings = entry.settings().ok();
            let policy = settings.and_then(|s| s.retention);
            // Without a policy, this only collects what a crash left half-deleted.
            found
                .removed
                .extend(store.remove_expired(job, policy.unwrap_or_default(), now));
            let limit = settings.and_then(|s| s.concurrency);
            let lane = settings.map(lane_of).unwrap_or_default();
            found.limits.insert(job.clone(), (limit, lane));
        }
        found
    })
    .await;
    let Ok(found) = scanned else {
        tracing::error!("restart recovery failed");
        return watching;
    };
    retention::delete_in_background(found.removed);

    let (queued, in_flight): (Vec<Unfinished>, Vec<Unfinished>) = found
        .unfinished
        .into_iter()
        .partition(|run| !may_have_run(run));
    let mut refound = runs
        .executors()
        .refind(
            in_flight
                .iter()
                .map(|left| (left.run.clone(), runs.run_dir(&left.run)))
                .collect(),
        )
        .await;
    for left in in_flight {
        let run = left.run;
        match refound.remove(&run) {
            Some(process) => {
                tracing::info!(%run, process = %process.describe(), "re-adopting a run left running by the previous servitord");
                if left.status == ExecutionStatus::Created {
                    // Caught starting, and it did start: recorded here, off the async
                    // threads, so that watching it finds it running.
                    let (runs, run, executor) = (Arc::clone(runs), run.clone(), process.executor());
                    let _ =
                        tokio::task::spawn_blocking(move || runs.record_running(&run, executor))
                            .await;
                }
                let cancel = runs.queue().track(run.clone());
                let runs = Arc::clone(runs);
                watching.spawn(async move {
                    let settings = match runs.catalog().find(run.job.as_str()).await {
                        Ok(job) => job.settings().ok().cloned(),
                        Err(_) => None,
                    };
                    let settings = settings.unwrap_or_else(|| runs.catalog().default_settings());
                    // No timeout: how long it has run already is not known.
                    let ending = runs
                        .watch(&run, process, &cancel, None, stop_of(&settings))
                        .await;
                    tracing::info!(%run, "re-adopted run finished");
                    let _ = tokio::task::spawn_blocking(move || {
                        runs.end_watched(&run, ending, None);
                    })
                    .await;
                });
            }
            None => {
                tracing::warn!(%run, "a run left running by the previous servitord is gone");
                let message = match left.status {
                    ExecutionStatus::Created => {
                        "servitord stopped while starting this run and its process is gone: it may have run, so it is not run again; its outcome is unknown"
                    }
                    _ => {
                        "servitord restarted while this run was running and its process is gone: its outcome is unknown"
                    }
                };
                let runs = Arc::clone(runs);
                let _ = tokio::task::spawn_blocking(move || {
                    runs.end_unstarted(&run, ExecutionStatus::Failure, message);
                })
                .await;
            }
        }
    }

    let mut queued: Vec<(String, RunId)> = queued
        .into_iter()
        .map(|run| (run.created_at, run.run))
        .collect();
    queued.sort();
    if !queued.is_empty() {
        tracing::info!(
            runs = queued.len(),
            "queuing again the runs left queued by the previous servitord"
        );
    }
    runs.queue().push_front(
        queued
            .into_iter()
            .map(|(_, run)| {
                let (limit, lane) = found.limits.get(&run.job).copied().unwrap_or_default();
                Ticket {
                    lane,
                    ..Ticket::new(run, limit)
                }
            })
            .collect(),
    );
    watching
}

/// Whether a run left unfinished may have started: then it is never run again.
/// servitord notes every start in the audit before it happens. Runs of servitord
/// versions that did not note starts, and were requested by a client (the old tool
/// kept no audit), count as started when their log exists: a worker made it just
/// before starting them.
fn may_have_run(run: &Unfinished) -> bool {
    run.status == ExecutionStatus::Running || run.started || (run.requested && run.has_log)
}
