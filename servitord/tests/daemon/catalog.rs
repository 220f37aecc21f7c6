//! Which files are jobs: symlinks followed, loops survived, hidden names and broken
//! input specs kept local.

use servitor_shared::ExecutionStatus::Success;
use servitor_shared::Job;

use crate::sh;
use crate::support::{Workdir, encode};

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|job| job.job_id.as_str()).collect()
}

#[test]
fn jobs_in_symlinked_folders_are_listed_and_run_there() {
    let wd = Workdir::new()
        .file("elsewhere/placeholder", "")
        .symlink("config/jobs/linked", "../../elsewhere")
        .symlink("config/jobs/alias", "../../elsewhere/tool");
    let tool = sh("pwd -P > \"$SERVITOR_ROOT/tool-cwd\"\necho \"tool ran as $SERVITOR_JOB\"");
    let wd = wd.file("elsewhere/tool", &tool);
    std::fs::set_permissions(
        wd.join("elsewhere/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let daemon = wd.start();

    assert_eq!(ids(&daemon.jobs()), ["alias", "linked/tool"]);
    let job: Job = daemon.get_json("/api/jobs/get?job_id=linked/tool");
    assert_eq!(job.job_id, "linked/tool");

    let id = daemon.run("linked/tool", &[]);
    daemon.wait_status("linked/tool", &id, Success);
    assert_eq!(
        daemon.log_of("linked/tool", &id),
        b"tool ran as linked/tool\n"
    );
    assert_eq!(
        wd.read("tool-cwd").trim_end(),
        wd.join("elsewhere").display().to_string()
    );
    // Its state is a real folder under state/, not inside the linked one.
    let state = wd.join("state/jobs/linked/tool/executions/1/status_history.tsv");
    assert!(state.is_file());
    assert!(
        !std::fs::symlink_metadata(wd.join("state/jobs/linked"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(wd.tree("elsewhere"), ["placeholder", "tool"]);

    let id = daemon.run("alias", &[]);
    daemon.wait_status("alias", &id, Success);
    assert_eq!(daemon.log_of("alias", &id), b"tool ran as alias\n");
}

#[test]
fn a_symlink_loop_lists_each_job_once() {
    let wd = Workdir::new()
        .job("top", &sh("true"))
        .job("dir/inner", &sh("true"))
        .symlink("config/jobs/dir/loop", "..")
        .symlink("config/jobs/dir/here", ".")
        .symlink("config/jobs/dir/deeper/back", "../..")
        .symlink("config/jobs/me", "me")
        .symlink("config/jobs/ping", "pong")
        .symlink("config/jobs/pong", "ping")
        .symlink("config/jobs/dangling", "missing");
    let daemon = wd.start();

    assert_eq!(ids(&daemon.jobs()), ["dir/inner", "top"]);
    for looped in [
        "dir/loop/top",
        "dir/loop/dir/inner",
        "dir/here/inner",
        "dir/deeper/back/top",
        "me",
        "ping",
        "dangling",
    ] {
        for target in [
            format!("/api/jobs/get?job_id={}", encode(looped)),
            format!("/api/jobs/run?job_id={}", encode(looped)),
        ] {
            let method = if target.contains("/run") {
                "POST"
            } else {
                "GET"
            };
            daemon.request(method, &target).error_message(404);
        }
    }
    assert_eq!(wd.tree("state"), ["servitord.lock"]);
}

#[test]
fn hidden_files_are_neither_listed_nor_run() {
    let marker = sh("touch \"$SERVITOR_ROOT/ran-$(basename \"$0\")\"");
    let wd = Workdir::new()
        .job("visible", &sh("true"))
        .job(".hidden", &marker)
        .job(".folder/job", &marker)
        .job("dir/.secret", &marker)
        .symlink("config/jobs/dir/.link", "../visible");
    let daemon = wd.start();

    assert_eq!(ids(&daemon.jobs()), ["visible"]);
    for hidden in [".hidden", ".folder/job", "dir/.secret", "dir/.link"] {
        let message = daemon
            .post(&format!("/api/jobs/run?job_id={}", encode(hidden)))
            .error_message(404);
        assert!(message.contains("unknown job"), "{hidden}: {message}");
        daemon
            .get(&format!("/api/jobs/get?job_id={}", encode(hidden)))
            .error_message(404);
    }
    assert_eq!(wd.tree("state"), ["servitord.lock"]);
    let ran: Vec<_> = wd
        .tree("")
        .into_iter()
        .filter(|p| p.starts_with("ran-"))
        .collect();
    assert!(ran.is_empty(), "hidden jobs ran: {ran:?}");
}

#[test]
fn a_broken_input_spec_stays_local_and_blocks_only_its_job() {
    let wd = Workdir::new()
        .job("broken", &sh("true"))
        .input_spec("broken", "{not json")
        .job("fine", &sh("echo \"$NAME\""))
        .input_spec("fine", r#"{"NAME": {}}"#);
    let daemon = wd.start();

    let jobs = daemon.jobs();
    assert_eq!(ids(&jobs), ["broken", "fine"]);
    assert!(jobs[0].input_spec.is_empty());
    let error = jobs[0]
        .error
        .as_deref()
        .expect("an error on the broken job");
    assert!(error.contains("broken.input.json"), "{error}");
    assert_eq!(jobs[1].error, None);
    let raw = daemon.get("/api/jobs/get?job_id=broken").value();
    assert_eq!(raw["input_spec"], serde_json::json!({}));
    assert!(raw["error"].is_string());

    let message = daemon
        .post("/api/jobs/run?job_id=broken")
        .error_message(409);
    assert!(
        message.contains("cannot run until this is fixed"),
        "{message}"
    );
    assert!(message.contains("broken.input.json"), "{message}");
    assert!(!wd.join("state/jobs/broken").exists());

    let id = daemon.run("fine", &[("NAME", "ok")]);
    daemon.wait_status("fine", &id, Success);
    assert_eq!(daemon.log_of("fine", &id), b"ok\n");
}
