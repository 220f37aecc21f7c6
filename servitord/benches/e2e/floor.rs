//! The floors: what this machine can do at best, measured in the same run as the
//! daemon so that ratios hold on a noisy machine.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{ChunkDecoder, Step};
use crate::report::Samples;

/// What a floor run of the spawn loop measured.
pub struct SpawnFloor {
    pub runs_per_sec: f64,
    /// The time of each run (spawn, wait, state files).
    pub latencies: Samples,
}

/// `runs` starts of `job` from `threads` threads, as a worker would start it but with
/// nothing else around: a fresh folder, its output to a fresh file there, the same
/// process settings (own folder, own process group, stdin from /dev/null, the
/// `SERVITOR_*` variables), then three small state files written.
pub fn spawn_loop(job: &Path, dir: &Path, threads: usize, runs: usize) -> io::Result<SpawnFloor> {
    fs::create_dir_all(dir)?;
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    for n in (t..runs).step_by(threads) {
                        let began = Instant::now();
                        one_run(job, &dir.join(n.to_string()), n)?;
                        latencies.push(began.elapsed());
                    }
                    io::Result::Ok(latencies)
                })
            })
            .collect();
        let mut all = Samples::default();
        for worker in workers {
            for latency in worker.join().expect("a floor thread panicked")? {
                all.push_ms(latency);
            }
        }
        io::Result::Ok(all)
    })?;
    Ok(SpawnFloor {
        runs_per_sec: runs as f64 / started.elapsed().as_secs_f64(),
        latencies,
    })
}

fn one_run(job: &Path, run: &Path, n: usize) -> io::Result<()> {
    fs::create_dir(run)?;
    let log = File::create(run.join("main.txt"))?;
    let status = Command::new(job)
        .current_dir(job.parent().expect("a job lies in a folder"))
        .stdin(Stdio::null())
        .stderr(log.try_clone()?)
        .stdout(log)
        .process_group(0)
        .env("SERVITOR_ROOT", run)
        .env("SERVITOR_JOB", "floor")
        .env("SERVITOR_JOB_EXECUTION", n.to_string())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the floor's job failed: {status}"
        )));
    }
    fs::write(run.join("input.json"), "{}\n")?;
    fs::write(
        run.join("status_history.tsv"),
        "2024-03-17T00:59:08.123456+00:00\tcreated\n",
    )?;
    fs::write(run.join("result.tsv"), "0\t\n")
}

/// GB/s of a plain copy of `path` through a UNIX socket pair, in chunks of the size
/// the daemon reads (128 KiB), with HTTP chunk framing: what serving a log costs
/// without an HTTP stack.
pub fn socket_copy(path: &Path) -> io::Result<f64> {
    const CHUNK: usize = 128 * 1024;
    let (mut writer, mut reader) = UnixStream::pair()?;
    let mut file = File::open(path)?;
    let started = Instant::now();
    let copied = std::thread::scope(|scope| {
        let sender = scope.spawn(move || {
            let mut buffer = vec![0; CHUNK];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    return writer.write_all(b"0\r\n\r\n");
                }
                writer.write_all(format!("{n:x}\r\n").as_bytes())?;
                writer.write_all(&buffer[..n])?;
                writer.write_all(b"\r\n")?;
            }
        });
        let mut decoder = ChunkDecoder::default();
        let (mut buffer, mut start, mut end) = (vec![0; 256 * 1024], 0, 0);
        let mut bytes = 0u64;
        loop {
            let (used, step) = decoder.feed(&buffer[start..end], &mut |data: &[u8]| {
                bytes += data.len() as u64;
                true
            })?;
            start += used;
            if !matches!(step, Step::More) {
                break;
            }
            buffer.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            match reader.read(&mut buffer[end..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        sender.join().expect("the copy thread panicked")?;
        io::Result::Ok(bytes)
    })?;
    Ok(gb_per_sec(copied, started.elapsed()))
}

pub fn gb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}
