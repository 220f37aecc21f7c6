//! How a run that did not succeed ended, in one line for a person (or cron's mail):
//! `backup/nightly #42 failed with exit code 3 after 12.0s`.

use servitor_shared::{Execution, ExecutionStatus};

use crate::output;

/// The line for a run that did not succeed; `None` for a success.
pub fn describe(job: &str, execution: &Execution) -> Option<String> {
    let result = execution.result.as_ref();
    let message = result.map_or("", |r| r.message.as_str());
    let code = result.map_or(-1, |r| r.exit_code);
    let started = output::time_of(execution, ExecutionStatus::Running).is_some();
    let after = match output::run_time(execution) {
        Some(time) if started => format!(" after {}", output::short_duration(time)),
        _ => String::new(),
    };
    // The daemon's message, where it says more than the words before it.
    let detail = |text: String| match message {
        "" => text,
        _ => format!("{text}: {message}"),
    };
    let how = match execution.status {
        ExecutionStatus::Success => return None,
        ExecutionStatus::Cancelled if !started => "was cancelled before it started".to_owned(),
        ExecutionStatus::Cancelled => format!("was cancelled{after}"),
        // The message says after how long, and how it was stopped.
        ExecutionStatus::Failure if execution.timed_out => match message {
            "" => format!("timed out{after}"),
            _ => message.to_owned(),
        },
        ExecutionStatus::Failure if !started => {
            let why = message.strip_prefix("cannot start: ").unwrap_or(message);
            match why {
                "" => "could not start".to_owned(),
                _ => format!("could not start: {why}"),
            }
        }
        ExecutionStatus::Failure if code < -1 && message.starts_with("killed by") => {
            format!("was {message}{after}")
        }
        ExecutionStatus::Failure if code < -1 => {
            detail(format!("was killed by signal {}{after}", -code))
        }
        ExecutionStatus::Failure if code > 0 => {
            detail(format!("failed with exit code {code}{after}"))
        }
        ExecutionStatus::Failure => detail(format!("failed{after}")),
        ExecutionStatus::Created | ExecutionStatus::Running => {
            format!("has not ended (it is {})", execution.status)
        }
        ExecutionStatus::Unknown => detail("ended in an unknown state".to_owned()),
    };
    Some(format!("{job} #{} {how}", execution.execution_id))
}

/// The last `n` lines of a log as it streams by, however long it is.
pub struct Tail {
    n: usize,
    lines: std::collections::VecDeque<Vec<u8>>,
    /// The line being read, not yet ended by a newline.
    open: Vec<u8>,
}

/// A longer line is cut: the tail is for a glance, not a copy.
const LONGEST_LINE: usize = 64 * 1024;

impl Tail {
    pub fn new(n: usize) -> Tail {
        Tail {
            n,
            lines: Default::default(),
            open: Vec::new(),
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            self.extend_open(&bytes[..end]);
            let line = std::mem::take(&mut self.open);
            self.lines.push_back(line);
            if self.lines.len() > self.n {
                self.lines.pop_front();
            }
            bytes = &bytes[end + 1..];
        }
        self.extend_open(bytes);
    }

    fn extend_open(&mut self, bytes: &[u8]) {
        let room = LONGEST_LINE.saturating_sub(self.open.len());
        self.open.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The lines kept, each ended by a newline (a last line without one gets one).
    pub fn into_bytes(mut self) -> Vec<u8> {
        if !self.open.is_empty() {
            self.lines.push_back(std::mem::take(&mut self.open));
            if self.lines.len() > self.n {
                self.lines.pop_front();
            }
        }
        let mut bytes = Vec::new();
        for line in self.lines {
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use servitor_shared::{RunResult, StatusChange};

    use super::*;

    fn execution(statuses: &[(&str, ExecutionStatus)], exit_code: i64, message: &str) -> Execution {
        Execution {
            execution_id: "42".into(),
            status: statuses.last().unwrap().1,
            status_history: statuses
                .iter()
                .map(|(time, status)| StatusChange {
                    timestamp: format!("2024-03-17T00:59:{time}+00:00"),
                    status: *status,
                })
                .collect(),
            result: Some(RunResult {
                exit_code,
                message: message.into(),
            }),
            input_values: Default::default(),
            triggered_by: None,
            cancelled_by: None,
            timed_out: false,
            error: None,
            slurm: None,
        }
    }

    fn ran(end: ExecutionStatus, exit_code: i64, message: &str) -> Execution {
        use ExecutionStatus::*;
        execution(
            &[("00.0", Created), ("00.5", Running), ("12.5", end)],
            exit_code,
            message,
        )
    }

    #[test]
    fn says_how_a_run_ended() {
        use ExecutionStatus::*;
        let line = |e: &Execution| describe("backup/nightly", e).unwrap();
        assert_eq!(describe("a", &ran(Success, 0, "")), None);
        assert_eq!(
            line(&ran(Failure, 3, "")),
            "backup/nightly #42 failed with exit code 3 after 12.0s"
        );
        assert_eq!(
            line(&ran(Failure, 3, "OUT_OF_MEMORY")),
            "backup/nightly #42 failed with exit code 3 after 12.0s: OUT_OF_MEMORY"
        );
        assert_eq!(
            line(&ran(Failure, -9, "killed by signal 9 (SIGKILL)")),
            "backup/nightly #42 was killed by signal 9 (SIGKILL) after 12.0s"
        );
        assert_eq!(
            line(&ran(Cancelled, -15, "cancelled: stopped by SIGTERM")),
            "backup/nightly #42 was cancelled after 12.0s"
        );
        let mut timed_out = ran(Failure, -15, "timed out after 12s: stopped by SIGTERM");
        timed_out.timed_out = true;
        assert_eq!(
            line(&timed_out),
            "backup/nightly #42 timed out after 12s: stopped by SIGTERM"
        );
        let unstarted = execution(
            &[("00.0", Created), ("00.1", Failure)],
            -1,
            "cannot start: permission denied",
        );
        assert_eq!(
            line(&unstarted),
            "backup/nightly #42 could not start: permission denied"
        );
        let dropped = execution(&[("00.0", Created), ("00.1", Cancelled)], -1, "cancelled");
        assert_eq!(
            line(&dropped),
            "backup/nightly #42 was cancelled before it started"
        );
    }

    #[test]
    fn keeps_the_last_lines() {
        let mut tail = Tail::new(2);
        tail.push(b"one\ntw");
        tail.push(b"o\nthree\nfour");
        assert_eq!(tail.into_bytes(), b"three\nfour\n");
        let mut none = Tail::new(0);
        none.push(b"a\nb\n");
        assert_eq!(none.into_bytes(), b"");
        let mut long = Tail::new(1);
        long.push(&vec![b'x'; LONGEST_LINE + 10]);
        long.push(b"\n");
        assert_eq!(long.into_bytes().len(), LONGEST_LINE + 1);
    }
}
