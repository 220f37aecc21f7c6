//! Jobs that misbehave: closing or redirecting their output, starting daemons,
//! ignoring SIGINT, flooding their log, exiting at once.

use std::time::{Duration, Instant};

use servitor_shared::ExecutionStatus::{self, Cancelled, Failure, Running, Success};

use super::{
    DRAIN_TIMEOUT, FLOOD_LINE, FloodCheck, assert_no_zombie, log_target, post_all,
    report_footprint, wait_all_ended,
};
use crate::support::{
    TIMEOUT, Workdir, job_processes, procfs, run_processes, size_from_env, wait_until,
};
use crate::{sh, wait_gate};

/// A job that starts a daemon (a new session, ignoring SIGINT and SIGHUP, still holding
/// the log open) and exits, once the daemon has said it is up. The FIFO `forked` makes
/// the order of the two lines certain.
const FORKS_DAEMON: &str = r#"setsid sh -c 'trap "" INT HUP; echo "daemon $$ started"; echo $$ > "$SERVITOR_ROOT/forked"; exec sleep 1000' &
read pid < "$SERVITOR_ROOT/forked"
echo "parent exits, its daemon is $pid""#;

/// The misbehaving jobs: they close or redirect their output, or exit at once (`/bin/true`).
fn misbehaving_jobs() -> Workdir {
    Workdir::new()
        .job(
            "closes-stdout",
            &sh("echo before\nexec >&- 2>&-\necho lost\necho lost >&2\nexit 3"),
        )
        .job(
            "redirects-stdout",
            &sh("echo to-log\nexec > \"$SERVITOR_ROOT/elsewhere.$SERVITOR_JOB_EXECUTION\" 2>&1\necho to-file\necho err-to-file >&2"),
        )
        .job("forks-daemon", &sh(FORKS_DAEMON))
        .gate("forked")
        .symlink("config/jobs/instant", "/bin/true")
}

/// How a misbehaving job's run must be recorded: status, exit code, log.
fn expected_end(job: &str) -> (ExecutionStatus, i64, &'static str) {
    match job {
        "closes-stdout" => (Failure, 3, "before\n"),
        "redirects-stdout" => (Success, 0, "to-log\n"),
        "instant" => (Success, 0, ""),
        other => panic!("no expectation for {other}"),
    }
}

/// Jobs that close or redirect their output, start a daemon and exit, or exit at once
/// are recorded as they ended, with exactly what reached the log.
#[test]
fn misbehaving_jobs_are_recorded_as_they_ended() {
    let wd = misbehaving_jobs();
    let daemon = wd.start();
    for job in ["closes-stdout", "redirects-stdout", "instant"] {
        let id = daemon.run(job, &[]);
        let ended = daemon.wait_ended(job, &id);
        let (status, code, log) = expected_end(job);
        assert_eq!(ended.status, status, "{job}: {ended:?}");
        assert_eq!(
            ended.result.as_ref().map(|r| r.exit_code),
            Some(code),
            "{job}"
        );
        assert_eq!(daemon.log_of(job, &id), log.as_bytes(), "{job}");
    }
    assert_eq!(wd.read("elsewhere.1"), "to-file\nerr-to-file\n");

    // The run ends with its process, although its daemon still holds the log open.
    let id = daemon.run("forks-daemon", &[]);
    let ended = daemon.wait_ended("forks-daemon", &id);
    assert_eq!(ended.status, Success, "{ended:?}");
    let log = String::from_utf8(daemon.log_of("forks-daemon", &id)).unwrap();
    let pid: i32 = log
        .rsplit_once("its daemon is ")
        .and_then(|(_, pid)| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(
        log,
        format!("daemon {pid} started\nparent exits, its daemon is {pid}\n")
    );
    // The daemon left the run's process group on purpose: it lives on, and is not
    // servitord's to wait for.
    assert!(crate::support::is_alive(pid));
    assert!(
        !procfs::children(daemon.pid())
            .iter()
            .any(|(child, _)| *child == pid),
        "the forked daemon is a child of servitord"
    );
    assert_no_zombie(&daemon);
}

/// Cancelled runs leave no process behind: a job ignoring SIGINT, a child of the job
/// ignoring it, a job that closed its output, a job flooding its log.
#[test]
fn cancelled_misbehaving_runs_leave_no_process() {
    let wd = Workdir::new()
        .job(
            "ignores-sigint",
            &sh(&format!(
                "trap '' INT\necho started\n{}",
                wait_gate("never")
            )),
        )
        .job(
            "stubborn-child",
            &sh("sh -c 'trap \"\" INT; exec sleep 1000' &\necho started\nwait"),
        )
        .job(
            "closed-and-waiting",
            &sh(&format!(
                "echo started\nexec >&- 2>&-\n{}",
                wait_gate("never")
            )),
        )
        // A few MB/s from a shell loop: a flood, but not gigabytes before the cancel.
        .job(
            "floods-forever",
            &sh("echo started\nwhile :; do echo flood; done"),
        )
        .gate("never");
    let daemon = wd
        .daemon()
        .args(["--workers", "4", "--stop-grace", "1s"])
        .start();
    let runs: Vec<(&str, String)> = [
        "ignores-sigint",
        "stubborn-child",
        "closed-and-waiting",
        "floods-forever",
    ]
    .into_iter()
    .map(|job| (job, daemon.run(job, &[])))
    .collect();
    for (job, id) in &runs {
        let log = wd.join(format!("state/jobs/{job}/executions/{id}/logs/main.txt"));
        wait_until(&format!("{job} to start"), TIMEOUT, || {
            std::fs::read(&log).is_ok_and(|bytes| bytes.starts_with(b"started\n"))
        });
        let processes = run_processes(wd.path());
        assert!(
            processes
                .iter()
                .any(|p| p.job == *job && p.execution == *id),
            "{job}: {processes:?}"
        );
    }
    for (job, id) in &runs {
        let answer = daemon.post(&format!(
            "/api/jobs/executions/cancel?job_id={job}&execution_id={id}"
        ));
        assert_eq!(answer.status, 200, "{job}: {}", answer.text());
    }
    for (job, id) in &runs {
        let ended = daemon.wait_status(job, id, Cancelled);
        let message = ended.result.map(|r| r.message).unwrap_or_default();
        let expected = match *job {
            "ignores-sigint" => "cancelled: killed by SIGKILL after 1s",
            _ => "cancelled: stopped by SIGINT",
        };
        assert_eq!(message, expected, "{job}");
        // SIGKILLed just before the end was recorded, a process may take a moment to go.
        let left = || -> Vec<_> {
            run_processes(wd.path())
                .into_iter()
                .filter(|p| p.job == *job && p.execution == *id)
                .collect()
        };
        wait_until(&format!("{job} #{id} to leave no process"), TIMEOUT, || {
            left().is_empty()
        });
    }
    assert!(job_processes(wd.path()).is_empty());
    assert_no_zombie(&daemon);
}

/// A job that starts a daemon of its own (a new session, so out of its process group)
/// and is then cancelled: nothing of a cancelled run may be left behind (README, Runs).
#[test]
fn a_cancelled_run_leaves_no_daemon_it_started() {
    let script = sh(&format!(
        "{}\necho started\n{}",
        FORKS_DAEMON.replace(
            "echo \"parent exits, its daemon is $pid\"",
            "echo \"its daemon is $pid\""
        ),
        wait_gate("never")
    ));
    let wd = Workdir::new()
        .job("starts-a-daemon", &script)
        .gate("forked")
        .gate("never");
    let daemon = wd.daemon().args(["--stop-grace", "300ms"]).start();
    let id = daemon.run("starts-a-daemon", &[]);
    let log = wd.join(format!(
        "state/jobs/starts-a-daemon/executions/{id}/logs/main.txt"
    ));
    wait_until("the job to start its daemon", TIMEOUT, || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("started\n"))
    });
    let answer = daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=starts-a-daemon&execution_id={id}"
    ));
    assert_eq!(answer.status, 200, "{}", answer.text());
    daemon.wait_status("starts-a-daemon", &id, Cancelled);
    // A process killed just before the end was recorded may take a moment to go.
    wait_until("the cancelled run's processes to be gone", TIMEOUT, || {
        run_processes(wd.path()).is_empty()
    });
}

/// A thousand runs of misbehaving jobs (and cancels of queued and running ones) leave
/// servitord with the file descriptors it had before, no zombie, and about the memory.
/// `SERVITOR_FAULTS_JOB_RUNS` (1000) sets the number of runs.
#[test]
fn a_thousand_misbehaving_runs_leak_nothing() {
    let count = size_from_env("SERVITOR_FAULTS_JOB_RUNS", 1000) as usize;
    let wd = misbehaving_jobs()
        .job(
            "ignores-sigint",
            &sh(&format!(
                "trap '' INT\necho started\n{}",
                wait_gate("never")
            )),
        )
        .gate("never");
    let daemon = wd
        .daemon()
        .args(["--workers", "4", "--stop-grace", "200ms"])
        .start();
    let pid = daemon.pid();
    // Warm up every path once: runs, a log follow, the event stream, a cancel.
    for job in ["closes-stdout", "redirects-stdout", "instant"] {
        let id = daemon.run(job, &[]);
        daemon.wait_ended(job, &id);
    }
    let mut events = daemon.stream("/api/events");
    let id = daemon.run("ignores-sigint", &[]);
    daemon.wait_status("ignores-sigint", &id, Running);
    daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=ignores-sigint&execution_id={id}"
    ));
    daemon.wait_ended("ignores-sigint", &id);
    events.next_event(TIMEOUT);
    drop(events);
    let baseline = procfs::settled_fds(pid);
    let rss_before = procfs::rss_kib(pid);
    let started = Instant::now();

    // Stubborn runs first: four running (killed after the grace period), six queued
    // (cancelled before they start); then the thousand.
    let stubborn: Vec<(&'static str, String)> =
        (0..10).map(|_| ("ignores-sigint", String::new())).collect();
    let stubborn = post_all(&daemon, &stubborn, 1);
    for (job, id) in &stubborn {
        let answer = daemon.post(&format!(
            "/api/jobs/executions/cancel?job_id={job}&execution_id={id}"
        ));
        assert!(
            answer.status == 200 || answer.status == 409,
            "cancel: {}",
            answer.text()
        );
    }
    let plan: Vec<(&'static str, String)> = (0..count)
        .map(|n| {
            let job = match n % 10 {
                0 | 1 => "closes-stdout",
                2 | 3 => "redirects-stdout",
                _ => "instant",
            };
            (job, String::new())
        })
        .collect();
    let runs = post_all(&daemon, &plan, 4);
    let ended = wait_all_ended(&daemon, &runs, DRAIN_TIMEOUT);
    let took = started.elapsed();
    for (job, id) in &runs {
        let execution = &ended[&(*job, id.clone())];
        let (status, code, log) = expected_end(job);
        assert_eq!(execution.status, status, "{job} #{id}: {execution:?}");
        assert_eq!(
            execution.result.as_ref().map(|r| r.exit_code),
            Some(code),
            "{job} #{id}"
        );
        assert_eq!(daemon.log_of(job, id), log.as_bytes(), "{job} #{id}");
    }
    for (job, id) in &stubborn {
        let execution = daemon.wait_ended(job, id);
        assert_eq!(execution.status, Cancelled, "{execution:?}");
    }
    assert!(
        job_processes(wd.path()).is_empty(),
        "{:?}",
        run_processes(wd.path())
    );
    assert_no_zombie(&daemon);
    procfs::wait_fds_back(pid, &baseline);
    let report = format!(
        "misbehaving runs: {} runs + {} cancelled in {took:.1?}",
        runs.len(),
        stubborn.len()
    );
    report_footprint(
        &report,
        pid,
        baseline.len(),
        rss_before,
        runs.len() + stubborn.len(),
    );
}

/// A job flooding its log (`SERVITOR_FAULTS_FLOOD_BYTES`, 100 MB; 1000000000 for the
/// issue's full size): the log holds every byte, a follower receives every byte in
/// order while it is written, and servitord's memory does not grow with it.
#[test]
fn a_flood_of_output_is_recorded_whole_in_bounded_memory() {
    let bytes = size_from_env("SERVITOR_FAULTS_FLOOD_BYTES", 100_000_000);
    let line = String::from_utf8(FLOOD_LINE.trim_ascii_end().to_vec()).unwrap();
    let wd = Workdir::new()
        .job("flood", &sh(&format!("yes '{line}' | head -c \"$BYTES\"")))
        .input_spec("flood", r#"{"BYTES": {}}"#);
    let daemon = wd.start();
    let pid = daemon.pid();
    // Warm up: a small flood, followed.
    let id = daemon.run("flood", &[("BYTES", "1000000")]);
    let mut follower = daemon.stream(&log_target("flood", &id));
    assert_eq!(follower.read_to_end(TIMEOUT).len(), 1_000_000);
    drop(follower);
    let peak_before = procfs::peak_rss_kib(pid);
    let fds_before = procfs::settled_fds(pid);

    let started = Instant::now();
    let id = daemon.run("flood", &[("BYTES", &bytes.to_string())]);
    let mut follower = daemon.stream(&log_target("flood", &id));
    let mut check = FloodCheck::new();
    let mut chunks = 0u64;
    // Generous: a gigabyte through a debug build on a small machine.
    let per_chunk = Duration::from_secs(60);
    while let Some(chunk) = follower.next_chunk(per_chunk) {
        check.check(&chunk);
        chunks += 1;
        // Keep the test's own memory flat.
        follower.received.clear();
    }
    let took = started.elapsed();
    drop(follower);
    assert_eq!(
        check.offset, bytes,
        "the follower got {} of {bytes} bytes",
        check.offset
    );
    let ended = daemon.wait_ended("flood", &id);
    assert_eq!(ended.status, Success, "{ended:?}");
    let on_disk =
        std::fs::metadata(wd.join(format!("state/jobs/flood/executions/{id}/logs/main.txt")))
            .unwrap()
            .len();
    assert_eq!(on_disk, bytes);
    procfs::wait_fds_back(pid, &fds_before);
    assert_no_zombie(&daemon);
    let peak_after = procfs::peak_rss_kib(pid);
    eprintln!(
        "flood: {bytes} bytes written and followed in {took:.1?} ({chunks} chunks, {:.0} MB/s); servitord peak RSS {} before, {} after",
        bytes as f64 / 1e6 / took.as_secs_f64(),
        procfs::mib(peak_before),
        procfs::mib(peak_after)
    );
    assert!(
        peak_after <= peak_before + 32 * 1024,
        "servitord's memory grew with the log: peak RSS {} before, {} after a {bytes}-byte flood",
        procfs::mib(peak_before),
        procfs::mib(peak_after)
    );
}
