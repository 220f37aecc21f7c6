//! servitord: runs the jobs of a working directory and serves its HTTP API on a UNIX
//! socket. `run` is the whole daemon; `main.rs` only reads arguments and signals.
//!
//! - [`jobs`]: the catalog of `config/jobs`, each job's settings, the ids;
//! - `runs`: the run lifecycle (the one owner of every run), the queue and workers,
//!   the executors, restart recovery, hooks;
//! - `state`: the working directory, the store of executions and its file formats,
//!   retention;
//! - `observe`: the event bus, run statuses for followers, log following, metrics;
//! - `api`: the HTTP API on the socket.
//!
//! Besides `run`, the library exposes the parsers of untrusted text, so that the fuzz
//! targets under `servitord/fuzz/` can reach them: [`ids`] (job and execution ids from
//! requests and folder names), [`state_files`] (the files under `state/`) and
//! [`Params`] (query strings).

mod api;
mod app;
pub mod jobs;
mod observe;
mod runs;
mod signal;
mod state;
mod sync;

/// Job and execution ids: [`jobs::id`].
pub use jobs::id as ids;
/// The formats of the files under `state/`.
pub use state::files as state_files;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The query-string parser every API route reads its parameters with.
pub use crate::api::Params;
use crate::app::App;
use crate::state::Workdir;
pub use runs::executor::SlurmConfig;

/// How long shutdown waits for open API connections to close before leaving them.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Config {
    pub workdir: PathBuf,
    /// How many runs may go at once.
    pub workers: usize,
    /// How long a cancelled run may take to stop before it is killed.
    pub stop_grace: Duration,
    /// Folder of the web UI's static files; no UI when `None`.
    pub ui_root: Option<PathBuf>,
    /// How long a hook may run before it is stopped.
    pub hook_timeout: Duration,
    /// Flush state changes to the disk before going on: they survive a power loss.
    pub fsync: bool,
    /// The Slurm executor's knobs.
    pub slurm: runs::executor::SlurmConfig,
    /// How many runs may be on a Slurm cluster at once (submitted and not ended).
    pub slurm_max_runs: usize,
}

impl Config {
    /// The old tool's pool size: `max(cpus, 2)`.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
    }
}

/// Runs the daemon until the first stop request (SIGINT/SIGTERM in `main`): then the
/// socket closes at once, queued runs stay queued on disk for the next start, running
/// jobs finish, and `run` returns. Each further stop request logs what is still running.
pub async fn run(
    config: Config,
    mut stop_requests: mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let workdir = Workdir::new(&config.workdir)?;
    let _lock = workdir.lock()?;
    let socket_path = workdir.socket_path();
    let listener = api::socket::bind(&socket_path)?;
    let app = Arc::new(App::new(workdir, &config).context("cannot start watching log files")?);

    tracing::info!(
        workdir = %app.workdir().root().display(),
        socket = %socket_path.display(),
        jobs = app.catalog().snapshot().await.entries.len(),
        workers = config.workers,
        ui = ?config.ui_root,
        "servitord ready"
    );

    // Runs left queued by a previous daemon go first, so workers start after recovery;
    // the API answers meanwhile.
    let recovered = CancellationToken::new();
    let fsync = config.fsync;
    let mut workers = runs::workers::spawn(
        app.runs(),
        config.workers,
        recovered.clone(),
        app.shutdown().clone(),
    )
    .context("cannot start the workers' threads")?;
    runs::workers::spawn_remote(
        app.runs(),
        config.slurm_max_runs,
        recovered.clone(),
        app.shutdown().clone(),
    )
    .context("cannot start the remote lane's thread")?;
    let started = tokio::spawn({
        let app = Arc::clone(&app);
        async move {
            // Opens the workers' gate when dropped: even a failed recovery must not
            // stop new runs.
            let gate = recovered.drop_guard();
            let adopted = runs::recover(app.runs()).await;
            drop(gate);
            tokio::spawn(runs::retries::run(
                Arc::clone(app.runs()),
                app.workdir().retries_path(),
                fsync,
                app.shutdown().clone(),
            ));
            // After recovery: what a fire queues goes behind the runs left queued.
            tokio::spawn(Arc::clone(app.schedules()).run(
                Arc::clone(app.runs()),
                Arc::clone(app.catalog_shared()),
                Arc::clone(app.metrics_shared()),
                app.shutdown().clone(),
            ));
            app.set_ready();
            tracing::info!("ready: history loaded, workers up");
            adopted
        }
    });

    let server = tokio::spawn(api::server::serve(
        listener,
        api::router(Arc::clone(&app)),
        config.workers,
        app.shutdown().clone(),
    ));

    // No stop request also means stop: the signal handler is gone.
    stop_requests.recv().await;
    tracing::info!(
        running = app.runs().active(),
        queued = app.runs().waiting(),
        "stopping: the API is closed, running jobs may finish, queued runs stay queued for the next start"
    );
    app.shutdown().cancel();
    if let Err(e) = std::fs::remove_file(&socket_path) {
        tracing::warn!("cannot remove {}: {e}", socket_path.display());
    }
    let connections = server.await.context("the API server failed")?;
    if tokio::time::timeout(CONNECTIONS_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("leaving API connections that did not close");
    }

    let mut adopted = started.await.context("restart recovery failed")?;
    let mut all = JoinSet::new();
    all.spawn(async move { while adopted.join_next().await.is_some() {} });
    all.spawn(async move { while workers.recv().await.is_some() {} });
    loop {
        tokio::select! {
            done = all.join_next() => if done.is_none() { break },
            Some(()) = stop_requests.recv() => tracing::info!(
                running = app.runs().active(),
                "still waiting for running jobs to finish before exiting"
            ),
        }
    }
    app.hooks().wait().await;
    tracing::info!("stopped");
    Ok(())
}
