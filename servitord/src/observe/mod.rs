//! Watching the daemon and its runs: the event bus behind `/api/events`, each run's
//! status for those who wait on it, log following, and the metrics.

pub mod events;
pub mod log_follow;
pub mod metrics;
pub mod statuses;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts itself in a gauge for as long as it lives.
pub struct Counted(Arc<AtomicUsize>);

impl Counted {
    pub fn new(gauge: &Arc<AtomicUsize>) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(gauge))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
