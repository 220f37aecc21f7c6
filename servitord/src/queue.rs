//! The run queue: runs waiting for a worker, in FIFO order, and the runs workers hold.
//!
//! A run is in exactly one place at a time, waiting or active, and moves between them
//! under one lock, so a cancel either takes a waiting run out of the queue (and ends
//! it itself) or signals the worker that holds it; never both, never neither.
//!
//! A job's `concurrency` limits how many of its runs are active at once. A worker
//! takes the oldest waiting run whose job has room, so a job at its limit never holds
//! up the runs of other jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use servitor_shared::InputValues;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A job id and an execution id.
pub type RunKey = (String, u64);

#[derive(Debug)]
pub struct Ticket {
    pub key: RunKey,
    /// Cancelled when someone asks to cancel the run.
    pub cancel: CancellationToken,
    /// How many runs of the job may be active at once (`None`: no limit).
    pub limit: Option<u32>,
    /// Secret input values: given to the job, kept only here, never on disk.
    pub secrets: InputValues,
}

impl Ticket {
    pub fn new(job: &str, id: u64, limit: Option<u32>) -> Self {
        Self {
            key: (job.to_owned(), id),
            cancel: CancellationToken::new(),
            limit,
            secrets: InputValues::new(),
        }
    }
}

#[derive(Default)]
pub struct RunQueue {
    state: Mutex<State>,
    /// Wakes a worker: a run was added, or one ended and may have made room.
    changed: Notify,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Ticket>,
    active: HashMap<RunKey, CancellationToken>,
    /// Runs of `on_busy: skip` jobs admitted but not queued yet, per job.
    reserved: HashMap<String, usize>,
}

impl State {
    fn active_of(&self, job: &str) -> usize {
        self.active.keys().filter(|(j, _)| j == job).count()
    }

    fn has_room(&self, ticket: &Ticket) -> bool {
        ticket
            .limit
            .is_none_or(|limit| self.active_of(&ticket.key.0) < limit as usize)
    }
}

/// What a cancel request found.
#[derive(Debug)]
pub enum Cancelled {
    /// The run was waiting: it is out of the queue and the caller must end it.
    WasWaiting,
    /// A worker holds the run and was told to stop it.
    Signalled,
    /// The queue does not know the run.
    NotHere,
}

/// The job already has `concurrency` runs queued or running.
#[derive(Debug)]
pub struct Busy;

/// Room held for one run of a job while it is being recorded; freed when dropped
/// unless the run is queued with `queue`.
pub struct Reservation<'a> {
    queue: &'a RunQueue,
    /// Taken when the run is queued.
    job: Option<String>,
}

impl RunQueue {
    pub fn push(&self, ticket: Ticket) {
        self.lock().waiting.push_back(ticket);
        self.changed.notify_one();
    }

    /// Puts runs ahead of everything waiting, in the given order (restart recovery).
    pub fn push_front(&self, tickets: Vec<Ticket>) {
        let count = tickets.len();
        {
            let mut state = self.lock();
            for ticket in tickets.into_iter().rev() {
                state.waiting.push_front(ticket);
            }
        }
        for _ in 0..count {
            self.changed.notify_one();
        }
    }

    /// Holds room for a run of `job` if fewer than `limit` are queued, running or
    /// being recorded; the check and the hold are one step, so two requests cannot
    /// both take the last place.
    pub fn reserve(&self, job: &str, limit: u32) -> Result<Reservation<'_>, Busy> {
        let mut state = self.lock();
        let taken = state.active_of(job)
            + state.waiting.iter().filter(|t| t.key.0 == job).count()
            + state.reserved.get(job).copied().unwrap_or(0);
        if taken >= limit as usize {
            return Err(Busy);
        }
        *state.reserved.entry(job.to_owned()).or_default() += 1;
        Ok(Reservation {
            queue: self,
            job: Some(job.to_owned()),
        })
    }

    /// Waits for the oldest waiting run whose job has room, and marks it active.
    pub async fn pop(&self) -> Ticket {
        loop {
            let changed = self.changed.notified();
            {
                let mut state = self.lock();
                if let Some(at) = state.waiting.iter().position(|t| state.has_room(t)) {
                    let ticket = state.waiting.remove(at).expect("position is in range");
                    state
                        .active
                        .insert(ticket.key.clone(), ticket.cancel.clone());
                    if !state.waiting.is_empty() {
                        // Pass the wake-up on: several runs may have arrived at once.
                        self.changed.notify_one();
                    }
                    return ticket;
                }
            }
            changed.await;
        }
    }

    /// Marks a run as active without a worker (a run re-adopted after a restart).
    pub fn track(&self, key: RunKey) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().active.insert(key, token.clone());
        token
    }

    /// Forgets a run that has ended; a waiting run of its job may go now.
    pub fn done(&self, key: &RunKey) {
        let mut state = self.lock();
        state.active.remove(key);
        if !state.waiting.is_empty() {
            self.changed.notify_one();
        }
    }

    pub fn cancel(&self, key: &RunKey) -> Cancelled {
        let mut state = self.lock();
        if let Some(at) = state.waiting.iter().position(|t| &t.key == key) {
            state.waiting.remove(at);
            return Cancelled::WasWaiting;
        }
        match state.active.get(key) {
            Some(token) => {
                token.cancel();
                Cancelled::Signalled
            }
            None => Cancelled::NotHere,
        }
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn active(&self) -> usize {
        self.lock().active.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reservation<'_> {
    /// Queues the run the room was held for; the room passes to it in one step.
    pub fn queue(mut self, ticket: Ticket) {
        {
            let mut state = self.queue.lock();
            if let Some(job) = self.job.take() {
                release(&mut state, &job);
            }
            state.waiting.push_back(ticket);
        }
        self.queue.changed.notify_one();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            release(&mut self.queue.lock(), &job);
        }
    }
}

fn release(state: &mut State, job: &str) {
    if let Some(count) = state.reserved.get_mut(job) {
        *count -= 1;
        if *count == 0 {
            state.reserved.remove(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_with_recovered_runs_first_and_cancel() {
        let queue = RunQueue::default();
        queue.push(Ticket::new("new", 1, None));
        queue.push(Ticket::new("new", 2, None));
        queue.push_front(vec![
            Ticket::new("old", 1, None),
            Ticket::new("old", 2, None),
        ]);

        assert!(matches!(
            queue.cancel(&("new".into(), 1)),
            Cancelled::WasWaiting
        ));
        let order: Vec<_> = [queue.pop().await, queue.pop().await, queue.pop().await]
            .into_iter()
            .map(|t| t.key)
            .collect();
        assert_eq!(
            order,
            [("old".into(), 1), ("old".into(), 2), ("new".into(), 2)]
        );
        assert_eq!(queue.active(), 3);

        let key = ("old".to_owned(), 1);
        assert!(matches!(queue.cancel(&key), Cancelled::Signalled));
        queue.done(&key);
        assert!(matches!(queue.cancel(&key), Cancelled::NotHere));
        assert_eq!(queue.active(), 2);
    }

    #[tokio::test]
    async fn a_job_at_its_limit_lets_others_pass() {
        let queue = std::sync::Arc::new(RunQueue::default());
        queue.push(Ticket::new("deploy", 1, Some(1)));
        queue.push(Ticket::new("deploy", 2, Some(1)));
        queue.push(Ticket::new("other", 1, None));
        assert_eq!(queue.pop().await.key, ("deploy".into(), 1));
        assert_eq!(
            queue.pop().await.key,
            ("other".into(), 1),
            "deploy #2 waits for #1"
        );

        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await.key }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        queue.done(&("deploy".into(), 1));
        assert_eq!(waiter.await.unwrap(), ("deploy".to_owned(), 2));
    }

    #[test]
    fn reservations_hold_room_until_dropped_or_queued() {
        let queue = RunQueue::default();
        let first = queue.reserve("deploy", 1).unwrap();
        assert!(queue.reserve("deploy", 1).is_err());
        assert!(queue.reserve("other", 1).is_ok());
        drop(first);
        let again = queue.reserve("deploy", 1).unwrap();
        again.queue(Ticket::new("deploy", 1, Some(1)));
        assert!(queue.reserve("deploy", 1).is_err(), "a queued run counts");
        assert!(queue.reserve("deploy", 2).is_ok());
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(RunQueue::default());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await.key }
        });
        tokio::task::yield_now().await;
        queue.push(Ticket::new("j", 9, None));
        assert_eq!(waiter.await.unwrap(), ("j".to_owned(), 9));
    }
}
