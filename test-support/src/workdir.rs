//! Fresh working directories, built up file by file.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use tempfile::TempDir;

use super::daemon::{Daemon, DaemonBuilder};
use super::wait::{TIMEOUT, wait_for};

/// A temporary working directory with `config/jobs/`; removed when dropped.
#[must_use]
pub struct Workdir {
    dir: TempDir,
    /// The canonical path: what the daemon gives jobs as `SERVITOR_ROOT`.
    root: PathBuf,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servitor-test-")
            .tempdir()
            .expect("a temporary directory");
        let root = fs::canonicalize(dir.path()).expect("the temporary directory's path");
        fs::create_dir_all(root.join("config/jobs")).expect("config/jobs");
        Self { dir, root }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<wd>/<relative>`.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// `<wd>/config/jobs/<id>`.
    pub fn job_path(&self, id: &str) -> PathBuf {
        self.root.join("config/jobs").join(id)
    }

    /// A job: `config/jobs/<id>` with this text, executable.
    pub fn job(self, id: &str, script: &str) -> Self {
        self.job_with_mode(id, script, 0o755)
    }

    pub fn job_with_mode(self, id: &str, script: &str, mode: u32) -> Self {
        let path = self.job_path(id);
        write(&path, script.as_bytes(), mode);
        self
    }

    /// The input spec `config/jobs/<id>.input.json`.
    pub fn input_spec(self, id: &str, json: &str) -> Self {
        let mut path = self.job_path(id).into_os_string();
        path.push(".input.json");
        write(Path::new(&path), json.as_bytes(), 0o644);
        self
    }

    /// Any file, relative to the working directory.
    pub fn file(self, relative: &str, contents: &str) -> Self {
        write(&self.join(relative), contents.as_bytes(), 0o644);
        self
    }

    pub fn dir(self, relative: &str) -> Self {
        fs::create_dir_all(self.join(relative)).expect("a folder");
        self
    }

    /// A symlink at `relative` (under the working directory) pointing to `target`.
    pub fn symlink(self, relative: &str, target: &str) -> Self {
        let link = self.join(relative);
        make_parent(&link);
        std::os::unix::fs::symlink(target, &link)
            .unwrap_or_else(|e| panic!("cannot create the symlink {}: {e}", link.display()));
        self
    }

    /// A FIFO at `relative`, for jobs to wait on (`read _ < "$SERVITOR_ROOT/<relative>"`)
    /// until the test calls `open_gate`.
    pub fn gate(self, relative: &str) -> Self {
        let path = self.join(relative);
        make_parent(&path);
        rustix::fs::mkfifoat(CWD, &path, Mode::from_raw_mode(0o600))
            .unwrap_or_else(|e| panic!("cannot create the FIFO {}: {e}", path.display()));
        self
    }

    /// Copies a folder tree (e.g. a fixture) to `relative`.
    pub fn copy_tree(self, from: &Path, relative: &str) -> Self {
        copy_tree(from, &self.join(relative));
        self
    }

    /// Lets a job waiting on the gate at `relative` go on: waits until the job reads
    /// from it, then writes a line.
    pub fn open_gate(&self, relative: &str) {
        let path = self.join(relative);
        // Opening a FIFO for writing without a reader fails at once with ENXIO.
        let fd = wait_for(&format!("a job to wait on {relative}"), TIMEOUT, || {
            rustix::fs::open(&path, OFlags::WRONLY | OFlags::NONBLOCK, Mode::empty()).ok()
        });
        rustix::io::write(&fd, b"go\n").expect("writing to the gate");
    }

    /// Lets through `lines` passages of the gate at `relative`, by every job, waiting
    /// now or arriving later, for as long as the returned descriptor is kept: it holds
    /// the FIFO open for writing (so opening it for reading never blocks) with a line
    /// per passage buffered in it (at most 64 KiB of lines, the pipe's buffer).
    pub fn hold_gate_open(&self, relative: &str, lines: usize) -> OwnedFd {
        let path = self.join(relative);
        // Read-write: a FIFO opened so never blocks, and keeps its buffer alive.
        let fd = rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("cannot open the FIFO {}: {e}", path.display()));
        assert!(lines <= 32 * 1024, "{lines} lines do not fit in a pipe");
        let mut pending = &"\n".repeat(lines).into_bytes()[..];
        while !pending.is_empty() {
            let written = rustix::io::write(&fd, pending).expect("writing to the gate");
            pending = &pending[written..];
        }
        fd
    }

    /// Every path under `relative`, relative to it, sorted (`""` lists nothing when absent).
    pub fn tree(&self, relative: &str) -> Vec<String> {
        let base = self.join(relative);
        let mut found = Vec::new();
        list_tree(&base, &base, &mut found);
        found.sort();
        found
    }

    pub fn read(&self, relative: &str) -> String {
        let path = self.join(relative);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Waits until a file a job appends to holds `count` whole lines, and returns its
    /// text. A shell's `>>` makes the file before it writes, so the file existing says
    /// nothing about what it holds.
    pub fn wait_lines(&self, relative: &str, count: usize) -> String {
        let path = self.join(relative);
        wait_for(&format!("{count} lines in {relative}"), TIMEOUT, || {
            let text = fs::read_to_string(&path).ok()?;
            let whole = text.matches('\n').count();
            (whole >= count && text.ends_with('\n')).then_some(text)
        })
    }

    /// Waits until a file holds `text`, and returns all it holds.
    pub fn wait_contains(&self, relative: &str, text: &str) -> String {
        let path = self.join(relative);
        wait_for(&format!("{text:?} in {relative}"), TIMEOUT, || {
            fs::read_to_string(&path)
                .ok()
                .filter(|held| held.contains(text))
        })
    }

    /// A daemon to start on this working directory.
    pub fn daemon(&self) -> DaemonBuilder {
        Daemon::builder(&self.root)
    }

    /// Starts a daemon on this working directory, with default settings.
    pub fn start(&self) -> Daemon {
        self.daemon().start()
    }

    /// Keeps the folder after the test (to look at it).
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

fn make_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
}

fn write(path: &Path, contents: &[u8], mode: u32) {
    make_parent(path);
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    let entries =
        fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("a folder entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("a file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = fs::read_link(entry.path()).expect("a symlink's target");
            std::os::unix::fs::symlink(link, &target).expect("a copied symlink");
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", entry.path().display()));
        }
    }
}

fn list_tree(base: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(base).expect("under the base");
        found.push(relative.to_string_lossy().into_owned());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            list_tree(base, &path, found);
        }
    }
}
