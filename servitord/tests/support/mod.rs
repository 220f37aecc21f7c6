//! Test support for the integration tests of servitord, servitorctl and the web UI:
//! temporary working directories, the real `servitord` started on them, and a small
//! HTTP/1.1 client over its UNIX socket.
//!
//! Self-contained (it does not use the servitord library), so other crates' tests can
//! include it with `#[path = "../../servitord/tests/support/mod.rs"] mod support;`; they
//! need the dev-dependencies `servitor-shared`, `serde`, `serde_json`, `tempfile` and
//! `rustix` (features `fs`, `process`).

// Each test binary uses a different part of it.
#![allow(dead_code, unused_imports)]

mod daemon;
mod http;
pub mod procfs;
mod scale;
mod wait;
mod workdir;

pub use daemon::{
    Daemon, DaemonBuilder, RunProcess, WorkdirGivenAs, binary, is_alive, job_processes,
    kill_job_processes, run_processes,
};
pub use http::{Connection, Head, Response, Stream, encode};
pub use scale::{Rng, size_from_env};
pub use wait::{TIMEOUT, wait_for, wait_until};
pub use workdir::Workdir;
