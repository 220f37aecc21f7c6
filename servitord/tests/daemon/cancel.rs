//! Cancelling runs: running ones lose their whole process group, queued ones never
//! start, finished or unknown ones are refused.

use servitor_shared::Event;
use servitor_shared::ExecutionStatus::{Cancelled, Created, Running, Success};

use crate::support::{TIMEOUT, Workdir, is_alive, job_processes, wait_for, wait_until};
use crate::{sh, statuses, wait_gate};

/// A job whose child ignores SIGINT and would outlive it.
const STUBBORN_CHILD: &str = r#"sh -c 'trap "" INT; echo ready > "$SERVITOR_ROOT/grandchild.ready"; exec sleep 1000' &
echo $! > "$SERVITOR_ROOT/grandchild.pid"
echo started
wait"#;

fn cancel(daemon: &crate::support::Daemon, job: &str, id: &str) -> crate::support::Response {
    daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id={job}&execution_id={id}"
    ))
}

#[test]
fn cancel_stops_the_whole_process_group_after_the_grace_period() {
    let wd = Workdir::new()
        .job("stubborn-child", &sh(STUBBORN_CHILD))
        .job(
            "ignores-sigint",
            &sh(&format!("trap '' INT\necho started\n{}", wait_gate("gate"))),
        )
        .gate("gate");
    let daemon = wd
        .daemon()
        .args(["--stop-grace", "1s", "--workers", "4"])
        .start();

    let child_run = daemon.run("stubborn-child", &[]);
    let stubborn_run = daemon.run("ignores-sigint", &[]);
    daemon.wait_status("stubborn-child", &child_run, Running);
    daemon.wait_status("ignores-sigint", &stubborn_run, Running);
    wait_until("the grandchild to ignore SIGINT", TIMEOUT, || {
        wd.join("grandchild.ready").exists()
    });
    let grandchild: i32 = wait_for("the grandchild's pid", TIMEOUT, || {
        std::fs::read_to_string(wd.join("grandchild.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    assert!(is_alive(grandchild));
    let log = wd.join(format!(
        "state/jobs/ignores-sigint/executions/{stubborn_run}/logs/main.txt"
    ));
    wait_until("the SIGINT trap to be set", TIMEOUT, || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("started"))
    });

    for (job, id) in [
        ("stubborn-child", &child_run),
        ("ignores-sigint", &stubborn_run),
    ] {
        let answer = cancel(&daemon, job, id);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.text(), r#"{"status":"success"}"#);
    }

    // The job itself stopped on SIGINT; its child was killed after the grace period.
    let ended = daemon.wait_status("stubborn-child", &child_run, Cancelled);
    assert_eq!(statuses(&ended), [Created, Running, Cancelled]);
    let result = ended.result.expect("a result");
    assert_eq!(result.message, "cancelled: stopped by SIGINT");
    assert_eq!(result.exit_code, -2);
    wait_until("the grandchild to be gone", TIMEOUT, || {
        !is_alive(grandchild)
    });

    // A job ignoring SIGINT is killed after the grace period.
    let ended = daemon.wait_status("ignores-sigint", &stubborn_run, Cancelled);
    let result = ended.result.expect("a result");
    assert_eq!(result.exit_code, -9);
    assert_eq!(result.message, "cancelled: killed by SIGKILL after 1s");
    assert_eq!(job_processes(wd.path()), Vec::<i32>::new());
}

#[test]
fn cancel_is_announced_before_the_cancelled_status() {
    let wd = Workdir::new()
        .job("wait", &sh(&wait_gate("gate")))
        .gate("gate");
    let daemon = wd.start();
    let mut events = daemon.stream("/api/events");
    let id = daemon.run("wait", &[]);
    daemon.wait_status("wait", &id, Running);
    assert_eq!(cancel(&daemon, "wait", &id).status, 200);

    let mut after_running = Vec::new();
    loop {
        let event = events.next_event(TIMEOUT);
        let done = matches!(
            event,
            Event::JobExecutionStatusChanged {
                status: Cancelled,
                ..
            }
        );
        after_running.push(event);
        if done {
            break;
        }
    }
    let requested = Event::JobExecutionCancellationRequested {
        job_id: "wait".into(),
        execution_id: id.clone(),
    };
    let at = after_running
        .iter()
        .position(|e| *e == requested)
        .expect("the cancel request was announced");
    assert_eq!(at, after_running.len() - 2, "{after_running:?}");
}

#[test]
fn cancelling_a_queued_run_ends_it_without_starting_it() {
    let wd = Workdir::new()
        .job("blocker", &sh(&wait_gate("gate")))
        .job(
            "marker",
            &sh("touch \"$SERVITOR_ROOT/marker-$SERVITOR_JOB_EXECUTION\""),
        )
        .gate("gate");
    let daemon = wd.daemon().args(["--workers", "1"]).start();
    let blocker = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocker, Running);
    let queued = daemon.run("marker", &[]);
    assert_eq!(daemon.execution("marker", &queued).status, Created);

    let answer = cancel(&daemon, "marker", &queued);
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Ended at once, without a `running` entry.
    let ended = daemon.execution("marker", &queued);
    assert_eq!(statuses(&ended), [Created, Cancelled]);
    let result = ended.result.expect("a result");
    assert_eq!(result.exit_code, -1);
    assert_eq!(result.message, "cancelled before it started");
    // Its log is empty, and following it does not wait.
    assert_eq!(daemon.log_of("marker", &queued), b"");

    let next = daemon.run("marker", &[]);
    wd.open_gate("gate");
    daemon.wait_status("blocker", &blocker, Success);
    daemon.wait_status("marker", &next, Success);
    assert!(!wd.join(format!("marker-{queued}")).exists());
    assert!(wd.join(format!("marker-{next}")).exists());
    assert_eq!(
        statuses(&daemon.execution("marker", &queued)),
        [Created, Cancelled]
    );
    let history = wd.read(&format!(
        "state/jobs/marker/executions/{queued}/status_history.tsv"
    ));
    let words: Vec<_> = history
        .lines()
        .map(|line| line.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(words, ["created", "cancelled"]);
}

#[test]
fn cancelling_a_finished_or_unknown_run_is_refused() {
    let wd = Workdir::new().job("hello", &sh("echo hi"));
    let daemon = wd.start();
    let id = daemon.run("hello", &[]);
    daemon.wait_status("hello", &id, Success);
    let history = wd.read("state/jobs/hello/executions/1/status_history.tsv");

    let message = cancel(&daemon, "hello", &id).error_message(409);
    assert!(message.contains("success"), "{message}");
    assert_eq!(daemon.execution("hello", &id).status, Success);
    assert_eq!(
        wd.read("state/jobs/hello/executions/1/status_history.tsv"),
        history
    );

    let message = cancel(&daemon, "hello", "2").error_message(404);
    assert!(message.contains("unknown execution"), "{message}");
    let message = cancel(&daemon, "nope", "1").error_message(404);
    assert!(message.contains("unknown job"), "{message}");
}
