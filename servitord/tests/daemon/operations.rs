//! The operator's side: `/api/health`, `/metrics`, `--version` and hooks.

use std::collections::HashMap;
use std::process::Command;

use prometheus_parse::{Scrape, Value};
use servitor_shared::ExecutionStatus::{Failure, Running, Success};
use servitor_shared::api::Health;

use crate::support::{Daemon, TIMEOUT, Workdir, binary, wait_for, wait_until};
use crate::{sh, wait_gate};

#[test]
fn health_reports_readiness_and_a_summary() {
    let wd = Workdir::new()
        .job("a", &sh(&wait_gate("gate")))
        .job("b", &sh("true"))
        .gate("gate");
    let daemon = wd.daemon().args(["--workers", "3"]).start();
    let health: Health = wait_for("the daemon to be ready", TIMEOUT, || {
        let answer = daemon.get("/api/health");
        (answer.status == 200).then(|| answer.json())
    });
    assert_eq!(health.status, "ok");
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.workdir, wd.path().display().to_string());
    assert_eq!(
        (health.jobs, health.running, health.queued, health.workers),
        (2, 0, 0, 3)
    );

    let id = daemon.run("a", &[]);
    daemon.wait_status("a", &id, Running);
    let busy: Health = daemon.get_json("/api/health");
    assert_eq!(busy.running, 1);
    wd.open_gate("gate");
    daemon.wait_status("a", &id, Success);

    let version = Command::new(binary("servitord"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("servitord {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn metrics_are_valid_prometheus_text_and_count_runs() {
    let wd = Workdir::new()
        .job("ok", &sh("true"))
        .job("bad", &sh("exit 3"))
        .job("open", &sh(&wait_gate("gate")))
        .gate("gate");
    let daemon = wd.start();
    for job in ["ok", "ok", "bad"] {
        let id = daemon.run(job, &[]);
        daemon.wait_ended(job, &id);
    }
    let open = daemon.run("open", &[]);
    daemon.wait_status("open", &open, Running);
    let _follower = daemon.stream(&format!(
        "/api/jobs/executions/logs/get?job_id=open&execution_id={open}"
    ));
    let _events = daemon.stream("/api/events");
    assert_eq!(daemon.get("/api/jobs/get?job_id=nope").status, 404);

    let scraped = scrape(&daemon);
    assert_eq!(
        value_of(&scraped, "servitor_runs_started_total", &[("job", "ok")]),
        Some(2.0)
    );
    assert_eq!(
        value_of(
            &scraped,
            "servitor_runs_finished_total",
            &[("job", "ok"), ("status", "success")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value_of(
            &scraped,
            "servitor_runs_finished_total",
            &[("job", "bad"), ("status", "failure")]
        ),
        Some(1.0)
    );
    assert_eq!(value_of(&scraped, "servitor_runs_running", &[]), Some(1.0));
    assert_eq!(value_of(&scraped, "servitor_runs_queued", &[]), Some(0.0));
    assert_eq!(value_of(&scraped, "servitor_log_followers", &[]), Some(1.0));
    assert_eq!(value_of(&scraped, "servitor_event_clients", &[]), Some(1.0));
    assert_eq!(
        value_of(
            &scraped,
            "servitor_api_requests_total",
            &[("route", "/api/jobs/get"), ("code", "404")]
        ),
        Some(1.0)
    );
    let last_success = value_of(
        &scraped,
        "servitor_last_success_timestamp_seconds",
        &[("job", "ok")],
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last_success).abs() < 60.0, "{last_success} vs {now}");
    assert!(
        value_of(
            &scraped,
            "servitor_last_failure_timestamp_seconds",
            &[("job", "bad")]
        )
        .is_some()
    );
    let histogram = scraped
        .samples
        .iter()
        .find(|s| s.metric == "servitor_run_duration_seconds" && s.labels.get("job") == Some("ok"))
        .expect("a duration histogram for ok");
    match &histogram.value {
        Value::Histogram(buckets) => assert_eq!(buckets.last().unwrap().count, 2.0),
        other => panic!("not a histogram: {other:?}"),
    }
    wd.open_gate("gate");
    daemon.wait_status("open", &open, Success);

    // The last success survives a restart: it comes from the history.
    let mut daemon = daemon;
    daemon.terminate();
    daemon.start_again();
    wait_until("the history to be loaded", TIMEOUT, || {
        daemon.get("/api/health").status == 200
    });
    let after = scrape(&daemon);
    let again = value_of(
        &after,
        "servitor_last_success_timestamp_seconds",
        &[("job", "ok")],
    )
    .unwrap();
    assert!(
        (again - last_success).abs() < 1e-3,
        "{again} vs {last_success}"
    );
}

fn scrape(daemon: &Daemon) -> Scrape {
    let answer = daemon.get("/metrics");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines: Vec<_> = answer.text().lines().map(|l| Ok(l.to_owned())).collect();
    Scrape::parse(lines.into_iter()).expect("valid Prometheus text")
}

/// The value of the first sample of `metric` with these labels.
fn value_of(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|sample| {
        let matches =
            sample.metric == metric && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v));
        match (&sample.value, matches) {
            (Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v), true) => Some(*v),
            _ => None,
        }
    })
}

#[test]
fn hooks_run_on_ends_without_touching_results() {
    let wd = Workdir::new()
        .job("ok", &sh("echo fine"))
        .job("bad", &sh("echo broken >&2\nexit 4"))
        .file("config/hooks/.hidden-on_failure", "")
        .job_with_mode(
            "../hooks/on_failure",
            &sh("echo \"$SERVITOR_HOOK $SERVITOR_JOB #$SERVITOR_JOB_EXECUTION $SERVITOR_STATUS $SERVITOR_EXIT_CODE $SERVITOR_LOG\" >> \"$SERVITOR_ROOT/hook.txt\"\necho hook output"),
            0o755,
        )
        // A second hook for the same event, which fails: the job's result stays.
        .job_with_mode("../hooks/on_failure.broken", &sh("echo about to fail\nexit 9"), 0o755)
        .job_with_mode("../hooks/on_end", &sh("echo \"end $SERVITOR_JOB $SERVITOR_STATUS $SERVITOR_DURATION\" >> \"$SERVITOR_ROOT/ends.txt\""), 0o755)
        // Hangs: stopped after the hook timeout.
        .job_with_mode("../hooks/on_success", &sh("echo hanging\nexec sleep 60"), 0o755);
    // Long enough for every other hook to start its shell on a loaded machine.
    let daemon = wd.daemon().args(["--hook-timeout", "1s"]).start();

    let bad = daemon.run("bad", &[]);
    let ended = daemon.wait_status("bad", &bad, Failure);
    assert_eq!(ended.result.unwrap().exit_code, 4);
    let ok = daemon.run("ok", &[]);
    daemon.wait_status("ok", &ok, Success);

    let log = wd.join("state/jobs/bad/executions/1/logs/main.txt");
    assert_eq!(
        wd.wait_lines("hook.txt", 1),
        format!("on_failure bad #1 failure 4 {}\n", log.display())
    );
    let ends: HashMap<String, String> = wd
        .wait_lines("ends.txt", 2)
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            (
                parts.nth(1).unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        (ends["bad"].as_str(), ends["ok"].as_str()),
        ("failure", "success")
    );

    // Each hook's runs are recorded in its own log, with how they ended.
    wd.wait_contains("state/hooks/on_success.log", "timed out after 1s");
    let recorded = wd.wait_contains("state/hooks/on_failure.log", "exit status: 0");
    assert!(
        recorded.contains("on_failure for bad #1 (failure)") && recorded.contains("hook output"),
        "{recorded}"
    );
    wd.wait_contains("state/hooks/on_failure.broken.log", "exit status: 9");
    // The results are untouched by the hooks, and runs go on.
    assert_eq!(daemon.execution("ok", &ok).status, Success);
    assert_eq!(daemon.execution("bad", &bad).result.unwrap().exit_code, 4);
    let next = daemon.run("ok", &[]);
    daemon.wait_status("ok", &next, Success);
    assert!(!wd.join("state/hooks/.hidden-on_failure.log").exists());
}

#[test]
fn with_fsync_runs_are_recorded_the_same() {
    let wd = Workdir::new().job("hello", &sh("echo synced"));
    let daemon = wd.daemon().arg("--fsync").start();
    let id = daemon.run("hello", &[]);
    let ended = daemon.wait_status("hello", &id, Success);
    assert_eq!(ended.result.unwrap().exit_code, 0);
    assert_eq!(daemon.log_of("hello", &id), b"synced\n");
    assert_eq!(
        wd.read("state/jobs/hello/executions/last_execution.txt"),
        "1"
    );
    assert_eq!(wd.read("state/jobs/hello/executions/1/result.tsv"), "0\t\n");
}
