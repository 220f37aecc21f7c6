//! Cancelling a running job: until the `cancelled` event, and until its process group
//! is gone.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, test_kill_process_group};

use crate::Bench;
use crate::report::{Row, Samples, Target, Unit};
use crate::runs::{Runs, SLEEPER_JOB, post};

/// Cancel a running job (a shell waiting on a child): until the `cancelled` event, and
/// until its process group is gone.
pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let mut conn = runs.daemon.conn();
    let (mut cancelled, mut gone) = (Samples::default(), Samples::default());
    for _ in 0..bench.sizes.cancel_runs {
        runs.events.drain();
        let id = post(&mut conn, SLEEPER_JOB, "")?;
        runs.events
            .wait(|seen| seen.is(SLEEPER_JOB, &id, "running"))?;
        let group = wait_for_pid(&runs.log_path(SLEEPER_JOB, &id))?;
        wait_for_sleep(group)?;
        let began = Instant::now();
        let answer = conn.request(
            "POST",
            &format!("/api/jobs/executions/cancel?job_id={SLEEPER_JOB}&execution_id={id}"),
        )?;
        if answer.status != 200 {
            return Err(io::Error::other(format!("cancel: {}", answer.text())));
        }
        let end = runs
            .events
            .wait(|seen| seen.job == SLEEPER_JOB && seen.execution == id && seen.is_terminal())?;
        if end.status.as_deref() != Some("cancelled") {
            return Err(io::Error::other(format!(
                "a cancelled run ended {:?}",
                end.status
            )));
        }
        while group_alive(group) {
            if began.elapsed() > Duration::from_secs(30) {
                return Err(io::Error::other("a cancelled run's processes outlived it"));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        cancelled.push_ms(end.at - began);
        gone.push_ms(began.elapsed().max(end.at - began));
    }
    bench.rows.push(Row::new(
        "cancel → cancelled event",
        Unit::Ms,
        cancelled,
        Target::MedianAtMost(5.0),
    ));
    bench.rows.push(Row::new(
        "cancel → process group gone",
        Unit::Ms,
        gone,
        Target::MedianAtMost(5.0),
    ));
    Ok(())
}

/// The job's first line: its pid, which is its process group.
fn wait_for_pid(log: &Path) -> io::Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(pid) = text
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other("the sleeper job never wrote its pid"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// True while a process of the group is alive. Zombies do not count (where nothing
/// reaps orphans they stay, but hold nothing).
fn group_alive(group: i32) -> bool {
    let exists = Pid::from_raw(group).is_some_and(|pid| test_kill_process_group(pid).is_ok());
    exists
        && members(group)
            .iter()
            .any(|(_, state)| !matches!(state.as_str(), "Z" | "X"))
}

/// The command name and state of each process in the group.
fn members(group: i32) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_owned();
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.to_owned();
            let pgrp: i32 = fields.nth(1)?.parse().ok()?;
            (pgrp == group).then_some((comm, state))
        })
        .collect()
}

/// Waits until the job's `sleep` runs. A shell that receives SIGINT while it starts a
/// command may survive it (dash: about one time in ten within 2 ms of its start),
/// and the cancel then takes the whole grace period: that measures the job, not
/// the daemon.
fn wait_for_sleep(group: i32) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !members(group).iter().any(|(comm, _)| comm == "sleep") {
        if Instant::now() > deadline {
            return Err(io::Error::other("the sleeper job never started sleep"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}
