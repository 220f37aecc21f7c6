//! Jobs that run on their own, as their settings say: when a job's `schedule` fires
//! ([`Schedule`], read in its time zone and across daylight-saving changes as cron
//! does) and how a failed run is retried ([`RetryPolicy`]). The task that sleeps until
//! the next fire time is `runs::scheduler`.

// The run lifecycle wires these in; until then only the settings check uses them.
#![allow(dead_code, unused_imports)]

mod cron;
mod fire_times;
mod retry;
mod wall_clock;

pub use fire_times::Schedule;
pub use retry::{RetryError, RetryPolicy};

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
