//! A bounded load test, all traffic on the socket: clients posting runs while others
//! follow every run's log and others read `/api/events`. It checks correctness, not
//! speed: every run ends as its job ended, every follower gets byte-exact logs, every
//! event reader gets every event whole, no answer is a 5xx, and servitord's file
//! descriptors and memory come back to their idle level. The figures are printed.
//!
//! Sizes: `SERVITOR_LOAD_RUNS` (1000), `SERVITOR_LOAD_POSTERS` (8),
//! `SERVITOR_LOAD_FOLLOWERS` (20), `SERVITOR_LOAD_READERS` (20). The issue's full size:
//! `SERVITOR_LOAD_RUNS=5000 SERVITOR_LOAD_FOLLOWERS=100 SERVITOR_LOAD_READERS=100`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use servitor_shared::ExecutionStatus::{Failure, Success};
use servitor_shared::api::RunAccepted;

use crate::faults::{allowed_growth_kib, pattern, pattern_script};
use crate::support::{
    Connection, Daemon, Stream, TIMEOUT, Workdir, encode, procfs, size_from_env, wait_until,
};

/// The jobs: name, lines of the pattern each run writes. A run exits 1 when its id is a
/// multiple of 7, else 0.
const JOBS: [(&str, usize); 2] = [("load/short", 10), ("load/long", 300)];

/// How long the whole load may take to drain, on a slow machine.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

fn script(lines: usize) -> String {
    pattern_script(lines, None, "SERVITOR_JOB_EXECUTION % 7 == 0")
}

fn lines_of(job: &str) -> usize {
    JOBS.iter()
        .find(|(name, _)| *name == job)
        .map(|(_, lines)| *lines)
        .expect("a load job")
}

/// A run a poster got accepted.
#[derive(Debug, Clone)]
struct Accepted {
    job: &'static str,
    id: String,
    token: String,
}

/// What one poster saw.
#[derive(Default)]
struct Posted {
    accepted: Vec<Accepted>,
    /// Answers other than 200, by status.
    refused: BTreeMap<u16, u64>,
}

fn post(
    socket: std::path::PathBuf,
    poster: usize,
    plan: Vec<&'static str>,
    follow: mpsc::Sender<Accepted>,
) -> JoinHandle<Posted> {
    std::thread::spawn(move || {
        let mut posted = Posted::default();
        let mut connection = Connection::open(&socket).expect("connecting");
        for (n, job) in plan.into_iter().enumerate() {
            let token = format!("p{poster}n{n}");
            let target = format!(
                "/api/jobs/run?job_id={}&input_value_TOKEN={token}",
                encode(job)
            );
            let answer = connection
                .request("POST", &target)
                .unwrap_or_else(|e| panic!("POST {target}: {e}"));
            if answer.status != 200 {
                *posted.refused.entry(answer.status).or_default() += 1;
                continue;
            }
            let accepted: RunAccepted = answer.json();
            let run = Accepted {
                job,
                id: accepted.execution_id,
                token,
            };
            let _ = follow.send(run.clone());
            posted.accepted.push(run);
        }
        posted
    })
}

/// What one follower saw.
#[derive(Default)]
struct Followed {
    runs: u64,
    bytes: u64,
    /// Heads other than 200, by status.
    refused: BTreeMap<u16, u64>,
    wrong: Vec<String>,
}

/// Follows the log of each run it takes from `runs` as it runs, until the posters are
/// done, and compares it with what the job writes.
fn follow(
    socket: std::path::PathBuf,
    runs: Arc<Mutex<Receiver<Accepted>>>,
) -> JoinHandle<Followed> {
    std::thread::spawn(move || {
        let mut followed = Followed::default();
        loop {
            let next = runs
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_millis(100));
            let run = match next {
                Ok(run) => run,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return followed,
            };
            let target = format!(
                "/api/jobs/executions/logs/get?job_id={}&execution_id={}",
                encode(run.job),
                run.id
            );
            let mut stream =
                Stream::open(&socket, &target).unwrap_or_else(|e| panic!("GET {target}: {e}"));
            if stream.head.status != 200 {
                *followed.refused.entry(stream.head.status).or_default() += 1;
                continue;
            }
            let log = stream.read_to_end(DRAIN_TIMEOUT);
            let id = run.id.parse().expect("a numeric id");
            let expected = pattern(run.job, id, &run.token, lines_of(run.job)).into_bytes();
            if log != expected {
                followed.wrong.push(format!(
                    "{} #{}: followed {} bytes, the job wrote {}: {:?}",
                    run.job,
                    run.id,
                    log.len(),
                    expected.len(),
                    String::from_utf8_lossy(&log[..log.len().min(200)])
                ));
            }
            followed.runs += 1;
            followed.bytes += log.len() as u64;
        }
    })
}

/// What one `/api/events` reader saw.
#[derive(Default)]
struct Read {
    events: u64,
    /// Runs whose terminal status it saw.
    ended: u64,
    /// The daemon closed the stream (a reader more than 4096 events behind).
    dropped: bool,
    wrong: Vec<String>,
}

/// Reads `/api/events` until it has seen `runs` runs end, or `stop` and nothing more
/// comes. Checks each chunk is one whole event line, cheaply (a debug build's JSON
/// parser would slow the reader down).
fn read_events(mut stream: Stream, runs: usize, stop: Arc<AtomicBool>) -> JoinHandle<Read> {
    std::thread::spawn(move || {
        let mut read = Read::default();
        let mut ended = HashSet::new();
        const PREFIX: &str = "{\"id\":\"job_execution_status_changed\",\"payload\":{\"job_id\":\"";
        while ended.len() < runs {
            let chunk = match stream.try_next_chunk(Duration::from_millis(200)) {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    read.dropped = true;
                    break;
                }
                // Told to stop, it still reads what had come (the ends it was sent).
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    read.wrong.push(format!("the stream failed: {e}"));
                    break;
                }
            };
            stream.received.clear();
            read.events += 1;
            let Ok(line) = std::str::from_utf8(&chunk) else {
                read.wrong.push(format!("not UTF-8: {chunk:?}"));
                continue;
            };
            let whole = line.ends_with("}}\n") && line.matches('\n').count() == 1;
            let Some(rest) = line.strip_prefix(PREFIX).filter(|_| whole) else {
                read.wrong.push(format!("not one whole event: {line:?}"));
                continue;
            };
            // `job","execution_id":"id","status":"status"}}`
            let fields: Vec<&str> = rest.split('"').collect();
            match fields.as_slice() {
                [job, _, "execution_id", _, id, _, "status", _, status, _] => {
                    if matches!(*status, "success" | "failure" | "cancelled") {
                        ended.insert(format!("{job} {id}"));
                    }
                }
                _ => read.wrong.push(format!("unexpected event: {line:?}")),
            }
        }
        read.ended = ended.len() as u64;
        read
    })
}

/// The series of `servitor_api_requests_total` with a 5xx code, and their counts.
fn server_errors(daemon: &Daemon) -> Vec<(String, f64)> {
    daemon
        .metrics()
        .into_iter()
        .filter(|(series, count)| {
            series.starts_with("servitor_api_requests_total")
                && series.contains("code=\"5")
                && *count > 0.0
        })
        .collect()
}

#[test]
fn load_runs_followers_and_event_readers() {
    let runs = size_from_env("SERVITOR_LOAD_RUNS", 1000) as usize;
    let posters = size_from_env("SERVITOR_LOAD_POSTERS", 8).max(1) as usize;
    let followers = size_from_env("SERVITOR_LOAD_FOLLOWERS", 20) as usize;
    let readers = size_from_env("SERVITOR_LOAD_READERS", 20) as usize;
    let mut wd = Workdir::new();
    for (job, lines) in JOBS {
        wd = wd
            .job(job, &script(lines))
            .input_spec(job, r#"{"TOKEN": {}}"#);
    }
    let mut daemon = wd.daemon().args(["--workers", "4"]).start();
    let pid = daemon.pid();
    let socket = daemon.socket();

    // Warm up every path once, then take the idle figures.
    for (job, _) in JOBS {
        let mut events = daemon.stream("/api/events");
        let id = daemon.run(job, &[("TOKEN", "warm")]);
        let mut log = daemon.stream(&format!(
            "/api/jobs/executions/logs/get?job_id={}&execution_id={id}",
            encode(job)
        ));
        log.read_to_end(TIMEOUT);
        daemon.wait_ended(job, &id);
        events.next_event(TIMEOUT);
    }
    let idle_fds = procfs::settled_fds(pid);
    let idle_rss = procfs::rss_kib(pid);
    let idle_threads = procfs::threads(pid);

    // Event readers connect first, so they see every run.
    let stop_readers = Arc::new(AtomicBool::new(false));
    let reader_handles: Vec<_> = (0..readers)
        .map(|_| {
            read_events(
                daemon.stream("/api/events"),
                runs,
                Arc::clone(&stop_readers),
            )
        })
        .collect();
    let (to_follow, runs_to_follow) = mpsc::channel();
    let runs_to_follow = Arc::new(Mutex::new(runs_to_follow));
    let follower_handles: Vec<_> = (0..followers)
        .map(|_| follow(socket.clone(), Arc::clone(&runs_to_follow)))
        .collect();
    // Without followers, nobody takes the runs: keep none.
    let to_follow = (followers > 0).then_some(to_follow);

    let started = Instant::now();
    let peak_fds = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let peak_fds = Arc::clone(&peak_fds);
        let sampling = Arc::clone(&sampling);
        move || {
            while sampling.load(Ordering::Relaxed) {
                peak_fds.fetch_max(procfs::fd_count(pid) as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let poster_handles: Vec<_> = (0..posters)
        .map(|poster| {
            let share = runs / posters + usize::from(poster < runs % posters);
            let plan = (0..share)
                .map(|n| {
                    if (n + poster) % 5 == 0 {
                        JOBS[1].0
                    } else {
                        JOBS[0].0
                    }
                })
                .collect();
            let (sender, _unused) = mpsc::channel();
            let sender = to_follow.clone().unwrap_or(sender);
            post(socket.clone(), poster, plan, sender)
        })
        .collect();
    drop(to_follow);
    let posted: Vec<Posted> = poster_handles
        .into_iter()
        .map(|h| h.join().expect("a poster panicked"))
        .collect();
    let posting_took = started.elapsed();
    let accepted: Vec<Accepted> = posted.iter().flat_map(|p| p.accepted.clone()).collect();
    let refused: BTreeMap<u16, u64> = posted.iter().flat_map(|p| p.refused.clone()).fold(
        BTreeMap::new(),
        |mut all, (status, count)| {
            *all.entry(status).or_default() += count;
            all
        },
    );
    let followed: Vec<Followed> = follower_handles
        .into_iter()
        .map(|h| h.join().expect("a follower panicked"))
        .collect();

    // Every run ends as its job ended.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut executions = BTreeMap::new();
    loop {
        executions.clear();
        for (job, _) in JOBS {
            for execution in daemon.executions(job) {
                executions.insert((job, execution.execution_id.clone()), execution);
            }
        }
        if executions.values().all(|e| e.status.is_terminal()) {
            break;
        }
        assert!(Instant::now() < deadline, "runs did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_ended = started.elapsed();
    stop_readers.store(true, Ordering::Relaxed);
    let read: Vec<Read> = reader_handles
        .into_iter()
        .map(|h| h.join().expect("a reader panicked"))
        .collect();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak_rss = procfs::peak_rss_kib(pid);
    let busy_rss = procfs::rss_kib(pid);

    let mut wrong = Vec::new();
    let mut tokens = HashSet::new();
    for run in &accepted {
        let Some(execution) = executions.get(&(run.job, run.id.clone())) else {
            wrong.push(format!(
                "{} #{} was accepted but is not listed",
                run.job, run.id
            ));
            continue;
        };
        let id: u64 = run.id.parse().unwrap();
        let (status, code) = if id.is_multiple_of(7) {
            (Failure, 1)
        } else {
            (Success, 0)
        };
        let result = execution.result.as_ref().map(|r| r.exit_code);
        if execution.status != status || result != Some(code) || execution.error.is_some() {
            wrong.push(format!("{} #{}: {execution:?}", run.job, run.id));
        }
        if execution.input_values.get("TOKEN") != Some(&run.token) || !tokens.insert(&run.token) {
            wrong.push(format!(
                "{} #{} holds the wrong request: {execution:?}",
                run.job, run.id
            ));
        }
    }
    for followed in &followed {
        wrong.extend(followed.wrong.iter().cloned());
        for (status, count) in &followed.refused {
            wrong.push(format!("{count} log follows answered {status}"));
        }
    }
    for (n, read) in read.iter().enumerate() {
        wrong.extend(read.wrong.iter().map(|w| format!("event reader {n}: {w}")));
        if read.ended < accepted.len() as u64 {
            wrong.push(format!(
                "event reader {n} saw {} of {} runs end ({} events{})",
                read.ended,
                accepted.len(),
                read.events,
                if read.dropped {
                    ", then the daemon dropped it"
                } else {
                    ""
                }
            ));
        }
    }
    for (status, count) in &refused {
        wrong.push(format!("{count} runs were refused with {status}"));
    }
    let server_errors = server_errors(&daemon);
    if !server_errors.is_empty() {
        wrong.push(format!("5xx answers: {server_errors:?}"));
    }
    let follows: u64 = followed.iter().map(|f| f.runs).sum();
    let followed_bytes: u64 = followed.iter().map(|f| f.bytes).sum();
    if followers > 0 && follows != accepted.len() as u64 {
        wrong.push(format!("{follows} runs followed of {}", accepted.len()));
    }
    let events: u64 = read.iter().map(|r| r.events).sum();
    let dropped = read.iter().filter(|r| r.dropped).count();

    // Everything closed: servitord comes back to its idle level.
    drop(read);
    wait_until("the streams to be closed", TIMEOUT, || {
        daemon.metric("servitor_log_followers") == 0.0
            && daemon.metric("servitor_event_clients") == 0.0
    });
    let fd_deadline = Instant::now() + TIMEOUT;
    while procfs::fd_count(pid) > idle_fds.len() && Instant::now() < fd_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let after_fds = procfs::open_fds(pid);
    let after_rss = procfs::rss_kib(pid);
    eprintln!(
        "load: {} runs posted by {posters} clients in {posting_took:.1?} ({:.0} runs/s), all ended after {all_ended:.1?} ({:.0} runs/s); \
         {followers} followers followed {follows} runs live, {followed_bytes} bytes byte-exact; \
         {readers} event readers got {events} events ({dropped} dropped); 5xx answers: {}; \
         servitord fds {} idle, {} at peak, {} after; RSS {} idle, {} at the end of the load (peak {}), {} after; threads {idle_threads} idle",
        accepted.len(),
        accepted.len() as f64 / posting_took.as_secs_f64(),
        accepted.len() as f64 / all_ended.as_secs_f64(),
        server_errors.len(),
        idle_fds.len(),
        peak_fds.load(Ordering::Relaxed),
        after_fds.len(),
        procfs::mib(idle_rss),
        procfs::mib(busy_rss),
        procfs::mib(peak_rss),
        procfs::mib(after_rss),
    );
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(50)].join("\n")
    );
    assert!(
        after_fds.len() <= idle_fds.len(),
        "servitord holds {} file descriptors after the load, {} when idle; extra: {:#?}",
        after_fds.len(),
        idle_fds.len(),
        after_fds
            .iter()
            .filter(|fd| !idle_fds.contains(fd))
            .collect::<Vec<_>>()
    );
    let allowed = idle_rss + allowed_growth_kib(accepted.len());
    assert!(
        after_rss <= allowed,
        "servitord's RSS is {} after the load, {} when idle (allowed {})",
        procfs::mib(after_rss),
        procfs::mib(idle_rss),
        procfs::mib(allowed)
    );

    // What the history alone costs: a fresh daemon that has loaded it.
    daemon.restart();
    wait_until("the restarted daemon to load the history", TIMEOUT, || {
        daemon.get("/api/health").status == 200
    });
    eprintln!(
        "load: after a restart with these {} executions loaded, servitord's RSS is {}",
        executions.len(),
        procfs::mib(procfs::rss_kib(daemon.pid()))
    );
}
