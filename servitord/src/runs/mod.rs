//! Runs: the lifecycle that owns every run from request to end, the queue and workers
//! that pace them, the executors that run them, restart recovery, and the hooks told
//! when a run ends.

pub mod executor;
pub mod hooks;
mod lifecycle;
mod outcome;
mod queue;
mod recovery;
pub mod retries;
pub mod scheduler;
pub mod schedules;
pub mod workers;

pub use lifecycle::{CancelError, Runs, SubmitError};
pub use recovery::recover;
