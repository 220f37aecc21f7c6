//! Runs on a real Slurm cluster (`"executor": "slurm"`): the one `SLURM_CONF` names,
//! e.g. `eval "$(scripts/slurm-local.sh start)"`. Skipped, saying so, only where
//! `sbatch` is not installed and `SERVITOR_SKIP_SLURM_TESTS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;
use servitor_shared::ExecutionStatus::{Cancelled, Created, Failure, Running, Success};
use servitor_shared::{Execution, ExecutionStatus};

use crate::support::{Daemon, Workdir, job_processes, wait_for, wait_until};
use crate::{sh, statuses, wait_gate};

/// Taken for reading by every test here, for writing by the one that stops the
/// cluster's controller: that one runs alone.
static CLUSTER: RwLock<()> = RwLock::new(());

/// Long enough for a job to be submitted, scheduled (about a second here) and ended.
const SLURM_TIMEOUT: Duration = Duration::from_secs(60);

const SETTINGS: &str = r#"{"executor": "slurm"}"#;

/// Whether a cluster is there to test against; panics, saying how to get one, when it
/// is not and skipping was not asked for.
fn cluster_here() -> bool {
    let sbatch = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("sbatch").is_file()));
    if !sbatch && std::env::var("SERVITOR_SKIP_SLURM_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping a Slurm test: sbatch is not installed (SERVITOR_SKIP_SLURM_TESTS=1)");
        return false;
    }
    assert!(
        sbatch,
        "sbatch is not installed: install slurm-wlm, or set SERVITOR_SKIP_SLURM_TESTS=1"
    );
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "SLURM_CONF is not set: start a cluster with eval \"$(scripts/slurm-local.sh start)\""
    );
    true
}

fn shared() -> Option<RwLockReadGuard<'static, ()>> {
    cluster_here().then(|| CLUSTER.read().unwrap_or_else(|e| e.into_inner()))
}

fn alone() -> Option<RwLockWriteGuard<'static, ()>> {
    cluster_here().then(|| CLUSTER.write().unwrap_or_else(|e| e.into_inner()))
}

fn start(wd: &Workdir) -> Daemon {
    wd.daemon()
        .args(["--slurm-poll", "200ms", "--slurm-exit-wait", "3s"])
        .start()
}

fn wait_ended(daemon: &Daemon, job: &str, id: &str) -> Execution {
    wait_for(&format!("{job} #{id} to end"), SLURM_TIMEOUT, || {
        Some(daemon.execution(job, id)).filter(|e| e.status.is_terminal())
    })
}

fn wait_status(daemon: &Daemon, job: &str, id: &str, status: ExecutionStatus) -> Execution {
    wait_for(
        &format!("{job} #{id} to be {status}"),
        SLURM_TIMEOUT,
        || Some(daemon.execution(job, id)).filter(|e| e.status == status),
    )
}

/// The job id Slurm gave the run, once the daemon knows it.
fn wait_job_id(daemon: &Daemon, job: &str, id: &str) -> String {
    wait_for(
        &format!("{job} #{id} to have a Slurm job"),
        SLURM_TIMEOUT,
        || daemon.execution(job, id).slurm.map(|slurm| slurm.job_id),
    )
}

fn result_message(execution: &Execution) -> String {
    execution.result.as_ref().expect("a result").message.clone()
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn runs_on_the_cluster_with_exit_codes_inputs_env_and_a_whole_log() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job("hpc/ok", &sh("printf '%s|%s|%s\\n' \"$TEXT\" \"$FROM_SETTINGS\" \"$SERVITOR_JOB\"\nprintf 'stderr too\\n' >&2"))
        .input_spec("hpc/ok", r#"{"TEXT": {}}"#)
        .job("hpc/three", &sh("echo going to fail\nexit 3"))
        .file(
            "config/jobs/hpc/.settings.json",
            r#"{"executor": "slurm", "env": {"FROM_SETTINGS": "a,b  c\nd=e"}}"#,
        );
    let daemon = start(&wd);
    let text = "x,y z\nnext line";
    let ok = daemon.run("hpc/ok", &[("TEXT", text)]);
    let three = daemon.run("hpc/three", &[]);

    let ended = wait_ended(&daemon, "hpc/ok", &ok);
    assert_eq!(statuses(&ended), [Created, Running, Success]);
    assert_eq!(ended.result.as_ref().unwrap().exit_code, 0);
    let slurm = ended.slurm.as_ref().expect("where it ran");
    assert!(slurm.job_id.parse::<u64>().is_ok(), "{slurm:?}");
    assert!(slurm.node.is_some(), "{slurm:?}");
    assert_eq!(
        String::from_utf8(daemon.log_of("hpc/ok", &ok)).unwrap(),
        format!("{text}|a,b  c\nd=e|hpc/ok\nstderr too\n")
    );

    let failed = wait_ended(&daemon, "hpc/three", &three);
    assert_eq!(statuses(&failed), [Created, Running, Failure]);
    assert_eq!(failed.result.as_ref().unwrap().exit_code, 3);
    assert_eq!(daemon.log_of("hpc/three", &three), b"going to fail\n");

    // The execution's JSON, and the metrics, say where runs went.
    let raw: Value = daemon.get_json(&format!(
        "/api/jobs/executions/get?job_id=hpc%2Fok&execution_id={ok}"
    ));
    assert_eq!(raw["slurm"]["job_id"], slurm.job_id.as_str());
    assert_eq!(
        daemon.metric(
            "servitor_runs_finished_total{job=\"hpc/ok\",executor=\"slurm\",status=\"success\"}"
        ),
        1.0
    );
    assert!(daemon.metric("servitor_slurm_polls_total") >= 1.0);
    // And so does `servitorctl show`.
    let shown = Command::new(crate::support::binary("servitorctl"))
        .arg("--socket")
        .arg(daemon.socket())
        .args(["show", "hpc/ok", &ok])
        .env("NO_COLOR", "1")
        .output()
        .expect("servitorctl runs");
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    let node = slurm.node.as_deref().unwrap();
    assert!(
        shown.contains(&format!("Slurm job:  {} on {node}\n", slurm.job_id)),
        "{shown}"
    );
}

#[test]
fn a_running_log_is_followed_live() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job(
            "live",
            &sh(&format!("echo first\n{}\necho second", wait_gate("gate"))),
        )
        .file("config/jobs/live.settings.json", SETTINGS)
        .gate("gate");
    let daemon = start(&wd);
    let id = daemon.run("live", &[]);
    wait_status(&daemon, "live", &id, Running);
    let mut log = daemon.stream(&format!(
        "/api/jobs/executions/logs/get?job_id=live&execution_id={id}"
    ));
    let mut received = Vec::new();
    while received != b"first\n" {
        let chunk = log
            .next_chunk(SLURM_TIMEOUT)
            .expect("the first line, while it runs");
        received.extend(chunk);
    }
    wd.open_gate("gate");
    while let Some(chunk) = log.next_chunk(SLURM_TIMEOUT) {
        received.extend(chunk);
    }
    assert_eq!(received, b"first\nsecond\n");
    assert_eq!(daemon.execution("live", &id).status, Success);
}

#[test]
fn a_pending_run_is_cancelled_in_the_queue() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new().job("held", &sh("echo should not run")).file(
        "config/jobs/held.settings.json",
        r#"{"executor": "slurm", "slurm": {"sbatch_args": ["--hold"]}}"#,
    );
    let daemon = start(&wd);
    let id = daemon.run("held", &[]);
    let job_id = wait_job_id(&daemon, "held", &id);
    assert_eq!(daemon.execution("held", &id).status, Created);
    let answer = daemon.post(&format!(
        "/api/jobs/executions/cancel?job_id=held&execution_id={id}"
    ));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let ended = wait_ended(&daemon, "held", &id);
    assert_eq!(statuses(&ended), [Created, Cancelled]);
    assert!(
        result_message(&ended).starts_with("cancelled: "),
        "{ended:?}"
    );
    let state = squeue_state(&job_id);
    assert_eq!(state.as_deref(), Some("CANCELLED"));
}

/// Slurm's state of a job, while it still lists it.
fn squeue_state(job_id: &str) -> Option<String> {
    let output = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%T", "-j", job_id])
        .output()
        .expect("squeue runs");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[test]
fn a_running_run_gets_its_stop_signal_then_sigkill() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job(
            "traps",
            &sh("trap 'echo got TERM; exit 42' TERM\necho started\nsleep 300 &\nwait $!"),
        )
        .file(
            "config/jobs/traps.settings.json",
            r#"{"executor": "slurm", "stop_signal": "SIGTERM"}"#,
        )
        .job(
            "stubborn",
            &sh("trap '' TERM INT\n(sleep 300) &\necho started\nwhile :; do sleep 1; done"),
        )
        .file(
            "config/jobs/stubborn.settings.json",
            r#"{"executor": "slurm", "stop_signal": "SIGTERM", "stop_grace": "2s"}"#,
        );
    let daemon = start(&wd);
    let traps = daemon.run("traps", &[]);
    let stubborn = daemon.run("stubborn", &[]);
    for (job, id) in [("traps", &traps), ("stubborn", &stubborn)] {
        wait_status(&daemon, job, id, Running);
        wait_until(&format!("{job} to have started"), SLURM_TIMEOUT, || {
            daemon.log_now(job, id).starts_with(b"started\n")
        });
        let answer = daemon.post(&format!(
            "/api/jobs/executions/cancel?job_id={job}&execution_id={id}"
        ));
        assert_eq!(answer.status, 200, "{}", answer.text());
    }

    let trapped = wait_ended(&daemon, "traps", &traps);
    assert_eq!(statuses(&trapped), [Created, Running, Cancelled]);
    assert_eq!(result_message(&trapped), "cancelled: stopped by SIGTERM");
    assert_eq!(trapped.result.as_ref().unwrap().exit_code, 42);
    assert!(
        String::from_utf8_lossy(&daemon.log_of("traps", &traps)).contains("got TERM"),
        "the job's trap ran"
    );

    let killed = wait_ended(&daemon, "stubborn", &stubborn);
    assert_eq!(statuses(&killed), [Created, Running, Cancelled]);
    assert_eq!(
        result_message(&killed),
        "cancelled: killed by SIGKILL after 2s"
    );
    // Its background child, which ignored TERM too, is gone with it.
    wait_until(
        "every process of the runs to be gone",
        SLURM_TIMEOUT,
        || job_processes(wd.path()).is_empty(),
    );
}

#[test]
fn a_timeout_stops_the_run() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job("slow", &sh("echo started\nexec sleep 300"))
        .file(
            "config/jobs/slow.settings.json",
            r#"{"executor": "slurm", "timeout": "2s"}"#,
        );
    let daemon = start(&wd);
    let id = daemon.run("slow", &[]);
    let ended = wait_ended(&daemon, "slow", &id);
    assert_eq!(statuses(&ended), [Created, Running, Failure]);
    assert!(ended.timed_out, "{ended:?}");
    assert_eq!(
        result_message(&ended),
        "timed out after 2s: stopped by SIGTERM"
    );
}

#[test]
fn a_restarted_daemon_follows_its_runs_to_their_real_exit_codes() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job("long", &sh(&format!("{}\nexit 7", wait_gate("gate"))))
        .job("short", &sh(&format!("{}\nexit 5", wait_gate("other"))))
        .file("config/jobs/.settings.json", SETTINGS)
        .gate("gate")
        .gate("other");
    let mut daemon = start(&wd);
    let long = daemon.run("long", &[]);
    let short = daemon.run("short", &[]);
    wait_status(&daemon, "long", &long, Running);
    wait_status(&daemon, "short", &short, Running);

    daemon.kill();
    // One ends while no daemon watches; the other after the restart.
    wd.open_gate("other");
    wait_until("short to have written its exit code", SLURM_TIMEOUT, || {
        wd.join(format!("state/jobs/short/executions/{short}/exit_code"))
            .exists()
    });
    daemon.start_again();
    let short_ended = wait_ended(&daemon, "short", &short);
    assert_eq!(statuses(&short_ended), [Created, Running, Failure]);
    assert_eq!(short_ended.result.as_ref().unwrap().exit_code, 5);

    assert_eq!(daemon.execution("long", &long).status, Running);
    wd.open_gate("gate");
    let long_ended = wait_ended(&daemon, "long", &long);
    assert_eq!(statuses(&long_ended), [Created, Running, Failure]);
    assert_eq!(long_ended.result.as_ref().unwrap().exit_code, 7);
}

#[test]
fn a_crash_between_sbatch_and_its_answer_submits_nothing_twice() {
    let Some(_cluster) = shared() else { return };
    // An sbatch that submits, then hangs the first time, as one cut off would.
    let real = Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .expect("sh runs");
    let real = String::from_utf8(real.stdout).unwrap().trim().to_owned();
    let wd = Workdir::new()
        .job("once", &sh("echo ran >> \"$SERVITOR_ROOT/ran\""))
        .file("config/jobs/once.settings.json", SETTINGS)
        .gate("hang")
        .file(
            "bin/sbatch",
            &format!(
                "#!/bin/sh\nif [ -e \"$SERVITOR_ROOT/hung\" ]; then exec {real} \"$@\"; fi\n\
                 touch \"$SERVITOR_ROOT/hung\"\n{real} \"$@\"\nread _ < \"$SERVITOR_ROOT/hang\"\n"
            ),
        );
    std::fs::set_permissions(
        wd.join("bin/sbatch"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        wd.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut daemon = wd
        .daemon()
        .args(["--slurm-poll", "200ms", "--slurm-exit-wait", "3s"])
        .env("PATH", &path)
        .start();
    let id = daemon.run("once", &[]);
    wait_until("the job to have run", SLURM_TIMEOUT, || {
        wd.join("ran").exists()
    });
    assert_eq!(
        daemon.execution("once", &id).slurm,
        None,
        "no job id known yet"
    );
    daemon.kill();
    wd.open_gate("hang");

    daemon.start_again();
    let ended = wait_ended(&daemon, "once", &id);
    assert_eq!(ended.status, Success, "{ended:?}");
    assert!(ended.slurm.is_some(), "found again by its name");
    assert_eq!(wd.read("ran"), "ran\n", "submitted once");
}

#[test]
fn a_job_that_left_no_exit_code_is_a_lost_failure_never_a_success() {
    let Some(_cluster) = shared() else { return };
    // The job kills its wrapper, which then never writes the exit code.
    let wd = Workdir::new()
        .job("orphan", &sh("kill -9 $PPID\nsleep 1\nexit 0"))
        .file("config/jobs/orphan.settings.json", SETTINGS);
    let daemon = start(&wd);
    let id = daemon.run("orphan", &[]);
    let ended = wait_ended(&daemon, "orphan", &id);
    assert_eq!(ended.status, Failure, "{ended:?}");
    let result = ended.result.as_ref().unwrap();
    assert_eq!(result.exit_code, -1);
    assert!(
        result.message.contains("lost") || result.message.contains("wrote no exit code"),
        "{}",
        result.message
    );
}

#[test]
fn a_controller_outage_changes_no_status_and_polling_resumes() {
    let Some(_cluster) = alone() else { return };
    let script = repository().join("scripts/slurm-local.sh");
    let controller = |action: &str| {
        let status = Command::new(&script)
            .args(["controller", action])
            .status()
            .expect("slurm-local.sh runs");
        assert!(status.success(), "slurm-local.sh controller {action}");
    };
    /// Starts the controller again whatever happens to the test.
    struct Restart<F: Fn(&str)>(F);
    impl<F: Fn(&str)> Drop for Restart<F> {
        fn drop(&mut self) {
            (self.0)("start");
        }
    }

    let wd = Workdir::new()
        .job("steady", &sh(&wait_gate("gate")))
        .file("config/jobs/steady.settings.json", SETTINGS)
        .gate("gate");
    let daemon = start(&wd);
    let id = daemon.run("steady", &[]);
    wait_status(&daemon, "steady", &id, Running);

    let restart = Restart(controller);
    (restart.0)("stop");
    let polls = daemon.metric("servitor_slurm_polls_total");
    wait_until("a few listings to fail", SLURM_TIMEOUT, || {
        daemon.metric("servitor_slurm_polls_total") >= polls + 3.0
    });
    assert_eq!(daemon.execution("steady", &id).status, Running);
    drop(restart);

    wd.open_gate("gate");
    let ended = wait_ended(&daemon, "steady", &id);
    assert_eq!(statuses(&ended), [Created, Running, Success]);
}

#[test]
fn sbatch_refusals_are_failures_that_say_why() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new()
        .job("nowhere", &sh("true"))
        .file(
            "config/jobs/nowhere.settings.json",
            r#"{"executor": "slurm", "slurm": {"partition": "no-such-partition"}}"#,
        )
        .job("greedy", &sh("true"))
        .file(
            "config/jobs/greedy.settings.json",
            r#"{"executor": "slurm", "slurm": {"mem": "100000G"}}"#,
        );
    let daemon = start(&wd);
    for (job, words) in [
        ("nowhere", "invalid partition"),
        ("greedy", "Memory specification can not be satisfied"),
    ] {
        let id = daemon.run(job, &[]);
        let ended = wait_ended(&daemon, job, &id);
        assert_eq!(statuses(&ended), [Created, Failure], "{job}");
        let message = result_message(&ended);
        assert!(
            message.starts_with("Slurm did not take the job: ") && message.contains(words),
            "{job}: {message}"
        );
    }
}

#[test]
fn a_concurrency_cap_holds_across_slurm_runs() {
    let Some(_cluster) = shared() else { return };
    let wd = Workdir::new().job("one-at-a-time", &sh("sleep 1")).file(
        "config/jobs/one-at-a-time.settings.json",
        r#"{"executor": "slurm", "concurrency": 1}"#,
    );
    let daemon = start(&wd);
    let ids: Vec<String> = (0..3).map(|_| daemon.run("one-at-a-time", &[])).collect();
    let ended: Vec<Execution> = ids
        .iter()
        .map(|id| wait_ended(&daemon, "one-at-a-time", id))
        .collect();
    for pair in ended.windows(2) {
        let [first, next] = pair else { unreachable!() };
        assert_eq!(next.status, Success);
        let first_end = &first.status_history.last().unwrap().timestamp;
        let next_start = &next.status_history[1].timestamp;
        assert!(
            next_start >= first_end,
            "#{} started at {next_start}, before #{} ended at {first_end}",
            next.execution_id,
            first.execution_id
        );
    }
}
