//! Knowing when anything under `config/` changed, without looking: inotify watches on
//! every folder a scan went through. The kernel queues an event before the call that
//! changed the folder returns, so draining the queue when the catalog is asked for
//! tells exactly whether what was read before is still true.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use inotify::{Inotify, WatchMask};

pub struct ConfigWatch {
    inotify: Inotify,
    buffer: Vec<u8>,
}

/// Every change that can add, remove or alter a job, a spec or a settings file.
fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

impl ConfigWatch {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            inotify: Inotify::init()?,
            buffer: vec![0; 4096],
        })
    }

    /// Watches a folder (through symlinks); watching one twice is harmless.
    pub fn watch(&mut self, dir: &Path) {
        if let Err(e) = self.inotify.watches().add(dir, mask()) {
            tracing::debug!(dir = %dir.display(), "cannot watch: {e}");
        }
    }

    /// A second handle on the queue, to wait until it holds events (it turns readable)
    /// without taking them: taking them stays `changed`'s job.
    pub fn readiness_fd(&self) -> io::Result<OwnedFd> {
        self.inotify.as_fd().try_clone_to_owned()
    }

    /// Whether anything changed since the last call (an overflowed or failing queue
    /// counts as a change).
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.inotify.read_events(&mut self.buffer) {
                Ok(mut events) => changed |= events.next().is_some(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return changed,
                Err(_) => return true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_changes_as_soon_as_they_are_made() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut watch = ConfigWatch::new().unwrap();
        watch.watch(dir.path());
        watch.watch(&dir.path().join("sub"));
        assert!(!watch.changed());
        std::fs::write(dir.path().join("sub/job"), "#!/bin/sh\n").unwrap();
        assert!(watch.changed());
        assert!(!watch.changed());
        std::fs::set_permissions(
            dir.path().join("sub/job"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert!(watch.changed());
    }
}
