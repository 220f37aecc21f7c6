//! How costs grow: with the executions of a job, and with the number of jobs. Each
//! point is its own daemon on a working directory of that size.

use std::io;
use std::time::Instant;

use crate::Bench;
use crate::fixture;
use crate::reads::time_requests;
use crate::report::{Row, Samples, Table, Target, Unit};

const STARTS: usize = 3;

pub fn run(bench: &mut Bench) -> io::Result<()> {
    executions(bench)?;
    jobs(bench)
}

fn executions(bench: &mut Bench) -> io::Result<()> {
    let sizes = &bench.sizes;
    let history = fixture::history_jobs(sizes.list_executions, &sizes.exec_scales);
    let big = fixture::big_state(&bench.fixtures, sizes.jobs, &history)?;
    let mut table = Table::new(
        "Executions of one job (N finished executions in state/; medians)",
        &[
            "N",
            "start",
            "busy until",
            "RSS",
            "get_list (all)",
            "answer size",
            "page of 50",
            "get",
        ],
    );
    for n in sizes.exec_scales.clone() {
        let root = fixture::borrowed_history(
            &bench.work,
            &format!("executions-{n}"),
            &big,
            &format!("scale/e{n}"),
        )?;
        let start = starts(bench, &root)?;
        let (daemon, ready) = bench.launch.start(&root)?;
        let indexed = daemon.settle(Instant::now() - ready);
        let rss = daemon.rss_mib();
        if Some(&n) == bench.sizes.exec_scales.last() {
            bench.rows.push(Row::new(
                format!("RSS with {n} executions indexed (one job)"),
                Unit::MiB,
                [rss].into_iter().collect(),
                Target::MedianAtMost(64.0),
            ));
        }
        let mut conn = daemon.conn();
        let all = "/api/jobs/executions/get_list?job_id=job";
        let size = conn.get(all)?.body.len();
        let list = time_requests(&mut conn, all, (2_000_000 / n).clamp(3, 50))?;
        let page = format!("{all}&limit=50&before={}", n / 2 + 1);
        let page = time_requests(&mut conn, &page, 50)?;
        let get = format!("/api/jobs/executions/get?job_id=job&execution_id={}", n / 2);
        let get = time_requests(&mut conn, &get, 50)?;
        table.push(vec![
            n.to_string(),
            Unit::Ms.format(start.median()),
            Unit::Ms.format(indexed.as_secs_f64() * 1000.0),
            Unit::MiB.format(rss),
            Unit::Ms.format(list.median()),
            format!("{:.2} MB", size as f64 / 1e6),
            Unit::Ms.format(page.median()),
            Unit::Ms.format(get.median()),
        ]);
    }
    bench.series.push(table);
    Ok(())
}

fn jobs(bench: &mut Bench) -> io::Result<()> {
    let mut table = Table::new(
        "Jobs (N jobs in nested folders, one in ten with an input spec, no history; medians)",
        &["N", "start", "RSS", "jobs/get_list", "jobs/get"],
    );
    for n in bench.sizes.job_scales.clone() {
        let root = fixture::cached(&bench.fixtures, &format!("jobs-{n}"), |root| {
            fixture::write_jobs(&root.join("config/jobs"), n)
        })?;
        let start = starts(bench, &root)?;
        let (daemon, _) = bench.launch.start(&root)?;
        daemon.settle(Instant::now());
        let rss = daemon.rss_mib();
        let mut conn = daemon.conn();
        let list = time_requests(&mut conn, "/api/jobs/get_list", (200_000 / n).clamp(5, 100))?;
        let get = time_requests(&mut conn, "/api/jobs/get?job_id=team-0/svc-0/job-0", 50)?;
        table.push(vec![
            n.to_string(),
            Unit::Ms.format(start.median()),
            Unit::MiB.format(rss),
            Unit::Ms.format(list.median()),
            Unit::Ms.format(get.median()),
        ]);
    }
    bench.series.push(table);
    Ok(())
}

/// Spawn → first answer, a few times (killed after each: stopping gracefully would
/// wait for the history scan that follows a start).
fn starts(bench: &Bench, root: &std::path::Path) -> io::Result<Samples> {
    let mut samples = Samples::default();
    for _ in 0..STARTS {
        let (daemon, ready) = bench.launch.start(root)?;
        samples.push_ms(ready);
        daemon.kill();
    }
    Ok(samples)
}
