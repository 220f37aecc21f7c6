//! Every endpoint's answer and JSON shape.

use serde_json::{Value, json};
use servitor_shared::api::RunAccepted;
use servitor_shared::{Execution, ExecutionStatus, Job};

use crate::support::Workdir;
use crate::{sh, statuses, wait_gate};

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn the_job_list_is_sorted_and_carries_input_specs() {
    let wd = Workdir::new()
        .job("b", &sh("true"))
        .job("a/z", &sh("true"))
        .job("c/deep/x", &sh("true"))
        .job("a/b", &sh("true"))
        .input_spec(
            "a/b",
            r#"{"NAME": {}, "CITY": {"default": "Paris", "x-order": [1, 2]}}"#,
        )
        .job_with_mode("notes.txt", "not a job", 0o644)
        .job_with_mode("a/readable-only", &sh("true"), 0o444);
    let daemon = wd.start();

    let answer = daemon.get("/api/jobs/get_list");
    assert_eq!(answer.status, 200);
    answer.assert_json();
    let list = answer.value();
    let ids: Vec<_> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|job| job["job_id"].as_str().expect("a job id"))
        .collect();
    assert_eq!(ids, ["a/b", "a/z", "b", "c/deep/x"]);
    for job in list.as_array().unwrap() {
        assert_eq!(
            keys(job),
            ["job_id", "input_spec", "last_execution", "next_run"],
            "{job}"
        );
    }
    // The spec is passed on as written, fields and order included.
    assert!(
        answer.text().starts_with(
            r#"[{"job_id":"a/b","input_spec":{"NAME":{},"CITY":{"default":"Paris","x-order":[1,2]}},"last_execution":null,"next_run":null},"#
        ),
        "{}",
        answer.text()
    );
    assert_eq!(
        list[1],
        json!({"job_id": "a/z", "input_spec": {}, "last_execution": null, "next_run": null})
    );
    let typed: Vec<Job> = answer.json();
    assert!(typed.iter().all(|job| job.error.is_none()));
}

#[test]
fn get_answers_one_job_with_an_empty_spec_when_it_has_none() {
    let wd = Workdir::new()
        .job("plain", &sh("true"))
        .job("a/b", &sh("true"))
        .input_spec("a/b", r#"{"NAME": {}, "CITY": {"x": 1}}"#);
    let daemon = wd.start();

    let plain = daemon.get("/api/jobs/get?job_id=plain");
    assert_eq!(plain.status, 200);
    plain.assert_json();
    assert_eq!(
        plain.text(),
        r#"{"job_id":"plain","input_spec":{},"last_execution":null,"next_run":null}"#
    );

    let nested = daemon.get("/api/jobs/get?job_id=a%2Fb");
    assert_eq!(nested.status, 200);
    assert_eq!(
        nested.text(),
        r#"{"job_id":"a/b","input_spec":{"NAME":{},"CITY":{"x":1}},"last_execution":null,"next_run":null}"#
    );
}

#[test]
fn run_answers_the_execution_id_and_executions_are_listed_newest_first() {
    let wd = Workdir::new()
        .job("count", &sh("echo \"run $SERVITOR_JOB_EXECUTION\""))
        .job("other", &sh("true"));
    let daemon = wd.start();

    for expected in ["1", "2", "3"] {
        let answer = daemon.post("/api/jobs/run?job_id=count");
        assert_eq!(answer.status, 200);
        answer.assert_json();
        assert_eq!(
            answer.text(),
            format!(r#"{{"status":"success","execution_id":"{expected}"}}"#)
        );
        daemon.wait_ended("count", expected);
    }
    // Ids are per job.
    let accepted: RunAccepted = daemon.post("/api/jobs/run?job_id=other").json();
    assert_eq!(accepted.execution_id, "1");

    let answer = daemon.get("/api/jobs/executions/get_list?job_id=count");
    assert_eq!(answer.status, 200);
    answer.assert_json();
    let list = answer.value();
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3", "2", "1"]);
    for execution in list.as_array().unwrap() {
        assert_eq!(
            keys(execution),
            [
                "execution_id",
                "status",
                "status_history",
                "result",
                "input_values",
                // Added by Servitor: the client's uid, gid and pid.
                "triggered_by",
                // Added by Servitor: what made the run.
                "trigger"
            ]
        );
        assert_eq!(
            execution["triggered_by"]["uid"],
            rustix::process::getuid().as_raw()
        );
        assert_eq!(execution["status"], "success");
        assert_eq!(execution["result"], json!({"exit_code": 0, "message": ""}));
        assert_eq!(execution["input_values"], json!({}));
        for change in execution["status_history"].as_array().unwrap() {
            assert_eq!(keys(change), ["timestamp", "status"]);
        }
    }

    let answer = daemon.get("/api/jobs/executions/get?job_id=count&execution_id=2");
    assert_eq!(answer.status, 200);
    answer.assert_json();
    assert_eq!(answer.value(), list[1]);
    let second: Execution = answer.json();
    assert_eq!(
        statuses(&second),
        [
            ExecutionStatus::Created,
            ExecutionStatus::Running,
            ExecutionStatus::Success
        ]
    );
    assert_eq!(daemon.log_of("count", "2"), b"run 2\n");
}

#[test]
fn result_is_null_until_the_run_ends_and_cancel_acknowledges() {
    let wd = Workdir::new()
        .job("wait", &sh(&wait_gate("gate")))
        .gate("gate");
    let daemon = wd.start();
    let id = daemon.run("wait", &[]);
    daemon.wait_status("wait", &id, ExecutionStatus::Running);

    let running = daemon
        .get("/api/jobs/executions/get?job_id=wait&execution_id=1")
        .value();
    assert_eq!(running["status"], "running");
    assert_eq!(running["result"], Value::Null);
    assert!(running.get("error").is_none());

    let answer = daemon.post("/api/jobs/executions/cancel?job_id=wait&execution_id=1");
    assert_eq!(answer.status, 200);
    answer.assert_json();
    assert_eq!(answer.text(), r#"{"status":"success"}"#);
    let cancelled = daemon.wait_status("wait", &id, ExecutionStatus::Cancelled);
    assert!(cancelled.result.is_some());
}

#[test]
fn jobs_are_discovered_live_and_ids_may_hold_any_visible_name() {
    let wd = Workdir::new();
    std::fs::remove_dir_all(wd.join("config")).unwrap();
    let daemon = wd.start();
    assert_eq!(daemon.get("/api/jobs/get_list").text(), "[]");
    daemon.post("/api/jobs/run?job_id=later").error_message(404);

    // No restart needed: the folder is read on every request.
    let odd = "odd/with space & ünï #1";
    let wd = wd
        .job("later", &sh("echo later"))
        .job(odd, &sh("echo \"$SERVITOR_JOB\""));
    let ids: Vec<_> = daemon.jobs().into_iter().map(|job| job.job_id).collect();
    assert_eq!(ids, ["later", odd]);

    let id = daemon.run(odd, &[]);
    daemon.wait_status(odd, &id, ExecutionStatus::Success);
    assert_eq!(daemon.log_of(odd, &id), format!("{odd}\n").as_bytes());
    assert!(
        wd.join(format!("state/jobs/{odd}/executions/1/result.tsv"))
            .is_file()
    );
    let id = daemon.run("later", &[]);
    daemon.wait_status("later", &id, ExecutionStatus::Success);
    // Stopped before its working directory (bound after it) is removed.
    drop(daemon);
}

/// `last_execution` of `job` in `get_list`, and the same in `get`.
fn last_execution(daemon: &crate::support::Daemon, job: &str) -> Value {
    let listed = daemon
        .get_json::<Value>("/api/jobs/get_list")
        .as_array()
        .expect("a list")
        .iter()
        .find(|listed| listed["job_id"] == job)
        .expect("the job is listed")["last_execution"]
        .clone();
    let one: Value = daemon.get_json(&format!(
        "/api/jobs/get?job_id={}",
        crate::support::encode(job)
    ));
    assert_eq!(one["last_execution"], listed, "get and get_list agree");
    listed
}

#[test]
fn every_job_carries_its_newest_execution() {
    let wd = Workdir::new()
        .job("never", &sh("true"))
        .job("wait", &sh(&format!("{}\nexit 3", wait_gate("gate"))))
        .gate("gate")
        .job("kept/ok", &sh("true"))
        .file(
            "config/jobs/kept/ok.settings.json",
            r#"{"retention": {"keep_last": 1}}"#,
        );
    let mut daemon = wd.start();
    assert_eq!(last_execution(&daemon, "never"), Value::Null);

    let id = daemon.run("wait", &[]);
    daemon.wait_status("wait", &id, ExecutionStatus::Running);
    let running = last_execution(&daemon, "wait");
    assert_eq!(
        keys(&running),
        [
            "execution_id",
            "status",
            "created_at",
            "started_at",
            "ended_at",
            "result"
        ]
    );
    assert_eq!(running["execution_id"], "1");
    assert_eq!(running["status"], "running");
    crate::assert_timestamp(running["created_at"].as_str().unwrap());
    crate::assert_timestamp(running["started_at"].as_str().unwrap());
    assert_eq!(running["ended_at"], Value::Null);
    assert_eq!(running["result"], Value::Null);

    wd.open_gate("gate");
    let ended = daemon.wait_ended("wait", &id);
    let finished = last_execution(&daemon, "wait");
    assert_eq!(finished["status"], "failure");
    assert_eq!(finished["result"], json!({"exit_code": 3, "message": ""}));
    let history = &ended.status_history;
    assert_eq!(finished["created_at"], history[0].timestamp.as_str());
    assert_eq!(finished["started_at"], history[1].timestamp.as_str());
    assert_eq!(finished["ended_at"], history[2].timestamp.as_str());

    // Retention deletes the older runs, never the newest.
    for _ in 0..3 {
        let id = daemon.run("kept/ok", &[]);
        daemon.wait_ended("kept/ok", &id);
    }
    crate::support::wait_until(
        "retention to delete the older runs",
        crate::support::TIMEOUT,
        || daemon.executions("kept/ok").len() == 1,
    );
    let kept = last_execution(&daemon, "kept/ok");
    assert_eq!(
        (kept["execution_id"].as_str(), kept["status"].as_str()),
        (Some("3"), Some("success"))
    );

    // After a restart, read back from the files, before and after the history loads.
    daemon.restart();
    assert_eq!(last_execution(&daemon, "wait"), finished);
    assert_eq!(last_execution(&daemon, "kept/ok"), kept);
    assert_eq!(last_execution(&daemon, "never"), Value::Null);
    let typed: Vec<Job> = daemon.jobs();
    let wait = typed.iter().find(|job| job.job_id == "wait").unwrap();
    assert_eq!(
        wait.last_execution.as_ref().unwrap().status,
        ExecutionStatus::Failure
    );
}

/// Retention deletes finished executions while clients read them: a read of one just
/// deleted answers `404`, never a dropped connection (the check that it exists and
/// the read are one step).
#[test]
fn an_execution_deleted_while_asked_for_is_a_404() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const RUNS: u64 = 300;
    let wd = Workdir::new().job("quick", &sh("true")).file(
        "config/jobs/quick.settings.json",
        r#"{"retention": {"keep_last": 1}}"#,
    );
    let daemon = wd.start();
    let socket = daemon.socket();
    let (done, newest) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(1)),
    );
    let reader = std::thread::spawn({
        let (done, newest) = (Arc::clone(&done), Arc::clone(&newest));
        move || {
            let mut connection = crate::support::Connection::open(&socket).unwrap();
            let (mut found, mut gone) = (0u32, 0u32);
            // The newest run and the one before it: the one retention deletes next.
            while !done.load(Ordering::Relaxed) {
                let newest = newest.load(Ordering::Relaxed);
                for id in [newest.saturating_sub(1).max(1), newest] {
                    let target = format!("/api/jobs/executions/get?job_id=quick&execution_id={id}");
                    let answer = connection
                        .request("GET", &target)
                        .unwrap_or_else(|e| panic!("GET {target}: no answer: {e}"));
                    match answer.status {
                        200 => found += 1,
                        404 => gone += 1,
                        other => panic!("GET {target}: {other} {}", answer.text()),
                    }
                }
            }
            (found, gone)
        }
    });
    for _ in 0..RUNS {
        let id = daemon.run("quick", &[]);
        newest.store(id.parse().unwrap(), Ordering::Relaxed);
        daemon.wait_ended("quick", &id);
    }
    done.store(true, Ordering::Relaxed);
    let (found, gone) = reader.join().expect("every request was answered");
    assert!(found > 0 && gone > 0, "{found} found, {gone} gone");
    // Retention follows the end it was told of.
    crate::support::wait_until("the older runs to go", crate::support::TIMEOUT, || {
        daemon.executions("quick").len() == 1
    });
}
