//! Many open streams at once: followers of one running job's log and `/api/events`
//! clients, read by one epoll thread (cheap, so the daemon is what is measured), while
//! batches of runs go through. Every client must be served, and the runs must not slow
//! down much.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};
use rustix::io::Errno;

use crate::Bench;
use crate::client::{ChunkDecoder, Conn, Step};
use crate::daemon::cpu;
use crate::report::{Row, Samples, Table, Target, Unit};
use crate::runs::{self, Runs, TICKER_JOB};

/// What one client received.
#[derive(Default, Clone)]
struct Received {
    lines: u64,
    /// The answer ended (a follower whose run ended, or an events client dropped).
    ended: bool,
}

/// Open streams, drained by one thread until `stop`.
struct Crowd {
    stop: Arc<AtomicBool>,
    reader: JoinHandle<io::Result<(Vec<Received>, u64)>>,
}

impl Crowd {
    fn open(socket: &std::path::Path, targets: &[String]) -> io::Result<Self> {
        let mut streams = Vec::with_capacity(targets.len());
        for target in targets {
            let (stream, buffered) = Conn::open_stream(socket, target)?.into_parts();
            stream.set_nonblocking(true)?;
            streams.push((stream, buffered));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let reader = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || drain(streams, &stop)
        });
        Ok(Self { stop, reader })
    }

    /// What each client received, and the reading thread's CPU time in clock ticks.
    fn close(self) -> io::Result<(Vec<Received>, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.join().expect("the crowd's reader panicked")
    }
}

fn drain(
    streams: Vec<(UnixStream, Vec<u8>)>,
    stop: &AtomicBool,
) -> io::Result<(Vec<Received>, u64)> {
    let began = cpu("thread-self").0;
    let poller = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut clients: Vec<(UnixStream, ChunkDecoder, Vec<u8>, Received)> = Vec::new();
    for (i, (stream, buffered)) in streams.into_iter().enumerate() {
        epoll::add(
            &poller,
            &stream,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        )?;
        clients.push((
            stream,
            ChunkDecoder::default(),
            buffered,
            Received::default(),
        ));
    }
    let mut ready = Vec::with_capacity(256);
    let mut buffer = vec![0u8; 64 * 1024];
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    while !stop.load(Ordering::Relaxed) {
        ready.clear();
        match epoll::wait(&poller, spare_capacity(&mut ready), Some(&tick)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        for event in &ready {
            let (stream, decoder, pending, received) = &mut clients[event.data.u64() as usize];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => {
                        received.ended = true;
                        break;
                    }
                    Ok(n) => pending.extend_from_slice(&buffer[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let (used, step) = decoder.feed(pending, &mut |data: &[u8]| {
                received.lines += data.iter().filter(|b| **b == b'\n').count() as u64;
                true
            })?;
            pending.drain(..used);
            if matches!(step, Step::Ended) {
                received.ended = true;
            }
            if received.ended {
                epoll::delete(&poller, &*stream)?;
            }
        }
    }
    let received = clients
        .into_iter()
        .map(|(_, _, _, received)| received)
        .collect();
    Ok((received, cpu("thread-self").0 - began))
}

pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let sizes = &bench.sizes;
    let (count, clients) = (sizes.runs_per_batch, sizes.posting_clients);
    let (followers, event_clients) = (sizes.followers, sizes.event_clients);
    let mut conn = runs.daemon.conn();
    let pid = runs.daemon.pid().to_string();
    // Outlasts the scenario (cancelled at its end), yet ends by itself if the bench fails.
    let ticker = runs::post(&mut conn, TICKER_JOB, "&input_value_COUNT=4000")?;
    runs.events
        .wait(|seen| seen.is(TICKER_JOB, &ticker, "running"))?;
    let follow = format!("/api/jobs/executions/logs/get?job_id={TICKER_JOB}&execution_id={ticker}");
    let log = runs.log_path(TICKER_JOB, &ticker);

    // (events clients, followers) per point; the first is the baseline.
    let mut points = vec![(0, 0)];
    points.extend([event_clients / 100, event_clients / 10, event_clients].map(|n| (n.max(1), 0)));
    points.extend([followers / 10, followers].map(|n| (0, n.max(1))));
    points.push((event_clients, followers));
    let mut table = Table::new(
        format!(
            "Open streams: {count} trivial runs while E /api/events clients and F followers of a running job are open"
        ),
        &[
            "events clients",
            "followers",
            "runs/s",
            "vs no streams",
            "all served",
            "servitord CPU",
            "clients' CPU",
        ],
    );
    let mut baseline = 0.0;
    let mut loaded = Samples::default();
    for (events, follows) in points {
        let mut targets = vec!["/api/events".to_owned(); events];
        targets.extend(std::iter::repeat_n(follow.clone(), follows));
        let crowd = Crowd::open(&runs.daemon.socket, &targets)?;
        let before = cpu(&pid).0;
        let batch = runs::batch(runs, count, clients)?;
        // Of one CPU, over the batch (10 ms ticks).
        let busy = |ticks: u64| {
            let seconds = count as f64 / batch.runs_per_sec;
            format!("{:.0} %", ticks as f64 / 100.0 / seconds * 100.0)
        };
        let daemon_cpu = busy(cpu(&pid).0 - before);
        // Lets the last events and log lines reach every client.
        std::thread::sleep(Duration::from_millis(300));
        let lines_now = std::fs::read(&log)?.iter().filter(|b| **b == b'\n').count() as u64;
        let (received, reader_ticks) = crowd.close()?;
        let served = served(&received[..events], 3 * count as u64)
            && served(&received[events..], lines_now.saturating_sub(2));
        if events == 0 && follows == 0 {
            baseline = batch.runs_per_sec;
        }
        let ratio = batch.runs_per_sec / baseline;
        if (events, follows) == (event_clients, followers) {
            loaded.push(ratio);
            bench.notes.push(format!(
                "With {followers} followers and {event_clients} events clients open: all served: {}",
                if served { "yes" } else { "NO" }
            ));
        }
        table.push(vec![
            events.to_string(),
            follows.to_string(),
            format!("{:.0}", batch.runs_per_sec),
            format!("{:.0} %", ratio * 100.0),
            if served { "yes" } else { "NO" }.into(),
            daemon_cpu,
            busy(reader_ticks),
        ]);
    }
    bench.series.push(table);
    bench.rows.push(Row::new(
        format!("runs/s with {followers} followers + {event_clients} events clients, vs none"),
        Unit::Ratio,
        loaded,
        Target::MedianAtLeast(0.9),
    ));

    let cancel = format!("/api/jobs/executions/cancel?job_id={TICKER_JOB}&execution_id={ticker}");
    // A new connection: the daemon may close one left idle during the batches.
    runs.daemon.conn().request("POST", &cancel)?;
    runs.events
        .wait(|seen| seen.execution == ticker && seen.job == TICKER_JOB && seen.is_terminal())?;
    Ok(())
}

/// Every client got at least `lines` lines and still has its answer open (the daemon
/// ends the event stream of a client that falls too far behind).
fn served(received: &[Received], lines: u64) -> bool {
    received.iter().all(|r| r.lines >= lines && !r.ended)
}
