//! Reads while runs go through: the latency of `GET`s from one client, paced like a
//! user's page (one request every 2 ms), on the idle daemon and while a batch of
//! trivial runs is posted and run, in the same run. Reads must stay flat: the API and
//! the runs do not wait for each other.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::client::Conn;
use crate::report::{Row, Samples, Target, Unit};
use crate::runs::{self, Runs, TRIVIAL_JOB};

const PACE: Duration = Duration::from_millis(2);

pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let (count, clients) = (bench.sizes.runs_per_batch, bench.sizes.posting_clients);
    let mut conn = runs.daemon.conn();
    runs.events.drain();
    let id = runs::post(&mut conn, TRIVIAL_JOB, "")?;
    runs.events
        .wait(|seen| seen.job == TRIVIAL_JOB && seen.execution == id && seen.is_terminal())?;
    let targets = [
        ("GET jobs/get_list", "/api/jobs/get_list".to_owned()),
        (
            "GET executions/get",
            format!("/api/jobs/executions/get?job_id={TRIVIAL_JOB}&execution_id={id}"),
        ),
    ];

    let requests = bench.sizes.requests;
    let mut idle = vec![Samples::default(); targets.len()];
    let mut rounds = 0;
    sample(&mut conn, &targets, &mut idle, || {
        rounds += 1;
        rounds <= requests
    })?;

    let done = AtomicBool::new(false);
    let (busy, batch) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut busy = vec![Samples::default(); targets.len()];
            sample(&mut conn, &targets, &mut busy, || {
                !done.load(Ordering::Relaxed)
            })?;
            io::Result::Ok(busy)
        });
        let batch = runs::batch(runs, count, clients);
        done.store(true, Ordering::Relaxed);
        let busy = reader.join().expect("the reader panicked");
        io::Result::Ok((busy?, batch?))
    })?;

    let mut p99s = Vec::new();
    for ((name, _), (idle, busy)) in targets.iter().zip(idle.into_iter().zip(busy)) {
        let idle_median = idle.median();
        p99s.push(format!(
            "{name} {} idle, {} under load",
            Unit::Ms.format(idle.percentile(0.99)),
            Unit::Ms.format(busy.percentile(0.99))
        ));
        bench.rows.push(Row::new(
            format!("{name}, idle daemon"),
            Unit::Ms,
            idle,
            Target::None,
        ));
        bench.rows.push(
            Row::new(
                format!("{name} while {count} runs are posted and run"),
                Unit::Ms,
                busy,
                Target::None,
            )
            .with_floor(idle_median),
        );
    }
    bench.notes.push(format!(
        "GETs under load: one client sent each GET in turn every {} ms on one kept-alive \
         connection; the batch of {count} runs beside it ({clients} posting clients) went \
         at {:.0} runs/s. p99: {}.",
        PACE.as_millis(),
        batch.runs_per_sec,
        p99s.join("; ")
    ));
    Ok(())
}

/// Sends each of `targets` in turn, one request per `PACE`, while `more()`; records
/// each request's time, from sending it to its last byte.
fn sample(
    conn: &mut Conn,
    targets: &[(&str, String)],
    samples: &mut [Samples],
    mut more: impl FnMut() -> bool,
) -> io::Result<()> {
    let mut next = Instant::now();
    while more() {
        for ((_, target), samples) in targets.iter().zip(samples.iter_mut()) {
            next += PACE;
            let began = Instant::now();
            let answer = conn.get(target)?;
            if answer.status != 200 {
                return Err(io::Error::other(format!(
                    "GET {target}: {} {}",
                    answer.status,
                    answer.text()
                )));
            }
            samples.push_ms(began.elapsed());
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    Ok(())
}
