//! The run queue: runs waiting for a worker, in FIFO order, and the runs workers hold.
//!
//! A run is in exactly one place at a time, waiting or active, and moves between them
//! under one lock, so a cancel either takes a waiting run out of the queue (and ends
//! it itself) or signals the worker that holds it; never both, never neither.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A job id and an execution id.
pub type RunKey = (String, u64);

#[derive(Debug)]
pub struct Ticket {
    pub key: RunKey,
    /// Cancelled when someone asks to cancel the run.
    pub cancel: CancellationToken,
}

impl Ticket {
    pub fn new(job: &str, id: u64) -> Self {
        Self {
            key: (job.to_owned(), id),
            cancel: CancellationToken::new(),
        }
    }
}

#[derive(Default)]
pub struct RunQueue {
    state: Mutex<State>,
    added: Notify,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Ticket>,
    active: HashMap<RunKey, CancellationToken>,
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

impl RunQueue {
    pub fn push(&self, ticket: Ticket) {
        self.lock().waiting.push_back(ticket);
        self.added.notify_one();
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
            self.added.notify_one();
        }
    }

    /// Waits for the oldest waiting run and marks it active.
    pub async fn pop(&self) -> Ticket {
        loop {
            let added = self.added.notified();
            {
                let mut state = self.lock();
                if let Some(ticket) = state.waiting.pop_front() {
                    state
                        .active
                        .insert(ticket.key.clone(), ticket.cancel.clone());
                    if !state.waiting.is_empty() {
                        // Pass the wake-up on: several runs may have arrived at once.
                        self.added.notify_one();
                    }
                    return ticket;
                }
            }
            added.await;
        }
    }

    /// Marks a run as active without a worker (a run re-adopted after a restart).
    pub fn track(&self, key: RunKey) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().active.insert(key, token.clone());
        token
    }

    /// Forgets a run its worker has finished.
    pub fn done(&self, key: &RunKey) {
        self.lock().active.remove(key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_with_recovered_runs_first_and_cancel() {
        let queue = RunQueue::default();
        queue.push(Ticket::new("new", 1));
        queue.push(Ticket::new("new", 2));
        queue.push_front(vec![Ticket::new("old", 1), Ticket::new("old", 2)]);

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
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(RunQueue::default());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await.key }
        });
        tokio::task::yield_now().await;
        queue.push(Ticket::new("j", 9));
        assert_eq!(waiter.await.unwrap(), ("j".to_owned(), 9));
    }
}
