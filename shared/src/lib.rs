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
    Execution, ExecutionStatus, ExecutionWithTrigger, InputValues, Peer, RunResult, RunTrigger,
    SlurmPlacement, StatusChange, Trigger,
};
pub use job::{InputSpec, Job, JobSchedule, LastExecution};
pub use settings::{
    CatchUp, CronSchedule, Executor, JobSettings, OnBusy, Retention, Retry, SlurmSettings,
};
