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
use std::sync::{Mutex, MutexGuard};

use servitor_shared::InputValues;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::jobs::id::{JobId, RunId};
use crate::sync::lock;

/// Who takes a run off the queue: the workers run local runs, one each; runs that
/// go to a cluster are taken by the remote lane, many at a time, and hold no worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    #[default]
    Local,
    Remote,
}

#[derive(Debug)]
pub struct Ticket {
    pub run: RunId,
    pub lane: Lane,
    /// Cancelled when someone asks to cancel the run.
    pub cancel: CancellationToken,
    /// How many runs of the job may be active at once (`None`: no limit).
    pub limit: Option<u32>,
    /// Secret input values: given to the job, kept only here, never on disk.
    pub secrets: InputValues,
}

impl Ticket {
    pub fn new(run: RunId, limit: Option<u32>) -> Self {
        Self {
            run,
            lane: Lane::Local,
            cancel: CancellationToken::new(),
            limit,
            secrets: InputValues::new(),
        }
    }
}

#[derive(Default)]
pub struct RunQueue {
    state: Mutex<State>,
    /// Wakes a taker of each lane: a run was added, or one ended and may have made room.
    changed: [Notify; 2],
}

#[derive(Default)]
struct State {
    /// Per lane (`Lane as usize`): a lane's taker, and each end of a run, then look
    /// at that lane's runs only, not past thousands of the other's.
    waiting: [VecDeque<Ticket>; 2],
    active: HashMap<RunId, Active>,
    /// Runs of `on_busy: skip` jobs admitted but not queued yet, per job.
    reserved: HashMap<JobId, usize>,
}

/// A run a worker (or, re-adopted, nobody) holds.
struct Active {
    /// Cancelled when someone asks to cancel the run.
    cancel: CancellationToken,
    /// Its process has ended and its end is being recorded: it still holds its place
    /// for `pop` (the next run starts once the end is recorded), but no longer makes
    /// its job busy for `reserve` (a client that saw the end may ask again at once).
    ending: bool,
}

impl Active {
    fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            ending: false,
        }
    }
}

impl State {
    fn waiting_in(&mut self, lane: Lane) -> &mut VecDeque<Ticket> {
        &mut self.waiting[lane as usize]
    }

    fn all_waiting(&self) -> impl Iterator<Item = &Ticket> {
        self.waiting.iter().flatten()
    }

    fn active_of(&self, job: &JobId) -> usize {
        self.active.keys().filter(|run| &run.job == job).count()
    }

    /// Active runs of `job` that are not ending: those that make it busy.
    fn going_on(&self, job: &JobId) -> usize {
        self.active
            .iter()
            .filter(|(run, active)| &run.job == job && !active.ending)
            .count()
    }

    fn has_room(&self, ticket: &Ticket) -> bool {
        ticket
            .limit
            .is_none_or(|limit| self.active_of(&ticket.run.job) < limit as usize)
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
    job: Option<JobId>,
}

impl RunQueue {
    pub fn push(&self, ticket: Ticket) {
        let lane = ticket.lane;
        self.lock().waiting_in(lane).push_back(ticket);
        self.changed(lane).notify_one();
    }

    fn changed(&self, lane: Lane) -> &Notify {
        &self.changed[lane as usize]
    }

    /// Puts runs ahead of everything waiting, in the given order (restart recovery).
    pub fn push_front(&self, tickets: Vec<Ticket>) {
        let lanes: Vec<Lane> = tickets.iter().map(|t| t.lane).collect();
        {
            let mut state = self.lock();
            for ticket in tickets.into_iter().rev() {
                state.waiting_in(ticket.lane).push_front(ticket);
            }
        }
        for lane in lanes {
            self.changed(lane).notify_one();
        }
    }

    /// Holds room for a run of `job` if fewer than `limit` are queued, running or
    /// being recorded; the check and the hold are one step, so two requests cannot
    /// both take the last place.
    pub fn reserve(&self, job: &JobId, limit: u32) -> Result<Reservation<'_>, Busy> {
        let mut state = self.lock();
        let taken = state.going_on(job)
            + state.all_waiting().filter(|t| &t.run.job == job).count()
            + state.reserved.get(job).copied().unwrap_or(0);
        if taken >= limit as usize {
            return Err(Busy);
        }
        *state.reserved.entry(job.clone()).or_default() += 1;
        Ok(Reservation {
            queue: self,
            job: Some(job.clone()),
        })
    }

    /// Waits for the oldest waiting run of `lane` whose job has room, and marks it
    /// active.
    pub async fn pop(&self, lane: Lane) -> Ticket {
        loop {
            let changed = self.changed(lane).notified();
            {
                let mut state = self.lock();
                if let Some(at) = state.waiting[lane as usize]
                    .iter()
                    .position(|t| state.has_room(t))
                {
                    let ticket = state
                        .waiting_in(lane)
                        .remove(at)
                        .expect("position is in range");
                    state
                        .active
                        .insert(ticket.run.clone(), Active::new(ticket.cancel.clone()));
                    if !state.waiting_in(lane).is_empty() {
                        // Pass the wake-up on: several runs may have arrived at once.
                        self.changed(lane).notify_one();
                    }
                    return ticket;
                }
            }
            changed.await;
        }
    }

    /// Marks a run as active without a worker (a run re-adopted after a restart).
    pub fn track(&self, run: RunId) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().active.insert(run, Active::new(token.clone()));
        token
    }

    /// Says that an active run's process has ended, before its end is recorded: from
    /// now on it does not make its job busy for `reserve`.
    pub fn ending(&self, run: &RunId) {
        if let Some(active) = self.lock().active.get_mut(run) {
            active.ending = true;
        }
    }

    /// Forgets a run that has ended; a waiting run of its job may go now.
    pub fn done(&self, run: &RunId) {
        let mut state = self.lock();
        state.active.remove(run);
        for lane in [Lane::Local, Lane::Remote] {
            if !state.waiting_in(lane).is_empty() {
                self.changed(lane).notify_one();
            }
        }
    }

    pub fn cancel(&self, run: &RunId) -> Cancelled {
        let mut state = self.lock();
        for waiting in &mut state.waiting {
            if let Some(at) = waiting.iter().position(|t| &t.run == run) {
                waiting.remove(at);
                return Cancelled::WasWaiting;
            }
        }
        match state.active.get(run) {
            Some(active) => {
                active.cancel.cancel();
                Cancelled::Signalled
            }
            None => Cancelled::NotHere,
        }
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiting.iter().map(VecDeque::len).sum()
    }

    pub fn active(&self) -> usize {
        self.lock().active.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Reservation<'_> {
    /// Queues the run the room was held for; the room passes to it in one step.
    pub fn queue(mut self, ticket: Ticket) {
        let lane = ticket.lane;
        {
            let mut state = self.queue.lock();
            if let Some(job) = self.job.take() {
                release(&mut state, &job);
            }
            state.waiting_in(lane).push_back(ticket);
        }
        self.queue.changed(lane).notify_one();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            release(&mut self.queue.lock(), &job);
        }
    }
}

fn release(state: &mut State, job: &JobId) {
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

    fn run(job: &str, id: u64) -> RunId {
        RunId::new(JobId::parse(job).unwrap(), id)
    }

    fn job(id: &str) -> JobId {
        JobId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn fifo_with_recovered_runs_first_and_cancel() {
        let queue = RunQueue::default();
        queue.push(Ticket::new(run("new", 1), None));
        queue.push(Ticket::new(run("new", 2), None));
        queue.push_front(vec![
            Ticket::new(run("old", 1), None),
            Ticket::new(run("old", 2), None),
        ]);

        assert!(matches!(
            queue.cancel(&run("new", 1)),
            Cancelled::WasWaiting
        ));
        let order: Vec<_> = [
            queue.pop(Lane::Local).await,
            queue.pop(Lane::Local).await,
            queue.pop(Lane::Local).await,
        ]
        .into_iter()
        .map(|t| t.run)
        .collect();
        assert_eq!(order, [run("old", 1), run("old", 2), run("new", 2)]);
        assert_eq!(queue.active(), 3);

        let key = run("old", 1);
        assert!(matches!(queue.cancel(&key), Cancelled::Signalled));
        queue.done(&key);
        assert!(matches!(queue.cancel(&key), Cancelled::NotHere));
        assert_eq!(queue.active(), 2);
    }

    #[tokio::test]
    async fn each_lane_takes_its_own_runs_in_order() {
        let queue = RunQueue::default();
        let remote = |job, id| Ticket {
            lane: Lane::Remote,
            ..Ticket::new(run(job, id), None)
        };
        queue.push(Ticket::new(run("local", 1), None));
        queue.push(remote("cluster", 1));
        queue.push(Ticket::new(run("local", 2), None));
        queue.push(remote("cluster", 2));
        queue.push(remote("cluster", 3));
        assert_eq!(queue.waiting(), 5);

        assert!(matches!(
            queue.cancel(&run("cluster", 2)),
            Cancelled::WasWaiting
        ));
        assert_eq!(queue.pop(Lane::Remote).await.run, run("cluster", 1));
        assert_eq!(queue.pop(Lane::Local).await.run, run("local", 1));
        assert_eq!(queue.pop(Lane::Remote).await.run, run("cluster", 3));
        assert_eq!(queue.pop(Lane::Local).await.run, run("local", 2));
        assert_eq!((queue.waiting(), queue.active()), (0, 4));
    }

    #[tokio::test]
    async fn a_job_at_its_limit_lets_others_pass() {
        let queue = std::sync::Arc::new(RunQueue::default());
        queue.push(Ticket::new(run("deploy", 1), Some(1)));
        queue.push(Ticket::new(run("deploy", 2), Some(1)));
        queue.push(Ticket::new(run("other", 1), None));
        assert_eq!(queue.pop(Lane::Local).await.run, run("deploy", 1));
        assert_eq!(
            queue.pop(Lane::Local).await.run,
            run("other", 1),
            "deploy #2 waits for #1"
        );

        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop(Lane::Local).await.run }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        queue.done(&run("deploy", 1));
        assert_eq!(waiter.await.unwrap(), run("deploy", 2));
    }

    #[test]
    fn reservations_hold_room_until_dropped_or_queued() {
        let queue = RunQueue::default();
        let first = queue.reserve(&job("deploy"), 1).unwrap();
        assert!(queue.reserve(&job("deploy"), 1).is_err());
        assert!(queue.reserve(&job("other"), 1).is_ok());
        drop(first);
        let again = queue.reserve(&job("deploy"), 1).unwrap();
        again.queue(Ticket::new(run("deploy", 1), Some(1)));
        assert!(
            queue.reserve(&job("deploy"), 1).is_err(),
            "a queued run counts"
        );
        assert!(queue.reserve(&job("deploy"), 2).is_ok());
    }

    #[tokio::test]
    async fn an_ending_run_makes_its_job_busy_no_more_but_holds_its_place() {
        let queue = std::sync::Arc::new(RunQueue::default());
        queue.push(Ticket::new(run("deploy", 1), Some(1)));
        queue.push(Ticket::new(run("deploy", 2), Some(1)));
        assert_eq!(queue.pop(Lane::Local).await.run, run("deploy", 1));
        // #2 waits, so the job is busy however #1 is doing.
        assert!(queue.reserve(&job("deploy"), 2).is_err());
        queue.ending(&run("deploy", 1));
        assert!(queue.reserve(&job("deploy"), 2).is_ok(), "only #2 counts");

        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop(Lane::Local).await.run }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "#2 starts once #1's end is recorded");
        queue.done(&run("deploy", 1));
        assert_eq!(waiter.await.unwrap(), run("deploy", 2));
        assert_eq!(queue.active(), 1);
        queue.ending(&run("deploy", 9));
        assert!(
            queue.reserve(&job("deploy"), 1).is_err(),
            "ending an unknown run does nothing: #2 still counts"
        );
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(RunQueue::default());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop(Lane::Local).await.run }
        });
        tokio::task::yield_now().await;
        queue.push(Ticket::new(run("j", 9), None));
        assert_eq!(waiter.await.unwrap(), run("j", 9));
    }
}
