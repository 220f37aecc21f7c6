//! The task that runs schedules: every scheduled job's next fire time sits on one
//! timeline, one timer sleeps until the earliest (re-armed when the set changes), and
//! each fire is handed to the caller, who decides what it does (queue a run, skip a
//! busy job, record the fire time under `state/`).
//!
//! Fire times are wall-clock instants, tokio's timer is monotonic: each sleep is
//! worked out from the wall clock just before it starts, the wall clock is read again
//! on waking (a clock set back means sleeping again, never firing early), and no sleep
//! lasts longer than `MAX_SLEEP`, so that a clock set forward, or a suspended machine
//! (the monotonic clock stops meanwhile), makes a fire at most that much late.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::jobs::schedule::Schedule;
use crate::state::schedules::SavedSchedules;

/// The longest sleep: how late a fire can be after the wall clock jumps forward.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Jobs put back on the timeline under one hold of its lock.
const RESCHEDULED_AT_ONCE: usize = 64;

/// One fire time of one job, due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub job: String,
    /// The fire time this is for; for a catch-up, the latest one missed.
    pub scheduled: Timestamp,
    /// Stands for the fire times missed while the daemon was down (`catch_up: once`).
    pub catch_up: bool,
}

/// Reads the wall clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A handle on the schedules; clones share them. One task calls `run`.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes `run` when the timeline changed.
    wake: Notify,
    clock: Clock,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Entry>,
    /// `(next fire time, job)` of every scheduled job that is not paused.
    timeline: BTreeSet<(Timestamp, String)>,
    /// `run` has begun: schedules given from now on do not catch up.
    running: bool,
}

#[derive(Default)]
struct Entry {
    schedule: Option<Schedule>,
    paused: bool,
    /// The latest fire time handed out, or given at start: none at or before it is
    /// handed out again.
    last_fire: Option<Timestamp>,
    /// Its place on the timeline.
    next: Option<Timestamp>,
    /// `next` is a catch-up, in the past.
    catching_up: bool,
}

impl Entry {
    /// The next fire time from `now` on, never one already handed out.
    fn upcoming(&self, now: Timestamp) -> Option<Timestamp> {
        self.upcoming_by(now, &mut |schedule, after| schedule.next_after(after))
    }

    /// `upcoming`, asking `next_after` for the schedule's next time after an instant.
    fn upcoming_by(
        &self,
        now: Timestamp,
        next_after: &mut impl FnMut(&Schedule, Timestamp) -> Option<Timestamp>,
    ) -> Option<Timestamp> {
        match (&self.schedule, self.paused) {
            (Some(schedule), false) => {
                next_after(schedule, self.last_fire.map_or(now, |last| last.max(now)))
            }
            _ => None,
        }
    }

    /// Holds nothing worth keeping.
    fn is_empty(&self) -> bool {
        self.schedule.is_none() && !self.paused && self.last_fire.is_none()
    }
}

impl Scheduler {
    /// `last_fires`: each job's last fire time as recorded before a restart, so that
    /// none fires twice. Give the schedules (with `update`) and the paused jobs (with
    /// `pause`) before `run`: the fire times those missed while the daemon was down
    /// are caught up as their `catch_up` says; schedules given later are not.
    pub fn new(last_fires: impl IntoIterator<Item = (String, Timestamp)>) -> Scheduler {
        Scheduler::with_clock(last_fires, Arc::new(Timestamp::now))
    }

    /// As `new`, reading the wall clock with `clock`.
    pub fn with_clock(
        last_fires: impl IntoIterator<Item = (String, Timestamp)>,
        clock: Clock,
    ) -> Scheduler {
        let jobs = last_fires
            .into_iter()
            .map(|(job, last)| {
                let entry = Entry {
                    last_fire: Some(last),
                    ..Entry::default()
                };
                (job, entry)
            })
            .collect();
        Scheduler {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs,
                    ..State::default()
                }),
                wake: Notify::new(),
                clock,
            }),
        }
    }

    /// Sets or removes (`None`) a job's schedule. The same schedule again changes
    /// nothing; a different one fires next at its first time from now on.
    pub fn update(&self, job: &str, schedule: Option<Schedule>) {
        let now = self.now();
        self.change(job, |entry, running| {
            if entry.schedule == schedule {
                return None;
            }
            let first = entry.schedule.is_none();
            entry.schedule = schedule;
            let catch_up = match (&entry.schedule, entry.last_fire) {
                (Some(schedule), Some(last)) if first && !running && !entry.paused => {
                    schedule.catch_up(last, now)
                }
                _ => None,
            };
            entry.catching_up = catch_up.is_some();
            Some(catch_up.or_else(|| entry.upcoming(now)))
        });
    }

    /// Stops a job's fires until `resume`; also for a job without a schedule yet.
    pub fn pause(&self, job: &str) {
        self.change(job, |entry, _| {
            entry.paused = true;
            entry.catching_up = false;
            Some(None)
        });
    }

    /// Fires again from the next fire time on; those missed meanwhile are not made up.
    pub fn resume(&self, job: &str) {
        let now = self.now();
        self.change(job, |entry, _| {
            if !entry.paused {
                return None;
            }
            entry.paused = false;
            Some(entry.upcoming(now))
        });
    }

    /// The job's next fire time; `None` when it has no schedule, is paused, or will
    /// not fire again.
    #[cfg(test)]
    pub fn next_run(&self, job: &str) -> Option<Timestamp> {
        self.lock().jobs.get(job).and_then(|entry| entry.next)
    }

    #[cfg(test)]
    pub fn is_paused(&self, job: &str) -> bool {
        self.lock().jobs.get(job).is_some_and(|entry| entry.paused)
    }

    /// The latest fire time handed out for the job (or given at start).
    #[cfg(test)]
    pub fn last_fire(&self, job: &str) -> Option<Timestamp> {
        self.lock().jobs.get(job).and_then(|entry| entry.last_fire)
    }

    /// For each of `jobs`: its next fire time and whether it is paused, under one lock
    /// (a job list asks for thousands).
    pub fn states<'a>(
        &self,
        jobs: impl Iterator<Item = &'a str>,
    ) -> Vec<(Option<Timestamp>, bool)> {
        let state = self.lock();
        jobs.map(|job| {
            state
                .jobs
                .get(job)
                .map_or((None, false), |entry| (entry.next, entry.paused))
        })
        .collect()
    }

    /// Every job's next fire time, for monitoring.
    pub fn next_runs(&self) -> Vec<(String, Timestamp)> {
        let state = self.lock();
        state
            .timeline
            .iter()
            .map(|(at, job)| (job.clone(), *at))
            .collect()
    }

    /// What a restart needs: each job's last fire time, and the paused jobs.
    pub fn saved(&self) -> SavedSchedules {
        let state = self.lock();
        let mut saved = SavedSchedules::default();
        for (job, entry) in &state.jobs {
            if let Some(last) = entry.last_fire {
                saved.last_fires.insert(job.clone(), last);
            }
            if entry.paused {
                saved.paused.insert(job.clone());
            }
        }
        saved
    }

    /// Hands the fires due at once to `on_fires` when they are due, until `shutdown`.
    /// `on_fires` runs on this task and must not block; it may call the other methods.
    pub async fn run(&self, shutdown: CancellationToken, mut on_fires: impl FnMut(Vec<Fire>)) {
        self.lock().running = true;
        loop {
            let (now, monotonic) = (self.now(), Instant::now());
            let due = self.take_due(now);
            let fired: Vec<String> = due.iter().map(|fire| fire.job.clone()).collect();
            // Handed out before their next fire times are worked out: with a thousand
            // due at once, the last would wait for them all.
            if !due.is_empty() {
                on_fires(due);
            }
            let earliest = self.reschedule(&fired, now);
            let deadline = earliest.map(|at| {
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
                monotonic + wait.min(MAX_SLEEP)
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.shared.wake.notified() => {}
                () = sleep_until(deadline) => {}
            }
        }
    }

    /// Takes the fires due at `now` off the timeline. Their jobs are off it until
    /// `reschedule` puts them back.
    fn take_due(&self, now: Timestamp) -> Vec<Fire> {
        let mut state = self.lock();
        let State { jobs, timeline, .. } = &mut *state;
        let mut due = Vec::new();
        while timeline.first().is_some_and(|(at, _)| *at <= now) {
            let Some((at, job)) = timeline.pop_first() else {
                break;
            };
            let Some(entry) = jobs.get_mut(&job) else {
                continue;
            };
            entry.next = None;
            entry.last_fire = Some(at);
            due.push(Fire {
                job,
                scheduled: at,
                catch_up: std::mem::take(&mut entry.catching_up),
            });
        }
        due
    }

    /// Puts the jobs that just fired back on the timeline at their next fire times,
    /// and tells the earliest fire time on it. A late fire (a busy or suspended
    /// machine) stands for the times it missed until `now`, as a catch-up does. A job
    /// changed meanwhile (a new schedule, a pause) already has its place.
    fn reschedule(&self, fired: &[String], now: Timestamp) -> Option<Timestamp> {
        // Jobs that one folder's settings schedule alike fire together, and the next
        // time of the first holds for the others: worked out once, not a thousand times.
        let mut last: Option<(Schedule, Timestamp, Option<Timestamp>)> = None;
        let mut next_after = |schedule: &Schedule, after: Timestamp| match &last {
            Some((same, at, next)) if *at == after && same == schedule => *next,
            _ => {
                let next = schedule.next_after(after);
                last = Some((schedule.clone(), after, next));
                next
            }
        };
        // A few at a time: a thousand with schedules of their own take milliseconds,
        // which the save of the last fire times and the job list must not wait for.
        for some in fired.chunks(RESCHEDULED_AT_ONCE) {
            let mut state = self.lock();
            let State { jobs, timeline, .. } = &mut *state;
            for job in some {
                let Some(entry) = jobs.get_mut(job) else {
                    continue;
                };
                if entry.next.is_none() {
                    entry.next = entry.upcoming_by(now, &mut next_after);
                    if let Some(next) = entry.next {
                        timeline.insert((next, job.clone()));
                    }
                }
            }
        }
        self.lock().timeline.first().map(|(at, _)| *at)
    }

    /// Applies `change` to the job's entry; when it returns the entry's new fire time
    /// (`Some`), moves the entry there on the timeline and wakes `run`.
    fn change(
        &self,
        job: &str,
        change: impl FnOnce(&mut Entry, bool) -> Option<Option<Timestamp>>,
    ) {
        let mut state = self.lock();
        let State {
            jobs,
            timeline,
            running,
        } = &mut *state;
        let entry = jobs.entry(job.to_owned()).or_default();
        if let Some(next) = change(entry, *running) {
            if let Some(old) = entry.next.take() {
                timeline.remove(&(old, job.to_owned()));
            }
            entry.next = next;
            if let Some(next) = next {
                timeline.insert((next, job.to_owned()));
            }
            self.shared.wake.notify_one();
        }
        if entry.is_empty() {
            jobs.remove(job);
        }
    }

    fn now(&self) -> Timestamp {
        (self.shared.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.shared.state)
    }
}

/// Sleeps until `deadline`; without one, until woken some other way.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use jiff::SignedDuration;
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    use super::*;

    /// A wall clock that goes with tokio's (paused, in most tests) plus a shift, so
    /// that a test can set it back or forward.
    struct FakeWall {
        start: Timestamp,
        since: Instant,
        shift_secs: AtomicI64,
    }

    impl FakeWall {
        fn new(start: &str) -> Arc<FakeWall> {
            Arc::new(FakeWall {
                start: start.parse().unwrap(),
                since: Instant::now(),
                shift_secs: AtomicI64::new(0),
            })
        }

        fn now(&self) -> Timestamp {
            let elapsed = SignedDuration::try_from(self.since.elapsed()).unwrap();
            let shift = SignedDuration::from_secs(self.shift_secs.load(Ordering::SeqCst));
            self.start + elapsed + shift
        }

        fn shift(&self, secs: i64) {
            self.shift_secs.fetch_add(secs, Ordering::SeqCst);
        }

        fn clock(self: &Arc<FakeWall>) -> Clock {
            let wall = Arc::clone(self);
            Arc::new(move || wall.now())
        }
    }

    /// A fire and the wall-clock time it was handed out at.
    type Fired = (Fire, Timestamp);

    /// Runs `scheduler` on a task until the returned guard drops.
    fn start(
        scheduler: &Scheduler,
        clock: Clock,
    ) -> (mpsc::UnboundedReceiver<Fired>, tokio_util::sync::DropGuard) {
        let (sender, fires) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let scheduler = scheduler.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            scheduler
                .run(token, move |fires| {
                    for fire in fires {
                        let _ = sender.send((fire, clock()));
                    }
                })
                .await;
        });
        (fires, shutdown.drop_guard())
    }

    /// The next fire within `within` (of tokio's time, paused or not).
    async fn next(fires: &mut mpsc::UnboundedReceiver<Fired>, within: Duration) -> Option<Fired> {
        timeout(within, fires.recv()).await.ok().flatten()
    }

    fn schedule(expression: &str, catch_up: &str) -> Schedule {
        let settings = serde_json::json!({
            "schedule": expression, "timezone": "UTC", "catch_up": catch_up,
        });
        Schedule::from_settings(&serde_json::from_value(settings).unwrap())
            .unwrap()
            .unwrap()
    }

    fn every(expression: &str) -> Option<Schedule> {
        Some(schedule(expression, "skip"))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// `(job, scheduled)` of each fire, checking none came early.
    fn seen(fired: &[Fired]) -> Vec<(&str, String)> {
        fired
            .iter()
            .map(|(fire, when)| {
                assert!(
                    *when >= fire.scheduled,
                    "{fire:?} handed out early, at {when}"
                );
                (fire.job.as_str(), fire.scheduled.to_string())
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn fires_each_time_once_in_order() {
        let wall = FakeWall::new("2026-06-01T10:00:00.5Z");
        let scheduler = Scheduler::with_clock([], wall.clock());
        scheduler.update("b", every("*/3 * * * * *"));
        scheduler.update("a", every("*/2 * * * * *"));
        assert_eq!(scheduler.next_run("a"), Some(at("2026-06-01T10:00:02Z")));
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        let mut fired = Vec::new();
        for _ in 0..5 {
            fired.push(next(&mut fires, Duration::from_secs(10)).await.unwrap());
        }
        assert_eq!(
            seen(&fired),
            [
                ("a", "2026-06-01T10:00:02Z".into()),
                ("b", "2026-06-01T10:00:03Z".into()),
                ("a", "2026-06-01T10:00:04Z".into()),
                ("a", "2026-06-01T10:00:06Z".into()),
                ("b", "2026-06-01T10:00:06Z".into()),
            ]
        );
        assert_eq!(scheduler.last_fire("b"), Some(at("2026-06-01T10:00:06Z")));
        assert_eq!(scheduler.next_run("b"), Some(at("2026-06-01T10:00:09Z")));
        // Nothing else is due before 10:00:08.
        assert!(
            next(&mut fires, Duration::from_millis(1400))
                .await
                .is_none()
        );
    }

    #[test]
    fn a_job_changed_while_its_fire_is_handed_out_keeps_one_place() {
        let now = at("2026-06-01T10:00:01.5Z");
        let scheduler = Scheduler::with_clock([], Arc::new(move || now));
        scheduler.update("new", every("* * * * * *"));
        scheduler.update("paused", every("* * * * * *"));
        scheduler.update("same", every("* * * * * *"));
        let later = at("2026-06-01T10:00:02.5Z");
        let due = scheduler.take_due(later);
        let fired: Vec<String> = due.iter().map(|fire| fire.job.clone()).collect();
        assert_eq!(fired, ["new", "paused", "same"]);

        // Between the hand-out and the reschedule: a new schedule, a pause.
        scheduler.update("new", every("0 * * * * *"));
        scheduler.pause("paused");
        let earliest = scheduler.reschedule(&fired, later);

        assert_eq!(scheduler.next_run("new"), Some(at("2026-06-01T10:01:00Z")));
        assert_eq!(scheduler.next_run("paused"), None);
        assert_eq!(scheduler.next_run("same"), Some(at("2026-06-01T10:00:03Z")));
        assert_eq!(earliest, Some(at("2026-06-01T10:00:03Z")));
        let mut places: Vec<String> = scheduler
            .next_runs()
            .into_iter()
            .map(|(job, _)| job)
            .collect();
        places.sort();
        assert_eq!(places, ["new", "same"]);
    }

    #[tokio::test(start_paused = true)]
    async fn changes_wake_it() {
        let wall = FakeWall::new("2026-06-01T10:00:00.5Z");
        let scheduler = Scheduler::with_clock([], wall.clock());
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        assert!(next(&mut fires, Duration::from_secs(3600)).await.is_none());

        scheduler.update("job", every("0 0 * * *"));
        assert_eq!(scheduler.next_run("job"), Some(at("2026-06-02T00:00:00Z")));
        scheduler.update("job", every("* * * * * *"));
        let (fire, _) = next(&mut fires, Duration::from_secs(5)).await.unwrap();
        assert_eq!(fire.scheduled, at("2026-06-01T11:00:01Z"));

        // The same schedule again keeps the next fire time.
        let before = scheduler.next_run("job");
        scheduler.update("job", every("* * * * * *"));
        assert_eq!(scheduler.next_run("job"), before);

        scheduler.update("job", None);
        assert_eq!(scheduler.next_run("job"), None);
        assert!(next(&mut fires, Duration::from_secs(3600)).await.is_none());
        // Its last fire time is kept, so that a schedule given back does not repeat it.
        assert_eq!(scheduler.last_fire("job"), Some(at("2026-06-01T11:00:01Z")));
    }

    #[tokio::test(start_paused = true)]
    async fn paused_jobs_do_not_fire() {
        let wall = FakeWall::new("2026-06-01T10:00:00.5Z");
        let scheduler = Scheduler::with_clock([], wall.clock());
        scheduler.update("job", every("* * * * * *"));
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        next(&mut fires, Duration::from_secs(2)).await.unwrap();

        scheduler.pause("job");
        assert!(scheduler.is_paused("job"));
        assert_eq!(scheduler.next_run("job"), None);
        assert!(next(&mut fires, Duration::from_secs(10)).await.is_none());

        // Settings edits while paused keep it paused.
        scheduler.update("job", every("*/2 * * * * *"));
        assert_eq!(scheduler.next_run("job"), None);

        scheduler.resume("job");
        assert!(!scheduler.is_paused("job"));
        let resumed = wall.now();
        let (fire, _) = next(&mut fires, Duration::from_secs(3)).await.unwrap();
        assert!(
            fire.scheduled > resumed,
            "times missed while paused are not made up"
        );

        // A job paused before it has a schedule stays paused when it gets one.
        scheduler.pause("other");
        scheduler.update("other", every("* * * * * *"));
        assert_eq!(scheduler.next_run("other"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_never_fires_a_time_twice() {
        let wall = FakeWall::new("2026-06-01T10:00:00.5Z");
        let scheduler = Scheduler::with_clock(
            [
                // Fired just before the restart.
                ("fired".to_owned(), at("2026-06-01T10:00:00Z")),
                // Fired before the wall clock was set back across the restart.
                ("ahead".to_owned(), at("2026-06-01T10:00:02Z")),
            ],
            wall.clock(),
        );
        scheduler.update("fired", Some(schedule("* * * * * *", "once")));
        scheduler.update("ahead", every("* * * * * *"));
        assert_eq!(
            scheduler.next_run("fired"),
            Some(at("2026-06-01T10:00:01Z"))
        );
        assert_eq!(
            scheduler.next_run("ahead"),
            Some(at("2026-06-01T10:00:03Z"))
        );
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        let mut fired = Vec::new();
        for _ in 0..4 {
            fired.push(next(&mut fires, Duration::from_secs(5)).await.unwrap());
        }
        assert_eq!(
            seen(&fired),
            [
                ("fired", "2026-06-01T10:00:01Z".into()),
                ("fired", "2026-06-01T10:00:02Z".into()),
                ("ahead", "2026-06-01T10:00:03Z".into()),
                ("fired", "2026-06-01T10:00:03Z".into()),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn missed_times_are_caught_up_once_at_start() {
        let wall = FakeWall::new("2026-06-01T10:00:00.5Z");
        let down_since = at("2026-06-01T09:00:00Z");
        let scheduler = Scheduler::with_clock(
            ["once", "skip", "paused", "later"].map(|job| (job.to_owned(), down_since)),
            wall.clock(),
        );
        let every_ten = "*/10 * * * *";
        scheduler.update("once", Some(schedule(every_ten, "once")));
        scheduler.update("skip", Some(schedule(every_ten, "skip")));
        scheduler.pause("paused");
        scheduler.update("paused", Some(schedule(every_ten, "once")));
        assert_eq!(scheduler.next_run("skip"), Some(at("2026-06-01T10:10:00Z")));
        assert_eq!(scheduler.next_run("paused"), None);

        let (mut fires, _stop) = start(&scheduler, wall.clock());
        let (fire, _) = next(&mut fires, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            fire,
            Fire {
                job: "once".into(),
                scheduled: at("2026-06-01T10:00:00Z"),
                catch_up: true,
            }
        );
        assert_eq!(scheduler.next_run("once"), Some(at("2026-06-01T10:10:00Z")));

        // A schedule given once running does not catch up.
        scheduler.update("later", Some(schedule(every_ten, "once")));
        assert_eq!(
            scheduler.next_run("later"),
            Some(at("2026-06-01T10:10:00Z"))
        );

        let mut fired = Vec::new();
        for _ in 0..3 {
            fired.push(next(&mut fires, Duration::from_secs(600)).await.unwrap());
        }
        assert_eq!(
            seen(&fired),
            [
                ("later", "2026-06-01T10:10:00Z".into()),
                ("once", "2026-06-01T10:10:00Z".into()),
                ("skip", "2026-06-01T10:10:00Z".into()),
            ]
        );
        assert!(fired.iter().all(|(fire, _)| !fire.catch_up));
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_set_back_never_fires_early() {
        let wall = FakeWall::new("2026-06-01T10:00:30Z");
        let scheduler = Scheduler::with_clock([], wall.clock());
        scheduler.update("job", every("* * * * *"));
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        tokio::time::sleep(Duration::from_secs(10)).await;
        wall.shift(-3600);
        // Woken at 09:01 by the wall clock, it sleeps on until 10:01.
        let (fire, when) = next(&mut fires, Duration::from_secs(2 * 3600))
            .await
            .unwrap();
        assert_eq!(fire.scheduled, at("2026-06-01T10:01:00Z"));
        assert!(when >= fire.scheduled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_set_forward_fires_once_within_the_longest_sleep() {
        let wall = FakeWall::new("2026-06-01T10:00:30Z");
        let scheduler = Scheduler::with_clock([], wall.clock());
        scheduler.update("job", every("30 10 * * *"));
        let (mut fires, _stop) = start(&scheduler, wall.clock());
        tokio::time::sleep(Duration::from_secs(10)).await;
        wall.shift(3600);
        let shifted = wall.now();
        let (fire, when) = next(&mut fires, Duration::from_secs(3600)).await.unwrap();
        assert_eq!(fire.scheduled, at("2026-06-01T10:30:00Z"));
        assert!(when.duration_since(shifted) <= SignedDuration::try_from(MAX_SLEEP).unwrap());
        assert_eq!(scheduler.next_run("job"), Some(at("2026-06-02T10:30:00Z")));
        assert!(next(&mut fires, Duration::from_secs(3600)).await.is_none());
    }

    /// On the real clocks: a job every second fires at three consecutive seconds.
    #[tokio::test]
    async fn every_second_in_real_time() {
        let scheduler = Scheduler::new([]);
        scheduler.update("job", every("* * * * * *"));
        let (mut fires, _stop) = start(&scheduler, Arc::new(Timestamp::now));
        let mut fired = Vec::new();
        for _ in 0..3 {
            let fire = next(&mut fires, Duration::from_secs(10)).await;
            fired.push(fire.expect("a fire every second, surely within 10 s"));
        }
        let times: Vec<Timestamp> = fired.iter().map(|(fire, _)| fire.scheduled).collect();
        seen(&fired);
        for pair in times.windows(2) {
            assert_eq!(
                pair[1].duration_since(pair[0]),
                SignedDuration::from_secs(1)
            );
        }
    }

    /// CPU time used so far by this process's threads, from `/proc`.
    fn cpu_time() -> Duration {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap();
        let nanos: u64 = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// The figures, on the real clocks, printed:
    /// `cargo test -p servitord --lib --release figures -- --ignored --nocapture`
    #[test]
    #[ignore = "takes 25 s and only prints figures"]
    fn figures() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // 10,000 jobs, each once a year at its own time.
            let scheduler = Scheduler::new([]);
            let started = std::time::Instant::now();
            for i in 0..10_000 {
                let yearly = format!("{} {} {} {} *", i % 60, i / 60 % 24, i / 1440 % 28 + 1, i % 12 + 1);
                scheduler.update(&format!("idle/{i}"), every(&yearly));
            }
            println!("10,000 schedules given in {:?}", started.elapsed());
            let (_fires, stop) = start(&scheduler, Arc::new(Timestamp::now));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cpu = cpu_time();
            tokio::time::sleep(Duration::from_secs(10)).await;
            println!("idle with 10,000 schedules: {:?} of CPU in 10 s", cpu_time() - cpu);
            drop(stop);

            // 1,000 jobs every second: lateness from fire time to the hand-out.
            let scheduler = Scheduler::new([]);
            for i in 0..1_000 {
                scheduler.update(&format!("busy/{i}"), every("* * * * * *"));
            }
            let (mut fires, _stop) = start(&scheduler, Arc::new(Timestamp::now));
            let cpu = cpu_time();
            let mut late = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(12);
            while late.len() < 10_000 && Instant::now() < deadline {
                let Some((fire, when)) = next(&mut fires, Duration::from_secs(2)).await else {
                    break;
                };
                late.push(when.duration_since(fire.scheduled));
            }
            let cpu = cpu_time() - cpu;
            assert!(!late.is_empty(), "no fire in 12 s");
            late.sort();
            let quantile = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
            println!(
                "1,000 jobs every second, {} fires: late p50 {:?}, p99 {:?}, max {:?}; {:?} of CPU in all",
                late.len(),
                quantile(0.5),
                quantile(0.99),
                late.last().unwrap(),
                cpu,
            );
        });
    }
}
