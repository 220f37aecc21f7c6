//! Log streaming: a run's log from byte 0, then its new bytes as they land, until the
//! run has ended and every byte was sent.
//!
//! Jobs write their log files themselves, so the daemon learns of new bytes from
//! inotify (one watch per followed file, shared by its followers) instead of polling.
//! The file stays the source of truth: a slow follower reads at its own pace and
//! holds nobody up.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};
use servitor_shared::ExecutionStatus;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Counted;
use crate::sync::lock;

/// Bytes read from the log at a time.
const CHUNK: usize = 256 * 1024;
/// Chunks a follower may have in flight: bounds its memory when the client is slow.
const IN_FLIGHT: usize = 2;
/// How often the log of a run on another machine is read again.
const REMOTE_RECHECK: Duration = Duration::from_millis(250);

/// Tells followers when a log file was written to.
#[derive(Clone)]
pub struct LogWatcher {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    watches: Watches,
    files: HashMap<WatchDescriptor, Watched>,
}

struct Watched {
    writes: watch::Sender<u64>,
    followers: usize,
}

/// One follower's view of writes to one file; unwatches the file when the last goes.
pub struct LogChanges {
    writes: watch::Receiver<u64>,
    descriptor: WatchDescriptor,
    watcher: LogWatcher,
}

impl LogWatcher {
    /// Starts the task that turns inotify events into wake-ups.
    pub fn start() -> io::Result<Self> {
        let inotify = Inotify::init()?;
        let watcher = Self {
            shared: Arc::new(Mutex::new(Shared {
                watches: inotify.watches(),
                files: HashMap::new(),
            })),
        };
        let mut events = inotify.into_event_stream([0u8; 4096])?;
        let shared = Arc::clone(&watcher.shared);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        if let Some(file) = lock(&shared).files.get(&event.wd) {
                            file.writes.send_modify(|count| *count += 1);
                        }
                    }
                    Err(e) => {
                        tracing::error!("inotify failed, log followers will stall: {e}");
                        break;
                    }
                }
            }
        });
        Ok(watcher)
    }

    pub fn watch(&self, path: &Path) -> io::Result<LogChanges> {
        let mut shared = lock(&self.shared);
        let descriptor = shared.watches.add(path, WatchMask::MODIFY)?;
        let file = shared
            .files
            .entry(descriptor.clone())
            .or_insert_with(|| Watched {
                writes: watch::channel(0).0,
                followers: 0,
            });
        file.followers += 1;
        Ok(LogChanges {
            writes: file.writes.subscribe(),
            descriptor,
            watcher: self.clone(),
        })
    }
}

impl LogChanges {
    /// Forgets writes seen so far: `changed` then waits for the next one.
    fn mark_seen(&mut self) {
        self.writes.borrow_and_update();
    }

    async fn changed(&mut self) {
        if self.writes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for LogChanges {
    fn drop(&mut self) {
        let mut shared = lock(&self.watcher.shared);
        let Some(file) = shared.files.get_mut(&self.descriptor) else {
            return;
        };
        file.followers -= 1;
        if file.followers == 0 {
            shared.files.remove(&self.descriptor);
            // Fails harmlessly when the file is gone (the kernel dropped the watch).
            let _ = shared.watches.remove(self.descriptor.clone());
        }
    }
}

/// One log stream: what it needs from the daemon.
pub struct Follow {
    pub watcher: LogWatcher,
    pub shutdown: CancellationToken,
    /// Counts this stream among the log followers while it lives.
    pub _counted: Counted,
}

impl Follow {
    /// Streams the log at `path` of a run whose status `statuses` tells as it changes.
    /// With `follow`, a queued run is waited for and a running one followed until it
    /// ends; without, the log is sent as it is now. A follow the daemon's shutdown cuts
    /// short ends with an error, never as if the log were whole. The log of a `remote`
    /// run is written by another machine, whose writes inotify does not see: it is
    /// read again every `REMOTE_RECHECK` instead.
    pub fn stream(
        self,
        statuses: watch::Receiver<ExecutionStatus>,
        path: PathBuf,
        follow: bool,
        remote: bool,
    ) -> mpsc::Receiver<io::Result<Bytes>> {
        let (sender, receiver) = mpsc::channel(IN_FLIGHT);
        tokio::spawn(async move {
            let ended = tokio::select! {
                ended = self.pump(statuses, &path, follow, remote, &sender) => ended,
                () = sender.closed() => Ok(()),
            };
            if let Err(e) = ended {
                tracing::warn!(log = %path.display(), "log stream failed: {e}");
                let _ = sender.send(Err(e)).await;
            }
        });
        receiver
    }

    async fn pump(
        &self,
        mut statuses: watch::Receiver<ExecutionStatus>,
        path: &Path,
        follow: bool,
        remote: bool,
        sender: &mpsc::Sender<io::Result<Bytes>>,
    ) -> io::Result<()> {
        let mut status = *statuses.borrow_and_update();
        if !follow {
            // As if the run had ended: send what is there.
            status = ExecutionStatus::Unknown;
        }
        while status == ExecutionStatus::Created {
            tokio::select! {
                next = next_status(&mut statuses) => status = next,
                () = self.shutdown.cancelled() => return Err(stopping()),
            }
        }
        let mut changes = match status {
            ExecutionStatus::Running if !remote => Some(self.watcher.watch(path)?),
            _ => None,
        };
        let mut file = loop {
            match std::fs::File::open(path) {
                Ok(file) => break file,
                // A remote run's log appears when its node starts it.
                Err(e) if e.kind() == io::ErrorKind::NotFound && remote => {
                    if status != ExecutionStatus::Running {
                        return Ok(());
                    }
                    tokio::select! {
                        () = tokio::time::sleep(REMOTE_RECHECK) => {}
                        next = next_status(&mut statuses) => status = next,
                        () = self.shutdown.cancelled() => return Err(stopping()),
                    }
                }
                // A run that could not start may have no log at all.
                Err(e) if e.kind() == io::ErrorKind::NotFound && changes.is_none() => {
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        };
        let mut buffer = vec![0; CHUNK];
        loop {
            if let Some(changes) = &mut changes {
                changes.mark_seen();
            }
            if !send_rest(&mut file, &mut buffer, sender).await?
                || status != ExecutionStatus::Running
            {
                // Gone, or ended (the last read has been made).
                return Ok(());
            }
            let written = async {
                match &mut changes {
                    Some(changes) => changes.changed().await,
                    None => tokio::time::sleep(REMOTE_RECHECK).await,
                }
            };
            tokio::select! {
                () = written => {}
                next = next_status(&mut statuses) => status = next,
                () = self.shutdown.cancelled() => return Err(stopping()),
            }
        }
    }
}

/// The run's next status; once the channel closes (the run ended), its last status.
async fn next_status(statuses: &mut watch::Receiver<ExecutionStatus>) -> ExecutionStatus {
    let _ = statuses.changed().await;
    *statuses.borrow_and_update()
}

/// Why a follow ends before its run: an error rather than a clean end of the answer, so
/// the client does not take what it got for the whole log.
fn stopping() -> io::Error {
    io::Error::other("servitord is stopping before the run has ended")
}

/// Sends `file` from where it is to its current end; false when the receiver is gone.
/// Reads are plain `read`s: the log was just written, so they come from the page cache
/// and take microseconds, cheaper than a trip to the blocking pool each. A short read
/// of a regular file is its end for now (a later write is told by inotify).
///
/// A follower mostly gets a line at a time: such small reads are copied out of
/// `buffer` (`CHUNK` bytes, kept), rather than each taking a fresh chunk-sized
/// allocation (an `mmap`/`munmap` pair and a TLB flush on every CPU); a big read is
/// sent as it is.
async fn send_rest(
    file: &mut std::fs::File,
    buffer: &mut Vec<u8>,
    sender: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<bool> {
    loop {
        let read = match file.read(buffer) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read?,
        };
        if read == 0 {
            return Ok(true);
        }
        let chunk = if read >= CHUNK / 2 {
            let mut whole = std::mem::replace(buffer, vec![0; CHUNK]);
            whole.truncate(read);
            Bytes::from(whole)
        } else {
            Bytes::copy_from_slice(&buffer[..read])
        };
        if sender.send(Ok(chunk)).await.is_err() {
            return Ok(false);
        }
        if read < CHUNK {
            return Ok(true);
        }
    }
}
