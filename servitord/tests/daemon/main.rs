//! Integration tests of servitord: the real binary on a fresh working directory, driven
//! over its UNIX socket with HTTP/1.1. Jobs synchronise with the tests through files and
//! FIFO "gates" (a job blocks reading one until the test opens it), never through sleeps.

use servitor_test_support as support;

mod api;
mod cancel;
mod catalog;
mod events;
mod faults;
mod legacy_state;
mod load;
mod logs;
mod openapi;
mod operations;
mod process;
mod requests;
mod restart;
mod retries;
mod runs;
mod schedules;
mod security;
mod settings;
mod slurm;
mod ui;

use servitor_shared::{Execution, ExecutionStatus};

/// A job script for `/bin/sh`.
pub fn sh(body: &str) -> String {
    format!("#!/bin/sh\n{body}\n")
}

/// The line of a job script that blocks until the test calls `open_gate(gate)`.
pub fn wait_gate(gate: &str) -> String {
    format!("read _ < \"$SERVITOR_ROOT/{gate}\"")
}

pub fn statuses(execution: &Execution) -> Vec<ExecutionStatus> {
    execution.status_history.iter().map(|c| c.status).collect()
}

/// Checks the state files' timestamp format, e.g. `2024-03-17T00:59:08.123456+00:00`.
#[track_caller]
pub fn assert_timestamp(text: &str) {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:dd.dddddd+00:00";
    let fits = text.len() == SHAPE.len()
        && text
            .chars()
            .zip(SHAPE.chars())
            .all(|(c, shape)| match shape {
                'd' => c.is_ascii_digit(),
                literal => c == literal,
            });
    assert!(fits, "{text:?} is not shaped like {SHAPE}");
}
