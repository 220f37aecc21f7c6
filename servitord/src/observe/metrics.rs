//! `GET /metrics`, in Prometheus' text format (0.0.4), through `prometheus-client`:
//! its registry, counters, gauges and histograms, and its encoder (escaping, number
//! formats). Counted since the daemon started, except the last success/failure times,
//! which come from the history; the gauges are read from the daemon at scrape time.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use servitor_shared::ExecutionStatus;

use crate::sync::lock;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the run duration histogram, in seconds: from instant jobs to
/// nightly ones.
const BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Job {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobExecutor {
    job: String,
    executor: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStatus {
    job: String,
    executor: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: &'static str,
    code: u16,
}

type Seconds = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    uptime: Seconds,
    started: Family<JobExecutor, Counter>,
    finished: Family<JobStatus, Counter>,
    durations: Family<Job, Histogram, fn() -> Histogram>,
    running: Gauge,
    queued: Gauge,
    last_success: Family<Job, Seconds>,
    last_failure: Family<Job, Seconds>,
    requests: Family<Request, Counter>,
    event_clients: Gauge,
    log_followers: Gauge,
    slurm_polls: Counter,
    next_run: Family<Job, Seconds>,
    fires_skipped: Family<Job, Counter>,
    retries: Family<Job, Counter>,
    /// The `squeue` calls counted so far.
    slurm_polls_seen: AtomicU64,
    /// One scrape at a time: a scrape sets the gauges, then encodes them.
    scraping: Mutex<()>,
}

/// What the rest of the daemon knows at scrape time.
pub struct Gauges {
    pub running: usize,
    pub queued: usize,
    pub event_clients: usize,
    pub log_followers: usize,
    /// `squeue` calls since the start.
    pub slurm_polls: u64,
    pub uptime: Duration,
    /// Per job: when it last succeeded and last failed, as Unix seconds.
    pub last_ends: Vec<(String, Option<f64>, Option<f64>)>,
    /// Per scheduled job that is not paused: its next fire time, as Unix seconds.
    pub next_runs: Vec<(String, f64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<Version, Gauge>::default();
        build_info
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        // Names as they were before this crate wrote them: counters get `_total` from
        // it, help texts their final period.
        registry.register("servitor_build_info", "The servitord version", build_info);
        let metrics = Self {
            uptime: Seconds::default(),
            started: Family::default(),
            finished: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            running: Gauge::default(),
            queued: Gauge::default(),
            last_success: Family::default(),
            last_failure: Family::default(),
            requests: Family::default(),
            event_clients: Gauge::default(),
            log_followers: Gauge::default(),
            slurm_polls: Counter::default(),
            next_run: Family::default(),
            fires_skipped: Family::default(),
            retries: Family::default(),
            slurm_polls_seen: AtomicU64::new(0),
            scraping: Mutex::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "servitor_uptime_seconds",
            "Seconds since servitord started",
            metrics.uptime.clone(),
        );
        r.register(
            "servitor_runs_started",
            "Runs whose process started, by job and executor",
            metrics.started.clone(),
        );
        r.register(
            "servitor_runs_finished",
            "Runs that ended, by job, executor and status",
            metrics.finished.clone(),
        );
        r.register(
            "servitor_run_duration_seconds",
            "How long runs ran, by job",
            metrics.durations.clone(),
        );
        r.register(
            "servitor_runs_running",
            "Runs running now",
            metrics.running.clone(),
        );
        r.register(
            "servitor_runs_queued",
            "Runs waiting for a worker",
            metrics.queued.clone(),
        );
        r.register(
            "servitor_last_success_timestamp_seconds",
            "When the job's last successful run ended (Unix time)",
            metrics.last_success.clone(),
        );
        r.register(
            "servitor_last_failure_timestamp_seconds",
            "When the job's last failed run ended (Unix time)",
            metrics.last_failure.clone(),
        );
        r.register(
            "servitor_api_requests",
            "API requests, by route and status code",
            metrics.requests.clone(),
        );
        r.register(
            "servitor_event_clients",
            "Open /api/events streams",
            metrics.event_clients.clone(),
        );
        r.register(
            "servitor_log_followers",
            "Log streams waiting for a running job's output",
            metrics.log_followers.clone(),
        );
        r.register(
            "servitor_slurm_polls",
            "squeue calls that listed the runs on a Slurm cluster",
            metrics.slurm_polls.clone(),
        );
        r.register(
            "servitor_schedule_next_run_timestamp_seconds",
            "When the job's schedule fires next (Unix time), for scheduled jobs not paused",
            metrics.next_run.clone(),
        );
        r.register(
            "servitor_schedule_fires_skipped",
            "Schedule fires that made no run because the job was busy (on_busy: skip)",
            metrics.fires_skipped.clone(),
        );
        r.register(
            "servitor_retries",
            "Retries of failed runs made, by job",
            metrics.retries.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// A run of `job` started on `executor` (`local`, `slurm`).
    pub fn run_started(&self, job: &str, executor: &'static str) {
        let labels = JobExecutor {
            job: job.to_owned(),
            executor,
        };
        self.started.get_or_create(&labels).inc();
    }

    /// `ran` is how long the process ran; `None` when it never started (then
    /// `executor` is `none`).
    pub fn run_finished(
        &self,
        job: &str,
        executor: &'static str,
        status: ExecutionStatus,
        ran: Option<Duration>,
    ) {
        let labels = JobStatus {
            job: job.to_owned(),
            executor,
            status: status.as_str(),
        };
        self.finished.get_or_create(&labels).inc();
        if let Some(ran) = ran {
            self.durations
                .get_or_create(&job_label(job))
                .observe(ran.as_secs_f64());
        }
    }

    /// A schedule fire of `job` found it busy and was skipped.
    pub fn fire_skipped(&self, job: &str) {
        self.fires_skipped.get_or_create(&job_label(job)).inc();
    }

    /// A retry of a failed run of `job` was made.
    pub fn retried(&self, job: &str) {
        self.retries.get_or_create(&job_label(job)).inc();
    }

    pub fn request(&self, route: &'static str, code: u16) {
        self.requests.get_or_create(&Request { route, code }).inc();
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let _scraping = lock(&self.scraping);
        self.uptime.set(gauges.uptime.as_secs_f64());
        self.running.set(count(gauges.running));
        self.queued.set(count(gauges.queued));
        self.event_clients.set(count(gauges.event_clients));
        self.log_followers.set(count(gauges.log_followers));
        let seen = self
            .slurm_polls_seen
            .swap(gauges.slurm_polls, std::sync::atomic::Ordering::Relaxed);
        self.slurm_polls
            .inc_by(gauges.slurm_polls.saturating_sub(seen));
        for (job, success, failure) in &gauges.last_ends {
            for (family, time) in [(&self.last_success, success), (&self.last_failure, failure)] {
                if let Some(time) = time {
                    family.get_or_create(&job_label(job)).set(*time);
                }
            }
        }
        // Jobs unscheduled or paused since the last scrape lose theirs.
        self.next_run.clear();
        for (job, at) in &gauges.next_runs {
            self.next_run.get_or_create(&job_label(job)).set(*at);
        }
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn job_label(job: &str) -> Job {
    Job {
        job: job.to_owned(),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        metrics.run_started("a/b", "local");
        metrics.run_finished(
            "a/b",
            "local",
            ExecutionStatus::Success,
            Some(Duration::from_millis(70)),
        );
        metrics.run_finished("odd\"job", "none", ExecutionStatus::Failure, None);
        metrics.request("/api/jobs/run", 200);
        let text = metrics.render(&Gauges {
            running: 1,
            queued: 2,
            event_clients: 3,
            log_followers: 4,
            slurm_polls: 7,
            uptime: Duration::from_secs(5),
            last_ends: vec![("a/b".into(), Some(1_700_000_000.5), None)],
            next_runs: vec![("a/b".into(), 1_800_000_000.0)],
        });
        for line in [
            "servitor_runs_started_total{job=\"a/b\",executor=\"local\"} 1",
            "servitor_runs_finished_total{job=\"a/b\",executor=\"local\",status=\"success\"} 1",
            "servitor_runs_finished_total{job=\"odd\\\"job\",executor=\"none\",status=\"failure\"} 1",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"0.05\"} 0",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"0.1\"} 1",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"+Inf\"} 1",
            "servitor_runs_queued 2",
            "servitor_last_success_timestamp_seconds{job=\"a/b\"} 1700000000.5",
            "servitor_api_requests_total{route=\"/api/jobs/run\",code=\"200\"} 1",
            "servitor_log_followers 4",
            "servitor_schedule_next_run_timestamp_seconds{job=\"a/b\"} 1800000000.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("servitor_last_failure_timestamp_seconds{"));
    }
}
