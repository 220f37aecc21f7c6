//! Schedules wired into the daemon: each job's `schedule` setting is given to the
//! [`Scheduler`] (at start, then on every edit under `config/jobs`), and each fire
//! becomes a run through the lifecycle (`Runs::submit`, trigger `schedule`), as a
//! request would, so `concurrency` and `on_busy` apply to it alike.
//!
//! What a restart needs is kept in `state/schedules.json` (see `state::schedules`):
//! the last fire time of each job, saved before the fire's run is made so that no
//! time ever fires twice, and the paused jobs.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use servitor_shared::InputValues;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::lifecycle::{Runs, SubmitError};
use super::scheduler::{Fire, Scheduler};
use crate::jobs::catalog::{Catalog, Snapshot};
use crate::observe::metrics::Metrics;
use crate::state::files::Origin;
use crate::state::{Workdir, schedules};
use crate::sync::lock;

pub struct Schedules {
    scheduler: Scheduler,
    path: PathBuf,
    fsync: bool,
    /// One save at a time, each writing the state as it is when it begins.
    saving: Mutex<()>,
    /// The jobs given a schedule at the last sync, so that those gone lose theirs.
    scheduled: Mutex<HashSet<String>>,
}

impl Schedules {
    /// Reads `state/schedules.json`: the last fire times and the paused jobs.
    pub fn load(workdir: &Workdir, fsync: bool) -> Schedules {
        let path = workdir.schedules_path();
        let saved = schedules::read(&path);
        let scheduler = Scheduler::new(saved.last_fires);
        for job in &saved.paused {
            scheduler.pause(job);
        }
        Schedules {
            scheduler,
            path,
            fsync,
            saving: Mutex::default(),
            scheduled: Mutex::default(),
        }
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Gives the scheduler each job's schedule as the catalog says now: new and
    /// edited ones, and none for jobs that lost theirs, are broken, or are gone.
    fn sync(&self, snapshot: &Snapshot) {
        let mut before = lock(&self.scheduled);
        let mut now = HashSet::new();
        for entry in &snapshot.entries {
            let job = entry.file.id.as_str();
            let schedule = entry.settings().ok().and_then(|s| s.schedule.clone());
            let had = before.remove(job);
            if schedule.is_some() {
                now.insert(job.to_owned());
            }
            if schedule.is_some() || had {
                self.scheduler.update(job, schedule);
            }
        }
        for gone in before.drain() {
            self.scheduler.update(&gone, None);
        }
        *before = now;
    }

    /// Stops the job's fires until `resume`, across restarts too. Touches the disk.
    pub fn pause(&self, job: &str) -> io::Result<()> {
        self.scheduler.pause(job);
        tracing::info!(job, "schedule paused");
        self.save()
    }

    /// Lets the job fire again, from its next fire time on. Touches the disk.
    pub fn resume(&self, job: &str) -> io::Result<()> {
        self.scheduler.resume(job);
        tracing::info!(job, "schedule resumed");
        self.save()
    }

    /// Writes `state/schedules.json` as the scheduler is now. Touches the disk.
    fn save(&self) -> io::Result<()> {
        let _saving = lock(&self.saving);
        schedules::save(self.fsync, &self.path, &self.scheduler.saved())
    }

    /// Runs the schedules until `shutdown`: follows edits under `config/jobs`, and
    /// makes a run of each fire. Begins with the schedules the catalog has now, so
    /// that the times missed while the daemon was down are caught up as they say.
    pub async fn run(
        self: Arc<Self>,
        runs: Arc<Runs>,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) {
        let first = catalog.snapshot().await;
        // Working out thousands of next fire times takes a while: off the async threads.
        let (this, scanned) = (Arc::clone(&self), Arc::clone(&first));
        let _ = tokio::task::spawn_blocking(move || this.sync(&scanned)).await;
        tokio::spawn(Arc::clone(&self).follow_edits(catalog, first, shutdown.clone()));

        let scheduler = self.scheduler.clone();
        let runtime = Handle::current();
        // Once: std reads the cgroup's CPU quota from files to tell.
        let makers = std::thread::available_parallelism().map_or(2, |n| n.get());
        scheduler
            .run(shutdown, move |fires| {
                let (this, runs, metrics, runtime) = (
                    Arc::clone(&self),
                    Arc::clone(&runs),
                    Arc::clone(&metrics),
                    runtime.clone(),
                );
                // A blocking thread starts on it at once. A task woken from here would
                // wait for the scheduler's task to yield, after the next fire times.
                tokio::task::spawn_blocking(move || {
                    this.make_runs(fires, makers, &runs, &metrics, &runtime)
                });
            })
            .await;
    }

    /// Makes the runs of fires due at once by `makers` threads, after saving that they
    /// fired. Blocks.
    fn make_runs(
        &self,
        fires: Vec<Fire>,
        makers: usize,
        runs: &Arc<Runs>,
        metrics: &Arc<Metrics>,
        runtime: &Handle,
    ) {
        // Saved before the runs are made: a crash in between loses these fires rather
        // than firing them again at the next start.
        if let Err(e) = self.save() {
            tracing::error!(file = %self.path.display(), "cannot save the last fire times: {e}");
        }
        let snapshot = runtime.block_on(runs.catalog().snapshot());
        // Made by one thread per CPU, each taking every n-th fire in order: a thousand
        // fires at once are then a few threads' work, not a thousand tasks crowding
        // two CPUs.
        let mut shares: Vec<Vec<Fire>> = (0..makers).map(|_| Vec::new()).collect();
        for (n, fire) in fires.into_iter().enumerate() {
            shares[n % makers].push(fire);
        }
        let mut shares = shares.into_iter().filter(|share| !share.is_empty());
        let own = shares.next();
        for share in shares {
            let (runs, metrics, snapshot) =
                (Arc::clone(runs), Arc::clone(metrics), Arc::clone(&snapshot));
            runtime.spawn_blocking(move || make_share(share, &runs, &metrics, &snapshot));
        }
        if let Some(share) = own {
            make_share(share, runs, metrics, &snapshot);
        }
    }

    /// Gives the scheduler the schedules of each new catalog, as soon as inotify tells
    /// of a change: no polling. Without inotify, edits are seen at the next start.
    async fn follow_edits(
        self: Arc<Self>,
        catalog: Arc<Catalog>,
        mut last: Arc<Snapshot>,
        shutdown: CancellationToken,
    ) {
        let mut readiness = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = catalog.wait_for_change(&mut readiness) => if changed.is_none() {
                    tracing::warn!("no inotify: schedule edits apply from the next start");
                    return;
                },
            }
            let snapshot = catalog.snapshot().await;
            if !Arc::ptr_eq(&snapshot, &last) {
                let this = Arc::clone(&self);
                let scanned = Arc::clone(&snapshot);
                let _ = tokio::task::spawn_blocking(move || this.sync(&scanned)).await;
                last = snapshot;
            }
        }
    }
}

/// Makes the runs of a share of fires, in order.
fn make_share(share: Vec<Fire>, runs: &Runs, metrics: &Metrics, snapshot: &Snapshot) {
    for fire in share {
        match snapshot.get_by_name(&fire.job) {
            Some(entry) => make_run(runs, metrics, &entry, &fire),
            None => tracing::warn!(job = fire.job, "schedule fired for a job that is gone"),
        }
    }
}

/// Makes the run of one fire; a busy job with `on_busy: skip` skips it.
fn make_run(runs: &Runs, metrics: &Metrics, entry: &crate::jobs::catalog::Entry, fire: &Fire) {
    let job = fire.job.as_str();
    match runs.submit(entry, InputValues::new(), None, Origin::Schedule) {
        // Each run's "run queued" line says it was made by a schedule; a second line
        // at a thousand fires a second is not worth its cost but for a catch-up.
        Ok(run) if fire.catch_up => {
            tracing::info!(%run, scheduled = %fire.scheduled, "schedule fired, catching up")
        }
        Ok(run) => tracing::debug!(%run, scheduled = %fire.scheduled, "schedule fired"),
        Err(e @ SubmitError::Busy { .. }) => {
            metrics.fire_skipped(job);
            tracing::info!(job, scheduled = %fire.scheduled, "schedule fire skipped: {e}");
        }
        Err(e) => {
            tracing::warn!(job, scheduled = %fire.scheduled, "schedule fired, but no run was made: {e}")
        }
    }
}
