//! Crash anywhere: servitord SIGKILLed at random moments of bursts of runs, and what
//! the next daemon finds and repairs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use servitor_shared::Execution;
use servitor_shared::ExecutionStatus::{self, Created, Failure, Running, Success};

use super::{DRAIN_TIMEOUT, pattern, pattern_script};
use crate::support::{
    Connection, Daemon, Rng, TIMEOUT, Workdir, encode, job_processes, procfs, run_processes,
    size_from_env, wait_until,
};
use crate::{assert_timestamp, sh, wait_gate};

/// A job of the crash test: it writes `lines` lines of the pattern (waiting at the gate
/// `hold` after `hold_after` of them, if given) and exits with `exit_code(id)`.
struct CrashJob {
    name: &'static str,
    lines: usize,
    hold_after: Option<usize>,
    /// The exit code as shell arithmetic, and as Rust.
    exit: &'static str,
    exit_code: fn(u64) -> i64,
}

const CRASH_JOBS: [CrashJob; 3] = [
    // Quick, with every kind of end: exit 0, 1 or 2.
    CrashJob {
        name: "crash/quick",
        lines: 5,
        hold_after: None,
        exit: "SERVITOR_JOB_EXECUTION % 3",
        exit_code: |id| (id % 3) as i64,
    },
    // A few milliseconds of writing: often killed mid-log.
    CrashJob {
        name: "crash/chatty",
        lines: 400,
        hold_after: None,
        exit: "0",
        exit_code: |_| 0,
    },
    // Waits at the gate, so that runs are running (and others queued) at the crash.
    CrashJob {
        name: "crash/held",
        lines: 6,
        hold_after: Some(3),
        exit: "0",
        exit_code: |_| 0,
    },
];

/// A run the daemon acknowledged.
#[derive(Debug, Clone)]
struct Posted {
    job: &'static str,
    id: u64,
    token: String,
}

/// Posts the planned runs one after the other on one connection, until the plan is done
/// or the daemon is gone. Returns the answers that were neither 200 nor a lost
/// connection.
fn post_runs(
    socket: PathBuf,
    plan: Vec<(&'static str, String)>,
    acknowledged: Arc<Mutex<Vec<Posted>>>,
) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut unexpected = Vec::new();
        let Ok(mut connection) = Connection::open(&socket) else {
            return unexpected;
        };
        for (job, token) in plan {
            let target = format!(
                "/api/jobs/run?job_id={}&input_value_TOKEN={}",
                encode(job),
                encode(&token)
            );
            match connection.request("POST", &target) {
                Ok(answer) if answer.status == 200 => {
                    let accepted: servitor_shared::api::RunAccepted = answer.json();
                    let id = accepted.execution_id.parse().expect("a numeric id");
                    acknowledged.lock().unwrap().push(Posted { job, id, token });
                }
                Ok(answer) => unexpected.push(format!(
                    "POST {target}: {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )),
                // The daemon was killed.
                Err(_) => break,
            }
        }
        unexpected
    })
}

/// How two defects show, should they come back (this test found both in servitord as
/// first written): a crash while a run was being recorded left a half-made execution,
/// listed as `unknown` for good; a run started just before the crash (before its
/// `running` status was saved) ran a second time after the restart.
const HALF_MADE: &str = "a crash while a run was being recorded left a half-made execution folder (no or an empty status_history.tsv), listed as `unknown` for good";
const RUN_TWICE: &str =
    "a run whose process started just before the crash ran a second time after the restart";

/// What the crash test found wrong.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
}

impl Findings {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

/// The acknowledged runs: `(job, id)` → the token of the request that got that id.
type Acknowledged = HashMap<(&'static str, u64), String>;

/// Checks the state files of the crash jobs as a crash left them, before any daemon
/// touches them: every execution's files read, `last_execution.txt` is not behind the
/// highest id, and an ended run has its result.
fn check_state_files(wd: &Workdir, acknowledged: &Acknowledged, when: &str, found: &mut Findings) {
    for job in &CRASH_JOBS {
        let dir = wd.join(format!("state/jobs/{}/executions", job.name));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut highest = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = name.parse::<u64>() else {
                continue;
            };
            highest = highest.max(id);
            let path = entry.path();
            let what = format!("{when}: {} #{id} on disk", job.name);
            let history = match std::fs::read_to_string(path.join("status_history.tsv")) {
                Ok(text) if !text.is_empty() => text,
                // Cut short between creating the file and writing its first line.
                Ok(_) | Err(_) if !acknowledged.contains_key(&(job.name, id)) => {
                    found.problem(format!("{what}: {HALF_MADE}"));
                    continue;
                }
                Ok(_) => {
                    found.problem(format!("{what}: acknowledged, but its history is empty"));
                    continue;
                }
                Err(e) => {
                    found.problem(format!(
                        "{what}: acknowledged, but no readable status_history.tsv ({e}); its folder holds {:?}",
                        wd.tree(&format!("state/jobs/{}/executions/{id}", job.name))
                    ));
                    continue;
                }
            };
            if !history.ends_with('\n') {
                found.problem(format!("{what}: a torn status line: {history:?}"));
            }
            let statuses: Vec<&str> = history
                .lines()
                .map(|line| line.split_once('\t').map_or("?", |(_, status)| status))
                .collect();
            if statuses.first() != Some(&"created") {
                found.problem(format!(
                    "{what}: its history does not start created: {history:?}"
                ));
            }
            match std::fs::read_to_string(path.join("input.json")) {
                Ok(text) if serde_json::from_str::<BTreeMap<String, String>>(&text).is_ok() => {}
                other => found.problem(format!("{what}: unreadable input.json: {other:?}")),
            }
            let ended = statuses
                .last()
                .and_then(|s| ExecutionStatus::parse(s))
                .is_some_and(ExecutionStatus::is_terminal);
            match std::fs::read_to_string(path.join("result.tsv")) {
                Ok(text) => {
                    let code = text.split('\t').next().unwrap_or_default();
                    if !text.ends_with('\n') || code.parse::<i64>().is_err() {
                        found.problem(format!("{what}: unreadable result.tsv {text:?}"));
                    }
                }
                Err(_) if ended => found.problem(format!("{what}: ended without result.tsv")),
                Err(_) => {}
            }
        }
        let counter = std::fs::read_to_string(dir.join("last_execution.txt"));
        match counter.as_deref().map(str::parse::<u64>) {
            Ok(Ok(last)) if last >= highest => {}
            _ if highest == 0 => {}
            _ => found.problem(format!(
                "{when}: {}: last_execution.txt ({counter:?}) is behind execution {highest}",
                job.name
            )),
        }
    }
}

/// How many copies of `expected` (distinct lines) `log` holds, interleaved line by line
/// as two processes writing at once would leave them; `None` if it is anything else.
fn interleaved_copies(log: &[u8], expected: &str) -> Option<usize> {
    let lines: Vec<&str> = expected.split_inclusive('\n').collect();
    let index: HashMap<&str, usize> = lines.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let mut counts = vec![0usize; lines.len()];
    for line in std::str::from_utf8(log).ok()?.split_inclusive('\n') {
        let at = *index.get(line)?;
        // Each copy is in order: line n+1 of a copy comes after its line n.
        if at > 0 && counts[at] >= counts[at - 1] {
            return None;
        }
        counts[at] += 1;
    }
    let copies = counts[0];
    counts.iter().all(|c| *c == copies).then_some(copies)
}

/// What the crash test counted.
#[derive(Default, Debug)]
struct CrashFigures {
    posted: usize,
    acknowledged: usize,
    executions: usize,
    adopted: usize,
    vanished: usize,
    /// Runs caught between their start and `running` whose process was gone: failed
    /// as "may have run".
    start_unknown: usize,
    killed_after: Vec<usize>,
    running_at_restart: usize,
    queued_at_restart: usize,
    /// Restarts that found the lock still held by a descendant of the killed daemon.
    lock_still_held: usize,
}

/// Checks one execution, which should have ended, as the API answers it.
fn check_execution(
    daemon: &Daemon,
    job: &CrashJob,
    execution: &Execution,
    acknowledged: &Acknowledged,
    tokens: &mut HashMap<String, String>,
    figures: &mut CrashFigures,
    found: &mut Findings,
) {
    let id: u64 = execution.execution_id.parse().expect("a numeric id");
    let what = format!("{} #{id}", job.name);
    if execution.status_history.is_empty()
        && !acknowledged.contains_key(&(job.name, id))
        && execution.error.as_deref().is_some_and(|e| {
            e.contains("cannot read status_history.tsv") || e.contains("empty status history")
        })
    {
        found.problem(format!("{what}: {HALF_MADE}"));
        return;
    }
    if let Some(error) = &execution.error {
        found.problem(format!("{what}: damaged: {error}"));
    }
    let statuses: Vec<ExecutionStatus> =
        execution.status_history.iter().map(|c| c.status).collect();
    let shape_ok = match statuses.as_slice() {
        [Created, end] | [Created, Running, end] => end.is_terminal(),
        _ => false,
    };
    if !shape_ok || execution.status != *statuses.last().unwrap_or(&Created) {
        found.problem(format!(
            "{what}: {:?} with history {statuses:?}",
            execution.status
        ));
    }
    for change in &execution.status_history {
        assert_timestamp(&change.timestamp);
    }
    let Some(token) = execution.input_values.get("TOKEN").cloned() else {
        found.problem(format!(
            "{what}: no TOKEN input: {:?}",
            execution.input_values
        ));
        return;
    };
    if let Some(first) = tokens.insert(token.clone(), what.clone()) {
        found.problem(format!(
            "{what}: request {token} was recorded twice, also as {first}"
        ));
    }
    if let Some(expected) = acknowledged.get(&(job.name, id))
        && *expected != token
    {
        found.problem(format!(
            "{what}: acknowledged to request {expected} but holds request {token}: an id was handed out twice"
        ));
    }
    match &execution.result {
        None => found.problem(format!("{what}: ended without a result")),
        // Caught between its start and `running`, its process gone by the restart: it
        // may have run (then its log is whole) or not (then it is empty); it is not
        // run again.
        Some(result) if result.message.contains("servitord stopped while starting") => {
            if result.exit_code != -1 || execution.status != Failure {
                found.problem(format!(
                    "{what}: recovered as {:?} {result:?}",
                    execution.status
                ));
            }
            figures.start_unknown += 1;
            let log = daemon.log_of(job.name, &execution.execution_id);
            if !log.is_empty() && log != pattern(job.name, id, &token, job.lines).as_bytes() {
                found.problem(format!(
                    "{what}: may have run, but its log is neither empty nor whole: {:?}",
                    String::from_utf8_lossy(&log[..log.len().min(300)])
                ));
            }
            return;
        }
        Some(result) if result.message.contains("servitord restarted") => {
            if result.exit_code != -1 || execution.status != Failure {
                found.problem(format!(
                    "{what}: recovered as {:?} {result:?}",
                    execution.status
                ));
            }
            if result.message.contains("watched until it ended") {
                figures.adopted += 1;
            } else {
                figures.vanished += 1;
            }
        }
        Some(result) => {
            let expected = (job.exit_code)(id);
            let status = if expected == 0 { Success } else { Failure };
            if result.exit_code != expected || execution.status != status {
                found.problem(format!(
                    "{what}: ended {:?} {result:?}, but its job exits with {expected}",
                    execution.status
                ));
            }
        }
    }
    let log = daemon.log_of(job.name, &execution.execution_id);
    let expected = pattern(job.name, id, &token, job.lines);
    if log != expected.as_bytes() {
        match interleaved_copies(&log, &expected) {
            Some(copies) if copies >= 2 => {
                found.problem(format!("{what}: {RUN_TWICE} ({copies} times in all)"))
            }
            _ => found.problem(format!(
                "{what}: the log is not what the job wrote: {} bytes, expected {}; it starts {:?}",
                log.len(),
                expected.len(),
                String::from_utf8_lossy(&log[..log.len().min(300)])
            )),
        }
    }
}

/// Every execution of the crash jobs still queued or running, per the API.
fn unfinished(daemon: &Daemon) -> Vec<(&'static str, Execution)> {
    CRASH_JOBS
        .iter()
        .flat_map(|job| {
            daemon
                .executions(job.name)
                .into_iter()
                .filter(|e| matches!(e.status, Created | Running))
                .map(|e| (job.name, e))
        })
        .collect()
}

/// True when nothing holds the lock of the working directory (`state/servitord.lock`).
fn lock_is_free(wd: &Workdir) -> bool {
    let file = std::fs::File::open(wd.join("state/servitord.lock")).expect("the lock file");
    match file.try_lock() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => panic!("cannot test the lock: {e}"),
    }
}

/// Waits until restart recovery is done (`/api/health` answers 200).
fn wait_ready(daemon: &Daemon) {
    wait_until("the daemon to finish its recovery", TIMEOUT, || {
        daemon.get("/api/health").status == 200
    });
}

/// Crash anywhere: SIGKILLs servitord at a random moment of a burst of runs (some
/// queued, some running, some ending), restarts it, and checks what the crash left and
/// how the next daemon repaired it: every execution reads, none stays running without a
/// process or queued forever, ids are unique (each holds the request it acknowledged)
/// and `last_execution.txt` never lags, each ended run has its result and each log is
/// exactly what its job wrote, once: no run runs twice. A run caught between its start
/// and its `running` status whose process is gone by the restart may be failed as "may
/// have run"; its log is then empty or whole.
///
/// `SERVITOR_FAULTS_CRASHES` (20) crashes of `SERVITOR_FAULTS_CRASH_RUNS` (30) runs;
/// `SERVITOR_FAULTS_SEED` replays the random choices of a run (it is printed).
#[test]
fn crash_anywhere_leaves_consistent_state() {
    let crashes = size_from_env("SERVITOR_FAULTS_CRASHES", 20) as usize;
    let runs = size_from_env("SERVITOR_FAULTS_CRASH_RUNS", 30) as usize;
    let mut rng = Rng::from_env("SERVITOR_FAULTS_SEED");
    eprintln!(
        "crash test: {crashes} crashes of {runs} runs, seed {} (SERVITOR_FAULTS_SEED)",
        rng.seed()
    );
    let started = Instant::now();
    let mut wd = Workdir::new().gate("hold");
    for job in &CRASH_JOBS {
        wd = wd
            .job(
                job.name,
                &pattern_script(job.lines, job.hold_after, job.exit),
            )
            .input_spec(job.name, r#"{"TOKEN": {}}"#);
    }
    let mut daemon = wd.daemon().args(["--workers", "3"]).start();
    let mut figures = CrashFigures::default();
    let mut found = Findings::default();
    let mut acknowledged = Acknowledged::new();
    let mut tokens = HashMap::new();
    let mut checked = HashSet::new();

    for crash in 0..crashes {
        // Mostly quick runs, some long ones, and some that stay running at the gate.
        let plan: Vec<(&'static str, String)> = (0..runs)
            .map(|n| {
                let job = match rng.below(20) {
                    0..=11 => "crash/quick",
                    12..=16 => "crash/chatty",
                    _ => "crash/held",
                };
                (job, format!("c{crash}n{n}"))
            })
            .collect();
        figures.posted += plan.len();
        let kill_after = rng.below(runs as u64 + 1) as usize;
        let jitter = Duration::from_micros(rng.below(3000));
        let posted = Arc::new(Mutex::new(Vec::new()));
        let poster = post_runs(daemon.socket(), plan, Arc::clone(&posted));
        wait_until("runs to be acknowledged", TIMEOUT, || {
            posted.lock().unwrap().len() >= kill_after || poster.is_finished()
        });
        // A random moment, not a wait for something: a crash comes when it comes.
        std::thread::sleep(jitter);
        daemon.kill();
        let unexpected = poster.join().expect("the poster panicked");
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
        let posted = posted.lock().unwrap().clone();
        figures.killed_after.push(posted.len());
        figures.acknowledged += posted.len();
        for run in posted {
            if let Some(earlier) = acknowledged.insert((run.job, run.id), run.token.clone()) {
                found.problem(format!(
                    "{} #{} was acknowledged twice: to {earlier} and to {}",
                    run.job, run.id, run.token
                ));
            }
        }

        check_state_files(
            &wd,
            &acknowledged,
            &format!("crash {crash}, as left"),
            &mut found,
        );

        // A job process the killed daemon was starting holds a copy of its descriptors,
        // the lock's among them, until its exec is done: a moment, on a busy machine. A
        // restart then would refuse to start, naming the dead daemon (see the report).
        if !lock_is_free(&wd) {
            figures.lock_still_held += 1;
            wait_until("the killed daemon's lock to be released", TIMEOUT, || {
                lock_is_free(&wd)
            });
        }
        daemon.start_again();
        wait_ready(&daemon);
        // Once recovered, every run still `running` has a process (or is ending), and the
        // runs left `created` run again: nothing stays either for good.
        for (job, execution) in unfinished(&daemon) {
            let id = execution.execution_id;
            if execution.status == Created {
                figures.queued_at_restart += 1;
                continue;
            }
            figures.running_at_restart += 1;
            wait_until(
                &format!("{job} #{id} to have a process or end"),
                TIMEOUT,
                || {
                    run_processes(wd.path())
                        .iter()
                        .any(|p| p.job == job && p.execution == id)
                        || daemon.execution(job, &id).status.is_terminal()
                },
            );
        }
        let hold = wd.hold_gate_open("hold", 2 * runs + 8);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = unfinished(&daemon);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "crash {crash}: runs never ended: {:#?}\nprocesses: {:?}",
                left.iter()
                    .map(|(job, e)| format!("{job} #{} {:?}", e.execution_id, e.status_history))
                    .collect::<Vec<_>>(),
                run_processes(wd.path())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        wait_until("the runs' processes to be gone", TIMEOUT, || {
            job_processes(wd.path()).is_empty()
        });
        drop(hold);
        let zombies = procfs::zombie_children(daemon.pid());
        assert!(zombies.is_empty(), "servitord left zombies: {zombies:?}");

        for job in &CRASH_JOBS {
            for execution in daemon.executions(job.name) {
                if checked.insert((job.name, execution.execution_id.clone())) {
                    check_execution(
                        &daemon,
                        job,
                        &execution,
                        &acknowledged,
                        &mut tokens,
                        &mut figures,
                        &mut found,
                    );
                }
            }
        }
        check_state_files(
            &wd,
            &acknowledged,
            &format!("crash {crash}, repaired"),
            &mut found,
        );
    }

    // Every acknowledged run is still there, and later crashes damaged nothing.
    daemon.restart();
    wait_ready(&daemon);
    let mut tokens = HashMap::new();
    let mut again = CrashFigures::default();
    for job in &CRASH_JOBS {
        let executions = daemon.executions(job.name);
        figures.executions += executions.len();
        let ids: HashSet<u64> = executions
            .iter()
            .map(|e| e.execution_id.parse().unwrap())
            .collect();
        for ((name, id), token) in &acknowledged {
            if *name == job.name && !ids.contains(id) {
                found.problem(format!(
                    "{name} #{id} ({token}) was acknowledged, then lost"
                ));
            }
        }
        for execution in &executions {
            check_execution(
                &daemon,
                job,
                execution,
                &acknowledged,
                &mut tokens,
                &mut again,
                &mut found,
            );
        }
    }
    eprintln!(
        "crash test: {crashes} crashes survived in {:.1?}: {} runs posted, {} acknowledged, {} executions recorded; at the restarts {} runs were running and {} queued; {} running runs re-adopted, {} found gone, {} caught starting and failed as \"may have run\"; {} restarts waited for the lock; killed after {:?} acknowledged runs",
        started.elapsed(),
        figures.posted,
        figures.acknowledged,
        figures.executions,
        figures.running_at_restart,
        figures.queued_at_restart,
        figures.adopted,
        figures.vanished,
        figures.start_unknown,
        figures.lock_still_held,
        figures.killed_after,
    );
    found.problems.sort();
    found.problems.dedup();
    assert!(
        found.problems.is_empty(),
        "{} problems (replay with SERVITOR_FAULTS_SEED={}):\n{}",
        found.problems.len(),
        rng.seed(),
        found.problems.join("\n")
    );
}

/// A crash between starting a run's process and saving its `running` status, made
/// certain: the run's `status_history.tsv` is swapped for a FIFO while it waits in the
/// queue, so the daemon blocks appending `running` (opening a FIFO for writing waits
/// for a reader) after it has started the process, and is killed there. The file is
/// then put back as the crash leaves it, with `created` only. The next daemon must not
/// start the run a second time: it adopts its process, or fails the run, saying so.
#[test]
fn a_run_started_before_the_crash_is_not_started_again() {
    let wd = Workdir::new()
        .job("blocker", &sh(&wait_gate("blocker-gate")))
        .job(
            "once",
            &sh(&format!(
                "echo \"attempt $$\"\n{}\necho done",
                wait_gate("gate")
            )),
        )
        .gate("blocker-gate")
        .gate("gate");
    let mut daemon = wd.daemon().args(["--workers", "1"]).start();
    let blocker = daemon.run("blocker", &[]);
    daemon.wait_status("blocker", &blocker, Running);
    let id = daemon.run("once", &[]);
    let history = wd.join(format!(
        "state/jobs/once/executions/{id}/status_history.tsv"
    ));
    let created = std::fs::read_to_string(&history).unwrap();
    std::fs::remove_file(&history).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &history,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();

    wd.open_gate("blocker-gate");
    let log = wd.join(format!("state/jobs/once/executions/{id}/logs/main.txt"));
    wait_until("the run's process to start", TIMEOUT, || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("attempt"))
    });
    daemon.kill();
    std::fs::remove_file(&history).unwrap();
    std::fs::write(&history, &created).unwrap();
    let first = run_processes(wd.path());
    assert_eq!(first.len(), 1, "{first:?}");

    wait_until("the killed daemon's lock to be released", TIMEOUT, || {
        lock_is_free(&wd)
    });
    daemon.start_again();
    wait_ready(&daemon);
    let hold = wd.hold_gate_open("gate", 4);
    let ended = daemon.wait_ended("once", &id);
    wait_until("the run's process to end", TIMEOUT, || {
        run_processes(wd.path()).is_empty()
    });
    drop(hold);
    let text = String::from_utf8(daemon.log_of("once", &id)).unwrap();
    assert_eq!(
        text.matches("attempt").count(),
        1,
        "the run ran twice: {text:?}; {ended:?}; servitord's log:\n{}",
        daemon.log()
    );
    let result = ended.result.expect("a result");
    assert_eq!(
        (ended.status, result.exit_code),
        (Failure, -1),
        "{result:?}"
    );
    assert!(
        result.message.contains("servitord"),
        "the result does not say what happened: {result:?}"
    );
}
