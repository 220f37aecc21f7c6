//! The working directory the benchmark loads, and the runs it drives over the socket.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support::{Connection, Daemon, Workdir, encode};

/// Jobs per folder, as in the issue (1,000 jobs = 20 folders of 50).
const PER_FOLDER: usize = 50;

/// `group-007/job-042`: the `n` job ids, folder by folder.
pub fn job_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| format!("group-{:03}/job-{:03}", k / PER_FOLDER, k % PER_FOLDER))
        .collect()
}

/// `n` trivial jobs; one in ten fails, so that folders have something to count.
pub fn workdir(n: usize) -> Workdir {
    let mut workdir = Workdir::new();
    for (k, id) in job_ids(n).iter().enumerate() {
        let code = if k % 10 == 7 { 1 } else { 0 };
        workdir = workdir.job(id, &format!("#!/bin/sh\nexit {code}\n"));
    }
    workdir
}

/// What the filter is given in load `round`: two jobs' full ids and a part of many.
pub fn filter_queries(n: usize, round: usize) -> Vec<String> {
    let ids = job_ids(n);
    let pick = |k: usize| ids[(k * 7919 + round * 104_729) % ids.len()].clone();
    vec![pick(1), pick(2), "job-04".into()]
}

/// Runs every job of `ids` once (from `clients` connections at once), and waits
/// until every one of those runs has ended.
pub fn run_all(daemon: &Daemon, ids: &[String], clients: usize) {
    run_all_at(&daemon.socket(), ids, clients);
}

pub fn run_all_at(socket: &Path, ids: &[String], clients: usize) {
    let started: Vec<(String, String)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut connection = Connection::open(socket).expect("connecting to servitord");
                    let mut started = Vec::new();
                    for id in ids.iter().skip(c).step_by(clients) {
                        let target = format!("/api/jobs/run?job_id={}", encode(id));
                        let answer = connection.request("POST", &target).expect("POST run");
                        assert_eq!(answer.status, 200, "POST {target}: {}", answer.text());
                        let execution = answer.value()["execution_id"]
                            .as_str()
                            .expect("an execution id")
                            .to_owned();
                        started.push((id.clone(), execution));
                    }
                    started
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a posting client"))
            .collect()
    });
    // Done when each job's latest execution is at least the one started here, ended.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut connection = Connection::open(socket).expect("connecting to servitord");
    loop {
        let answer = connection
            .request("GET", "/api/jobs/get_list")
            .expect("GET get_list");
        let jobs: Vec<Json> = answer.json();
        let last: std::collections::HashMap<&str, &Json> = jobs
            .iter()
            .filter_map(|job| Some((job["job_id"].as_str()?, &job["last_execution"])))
            .collect();
        let pending = started.iter().any(|(id, execution)| {
            let Some(newest) = last.get(id.as_str()) else {
                return true;
            };
            let newest_id: u64 = newest["execution_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mine: u64 = execution.parse().unwrap_or(u64::MAX);
            newest_id < mine || (newest_id == mine && newest["ended_at"].is_null())
        });
        if !pending {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the runs did not all end within 5 minutes"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// `requests` × `GET /api/jobs/get_list` on one kept-alive connection, after a few
/// warm-up ones: each one's time in ms, and the answer's size in bytes.
pub fn get_list_cost(daemon: &Daemon, requests: usize) -> (Vec<f64>, usize) {
    let mut connection = daemon.connect();
    let mut size = 0;
    for _ in 0..5 {
        size = connection
            .request("GET", "/api/jobs/get_list")
            .expect("GET get_list")
            .body
            .len();
    }
    let times = (0..requests)
        .map(|_| {
            let start = Instant::now();
            let answer = connection
                .request("GET", "/api/jobs/get_list")
                .expect("GET get_list");
            let took = start.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(answer.status, 200);
            took
        })
        .collect();
    (times, size)
}
