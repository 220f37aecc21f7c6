//! The security posture: private folders, who asked for what (SO_PEERCRED), and the
//! request limits that keep hostile clients cheap.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use servitor_shared::ExecutionStatus::{Cancelled, Running};

use crate::sh;
use crate::support::{Connection, TIMEOUT, Workdir};

#[test]
fn folders_others_could_write_are_refused_at_start() {
    let wd = Workdir::new().dir("state");
    fs::set_permissions(wd.join("state"), fs::Permissions::from_mode(0o777)).unwrap();
    let refused = wd.daemon().run_to_exit(TIMEOUT);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("state is writable by every user (mode 777)"),
        "{stderr}"
    );
    assert!(!wd.join("sockets").exists(), "nothing was served");

    let wd = Workdir::new().dir("sockets");
    rustix::fs::chown(
        wd.join("sockets"),
        Some(rustix::fs::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let refused = wd.daemon().run_to_exit(TIMEOUT);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("sockets is owned by uid 65534"), "{stderr}");
}

#[test]
fn runs_and_cancels_record_who_asked() {
    let wd = Workdir::new().job("long", &sh("exec sleep 60"));
    let daemon = wd.start();
    let id = daemon.run("long", &[]);
    daemon.wait_status("long", &id, Running);
    let answer = daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=long&execution_id={id}"
    ));
    assert_eq!(answer.status, 200);
    let ended = daemon.wait_status("long", &id, Cancelled);

    // This test process is the client: the kernel vouches for its ids.
    let me = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
        Some(std::process::id() as i32),
    );
    let triggered = ended.triggered_by.expect("who ran it");
    assert_eq!((triggered.uid, triggered.gid, triggered.pid), me);
    let cancelled = ended.cancelled_by.expect("who cancelled it");
    assert_eq!((cancelled.uid, cancelled.gid, cancelled.pid), me);
    // One line per request in the job's audit trail, which survives a restart, and
    // the line servitord itself (same user here) writes before it starts a run.
    let trail = wd.read("state/jobs/long/audit.tsv");
    let (uid, gid, pid) = (me.0, me.1, me.2.unwrap());
    let daemon_pid = daemon.pid();
    assert_eq!(
        trail,
        format!(
            "{id}\trun\t{uid}\t{gid}\t{pid}\n\
             {id}\tstart\t{uid}\t{gid}\t{daemon_pid}\n\
             {id}\tcancel\t{uid}\t{gid}\t{pid}\n"
        )
    );
    let mut daemon = daemon;
    daemon.terminate();
    daemon.start_again();
    let reloaded = daemon.execution("long", &id);
    assert_eq!(
        (reloaded.triggered_by, reloaded.cancelled_by),
        (Some(triggered), Some(cancelled))
    );
    let log = daemon.log();
    assert!(
        log.contains("run queued") && log.contains(&format!("pid: Some({})", me.2.unwrap())),
        "{log}"
    );
}

#[test]
fn oversized_requests_are_refused_and_the_daemon_stays_up() {
    let wd = Workdir::new().job("hello", &sh("echo hi"));
    let daemon = wd.start();

    let mut connection = daemon.connect();
    let big_header = "x".repeat(1024 * 1024);
    connection
        .send("GET", "/api/jobs/get_list", &[("X-Big", &big_header)], b"")
        .ok();
    let answer = connection.response(false);
    assert!(
        answer.as_ref().map_or(true, |a| a.status == 431),
        "a 1 MB header: {answer:?}"
    );

    let long_query = format!("/api/jobs/get?job_id={}", "a".repeat(100 * 1024));
    let answer = Connection::open(&daemon.socket())
        .unwrap()
        .request("GET", &long_query);
    assert!(
        answer.as_ref().map_or(true, |a| a.status == 414),
        "a 100 KB query: {answer:?}"
    );

    let many: String = (0..200).map(|n| format!("X-H{n}: v\r\n")).collect();
    let mut stream = UnixStream::connect(daemon.socket()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(format!("GET /api/jobs/get_list HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "200 headers: {reply}"
    );

    // Still serving.
    assert_eq!(daemon.jobs().len(), 1);
}

#[test]
fn a_client_trickling_its_headers_is_dropped_and_blocks_nobody() {
    let wd = Workdir::new().job("hello", &sh("echo hi"));
    let daemon = wd.start();
    let mut slow = UnixStream::connect(daemon.socket()).unwrap();
    slow.write_all(b"GET /api/jobs/get_list HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();

    // Others are served meanwhile.
    let id = daemon.run("hello", &[]);
    daemon.wait_ended("hello", &id);

    // The daemon cuts the trickler off once its header timeout (10 s) is over; without
    // one, this read would give up with an error after 60 s instead.
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(closed.is_ok(), "still open: {closed:?}");
    assert!(!String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"));
}

/// Sends raw bytes and reads until the daemon closes the connection.
fn exchange(daemon: &crate::support::Daemon, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(daemon.socket()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn http_1_0_pipelining_and_ten_thousand_parameters() {
    let wd = Workdir::new().job("hello", &sh("echo hi"));
    let daemon = wd.start();

    // HTTP/1.0: answered, then closed (no keep-alive unless asked).
    let old = exchange(&daemon, b"GET /api/jobs/get_list HTTP/1.0\r\n\r\n");
    assert!(old.starts_with("HTTP/1.0 200"), "{old}");
    assert!(
        old.ends_with(
            r#"[{"job_id":"hello","input_spec":{},"last_execution":null,"next_run":null}]"#
        ),
        "{old}"
    );

    // Three requests in one write: three answers, in order.
    let pipelined = exchange(
        &daemon,
        b"GET /api/jobs/get?job_id=hello HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /api/jobs/get?job_id=nope HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /api/jobs/get_list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let statuses: Vec<&str> = pipelined
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &pipelined[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "200"], "{pipelined}");

    // 10 000 parameters fit in the head, but only 1000 are read.
    let many = "a=1&".repeat(10_000);
    let refused = daemon.get(&format!("/api/jobs/get?{many}job_id=hello"));
    assert_eq!(refused.status, 400);
    assert!(
        refused.text().contains("at most 1000 parameters"),
        "{}",
        refused.text()
    );

    // Garbage request lines: a clean 4xx or a closed connection, and the daemon stays.
    for garbage in [
        &b"\x00\x01\x02 / HTTP/1.1\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    ] {
        let reply = exchange(&daemon, garbage);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{garbage:?}: {reply}"
        );
    }
    assert_eq!(daemon.jobs().len(), 1);
}
