//! The release `servitord`, started on a working directory, measured from outside
//! (/proc), and always stopped.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::client::Conn;

/// Variables of the developer's shell that would change what the daemon does.
/// `RUST_BACKTRACE` makes every error capture a backtrace, which costs time.
const CLEARED: [&str; 6] = [
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "SERVITOR_WORKDIR",
    "SERVITOR_WORKERS",
    "SERVITOR_STOP_GRACE",
    "SERVITOR_UI_ROOT",
];
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Between readiness probes: fine enough for a start of a few ms, coarse enough not
/// to take a core from the daemon on a 2-core machine.
const PROBE_EVERY: Duration = Duration::from_micros(100);

pub struct Daemon {
    child: Option<Child>,
    pub workdir: PathBuf,
    pub socket: PathBuf,
}

/// How to start servitord.
#[derive(Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub workers: usize,
    /// `RUST_LOG` of the daemon.
    pub log_filter: String,
    /// More command-line arguments (`--slurm-poll 1s`).
    pub args: Vec<String>,
}

impl Launch {
    /// Starts servitord on `workdir`; returns it with the time from spawn to the first
    /// answer of `GET /api/jobs/get_list`.
    pub fn start(&self, workdir: &Path) -> io::Result<(Daemon, Duration)> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(workdir.join("servitord.log"))?;
        let mut command = Command::new(&self.binary);
        for name in CLEARED {
            command.env_remove(name);
        }
        command
            .arg("--workdir")
            .arg(workdir)
            .arg("--workers")
            .arg(self.workers.to_string())
            .args(&self.args)
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let socket = workdir.join("sockets/servitor.sock");
        let spawned = Instant::now();
        let mut daemon = Daemon {
            child: Some(command.spawn()?),
            workdir: workdir.to_owned(),
            socket,
        };
        loop {
            let answered = Conn::open(&daemon.socket)
                .and_then(|mut conn| conn.get("/api/jobs/get_list"))
                .is_ok_and(|answer| answer.status == 200);
            if answered {
                return Ok((daemon, spawned.elapsed()));
            }
            if let Some(status) = daemon.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                daemon.child = None;
                return Err(io::Error::other(format!(
                    "servitord exited ({status}) before answering; see {}",
                    workdir.join("servitord.log").display()
                )));
            }
            if spawned.elapsed() > READY_TIMEOUT {
                return Err(io::Error::other("servitord did not answer in time"));
            }
            std::thread::sleep(PROBE_EVERY);
        }
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn conn(&self) -> Conn {
        Conn::open(&self.socket).expect("servitord accepts connections")
    }

    /// Resident memory (VmRSS), in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        kib / 1024.0
    }

    /// Waits until the daemon has neither run nor waited to run for a while (its
    /// background work, such as indexing the history, is done); returns how long after
    /// `since` it last did. Waiting time counts: on a busy machine a starved daemon
    /// uses no CPU, yet is not done.
    pub fn settle(&self, since: Instant) -> Duration {
        const QUIET: Duration = Duration::from_millis(300);
        let mut busy = self.busy_ns();
        let mut last_busy = Instant::now();
        while last_busy.elapsed() < QUIET {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.busy_ns();
            if now != busy {
                (busy, last_busy) = (now, Instant::now());
            }
        }
        last_busy.duration_since(since)
    }

    /// Nanoseconds its threads have run plus waited on a run queue (`schedstat`).
    fn busy_ns(&self) -> u64 {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
            .flat_map(|stat| {
                let fields: Vec<u64> = stat
                    .split_whitespace()
                    .take(2)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                fields
            })
            .sum()
    }

    /// SIGKILL, for start measurements: a graceful stop would first wait for the
    /// history scan that follows every start.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time (user + system) of a process (`"self"`, a pid, or `"thread-self"` for the
/// calling thread) and of its children it
/// has waited for, in clock ticks (1/100 s on Linux).
pub fn cpu(pid: &str) -> (u64, u64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) state ...`: utime, stime, cutime, cstime are fields 12 to 15 after comm.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|field| field.parse().ok())
        .collect();
    match fields[..] {
        [utime, stime, cutime, cstime] => (utime + stime, cutime + cstime),
        _ => (0, 0),
    }
}

impl Drop for Daemon {
    /// SIGTERM and wait; SIGKILL if it does not stop.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                eprintln!("servitord did not stop on SIGTERM: killing it");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
