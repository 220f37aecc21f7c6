//! Retries: a run that ends as `failure` is run again as its job's `retry` setting
//! says (`RetryPolicy`), after the delay, through the lifecycle (`Runs::submit`,
//! trigger `retry`) with the same inputs. Cancelled runs are never retried, nor runs
//! refused at submit.
//!
//! A retry waiting for its delay is noted in `state/retries.json`, so that a restart
//! (or a crash) makes it when due instead of forgetting it. Secret input values are
//! kept in memory only: a retry made after a restart has the failed run's stored
//! inputs, secret ones masked, and the lifecycle then ends it saying that it cannot
//! start without them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use servitor_shared::InputValues;
use tokio_util::sync::CancellationToken;

use super::lifecycle::Runs;
use crate::jobs::id::{JobId, RunId};
use crate::state::files::Origin;
use crate::state::retries::{self, SavedRetry};
use crate::sync::lock;

/// A retry to make once `delay` has passed.
pub struct PendingRetry {
    /// The run that failed.
    pub of: RunId,
    /// `Origin::Retry`, with its number.
    pub origin: Origin,
    pub delay: Duration,
    /// Those of the failed run, secret values included.
    pub inputs: InputValues,
}

/// Makes each planned retry after its delay, until `shutdown`; first those noted in
/// `path` before a restart.
pub async fn run(runs: Arc<Runs>, path: PathBuf, fsync: bool, shutdown: CancellationToken) {
    let Some(mut planned) = runs.take_retries() else {
        return;
    };
    let read = tokio::task::spawn_blocking({
        let path = path.clone();
        move || retries::read(&path)
    });
    let noted = Arc::new(Noted {
        path,
        fsync,
        pending: Mutex::new(read.await.unwrap_or_default()),
    });
    let restored: Vec<SavedRetry> = lock(&noted.pending).clone();
    for saved in restored {
        match restore(&runs, &saved) {
            Some(retry) => wait_then_make(&runs, &noted, retry, &shutdown),
            None => noted.forget(saved.job, saved.retry_of).await,
        }
    }
    loop {
        let retry = tokio::select! {
            () = shutdown.cancelled() => return,
            retry = planned.recv() => match retry {
                Some(retry) => retry,
                None => return,
            },
        };
        noted.note(&retry).await;
        wait_then_make(&runs, &noted, retry, &shutdown);
    }
}

/// A retry noted before a restart, with the failed run's stored inputs; `None` when
/// the note no longer makes sense (its job or run is gone).
fn restore(runs: &Runs, saved: &SavedRetry) -> Option<PendingRetry> {
    let job = JobId::parse(&saved.job).ok()?;
    let execution = crate::jobs::id::parse_execution_id(&saved.retry_of).ok()?;
    let of = RunId::new(job, execution);
    let due: Timestamp = saved.due.parse().ok()?;
    let delay = Duration::try_from(due.duration_since(Timestamp::now())).unwrap_or_default();
    let inputs = runs.store().inputs(&of);
    tracing::info!(run = %of, ?delay, "a retry noted before the restart will be made");
    Some(PendingRetry {
        origin: Origin::Retry {
            of: execution,
            attempt: saved.attempt,
        },
        of,
        delay,
        inputs,
    })
}

/// Waits out the retry's delay in a task of its own, then makes it and forgets the
/// note. At shutdown the note stays, for the next start.
fn wait_then_make(
    runs: &Arc<Runs>,
    noted: &Arc<Noted>,
    retry: PendingRetry,
    shutdown: &CancellationToken,
) {
    let (runs, noted, shutdown) = (Arc::clone(runs), Arc::clone(noted), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {
                tracing::info!(run = %retry.of, "servitord stops: the retry of this failed run is made after the next start");
            }
            () = tokio::time::sleep(retry.delay) => {
                let (job, retry_of) = (retry.of.job.to_string(), retry.of.execution.to_string());
                make(runs, retry).await;
                noted.forget(job, retry_of).await;
            }
        }
    });
}

/// Submits the retry, as a request would be: the job's spec and `on_busy` apply.
async fn make(runs: Arc<Runs>, retry: PendingRetry) {
    let failed = retry.of.clone();
    let job = match runs.catalog().find(failed.job.as_str()).await {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(run = %failed, "no retry of this failed run: its job is gone ({e})");
            return;
        }
    };
    let submitted = tokio::task::spawn_blocking(move || {
        let made = runs.submit(&job, retry.inputs, None, retry.origin);
        if made.is_ok() {
            runs.metrics().retried(job.file.id.as_str());
        }
        made
    })
    .await;
    match submitted {
        Ok(Ok(run)) => tracing::info!(%run, retry_of = %failed, "retry queued"),
        Ok(Err(e)) => {
            tracing::warn!(run = %failed, "the retry of this failed run was refused: {e}")
        }
        Err(e) => tracing::error!(run = %failed, "making a retry failed: {e}"),
    }
}

/// The retries waiting for their delay, as `state/retries.json` keeps them.
struct Noted {
    path: PathBuf,
    fsync: bool,
    pending: Mutex<Vec<SavedRetry>>,
}

impl Noted {
    async fn note(self: &Arc<Self>, retry: &PendingRetry) {
        let Origin::Retry { attempt, .. } = retry.origin else {
            return;
        };
        let due = Timestamp::now()
            .checked_add(retry.delay)
            .unwrap_or(Timestamp::MAX);
        let saved = SavedRetry {
            job: retry.of.job.to_string(),
            retry_of: retry.of.execution.to_string(),
            attempt,
            due: due.to_string(),
        };
        self.change(move |pending| pending.push(saved)).await;
    }

    async fn forget(self: &Arc<Self>, job: String, retry_of: String) {
        self.change(move |pending| pending.retain(|p| p.job != job || p.retry_of != retry_of))
            .await;
    }

    /// Changes the list and saves it, off the async threads.
    async fn change(self: &Arc<Self>, edit: impl FnOnce(&mut Vec<SavedRetry>) + Send + 'static) {
        let this = Arc::clone(self);
        let saved = tokio::task::spawn_blocking(move || {
            let mut pending = lock(&this.pending);
            edit(&mut pending);
            retries::save(this.fsync, &this.path, &pending)
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(file = %self.path.display(), "cannot save the pending retries: {e}")
            }
            Err(e) => tracing::error!("saving the pending retries failed: {e}"),
        }
    }
}
