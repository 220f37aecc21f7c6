//! The HTTP API's vocabulary: paths, parameter names, and every request, response
//! and event shape exchanged between `servitord` and its clients.
//!
//! The shapes are a compatibility contract with the Python tool Servitor replaces:
//! field names and order are fixed, and new fields are only ever added.

pub mod api;
mod event;
mod execution;
pub mod inputs;
mod job;
mod settings;

pub use event::Event;
pub use execution::{Execution, ExecutionStatus, InputValues, Peer, RunResult, StatusChange};
pub use job::{InputSpec, Job};
pub use settings::{Executor, JobSettings, OnBusy, Retention, SlurmSettings};
