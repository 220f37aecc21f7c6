//! Clients that misbehave: vanishing mid-stream, never reading, holding connections
//! open and idle.

use std::time::{Duration, Instant};

use servitor_shared::ExecutionStatus::Success;

use super::{
    DRAIN_TIMEOUT, FLOOD_LINE, FloodCheck, allowed_growth_kib, log_target, pattern, pattern_script,
    post_all, report_footprint, wait_all_ended,
};
use crate::support::{Connection, Daemon, TIMEOUT, Workdir, procfs, size_from_env, wait_until};
use crate::{sh, wait_gate};

/// Waits until the daemon counts no open log follower nor event stream.
fn wait_no_streams(daemon: &Daemon) {
    wait_until("the streams to be closed", TIMEOUT, || {
        daemon.metric("servitor_log_followers") == 0.0
            && daemon.metric("servitor_event_clients") == 0.0
    });
}

/// The quick runs the client tests go through while clients misbehave.
fn quick_runs(count: usize) -> Vec<(&'static str, String)> {
    (0..count)
        .map(|n| ("quick", format!("&input_value_TOKEN=q{n}")))
        .collect()
}

/// Checks quick runs ended well, with their logs.
fn check_quick_runs(
    daemon: &Daemon,
    runs: &[(&'static str, String)],
    tokens: &[(&'static str, String)],
) {
    let ended = wait_all_ended(daemon, runs, DRAIN_TIMEOUT);
    for ((job, id), (_, query)) in runs.iter().zip(tokens) {
        let token = query.trim_start_matches("&input_value_TOKEN=");
        let execution = &ended[&(*job, id.clone())];
        assert_eq!(execution.status, Success, "{execution:?}");
        assert_eq!(
            daemon.log_of(job, id),
            pattern(job, id.parse().unwrap(), token, 3).as_bytes(),
            "{job} #{id}"
        );
    }
}

fn client_test_jobs() -> Workdir {
    Workdir::new()
        .job("quick", &pattern_script(3, None, "0"))
        .input_spec("quick", r#"{"TOKEN": {}}"#)
        .job(
            "long",
            &sh(&format!(
                "yes 'long 0123456789' | head -c 1000000\n{}\necho end",
                wait_gate("gate")
            )),
        )
        .gate("gate")
}

/// Clients that vanish mid-stream (after a chunk of a log, after an event, right after
/// asking) cost nothing: runs go on, the others are served, and servitord gives back
/// their file descriptors and memory. `SERVITOR_FAULTS_VANISHING` (300) clients of each kind.
#[test]
fn clients_vanishing_mid_stream_block_nothing() {
    let count = size_from_env("SERVITOR_FAULTS_VANISHING", 300) as usize;
    let wd = client_test_jobs();
    let daemon = wd.start();
    let pid = daemon.pid();
    let long = daemon.run("long", &[]);
    let log = wd.join(format!("state/jobs/long/executions/{long}/logs/main.txt"));
    wait_until("the long run to write its megabyte", TIMEOUT, || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() == 1_000_000)
    });
    let baseline = procfs::settled_fds(pid);
    let rss_before = procfs::rss_kib(pid);
    let started = Instant::now();

    let plan = quick_runs(count);
    let runs = std::thread::scope(|scope| {
        let runs = scope.spawn(|| post_all(&daemon, &plan, 2));
        for n in 0..count {
            // After one chunk of the log.
            let mut follower = daemon.stream(&log_target("long", &long));
            follower.next_chunk(TIMEOUT).expect("a first chunk");
            drop(follower);
            // After one event.
            let mut events = daemon.stream("/api/events");
            if n % 10 == 0 {
                daemon.run("quick", &[("TOKEN", &format!("v{n}"))]);
                events.next_event(TIMEOUT);
            }
            drop(events);
            // Right after asking, before the answer.
            let mut connection = daemon.connect();
            connection
                .send("GET", &log_target("long", &long), &[], b"")
                .unwrap();
            drop(connection);
        }
        runs.join().expect("the poster panicked")
    });
    check_quick_runs(&daemon, &runs, &plan);
    let took = started.elapsed();

    // The run they followed is unharmed: a new follower gets it all.
    let mut follower = daemon.stream(&log_target("long", &long));
    follower.read_until("long 0123456789\n", TIMEOUT);
    wd.open_gate("gate");
    let all = follower.read_to_end(TIMEOUT);
    drop(follower);
    assert_eq!(all.len(), 1_000_000 + 4);
    assert!(all.ends_with(b"\nend\n"));
    wait_no_streams(&daemon);
    procfs::wait_fds_back(pid, &baseline);
    let report = format!(
        "vanishing clients: {count} log followers, {count} event clients and {count} requests gone before their answer, while {} runs went through, in {took:.1?}",
        runs.len()
    );
    report_footprint(
        &report,
        pid,
        baseline.len(),
        rss_before,
        runs.len() + count / 10,
    );
}

/// Clients that never read: an `/api/events` client and a follower of a flooding log.
/// Runs go on regardless, memory stays bounded, the stalled follower loses nothing,
/// and the stalled events client is dropped (it fell more than 4096 events behind) or
/// got everything. `SERVITOR_FAULTS_UNREAD_RUNS` (2000) runs go through meanwhile: enough
/// events for the stalled client to fall behind.
#[test]
fn clients_that_never_read_block_nothing() {
    let count = size_from_env("SERVITOR_FAULTS_UNREAD_RUNS", 2000) as usize;
    let flood_bytes: u64 = 50_000_000;
    let line = String::from_utf8(FLOOD_LINE.trim_ascii_end().to_vec()).unwrap();
    let wd = client_test_jobs().job(
        "flood",
        &sh(&format!("yes '{line}' | head -c {flood_bytes}")),
    );
    let daemon = wd.daemon().args(["--workers", "4"]).start();
    let pid = daemon.pid();
    let warm = daemon.run("quick", &[("TOKEN", "warm")]);
    daemon.wait_ended("quick", &warm);
    let peak_before = procfs::peak_rss_kib(pid);
    let started = Instant::now();

    let mut stalled_events = daemon.connect();
    stalled_events.send("GET", "/api/events", &[], b"").unwrap();
    // Subscribed before any run of the test, so it is owed every event that follows.
    wait_until("the events client to subscribe", TIMEOUT, || {
        daemon.metric("servitor_event_clients") == 1.0
    });
    let flood = daemon.run("flood", &[]);
    let mut stalled_log = daemon.connect();
    stalled_log
        .send("GET", &log_target("flood", &flood), &[], b"")
        .unwrap();

    let plan = quick_runs(count);
    let runs = post_all(&daemon, &plan, 4);
    check_quick_runs(&daemon, &runs, &plan);
    let flood_end = daemon.wait_ended("flood", &flood);
    assert_eq!(flood_end.status, Success, "{flood_end:?}");
    let took = started.elapsed();
    let peak_after = procfs::peak_rss_kib(pid);
    // Others are served meanwhile.
    assert_eq!(daemon.get("/api/health").status, 200);

    // The follower that never read gets every byte once it reads.
    let mut log = stalled_log.into_stream().expect("the log answer's head");
    assert_eq!(log.head.status, 200);
    let mut check = FloodCheck::new();
    while let Some(chunk) = log.next_chunk(TIMEOUT) {
        check.check(&chunk);
        log.received.clear();
    }
    assert_eq!(check.offset, flood_bytes);
    drop(log);

    // The events client that never read: dropped, or it has every event.
    let mut events = stalled_events
        .into_stream()
        .expect("the events answer's head");
    let mut received = 0usize;
    let mut dropped = false;
    loop {
        match events.try_next_chunk(Duration::from_secs(2)) {
            Ok(Some(chunk)) => {
                let line = String::from_utf8(chunk).expect("an event is UTF-8");
                assert!(
                    line.ends_with('\n') && line.matches('\n').count() == 1,
                    "{line:?}"
                );
                serde_json::from_str::<servitor_shared::Event>(&line).expect("an event");
                received += 1;
                events.received.clear();
            }
            Ok(None) => {
                dropped = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("the event stream failed: {e}"),
        }
    }
    // Created, running and ended for each quick run and the flood.
    let sent = 3 * (runs.len() + 1);
    assert!(
        dropped || received >= sent,
        "the stalled events client got {received} of {sent} events and was not dropped"
    );
    drop(events);
    wait_no_streams(&daemon);
    eprintln!(
        "clients that never read: {} runs and a {flood_bytes}-byte flood went through in {took:.1?}; the stalled events client got {received} events then was {}; the stalled follower then read all {} bytes; servitord peak RSS {} before, {} after",
        runs.len(),
        if dropped { "dropped" } else { "not dropped" },
        check.offset,
        procfs::mib(peak_before),
        procfs::mib(peak_after)
    );
    assert!(
        peak_after <= peak_before + allowed_growth_kib(runs.len()),
        "peak RSS grew from {} to {}",
        procfs::mib(peak_before),
        procfs::mib(peak_after)
    );
}

/// Raises this process's soft limit of open files to `wanted` (within the hard limit);
/// false when the hard limit is lower.
fn allow_open_files(wanted: u64) -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|soft| soft >= wanted) {
        return true;
    }
    if limit.maximum.is_some_and(|hard| hard < wanted) {
        return false;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    )
    .is_ok()
}

/// Sets servitord's soft limit of open files, as its service manager would.
fn limit_open_files(daemon: &Daemon, soft: u64) {
    use rustix::process::{Pid, Resource, Rlimit, getrlimit, prlimit};
    let pid = Pid::from_raw(daemon.pid() as i32).expect("a pid");
    let hard = getrlimit(Resource::Nofile).maximum;
    prlimit(
        Some(pid),
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    )
    .expect("setting servitord's limit of open files");
}

/// Opens `count` connections: half never send anything, half send one request and stay
/// open, idle, kept alive. Where the daemon's open files limit is too low for them all,
/// it closes the ones past its cap (`refusable`): those are counted, not kept.
fn idle_connections(daemon: &Daemon, count: usize, refusable: bool) -> (Vec<Connection>, usize) {
    let mut refused = 0;
    let kept = (0..count)
        .filter_map(|n| {
            let mut connection = Connection::open(&daemon.socket()).expect("connecting");
            if n % 2 == 1 {
                match connection.request("GET", "/api/jobs/get_list") {
                    Ok(answer) => assert_eq!(answer.status, 200),
                    Err(_) if refusable => {
                        refused += 1;
                        return None;
                    }
                    Err(e) => panic!("an answer: {e}"),
                }
            }
            Some(connection)
        })
        .collect();
    (kept, refused)
}

/// A thousand idle connections block nothing: runs go through and are followed, the
/// API answers, memory stays bounded, and everything is given back once they close.
/// servitord's limit of open files is set to 4096 so the test does not depend on the
/// environment's (`SERVITOR_FAULTS_IDLE`, 1000 connections).
#[test]
fn a_thousand_idle_connections_block_nothing() {
    idle_connections_block_nothing(4096);
}

/// The same at the limit of open files a service gets by default (systemd: 1024; the
/// daemon raises its soft limit to the hard one at start, this pins it back): runs
/// still go through, as servitord closes connections beyond what the limit leaves after
/// keeping descriptors back for runs.
#[test]
fn a_thousand_idle_connections_block_nothing_at_the_default_service_limit() {
    idle_connections_block_nothing(1024);
}

fn idle_connections_block_nothing(daemon_limit: u64) {
    let count = size_from_env("SERVITOR_FAULTS_IDLE", 1000) as usize;
    if !allow_open_files(count as u64 + 256) {
        eprintln!("idle connections: SKIPPED: this process may not open {count} files");
        return;
    }
    let wd = client_test_jobs();
    let daemon = wd.start();
    limit_open_files(&daemon, daemon_limit);
    let pid = daemon.pid();
    let warm = daemon.run("quick", &[("TOKEN", "warm")]);
    daemon.wait_ended("quick", &warm);
    let baseline = procfs::settled_fds(pid);
    let rss_before = procfs::rss_kib(pid);

    let started = Instant::now();
    let (idle, refused) = idle_connections(&daemon, count, daemon_limit < count as u64 + 512);
    let plan = quick_runs(200);
    let runs = post_all(&daemon, &plan, 2);
    // Some followed live.
    let followed: Vec<_> = runs
        .iter()
        .step_by(20)
        .map(|(job, id)| (id.clone(), daemon.stream(&log_target(job, id))))
        .collect();
    check_quick_runs(&daemon, &runs, &plan);
    for (id, mut follower) in followed {
        let bytes = follower.read_to_end(TIMEOUT);
        let token = format!("q{}", runs.iter().position(|(_, i)| *i == id).unwrap());
        assert_eq!(
            bytes,
            pattern("quick", id.parse().unwrap(), &token, 3).as_bytes()
        );
    }
    assert_eq!(daemon.get("/api/health").status, 200);
    let took = started.elapsed();
    let fds_open = procfs::fd_count(pid);
    let rss_open = procfs::rss_kib(pid);
    drop(idle);
    procfs::wait_fds_back(pid, &baseline);
    let rss_after = procfs::rss_kib(pid);
    eprintln!(
        "idle connections: {count} opened ({refused} of them closed by servitord before their answer, at its open files limit {daemon_limit}) while {} runs went through in {took:.1?}; servitord fds {} idle, {fds_open} with them, {} after; RSS {} idle, {} with them, {} after",
        runs.len(),
        baseline.len(),
        procfs::fd_count(pid),
        procfs::mib(rss_before),
        procfs::mib(rss_open),
        procfs::mib(rss_after)
    );
    assert!(
        rss_open <= rss_before + allowed_growth_kib(runs.len()) + 32 * 1024,
        "RSS grew from {} to {} with {count} idle connections",
        procfs::mib(rss_before),
        procfs::mib(rss_open)
    );
    assert!(
        rss_after <= rss_before + allowed_growth_kib(runs.len()),
        "RSS grew from {} to {}",
        procfs::mib(rss_before),
        procfs::mib(rss_after)
    );
}
