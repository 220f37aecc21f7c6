//! A run from start to end: statuses, environment, working directory, and the files
//! written under `state/`.

use servitor_shared::ExecutionStatus::{self, Created, Failure, Running, Success};
use servitor_shared::RunResult;

use crate::support::Workdir;
use crate::{assert_timestamp, sh, statuses, wait_gate};

const EXECUTION: &str = "state/jobs/team/greet/executions/1";

#[test]
fn a_run_goes_created_running_success_and_writes_the_old_layout() {
    let script = sh(&format!(
        "echo \"out: ${{GREETING-unset}}, $NAME\"\n\
         echo 'err line' >&2\n\
         pwd -P > \"$SERVITOR_ROOT/cwd\"\n\
         env > \"$SERVITOR_ROOT/env\"\n\
         {}\n\
         echo 'after the gate'",
        wait_gate("gate")
    ));
    let wd = Workdir::new()
        .job("team/greet", &script)
        .input_spec("team/greet", r#"{"NAME": {}, "GREETING": {}}"#)
        .gate("gate");
    let daemon = wd.start();

    let id = daemon.run("team/greet", &[("NAME", "Ada"), ("OTHER", "dropped")]);
    assert_eq!(id, "1");
    let running = daemon.wait_status("team/greet", &id, Running);
    assert_eq!(statuses(&running), [Created, Running]);
    assert_eq!(running.result, None);
    assert!(!wd.join(EXECUTION).join("result.tsv").exists());
    assert_eq!(
        wd.read("state/jobs/team/greet/executions/last_execution.txt"),
        "1"
    );
    assert_eq!(
        wd.read(&format!("{EXECUTION}/input.json")),
        "{\n  \"NAME\": \"Ada\"\n}\n"
    );

    wd.open_gate("gate");
    let done = daemon.wait_status("team/greet", &id, Success);
    assert_eq!(statuses(&done), [Created, Running, Success]);
    assert_eq!(
        done.result,
        Some(RunResult {
            exit_code: 0,
            message: String::new()
        })
    );
    let inputs: Vec<_> = done.input_values.iter().collect();
    assert_eq!(inputs, [(&"NAME".to_owned(), &"Ada".to_owned())]);
    for change in &done.status_history {
        assert_timestamp(&change.timestamp);
    }
    assert!(
        done.status_history
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp),
        "{:?}",
        done.status_history
    );

    // The files hold exactly what the API says.
    let history: String = done
        .status_history
        .iter()
        .map(|c| format!("{}\t{}\n", c.timestamp, c.status))
        .collect();
    assert_eq!(wd.read(&format!("{EXECUTION}/status_history.tsv")), history);
    assert_eq!(wd.read(&format!("{EXECUTION}/result.tsv")), "0\t\n");
    let log = "out: unset, Ada\nerr line\nafter the gate\n";
    assert_eq!(wd.read(&format!("{EXECUTION}/logs/main.txt")), log);
    assert_eq!(daemon.log_of("team/greet", &id), log.as_bytes());
    assert_eq!(
        wd.tree(EXECUTION),
        [
            "input.json",
            "logs",
            "logs/main.txt",
            "result.tsv",
            "status_history.tsv"
        ]
    );

    // The environment: servitord's own, the run's variables, and the spec's inputs only.
    let env = wd.read("env");
    let vars: Vec<_> = env.lines().collect();
    let root = format!("SERVITOR_ROOT={}", wd.path().display());
    for expected in [
        root.as_str(),
        "SERVITOR_JOB=team/greet",
        "SERVITOR_JOB_EXECUTION=1",
        "NAME=Ada",
    ] {
        assert!(vars.contains(&expected), "{expected} missing from:\n{env}");
    }
    assert!(
        !vars
            .iter()
            .any(|v| v.starts_with("OTHER=") || v.starts_with("GREETING=")),
        "{env}"
    );
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{env}");
    // Its own folder is the working directory.
    assert_eq!(
        wd.read("cwd").trim_end(),
        wd.job_path("team").display().to_string()
    );
}

#[test]
fn failures_signals_and_jobs_that_cannot_start() {
    let wd = Workdir::new()
        .job("exits-3", &sh("echo bad >&2\nexit 3"))
        .job("killed", &sh("kill -KILL $$"))
        .job("terminated", &sh("kill -TERM $$"))
        .job("garbage", "\u{1}\u{2}\u{3} this is no program\n")
        .job("no-interpreter", "#!/nonexistent/interpreter\necho hi\n")
        .job("fine", &sh("echo fine"));
    // One worker: a failing run must not take it down.
    let daemon = wd.daemon().args(["--workers", "1"]).start();

    let cases: [(&str, i64, &str, &[ExecutionStatus]); 5] = [
        ("exits-3", 3, "", &[Created, Running, Failure]),
        (
            "killed",
            -9,
            "killed by signal 9 (SIGKILL)",
            &[Created, Running, Failure],
        ),
        (
            "terminated",
            -15,
            "killed by signal 15 (SIGTERM)",
            &[Created, Running, Failure],
        ),
        // Could not start: the OS's words, and no `running` entry.
        ("garbage", -1, "Exec format error", &[Created, Failure]),
        (
            "no-interpreter",
            -1,
            "No such file or directory",
            &[Created, Failure],
        ),
    ];
    for (job, _, _, _) in cases {
        daemon.run(job, &[]);
    }
    for (job, exit_code, message, history) in cases {
        let execution = daemon.wait_status(job, "1", Failure);
        assert_eq!(statuses(&execution), history, "{job}");
        let result = execution.result.expect("a result");
        assert_eq!(result.exit_code, exit_code, "{job}");
        assert_eq!(result.message, message, "{job}");
        assert_eq!(
            wd.read(&format!("state/jobs/{job}/executions/1/result.tsv")),
            format!("{exit_code}\t{message}\n")
        );
    }
    assert_eq!(daemon.log_of("exits-3", "1"), b"bad\n");
    assert_eq!(daemon.log_of("garbage", "1"), b"");

    let id = daemon.run("fine", &[]);
    daemon.wait_status("fine", &id, Success);
}
