//! The HTTP API's vocabulary: paths, parameter names, and every request, response
//! and event shape exchanged between `servitord` and its clients.
//!
//! The shapes are a compatibility contract with the Python tool Servitor replaces:
//! field names and order are fixed, and new fields are only ever added.

pub mod api;
pub mod env;
mod event;
mod execution;
pub mod inputs;
mod job;
pub mod os;
mod settings;

pub use event::Event;
pub use execution::{
    Execution, ExecutionStatus, InputValues, Peer, RunResult, SlurmPlacement, StatusChange,
};
pub use job::{InputSpec, Job, LastExecution};
pub use settings::{
    CatchUp, CronSchedule, Executor, JobSettings, OnBusy, Retention, Retry, SlurmSettings,
};
