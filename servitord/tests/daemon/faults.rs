//! Faults, against the real binary: servitord killed at random moments (`crash`), a
//! full disk (`disk`), jobs that misbehave (`jobs`), clients that misbehave
//! (`clients`). Each test runs a bounded size by default; the `SERVITOR_FAULTS_*`
//! variables named in each test raise it, and each prints its figures (`cargo test --
//! --nocapture` shows them).
//!
//! Tests that show an open defect of servitord are `#[ignore = "bug: ..."]`: run them
//! with `--ignored` to see it. The pattern jobs here are shared with `load`.

mod clients;
mod crash;
mod disk;
mod jobs;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use servitor_shared::Execution;

use crate::sh;
use crate::support::{Connection, Daemon, encode, procfs};

/// How long a whole burst of runs may take to drain, on a slow machine.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A job script that writes `lines` lines of the known pattern (see `pattern`), waits
/// at the gate `hold` after `hold_after` of them if given, and exits with `exit` (shell
/// arithmetic).
pub(crate) fn pattern_script(lines: usize, hold_after: Option<usize>, exit: &str) -> String {
    let print = |from: usize, to: usize| {
        format!(
            "n={from}\nwhile [ $n -le {to} ]; do\n  echo \"$SERVITOR_JOB $SERVITOR_JOB_EXECUTION $TOKEN $n\"\n  n=$((n + 1))\ndone\n"
        )
    };
    let body = match hold_after {
        Some(at) => format!(
            "{}read _ < \"$SERVITOR_ROOT/hold\"\n{}",
            print(1, at),
            print(at + 1, lines)
        ),
        None => print(1, lines),
    };
    sh(&format!("{body}exit $(({exit}))"))
}

/// What a pattern job writes: `<job> <id> <token> <n>` for n = 1..=lines.
pub(crate) fn pattern(job: &str, id: u64, token: &str, lines: usize) -> String {
    (1..=lines)
        .map(|n| format!("{job} {id} {token} {n}\n"))
        .collect()
}

/// Posts `runs` (job, inputs) from `clients` threads, each on its own kept-alive
/// connection; returns the `(job, execution id)` of each, in the order of `runs`.
/// Panics on any answer but 200.
fn post_all(
    daemon: &Daemon,
    runs: &[(&'static str, String)],
    clients: usize,
) -> Vec<(&'static str, String)> {
    let socket = daemon.socket();
    let per_client = runs.len().div_ceil(clients.max(1)).max(1);
    let handles: Vec<_> = runs
        .chunks(per_client)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut connection = Connection::open(&socket).expect("connecting");
                chunk
                    .into_iter()
                    .map(|(job, query)| {
                        let target = format!("/api/jobs/run?job_id={}{query}", encode(job));
                        let answer = connection
                            .request("POST", &target)
                            .unwrap_or_else(|e| panic!("POST {target}: {e}"));
                        assert_eq!(answer.status, 200, "POST {target}: {}", answer.text());
                        let accepted: servitor_shared::api::RunAccepted = answer.json();
                        (job, accepted.execution_id)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("a client panicked"))
        .collect()
}

/// Waits until every listed run has ended; returns them by (job, id).
fn wait_all_ended(
    daemon: &Daemon,
    runs: &[(&'static str, String)],
    timeout: Duration,
) -> HashMap<(&'static str, String), Execution> {
    let jobs: BTreeSet<&'static str> = runs.iter().map(|(job, _)| *job).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let mut ended = HashMap::new();
        for job in &jobs {
            for execution in daemon.executions(job) {
                if execution.status.is_terminal() {
                    ended.insert((*job, execution.execution_id.clone()), execution);
                }
            }
        }
        let waiting: Vec<_> = runs
            .iter()
            .filter(|run| !ended.contains_key(*run))
            .collect();
        if waiting.is_empty() {
            return ended;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs did not end within {timeout:?}, e.g. {:?}",
            waiting.len(),
            &waiting[..waiting.len().min(10)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The line a flooding job repeats: 43 bytes, so chunk and page boundaries fall
/// mid-line.
const FLOOD_LINE: &[u8] = b"flood 0123456789abcdefghijklmnopqrstuvwxyz\n";

/// Checks streamed bytes against the flood pattern, from wherever they start.
struct FloodCheck {
    /// The pattern, long enough to compare any chunk with one slice comparison.
    pattern: Vec<u8>,
    offset: u64,
}

impl FloodCheck {
    fn new() -> Self {
        Self {
            pattern: FLOOD_LINE.repeat(1 + 2 * 1024 * 1024 / FLOOD_LINE.len()),
            offset: 0,
        }
    }

    #[track_caller]
    fn check(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let start = (self.offset % FLOOD_LINE.len() as u64) as usize;
            let take = bytes.len().min(self.pattern.len() - start);
            assert!(
                bytes[..take] == self.pattern[start..start + take],
                "the log differs from what the job wrote, within bytes {}..{}",
                self.offset,
                self.offset + take as u64
            );
            self.offset += take as u64;
            bytes = &bytes[take..];
        }
    }
}

/// How much servitord's resident memory (KiB) may grow over a test that put `runs`
/// runs through it: its store keeps every execution's history in memory (2 to 3 KiB
/// each, measured), plus 32 MiB for buffers and the allocator's slack. Growth beyond
/// that is a leak, or a buffer that grows with traffic.
pub(crate) fn allowed_growth_kib(runs: usize) -> u64 {
    32 * 1024 + 4 * runs as u64
}

/// Prints `report` with what servitord (`pid`) holds after the test against its idle
/// level, then checks its memory grew by no more than `runs` runs allow.
pub(crate) fn report_footprint(
    report: &str,
    pid: u32,
    idle_fds: usize,
    rss_before: u64,
    runs: usize,
) {
    let rss_after = procfs::rss_kib(pid);
    eprintln!(
        "{report}; servitord fds {idle_fds} idle, {} after; RSS {} idle, {} after (peak {})",
        procfs::fd_count(pid),
        procfs::mib(rss_before),
        procfs::mib(rss_after),
        procfs::mib(procfs::peak_rss_kib(pid))
    );
    assert!(
        rss_after <= rss_before + allowed_growth_kib(runs),
        "RSS grew from {} to {}",
        procfs::mib(rss_before),
        procfs::mib(rss_after)
    );
}

/// The API path of a run's log.
fn log_target(job: &str, id: &str) -> String {
    format!(
        "/api/jobs/executions/logs/get?job_id={}&execution_id={id}",
        encode(job)
    )
}

/// Checks that no child of servitord is a zombie (exited, never waited for). Leftovers
/// of jobs' own children are not its children: they go to PID 1.
#[track_caller]
fn assert_no_zombie(daemon: &Daemon) {
    let zombies = procfs::zombie_children(daemon.pid());
    assert!(
        zombies.is_empty(),
        "servitord's children left as zombies: {zombies:?}"
    );
}
