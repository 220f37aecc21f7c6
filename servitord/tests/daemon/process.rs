//! The daemon as a process: one per working directory, its socket, and stopping.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::process::Signal;
use servitor_shared::ExecutionStatus::{Cancelled, Created, Running, Success};

use crate::support::{TIMEOUT, Workdir, WorkdirGivenAs, wait_until};
use crate::{sh, statuses, wait_gate};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_second_daemon_on_the_same_workdir_refuses_to_start() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let daemon = wd.start();
    let socket_before = std::fs::metadata(daemon.socket()).unwrap();

    let second = wd.daemon().run_to_exit(TIMEOUT);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("pid {}", daemon.pid())),
        "the refusal does not name the first daemon: {stderr}"
    );
    assert!(stderr.contains("servitord.lock"), "{stderr}");

    // The first one still serves, on its own socket.
    let socket_after = std::fs::metadata(daemon.socket()).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&socket_before),
        std::os::unix::fs::MetadataExt::ino(&socket_after)
    );
    assert_eq!(daemon.jobs().len(), 1);
    assert_eq!(
        wd.read("state/servitord.lock").trim(),
        daemon.pid().to_string()
    );
}

#[test]
fn the_socket_has_mode_770_and_a_stale_one_is_replaced() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let mut daemon = wd.start();
    let socket = daemon.socket();
    assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&socket), 0o770);
    assert_eq!(mode(&wd.join("sockets")), 0o770);

    daemon.kill();
    // A crash leaves the socket file behind, with nobody listening.
    assert!(socket.exists());
    let refused = UnixStream::connect(&socket).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    daemon.start_again();
    assert_eq!(daemon.jobs().len(), 1);
    assert_eq!(mode(&socket), 0o770);
    assert_eq!(mode(&wd.join("sockets")), 0o770);
    assert_eq!(
        wd.read("state/servitord.lock").trim(),
        daemon.pid().to_string()
    );
    // No temporary socket is left beside it.
    assert_eq!(wd.tree("sockets"), ["servitor.sock"]);
}

#[test]
fn sigterm_closes_the_socket_at_once_lets_running_jobs_finish_and_keeps_the_queue() {
    let wd = Workdir::new()
        .job("blocker", &sh(&format!("{}\necho done", wait_gate("gate"))))
        .job("queued", &sh("echo ran"))
        .gate("gate");
    let mut daemon = wd.daemon().args(["--workers", "1"]).start();
    let blocker = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocker, Running);
    let queued = daemon.run("queued", &[]);
    let mut events = daemon.stream("/api/events");
    let socket = daemon.socket();

    daemon.signal(Signal::TERM);
    wait_until("the socket to be removed", TIMEOUT, || !socket.exists());
    let refused = UnixStream::connect(&socket).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound);
    // Open streams end too.
    let ended = match events.try_next_chunk(TIMEOUT) {
        Ok(None) => true,
        Ok(Some(chunk)) => panic!("unexpected event {:?}", String::from_utf8_lossy(&chunk)),
        Err(e) => e.kind() == ErrorKind::UnexpectedEof,
    };
    assert!(ended, "the event stream did not end");

    // Another signal does not cut the wait short.
    daemon.signal(Signal::TERM);
    wait_until("the daemon to say it still waits", TIMEOUT, || {
        daemon.log().contains("still waiting")
    });
    assert!(daemon.is_running(), "servitord left before its job ended");

    wd.open_gate("gate");
    let status = daemon.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}");
    assert!(daemon.log().contains("stopped"));
    let history = wd.read(&format!(
        "state/jobs/blocker/executions/{blocker}/status_history.tsv"
    ));
    assert!(history.ends_with("\tsuccess\n"), "{history}");
    assert_eq!(
        wd.read(&format!(
            "state/jobs/blocker/executions/{blocker}/logs/main.txt"
        )),
        "done\n"
    );
    let history = wd.read(&format!(
        "state/jobs/queued/executions/{queued}/status_history.tsv"
    ));
    assert!(history.ends_with("\tcreated\n"), "{history}");
    assert_eq!(history.lines().count(), 1);

    // The next start runs what was queued.
    daemon.start_again();
    let ran = daemon.wait_status("queued", &queued, Success);
    assert_eq!(statuses(&ran), [Created, Running, Success]);
    assert_eq!(daemon.log_of("queued", &queued), b"ran\n");
}

#[test]
fn sigint_stops_an_idle_daemon_with_exit_code_0() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let mut daemon = wd.start();
    let socket = daemon.socket();
    daemon.signal(Signal::INT);
    let status = daemon.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}");
    assert!(!socket.exists());
}

#[test]
fn sigterm_completes_despite_clients_that_hang_on() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let mut daemon = wd.start();
    let mut idle = daemon.connect();
    assert_eq!(
        idle.request("GET", "/api/jobs/get_list").unwrap().status,
        200
    );
    let mut stuck = daemon.connect();
    stuck
        .send_raw(b"GET /api/jobs/get_list HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut events = daemon.stream("/api/events");

    daemon.signal(Signal::TERM);
    // Connections get a few seconds to close, then are left behind.
    let status = daemon.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}");
    assert!(idle.is_closed_by_peer(TIMEOUT));
    assert!(matches!(events.try_next_chunk(TIMEOUT), Ok(None) | Err(_)));
    assert!(!daemon.socket().exists());
}

#[test]
fn settings_come_from_flags_or_the_environment() {
    let stubborn = sh(&format!("trap '' INT\necho started\n{}", wait_gate("gate")));
    let wd = Workdir::new()
        .job("stubborn", &stubborn)
        .file("ui/index.html", "<html>")
        .gate("gate");

    let daemon = wd
        .daemon()
        .workdir_given_as(WorkdirGivenAs::Env)
        .env("SERVITOR_WORKERS", "1")
        .env("SERVITOR_STOP_GRACE", "250ms")
        .env("SERVITOR_UI_ROOT", wd.join("ui"))
        .start();
    assert!(daemon.log().contains(" workers=1 "), "{}", daemon.log());
    assert_eq!(daemon.get("/").status, 200);
    let id = daemon.run("stubborn", &[]);
    let log = wd.join(format!("state/jobs/stubborn/executions/{id}/logs/main.txt"));
    wait_until("the SIGINT trap to be set", TIMEOUT, || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("started"))
    });
    let cancel = format!("/api/jobs/executions/cancel?job_id=stubborn&execution_id={id}");
    assert_eq!(daemon.post(&cancel).status, 200);
    let cancelled = daemon.wait_status("stubborn", &id, Cancelled);
    assert_eq!(
        cancelled.result.unwrap().message,
        "cancelled: killed by SIGKILL after 250ms"
    );
    drop(daemon);

    // Started in the working directory; an empty UI root means no UI; the old tool's
    // pool size.
    let daemon = wd
        .daemon()
        .workdir_given_as(WorkdirGivenAs::CurrentDir)
        .env("SERVITOR_UI_ROOT", "")
        .start();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let ready = format!("workdir={} ", wd.path().display());
    assert!(daemon.log().contains(&ready), "{}", daemon.log());
    assert!(
        daemon.log().contains(&format!(" workers={workers} ")),
        "{}",
        daemon.log()
    );
    daemon.get("/").error_message(404);
    drop(daemon);

    // Flags win over the environment.
    let daemon = wd
        .daemon()
        .args(["--workers", "3"])
        .env("SERVITOR_WORKERS", "1")
        .start();
    assert!(daemon.log().contains(" workers=3 "), "{}", daemon.log());
}

#[test]
fn invalid_settings_are_refused_at_start() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let missing = wd.join("missing");
    for (builder, expected) in [
        (wd.daemon().args(["--workers", "0"]), "--workers"),
        (wd.daemon().env("SERVITOR_WORKERS", "many"), "many"),
        (wd.daemon().args(["--stop-grace", "soon"]), "soon"),
        (crate::support::Daemon::builder(&missing), "cannot use"),
    ] {
        let output = builder.run_to_exit(TIMEOUT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    assert!(!missing.exists());
    assert!(!wd.join("state").exists());
    assert!(!wd.join("sockets").exists());
}
