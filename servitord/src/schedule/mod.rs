//! Jobs that run on their own: when a job's `schedule` fires ([`Schedule`], read in its
//! time zone and across daylight-saving changes as cron does), how a failed run is
//! retried ([`RetryPolicy`]), and the [`Scheduler`] task that sleeps until the next
//! fire time and reports each one.

// The run lifecycle wires these in; until then only the settings check uses them.
#![allow(dead_code, unused_imports)]

mod cron;
mod fire_times;
mod retry;
mod scheduler;
mod wall_clock;

pub use fire_times::Schedule;
pub use retry::{RetryError, RetryPolicy};
pub use scheduler::{Fire, Scheduler};

/// Why a job's `schedule` or `timezone` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {expression:?} is not a cron expression: {reason}")]
    Invalid { expression: String, reason: String },
    #[error("schedule {expression:?} never fires: no date matches it")]
    NeverFires { expression: String },
    #[error("timezone {name:?} is not an IANA time zone name like \"Europe/Madrid\" or \"UTC\"")]
    UnknownTimezone { name: String },
}
