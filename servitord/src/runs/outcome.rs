//! How a run ended, in the words of its result: the status and `result.tsv` a run
//! gets from how its process exited and whether servitord stopped it.

use std::time::Duration;

use servitor_shared::{ExecutionStatus, RunResult};

use super::executor::Exit;
use crate::signal::Described;
use crate::state::files::TIMED_OUT;

/// Why servitord stopped a run before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    TimedOut(Duration),
}

/// A run's process, once it has ended: how, and whether and how it was stopped
/// ("stopped by SIGINT").
#[derive(Debug)]
pub struct Ending {
    /// Which executor ran it (`local`, `slurm`).
    pub executor: &'static str,
    pub exit: Exit,
    pub stopped: Option<(StopReason, String)>,
}

/// What a run that never started ends with.
pub fn unstarted(status: ExecutionStatus, message: String) -> (ExecutionStatus, RunResult) {
    let result = RunResult {
        exit_code: -1,
        message,
    };
    (status, result)
}

/// The status and result a run ends with.
pub fn of(ending: &Ending) -> (ExecutionStatus, RunResult) {
    let exit_code = match &ending.exit {
        Exit::Code(code) => i64::from(*code),
        Exit::Signal(signal) => -i64::from(*signal),
        Exit::Unobserved => -1,
        Exit::Failed { code, .. } => code.map_or(-1, i64::from),
        Exit::Lost(why) => return unstarted(ExecutionStatus::Failure, why.clone()),
    };
    let (status, message) = match (ending.stopped.clone(), &ending.exit) {
        (Some((StopReason::Cancelled, how)), _) => {
            (ExecutionStatus::Cancelled, format!("cancelled: {how}"))
        }
        (Some((StopReason::TimedOut(after), how)), _) => (
            ExecutionStatus::Failure,
            format!("{TIMED_OUT}{}: {how}", humantime::format_duration(after)),
        ),
        (None, Exit::Code(0)) => (ExecutionStatus::Success, String::new()),
        (None, Exit::Code(_)) => (ExecutionStatus::Failure, String::new()),
        (None, Exit::Signal(signal)) => (
            ExecutionStatus::Failure,
            format!("killed by {}", Described(*signal)),
        ),
        (None, Exit::Unobserved) => (
            ExecutionStatus::Failure,
            "servitord restarted while this run was running; it was watched until it ended, but its exit code could not be observed".to_owned(),
        ),
        (None, Exit::Failed { message, .. }) => (ExecutionStatus::Failure, message.clone()),
        (None, Exit::Lost(_)) => unreachable!("a lost run returned above"),
    };
    (status, RunResult { exit_code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(exit: Exit) -> (ExecutionStatus, RunResult) {
        of(&Ending {
            executor: "local",
            exit,
            stopped: None,
        })
    }

    #[test]
    fn exits_become_results() {
        assert_eq!(ended(Exit::Code(0)).0, ExecutionStatus::Success);
        let failed = ended(Exit::Code(3));
        assert_eq!(
            (failed.0, failed.1.exit_code),
            (ExecutionStatus::Failure, 3)
        );
        let killed = ended(Exit::Signal(9));
        assert_eq!(killed.1.exit_code, -9);
        assert_eq!(killed.1.message, "killed by signal 9 (SIGKILL)");
        let lost = ended(Exit::Lost("lost track".into()));
        assert_eq!((lost.0, lost.1.exit_code), (ExecutionStatus::Failure, -1));

        let cancelled = of(&Ending {
            executor: "local",
            exit: Exit::Signal(2),
            stopped: Some((StopReason::Cancelled, "stopped by SIGINT".into())),
        });
        assert_eq!(cancelled.0, ExecutionStatus::Cancelled);
        assert_eq!(cancelled.1.message, "cancelled: stopped by SIGINT");
        assert_eq!(cancelled.1.exit_code, -2);
        let timed_out = of(&Ending {
            executor: "local",
            exit: Exit::Code(143),
            stopped: Some((
                StopReason::TimedOut(Duration::from_secs(90)),
                "stopped by SIGTERM".into(),
            )),
        });
        assert_eq!(timed_out.0, ExecutionStatus::Failure);
        assert_eq!(
            timed_out.1.message,
            "timed out after 1m 30s: stopped by SIGTERM"
        );
    }
}
