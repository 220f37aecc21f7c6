//! The workers: threads that take runs off the queue and execute them through the
//! lifecycle, one run at a time each.

use std::io;
use std::sync::Arc;

use servitor_shared::ExecutionStatus;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::lifecycle::Runs;
use super::queue::Lane;

/// Starts `count` workers, each on a thread of its own, so that no load on the API (a
/// crowd of event streams, say) delays a run's steps: the OS shares the CPUs between
/// threads fairly, where one runtime would queue a run's next step behind every stream
/// woken before it. One thread per worker: starting a process holds its thread (a
/// vfork), and holds up no other worker. The workers begin once `start` is cancelled
/// (restart recovery is done) and stop taking runs once `shutdown` is; the answer's
/// `recv` gives `None` when their last runs have ended.
pub fn spawn(
    runs: &Arc<Runs>,
    count: usize,
    start: CancellationToken,
    shutdown: CancellationToken,
) -> io::Result<mpsc::Receiver<()>> {
    let (running, finished) = mpsc::channel(1);
    for n in 0..count {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (runs, start, shutdown) = (Arc::clone(runs), start.clone(), shutdown.clone());
        let running = running.clone();
        std::thread::Builder::new()
            .name(format!("servitor-run-{n}"))
            .spawn(move || {
                runtime.block_on(async {
                    start.cancelled().await;
                    work(runs, shutdown).await;
                });
                // Dropping the runtime waits for its blocking tasks (pruning) to end.
                drop(runtime);
                drop(running);
            })?;
    }
    Ok(finished)
}

/// One worker: takes runs off the queue until `shutdown`.
async fn work(runs: Arc<Runs>, shutdown: CancellationToken) {
    loop {
        let ticket = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            ticket = runs.next_ticket(Lane::Local) => ticket,
        };
        let run = ticket.run.clone();
        // Its own task, so that even a bug in one run cannot take the worker down.
        let task = tokio::spawn({
            let runs = Arc::clone(&runs);
            async move { runs.execute(ticket).await }
        });
        if let Err(e) = task.await {
            tracing::error!(%run, "run task failed: {e}");
            runs.end_unstarted(
                &run,
                ExecutionStatus::Failure,
                "servitord failed while running it (an internal error)",
            );
        }
    }
}

/// Starts the remote lane: one thread that takes runs going to a cluster off the
/// queue, up to `max` at a time, and executes each in a task of its own (they mostly
/// wait for the cluster). It begins once `start` is cancelled and stops once
/// `shutdown` is: runs on the cluster then go on without the daemon, which finds
/// them again at its next start.
pub fn spawn_remote(
    runs: &Arc<Runs>,
    max: usize,
    start: CancellationToken,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runs = Arc::clone(runs);
    std::thread::Builder::new()
        .name("servitor-remote".into())
        .spawn(move || {
            runtime.block_on(async {
                start.cancelled().await;
                let slots = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
                loop {
                    let slot = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => break,
                        slot = Arc::clone(&slots).acquire_owned() => slot,
                    };
                    let ticket = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => break,
                        ticket = runs.next_ticket(Lane::Remote) => ticket,
                    };
                    let runs = Arc::clone(&runs);
                    tokio::spawn(async move {
                        runs.execute(ticket).await;
                        drop(slot);
                    });
                }
            });
        })?;
    Ok(())
}
