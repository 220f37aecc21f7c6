//! Runs on a Slurm cluster (`"executor": "slurm"`), against the cluster driven by hand
//! in the same run: `sbatch` of the same script, then `squeue` every 100 ms until the
//! job has left it. Needs `sbatch` on PATH and `SLURM_CONF` (a local one:
//! `eval "$(scripts/slurm-local.sh start)"`); skipped, saying so, without them.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::events::Events;
use crate::fixture::{self, TRIVIAL};
use crate::report::{Row, Samples, Target, Unit};
use crate::runs::{self, Runs, TRIVIAL_JOB};

/// The daemon's default: one `squeue` a second for all runs.
const POLL: &str = "1s";
/// How often the baseline asks `squeue` whether its jobs are still there.
const BASELINE_POLL: Duration = Duration::from_millis(100);
/// States in which a job is still on the cluster (pending, configuring, running,
/// completing, suspended).
const LIVE_STATES: &str = "--states=PD,CF,R,CG,S";
const TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(bench: &mut Bench) -> io::Result<()> {
    if let Some(missing) = missing_cluster() {
        let note = format!("slurm: skipped, {missing}");
        eprintln!("e2e: {note}");
        bench.notes.push(note);
        return Ok(());
    }
    let root = fixture::fresh(&bench.work, "slurm")?;
    let job = root.join("config/jobs").join(TRIVIAL_JOB);
    fixture::write_job(&job, TRIVIAL)?;
    std::fs::write(
        job.with_file_name("trivial.settings.json"),
        r#"{"executor": "slurm"}"#,
    )?;
    let mut launch = bench.launch.clone();
    launch.args = vec!["--slurm-poll".into(), POLL.into()];
    let (daemon, _) = launch.start(&root)?;
    let events = Events::open(&daemon.socket);
    let runs = Runs {
        daemon,
        events,
        root,
    };
    let baseline_dir = bench.work.join("slurm-baseline");
    std::fs::create_dir_all(&baseline_dir)?;
    let name = format!("servitor-bench-{}", std::process::id());

    latency(bench, &runs, &job, &baseline_dir, &name)?;
    throughput(bench, &runs, &job, &baseline_dir, &name)
}

/// What is missing to run on a cluster, if anything.
fn missing_cluster() -> Option<String> {
    let sbatch = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("sbatch").is_file()));
    if !sbatch {
        return Some("sbatch is not installed".into());
    }
    if std::env::var_os("SLURM_CONF").is_none() {
        return Some(
            "SLURM_CONF is not set (eval \"$(scripts/slurm-local.sh start)\" starts a local cluster)"
                .into(),
        );
    }
    None
}

/// One run at a time: POST → `running` and → terminal event, against one `sbatch` and
/// `squeue` polls until the job has left the queue.
fn latency(bench: &mut Bench, runs: &Runs, job: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let count = bench.sizes.slurm_latency_runs;
    let mut baseline = Samples::default();
    for _ in 0..count {
        let began = Instant::now();
        submit(job, dir, name)?;
        wait_gone(name)?;
        baseline.push_ms(began.elapsed());
    }
    let mut conn = runs.daemon.conn();
    let (mut running, mut ended) = (Samples::default(), Samples::default());
    for _ in 0..count {
        runs.events.drain();
        let began = Instant::now();
        let id = runs::post(&mut conn, TRIVIAL_JOB, "")?;
        let start = runs
            .events
            .wait(|seen| seen.is(TRIVIAL_JOB, &id, "running"))?;
        let end = runs
            .events
            .wait(|seen| seen.job == TRIVIAL_JOB && seen.execution == id && seen.is_terminal())?;
        if end.status.as_deref() != Some("success") {
            return Err(io::Error::other(format!(
                "a Slurm run ended {:?}",
                end.status
            )));
        }
        running.push_ms(start.at - began);
        ended.push_ms(end.at - began);
    }
    let floor = baseline.median();
    bench.rows.push(Row::new(
        "slurm floor: sbatch, then squeue every 100 ms until the job is gone",
        Unit::Ms,
        baseline,
        Target::None,
    ));
    bench.rows.push(Row::new(
        format!("slurm: POST run → running event (--slurm-poll {POLL})"),
        Unit::Ms,
        running,
        Target::None,
    ));
    bench.rows.push(
        Row::new(
            format!("slurm: POST run → terminal event (--slurm-poll {POLL})"),
            Unit::Ms,
            ended,
            Target::None,
        )
        .with_floor(floor),
    );
    Ok(())
}

/// `slurm_runs` runs posted at once, against as many `sbatch` from as many threads
/// and `squeue` polls until all have left the queue; and how often the daemon called
/// `squeue` meanwhile (`servitor_slurm_polls_total`).
fn throughput(
    bench: &mut Bench,
    runs: &Runs,
    job: &Path,
    dir: &Path,
    name: &str,
) -> io::Result<()> {
    let (count, clients) = (bench.sizes.slurm_runs, bench.sizes.posting_clients);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    (c..count)
                        .step_by(clients)
                        .try_for_each(|_| submit(job, dir, name))
                })
            })
            .collect();
        submitters
            .into_iter()
            .try_for_each(|s| s.join().expect("a submitter panicked"))
    })?;
    wait_gone(name)?;
    let baseline = count as f64 / started.elapsed().as_secs_f64();

    let polls_before = polls(runs)?;
    let batch = runs::batch(runs, count, clients)?;
    let polls = polls(runs)? - polls_before;
    let minutes = count as f64 / batch.runs_per_sec / 60.0;
    bench.rows.push(Row::new(
        format!("slurm floor: {count} × sbatch from {clients} threads, squeue until all gone"),
        Unit::RunsPerSec,
        [baseline].into_iter().collect(),
        Target::None,
    ));
    bench.rows.push(
        Row::new(
            format!("slurm: {count} runs posted by {clients} clients at once"),
            Unit::RunsPerSec,
            [batch.runs_per_sec].into_iter().collect(),
            Target::None,
        )
        .with_floor(baseline),
    );
    bench.notes.push(format!(
        "slurm: while {count} runs were on the cluster ({:.1} s), the daemon called squeue \
         {polls:.0} times: {:.0} a minute (--slurm-poll {POLL}); POST run took {} (median), \
         {} (p95).",
        minutes * 60.0,
        polls / minutes,
        Unit::Ms.format(batch.posts.median()),
        Unit::Ms.format(batch.posts.percentile(0.95)),
    ));
    Ok(())
}

/// `sbatch` of the job file, run in its folder, its output in `dir`.
fn submit(job: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let mut output = dir.as_os_str().to_owned();
    output.push("/%j.out");
    let status = Command::new("sbatch")
        .args(["--parsable", "--no-requeue", "--job-name", name])
        .arg("--chdir")
        .arg(job.parent().expect("a job lies in a folder"))
        .arg("--output")
        .arg(output)
        .arg(job)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("sbatch: {status}")));
    }
    Ok(())
}

/// Polls `squeue` until no job named `name` is on the cluster.
fn wait_gone(name: &str) -> io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let output = Command::new("squeue")
            .args(["--noheader", "--format=%i", LIVE_STATES, "--name", name])
            .stdin(Stdio::null())
            .output()?;
        if output.status.success() && output.stdout.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{name}: jobs still queued")));
        }
        std::thread::sleep(BASELINE_POLL);
    }
}

/// `servitor_slurm_polls_total` from `/metrics`.
fn polls(runs: &Runs) -> io::Result<f64> {
    let answer = runs.daemon.conn().get("/metrics")?;
    answer
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("servitor_slurm_polls_total "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no servitor_slurm_polls_total in /metrics"))
}
