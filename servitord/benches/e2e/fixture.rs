//! Working directories. The large ones (many jobs, 100 000 finished executions in the
//! old on-disk layout) take hundreds of thousands of files, so they are built once and
//! kept under `target/bench-fixtures/`; only read-only scenarios use them. Fresh ones
//! for runs live under `target/bench-work/` and are removed when the benchmark ends
//! (never in a timed part: this ext4 creates files much more slowly for minutes after
//! mass deletes).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Bump when the layout of a cached fixture changes.
const VERSION: u32 = 1;

/// The trivial job the runs and the floor start.
pub const TRIVIAL: &str = "#!/bin/sh\necho ok\n";

pub fn write_job(path: &Path, script: &str) -> io::Result<()> {
    fs::create_dir_all(path.parent().expect("a job lies in a folder"))?;
    fs::write(path, script)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

pub fn write_spec(job: &Path, inputs: &[&str]) -> io::Result<()> {
    let fields: Vec<String> = inputs
        .iter()
        .map(|name| format!("\"{name}\": {{}}"))
        .collect();
    let mut path = job.as_os_str().to_owned();
    path.push(".input.json");
    fs::write(path, format!("{{{}}}\n", fields.join(", ")))
}

/// `count` jobs in nested folders (`team-A/svc-B/job-C`, ten to a folder), one in ten
/// with an input spec, as a real catalog would have.
pub fn write_jobs(jobs_dir: &Path, count: usize) -> io::Result<()> {
    for i in 0..count {
        let path = jobs_dir.join(format!(
            "team-{}/svc-{}/job-{}",
            i / 100,
            i / 10 % 10,
            i % 10
        ));
        write_job(&path, TRIVIAL)?;
        if i.is_multiple_of(10) {
            write_spec(&path, &["NAME", "TARGET"])?;
        }
    }
    Ok(())
}

/// Builds `<cache>/<name>` with `build` once; later calls reuse it. Built under a
/// temporary name and renamed, so an interrupted build is never taken for a whole one.
pub fn cached(
    cache: &Path,
    name: &str,
    build: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let name = format!("{name}-v{VERSION}");
    let done = cache.join(&name);
    if done.is_dir() {
        return Ok(done);
    }
    let partial = cache.join(format!("{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(partial.join("config/jobs"))?;
    eprintln!(
        "building the fixture {} (once; kept for later runs)...",
        done.display()
    );
    let started = std::time::Instant::now();
    build(&partial)?;
    fs::rename(&partial, &done)?;
    eprintln!("  built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(done)
}

/// The execution-holding jobs of the large fixture: `list/e<N>` for the listing
/// scenario, `scale/e<N>` for the scaling series.
pub fn history_jobs(list: usize, scales: &[usize]) -> Vec<(String, usize)> {
    let mut jobs = vec![(format!("list/e{list}"), list)];
    jobs.extend(scales.iter().map(|n| (format!("scale/e{n}"), *n)));
    jobs
}

/// The large read-only fixture: `jobs` jobs, of which the `history` ones have that
/// many finished executions each.
pub fn big_state(cache: &Path, jobs: usize, history: &[(String, usize)]) -> io::Result<PathBuf> {
    let total: usize = history.iter().map(|(_, n)| n).sum();
    let name = format!("state-j{jobs}-e{total}");
    cached(cache, &name, |root| {
        let jobs_dir = root.join("config/jobs");
        write_jobs(&jobs_dir, jobs.saturating_sub(history.len()))?;
        for (job, count) in history {
            write_job(&jobs_dir.join(job), TRIVIAL)?;
            write_spec(&jobs_dir.join(job), &["NAME"])?;
            write_history(
                &root.join("state/jobs").join(job).join("executions"),
                *count,
            )?;
        }
        Ok(())
    })
}

/// `count` finished executions, as the old tool left them; two threads, since file
/// creation dominates.
fn write_history(dir: &Path, count: usize) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join("last_execution.txt"), count.to_string())?;
    std::thread::scope(|scope| {
        let halves = [(1, count / 2), (count / 2 + 1, count)];
        let workers: Vec<_> = halves
            .map(|(first, last)| {
                scope.spawn(move || (first..=last).try_for_each(|n| write_execution(dir, n)))
            })
            .into_iter()
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a fixture writer panicked"))
    })
}

fn write_execution(dir: &Path, n: usize) -> io::Result<()> {
    let run = dir.join(n.to_string());
    fs::create_dir_all(run.join("logs"))?;
    // A run a minute, from 2024-01-01; one in ten with an input, one in fifty failed.
    let start = 1_704_067_200 + n as u64 * 60;
    let (status, code) = if n.is_multiple_of(50) {
        ("failure", 1)
    } else {
        ("success", 0)
    };
    let inputs = if n.is_multiple_of(10) {
        "{\n  \"NAME\": \"Ada\"\n}\n"
    } else {
        "{}\n"
    };
    fs::write(run.join("input.json"), inputs)?;
    let mut history = Vec::with_capacity(160);
    for (offset, status) in [(0, "created"), (1, "running"), (2_500_000, status)] {
        writeln!(history, "{}\t{status}", iso(start, offset))?;
    }
    fs::write(run.join("status_history.tsv"), history)?;
    fs::write(run.join("result.tsv"), format!("{code}\t\n"))?;
    fs::write(run.join("logs/main.txt"), format!("run {n}: hello\n"))
}

/// `2024-03-17T00:59:08.123456+00:00` for `seconds` after the epoch plus `micros`.
fn iso(seconds: u64, micros: u64) -> String {
    let micros = seconds * 1_000_000 + micros;
    let (days, rest) = (micros / 86_400_000_000, micros % 86_400_000_000);
    let (y, m, d) = civil(days as i64);
    let secs = rest / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000
    )
}

/// Year, month, day of a day number since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A fresh working directory under `work`, with `config/jobs/`.
pub fn fresh(work: &Path, name: &str) -> io::Result<PathBuf> {
    let root = work.join(name);
    fs::create_dir_all(root.join("config/jobs"))?;
    Ok(root)
}

/// A working directory whose only job, `job`, has the history of `source` (a job of
/// the large fixture) through a symlink: the scaling series without more copies.
pub fn borrowed_history(work: &Path, name: &str, big: &Path, source: &str) -> io::Result<PathBuf> {
    let root = fresh(work, name)?;
    write_job(&root.join("config/jobs/job"), TRIVIAL)?;
    fs::create_dir_all(root.join("state/jobs"))?;
    std::os::unix::fs::symlink(
        big.join("state/jobs").join(source),
        root.join("state/jobs/job"),
    )?;
    Ok(root)
}
