//! The daemon's parts, wired together once and shared by the API and the workers.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::catalog::Catalog;
use crate::events::EventBus;
use crate::log_follow::{Follow, LogWatcher};
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
    /// The web UI's folder (`SERVITOR_UI_ROOT`); no UI when unset.
    pub ui_root: Option<PathBuf>,
    /// Cancelled when the daemon starts shutting down: streams end, workers stop taking runs.
    pub shutdown: CancellationToken,
}

impl App {
    pub fn new(workdir: Workdir, config: &Config) -> std::io::Result<Self> {
        let bus = EventBus::default();
        let store = Arc::new(Store::new(workdir.state_jobs_dir(), bus.clone()));
        let queue = Arc::new(RunQueue::default());
        let catalog = Arc::new(Catalog::new(workdir.jobs_dir(), config.stop_grace));
        let runner = Arc::new(Runner::new(
            Arc::clone(&store),
            Arc::clone(&queue),
            Arc::clone(&catalog),
            workdir.root().to_owned(),
        ));
        Ok(Self {
            catalog,
            logs: LogWatcher::start()?,
            ui_root: config.ui_root.clone(),
            shutdown: CancellationToken::new(),
            workdir,
            store,
            queue,
            runner,
            bus,
        })
    }

    /// What a log follower needs.
    pub fn follow(&self) -> Follow {
        Follow {
            store: Arc::clone(&self.store),
            bus: self.bus.clone(),
            watcher: self.logs.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}
