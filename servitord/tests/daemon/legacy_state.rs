//! A `state/` folder written by the old tool (the fixture `tests/fixtures/legacy-state`,
//! made by hand) keeps its history, damage included.

use std::path::Path;

use servitor_shared::ExecutionStatus::{Cancelled, Created, Failure, Running, Success, Unknown};
use servitor_shared::{Execution, RunResult, StatusChange};

use crate::support::Workdir;
use crate::{sh, statuses};

const BACKUP: &str = "nightly/backup";

fn fixture() -> Workdir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-state");
    Workdir::new()
        .copy_tree(&fixture, "state")
        .job(BACKUP, &sh("echo \"backing up ${TARGET-nothing}\""))
        .input_spec(BACKUP, r#"{"TARGET": {}}"#)
        .job("hello", &sh("echo Hello!"))
}

fn result(exit_code: i64, message: &str) -> Option<RunResult> {
    Some(RunResult {
        exit_code,
        message: message.into(),
    })
}

fn by_id<'a>(list: &'a [Execution], id: &str) -> &'a Execution {
    list.iter()
        .find(|e| e.execution_id == id)
        .unwrap_or_else(|| panic!("no execution {id} in {list:?}"))
}

#[test]
fn an_old_state_folder_is_listed_with_its_damage_kept_local() {
    let wd = fixture();
    let daemon = wd.start();

    let jobs: Vec<_> = daemon.jobs().into_iter().map(|j| j.job_id).collect();
    assert_eq!(jobs, ["hello", BACKUP]);

    let list = daemon.executions(BACKUP);
    let ids: Vec<_> = list.iter().map(|e| e.execution_id.as_str()).collect();
    // The stray folder and file are skipped.
    assert_eq!(ids, ["7", "6", "5", "4", "3", "2", "1"]);

    let first = by_id(&list, "1");
    assert_eq!(first.status, Success);
    // Timestamps are passed through verbatim, the old tool's short form too.
    assert_eq!(
        first.status_history,
        [
            ("2024-03-17T00:59:08.123456+00:00", Created),
            ("2024-03-17T01:00:00+00:00", Running),
            ("2024-03-17T01:02:03.000001+00:00", Success),
        ]
        .map(|(timestamp, status)| StatusChange {
            timestamp: timestamp.into(),
            status
        })
    );
    assert_eq!(first.result, result(0, ""));
    assert_eq!(first.input_values["TARGET"], "/srv");
    assert_eq!(first.error, None);

    let could_not_start = by_id(&list, "2");
    assert_eq!(statuses(could_not_start), [Created, Failure]);
    assert_eq!(
        could_not_start.result,
        result(-1, "No such file or directory")
    );

    let failed = by_id(&list, "3");
    assert_eq!(failed.status, Failure);
    assert_eq!(failed.result, result(2, "disk full"));
    // Python's json.dump: no trailing newline, non-ASCII escaped.
    assert_eq!(failed.input_values["TARGET"], "/home/zürich");
    assert_eq!(failed.error, None);

    let cancelled = by_id(&list, "4");
    assert_eq!(cancelled.status, Cancelled);
    assert_eq!(cancelled.result, result(-2, ""));

    // Damaged executions: shown, with status `unknown` and what is wrong.
    let empty = by_id(&list, "5");
    assert_eq!(empty.status, Unknown);
    assert!(empty.status_history.is_empty());
    let error = empty.error.as_deref().expect("an error");
    assert!(error.contains("empty status history"), "{error}");
    let missing = by_id(&list, "7");
    assert_eq!(missing.status, Unknown);
    let error = missing.error.as_deref().expect("an error");
    assert!(error.contains("status_history.tsv"), "{error}");
    let raw = daemon
        .get(&format!(
            "/api/jobs/executions/get?job_id={BACKUP}&execution_id=5"
        ))
        .value();
    assert_eq!(raw["status"], "unknown");
    assert!(raw["error"].is_string());

    // A torn last line (a crash mid-append) keeps what is readable and says what is not.
    let torn = by_id(&list, "6");
    assert_eq!(
        torn.status_history[0].timestamp,
        "2024-03-21T00:59:08.123456+00:00"
    );
    let error = torn.error.as_deref().expect("an error");
    assert!(error.contains("incomplete last line"), "{error}");

    // Old logs are served as they are; a run without a log has an empty one.
    assert_eq!(daemon.log_of(BACKUP, "1"), b"backing up /srv\ndone\n");
    assert_eq!(daemon.log_of(BACKUP, "2"), b"");
    assert_eq!(daemon.log_of("hello", "1"), b"Hello!\n");

    // A job no longer configured is unknown, its state untouched.
    daemon
        .get("/api/jobs/executions/get_list?job_id=removed")
        .error_message(404);
    assert!(wd.join("state/jobs/removed/executions/1").is_dir());
}

#[test]
fn an_old_state_folder_goes_on_numbering_and_repairs_what_was_unfinished() {
    let wd = fixture();
    let daemon = wd.start();

    // The torn run was left `created`: it is queued again and runs.
    let torn = daemon.wait_status(BACKUP, "6", Success);
    assert_eq!(statuses(&torn), [Created, Running, Success]);
    assert_eq!(daemon.log_of(BACKUP, "6"), b"backing up /var\n");
    // The torn line was ended before the next append.
    let history = wd.read(&format!(
        "state/jobs/{BACKUP}/executions/6/status_history.tsv"
    ));
    let lines: Vec<_> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    assert_eq!(lines[1], "2024-03-21T00:59:08.2\trunn");
    assert!(lines[2].ends_with("\trunning") && lines[3].ends_with("\tsuccess"));

    // Numbering goes on after last_execution.txt (9), not after the highest folder (7).
    let id = daemon.run(BACKUP, &[("TARGET", "/etc")]);
    assert_eq!(id, "10");
    daemon.wait_status(BACKUP, &id, Success);
    assert_eq!(
        wd.read(&format!(
            "state/jobs/{BACKUP}/executions/last_execution.txt"
        )),
        "10"
    );
    assert_eq!(daemon.run("hello", &[]), "2");

    // What was finished stays as it was.
    assert_eq!(
        wd.read(&format!(
            "state/jobs/{BACKUP}/executions/1/status_history.tsv"
        )),
        "2024-03-17T00:59:08.123456+00:00\tcreated\n\
         2024-03-17T01:00:00+00:00\trunning\n\
         2024-03-17T01:02:03.000001+00:00\tsuccess\n"
    );
    assert_eq!(daemon.execution(BACKUP, "5").status, Unknown);
    assert_eq!(daemon.executions(BACKUP).len(), 8);
}
