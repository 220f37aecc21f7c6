//! servitorctl against a real servitord on a temporary working directory.

use servitor_test_support as support;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use servitor_shared::{Event, Execution, ExecutionStatus, Job};
use support::{Daemon, TIMEOUT, Workdir, binary, wait_for, wait_until};

/// What one servitorctl command did.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn code(&self) -> i32 {
        self.status.code().expect("servitorctl exited on its own")
    }

    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.out(),
            self.stderr
        );
        assert!(
            self.stderr.is_empty(),
            "quiet on success, but stderr: {}",
            self.stderr
        );
        self
    }
}

fn servitorctl(socket: &Path) -> Command {
    let mut command = Command::new(binary("servitorctl"));
    command
        .arg("--socket")
        .arg(socket)
        .env_remove("SERVITOR_SOCKET")
        .env_remove("SERVITOR_WORKDIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `servitorctl --socket <daemon's> args...` to its end.
#[track_caller]
fn ctl(daemon: &Daemon, args: &[&str]) -> Ran {
    run_to_end(servitorctl(&daemon.socket()).args(args))
}

#[track_caller]
fn run_to_end(command: &mut Command) -> Ran {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("servitorctl starts");
    finish(child, TIMEOUT)
}

/// Waits for a started servitorctl to exit and collects what it wrote.
#[track_caller]
fn finish(mut child: Child, timeout: Duration) -> Ran {
    let deadline = Instant::now() + timeout;
    // The caller may have read stdout itself already.
    let stdout = child.stdout.take();
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_end(&mut out);
        }
        out
    });
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for servitorctl") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("servitorctl did not exit within {timeout:?}; stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        status,
        stdout: reader.join().expect("stdout reader"),
        stderr: err,
    }
}

fn jobs_workdir() -> Workdir {
    Workdir::new()
        .job("hello", "#!/bin/sh\necho hello from $SERVITOR_JOB\n")
        .job("demo/fail", "#!/bin/sh\necho out\necho err >&2\nexit 42\n")
        .job("demo/greet", "#!/bin/sh\necho \"$GREETING, $NAME!\"\n")
        .input_spec(
            "demo/greet",
            r#"{"NAME": {"required": true}, "GREETING": {}}"#,
        )
        .job("demo/deep/nested", "#!/bin/sh\ntrue\n")
}

#[test]
fn schedules_paused_resumed_and_shown() {
    let wd = jobs_workdir().job("nightly", "#!/bin/sh\ntrue\n").file(
        "config/jobs/nightly.settings.json",
        r#"{"schedule": "0 0 1 1 *", "timezone": "UTC"}"#,
    );
    let daemon = wd.start();
    let row = |table: &str, job: &str| -> String {
        let line = table.lines().find(|l| l.starts_with(job));
        line.unwrap_or_else(|| panic!("no {job} in {table}"))
            .to_owned()
    };
    let table = ctl(&daemon, &["jobs"]).ok().out();
    assert!(
        table.lines().next().unwrap().contains("NEXT RUN"),
        "{table}"
    );
    assert!(row(&table, "nightly").contains("-01-01 "), "{table}");
    assert!(!row(&table, "hello").contains("paused"), "{table}");

    let paused = ctl(&daemon, &["pause", "nightly"]).ok().out();
    assert_eq!(paused, "schedule paused: nightly\n");
    let table = ctl(&daemon, &["jobs"]).ok().out();
    assert!(row(&table, "nightly").contains("paused"), "{table}");
    let resumed = ctl(&daemon, &["resume", "nightly"]).ok().out();
    assert_eq!(resumed, "schedule resumed: nightly\n");
    let table = ctl(&daemon, &["jobs"]).ok().out();
    assert!(row(&table, "nightly").contains("-01-01 "), "{table}");

    let unknown = ctl(&daemon, &["pause", "nope"]);
    assert_eq!(unknown.code(), 1);
    assert_eq!(unknown.stderr.lines().count(), 1, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("unknown job"), "{}", unknown.stderr);

    let id = daemon.run("hello", &[]);
    daemon.wait_ended("hello", &id);
    let shown = ctl(&daemon, &["show", "hello", &id]).ok().out();
    assert!(shown.contains("\nTrigger:    api\n"), "{shown}");
}

#[test]
fn jobs_as_table_tree_and_json() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    daemon.wait_ended("hello", &daemon.run("hello", &[]));

    let table = ctl(&daemon, &["jobs"]).ok().out();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("JOB") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("demo/greet") && l.contains("NAME, GREETING")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("hello") && l.contains("#1") && l.contains("success")),
        "{table}"
    );
    assert!(
        !table.contains('\u{1b}'),
        "no colour when not on a terminal: {table:?}"
    );

    let tree = ctl(&daemon, &["jobs", "--tree"]).ok().out();
    assert!(
        tree.contains("\ndemo/\n") || tree.contains("\ndemo/ "),
        "{tree}"
    );
    assert!(tree.lines().any(|l| l.starts_with("  deep/")), "{tree}");
    assert!(tree.lines().any(|l| l.starts_with("    nested")), "{tree}");
    assert!(tree.lines().any(|l| l.starts_with("  greet")), "{tree}");

    let jobs: Vec<Job> =
        serde_json::from_slice(&ctl(&daemon, &["jobs", "--json"]).ok().stdout).unwrap();
    assert_eq!(jobs, daemon.jobs());
}

#[test]
fn run_prints_the_id_and_wait_exits_with_the_job_code() {
    let wd = jobs_workdir()
        .job("killed", "#!/bin/sh\nkill -9 $$\n")
        .job_with_mode("broken", "#!/nonexistent/interpreter\n", 0o755);
    let daemon = wd.start();

    let ran = ctl(&daemon, &["run", "hello"]).ok();
    assert_eq!(ran.out(), "1\n");
    daemon.wait_status("hello", "1", ExecutionStatus::Success);

    // --wait: nothing on stdout or stderr, the job's exit code.
    let ran = ctl(&daemon, &["run", "--wait", "hello"]).ok();
    assert!(ran.stdout.is_empty());
    assert_eq!(ctl(&daemon, &["run", "--wait", "demo/fail"]).code(), 42);
    assert_eq!(ctl(&daemon, &["run", "--wait", "killed"]).code(), 128 + 9);
    assert_eq!(ctl(&daemon, &["run", "--wait", "broken"]).code(), 126);

    let json = ctl(&daemon, &["run", "--wait", "--json", "demo/fail"]);
    assert_eq!(json.code(), 42);
    let execution: Execution = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(execution.status, ExecutionStatus::Failure);
    assert_eq!(execution.result.unwrap().exit_code, 42);
}

#[test]
fn a_run_that_did_not_succeed_says_how_it_ended() {
    let wd = jobs_workdir()
        .job("killed", "#!/bin/sh\necho dying\nkill -9 $$\n")
        .job_with_mode("broken", "#!/nonexistent/interpreter\n", 0o755)
        .job("slow", "#!/bin/sh\necho started\nexec sleep 60\n")
        .file("config/jobs/slow.settings.json", r#"{"timeout": "1s"}"#);
    let daemon = wd.start();

    // For cron's mail: how it ended, then the log's last lines, all on stderr.
    let failed = ctl(&daemon, &["run", "--wait", "demo/fail"]);
    assert_eq!(failed.code(), 42);
    assert!(failed.stdout.is_empty());
    let (said, log) = failed.stderr.split_once('\n').unwrap();
    assert!(
        said.starts_with("servitorctl: demo/fail #1 failed with exit code 42 after "),
        "{}",
        failed.stderr
    );
    assert_eq!(log, "servitorctl: the end of its log:\nout\nerr\n");

    let one_line = ctl(&daemon, &["run", "--wait", "--log-lines", "1", "demo/fail"]);
    assert_eq!(one_line.code(), 42);
    assert!(
        one_line
            .stderr
            .ends_with("\nservitorctl: the end of its log:\nerr\n"),
        "{}",
        one_line.stderr
    );
    let no_log = ctl(&daemon, &["run", "--wait", "--log-lines", "0", "demo/fail"]);
    assert_eq!(no_log.code(), 42);
    assert_eq!(no_log.stderr.lines().count(), 1, "{}", no_log.stderr);
    assert!(
        no_log
            .stderr
            .starts_with("servitorctl: demo/fail #3 failed with exit code 42")
    );

    let quiet = ctl(&daemon, &["run", "--wait", "--quiet", "demo/fail"]);
    assert_eq!(quiet.code(), 42);
    assert!(
        quiet.stderr.is_empty() && quiet.stdout.is_empty(),
        "{}",
        quiet.stderr
    );
    let quiet_start = ctl(&daemon, &["run", "-q", "hello"]).ok();
    assert!(quiet_start.stdout.is_empty());
    daemon.wait_status("hello", "1", ExecutionStatus::Success);

    // --follow has just shown the log: only the line.
    let followed = ctl(&daemon, &["run", "--follow", "demo/fail"]);
    assert_eq!(followed.code(), 42);
    assert_eq!(followed.out(), "out\nerr\n");
    assert_eq!(followed.stderr.lines().count(), 1, "{}", followed.stderr);
    assert!(
        followed
            .stderr
            .starts_with("servitorctl: demo/fail #5 failed with exit code 42 after ")
    );

    let killed = ctl(&daemon, &["run", "--wait", "killed"]);
    assert_eq!(killed.code(), 128 + 9);
    assert!(
        killed
            .stderr
            .starts_with("servitorctl: killed #1 was killed by signal 9 (SIGKILL) after "),
        "{}",
        killed.stderr
    );
    assert!(
        killed.stderr.ends_with("log:\ndying\n"),
        "{}",
        killed.stderr
    );

    let broken = ctl(&daemon, &["run", "--wait", "--log-lines", "0", "broken"]);
    assert_eq!(broken.code(), 126);
    assert!(
        broken
            .stderr
            .starts_with("servitorctl: broken #1 could not start: "),
        "{}",
        broken.stderr
    );

    let slow = ctl(&daemon, &["run", "--wait", "slow"]);
    assert_ne!(slow.code(), 0);
    assert!(
        slow.stderr
            .starts_with("servitorctl: slow #1 timed out after 1s: stopped by SIGTERM"),
        "{}",
        slow.stderr
    );
    assert!(slow.stderr.ends_with("log:\nstarted\n"), "{}", slow.stderr);

    // Refused before anything ran: the refusal is the one line.
    let refused = ctl(&daemon, &["run", "--wait", "--quiet", "--follow", "hello"]);
    assert_eq!(refused.code(), 2, "{}", refused.stderr);
}

#[test]
fn follow_streams_the_log_byte_exact() {
    // Output with binary bytes, both streams, no trailing newline, and a pause in the
    // middle that the test controls.
    let wd = Workdir::new()
        .job(
            "talk",
            "#!/bin/sh\nprintf 'first line\\n'\nprintf 'err\\n' >&2\nread _ < \"$SERVITOR_ROOT/gate\"\nprintf '\\001\\377\\033[31mred\\033[0m'\nexit 7\n",
        )
        .gate("gate");
    let daemon = wd.start();
    let mut child = servitorctl(&daemon.socket())
        .args(["run", "--follow", "talk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line arrives while the job is still running.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "first line\n");
    assert_eq!(
        daemon.execution("talk", "1").status,
        ExecutionStatus::Running
    );
    wd.open_gate("gate");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    child.stdout = None;
    let ran = finish(child, TIMEOUT);
    assert_eq!(ran.code(), 7, "stderr: {}", ran.stderr);
    // The log was followed: how the run ended is one line, without the log again.
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .starts_with("servitorctl: talk #1 failed with exit code 7 after "),
        "{}",
        ran.stderr
    );

    let mut followed = first.into_bytes();
    followed.extend(rest);
    let on_disk = fs::read(wd.join("state/jobs/talk/executions/1/logs/main.txt")).unwrap();
    assert_eq!(followed, on_disk);
    assert!(on_disk.ends_with(b"\x01\xff\x1b[31mred\x1b[0m"));
}

#[test]
fn inputs_are_checked_before_anything_starts() {
    let wd = jobs_workdir();
    let daemon = wd.start();

    let ran = ctl(
        &daemon,
        &[
            "run",
            "--wait",
            "demo/greet",
            "-i",
            "NAME=Ada",
            "-i",
            "GREETING=Hi there",
        ],
    )
    .ok();
    assert!(ran.stdout.is_empty());
    assert_eq!(daemon.log_of("demo/greet", "1"), b"Hi there, Ada!\n");

    let unknown = ctl(
        &daemon,
        &["run", "demo/greet", "-i", "NAME=Ada", "-i", "CITY=Paris"],
    );
    assert_eq!(unknown.code(), 1);
    assert_eq!(
        unknown.stderr.trim(),
        "servitorctl: unknown input CITY: the inputs of demo/greet are: NAME (required), GREETING"
    );
    let missing = ctl(&daemon, &["run", "demo/greet", "-i", "GREETING=Hi"]);
    assert_eq!(missing.code(), 1);
    assert!(
        missing.stderr.contains("missing required input NAME"),
        "{}",
        missing.stderr
    );
    let none = ctl(&daemon, &["run", "hello", "-i", "X=1"]);
    assert!(
        none.stderr.contains("hello takes no inputs"),
        "{}",
        none.stderr
    );
    let malformed = ctl(&daemon, &["run", "hello", "-i", "novalue"]);
    assert_eq!(malformed.code(), 2, "a usage error: {}", malformed.stderr);
    // Nothing was started by the refused runs.
    assert_eq!(daemon.executions("demo/greet").len(), 1);
    assert!(daemon.executions("hello").is_empty());

    let unknown_job = ctl(&daemon, &["run", "nope"]);
    assert_eq!(unknown_job.code(), 1);
    assert_eq!(
        unknown_job.stderr.trim(),
        "servitorctl: unknown job \"nope\""
    );
}

#[test]
fn executions_show_and_logs() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    for _ in 0..3 {
        let id = daemon.run("demo/fail", &[]);
        daemon.wait_ended("demo/fail", &id);
    }

    let table = ctl(&daemon, &["executions", "demo/fail"]).ok().out();
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["3", "2", "1"], "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains("failure") && table.contains("42"),
        "{table}"
    );
    let limited = ctl(&daemon, &["ps", "demo/fail", "--limit", "2"])
        .ok()
        .out();
    assert_eq!(limited.lines().count(), 3, "{limited}");
    let listed: Vec<Execution> = serde_json::from_slice(
        &ctl(&daemon, &["history", "demo/fail", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(listed, daemon.executions("demo/fail"));

    let shown = ctl(&daemon, &["show", "demo/fail", "2"]).ok().out();
    for expected in [
        "Execution:  2",
        "Status:     failure",
        "Exit code:  42",
        "created",
        "running",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
    let execution: Execution = serde_json::from_slice(
        &ctl(&daemon, &["show", "demo/fail", "2", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(execution, daemon.execution("demo/fail", "2"));

    assert_eq!(
        ctl(&daemon, &["logs", "demo/fail", "1"]).ok().stdout,
        b"out\nerr\n"
    );
    // Without an id: the latest run.
    let latest = ctl(&daemon, &["logs", "demo/fail"]).ok();
    assert_eq!(latest.stdout, daemon.log_of("demo/fail", "3"));
    let none = ctl(&daemon, &["logs", "hello"]);
    assert_eq!(none.code(), 1);
    assert!(
        none.stderr.contains("hello has no executions"),
        "{}",
        none.stderr
    );
    let unknown = ctl(&daemon, &["show", "demo/fail", "9"]);
    assert_eq!(unknown.code(), 1);
    assert!(
        unknown.stderr.contains("unknown execution 9"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn logs_follow_a_running_job_and_plain_logs_do_not_wait() {
    let wd = Workdir::new()
        .job(
            "slow",
            "#!/bin/sh\necho started\nread _ < \"$SERVITOR_ROOT/gate\"\necho done\n",
        )
        .gate("gate");
    let daemon = wd.start();
    let id = daemon.run("slow", &[]);
    wait_until("the job's first line", TIMEOUT, || {
        daemon_log_contains(&wd, "slow", "started\n")
    });

    let now = ctl(&daemon, &["logs", "slow", &id]).ok();
    assert_eq!(now.stdout, b"started\n", "without -f: the log as it is now");

    let follower = servitorctl(&daemon.socket())
        .args(["logs", "-f", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wd.open_gate("gate");
    let ran = finish(follower, TIMEOUT).ok();
    assert_eq!(ran.stdout, b"started\ndone\n");
}

fn daemon_log_contains(wd: &Workdir, job: &str, text: &str) -> bool {
    fs::read_to_string(wd.join(format!("state/jobs/{job}/executions/1/logs/main.txt")))
        .is_ok_and(|log| log.contains(text))
}

#[test]
fn cancel_ends_a_waiting_run_with_130() {
    let wd = Workdir::new()
        .job("sleepy", "#!/bin/sh\necho waiting\nexec sleep 60\n")
        .job("done", "#!/bin/sh\ntrue\n");
    let daemon = wd.start();
    let waiter = servitorctl(&daemon.socket())
        .args(["run", "--wait", "sleepy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the run to be created", TIMEOUT, || {
        !daemon.executions("sleepy").is_empty()
    });
    daemon.wait_status("sleepy", "1", ExecutionStatus::Running);
    // `running` is recorded once the shell has started, maybe before its first line.
    wait_until("the job to say it waits", TIMEOUT, || {
        daemon_log_contains(&wd, "sleepy", "waiting\n")
    });
    let cancelled = ctl(&daemon, &["cancel", "sleepy", "1"]).ok();
    assert_eq!(cancelled.out(), "cancel requested: sleepy #1\n");
    let waited = finish(waiter, TIMEOUT);
    assert_eq!(waited.code(), 130, "stderr: {}", waited.stderr);
    let (said, log) = waited
        .stderr
        .split_once('\n')
        .expect("a line on how it ended");
    assert!(
        said.starts_with("servitorctl: sleepy #1 was cancelled after "),
        "{}",
        waited.stderr
    );
    assert_eq!(log, "servitorctl: the end of its log:\nwaiting\n");

    let again = ctl(&daemon, &["cancel", "sleepy", "1"]);
    assert_eq!(again.code(), 1);
    assert!(
        again.stderr.contains("is not running: it is cancelled"),
        "{}",
        again.stderr
    );
    let unknown = ctl(&daemon, &["cancel", "sleepy", "5"]);
    assert_eq!(unknown.code(), 1);
    assert!(
        unknown.stderr.contains("unknown execution 5"),
        "{}",
        unknown.stderr
    );
    let malformed = ctl(&daemon, &["cancel", "sleepy", "x"]);
    assert_eq!(malformed.code(), 1);
    assert!(
        malformed.stderr.contains("positive decimal number"),
        "{}",
        malformed.stderr
    );
}

#[test]
fn events_in_json_and_human_form() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    for json in [true, false] {
        let mut args = vec!["events"];
        if json {
            args.push("--json");
        }
        let mut child = servitorctl(&daemon.socket())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (sender, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Once a first event arrives the stream is surely open: every event of the
        // next run must then arrive, in order.
        wait_for("the event stream to open", TIMEOUT, || {
            daemon.run("hello", &[]);
            received.recv_timeout(Duration::from_millis(100)).ok()
        });
        let id = daemon.run("hello", &[]);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let line = received.recv_timeout(TIMEOUT).expect("an event line");
            if line.contains(&format!("hello #{id} "))
                || line.contains(&format!("\"execution_id\":\"{id}\""))
            {
                seen.push(line);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        if json {
            let statuses: Vec<_> = seen
                .iter()
                .map(|line| match serde_json::from_str(line).unwrap() {
                    Event::JobExecutionStatusChanged { job_id, status, .. } => {
                        assert_eq!(job_id, "hello");
                        status
                    }
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(
                statuses,
                [
                    ExecutionStatus::Created,
                    ExecutionStatus::Running,
                    ExecutionStatus::Success
                ]
            );
        } else {
            assert!(
                seen[0].ends_with(&format!("hello #{id}  created")),
                "{seen:?}"
            );
            assert!(
                seen[2].ends_with(&format!("hello #{id}  success")),
                "{seen:?}"
            );
        }
    }
}

#[test]
fn finding_the_daemon_and_failing_to() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    let list = |command: &mut Command| run_to_end(command.arg("jobs").arg("--json"));
    let bare = || {
        let mut command = Command::new(binary("servitorctl"));
        command
            .env_remove("SERVITOR_SOCKET")
            .env_remove("SERVITOR_WORKDIR")
            .stdin(Stdio::null());
        command
    };
    list(bare().arg("--workdir").arg(wd.path())).ok();
    list(bare().env("SERVITOR_WORKDIR", wd.path())).ok();
    list(bare().env("SERVITOR_SOCKET", daemon.socket())).ok();
    list(bare().current_dir(wd.path())).ok();

    let missing = wd.join("sockets/nope.sock");
    let ran = list(bare().arg("--socket").arg(&missing));
    assert_eq!(ran.code(), 2);
    assert!(ran.stdout.is_empty());
    assert_eq!(
        ran.stderr,
        format!(
            "servitorctl: cannot reach servitord at {}: No such file or directory (is servitord running? see --socket / --workdir)\n",
            missing.display()
        )
    );
}

#[test]
fn broken_pipe_is_not_an_error() {
    let wd = Workdir::new().job("chatty", "#!/bin/sh\nseq 1 200000\n");
    let daemon = wd.start();
    let id = daemon.run("chatty", &[]);
    daemon.wait_ended("chatty", &id);
    let mut child = servitorctl(&daemon.socket())
        .args(["logs", "chatty", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"1\n");
    child.stdout = None; // The reader goes away, like `| head -n 1`.
    let ran = finish(child, TIMEOUT);
    assert_eq!(ran.code(), 0, "{}", ran.stderr);
    assert!(ran.stderr.is_empty(), "{}", ran.stderr);
}

#[test]
fn ui_bridge_serves_the_ui_over_tcp() {
    let wd = jobs_workdir()
        .file("ui/index.html", "<h1>servitor ui</h1>")
        .file("ui/app.js", "export {};");
    let daemon = wd.daemon().arg("--ui-root").arg(wd.join("ui")).start();
    let mut bridge = servitorctl(&daemon.socket())
        .args(["ui", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(bridge.stdout.as_mut().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let address = banner
        .strip_prefix("Servitor web UI: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_owned();

    let index = http_over_tcp(
        &address,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
    );
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(
        index.contains("content-type: text/html; charset=utf-8"),
        "{index}"
    );
    assert!(index.ends_with("<h1>servitor ui</h1>"), "{index}");
    let script = http_over_tcp(
        &address,
        "GET /app.js HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
    );
    assert!(script.contains("text/javascript"), "{script}");
    let api = http_over_tcp(
        &address,
        "GET /api/jobs/get_list HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
    );
    assert!(api.contains("\"job_id\":\"demo/greet\""), "{api}");
    // A page of another site may not drive the API through the bridge.
    let foreign = http_over_tcp(
        &address,
        "POST /api/jobs/run?job_id=hello HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    let rebound = http_over_tcp(
        &address,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(daemon.executions("hello").is_empty());
    let own = http_over_tcp(
        &address,
        "POST /api/jobs/run?job_id=hello HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(own.contains("\"execution_id\":\"1\""), "{own}");
    let _ = bridge.kill();
    let _ = bridge.wait();
}

#[test]
fn ui_bridge_refuses_without_a_ui_or_on_a_public_address() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    let no_ui = ctl(&daemon, &["ui", "--listen", "127.0.0.1:0"]);
    assert_eq!(no_ui.code(), 1);
    assert!(
        no_ui.stderr.contains("serves no web UI") && no_ui.stderr.contains("SERVITOR_UI_ROOT"),
        "{}",
        no_ui.stderr
    );
    let public = ctl(&daemon, &["ui", "--listen", "0.0.0.0:0"]);
    assert_eq!(public.code(), 1);
    assert!(
        public.stderr.contains("not a loopback address")
            && public.stderr.contains("--allow-remote"),
        "{}",
        public.stderr
    );
}

/// Sends one request (`{host}` stands for the address) and reads the answer to its end.
fn http_over_tcp(address: &str, request: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(request.replace("{host}", address).as_bytes())
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn completions_and_man_pages() {
    let wd = Workdir::new();
    let socket = wd.join("sockets/servitor.sock");
    for shell in ["bash", "zsh", "fish"] {
        let ran = run_to_end(servitorctl(&socket).args(["completions", shell])).ok();
        assert!(ran.out().contains("servitorctl"), "{shell}");
    }
    let page = run_to_end(servitorctl(&socket).arg("man")).ok().out();
    assert!(
        page.starts_with(".ie") || page.contains(".TH servitorctl"),
        "{page}"
    );
    let dir = wd.join("man");
    fs::create_dir_all(&dir).unwrap();
    run_to_end(servitorctl(&socket).args(["man", "--dir"]).arg(&dir)).ok();
    assert!(dir.join("servitorctl-run.1").is_file());
}

#[test]
fn settings_show_in_jobs_and_a_skipped_run_exits_non_zero() {
    let wd = Workdir::new()
        .job("backup", "#!/bin/sh\nread _ < \"$SERVITOR_ROOT/gate\"\n")
        .file(
            "config/jobs/backup.settings.json",
            r#"{"timeout": "2h", "concurrency": 1, "on_busy": "skip", "retention": {"keep_last": 30}}"#,
        )
        .gate("gate");
    let daemon = wd.start();
    let table = ctl(&daemon, &["jobs"]).ok().out();
    assert!(
        table.contains("timeout 2h, at most 1 (skip), keep 30"),
        "{table}"
    );

    ctl(&daemon, &["run", "backup"]).ok();
    wait_until("the first backup to run", TIMEOUT, || {
        daemon
            .executions("backup")
            .first()
            .is_some_and(|e| e.status == ExecutionStatus::Running)
    });
    let skipped = ctl(&daemon, &["run", "--wait", "backup"]);
    assert_eq!(skipped.code(), 1);
    assert!(skipped.stderr.contains("is busy"), "{}", skipped.stderr);
    wd.open_gate("gate");
}

#[test]
fn status_summarises_the_daemon() {
    let wd = jobs_workdir();
    let daemon = wd.start();
    wait_until("the daemon to be ready", TIMEOUT, || {
        daemon.get("/api/health").status == 200
    });
    let text = ctl(&daemon, &["status"]).ok().out();
    assert!(
        text.starts_with(&format!(
            "servitord {} (ok), up ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("workdir:  {}\n", wd.path().display())),
        "{text}"
    );
    assert!(text.contains("jobs:     4\n"), "{text}");
    let health: servitor_shared::api::Health =
        serde_json::from_slice(&ctl(&daemon, &["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(health.jobs, 4);
    let version = run_to_end(Command::new(binary("servitorctl")).arg("--version")).ok();
    assert_eq!(
        version.out(),
        format!("servitorctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}
