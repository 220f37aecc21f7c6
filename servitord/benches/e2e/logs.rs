//! Logs: a large finished one read whole, and following a running one.

use std::fs;
use std::io;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::Bench;
use crate::client::Conn;
use crate::floor;
use crate::report::{Row, Samples, Target, Unit};
use crate::runs::{BIG_LOG_JOB, Runs, TICKER_JOB, post};

/// A large finished log read whole, against a plain copy through a socket; then the
/// delay from a job writing a line to a follower receiving it.
pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let sizes = &bench.sizes;
    let mut conn = runs.daemon.conn();
    let size = sizes.log_bytes;
    let id = post(&mut conn, BIG_LOG_JOB, &format!("&input_value_SIZE={size}"))?;
    let end = runs
        .events
        .wait(|seen| seen.job == BIG_LOG_JOB && seen.execution == id && seen.is_terminal())?;
    let path = runs.log_path(BIG_LOG_JOB, &id);
    if end.status.as_deref() != Some("success") || fs::metadata(&path)?.len() != size as u64 {
        return Err(io::Error::other("the big-log job did not write its log"));
    }
    let (mut copies, mut served) = (Samples::default(), Samples::default());
    let target = format!("/api/jobs/executions/logs/get?job_id={BIG_LOG_JOB}&execution_id={id}");
    for _ in 0..sizes.log_reads {
        copies.push(floor::socket_copy(&path)?);
        let began = Instant::now();
        let mut stream = Conn::open_stream(&runs.daemon.socket, &target)?;
        let mut bytes = 0u64;
        stream.chunks(|data| {
            bytes += data.len() as u64;
            true
        })?;
        if bytes != size as u64 {
            return Err(io::Error::other(format!(
                "logs/get sent {bytes} of {size} bytes"
            )));
        }
        served.push(floor::gb_per_sec(bytes, began.elapsed()));
    }
    let mib = size >> 20;
    let floor = copies.median();
    bench.rows.push(Row::new(
        format!("floor: plain copy of the {mib} MiB log through a socket"),
        Unit::GBPerSec,
        copies,
        Target::None,
    ));
    bench.rows.push(
        Row::new(
            format!("logs/get of a finished {mib} MiB log"),
            Unit::GBPerSec,
            served,
            Target::MedianAtLeast(2.0),
        )
        .with_floor(floor),
    );

    let lines = follow_latency(runs, sizes.follow_lines)?;
    bench.rows.push(Row::new(
        "follow: job writes a line → follower has it",
        Unit::Ms,
        lines,
        Target::AtMost(2.0, 10.0),
    ));
    Ok(())
}

/// Follows a ticker run from its start; each line holds the time it was written.
fn follow_latency(runs: &Runs, count: usize) -> io::Result<Samples> {
    let id = post(
        &mut runs.daemon.conn(),
        TICKER_JOB,
        &format!("&input_value_COUNT={count}"),
    )?;
    let target = format!("/api/jobs/executions/logs/get?job_id={TICKER_JOB}&execution_id={id}");
    let mut stream = Conn::open_stream(&runs.daemon.socket, &target)?;
    let mut delays = Samples::default();
    let mut line = Vec::new();
    stream.chunks(|data| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        for piece in data.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(piece);
            if line.ends_with(b"\n") {
                let written: u128 = String::from_utf8_lossy(&line).trim().parse().unwrap_or(now);
                delays.push(now.saturating_sub(written) as f64 / 1e6);
                line.clear();
            }
        }
        true
    })?;
    if delays.len() != count {
        return Err(io::Error::other(format!(
            "followed {} of {count} lines",
            delays.len()
        )));
    }
    Ok(delays)
}
