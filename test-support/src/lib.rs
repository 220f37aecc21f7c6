//! Test support for the integration tests of servitord, servitorctl and the web UI:
//! temporary working directories, the real `servitord` started on them (with every
//! `SERVITOR_*` variable of the caller's environment removed, so a developer's shell
//! cannot change a test), and a small HTTP/1.1 client over its UNIX socket.
//!
//! A dev-only crate of the workspace: it does not use the servitord library, only
//! starts its binary.

mod daemon;
mod http;
pub mod procfs;
mod scale;
mod wait;
mod workdir;

pub use daemon::{
    Daemon, DaemonBuilder, RunProcess, WorkdirGivenAs, binary, is_alive, job_processes,
    kill_job_processes, run_processes, without_servitor_variables,
};
pub use http::{Connection, Head, Response, Stream, encode};
pub use scale::{Rng, size_from_env};
pub use wait::{TIMEOUT, wait_for, wait_until};
pub use workdir::Workdir;
