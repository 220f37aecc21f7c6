//! Retries: a run that ends as `failure` is run again as its job's `retry` setting
//! says (`RetryPolicy`), after the delay, through the lifecycle (`Runs::submit`,
//! trigger `retry`) with the same inputs. Cancelled runs are never retried, nor runs
//! refused at submit. A retry waits in memory only: when servitord stops during its
//! delay, it is not made (the log says so), as secret inputs are not kept on disk.

use std::sync::Arc;
use std::time::Duration;

use servitor_shared::InputValues;
use tokio_util::sync::CancellationToken;

use super::lifecycle::Runs;
use crate::jobs::id::RunId;
use crate::state::files::Origin;

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

/// Makes each planned retry after its delay, until `shutdown`.
pub async fn run(runs: Arc<Runs>, shutdown: CancellationToken) {
    let Some(mut planned) = runs.take_retries() else {
        return;
    };
    loop {
        let retry = tokio::select! {
            () = shutdown.cancelled() => return,
            retry = planned.recv() => match retry {
                Some(retry) => retry,
                None => return,
            },
        };
        let (runs, shutdown) = (Arc::clone(&runs), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {
                    tracing::warn!(run = %retry.of, "servitord stops: the retry of this failed run is not made");
                }
                () = tokio::time::sleep(retry.delay) => make(runs, retry).await,
            }
        });
    }
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
