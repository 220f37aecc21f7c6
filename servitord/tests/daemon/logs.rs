//! Following a run's log: bytes as they are written, to the end of the run.

use servitor_shared::ExecutionStatus::{Created, Running, Success};

use crate::support::{Connection, TIMEOUT, Workdir};
use crate::{sh, wait_gate};

fn log_target(job: &str, id: &str) -> String {
    format!("/api/jobs/executions/logs/get?job_id={job}&execution_id={id}")
}

#[test]
fn following_a_running_log_streams_bytes_as_they_are_written() {
    let script = sh(&format!(
        "echo first\n{}\necho second >&2\nprintf 'no newline at the end'",
        wait_gate("gate")
    ));
    let wd = Workdir::new().job("talk", &script).gate("gate");
    let daemon = wd.start();
    let id = daemon.run("talk", &[]);

    let mut log = daemon.stream(&log_target("talk", &id));
    assert_eq!(
        log.head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(log.head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(log.head.header("content-length"), None);

    log.read_until("first\n", TIMEOUT);
    // The run is still going: these bytes were streamed, not read after the end.
    assert_eq!(daemon.execution("talk", &id).status, Running);
    assert!(!log.has_ended());

    wd.open_gate("gate");
    let all = log.read_to_end(TIMEOUT);
    assert_eq!(
        String::from_utf8(all.clone()).unwrap(),
        "first\nsecond\nno newline at the end"
    );
    // The answer ended because the run had ended.
    assert_eq!(daemon.execution("talk", &id).status, Success);
    let on_disk =
        std::fs::read(wd.join(format!("state/jobs/talk/executions/{id}/logs/main.txt"))).unwrap();
    assert_eq!(all, on_disk);
}

#[test]
fn following_a_queued_run_waits_for_it_to_start() {
    let wd = Workdir::new()
        .job("blocker", &sh(&wait_gate("gate")))
        .job("later", &sh("echo later output"))
        .gate("gate");
    let daemon = wd.daemon().args(["--workers", "1"]).start();
    let blocker = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocker, Running);
    let later = daemon.run("later", &[]);

    let mut connection = Connection::open(&daemon.socket()).unwrap();
    connection
        .send("GET", &log_target("later", &later), &[], b"")
        .unwrap();
    let mut log = connection.into_stream().unwrap();
    assert_eq!(log.head.status, 200);
    assert_eq!(daemon.execution("later", &later).status, Created);

    wd.open_gate("gate");
    assert_eq!(log.read_to_end(TIMEOUT), b"later output\n");
    assert_eq!(daemon.execution("later", &later).status, Success);
}

#[test]
fn a_finished_log_is_sent_whole_over_many_chunks() {
    // About 490 KB: more than one read of the daemon's.
    let wd = Workdir::new().job("big", &sh("seq 1 80000\necho tail >&2"));
    let daemon = wd.start();
    let id = daemon.run("big", &[]);
    daemon.wait_status("big", &id, Success);

    let mut log = daemon.stream(&log_target("big", &id));
    let mut chunks = 0;
    while log.next_chunk(TIMEOUT).is_some() {
        chunks += 1;
    }
    let expected: String = (1..=80000).map(|n| format!("{n}\n")).collect::<String>() + "tail\n";
    assert_eq!(log.received.len(), expected.len());
    assert!(log.received == expected.as_bytes(), "the log differs");
    assert!(chunks > 1, "{chunks} chunks");
}

#[test]
fn a_follower_leaving_does_not_stall_the_others() {
    let script = sh(&format!(
        "echo one\n{}\necho two\n{}\necho three",
        wait_gate("gate1"),
        wait_gate("gate2")
    ));
    let wd = Workdir::new()
        .job("steps", &script)
        .gate("gate1")
        .gate("gate2");
    let daemon = wd.start();
    let id = daemon.run("steps", &[]);
    daemon.wait_status("steps", &id, Running);

    let mut leaving = daemon.stream(&log_target("steps", &id));
    let mut staying = daemon.stream(&log_target("steps", &id));
    leaving.read_until("one\n", TIMEOUT);
    staying.read_until("one\n", TIMEOUT);
    drop(leaving);

    wd.open_gate("gate1");
    staying.read_until("two\n", TIMEOUT);
    assert_eq!(daemon.execution("steps", &id).status, Running);
    // A newcomer gets everything so far, then follows too.
    let mut late = daemon.stream(&log_target("steps", &id));
    late.read_until("one\ntwo\n", TIMEOUT);

    wd.open_gate("gate2");
    assert_eq!(staying.read_to_end(TIMEOUT), b"one\ntwo\nthree\n");
    assert_eq!(late.read_to_end(TIMEOUT), b"one\ntwo\nthree\n");
}

#[test]
fn a_follow_cut_short_by_a_stopping_daemon_does_not_look_complete() {
    let script = sh(&format!("echo one\n{}\necho two", wait_gate("gate")));
    let wd = Workdir::new().job("steps", &script).gate("gate");
    let mut daemon = wd.start();
    let id = daemon.run("steps", &[]);
    let mut log = daemon.stream(&log_target("steps", &id));
    log.read_until("one\n", TIMEOUT);

    daemon.signal(rustix::process::Signal::TERM);
    // The run goes on, so the answer must not end as if the log were whole.
    match log.try_next_chunk(TIMEOUT) {
        Ok(None) => panic!("the log answer ended cleanly while the run was still going"),
        Ok(Some(chunk)) => panic!("unexpected bytes {chunk:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
    wd.open_gate("gate");
    assert!(daemon.wait_exit(TIMEOUT).success());
}
