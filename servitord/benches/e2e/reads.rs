//! The read-only scenarios, on the large cached fixture: start, memory with the whole
//! history indexed, the listings, and request latency against concurrent clients.

use std::io;
use std::time::{Duration, Instant};

use crate::Bench;
use crate::client::Conn;
use crate::fixture;
use crate::report::{Row, Samples, Table, Target, Unit};

/// Requests sent before measuring, so that caches and lazily loaded state are warm.
const WARM_UP: usize = 3;

pub fn run(bench: &mut Bench) -> io::Result<()> {
    let sizes = &bench.sizes;
    let history = fixture::history_jobs(sizes.list_executions, &sizes.exec_scales);
    let total: usize = history.iter().map(|(_, n)| n).sum();
    let big = fixture::big_state(&bench.fixtures, sizes.jobs, &history)?;
    let largest = *sizes.exec_scales.last().expect("at least one scale");
    let jobs = sizes.jobs;

    let mut starts = Samples::default();
    for _ in 0..sizes.start_iterations {
        let (daemon, ready) = bench.launch.start(&big)?;
        starts.push_ms(ready);
        daemon.kill();
    }
    bench.rows.push(Row::new(
        format!("start → API answers ({jobs} jobs, {total} executions)"),
        Unit::Ms,
        starts,
        Target::MedianAtMost(50.0),
    ));

    let (daemon, ready) = bench.launch.start(&big)?;
    let indexed = daemon.settle(Instant::now() - ready);
    bench.rows.push(Row::new(
        format!("RSS with {jobs} jobs and {total} executions indexed (reference)"),
        Unit::MiB,
        [daemon.rss_mib()].into_iter().collect(),
        Target::None,
    ));
    bench.notes.push(format!(
        "After a start on the large fixture the daemon indexed the whole history in the \
         background: it was busy (running or waiting for a CPU) until {:.2} s after the start.",
        indexed.as_secs_f64()
    ));

    let mut conn = daemon.conn();
    let list = &history[0].0;
    let scale = format!("scale/e{largest}");
    let requests = [
        (
            format!("GET jobs/get_list ({jobs} jobs, nested)"),
            "/api/jobs/get_list".to_owned(),
            1.0,
        ),
        (
            format!(
                "GET executions/get_list ({} executions)",
                sizes.list_executions
            ),
            format!("/api/jobs/executions/get_list?job_id={list}"),
            5.0,
        ),
        (
            format!("GET executions/get_list, page of 50 of {largest}"),
            format!(
                "/api/jobs/executions/get_list?job_id={scale}&limit=50&before={}",
                largest / 2
            ),
            1.0,
        ),
        (
            "GET executions/get".to_owned(),
            format!(
                "/api/jobs/executions/get?job_id={list}&execution_id={}",
                sizes.list_executions / 2
            ),
            0.3,
        ),
    ];
    for (scenario, target, at_most) in requests {
        let samples = time_requests(&mut conn, &target, sizes.requests)?;
        bench.rows.push(Row::new(
            scenario,
            Unit::Ms,
            samples,
            Target::MedianAtMost(at_most),
        ));
    }

    let get = format!(
        "/api/jobs/executions/get?job_id={list}&execution_id={}",
        sizes.list_executions / 2
    );
    let mut table = Table::new(
        "Concurrent clients: GET executions/get from C clients at once (keep-alive)",
        &["clients", "median", "p95", "requests/s"],
    );
    for clients in sizes.concurrency_scales.clone() {
        let (latency, rate) = concurrent(&daemon.socket, &get, clients, sizes.requests * 10)?;
        table.push(vec![
            clients.to_string(),
            Unit::Ms.format(latency.median()),
            Unit::Ms.format(latency.percentile(0.95)),
            format!("{rate:.0}"),
        ]);
    }
    bench.series.push(table);
    Ok(())
}

/// Times `count` requests of `target` on one kept-alive connection.
pub fn time_requests(conn: &mut Conn, target: &str, count: usize) -> io::Result<Samples> {
    let mut samples = Samples::default();
    for i in 0..WARM_UP + count {
        let began = Instant::now();
        let answer = conn.get(target)?;
        let elapsed = began.elapsed();
        if answer.status != 200 {
            return Err(io::Error::other(format!(
                "GET {target}: {} {}",
                answer.status,
                answer.text()
            )));
        }
        if i >= WARM_UP {
            samples.push_ms(elapsed);
        }
    }
    Ok(samples)
}

/// `total` requests of `target` from `clients` threads, each on its own connection;
/// the latency of each request, and the requests answered per second.
pub fn concurrent(
    socket: &std::path::Path,
    target: &str,
    clients: usize,
    total: usize,
) -> io::Result<(Samples, f64)> {
    let each = total.div_ceil(clients);
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut conn = Conn::open(socket)?;
                    let mut times: Vec<Duration> = Vec::with_capacity(each);
                    for _ in 0..each {
                        let began = Instant::now();
                        let answer = conn.get(target)?;
                        if answer.status != 200 {
                            return Err(io::Error::other(format!(
                                "GET {target}: {}",
                                answer.status
                            )));
                        }
                        times.push(began.elapsed());
                    }
                    Ok(times)
                })
            })
            .collect();
        let mut all = Samples::default();
        for thread in threads {
            for time in thread.join().expect("a client thread panicked")? {
                all.push_ms(time);
            }
        }
        io::Result::Ok(all)
    })?;
    let rate = (each * clients) as f64 / started.elapsed().as_secs_f64();
    Ok((latencies, rate))
}
