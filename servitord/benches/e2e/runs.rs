//! The daemon that runs jobs, on a fresh working directory, and its scenarios:
//! throughput against the spawn floor, memory after many runs, the latency of a run;
//! `cancel`, `ctl`, `logs` and `load` use the same daemon.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use crate::Bench;
use crate::client::Conn;
use crate::daemon::{Daemon, cpu};
use crate::events::Events;
use crate::fixture::{self, TRIVIAL};
use crate::floor;
use crate::report::{Row, Samples, Table, Target, Unit};
use crate::{cancel, ctl, reads_under_load};

pub const TRIVIAL_JOB: &str = "bench/trivial";
pub const TICKER_JOB: &str = "bench/ticker";
pub const SLEEPER_JOB: &str = "bench/sleeper";
pub const BIG_LOG_JOB: &str = "bench/big-log";

/// Prints `date +%s%N` (its own clock reading) every 50 ms, `COUNT` times, after a
/// pause that lets the follower connect first.
const TICKER: &str = "#!/bin/sh\nsleep 0.3\ni=0\nwhile [ \"$i\" -lt \"$COUNT\" ]; do\n  date +%s%N\n  sleep 0.05\n  i=$((i + 1))\ndone\n";
/// Its process id (its process group), then waits in a child: a cancel must stop both.
const SLEEPER: &str = "#!/bin/sh\necho $$\nsleep 60\n";
const BIG_LOG: &str = "#!/bin/sh\nyes 'a log line of a typical length, with some words in it to look like one' | head -c \"$SIZE\"\n";

/// The daemon of the run scenarios, with an event stream open on it.
pub struct Runs {
    pub daemon: Daemon,
    pub events: Events,
    pub root: PathBuf,
}

/// Posts a run; returns its execution id. `inputs` is `&input_value_K=V...`.
pub fn post(conn: &mut Conn, job: &str, inputs: &str) -> io::Result<String> {
    let answer = conn.request("POST", &format!("/api/jobs/run?job_id={job}{inputs}"))?;
    answer
        .field("execution_id")
        .filter(|_| answer.status == 200)
        .ok_or_else(|| io::Error::other(format!("POST run {job}: {}", answer.text())))
}

impl Runs {
    pub fn log_path(&self, job: &str, id: &str) -> PathBuf {
        self.root
            .join("state/jobs")
            .join(job)
            .join("executions")
            .join(id)
            .join("logs/main.txt")
    }
}

pub fn with_daemon(
    bench: &mut Bench,
    scenarios: impl FnOnce(&mut Bench, &Runs) -> io::Result<()>,
) -> io::Result<()> {
    let root = fixture::fresh(&bench.work, "runs")?;
    let jobs = root.join("config/jobs");
    fixture::write_job(&jobs.join(TRIVIAL_JOB), TRIVIAL)?;
    fixture::write_job(&jobs.join(TICKER_JOB), TICKER)?;
    fixture::write_spec(&jobs.join(TICKER_JOB), &["COUNT"])?;
    fixture::write_job(&jobs.join(SLEEPER_JOB), SLEEPER)?;
    fixture::write_job(&jobs.join(BIG_LOG_JOB), BIG_LOG)?;
    fixture::write_spec(&jobs.join(BIG_LOG_JOB), &["SIZE"])?;
    let (daemon, _) = bench.launch.start(&root)?;
    daemon.settle(Instant::now());
    bench.rows.push(Row::new(
        "RSS idle (just started, 4 jobs)",
        Unit::MiB,
        [daemon.rss_mib()].into_iter().collect(),
        Target::MedianAtMost(10.0),
    ));
    let events = Events::open(&daemon.socket);
    scenarios(
        bench,
        &Runs {
            daemon,
            events,
            root,
        },
    )
}

/// What a batch of runs measured.
pub struct Batch {
    pub runs_per_sec: f64,
    pub posts: Samples,
}

/// `runs` runs of the trivial job posted by `clients` clients at once; the rate is
/// runs over the time from the first post to the last terminal event.
pub fn batch(runs: &Runs, count: usize, clients: usize) -> io::Result<Batch> {
    runs.events.drain();
    let daemon = &runs.daemon;
    let started = Instant::now();
    let (posts, last, failed) = std::thread::scope(|scope| {
        let posters: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut conn = daemon.conn();
                    let mut times = Vec::new();
                    for _ in (c..count).step_by(clients) {
                        let began = Instant::now();
                        post(&mut conn, TRIVIAL_JOB, "")?;
                        times.push(began.elapsed());
                    }
                    io::Result::Ok(times)
                })
            })
            .collect();
        let (mut last, mut failed) = (started, 0);
        for _ in 0..count {
            let end = runs
                .events
                .wait(|seen| seen.job == TRIVIAL_JOB && seen.is_terminal())?;
            failed += usize::from(end.status.as_deref() != Some("success"));
            last = end.at;
        }
        let mut posts = Samples::default();
        for poster in posters {
            for time in poster.join().expect("a poster panicked")? {
                posts.push_ms(time);
            }
        }
        io::Result::Ok((posts, last, failed))
    })?;
    if failed > 0 {
        return Err(io::Error::other(format!(
            "{failed} of {count} trivial runs did not succeed"
        )));
    }
    Ok(Batch {
        runs_per_sec: count as f64 / last.duration_since(started).as_secs_f64(),
        posts,
    })
}

pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    throughput(bench, runs)?;
    reads_under_load::run(bench, runs)?;
    latency(bench, runs)?;
    cancel::run(bench, runs)?;
    ctl::run(bench, runs)
}

/// Batches of runs, each after a floor measurement of the same size, so that both see
/// the same machine (other work, the file system's state).
fn throughput(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let sizes = &bench.sizes;
    let (count, clients, workers) = (
        sizes.runs_per_batch,
        sizes.posting_clients,
        bench.launch.workers,
    );
    let job = runs.root.join("config/jobs").join(TRIVIAL_JOB);
    let (mut floor_rates, mut rates, mut posts) =
        (Samples::default(), Samples::default(), Samples::default());
    // CPU ticks (own, the jobs') of the floor loop and of the daemon, over all batches,
    // and of this process's clients (posting, reading events) beside the daemon.
    let (mut floor_cpu, mut daemon_cpu, mut clients_cpu) = ((0, 0), (0, 0), (0, 0));
    let pid = runs.daemon.pid().to_string();
    for b in 0..sizes.batches {
        let floor_dir = bench.work.join(format!("floor/{b}"));
        let before = cpu("self");
        floor_rates.push(floor::spawn_loop(&job, &floor_dir, workers, count)?.runs_per_sec);
        floor_cpu = add(floor_cpu, cpu("self"), before);
        let (before, clients_before) = (cpu(&pid), cpu("self"));
        let batch = batch(runs, count, clients)?;
        daemon_cpu = add(daemon_cpu, cpu(&pid), before);
        clients_cpu = add(clients_cpu, cpu("self"), clients_before);
        rates.push(batch.runs_per_sec);
        posts = batch.posts;
    }
    let total = sizes.batches * count;
    let per_run = |ticks: u64| Unit::Ms.format(ticks as f64 * 10.0 / total as f64);
    let mut cpu_table = Table::new(
        format!("CPU time per run over the {total} runs above (/proc, 10 ms ticks)"),
        &["who", "own", "the job processes"],
    );
    cpu_table.push(vec![
        "floor loop".into(),
        per_run(floor_cpu.0),
        per_run(floor_cpu.1),
    ]);
    cpu_table.push(vec![
        "servitord".into(),
        per_run(daemon_cpu.0),
        per_run(daemon_cpu.1),
    ]);
    cpu_table.push(vec![
        "its clients (this process)".into(),
        per_run(clients_cpu.0),
        "-".into(),
    ]);
    bench.series.push(cpu_table);
    let floor = floor_rates.median();
    bench.rows.push(Row::new(
        format!("floor: spawn trivial job + 3 state files, {workers} threads"),
        Unit::RunsPerSec,
        floor_rates,
        Target::None,
    ));
    bench.rows.push(
        Row::new(
            format!("{count} trivial runs, {clients} posting clients, {workers} workers"),
            Unit::RunsPerSec,
            rates,
            Target::RatioAtLeast(0.75),
        )
        .with_floor(floor),
    );
    bench.rows.push(Row::new(
        format!("  POST run while {count} runs queue (last batch)"),
        Unit::Ms,
        posts,
        Target::None,
    ));
    runs.daemon.settle(Instant::now());
    bench.rows.push(Row::new(
        format!("RSS after {total} runs"),
        Unit::MiB,
        [runs.daemon.rss_mib()].into_iter().collect(),
        Target::MedianAtMost(20.0),
    ));

    let mut table = Table::new(
        format!(
            "Posting clients: {count} trivial runs posted by C clients at once, {workers} workers"
        ),
        &["clients", "runs/s", "vs floor", "POST median", "POST p95"],
    );
    for clients in bench.sizes.poster_scales.clone() {
        let batch = batch(runs, count, clients)?;
        table.push(vec![
            clients.to_string(),
            format!("{:.0}", batch.runs_per_sec),
            format!("{:.0} %", batch.runs_per_sec / floor * 100.0),
            Unit::Ms.format(batch.posts.median()),
            Unit::Ms.format(batch.posts.percentile(0.95)),
        ]);
    }
    bench.series.push(table);
    Ok(())
}

/// `sum` plus what was used between `before` and `after`.
fn add(sum: (u64, u64), after: (u64, u64), before: (u64, u64)) -> (u64, u64) {
    (sum.0 + after.0 - before.0, sum.1 + after.1 - before.1)
}

/// One run at a time: POST, then the `running` and terminal events.
fn latency(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let count = bench.sizes.latency_runs;
    let job = runs.root.join("config/jobs").join(TRIVIAL_JOB);
    let floor = floor::spawn_loop(&job, &bench.work.join("floor/single"), 1, count)?;
    let mut conn = runs.daemon.conn();
    let (mut running, mut ended) = (Samples::default(), Samples::default());
    for _ in 0..count {
        runs.events.drain();
        let began = Instant::now();
        let id = post(&mut conn, TRIVIAL_JOB, "")?;
        let start = runs
            .events
            .wait(|seen| seen.is(TRIVIAL_JOB, &id, "running"))?;
        let end = runs
            .events
            .wait(|seen| seen.job == TRIVIAL_JOB && seen.execution == id && seen.is_terminal())?;
        running.push_ms(start.at - began);
        ended.push_ms(end.at - began);
    }
    let floor_latency = floor.latencies.median();
    bench.rows.push(Row::new(
        "floor: one spawn-and-wait + 3 state files",
        Unit::Ms,
        floor.latencies,
        Target::None,
    ));
    bench.rows.push(Row::new(
        "POST run → running event",
        Unit::Ms,
        running,
        Target::MedianAtMost(1.0),
    ));
    bench.rows.push(
        Row::new(
            "POST run → terminal event (trivial job)",
            Unit::Ms,
            ended,
            Target::MedianAtMost(3.0),
        )
        .with_floor(floor_latency),
    );
    Ok(())
}
