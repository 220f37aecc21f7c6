//! Restart after a crash (SIGKILL): what the previous daemon left unfinished is
//! queued again, re-adopted, or ended with a message.

use servitor_shared::ExecutionStatus::{Cancelled, Created, Failure, Running, Success};

use crate::support::{TIMEOUT, Workdir, job_processes, kill_job_processes, wait_for, wait_until};
use crate::{sh, statuses, wait_gate};

const RECORD: &str = "echo \"$SERVITOR_JOB $SERVITOR_JOB_EXECUTION\" >> \"$SERVITOR_ROOT/order\"";

#[test]
fn runs_left_created_run_again_in_order_and_a_vanished_run_fails() {
    let wd = Workdir::new()
        .job("blocker", &sh(&wait_gate("gate")))
        .job("record", &sh(RECORD))
        .job("other", &sh(RECORD))
        .gate("gate");
    let mut daemon = wd.daemon().args(["--workers", "1"]).start();
    let blocker = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocker, Running);
    for job in ["record", "other", "record"] {
        daemon.run(job, &[]);
    }

    daemon.kill();
    // The blocked run's process goes too, as after a reboot.
    assert!(!job_processes(wd.path()).is_empty());
    kill_job_processes(wd.path());
    wait_until("the blocked job to be gone", TIMEOUT, || {
        job_processes(wd.path()).is_empty()
    });
    assert_eq!(
        wd.read("state/jobs/record/executions/2/status_history.tsv")
            .lines()
            .count(),
        1
    );

    daemon.start_again();
    // New runs go after the recovered ones.
    let newest = daemon.run("record", &[]);
    assert_eq!(newest, "3");
    daemon.wait_status("record", &newest, Success);
    assert_eq!(wd.read("order"), "record 1\nother 1\nrecord 2\nrecord 3\n");
    for (job, id) in [("record", "1"), ("other", "1"), ("record", "2")] {
        let execution = daemon.execution(job, id);
        assert_eq!(
            statuses(&execution),
            [Created, Running, Success],
            "{job} #{id}"
        );
    }

    let vanished = daemon.wait_status("blocker", &blocker, Failure);
    assert_eq!(statuses(&vanished), [Created, Running, Failure]);
    let result = vanished.result.expect("a result");
    assert_eq!(result.exit_code, -1);
    assert!(result.message.contains("restarted"), "{}", result.message);
    assert!(result.message.contains("gone"), "{}", result.message);
}

#[test]
fn a_run_whose_process_survived_is_adopted_followed_and_cancellable() {
    let wd = Workdir::new()
        .job(
            "survivor",
            &sh(&format!("echo before\n{}\necho after", wait_gate("gate"))),
        )
        .job(
            "sleeper",
            &sh(&format!("echo sleeping\n{}", wait_gate("gate2"))),
        )
        .gate("gate")
        .gate("gate2");
    let mut daemon = wd
        .daemon()
        .args(["--workers", "2", "--stop-grace", "1s"])
        .start();
    let survivor = daemon.run("survivor", &[]);
    let sleeper = daemon.run("sleeper", &[]);
    for (job, id, line) in [
        ("survivor", &survivor, "before"),
        ("sleeper", &sleeper, "sleeping"),
    ] {
        let log = wd.join(format!("state/jobs/{job}/executions/{id}/logs/main.txt"));
        wait_until(&format!("{job} to print"), TIMEOUT, || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains(line))
        });
    }

    daemon.kill();
    let orphans = job_processes(wd.path());
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    daemon.start_again();
    wait_until("both runs to be re-adopted", TIMEOUT, || {
        daemon.log().matches("re-adopting").count() == 2
    });
    // Caught before `running` was saved, a run is re-adopted first, then saved so.
    daemon.wait_status("survivor", &survivor, Running);
    daemon.wait_status("sleeper", &sleeper, Running);

    // The log stays followable.
    let mut log = daemon.stream(&format!(
        "/api/jobs/executions/logs/get?job_id=survivor&execution_id={survivor}"
    ));
    log.read_until("before\n", TIMEOUT);

    // Cancel works on an adopted run (retried while recovery is still finishing).
    let answer = wait_for("the cancel to be accepted", TIMEOUT, || {
        let answer = daemon.post(&format!(
            "/api/jobs/executions/cancel?job_id=sleeper&execution_id={sleeper}"
        ));
        (answer.status != 503).then_some(answer)
    });
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cancelled = daemon.wait_status("sleeper", &sleeper, Cancelled);
    assert_eq!(statuses(&cancelled), [Created, Running, Cancelled]);
    assert!(
        cancelled.result.unwrap().message.starts_with("cancelled"),
        "{}",
        daemon.log()
    );
    wait_until("the sleeper to be gone", TIMEOUT, || {
        job_processes(wd.path()).len() == 1
    });

    // The survivor ends on its own; its exit code is out of reach.
    wd.open_gate("gate");
    assert_eq!(log.read_to_end(TIMEOUT), b"before\nafter\n");
    let ended = daemon.wait_status("survivor", &survivor, Failure);
    assert_eq!(statuses(&ended), [Created, Running, Failure]);
    let result = ended.result.expect("a result");
    assert_eq!(result.exit_code, -1);
    assert!(
        result.message.contains("exit code could not be observed"),
        "{}",
        result.message
    );
    assert!(job_processes(wd.path()).is_empty());
}

#[test]
fn a_run_requested_while_the_daemon_recovers_runs_once() {
    // Recovery reads every job's history while the API already answers. A long history
    // (its job sorts first) keeps it busy as a run of `record` is created: the run must
    // be queued once, by its request, not once more as a leftover of a previous daemon.
    let wd = Workdir::new()
        .job("a-long-history", &sh("true"))
        .job("record", &sh(RECORD));
    let mut history = "2024-03-17T00:59:08.123456+00:00\tcreated\n".repeat(200_000);
    history.push_str("2024-03-17T00:59:09.123456+00:00\tsuccess\n");
    let wd = wd
        .file(
            "state/jobs/a-long-history/executions/1/status_history.tsv",
            &history,
        )
        .file("state/jobs/a-long-history/executions/1/result.tsv", "0\t\n")
        .file(
            "state/jobs/a-long-history/executions/last_execution.txt",
            "1",
        );

    let daemon = wd.daemon().args(["--workers", "1"]).start();
    let first = daemon.run("record", &[]);
    daemon.wait_status("record", &first, Success);
    // One worker takes runs in order: once the second is done, any duplicate of the
    // first would have run.
    let second = daemon.run("record", &[]);
    daemon.wait_status("record", &second, Success);
    assert_eq!(wd.read("order"), "record 1\nrecord 2\n");
    assert_eq!(
        statuses(&daemon.execution("record", &first)),
        [Created, Running, Success]
    );
}

/// A run servitord was starting when it crashed is never run again, whoever asked
/// for it. Here the crash is made to come just before `running` was saved, and the run
/// has no client's credentials on record (a run through a proxy, or one the daemon
/// triggers itself): what tells it may have run is the start servitord notes itself.
#[test]
fn a_run_caught_starting_is_not_run_twice_without_a_recorded_client() {
    let wd = Workdir::new()
        .job("once", &sh(&format!("{RECORD}\n{}", wait_gate("gate"))))
        .gate("gate");
    let mut daemon = wd.start();
    let id = daemon.run("once", &[]);
    daemon.wait_status("once", &id, Running);
    wd.wait_lines("order", 1);
    daemon.kill();
    kill_job_processes(wd.path());
    wait_until("the job to be gone", TIMEOUT, || {
        job_processes(wd.path()).is_empty()
    });
    let history = "state/jobs/once/executions/1/status_history.tsv";
    let created: String = wd
        .read(history)
        .lines()
        .take(1)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(wd.join(history), created).unwrap();
    let audit = "state/jobs/once/audit.tsv";
    let without_client: String = wd
        .read(audit)
        .lines()
        .filter(|line| line.split('\t').nth(1) != Some("run"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(wd.join(audit), without_client).unwrap();

    daemon.start_again();
    let ended = daemon.wait_ended("once", &id);
    assert_eq!(statuses(&ended), [Created, Failure]);
    let result = ended.result.expect("a result");
    assert!(
        result.message.contains("may have run"),
        "{}",
        result.message
    );
    assert_eq!(wd.read("order"), "once 1\n", "it ran again");
    assert_eq!(ended.triggered_by, None);
}
