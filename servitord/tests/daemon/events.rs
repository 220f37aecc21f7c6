//! `/api/events`: status changes pushed as they happen, one whole JSON line per chunk.

use servitor_shared::Event;
use servitor_shared::ExecutionStatus::{self, Created, Running, Success};

use crate::support::{Stream, TIMEOUT, Workdir};
use crate::{sh, wait_gate};

fn line(job: &str, id: &str, status: &str) -> String {
    format!(
        "{{\"id\":\"job_execution_status_changed\",\"payload\":{{\"job_id\":\"{job}\",\"execution_id\":\"{id}\",\"status\":\"{status}\"}}}}\n"
    )
}

fn next_line(events: &mut Stream) -> String {
    String::from_utf8(events.next_chunk(TIMEOUT).expect("the stream goes on")).unwrap()
}

#[test]
fn status_changes_arrive_as_they_happen_one_line_per_chunk() {
    let wd = Workdir::new()
        .job("gated", &sh(&wait_gate("gate")))
        .gate("gate");
    let daemon = wd.start();
    let mut first = daemon.stream("/api/events");
    let mut second = daemon.stream("/api/events");
    for events in [&first, &second] {
        assert_eq!(
            events.head.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(events.head.header("transfer-encoding"), Some("chunked"));
    }

    let id = daemon.run("gated", &[]);
    assert_eq!(next_line(&mut first), line("gated", &id, "created"));
    assert_eq!(next_line(&mut first), line("gated", &id, "running"));
    // The run is still waiting at its gate: the event came as it happened.
    assert_eq!(daemon.execution("gated", &id).status, Running);

    wd.open_gate("gate");
    assert_eq!(next_line(&mut first), line("gated", &id, "success"));
    // The result is on disk by the time the terminal event is out.
    assert!(
        wd.join(format!("state/jobs/gated/executions/{id}/result.tsv"))
            .is_file()
    );

    let statuses: Vec<ExecutionStatus> = (0..3)
        .map(|_| match second.next_event(TIMEOUT) {
            Event::JobExecutionStatusChanged { status, .. } => status,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(statuses, [Created, Running, Success]);
}

#[test]
fn events_of_many_runs_never_share_a_chunk() {
    let wd = Workdir::new().job("quick", &sh("true"));
    let daemon = wd.daemon().args(["--workers", "4"]).start();
    let mut events = daemon.stream("/api/events");
    let ids: Vec<_> = (0..20).map(|_| daemon.run("quick", &[])).collect();

    let mut successes = 0;
    while successes < ids.len() {
        // `next_event` checks each chunk is exactly one JSON line.
        if let Event::JobExecutionStatusChanged {
            status: Success, ..
        } = events.next_event(TIMEOUT)
        {
            successes += 1;
        }
    }
    for id in &ids {
        assert_eq!(daemon.execution("quick", id).status, Success);
    }
}
