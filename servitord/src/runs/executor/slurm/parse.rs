//! Reading what Slurm's commands print (`sbatch --parsable`, `squeue -o`) and the
//! wrapper's exit code file. Their text comes from outside: nothing here panics on
//! it, a bad `squeue` line is skipped and reported, never fatal for the others.

use std::fmt;

use thiserror::Error;

use super::names::DaemonPrefix;

/// The `squeue -o` format the executor lists jobs with: id, state, reason, node list,
/// name. `|` appears in none of the first four; a job name may hold any character
/// but NUL (`|` and newlines included, verified on 22.05), so it comes last and keeps
/// whatever follows the fourth `|`.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%N|%j";
const SQUEUE_FIELDS: usize = 5;

/// A Slurm job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlurmJobId(pub u64);

impl fmt::Display for SlurmJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `sbatch --parsable` printed: `123`, or `123;cluster` in a federation or with
/// `--clusters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub job_id: SlurmJobId,
    pub cluster: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SbatchOutputError {
    #[error("sbatch printed no job id")]
    Empty,
    #[error("sbatch printed {0:?}, not a job id")]
    NotAJobId(String),
}

/// Reads `sbatch --parsable`'s standard output.
pub fn sbatch_output(stdout: &[u8]) -> Result<Submitted, SbatchOutputError> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    if text.is_empty() {
        return Err(SbatchOutputError::Empty);
    }
    let (id, cluster) = match text.split_once(';') {
        Some((id, cluster)) => (id, Some(cluster)),
        None => (text, None),
    };
    let bad = || SbatchOutputError::NotAJobId(text.to_owned());
    let job_id = job_id(id).ok_or_else(bad)?;
    let cluster = match cluster {
        Some(name) if name.is_empty() || name.contains(char::is_whitespace) => {
            return Err(bad());
        }
        cluster => cluster.map(str::to_owned),
    };
    Ok(Submitted { job_id, cluster })
}

/// A plain decimal job id (an array or heterogeneous job's `123_4`, `123+0` is not).
fn job_id(text: &str) -> Option<SlurmJobId> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(SlurmJobId)
}

/// A job's state, as `squeue %T` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    Requeued,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// Any other, as written (`REQUEUE_HOLD`, `RESIZING`, `STOPPED`...).
    Other(String),
}

impl JobState {
    pub fn parse(text: &str) -> Self {
        match text {
            "PENDING" => Self::Pending,
            "CONFIGURING" => Self::Configuring,
            "RUNNING" => Self::Running,
            "COMPLETING" => Self::Completing,
            "SUSPENDED" => Self::Suspended,
            "REQUEUED" => Self::Requeued,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            "TIMEOUT" => Self::Timeout,
            "OUT_OF_MEMORY" => Self::OutOfMemory,
            "NODE_FAIL" => Self::NodeFail,
            "PREEMPTED" => Self::Preempted,
            "BOOT_FAIL" => Self::BootFail,
            "DEADLINE" => Self::Deadline,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The job has ended and will not run again; its processes may still be being
    /// killed (COMPLETING is not final).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::Timeout
                | Self::OutOfMemory
                | Self::NodeFail
                | Self::Preempted
                | Self::BootFail
                | Self::Deadline
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Configuring => "CONFIGURING",
            Self::Running => "RUNNING",
            Self::Completing => "COMPLETING",
            Self::Suspended => "SUSPENDED",
            Self::Requeued => "REQUEUED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Timeout => "TIMEOUT",
            Self::OutOfMemory => "OUT_OF_MEMORY",
            Self::NodeFail => "NODE_FAIL",
            Self::Preempted => "PREEMPTED",
            Self::BootFail => "BOOT_FAIL",
            Self::Deadline => "DEADLINE",
            Self::Other(text) => text,
        }
    }
}

/// One of the daemon's jobs in a `squeue` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub job_id: SlurmJobId,
    pub state: JobState,
    /// Why it waits or how it ended (`None`, `Resources`, `JobHeldUser`, `TimeLimit`...).
    pub reason: String,
    /// Where it runs or ran; `None` while pending.
    pub node: Option<String>,
    pub name: String,
}

/// A line of the daemon's that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based.
    pub number: usize,
    pub text: String,
    pub why: &'static str,
}

/// The daemon's jobs in a `squeue` listing, and the lines that were not understood.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<QueueEntry>,
    pub skipped: Vec<SkippedLine>,
}

/// Reads `squeue -h -o SQUEUE_FORMAT`'s output, keeping the jobs named with
/// `prefix`. Other jobs are left out unread; a line too short to have a name (the
/// rest of a name with a newline, a cut-off listing) or one of the daemon's with a
/// bad id or state is skipped and reported.
pub fn squeue_output(stdout: &[u8], prefix: &DaemonPrefix) -> Listing {
    let mut listing = Listing::default();
    for (index, line) in stdout.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        // The daemon's names are ASCII: a line that is not UTF-8 can still carry one.
        let line = String::from_utf8_lossy(line);
        let mut skip = |why| {
            listing.skipped.push(SkippedLine {
                number: index + 1,
                text: line.to_string(),
                why,
            });
        };
        let fields: Vec<&str> = line.splitn(SQUEUE_FIELDS, '|').collect();
        let [id, state, reason, node, name] = fields[..] else {
            skip("fewer than 5 fields");
            continue;
        };
        if !prefix.owns(name) {
            continue;
        }
        let Some(job_id) = job_id(id) else {
            skip("the job id is not a number");
            continue;
        };
        if state.is_empty() || !state.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            skip("the state is not a Slurm state");
            continue;
        }
        listing.entries.push(QueueEntry {
            job_id,
            state: JobState::parse(state),
            reason: reason.to_owned(),
            node: Some(node).filter(|n| !n.is_empty()).map(str::to_owned),
            name: name.to_owned(),
        });
    }
    listing
}

/// The exit status the wrapper recorded: 0 to 255, as the shell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode(pub u8);

impl ExitCode {
    /// The signal a status of 128+N likely stands for (a job may also have exited
    /// with that code: the shell cannot tell).
    pub fn signal(self) -> Option<i32> {
        let n = i32::from(self.0) - 128;
        (1..=64).contains(&n).then_some(n)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExitCodeError {
    #[error("the exit code file is empty")]
    Empty,
    #[error("the exit code file holds {0:?}, not a status from 0 to 255 and a newline")]
    Garbage(String),
}

/// Reads the wrapper's exit code file: `3\n`. Anything else (empty, cut short,
/// garbage) is an error: the file is written whole or not at all, so such a file
/// was not written by the wrapper.
pub fn exit_code(bytes: &[u8]) -> Result<ExitCode, ExitCodeError> {
    if bytes.is_empty() {
        return Err(ExitCodeError::Empty);
    }
    let garbage = || ExitCodeError::Garbage(String::from_utf8_lossy(bytes).into_owned());
    let digits = bytes.strip_suffix(b"\n").ok_or_else(garbage)?;
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(garbage());
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse::<u8>().ok())
        .map(ExitCode)
        .ok_or_else(garbage)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A recorded output of servitord/tests/fixtures/slurm/record.sh.
    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/slurm")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The prefix the recorded names were made with.
    fn recorded_prefix() -> DaemonPrefix {
        DaemonPrefix::from_recorded("servitor-0123456789abcdef-")
    }

    #[test]
    fn recorded_sbatch_output() {
        assert_eq!(
            sbatch_output(&fixture("sbatch-ok.stdout.txt")),
            Ok(Submitted {
                job_id: SlurmJobId(1),
                cluster: None
            })
        );
        // Refusals print nothing on stdout, and say why on stderr.
        for refused in [
            "sbatch-bad-partition",
            "sbatch-too-much-memory",
            "sbatch-unknown-option",
        ] {
            let stdout = fixture(&format!("{refused}.stdout.txt"));
            assert_eq!(sbatch_output(&stdout), Err(SbatchOutputError::Empty));
            assert_ne!(fixture(&format!("{refused}.status.txt")), b"0\n");
        }
    }

    #[test]
    fn sbatch_output_shapes() {
        let ok = |id, cluster: Option<&str>| {
            Ok(Submitted {
                job_id: SlurmJobId(id),
                cluster: cluster.map(str::to_owned),
            })
        };
        assert_eq!(sbatch_output(b"123\n"), ok(123, None));
        assert_eq!(sbatch_output(b"123"), ok(123, None));
        assert_eq!(sbatch_output(b"123;west\n"), ok(123, Some("west")));
        assert_eq!(sbatch_output(b"  \n"), Err(SbatchOutputError::Empty));
        for bad in [
            &b"Submitted batch job 123\n"[..],
            b"12a\n",
            b"-1\n",
            b"123;\n",
            b";west\n",
            b"123_4\n",
            b"99999999999999999999999\n",
            b"1\n2\n",
            b"\xff\xfe\n",
        ] {
            assert!(
                matches!(sbatch_output(bad), Err(SbatchOutputError::NotAJobId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn recorded_listing_with_every_state() {
        let listing = squeue_output(&fixture("squeue-all.stdout.txt"), &recorded_prefix());
        let states: Vec<(u64, &str, &str, Option<&str>)> = listing
            .entries
            .iter()
            .map(|e| {
                (
                    e.job_id.0,
                    e.state.as_str(),
                    e.reason.as_str(),
                    e.node.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                (10, "CANCELLED", "None", Some("vm")),
                (9, "CANCELLED", "JobHeldUser", None),
                (1, "COMPLETED", "None", Some("vm")),
                (4, "COMPLETED", "None", Some("vm")),
                (5, "FAILED", "NonZeroExitCode", Some("vm")),
                (11, "FAILED", "NonZeroExitCode", Some("vm")),
                (8, "PENDING", "BeginTime", None),
                (7, "PENDING", "JobHeldUser", None),
                (6, "RUNNING", "None", Some("vm")),
                (3, "TIMEOUT", "TimeLimit", Some("vm")),
            ]
        );
        assert_eq!(
            listing.entries[9].name,
            "servitor-0123456789abcdef-2222222222222222-1-timeout"
        );
        assert_eq!(listing.entries[9].state, JobState::Timeout);
        // The job named "servitor-odd\nname" is not the daemon's; its second line
        // is reported. "a|b c ünï" and sbatch's refused job "wrap" are left out.
        assert_eq!(
            listing.skipped,
            [SkippedLine {
                number: 6,
                text: "name".into(),
                why: "fewer than 5 fields"
            }]
        );
    }

    #[test]
    fn recorded_live_and_completing_listings() {
        let listing = squeue_output(&fixture("squeue-live.stdout.txt"), &recorded_prefix());
        let running = listing
            .entries
            .iter()
            .filter(|e| e.state == JobState::Running)
            .count();
        assert_eq!(running, 4);
        assert_eq!(listing.entries.len(), 10);

        let listing = squeue_output(&fixture("squeue-completing.stdout.txt"), &recorded_prefix());
        assert_eq!(listing.entries[0].state, JobState::Completing);
        assert!(!listing.entries[0].state.is_final());

        // A job id squeue does not know: nothing on stdout, an error on stderr.
        let unknown = fixture("squeue-unknown-job.stdout.txt");
        assert_eq!(
            squeue_output(&unknown, &recorded_prefix()),
            Listing::default()
        );
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        let prefix = recorded_prefix();
        let ours = |rest: &str| format!("servitor-0123456789abcdef-{rest}");
        let mut bytes = Vec::new();
        for line in [
            format!("12|RUNNING|None|n1|{}", ours("a-1-x")),
            "13|RUNNING|None".to_owned(),
            format!("x|RUNNING|None|n1|{}", ours("a-2-x")),
            format!("14|running|None|n1|{}", ours("a-3-x")),
            format!("15||None|n1|{}", ours("a-4-x")),
            format!(
                "16|OUT_OF_MEMORY|OutOfMemory|n[1-2]|{}|with|bars",
                ours("a-5-x")
            ),
            format!("17|REQUEUE_HOLD|JobHoldMaxRequeue||{}", ours("a-6-x")),
            String::new(),
            "18|RUNNING|None|n1|someone-else".to_owned(),
            format!("19|COMPLETED|None|n1|{}\r", ours("a-7-x")),
            format!("20|PENDING|Resources||{}", ours("a-8-x")),
            "21|PEND".to_owned(),
        ] {
            bytes.extend_from_slice(line.as_bytes());
            if line.starts_with("20|") {
                // Not UTF-8, after one of the daemon's names.
                bytes.push(0xff);
            }
            if !line.starts_with("21|") {
                bytes.push(b'\n');
            }
        }
        // Cut off: no newline after line 12. Then not UTF-8 in someone else's name.
        bytes.extend_from_slice(b"\n22|RUNNING|None|n1|caf\xe9\n");
        let listing = squeue_output(&bytes, &prefix);
        let ids: Vec<u64> = listing.entries.iter().map(|e| e.job_id.0).collect();
        assert_eq!(ids, [12, 16, 17, 19, 20]);
        assert_eq!(listing.entries[1].state, JobState::OutOfMemory);
        assert_eq!(listing.entries[1].name, ours("a-5-x|with|bars"));
        assert_eq!(listing.entries[1].node.as_deref(), Some("n[1-2]"));
        assert_eq!(
            listing.entries[2].state,
            JobState::Other("REQUEUE_HOLD".into())
        );
        assert_eq!(listing.entries[3].name, ours("a-7-x\r"), "kept as written");
        let skipped: Vec<(usize, &str)> =
            listing.skipped.iter().map(|s| (s.number, s.why)).collect();
        assert_eq!(
            skipped,
            [
                (2, "fewer than 5 fields"),
                (3, "the job id is not a number"),
                (4, "the state is not a Slurm state"),
                (5, "the state is not a Slurm state"),
                (12, "fewer than 5 fields"),
            ]
        );
        assert_eq!(squeue_output(b"", &prefix), Listing::default());
        assert_eq!(squeue_output(b"\n\n", &prefix), Listing::default());
    }

    #[test]
    fn every_state_reads_back() {
        for text in [
            "PENDING",
            "CONFIGURING",
            "RUNNING",
            "COMPLETING",
            "SUSPENDED",
            "REQUEUED",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
            "SPECIAL_EXIT",
        ] {
            let state = JobState::parse(text);
            assert_eq!(state.as_str(), text);
            assert_eq!(
                matches!(state, JobState::Other(_)),
                text == "SPECIAL_EXIT",
                "{text}"
            );
        }
        assert!(JobState::Timeout.is_final());
        assert!(!JobState::Pending.is_final());
        assert!(!JobState::Requeued.is_final());
    }

    #[test]
    fn exit_code_files() {
        assert_eq!(exit_code(b"0\n"), Ok(ExitCode(0)));
        assert_eq!(exit_code(b"3\n"), Ok(ExitCode(3)));
        assert_eq!(exit_code(b"255\n"), Ok(ExitCode(255)));
        assert_eq!(exit_code(b""), Err(ExitCodeError::Empty));
        for bad in [
            &b"3"[..],
            b"\n",
            b"256\n",
            b"0003\n",
            b"-1\n",
            b" 3\n",
            b"3\n\n",
            b"3\r\n",
            b"exit 3\n",
            b"\xff\n",
            b"\0\n",
        ] {
            assert!(
                matches!(exit_code(bad), Err(ExitCodeError::Garbage(_))),
                "{bad:?}"
            );
        }
        assert_eq!(ExitCode(143).signal(), Some(15));
        assert_eq!(ExitCode(137).signal(), Some(9));
        assert_eq!(ExitCode(128).signal(), None);
        assert_eq!(ExitCode(3).signal(), None);
        assert_eq!(ExitCode(255).signal(), None);
    }
}
