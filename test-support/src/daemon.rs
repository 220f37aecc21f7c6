//! The real `servitord`, started on a working directory and always stopped afterwards,
//! with its jobs.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use servitor_shared::api::RunAccepted;
use servitor_shared::env;
use servitor_shared::{Execution, ExecutionStatus, Job};
use tempfile::TempDir;

use super::http::{Connection, Response, Stream, encode};
use super::wait::{TIMEOUT, wait_for};

/// How often a process is checked for having exited.
const RECHECK: Duration = Duration::from_millis(10);

/// A binary of this workspace: the test runs as `target/<profile>/deps/<test>`, the
/// binaries are in `target/<profile>/`.
pub fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: build them first: cargo build --workspace",
        path.display()
    );
    path
}

/// How to start servitord on a working directory.
#[derive(Clone)]
#[must_use]
pub struct DaemonBuilder {
    workdir: PathBuf,
    /// Another servitord than this workspace's (an installed one).
    program: Option<PathBuf>,
    given_as: WorkdirGivenAs,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

/// Removes from `command`'s environment every `SERVITOR_*` variable the caller has: the
/// daemon's settings (`SERVITOR_FSYNC`, `SERVITOR_HOOK_TIMEOUT`...) and a run's own
/// (when the tests run inside a job), so that only what a test sets reaches it.
pub fn without_servitor_variables(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|name| name.starts_with(env::RESERVED_PREFIX))
        {
            command.env_remove(name);
        }
    }
    command
}

/// How servitord is told its working directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkdirGivenAs {
    /// `--workdir <wd>`
    Flag,
    /// `SERVITOR_WORKDIR=<wd>`
    Env,
    /// Started in it, without flag or variable.
    CurrentDir,
}

impl DaemonBuilder {
    pub fn workdir_given_as(mut self, given_as: WorkdirGivenAs) -> Self {
        self.given_as = given_as;
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Starts this servitord binary instead of the workspace's.
    pub fn program(mut self, path: impl AsRef<Path>) -> Self {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The command, not started: `servitord --workdir <wd> <args>`.
    pub fn command(&self) -> Command {
        let program = self.program.clone().unwrap_or_else(|| binary("servitord"));
        let mut command = Command::new(program);
        without_servitor_variables(&mut command);
        match self.given_as {
            WorkdirGivenAs::Flag => command.arg("--workdir").arg(&self.workdir),
            WorkdirGivenAs::Env => command.env("SERVITOR_WORKDIR", &self.workdir),
            WorkdirGivenAs::CurrentDir => command.current_dir(&self.workdir),
        };
        command.args(&self.args);
        command.env("RUST_LOG", "info,servitord=debug");
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null());
        command
    }

    /// Runs the command to its end (for a daemon that must refuse to start).
    pub fn run_to_exit(&self, timeout: Duration) -> Output {
        let output_dir = TempDir::new().expect("a temporary directory");
        let stdout = output_dir.path().join("stdout");
        let stderr = output_dir.path().join("stderr");
        let mut child = self
            .command()
            .stdout(File::create(&stdout).expect("a stdout file"))
            .stderr(File::create(&stderr).expect("a stderr file"))
            .spawn()
            .expect("servitord starts");
        let status = wait_exit(&mut child, timeout).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "servitord did not exit within {timeout:?}; stderr: {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        Output {
            status,
            stdout: fs::read(stdout).unwrap_or_default(),
            stderr: fs::read(stderr).unwrap_or_default(),
        }
    }

    /// Starts the daemon and waits until its API answers.
    pub fn start(self) -> Daemon {
        let logs = TempDir::new().expect("a temporary directory");
        let log_path = logs.path().join("servitord.log");
        let mut daemon = Daemon {
            builder: self,
            child: None,
            _logs: logs,
            log_path,
            starts: 0,
        };
        daemon.start_again();
        daemon
    }
}

/// A running servitord. Dropping it stops it (SIGTERM, then SIGKILL after a deadline)
/// and kills whatever its jobs left running; a failing test gets its log printed.
pub struct Daemon {
    builder: DaemonBuilder,
    child: Option<Child>,
    _logs: TempDir,
    /// stdout and stderr of every start, appended.
    log_path: PathBuf,
    starts: usize,
}

impl Daemon {
    pub fn builder(workdir: &Path) -> DaemonBuilder {
        DaemonBuilder {
            workdir: workdir.to_owned(),
            program: None,
            given_as: WorkdirGivenAs::Flag,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn workdir(&self) -> &Path {
        &self.builder.workdir
    }

    pub fn socket(&self) -> PathBuf {
        self.builder.workdir.join("sockets/servitor.sock")
    }

    /// The pid of the current process; panics when it is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("servitord is running").id()
    }

    /// What the daemon wrote to stdout and stderr so far, over all its starts.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Starts the daemon again (after `kill` or `terminate`) with the same settings,
    /// and waits until its API answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "servitord is still running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("the daemon's log file");
        let _ = writeln!(log, "--- servitord start {} ---", self.starts);
        let child = self
            .builder
            .command()
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("servitord starts");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let socket = self.socket();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "servitord exited ({status}) before it was ready; its log:\n{}",
                    self.log()
                );
            }
            let ready = Connection::open(&socket)
                .and_then(|mut c| c.request("GET", "/api/jobs/get_list"))
                .is_ok_and(|answer| answer.status == 200);
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "servitord did not answer on {} within {TIMEOUT:?}; its log:\n{}",
                    socket.display(),
                    self.log()
                );
            }
            std::thread::sleep(RECHECK);
        }
    }

    /// Stops the daemon gracefully (SIGTERM) and starts it again.
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "servitord exited with {status}");
        self.start_again();
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(pid_of(self.pid()), signal).expect("signalling servitord");
    }

    /// SIGKILL, as a crash would; waits until it is gone.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("servitord is running");
        let _ = child.kill();
        child.wait().expect("waiting for servitord");
    }

    /// SIGTERM; returns the exit status once it has exited.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(Signal::TERM);
        self.wait_exit(TIMEOUT)
    }

    /// Waits until the daemon exits (after a signal); panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("servitord is running");
        let status = wait_exit(child, timeout).unwrap_or_else(|| {
            panic!(
                "servitord did not exit within {timeout:?}; its log:\n{}",
                self.log()
            )
        });
        self.child = None;
        status
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub fn connect(&self) -> Connection {
        Connection::open(&self.socket()).unwrap_or_else(|e| {
            panic!("cannot connect to servitord: {e}; its log:\n{}", self.log())
        })
    }

    pub fn request(&self, method: &str, target: &str) -> Response {
        self.connect()
            .request(method, target)
            .unwrap_or_else(|e| panic!("{method} {target} failed: {e}; log:\n{}", self.log()))
    }

    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target)
    }

    pub fn post(&self, target: &str) -> Response {
        self.request("POST", target)
    }

    /// `GET target`, which must answer 200 with JSON of type `T`.
    #[track_caller]
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, target: &str) -> T {
        let answer = self.get(target);
        assert_eq!(answer.status, 200, "GET {target}: {}", answer.text());
        answer.assert_json();
        answer.json()
    }

    /// Opens a streamed answer (`/api/events`, a log).
    pub fn stream(&self, target: &str) -> Stream {
        let stream = Stream::open(&self.socket(), target)
            .unwrap_or_else(|e| panic!("GET {target} failed: {e}; log:\n{}", self.log()));
        assert_eq!(stream.head.status, 200, "GET {target}");
        stream
    }

    pub fn jobs(&self) -> Vec<Job> {
        self.get_json("/api/jobs/get_list")
    }

    /// Runs a job with these inputs; returns the execution id.
    #[track_caller]
    pub fn run(&self, job: &str, inputs: &[(&str, &str)]) -> String {
        let mut target = format!("/api/jobs/run?job_id={}", encode(job));
        for (key, value) in inputs {
            target.push_str(&format!("&input_value_{key}={}", encode(value)));
        }
        let answer = self.post(&target);
        assert_eq!(answer.status, 200, "POST {target}: {}", answer.text());
        let accepted: RunAccepted = answer.json();
        assert_eq!(accepted.status, "success");
        accepted.execution_id
    }

    pub fn execution(&self, job: &str, id: &str) -> Execution {
        self.get_json(&format!(
            "/api/jobs/executions/get?job_id={}&execution_id={id}",
            encode(job)
        ))
    }

    pub fn executions(&self, job: &str) -> Vec<Execution> {
        self.get_json(&format!(
            "/api/jobs/executions/get_list?job_id={}",
            encode(job)
        ))
    }

    /// Waits until the execution has this status.
    #[track_caller]
    pub fn wait_status(&self, job: &str, id: &str, status: ExecutionStatus) -> Execution {
        wait_for(&format!("{job} #{id} to be {status}"), TIMEOUT, || {
            Some(self.execution(job, id)).filter(|e| e.status == status)
        })
    }

    /// Waits until the execution has ended, whatever its status.
    #[track_caller]
    pub fn wait_ended(&self, job: &str, id: &str) -> Execution {
        wait_for(&format!("{job} #{id} to end"), TIMEOUT, || {
            Some(self.execution(job, id)).filter(|e| e.status.is_terminal())
        })
    }

    /// The series of `/metrics` (`name{labels}` as written) with their values.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let answer = self.get("/metrics");
        assert_eq!(answer.status, 200, "GET /metrics: {}", answer.text());
        answer
            .text()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// The sum of the `/metrics` series whose name and labels start with `prefix`
    /// (`servitor_log_followers`, `servitor_api_requests_total{route="/api/jobs/run",code="5`).
    pub fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .iter()
            .filter(|(series, _)| {
                series == prefix
                    || series.starts_with(prefix)
                        && (prefix.contains('{') || series[prefix.len()..].starts_with('{'))
            })
            .map(|(_, value)| value)
            .sum()
    }

    /// An execution's log as it is now (`follow=false`), while it may still run.
    pub fn log_now(&self, job: &str, id: &str) -> Vec<u8> {
        let target = format!(
            "/api/jobs/executions/logs/get?job_id={}&execution_id={id}&follow=false",
            encode(job)
        );
        let answer = self.get(&target);
        assert_eq!(answer.status, 200, "GET {target}: {}", answer.text());
        answer.body
    }

    /// The whole log of an execution (which must have ended, or the answer waits).
    pub fn log_of(&self, job: &str, id: &str) -> Vec<u8> {
        let target = format!(
            "/api/jobs/executions/logs/get?job_id={}&execution_id={id}",
            encode(job)
        );
        let answer = self.get(&target);
        assert_eq!(answer.status, 200, "GET {target}: {}", answer.text());
        answer.body
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id())
                && let Some(pid) = Pid::from_raw(pid)
            {
                let _ = kill_process(pid, Signal::TERM);
            }
            // The daemon waits for running jobs: end them, and any it starts meanwhile.
            let deadline = Instant::now() + TIMEOUT;
            loop {
                kill_job_processes(&self.builder.workdir);
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                if Instant::now() >= deadline {
                    eprintln!("servitord did not stop on SIGTERM: killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(RECHECK);
            }
        }
        // Jobs of a daemon killed earlier in the test may still run.
        kill_job_processes(&self.builder.workdir);
        if std::thread::panicking() {
            eprintln!(
                "--- servitord log ({}) ---\n{}--- end of servitord log ---",
                self.builder.workdir.display(),
                self.log()
            );
        }
    }
}

fn pid_of(pid: u32) -> Pid {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .expect("a valid pid")
}

/// Waits for a child to exit, up to `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(RECHECK);
    }
}

/// The processes of runs of this working directory (jobs and their children), found
/// by the `SERVITOR_ROOT` variable servitord gives them.
pub fn job_processes(workdir: &Path) -> Vec<i32> {
    let mut wanted = b"SERVITOR_ROOT=".to_vec();
    wanted.extend_from_slice(workdir.as_os_str().as_encoded_bytes());
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|environ| environ.split(|b| *b == 0).any(|var| var == wanted))
        })
        .collect()
}

/// A process of a run: its pid, and the run it belongs to (from the `SERVITOR_JOB` and
/// `SERVITOR_JOB_EXECUTION` variables every run's processes inherit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProcess {
    pub pid: i32,
    pub job: String,
    pub execution: String,
}

/// The processes of runs of this working directory, with their runs. Hooks (which
/// carry `SERVITOR_HOOK`) are left out.
pub fn run_processes(workdir: &Path) -> Vec<RunProcess> {
    job_processes(workdir)
        .into_iter()
        .filter_map(|pid| {
            let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let mut job = None;
            let mut execution = None;
            for var in environ.split(|b| *b == 0) {
                let var = String::from_utf8_lossy(var);
                if let Some(value) = var.strip_prefix("SERVITOR_JOB=") {
                    job = Some(value.to_owned());
                } else if let Some(value) = var.strip_prefix("SERVITOR_JOB_EXECUTION=") {
                    execution = Some(value.to_owned());
                } else if var.starts_with("SERVITOR_HOOK=") {
                    return None;
                }
            }
            Some(RunProcess {
                pid,
                job: job?,
                execution: execution?,
            })
        })
        .filter(|process| is_alive(process.pid))
        .collect()
}

/// SIGKILLs every process of a run of this working directory.
pub fn kill_job_processes(workdir: &Path) {
    for pid in job_processes(workdir) {
        if let Some(pid) = Pid::from_raw(pid) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// True while `pid` is a live process. A zombie is not: where nothing reaps orphans,
/// a killed process can stay one forever.
pub fn is_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}
