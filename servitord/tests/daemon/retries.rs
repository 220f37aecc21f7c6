//! A retry waiting for its delay when servitord stops, or crashes, is made after the
//! next start, when due; one whose run had a secret input then says it cannot run.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use servitor_shared::ExecutionStatus::Failure;
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

fn created_at(run: &ExecutionWithTrigger) -> Timestamp {
    run.execution.status_history[0].timestamp.parse().unwrap()
}

/// True once `state/retries.json` notes a retry of `job` #`of`.
fn noted(wd: &Workdir, job: &str, of: &str) -> bool {
    std::fs::read_to_string(wd.join("state/retries.json"))
        .is_ok_and(|text| text.contains(&format!("\"job\":\"{job}\",\"retry_of\":\"{of}\"")))
}

/// Stops servitord while both jobs' retries wait (`crash`: SIGKILL, else SIGTERM),
/// starts it again, and checks the retries made after the start.
fn retries_survive(crash: bool) {
    let delay = Duration::from_secs(3);
    let settings = r#"{"retry": {"attempts": 2, "delay": "3s"}}"#;
    let wd = Workdir::new()
        .job("flaky", &sh("echo \"try $WHO\"; exit 3"))
        .input_spec("flaky", r#"{"WHO": {}}"#)
        .file("config/jobs/flaky.settings.json", settings)
        .job("secretive", &sh("exit 3"))
        .input_spec("secretive", r#"{"TOKEN": {"secret": true}}"#)
        .file("config/jobs/secretive.settings.json", settings);
    let mut daemon = wd.start();
    // The retries are due no earlier than `delay` from here.
    let asked = std::time::Instant::now();
    daemon.run("flaky", &[("WHO", "ada")]);
    daemon.run("secretive", &[("TOKEN", "s3cret")]);
    daemon.wait_status("flaky", "1", Failure);
    daemon.wait_status("secretive", "1", Failure);
    wait_until("both retries to be noted", TIMEOUT, || {
        noted(&wd, "flaky", "1") && noted(&wd, "secretive", "1")
    });
    if crash {
        daemon.kill();
    } else {
        daemon.terminate();
    }
    daemon.start_again();
    let before_due = runs_of(&daemon, "flaky").len();
    // Only a restart quicker than the delay can see it not made yet.
    if asked.elapsed() < delay {
        assert_eq!(before_due, 1, "not made before it is due");
    }

    let runs = wait_for("the retry of flaky #1", TIMEOUT, || {
        let runs = runs_of(&daemon, "flaky");
        (runs.len() == 2).then_some(runs)
    });
    let retry = &runs[1];
    assert_eq!(
        (
            retry.trigger.trigger,
            retry.trigger.retry_of.as_deref(),
            retry.trigger.attempt
        ),
        (Trigger::Retry, Some("1"), Some(1))
    );
    assert_eq!(retry.execution.input_values["WHO"], "ada");
    // Not before it was due.
    let waited = created_at(retry).duration_since(created_at(&runs[0]));
    assert!(
        waited >= SignedDuration::try_from(delay).unwrap(),
        "{waited:?}"
    );
    let ended = daemon.wait_ended("flaky", "2");
    assert_eq!(
        String::from_utf8(daemon.log_of("flaky", "2")).unwrap(),
        "try ada\n"
    );
    assert_eq!(ended.status, Failure);

    // The secret value was in the stopped daemon's memory only: the retry is made, and
    // says why it cannot run; it is not retried in turn.
    wait_until("the retry of secretive #1", TIMEOUT, || {
        runs_of(&daemon, "secretive").len() == 2
    });
    let secret = daemon.wait_ended("secretive", "2");
    assert_eq!(secret.status, Failure);
    let message = secret.result.unwrap().message;
    assert!(
        message.contains("secret input TOKEN is not kept across a restart"),
        "{message}"
    );
    wait_until("the notes to be done with", TIMEOUT, || {
        !noted(&wd, "secretive", "1") && !noted(&wd, "secretive", "2")
    });
    assert_eq!(runs_of(&daemon, "secretive").len(), 2);
}

#[test]
fn a_retry_waiting_at_a_stop_is_made_after_the_start() {
    retries_survive(false);
}

#[test]
fn a_retry_waiting_at_a_crash_is_made_after_the_start() {
    retries_survive(true);
}
