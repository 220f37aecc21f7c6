//! The daemon's parts, wired together once and shared by the API, the workers and
//! recovery. Each part is reached through a method; none is a public field, so what
//! depends on what stays visible here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::jobs::catalog::Catalog;
use crate::observe::Counted;
use crate::observe::events::EventBus;
use crate::observe::log_follow::{Follow, LogWatcher};
use crate::observe::metrics::Metrics;
use crate::runs::Runs;
use crate::runs::hooks::Hooks;
use crate::runs::schedules::Schedules;
use crate::state::{History, Store, Workdir};

pub struct App {
    workdir: Workdir,
    catalog: Arc<Catalog>,
    runs: Arc<Runs>,
    history: History,
    bus: EventBus,
    logs: LogWatcher,
    metrics: Arc<Metrics>,
    hooks: Arc<Hooks>,
    schedules: Arc<Schedules>,
    /// The web UI's folder (`SERVITOR_UI_ROOT`); no UI when unset.
    ui_root: Option<PathBuf>,
    workers: usize,
    started: Instant,
    /// Set once restart recovery is done and the workers are up.
    ready: AtomicBool,
    /// Open `/api/events` streams and log streams, for monitoring.
    event_clients: Arc<AtomicUsize>,
    log_followers: Arc<AtomicUsize>,
    /// Cancelled when the daemon starts shutting down: streams end, workers stop taking runs.
    shutdown: CancellationToken,
}

impl App {
    pub fn new(workdir: Workdir, config: &Config) -> std::io::Result<Self> {
        let bus = EventBus::default();
        let store = Arc::new(Store::new(workdir.clone(), config.fsync));
        let catalog = Arc::new(Catalog::new(workdir.jobs_dir(), config.stop_grace));
        let metrics = Arc::new(Metrics::default());
        let hooks = Arc::new(Hooks::new(&workdir, config.hook_timeout));
        let runs = Arc::new(Runs::new(
            workdir.clone(),
            Arc::clone(&catalog),
            Arc::clone(&store),
            bus.clone(),
            Arc::clone(&metrics),
            Arc::clone(&hooks),
            config.slurm,
        ));
        Ok(Self {
            schedules: Arc::new(Schedules::load(&workdir, config.fsync)),
            logs: LogWatcher::start()?,
            history: History::new(store),
            ui_root: config.ui_root.clone(),
            workers: config.workers,
            started: Instant::now(),
            ready: AtomicBool::new(false),
            event_clients: Arc::default(),
            log_followers: Arc::default(),
            shutdown: CancellationToken::new(),
            workdir,
            catalog,
            runs,
            bus,
            metrics,
            hooks,
        })
    }

    pub fn workdir(&self) -> &Workdir {
        &self.workdir
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The run lifecycle: the one way to start, cancel and end runs.
    pub fn runs(&self) -> &Arc<Runs> {
        &self.runs
    }

    /// The executions' history, to read.
    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The jobs' schedules: next fire times, pause and resume.
    pub fn schedules(&self) -> &Arc<Schedules> {
        &self.schedules
    }

    pub fn catalog_shared(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn metrics_shared(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    pub fn ui_root(&self) -> Option<&Path> {
        self.ui_root.as_deref()
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// What a log follower needs.
    pub fn follow(&self) -> Follow {
        Follow {
            watcher: self.logs.clone(),
            shutdown: self.shutdown.clone(),
            _counted: Counted::new(&self.log_followers),
        }
    }

    /// Counts an `/api/events` client for as long as the answer lives.
    pub fn count_event_client(&self) -> Counted {
        Counted::new(&self.event_clients)
    }

    pub fn event_clients(&self) -> usize {
        self.event_clients.load(Ordering::Relaxed)
    }

    pub fn log_followers(&self) -> usize {
        self.log_followers.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
