//! Counters for `GET /metrics`, in Prometheus' text format. Counted since the daemon
//! started, except the last success/failure times, which come from the history.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use servitor_shared::ExecutionStatus;

/// Upper bounds of the run duration histogram, in seconds: from instant jobs to
/// nightly ones.
const BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    started: BTreeMap<String, u64>,
    finished: BTreeMap<(String, ExecutionStatus), u64>,
    durations: BTreeMap<String, Histogram>,
    requests: BTreeMap<(&'static str, u16), u64>,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the rest of the daemon knows at scrape time.
pub struct Gauges {
    pub running: usize,
    pub queued: usize,
    pub event_clients: usize,
    pub log_followers: usize,
    pub uptime: Duration,
    /// Per job: when it last succeeded and last failed, as Unix seconds.
    pub last_ends: Vec<(String, Option<f64>, Option<f64>)>,
}

impl Metrics {
    pub fn run_started(&self, job: &str) {
        *self.lock().started.entry(job.to_owned()).or_default() += 1;
    }

    /// `ran` is how long the process ran; `None` when it never started.
    pub fn run_finished(&self, job: &str, status: ExecutionStatus, ran: Option<Duration>) {
        let mut counts = self.lock();
        *counts.finished.entry((job.to_owned(), status)).or_default() += 1;
        if let Some(ran) = ran {
            let histogram = counts.durations.entry(job.to_owned()).or_default();
            let seconds = ran.as_secs_f64();
            for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    pub fn request(&self, route: &'static str, code: u16) {
        *self.lock().requests.entry((route, code)).or_default() += 1;
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let counts = self.lock();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "servitor_build_info",
            "gauge",
            "The servitord version.",
        );
        let _ = writeln!(
            out,
            "servitor_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "servitor_uptime_seconds",
            "gauge",
            "Seconds since servitord started.",
        );
        let _ = writeln!(
            out,
            "servitor_uptime_seconds {:.3}",
            gauges.uptime.as_secs_f64()
        );

        header(
            &mut out,
            "servitor_runs_started_total",
            "counter",
            "Runs whose process started, by job.",
        );
        for (job, count) in &counts.started {
            let _ = writeln!(
                out,
                "servitor_runs_started_total{{job=\"{}\"}} {count}",
                escape(job)
            );
        }
        header(
            &mut out,
            "servitor_runs_finished_total",
            "counter",
            "Runs that ended, by job and status.",
        );
        for ((job, status), count) in &counts.finished {
            let _ = writeln!(
                out,
                "servitor_runs_finished_total{{job=\"{}\",status=\"{status}\"}} {count}",
                escape(job)
            );
        }
        header(
            &mut out,
            "servitor_run_duration_seconds",
            "histogram",
            "How long runs ran, by job.",
        );
        for (job, histogram) in &counts.durations {
            let job = escape(job);
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "servitor_run_duration_seconds_bucket{{job=\"{job}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "servitor_run_duration_seconds_bucket{{job=\"{job}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "servitor_run_duration_seconds_sum{{job=\"{job}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "servitor_run_duration_seconds_count{{job=\"{job}\"}} {}",
                histogram.count
            );
        }

        header(
            &mut out,
            "servitor_runs_running",
            "gauge",
            "Runs running now.",
        );
        let _ = writeln!(out, "servitor_runs_running {}", gauges.running);
        header(
            &mut out,
            "servitor_runs_queued",
            "gauge",
            "Runs waiting for a worker.",
        );
        let _ = writeln!(out, "servitor_runs_queued {}", gauges.queued);
        for (name, help, pick) in [
            (
                "servitor_last_success_timestamp_seconds",
                "When the job's last successful run ended (Unix time).",
                0,
            ),
            (
                "servitor_last_failure_timestamp_seconds",
                "When the job's last failed run ended (Unix time).",
                1,
            ),
        ] {
            header(&mut out, name, "gauge", help);
            for (job, success, failure) in &gauges.last_ends {
                if let Some(time) = [success, failure][pick] {
                    let _ = writeln!(out, "{name}{{job=\"{}\"}} {time:.6}", escape(job));
                }
            }
        }

        header(
            &mut out,
            "servitor_api_requests_total",
            "counter",
            "API requests, by route and status code.",
        );
        for ((route, code), count) in &counts.requests {
            let _ = writeln!(
                out,
                "servitor_api_requests_total{{route=\"{route}\",code=\"{code}\"}} {count}"
            );
        }
        header(
            &mut out,
            "servitor_event_clients",
            "gauge",
            "Open /api/events streams.",
        );
        let _ = writeln!(out, "servitor_event_clients {}", gauges.event_clients);
        header(
            &mut out,
            "servitor_log_followers",
            "gauge",
            "Log streams waiting for a running job's output.",
        );
        let _ = writeln!(out, "servitor_log_followers {}", gauges.log_followers);
        out
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::default();
        metrics.run_started("a/b");
        metrics.run_finished(
            "a/b",
            ExecutionStatus::Success,
            Some(Duration::from_millis(70)),
        );
        metrics.run_finished("odd\"job", ExecutionStatus::Failure, None);
        metrics.request("/api/jobs/run", 200);
        let text = metrics.render(&Gauges {
            running: 1,
            queued: 2,
            event_clients: 3,
            log_followers: 4,
            uptime: Duration::from_secs(5),
            last_ends: vec![("a/b".into(), Some(1_700_000_000.5), None)],
        });
        for line in [
            "servitor_runs_started_total{job=\"a/b\"} 1",
            "servitor_runs_finished_total{job=\"a/b\",status=\"success\"} 1",
            "servitor_runs_finished_total{job=\"odd\\\"job\",status=\"failure\"} 1",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"0.05\"} 0",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"0.1\"} 1",
            "servitor_run_duration_seconds_bucket{job=\"a/b\",le=\"+Inf\"} 1",
            "servitor_runs_queued 2",
            "servitor_last_success_timestamp_seconds{job=\"a/b\"} 1700000000.500000",
            "servitor_api_requests_total{route=\"/api/jobs/run\",code=\"200\"} 1",
            "servitor_log_followers 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("servitor_last_failure_timestamp_seconds{"));
    }
}
