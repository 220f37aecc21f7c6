//! Waiting for conditions with a deadline, never a fixed sleep.

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen promptly. Generous: tests
/// run in parallel on small machines, and it only costs time when a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How often a condition is checked again.
const RECHECK: Duration = Duration::from_millis(10);

/// Waits until `condition` holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    wait_for(what, timeout, || condition().then_some(()));
}

/// Waits until `probe` yields a value and returns it; panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(RECHECK);
    }
}
