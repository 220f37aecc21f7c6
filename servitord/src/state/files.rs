//! The formats of the files under `state/jobs/<job>/executions/`, as the old tool
//! wrote them. Parsers never fail on damage: they keep what is readable and say
//! what was not, so one bad file cannot break a listing.

use std::collections::BTreeMap;

use servitor_shared::{
    ExecutionStatus, InputValues, Peer, RunResult, SlurmPlacement, StatusChange,
};

/// The last execution number handed out for a job: `executions/last_execution.txt`.
pub const LAST_EXECUTION: &str = "last_execution.txt";
/// A run's input values: `executions/<n>/input.json`.
pub const INPUT: &str = "input.json";
/// A run's status changes: `executions/<n>/status_history.tsv`.
pub const STATUS_HISTORY: &str = "status_history.tsv";
/// How a run ended: `executions/<n>/result.tsv`.
pub const RESULT: &str = "result.tsv";
/// Added by Servitor for a run on a Slurm cluster: its job id and node,
/// `executions/<n>/slurm.json`.
pub const SLURM: &str = "slurm.json";
/// The folder of a run's log: `executions/<n>/logs/`.
pub const LOGS_DIR: &str = "logs";
/// Added by Servitor, beside a job's `executions/`: who asked for each run and who
/// cancelled it, and that servitord started it, one line appended per request or start
/// (no file per run).
pub const AUDIT_LOG: &str = "audit.tsv";

/// Who asked for a run and who cancelled it, and whether servitord started it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub triggered_by: Option<Peer>,
    /// What made the run: an API request unless a line says otherwise.
    pub origin: Origin,
    pub cancelled_by: Option<Peer>,
    /// servitord was about to start the run's process: it may have run, even when no
    /// `running` status followed (a crash in between). Written before every start,
    /// whoever asked for the run, so a restart never runs it twice.
    pub started: bool,
}

/// What made a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client's request (and every run of the old tool).
    #[default]
    Api,
    /// The job's schedule fired.
    Schedule,
    /// Retry number `attempt` (1 is the first) of execution `of`, which failed.
    Retry { of: u64, attempt: u32 },
}

/// What an `audit.tsv` line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A client asked for the run.
    Run,
    /// servitord made the run: its schedule fired, or it retries a failed one.
    Made(Origin),
    /// A client asked to cancel it.
    Cancel,
    /// servitord (the peer is servitord itself) is starting it.
    Start,
}

impl Asked {
    fn word(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Cancel => "cancel",
            Self::Start => "start",
            Self::Made(Origin::Api) => "run",
            Self::Made(Origin::Schedule) => "schedule",
            Self::Made(Origin::Retry { .. }) => "retry",
        }
    }
}

/// One `audit.tsv` line: `<execution>\t<run|cancel|start|schedule>\t<uid>\t<gid>\t<pid or ->\n`,
/// or for a retry `<execution>\tretry\t<uid>\t<gid>\t<pid>\t<execution retried>\t<attempt>\n`.
pub fn format_audit_line(id: u64, asked: Asked, peer: Peer) -> String {
    let pid = peer.pid.map_or("-".to_owned(), |pid| pid.to_string());
    let retry = match asked {
        Asked::Made(Origin::Retry { of, attempt }) => format!("\t{of}\t{attempt}"),
        _ => String::new(),
    };
    format!(
        "{id}\t{}\t{}\t{}\t{pid}{retry}\n",
        asked.word(),
        peer.uid,
        peer.gid
    )
}

/// Reads `audit.tsv` into each execution's audit; unreadable lines (a write cut short)
/// are skipped.
pub fn parse_audit_log(text: &str) -> BTreeMap<u64, Audit> {
    let mut audits: BTreeMap<u64, Audit> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (id, asked, uid, gid, pid, retry) = match fields[..] {
            [id, asked, uid, gid, pid] => (id, asked, uid, gid, pid, None),
            [id, "retry", uid, gid, pid, of, attempt] => match (of.parse(), attempt.parse()) {
                (Ok(of), Ok(attempt)) => (id, "retry", uid, gid, pid, Some((of, attempt))),
                _ => continue,
            },
            _ => continue,
        };
        let (Ok(id), Ok(uid), Ok(gid)) = (id.parse(), uid.parse(), gid.parse()) else {
            continue;
        };
        let pid = match pid {
            "-" => None,
            pid => match pid.parse() {
                Ok(pid) => Some(pid),
                Err(_) => continue,
            },
        };
        let peer = Some(Peer { uid, gid, pid });
        let audit = audits.entry(id).or_default();
        match asked {
            "run" => audit.triggered_by = peer,
            "cancel" => audit.cancelled_by = peer,
            "start" => audit.started = true,
            "schedule" => audit.origin = Origin::Schedule,
            "retry" => {
                if let Some((of, attempt)) = retry {
                    audit.origin = Origin::Retry { of, attempt };
                }
            }
            _ => {}
        }
    }
    audits
}

/// A run's log, in `LOGS_DIR`: stdout and stderr interleaved.
pub const LOG: &str = "main.txt";

/// How the result message of a run stopped by its timeout begins ("timed out after
/// 1m 30s: stopped by SIGTERM"); the API's `timed_out` is read from it.
pub const TIMED_OUT: &str = "timed out after ";

/// `last_execution.txt`: decimal text, surrounding whitespace tolerated.
pub fn parse_last_execution(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `last_execution.txt` as written: decimal text, no newline.
pub fn format_last_execution(id: u64) -> String {
    id.to_string()
}

/// One `status_history.tsv` line, newline included.
pub fn format_status_line(timestamp: &str, status: ExecutionStatus) -> String {
    format!("{timestamp}\t{status}\n")
}

/// What could be read of a `status_history.tsv`.
#[derive(Debug, Default, PartialEq)]
pub struct History {
    /// The readable lines, in file order.
    pub changes: Vec<StatusChange>,
    /// Lines that could not be read, described for the `error` field and the log.
    pub problems: Vec<String>,
    /// The file does not end with a newline (a write was cut short, or it is empty):
    /// the next append must start a new line.
    pub needs_newline: bool,
}

/// Reads a `status_history.tsv`: every readable `<timestamp>\t<status>` line (a
/// trailing `\r` tolerated), and a problem for each line that is not.
pub fn parse_status_history(text: &str) -> History {
    let mut history = History {
        needs_newline: !text.is_empty() && !text.ends_with('\n'),
        ..History::default()
    };
    let mut lines = text.split('\n').peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break;
        }
        match parse_status_line(line) {
            Some(change) => history.changes.push(change),
            // A cut-off last line is what a crash mid-append leaves: drop it quietly
            // unless it is readable.
            None if last => history
                .problems
                .push(format!("incomplete last line {number}")),
            None => history.problems.push(format!("unreadable line {number}")),
        }
    }
    if history.changes.is_empty() && history.problems.is_empty() {
        history.problems.push("empty status history".into());
    }
    history
}

fn parse_status_line(line: &str) -> Option<StatusChange> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (timestamp, status) = line.split_once('\t')?;
    let status = ExecutionStatus::parse(status)?;
    (!timestamp.is_empty()).then(|| StatusChange {
        timestamp: timestamp.to_owned(),
        status,
    })
}

/// `result.tsv`: `<exit_code>\t<message>\n`, with tabs and newlines in the message
/// replaced by spaces so the file stays one line.
pub fn format_result(result: &RunResult) -> String {
    let message = result.message.replace(['\t', '\n', '\r'], " ");
    format!("{}\t{message}\n", result.exit_code)
}

/// Reads `result.tsv`: an exit code (surrounding spaces tolerated), then everything
/// after the first tab as the message; a missing tab is an empty message.
pub fn parse_result(text: &str) -> Result<RunResult, String> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let (code, message) = line.split_once('\t').unwrap_or((line, ""));
    let exit_code = code
        .trim()
        .parse()
        .map_err(|_| format!("unreadable result {:?}", truncate(line, 40)))?;
    Ok(RunResult {
        exit_code,
        message: message.to_owned(),
    })
}

/// `input.json`: a JSON object of strings, 2-space indent, trailing newline.
pub fn format_input_values(values: &InputValues) -> String {
    let mut text = serde_json::to_string_pretty(values).expect("a map of strings serializes");
    text.push('\n');
    text
}

/// Reads `input.json`: a JSON object of strings.
pub fn parse_input_values(text: &str) -> Result<InputValues, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable input.json: {e}"))
}

/// `slurm.json`: `{"job_id": "17", "node": "n1"}`.
pub fn format_slurm(placement: &SlurmPlacement) -> String {
    let mut text = serde_json::to_string(placement).expect("a placement serializes");
    text.push('\n');
    text
}

/// Reads `slurm.json`.
pub fn parse_slurm(text: &str) -> Result<SlurmPlacement, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable {SLURM}: {e}"))
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionStatus::*;

    fn statuses(history: &History) -> Vec<ExecutionStatus> {
        history.changes.iter().map(|c| c.status).collect()
    }

    #[test]
    fn reads_a_clean_history() {
        let text = "2024-03-17T00:59:08.123456+00:00\tcreated\n2024-03-17T00:59:08.2+00:00\trunning\n2024-03-17T00:59:09.123456+00:00\tsuccess\n";
        let history = parse_status_history(text);
        assert_eq!(statuses(&history), [Created, Running, Success]);
        assert_eq!(history.changes[1].timestamp, "2024-03-17T00:59:08.2+00:00");
        assert!(history.problems.is_empty());
        assert!(!history.needs_newline);
    }

    #[test]
    fn round_trips_a_line() {
        let line = format_status_line("2024-03-17T00:59:08.123456+00:00", Cancelled);
        assert_eq!(line, "2024-03-17T00:59:08.123456+00:00\tcancelled\n");
        assert_eq!(statuses(&parse_status_history(&line)), [Cancelled]);
    }

    #[test]
    fn survives_damage() {
        // A torn last line, as left by a crash in the middle of an append.
        let torn = parse_status_history("t1\tcreated\nt2\trunn");
        assert_eq!(statuses(&torn), [Created]);
        assert_eq!(torn.problems, ["incomplete last line 2"]);
        assert!(torn.needs_newline);

        // A readable last line without its newline is kept.
        let unterminated = parse_status_history("t1\tcreated\nt2\trunning");
        assert_eq!(statuses(&unterminated), [Created, Running]);
        assert!(unterminated.needs_newline);

        let garbage =
            parse_status_history("garbage\n\tsuccess\nt\tweird\n\0\u{fffd}\nt3\tfailure\r\n");
        assert_eq!(statuses(&garbage), [Failure]);
        assert_eq!(garbage.problems.len(), 4);

        let empty = parse_status_history("");
        assert!(empty.changes.is_empty());
        assert_eq!(empty.problems, ["empty status history"]);
        assert!(!empty.needs_newline);

        assert_eq!(parse_status_history("\n\n").problems.len(), 2);
    }

    #[test]
    fn results() {
        let failed = RunResult {
            exit_code: -1,
            message: "No such\tfile\nor directory".into(),
        };
        assert_eq!(format_result(&failed), "-1\tNo such file or directory\n");
        assert_eq!(
            parse_result("-1\tNo such file or directory\n"),
            Ok(RunResult {
                exit_code: -1,
                message: "No such file or directory".into()
            })
        );
        assert_eq!(parse_result("0\t\n").map(|r| r.exit_code), Ok(0));
        assert_eq!(parse_result("42").map(|r| r.exit_code), Ok(42));
        assert!(parse_result("").is_err());
        assert!(parse_result("x\ty\n").is_err());
        assert!(parse_result(&"9".repeat(100)).is_err());
    }

    #[test]
    fn audit_lines() {
        let peer = Peer {
            uid: 1000,
            gid: 100,
            pid: Some(42),
        };
        let anonymous = Peer {
            uid: 0,
            gid: 0,
            pid: None,
        };
        let line = format_audit_line(7, Asked::Run, peer);
        assert_eq!(line, "7\trun\t1000\t100\t42\n");
        let text = format!(
            "{line}{}garbage\n8\trun\t1\n9\tstart\t0\t0\t1\n",
            format_audit_line(7, Asked::Cancel, anonymous)
        );
        let audits = parse_audit_log(&text);
        assert_eq!(audits.len(), 2);
        assert!(!audits[&7].started);
        assert!(audits[&9].started && audits[&9].triggered_by.is_none());
        assert_eq!(audits[&7].triggered_by, Some(peer));
        assert_eq!(audits[&7].cancelled_by, Some(anonymous));
        assert_eq!(audits[&7].origin, Origin::Api);
    }

    #[test]
    fn audit_lines_of_runs_servitord_made() {
        let servitord = Peer {
            uid: 1000,
            gid: 100,
            pid: Some(42),
        };
        let scheduled = format_audit_line(3, Asked::Made(Origin::Schedule), servitord);
        assert_eq!(scheduled, "3\tschedule\t1000\t100\t42\n");
        let retry = Origin::Retry { of: 3, attempt: 1 };
        let retried = format_audit_line(4, Asked::Made(retry), servitord);
        assert_eq!(retried, "4\tretry\t1000\t100\t42\t3\t1\n");
        // A retry line cut short, or with unreadable numbers, is skipped.
        let text = format!("{scheduled}{retried}5\tretry\t1\t1\t1\t4\n6\tretry\t1\t1\t1\tx\t2\n");
        let audits = parse_audit_log(&text);
        assert_eq!(audits.len(), 2);
        assert_eq!(audits[&3].origin, Origin::Schedule);
        assert_eq!(audits[&4].origin, retry);
        assert!(audits[&4].triggered_by.is_none());
    }

    #[test]
    fn last_execution() {
        assert_eq!(parse_last_execution("12"), Some(12));
        assert_eq!(parse_last_execution("12\n"), Some(12));
        assert_eq!(parse_last_execution("twelve"), None);
        assert_eq!(parse_last_execution(""), None);
        assert_eq!(format_last_execution(12), "12");
    }

    #[test]
    fn input_values() {
        let mut values = InputValues::new();
        values.insert("NAME".into(), "Ada".into());
        values.insert("CITY".into(), "Zürich".into());
        let text = format_input_values(&values);
        assert_eq!(text, "{\n  \"NAME\": \"Ada\",\n  \"CITY\": \"Zürich\"\n}\n");
        assert_eq!(parse_input_values(&text), Ok(values));
        assert_eq!(format_input_values(&InputValues::new()), "{}\n");
        // Python's json.dump escapes non-ASCII by default.
        assert_eq!(
            parse_input_values("{\"A\": \"Z\\u00fcrich\"}").unwrap()["A"],
            "Zürich"
        );
        assert!(parse_input_values("{\"A\": 1}").is_err());
        assert!(parse_input_values("[").is_err());
    }
}
