//! The working directory's layout, and the lock that gives one daemon sole use of it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use servitor_shared::api::SOCKET_PATH;

use super::files;
use crate::jobs::id::{JobId, RunId};

/// How long a lock whose holder's pid is gone may take to be released.
const DEAD_HOLDER_PATIENCE: Duration = Duration::from_secs(3);

/// Where everything lives under `<wd>`.
#[derive(Debug, Clone)]
pub struct Workdir {
    root: PathBuf,
}

impl Workdir {
    /// `root` is made absolute, since jobs receive it as `SERVITOR_ROOT`.
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let root = fs::canonicalize(root)
            .with_context(|| format!("cannot use {} as working directory", root.display()))?;
        if !root.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn jobs_dir(&self) -> PathBuf {
        self.root.join("config/jobs")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// `state/schedules.json`: each job's last fire time, and the paused jobs.
    pub fn schedules_path(&self) -> PathBuf {
        self.state_dir().join(super::schedules::SCHEDULES)
    }

    /// `state/retries.json`: the retries waiting for their delay.
    pub fn retries_path(&self) -> PathBuf {
        self.state_dir().join(super::retries::RETRIES)
    }

    /// `state/jobs/<job>/executions`: safe to join, since a `JobId` has no `..`,
    /// absolute or hidden segments.
    pub fn executions_dir(&self, job: &JobId) -> PathBuf {
        let mut dir = self.root.join("state/jobs");
        dir.push(job.as_str());
        dir.push("executions");
        dir
    }

    /// `state/jobs/<job>/executions/<n>`.
    pub fn execution_dir(&self, run: &RunId) -> PathBuf {
        self.executions_dir(&run.job)
            .join(run.execution.to_string())
    }

    /// `state/jobs/<job>/executions/<n>/logs/main.txt`.
    pub fn log_path(&self, run: &RunId) -> PathBuf {
        let mut path = self.execution_dir(run);
        path.push(files::LOGS_DIR);
        path.push(files::LOG);
        path
    }

    /// `state/hooks`: the hooks' logs.
    pub fn hook_logs_dir(&self) -> PathBuf {
        self.root.join("state/hooks")
    }

    /// `config/hooks`: the hooks.
    pub fn hooks_dir(&self) -> PathBuf {
        self.root.join("config/hooks")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.root.join(SOCKET_PATH)
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("state/servitord.lock")
    }

    /// Takes the working directory for this process, or says which process has it.
    /// The lock lives as long as the returned file (and dies with the process, so a
    /// crashed daemon never leaves it behind).
    pub fn lock(&self) -> anyhow::Result<WorkdirLock> {
        fs::create_dir_all(self.state_dir())
            .with_context(|| format!("cannot create {}", self.state_dir().display()))?;
        check_private(&self.state_dir())?;
        let path = self.lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // A daemon killed while starting a job leaves the lock to that child for the
        // instant before its exec: a dead holder is given a moment to let go.
        let patience = Instant::now() + DEAD_HOLDER_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    file.rewind()?;
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let dead = !holder.is_empty() && !Path::new("/proc").join(holder).exists();
                    if dead && Instant::now() < patience {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    let holder = match holder {
                        "" => "another process".to_owned(),
                        pid => format!("another servitord (pid {pid})"),
                    };
                    bail!(
                        "{holder} is already serving {} (it holds the lock on {})",
                        self.root.display(),
                        path.display()
                    );
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(WorkdirLock { _file: file })
    }
}

/// Refuses a folder of the daemon's that another user owns, or that every user may
/// write to: either could let someone else plant state or a socket.
pub fn check_private(dir: &Path) -> anyhow::Result<()> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "{} is owned by uid {}, not by servitord's user (uid {me}): give it to that user (chown) or run servitord as its owner",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o002 != 0 {
        bail!(
            "{} is writable by every user (mode {:o}): remove that (chmod o-w)",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// Held for the daemon's lifetime.
pub struct WorkdirLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_folders_others_may_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        check_private(dir.path()).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_private(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("writable by every user (mode 777)"),
            "{error}"
        );
    }

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = Workdir::new(dir.path()).unwrap();
        let first = workdir.lock().unwrap();
        let error = workdir.lock().err().unwrap().to_string();
        assert!(
            error.contains(&format!("servitord (pid {})", std::process::id())),
            "{error}"
        );
        drop(first);
        workdir.lock().unwrap();
    }
}
