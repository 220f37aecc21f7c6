//! Each unfinished run's status, for those who wait on it (log followers): a watch
//! channel per run someone follows, told of every change the run lifecycle makes, and
//! closed once the run has ended.

use std::collections::HashMap;
use std::sync::Mutex;

use servitor_shared::ExecutionStatus;
use tokio::sync::watch;

use crate::jobs::id::RunId;
use crate::sync::lock;

#[derive(Default)]
pub struct Statuses {
    followed: Mutex<HashMap<RunId, watch::Sender<ExecutionStatus>>>,
}

impl Statuses {
    /// The run's status now (`current` reads it) and as it changes; `None` for an
    /// unknown run. The channel closes once the run has ended. `current` is read under
    /// the same lock as `changed` takes after recording a change, so no change slips in
    /// between: either `current` sees it, or the channel is told of it.
    pub fn follow(
        &self,
        run: &RunId,
        current: impl FnOnce() -> Option<ExecutionStatus>,
    ) -> Option<watch::Receiver<ExecutionStatus>> {
        let mut followed = lock(&self.followed);
        let status = current()?;
        if status.is_terminal() {
            return Some(watch::channel(status).1);
        }
        let sender = followed
            .entry(run.clone())
            .or_insert_with(|| watch::channel(status).0);
        Some(sender.subscribe())
    }

    /// Tells the run's followers of a change already recorded.
    pub fn changed(&self, run: &RunId, status: ExecutionStatus) {
        let mut followed = lock(&self.followed);
        if let Some(sender) = followed.get(run) {
            sender.send_replace(status);
            if status.is_terminal() {
                followed.remove(run);
            }
        }
    }
}
