//! Schedules and retries, on real seconds-level schedules: fires become runs with
//! trigger `schedule`, a restart neither repeats nor (unless asked) makes up fire
//! times, pause survives restarts, and failed runs are retried as `retry` says.

use std::fs;
use std::time::Duration;

use jiff::Timestamp;
use servitor_shared::ExecutionStatus::{Cancelled, Failure, Running};
use servitor_shared::{ExecutionWithTrigger, Trigger};

use crate::sh;
use crate::support::{Daemon, TIMEOUT, Workdir, wait_for, wait_until};

/// The job's executions, oldest first, with their triggers.
fn runs_of(daemon: &Daemon, job: &str) -> Vec<ExecutionWithTrigger> {
    let mut runs: Vec<ExecutionWithTrigger> =
        daemon.get_json(&format!("/api/jobs/executions/get_list?job_id={job}"));
    runs.reverse();
    runs
}

/// When the execution was created, from its status history.
fn created_at(run: &ExecutionWithTrigger) -> Timestamp {
    run.execution.status_history[0]
        .timestamp
        .parse()
        .expect("an RFC 3339 timestamp")
}

/// Waits until the job has at least `count` executions, within `within`.
fn wait_runs(
    daemon: &Daemon,
    job: &str,
    count: usize,
    within: Duration,
) -> Vec<ExecutionWithTrigger> {
    wait_for(&format!("{count} runs of {job}"), within, || {
        let runs = runs_of(daemon, job);
        (runs.len() >= count).then_some(runs)
    })
}

#[test]
fn a_job_every_two_seconds_runs_three_times_in_seven() {
    let wd = Workdir::new().job("tick", &sh("true"));
    let daemon = wd.start();
    assert!(runs_of(&daemon, "tick").is_empty());
    // Given once the daemon runs: an edit applies without a restart.
    fs::write(
        wd.join("config/jobs/tick.settings.json"),
        r#"{"schedule": "*/2 * * * * *", "timezone": "UTC"}"#,
    )
    .unwrap();
    let runs = wait_runs(&daemon, "tick", 3, Duration::from_secs(7) + TIMEOUT);
    for run in &runs {
        assert_eq!(run.trigger.trigger, Trigger::Schedule);
        assert_eq!(run.trigger.retry_of, None);
        assert!(run.execution.triggered_by.is_none());
    }
    // Each fire on its own even second, never early: the fire time a run was made for
    // is the even second at or before its creation (on a loaded machine a fire can be
    // late, but not by two seconds).
    let fired: Vec<i64> = runs[..3]
        .iter()
        .map(|run| created_at(run).as_second() / 2 * 2)
        .collect();
    assert!(
        fired.windows(2).all(|pair| pair[1] > pair[0]),
        "one run per fire time: {fired:?}"
    );

    // A run asked for through the API says so.
    let id = daemon.run("tick", &[]);
    let asked: ExecutionWithTrigger = daemon.get_json(&format!(
        "/api/jobs/executions/get?job_id=tick&execution_id={id}"
    ));
    assert_eq!(asked.trigger.trigger, Trigger::Api);
    assert!(asked.execution.triggered_by.is_some());
    let raw = daemon
        .get(&format!(
            "/api/jobs/executions/get?job_id=tick&execution_id={id}"
        ))
        .text();
    assert!(raw.contains("\"trigger\":\"api\""), "{raw}");

    // Taken away, the schedule stops.
    fs::write(wd.join("config/jobs/tick.settings.json"), "{}").unwrap();
    wait_until("the schedule to go", TIMEOUT, || {
        let job: serde_json::Value = daemon.get_json("/api/jobs/get?job_id=tick");
        job["next_run"].is_null() && job.get("schedule").is_none()
    });
}

/// A daily cron expression, in UTC, for the second `at` falls in.
fn daily_at(at: Timestamp) -> String {
    let time = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} * * *", time.second(), time.minute(), time.hour())
}

/// Sleeps until the wall clock is past `at`: waiting out a fire time is inherent.
fn sleep_past(at: Timestamp) {
    let wait = at.duration_since(Timestamp::now()) + jiff::SignedDuration::from_millis(300);
    if let Ok(wait) = Duration::try_from(wait) {
        std::thread::sleep(wait.min(Duration::from_secs(5)));
    }
}

#[test]
fn a_fire_time_missed_while_stopped_is_caught_up_once_or_skipped() {
    let wd = Workdir::new()
        .job("once", &sh("true"))
        .job("skip", &sh("true"));
    let every_second = r#"{"schedule": "* * * * * *", "timezone": "UTC"#;
    fs::write(
        wd.join("config/jobs/once.settings.json"),
        format!(r#"{every_second}", "catch_up": "once"}}"#),
    )
    .unwrap();
    fs::write(
        wd.join("config/jobs/skip.settings.json"),
        format!(r#"{every_second}", "catch_up": "skip"}}"#),
    )
    .unwrap();
    let mut daemon = wd.start();
    wait_runs(&daemon, "once", 1, TIMEOUT);
    wait_runs(&daemon, "skip", 1, TIMEOUT);
    assert!(daemon.terminate().success());
    let once_before = count_runs(&wd, "once");
    let skipped_before = count_runs(&wd, "skip");

    // While it is down, both move to a time that passes before it starts again.
    let missed = Timestamp::from_second(Timestamp::now().as_second() + 1).unwrap();
    for (job, catch_up) in [("once", "once"), ("skip", "skip")] {
        let settings = format!(
            r#"{{"schedule": "{}", "timezone": "UTC", "catch_up": "{catch_up}"}}"#,
            daily_at(missed)
        );
        fs::write(
            wd.join(format!("config/jobs/{job}.settings.json")),
            settings,
        )
        .unwrap();
    }
    sleep_past(missed);
    daemon.start_again();

    let runs = wait_runs(&daemon, "once", once_before + 1, TIMEOUT);
    assert_eq!(runs.len(), once_before + 1, "one run for the missed time");
    assert_eq!(runs.last().unwrap().trigger.trigger, Trigger::Schedule);
    assert!(created_at(runs.last().unwrap()) > missed);
    // Both were handed out together at the start: `skip` made none.
    assert_eq!(runs_of(&daemon, "skip").len(), skipped_before);
    for job in ["once", "skip"] {
        let described: serde_json::Value = daemon.get_json(&format!("/api/jobs/get?job_id={job}"));
        let next: Timestamp = described["next_run"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            next.duration_since(missed),
            jiff::SignedDuration::from_hours(24),
            "{described}"
        );
    }
}

/// The job's executions on disk (the daemon may be stopped).
fn count_runs(wd: &Workdir, job: &str) -> usize {
    fs::read_dir(wd.join(format!("state/jobs/{job}/executions")))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u64>().is_ok())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn no_time_fires_twice_after_a_crash() {
    let wd = Workdir::new().job("every5", &sh("true")).file(
        "config/jobs/every5.settings.json",
        r#"{"schedule": "*/5 * * * * *", "timezone": "UTC", "catch_up": "once"}"#,
    );
    let mut daemon = wd.start();
    let first = wait_runs(&daemon, "every5", 1, Duration::from_secs(5) + TIMEOUT);
    let fired = created_at(&first[0]);
    daemon.kill();
    daemon.start_again();
    if Timestamp::now().duration_since(fired) >= jiff::SignedDuration::from_secs(4) {
        eprintln!("the restart took until the next fire time: nothing to check on this run");
        return;
    }
    let runs = wait_runs(&daemon, "every5", 2, Duration::from_secs(5) + TIMEOUT);
    assert_eq!(
        runs.len(),
        2,
        "{:?}",
        runs.iter().map(created_at).collect::<Vec<_>>()
    );
    // Made for a later fire time (a loaded machine may make a run a little late, but
    // not by five seconds).
    let second = created_at(&runs[1]);
    assert!(
        second.as_second() / 5 > fired.as_second() / 5,
        "the next fire time, not {fired} again: {second}"
    );
}

#[test]
fn pause_survives_a_restart() {
    let wd = Workdir::new()
        .job("paused", &sh("true"))
        .job("witness", &sh("true"))
        .file(
            "config/jobs/.settings.json",
            r#"{"schedule": "* * * * * *", "timezone": "UTC"}"#,
        );
    let mut daemon = wd.start();
    let pause = daemon.post("/api/jobs/schedule/pause?job_id=paused");
    assert_eq!(pause.status, 200, "{}", pause.text());
    assert_eq!(pause.value(), serde_json::json!({"status": "success"}));
    let job: serde_json::Value = daemon.get_json("/api/jobs/get?job_id=paused");
    assert!(job["next_run"].is_null(), "{job}");
    assert_eq!(job["schedule"]["paused"], true, "{job}");
    assert_eq!(job["schedule"]["description"], "Every second", "{job}");
    assert_eq!(job["schedule"]["timezone"], "UTC", "{job}");
    let unknown = daemon.post("/api/jobs/schedule/pause?job_id=nope");
    assert_eq!(unknown.status, 404);

    daemon.restart();
    let before = runs_of(&daemon, "paused").len();
    // The witness fires twice after the restart: the paused job would have too.
    let witnessed = runs_of(&daemon, "witness").len();
    wait_runs(&daemon, "witness", witnessed + 2, TIMEOUT);
    assert_eq!(runs_of(&daemon, "paused").len(), before);
    let job: serde_json::Value = daemon.get_json("/api/jobs/get?job_id=paused");
    assert_eq!(job["schedule"]["paused"], true, "{job}");

    let resume = daemon.post("/api/jobs/schedule/resume?job_id=paused");
    assert_eq!(resume.status, 200, "{}", resume.text());
    let job: serde_json::Value = daemon.get_json("/api/jobs/get?job_id=paused");
    assert!(job["next_run"].is_string(), "{job}");
    wait_runs(&daemon, "paused", before + 1, TIMEOUT);
}

#[test]
fn a_busy_job_with_on_busy_skip_skips_fires() {
    let wd = Workdir::new()
        .job("busy", &sh(&crate::wait_gate("gate")))
        .gate("gate")
        .file(
            "config/jobs/busy.settings.json",
            r#"{"schedule": "* * * * * *", "concurrency": 1, "on_busy": "skip"}"#,
        );
    let daemon = wd.start();
    wait_runs(&daemon, "busy", 1, TIMEOUT);
    let skipped = r#"servitor_schedule_fires_skipped_total{job="busy"}"#;
    wait_until("two skipped fires", TIMEOUT, || {
        daemon.metric(skipped) >= 2.0
    });
    assert_eq!(runs_of(&daemon, "busy").len(), 1);
    assert!(daemon.log().contains("schedule fire skipped"));
    let next = r#"servitor_schedule_next_run_timestamp_seconds{job="busy"}"#;
    assert!(daemon.metric(next) > 1.0e9);
    wd.open_gate("gate");
}

#[test]
fn a_failing_job_is_retried_with_its_delays_and_hooks_know() {
    let wd = Workdir::new()
        .job(
            "flaky",
            &sh("echo \"$WHO $TOKEN\" >> \"$SERVITOR_ROOT/ran\"; exit 3"),
        )
        .input_spec("flaky", r#"{"WHO": {}, "TOKEN": {"secret": true}}"#)
        .file(
            "config/jobs/flaky.settings.json",
            r#"{"retry": {"attempts": 2, "delay": "500ms", "backoff": 2}}"#,
        )
        .job(
            "../hooks/on_failure",
            &sh("echo \"$SERVITOR_JOB_EXECUTION $SERVITOR_WILL_RETRY\" >> \"$SERVITOR_ROOT/hooked\""),
        );
    let daemon = wd.start();
    let id = daemon.run("flaky", &[("WHO", "ada"), ("TOKEN", "s3cret")]);
    assert_eq!(id, "1");
    let runs = wait_runs(&daemon, "flaky", 3, TIMEOUT);
    for run in &runs {
        daemon.wait_status("flaky", &run.execution.execution_id, Failure);
    }
    let runs = runs_of(&daemon, "flaky");
    assert_eq!(runs.len(), 3);
    let chain: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.trigger.trigger,
                r.trigger.retry_of.as_deref(),
                r.trigger.attempt,
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            (Trigger::Api, None, None),
            (Trigger::Retry, Some("1"), Some(1)),
            (Trigger::Retry, Some("2"), Some(2)),
        ]
    );
    for run in &runs {
        assert_eq!(run.execution.input_values["WHO"], "ada");
        assert_eq!(run.execution.input_values["TOKEN"], "********");
    }
    // The secret reaches every retry, from memory.
    assert_eq!(wd.read("ran"), "ada s3cret\nada s3cret\nada s3cret\n");
    let gap = |a: usize, b: usize| created_at(&runs[b]).duration_since(created_at(&runs[a]));
    assert!(
        gap(0, 1) >= jiff::SignedDuration::from_millis(500),
        "{:?}",
        gap(0, 1)
    );
    assert!(
        gap(1, 2) >= jiff::SignedDuration::from_millis(1000),
        "{:?}",
        gap(1, 2)
    );
    wait_until("the hooks of the three failures", TIMEOUT, || {
        fs::read_to_string(wd.join("hooked")).is_ok_and(|text| text.lines().count() == 3)
    });
    let mut hooked: Vec<String> = wd.read("hooked").lines().map(str::to_owned).collect();
    hooked.sort();
    assert_eq!(hooked, ["1 1", "2 1", "3 0"]);
    let retries = r#"servitor_retries_total{job="flaky"}"#;
    assert_eq!(daemon.metric(retries), 2.0);
}

#[test]
fn a_cancelled_run_is_never_retried() {
    let wd = Workdir::new()
        .job(
            "stoppable",
            &sh(&format!("{}\nexit 1", crate::wait_gate("gate"))),
        )
        .gate("gate")
        .file(
            "config/jobs/stoppable.settings.json",
            r#"{"retry": {"attempts": 1, "delay": "100ms"}}"#,
        );
    let daemon = wd.start();
    let cancelled = daemon.run("stoppable", &[]);
    daemon.wait_status("stoppable", &cancelled, Running);
    let answer = daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=stoppable&execution_id={cancelled}"
    ));
    assert_eq!(answer.status, 200);
    daemon.wait_status("stoppable", &cancelled, Cancelled);
    // A failure after it, with the same delay: its retry comes after any retry of the
    // cancelled run would have.
    let failed = daemon.run("stoppable", &[]);
    wd.open_gate("gate");
    daemon.wait_status("stoppable", &failed, Failure);
    let runs = wait_runs(&daemon, "stoppable", 3, TIMEOUT);
    let retry = &runs[2];
    assert_eq!(retry.trigger.retry_of.as_deref(), Some(failed.as_str()));
    assert!(
        runs.iter()
            .all(|r| r.trigger.retry_of.as_deref() != Some(cancelled.as_str())),
        "no retry of the cancelled run"
    );
    wd.open_gate("gate");
    daemon.wait_ended("stoppable", &retry.execution.execution_id);
    assert_eq!(runs_of(&daemon, "stoppable").len(), 3);
}
