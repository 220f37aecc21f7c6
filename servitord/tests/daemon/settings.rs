//! Job settings (`X.settings.json`, folder `.settings.json`) and richer inputs, with
//! real processes: timeouts stop them, concurrency serialises them, retention deletes
//! exactly what it should, secrets never reach the disk.

use std::fs;

use servitor_shared::ExecutionStatus::{Cancelled, Created, Failure, Running, Success};
use servitor_shared::{Event, Job, OnBusy};

use crate::support::{TIMEOUT, Workdir, encode, is_alive, wait_for, wait_until};
use crate::{sh, statuses, wait_gate};

#[test]
fn a_timed_out_run_is_stopped_and_fails_saying_so() {
    let wd = Workdir::new()
        // The timeouts leave a loaded machine time to start the shells and set traps.
        // Ignores SIGTERM, so only the SIGKILL after the grace period stops it.
        .job(
            "hangs",
            &sh("trap '' TERM\necho $$ > \"$SERVITOR_ROOT/pid\"\nwhile :; do sleep 0.05; done"),
        )
        .file(
            "config/jobs/hangs.settings.json",
            r#"{"timeout": "1s", "stop_grace": "200ms"}"#,
        )
        .job(
            "polite",
            &sh("trap 'echo got TERM; exit 143' TERM\nwhile :; do sleep 0.05; done"),
        )
        .file("config/jobs/polite.settings.json", r#"{"timeout": "1s"}"#);
    let daemon = wd.start();

    let hangs = daemon.run("hangs", &[]);
    let polite = daemon.run("polite", &[]);
    let ended = daemon.wait_status("hangs", &hangs, Failure);
    let result = ended.result.unwrap();
    assert_eq!(result.exit_code, -9);
    assert_eq!(
        result.message,
        "timed out after 1s: killed by SIGKILL after 200ms"
    );
    assert!(ended.timed_out);
    let pid: i32 = wd.read("pid").trim().parse().unwrap();
    assert!(!is_alive(pid), "the timed-out process is gone");

    let ended = daemon.wait_status("polite", &polite, Failure);
    assert_eq!(
        ended.result.as_ref().unwrap().message,
        "timed out after 1s: stopped by SIGTERM"
    );
    assert_eq!(ended.result.unwrap().exit_code, 143);
    assert!(ended.timed_out);
    // The whole group got SIGTERM: the job's `sleep` too (the shell reports it).
    assert!(String::from_utf8_lossy(&daemon.log_of("polite", &polite)).ends_with("got TERM\n"));
    // The additive field is absent for other runs, as old clients know them.
    let raw = daemon.get(&format!(
        "/api/jobs/executions/get?job_id=polite&execution_id={polite}"
    ));
    assert!(raw.text().contains("\"timed_out\":true"));
}

#[test]
fn stop_signal_and_grace_apply_to_cancel() {
    let wd = Workdir::new()
        .job(
            "wants-usr1",
            &sh("trap 'echo got USR1; exit 0' USR1\necho ready\nwhile :; do sleep 0.05; done"),
        )
        .file(
            "config/jobs/wants-usr1.settings.json",
            r#"{"stop_signal": "SIGUSR1", "stop_grace": "5s"}"#,
        );
    let daemon = wd.start();
    let id = daemon.run("wants-usr1", &[]);
    daemon.wait_status("wants-usr1", &id, Running);
    wait_until("the job to trap USR1", TIMEOUT, || {
        let now = daemon.get(&format!(
            "/api/jobs/executions/logs/get?job_id=wants-usr1&execution_id={id}&follow=false"
        ));
        now.body.starts_with(b"ready")
    });
    let answer = daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=wants-usr1&execution_id={id}"
    ));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let ended = daemon.wait_status("wants-usr1", &id, Cancelled);
    assert_eq!(
        ended.result.unwrap().message,
        "cancelled: stopped by SIGUSR1"
    );
    let log = String::from_utf8_lossy(&daemon.log_of("wants-usr1", &id)).into_owned();
    assert!(
        log.starts_with("ready\n") && log.ends_with("got USR1\n"),
        "{log}"
    );
}

#[test]
fn concurrency_one_serialises_runs_without_blocking_other_jobs() {
    let wd = Workdir::new()
        .job(
            "deploy",
            &sh(&format!(
                "echo start >> \"$SERVITOR_ROOT/trace\"\n{}\necho end >> \"$SERVITOR_ROOT/trace\"",
                wait_gate("gate")
            )),
        )
        .file("config/jobs/deploy.settings.json", r#"{"concurrency": 1}"#)
        .job("other", &sh("true"))
        .gate("gate");
    let daemon = wd.daemon().args(["--workers", "4"]).start();

    let first = daemon.run("deploy", &[]);
    let second = daemon.run("deploy", &[]);
    daemon.wait_status("deploy", &first, Running);
    // Another job passes the waiting deploy.
    let other = daemon.run("other", &[]);
    daemon.wait_status("other", &other, Success);
    assert_eq!(
        daemon.execution("deploy", &second).status,
        Created,
        "waits for the first"
    );

    wd.open_gate("gate");
    daemon.wait_status("deploy", &first, Success);
    daemon.wait_status("deploy", &second, Running);
    wd.open_gate("gate");
    daemon.wait_status("deploy", &second, Success);
    assert_eq!(
        wd.read("trace"),
        "start\nend\nstart\nend\n",
        "never two at once"
    );
}

#[test]
fn on_busy_skip_refuses_a_new_run_and_records_nothing() {
    let wd = Workdir::new()
        .job("backup", &sh(&wait_gate("gate")))
        .file(
            "config/jobs/backup.settings.json",
            r#"{"concurrency": 1, "on_busy": "skip"}"#,
        )
        .gate("gate");
    let daemon = wd.start();
    let first = daemon.run("backup", &[]);
    daemon.wait_status("backup", &first, Running);

    let message = daemon
        .post("/api/jobs/run?job_id=backup")
        .error_message(409);
    assert!(
        message.contains("busy") && message.contains("on_busy: skip"),
        "{message}"
    );
    assert_eq!(
        daemon.executions("backup").len(),
        1,
        "the skipped run left no trace"
    );

    wd.open_gate("gate");
    daemon.wait_status("backup", &first, Success);
    let again = daemon.run("backup", &[]);
    assert_eq!(again, "2", "ids go on after a skipped run");
    wd.open_gate("gate");
    daemon.wait_status("backup", &again, Success);
}

#[test]
fn on_busy_skip_takes_a_new_run_as_soon_as_the_last_end_is_told() {
    // Thousands of files beside the hooks make each end's look for hooks take a few
    // milliseconds: a client told of an end asks for the next run within them.
    let mut wd = Workdir::new().job("backup", &sh("true")).file(
        "config/jobs/backup.settings.json",
        r#"{"concurrency": 1, "on_busy": "skip"}"#,
    );
    for i in 0..20_000 {
        wd = wd.file(&format!("config/hooks/notes-{i}.txt"), "");
    }
    let daemon = wd.start();
    let mut events = daemon.stream("/api/events");
    for _ in 0..10 {
        // As `servitorctl run --wait backup && servitorctl run backup` does.
        let id = daemon.run("backup", &[]);
        events.wait_event(TIMEOUT, |event| {
            matches!(event, Event::JobExecutionStatusChanged { execution_id, status: Success, .. } if *execution_id == id)
        });
    }
    assert_eq!(daemon.executions("backup").len(), 10);
}

#[test]
fn retention_deletes_old_executions_and_nothing_else() {
    let wd = Workdir::new()
        .job("minutely", &sh("echo $SERVITOR_JOB_EXECUTION"))
        .file(
            "config/jobs/minutely.settings.json",
            r#"{"retention": {"keep_last": 3}}"#,
        )
        .job("kept", &sh("true"));
    let daemon = wd.start();
    let kept = daemon.run("kept", &[]);
    daemon.wait_status("kept", &kept, Success);
    for n in 1..=6 {
        let id = daemon.run("minutely", &[]);
        assert_eq!(id, n.to_string());
        daemon.wait_status("minutely", &id, Success);
    }
    let executions = wd.join("state/jobs/minutely/executions");
    wait_until("retention to delete the old folders", TIMEOUT, || {
        wd.tree("state/jobs/minutely/executions")
            .iter()
            .filter(|p| !p.contains('/'))
            .cloned()
            .collect::<Vec<_>>()
            == ["4", "5", "6", "last_execution.txt"]
    });
    let listed: Vec<_> = daemon
        .executions("minutely")
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(listed, ["6", "5", "4"]);
    assert_eq!(
        fs::read_to_string(executions.join("last_execution.txt")).unwrap(),
        "6"
    );
    assert_eq!(
        daemon.executions("kept").len(),
        1,
        "other jobs are untouched"
    );
    assert_eq!(
        daemon
            .get("/api/jobs/executions/get?job_id=minutely&execution_id=1")
            .status,
        404
    );
    // Ids never repeat.
    assert_eq!(daemon.run("minutely", &[]), "7");
}

#[test]
fn retention_by_age_runs_at_start_and_spares_unfinished_runs() {
    // Old history: three finished runs from 2020, one left queued.
    let mut wd = Workdir::new()
        .job("nightly", &sh("true"))
        .file("config/.keep", "")
        .file(
            "config/jobs/.settings.json",
            r#"{"retention": {"max_age": "30days"}}"#,
        );
    for (id, status) in [
        (1, "success"),
        (2, "failure"),
        (3, "success"),
        (4, "created"),
    ] {
        let history = if status == "created" {
            "2020-01-01T00:00:00.000000+00:00\tcreated\n".to_owned()
        } else {
            format!(
                "2020-01-01T00:00:00.000000+00:00\tcreated\n2020-01-01T00:00:01.000000+00:00\trunning\n2020-01-01T00:00:02.000000+00:00\t{status}\n"
            )
        };
        wd = wd
            .file(
                &format!("state/jobs/nightly/executions/{id}/status_history.tsv"),
                &history,
            )
            .file(
                &format!("state/jobs/nightly/executions/{id}/input.json"),
                "{}\n",
            );
    }
    wd = wd
        .file("state/jobs/nightly/executions/last_execution.txt", "4")
        // What a crash in the middle of deleting leaves behind.
        .file(
            "state/jobs/nightly/executions/.removed-0/logs/main.txt",
            "old",
        );
    let daemon = wd.start();
    // The queued run is run (and is then the newest); the old finished ones go.
    daemon.wait_status("nightly", "4", Success);
    wait_until("old executions to be deleted", TIMEOUT, || {
        wd.tree("state/jobs/nightly/executions")
            .iter()
            .all(|p| !p.starts_with(['1', '2', '3', '.']))
    });
    let listed: Vec<_> = daemon
        .executions("nightly")
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(listed, ["4"]);
}

#[test]
fn richer_inputs_are_checked_defaulted_and_secrets_never_stored() {
    let wd = Workdir::new()
        .job("deploy", &sh("echo \"$TARGET $LEVEL $TOKEN\""))
        .input_spec(
            "deploy",
            r#"{"TARGET": {"required": true, "description": "Where to"},
                "LEVEL": {"choices": ["low", "high"], "default": "low"},
                "TOKEN": {"secret": true, "x-unknown": "kept"}}"#,
        );
    let daemon = wd.start();

    let missing = daemon
        .post("/api/jobs/run?job_id=deploy")
        .error_message(400);
    assert_eq!(missing, "missing required input TARGET");
    let wrong = daemon
        .post("/api/jobs/run?job_id=deploy&input_value_TARGET=prod&input_value_LEVEL=max")
        .error_message(400);
    assert_eq!(wrong, "input LEVEL must be one of: low, high");
    assert!(
        !wd.join("state/jobs/deploy").exists(),
        "refused runs leave nothing"
    );

    let id = daemon.run("deploy", &[("TARGET", "prod"), ("TOKEN", "s3cr3t-value")]);
    let ended = daemon.wait_status("deploy", &id, Success);
    assert_eq!(
        daemon.log_of("deploy", &id),
        b"prod low s3cr3t-value\n",
        "the job got the secret"
    );
    assert_eq!(ended.input_values["TOKEN"], "********");
    assert_eq!(
        ended.input_values["LEVEL"], "low",
        "the default was applied"
    );
    // The secret is nowhere under state/ but in the job's own output.
    for path in wd.tree("state") {
        let full = wd.join("state").join(&path);
        if full.is_file() && !path.ends_with("logs/main.txt") {
            let text = fs::read_to_string(&full).unwrap_or_default();
            assert!(!text.contains("s3cr3t"), "{path} holds the secret");
        }
    }
    assert!(
        !daemon.log().contains("s3cr3t"),
        "the daemon's log holds the secret"
    );
    // The spec is served as written, unknown fields included.
    let job: Job = daemon.get_json("/api/jobs/get?job_id=deploy");
    assert_eq!(job.input_spec["TOKEN"]["x-unknown"], "kept");
}

#[test]
fn env_settings_reach_the_job_and_folders_set_defaults() {
    let wd = Workdir::new()
        .job("team/report", &sh("echo \"$REGION $MODE $NAME\""))
        .input_spec("team/report", r#"{"NAME": {}}"#)
        .file(
            "config/jobs/team/.settings.json",
            r#"{"env": {"REGION": "eu", "MODE": "folder"}, "timeout": "1h"}"#,
        )
        .file(
            "config/jobs/team/report.settings.json",
            r#"{"env": {"MODE": "job"}}"#,
        );
    let daemon = wd.start();
    let id = daemon.run("team/report", &[("NAME", "Ada")]);
    daemon.wait_status("team/report", &id, Success);
    assert_eq!(daemon.log_of("team/report", &id), b"eu job Ada\n");
    let job: Job = daemon.get_json(&format!("/api/jobs/get?job_id={}", encode("team/report")));
    assert_eq!(job.settings.timeout.as_deref(), Some("1h"));
    assert_eq!(job.settings.env.unwrap()["MODE"], "job");
    assert_eq!(job.settings.on_busy, None::<OnBusy>);
}

#[test]
fn a_broken_settings_file_blocks_only_its_jobs_and_edits_need_no_restart() {
    let wd = Workdir::new()
        .job("broken/a", &sh("echo a"))
        .job("fine", &sh("echo fine"))
        .job("blocker", &sh(&wait_gate("gate")))
        .gate("gate")
        .file("config/jobs/broken/.settings.json", r#"{"timout": "1h"}"#);
    let daemon = wd.daemon().args(["--workers", "1"]).start();

    let jobs = daemon.jobs();
    let broken = jobs.iter().find(|j| j.job_id == "broken/a").unwrap();
    let error = broken.error.as_deref().unwrap();
    assert!(
        error.contains("broken/.settings.json") && error.contains("timout"),
        "{error}"
    );
    assert_eq!(
        jobs.iter().find(|j| j.job_id == "fine").unwrap().error,
        None
    );
    let message = daemon
        .post("/api/jobs/run?job_id=broken/a")
        .error_message(409);
    assert!(message.contains("unknown field `timout`"), "{message}");
    assert!(!wd.join("state/jobs/broken").exists());
    let fine = daemon.run("fine", &[]);
    daemon.wait_status("fine", &fine, Success);

    // Fixed while the daemon runs: the next run goes.
    fs::write(
        wd.join("config/jobs/broken/.settings.json"),
        r#"{"timeout": "1h"}"#,
    )
    .unwrap();
    let id = daemon.run("broken/a", &[]);
    daemon.wait_status("broken/a", &id, Success);

    // Broken again while a run waits in the queue: that run fails to start, saying why.
    let blocking = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocking, Running);
    let queued = daemon.run("broken/a", &[]);
    fs::write(wd.join("config/jobs/broken/.settings.json"), "{").unwrap();
    wd.open_gate("gate");
    let ended = daemon.wait_status("broken/a", &queued, Failure);
    assert_eq!(statuses(&ended), [Created, Failure]);
    let message = ended.result.unwrap().message;
    assert!(
        message.starts_with("cannot start: broken/.settings.json"),
        "{message}"
    );
}

#[test]
fn timeouts_and_limits_are_read_per_run() {
    let wd = Workdir::new().job("sleepy", &sh("sleep 5"));
    let daemon = wd.start();
    // Set after the daemon started: the next run times out.
    fs::write(
        wd.join("config/jobs/sleepy.settings.json"),
        r#"{"timeout": "100ms", "stop_grace": "1s"}"#,
    )
    .unwrap();
    let id = daemon.run("sleepy", &[]);
    let ended = wait_for("the run to time out", TIMEOUT, || {
        Some(daemon.execution("sleepy", &id)).filter(|e| e.status.is_terminal())
    });
    assert_eq!(ended.status, Failure);
    assert!(ended.timed_out);
}
