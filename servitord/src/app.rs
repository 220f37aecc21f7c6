//! The daemon's parts, wired together once and shared by the API and the workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::catalog::Catalog;
use crate::events::EventBus;
use crate::hooks::Hooks;
use crate::log_follow::{Follow, LogWatcher};
use crate::metrics::Metrics;
use crate::queue::RunQueue;
use crate::runner::Runner;
use crate::store::Store;
use crate::workdir::Workdir;

pub struct App {
    pub workdir: Workdir,
    pub catalog: Arc<Catalog>,
    pub store: Arc<Store>,
    pub queue: Arc<RunQueue>,
    pub runner: Arc<Runner>,
    pub bus: EventBus,
    pub logs: LogWatcher,
    pub metrics: Arc<Metrics>,
    pub hooks: Arc<Hooks>,
    /// The web UI's folder (`SERVITOR_UI_ROOT`); no UI when unset.
    pub ui_root: Option<PathBuf>,
    pub workers: usize,
    pub started: Instant,
    /// Set once restart recovery is done and the workers are up.
    pub ready: AtomicBool,
    /// Open `/api/events` streams and log streams, for monitoring.
    pub event_clients: Arc<AtomicUsize>,
    pub log_followers: Arc<AtomicUsize>,
    /// Cancelled when the daemon starts shutting down: streams end, workers stop taking runs.
    pub shutdown: CancellationToken,
}

impl App {
    pub fn new(workdir: Workdir, config: &Config) -> std::io::Result<Self> {
        let bus = EventBus::default();
        let store = Arc::new(Store::new(
            workdir.state_jobs_dir(),
            bus.clone(),
            config.fsync,
        ));
        let queue = Arc::new(RunQueue::default());
        let catalog = Arc::new(Catalog::new(workdir.jobs_dir(), config.stop_grace));
        let metrics = Arc::new(Metrics::default());
        let hooks = Arc::new(Hooks::new(workdir.root(), config.hook_timeout));
        let runner = Arc::new(Runner::new(
            Arc::clone(&store),
            Arc::clone(&queue),
            Arc::clone(&catalog),
            Arc::clone(&metrics),
            Arc::clone(&hooks),
            workdir.root().to_owned(),
        ));
        Ok(Self {
            logs: LogWatcher::start()?,
            ui_root: config.ui_root.clone(),
            workers: config.workers,
            started: Instant::now(),
            ready: AtomicBool::new(false),
            event_clients: Arc::default(),
            log_followers: Arc::default(),
            shutdown: CancellationToken::new(),
            workdir,
            catalog,
            store,
            queue,
            runner,
            bus,
            metrics,
            hooks,
        })
    }

    /// What a log follower needs.
    pub fn follow(&self) -> Follow {
        Follow {
            store: Arc::clone(&self.store),
            watcher: self.logs.clone(),
            shutdown: self.shutdown.clone(),
            _counted: Counted::new(&self.log_followers),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Counts itself in a gauge for as long as it lives.
pub struct Counted(Arc<AtomicUsize>);

impl Counted {
    pub fn new(gauge: &Arc<AtomicUsize>) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(gauge))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
