//! The job catalog: every executable regular file under `config/jobs`, at any depth,
//! following symlinks to files and folders. A job's id is its path relative to that
//! folder. Hidden names are skipped, and a folder that is its own ancestor (a symlink
//! loop) is not entered again, so every job is listed once.
//!
//! The catalog is scanned once and kept, with each job's spec and settings read and
//! its API answer ready; it is scanned again only when inotify says something under
//! `config/jobs` changed (see `config_watch`), so asking for it costs almost nothing.
//! A rescan reads many files: it runs on the blocking pool, and whoever asks meanwhile
//! waits for it without holding a thread.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use servitor_shared::{InputSpec, Job, JobSchedule, JobSettings, inputs};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::config_watch::ConfigWatch;
use super::id::{IdError, JobId};
use super::schedule::Schedule;
use super::settings::{self, Settings, SettingsError};

/// Folders deeper than this are not searched (a guard against symlink mazes).
const MAX_DEPTH: usize = 64;
const SPEC_SUFFIX: &str = ".input.json";

pub struct Catalog {
    jobs_dir: PathBuf,
    stop_grace: Duration,
    cache: tokio::sync::Mutex<Cache>,
}

struct Cache {
    /// `None` where inotify is not available: then every question rescans.
    watch: Option<ConfigWatch>,
    snapshot: Option<Arc<Snapshot>>,
}

/// The catalog at one moment.
pub struct Snapshot {
    /// Sorted by id.
    pub entries: Vec<Arc<Entry>>,
    index: HashMap<JobId, usize>,
}

/// A job with what its sidecar files say.
pub struct Entry {
    pub file: JobFile,
    /// What a run needs, or why the job cannot run.
    pub run: Result<(InputSpec, Settings), Broken>,
    /// The job as the API describes it (a broken spec or settings file in `error`), as
    /// JSON up to its last field's value: `{"job_id":...,"last_execution":`, so that
    /// answers listing many jobs only append each job's newest execution.
    pub json_head: Bytes,
    /// For a scheduled job, its `schedule` field up to the value of `paused`:
    /// `,"schedule":{"description":...,"timezone":...,"paused":`.
    pub schedule_head: Option<Bytes>,
}

/// A discovered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    pub id: JobId,
    /// The executable, as reached under `config/jobs` (symlinks not resolved).
    pub path: PathBuf,
}

/// Why an id names no job.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAJob {
    /// Not shaped like a job id (`..`, empty or hidden segments...).
    #[error(transparent)]
    Malformed(#[from] IdError),
    #[error("no such job")]
    Unknown,
}

/// Why a job's `X.input.json` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file} is not a JSON object: {reason}")]
    NotAnObject { file: String, reason: String },
    #[error("{file}: {reason}")]
    BadInput { file: String, reason: String },
}

/// Why a job cannot run until its files are fixed: its spec, its settings, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    job: JobId,
    spec: Option<SpecError>,
    settings: Option<SettingsError>,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(spec) = &self.spec {
            write!(f, "{spec}")?;
            if self.settings.is_some() {
                f.write_str("; ")?;
            }
        }
        match &self.settings {
            // These name the broken file themselves.
            Some(e @ (SettingsError::Unparsable { .. } | SettingsError::Unreadable { .. })) => {
                write!(f, "{e}")
            }
            Some(e) => write!(f, "settings of {}: {e}", self.job),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Broken {}

impl Broken {
    pub fn job(&self) -> &JobId {
        &self.job
    }
}

impl JobFile {
    /// `X.input.json` beside the job, `{}` when there is none; its inputs are checked.
    fn input_spec(&self) -> Result<InputSpec, SpecError> {
        let mut spec_path = self.path.clone().into_os_string();
        spec_path.push(SPEC_SUFFIX);
        let file = format!("{}{SPEC_SUFFIX}", self.id);
        let text = match fs::read_to_string(&spec_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(InputSpec::new()),
            Err(e) => {
                let reason = e.to_string();
                return Err(SpecError::Unreadable { file, reason });
            }
        };
        let spec: InputSpec = match serde_json::from_str(&text) {
            Ok(spec) => spec,
            Err(e) => {
                let reason = e.to_string();
                return Err(SpecError::NotAnObject { file, reason });
            }
        };
        if let Err(reason) = inputs::fields(&spec) {
            return Err(SpecError::BadInput { file, reason });
        }
        Ok(spec)
    }
}

impl Entry {
    /// The job's settings, or why they cannot be used.
    pub fn settings(&self) -> Result<&Settings, &Broken> {
        self.run.as_ref().map(|(_, settings)| settings)
    }
}

impl Catalog {
    /// `stop_grace` is the daemon's default for jobs whose settings do not say.
    pub fn new(jobs_dir: PathBuf, stop_grace: Duration) -> Self {
        let watch = ConfigWatch::new()
            .inspect_err(|e| {
                tracing::warn!("no inotify, the job catalog is rescanned at every request: {e}")
            })
            .ok();
        Self {
            jobs_dir,
            stop_grace,
            cache: tokio::sync::Mutex::new(Cache {
                watch,
                snapshot: None,
            }),
        }
    }

    pub fn jobs_dir(&self) -> &Path {
        &self.jobs_dir
    }

    /// Waits until something under `config/jobs` may have changed since the last scan,
    /// without scanning; `None` without inotify (nothing tells of changes then). For a
    /// task that reacts to edits, as the scheduler does: it asks for a `snapshot` next.
    pub async fn wait_for_change(&self, ready: &mut Option<AsyncFd<OwnedFd>>) -> Option<()> {
        if ready.is_none() {
            let fd = self
                .cache
                .lock()
                .await
                .watch
                .as_ref()?
                .readiness_fd()
                .ok()?;
            *ready = Some(register(fd).ok()?);
        }
        let mut guard = ready.as_ref()?.readable().await.ok()?;
        // Cleared before the scan takes the events: one arriving after it wakes us again.
        guard.clear_ready();
        Some(())
    }

    /// The catalog as it is now: rescanned first, off the async threads, when
    /// something under `config/jobs` changed since the last scan.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().await;
        let changed = cache.watch.as_mut().is_none_or(ConfigWatch::changed);
        if let Some(snapshot) = &cache.snapshot
            && !changed
        {
            return Arc::clone(snapshot);
        }
        let scanner = Scanner {
            jobs_dir: self.jobs_dir.clone(),
            stop_grace: self.stop_grace,
        };
        let mut watch = cache.watch.take();
        let (snapshot, watch) = match tokio::task::spawn_blocking(move || {
            let snapshot = scanner.scan(watch.as_mut());
            (snapshot, watch)
        })
        .await
        {
            Ok(scanned) => scanned,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let snapshot = Arc::new(snapshot);
        cache.watch = watch;
        cache.snapshot = Some(Arc::clone(&snapshot));
        snapshot
    }

    /// The job with exactly this id.
    pub async fn find(&self, id: &str) -> Result<Arc<Entry>, NotAJob> {
        let id = JobId::parse(id)?;
        self.snapshot().await.get(&id).ok_or(NotAJob::Unknown)
    }

    /// The settings of a job that has none.
    pub fn default_settings(&self) -> Settings {
        settings::check(&JobSettings::default(), self.stop_grace)
            .expect("no settings are valid settings")
    }
}

/// What a scan needs, apart from the catalog's lock.
struct Scanner {
    jobs_dir: PathBuf,
    stop_grace: Duration,
}

impl Scanner {
    fn scan(&self, mut watch: Option<&mut ConfigWatch>) -> Snapshot {
        // Watched before it is read, so nothing created meanwhile goes unseen; while
        // config/jobs does not exist, the nearest folder above it tells when it does.
        if let Some(watch) = watch.as_mut()
            && let Some(existing) = self.jobs_dir.ancestors().find(|dir| dir.is_dir())
        {
            watch.watch(existing);
        }
        let mut files = Vec::new();
        if let Ok(root) = fs::metadata(&self.jobs_dir) {
            let mut ancestors = vec![identity(&root)];
            walk(&self.jobs_dir, "", &mut ancestors, &mut files, &mut watch);
        }
        files.sort_by(|a, b| a.id.cmp(&b.id));
        let entries: Vec<Arc<Entry>> = files
            .into_iter()
            .map(|file| Arc::new(self.read(file)))
            .collect();
        let index = entries
            .iter()
            .enumerate()
            .map(|(at, entry)| (entry.file.id.clone(), at))
            .collect();
        Snapshot { entries, index }
    }

    /// Reads a job's spec and settings; a broken file is reported, not fatal.
    fn read(&self, file: JobFile) -> Entry {
        let spec = file.input_spec();
        let settings = settings::read(&self.jobs_dir, file.id.as_str()).and_then(|written| {
            let checked = settings::check(&written, self.stop_grace)?;
            Ok((written, checked))
        });
        let broken = (spec.is_err() || settings.is_err()).then(|| Broken {
            job: file.id.clone(),
            spec: spec.as_ref().err().cloned(),
            settings: settings.as_ref().err().cloned(),
        });
        if let Some(broken) = &broken {
            tracing::warn!(job = %file.id, "{broken}");
        }
        let job = Job {
            job_id: file.id.to_string(),
            input_spec: spec.clone().unwrap_or_default(),
            settings: settings
                .as_ref()
                .map(|(written, _)| written.clone())
                .unwrap_or_else(|_| JobSettings::default()),
            error: broken.as_ref().map(ToString::to_string),
            last_execution: None,
            next_run: None,
            schedule: None,
        };
        let run = match (spec, settings, broken) {
            (Ok(spec), Ok((_, checked)), None) => Ok((spec, checked)),
            (_, _, broken) => Err(broken.expect("a spec or settings error")),
        };
        let json_head = json_head(&job);
        let schedule_head = run
            .as_ref()
            .ok()
            .and_then(|(_, settings)| settings.schedule.as_ref())
            .map(schedule_head);
        Entry {
            file,
            run,
            json_head,
            schedule_head,
        }
    }
}

impl Snapshot {
    pub fn get(&self, id: &JobId) -> Option<Arc<Entry>> {
        self.index.get(id).map(|at| Arc::clone(&self.entries[*at]))
    }

    /// The job whose id is `id`, written out.
    pub fn get_by_name(&self, id: &str) -> Option<Arc<Entry>> {
        self.get(&JobId::parse(id).ok()?)
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<(u64, u64)>,
    jobs: &mut Vec<JobFile>,
    watch: &mut Option<&mut ConfigWatch>,
) {
    if let Some(watch) = watch {
        watch.watch(dir);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        tracing::debug!(dir = %dir.display(), "cannot read folder");
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "skipping a name that is not UTF-8");
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks; a dangling one or a loop of links is simply skipped.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let id = format!("{prefix}{name}");
        if meta.is_dir() {
            let key = identity(&meta);
            if ancestors.contains(&key) || ancestors.len() > MAX_DEPTH {
                tracing::debug!(folder = %id, "not entering a folder that loops back");
                continue;
            }
            ancestors.push(key);
            walk(&path, &format!("{id}/"), ancestors, jobs, watch);
            ancestors.pop();
        } else if is_job(&meta) {
            // A job linked from elsewhere: watch where it lives too, for a chmod there.
            if let (Some(watch), true) = (
                watch.as_mut(),
                entry.file_type().is_ok_and(|t| t.is_symlink()),
            ) && let Some(folder) = fs::canonicalize(&path)
                .ok()
                .as_deref()
                .and_then(Path::parent)
            {
                watch.watch(folder);
            }
            // Made of visible UTF-8 names: a well-formed id, unless over-long.
            match JobId::parse(&id) {
                Ok(id) => jobs.push(JobFile { id, path }),
                Err(e) => tracing::warn!(path = %path.display(), "skipping a job: {e}"),
            }
        }
    }
}

/// A job's JSON without its `last_execution` value and closing brace (that field is
/// last, and `null` here).
fn json_head(job: &Job) -> Bytes {
    let json = serde_json::to_vec(job).expect("a job serializes");
    let head = json
        .strip_suffix(b"null}")
        .expect("a job's JSON ends with its last_execution, null here");
    Bytes::copy_from_slice(head)
}

/// Registers the inotify queue's fd with the runtime, to wait until it is readable.
/// `with_interest` is deprecated because a caller could close a borrowed fd while it is
/// registered; an `OwnedFd` moved into the `AsyncFd` cannot be, so this is the sound
/// use (its replacement is `unsafe`, which this crate forbids).
#[allow(deprecated)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::with_interest(fd, Interest::READABLE)
}

/// A schedule's JSON up to the value of `paused`, known only when asked.
fn schedule_head(schedule: &Schedule) -> Bytes {
    let described = JobSchedule {
        description: schedule.describe(),
        timezone: schedule.zone_name().to_owned(),
        paused: false,
    };
    let json = serde_json::to_vec(&described).expect("a schedule serializes");
    let fields = json
        .strip_suffix(b"false}")
        .expect("a schedule's JSON ends with paused");
    Bytes::from([&b",\"schedule\":"[..], fields].concat())
}

fn identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn is_job(meta: &Metadata) -> bool {
    is_executable_file(meta)
}

/// A regular file its owner may execute: a job in `config/jobs`, a hook in
/// `config/hooks`.
pub fn is_executable_file(meta: &Metadata) -> bool {
    const OWNER_EXECUTE: u32 = 0o100;
    meta.is_file() && meta.permissions().mode() & OWNER_EXECUTE != 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    impl Entry {
        /// The job as the API describes it, never run.
        fn job(&self) -> Job {
            serde_json::from_slice(&[&self.json_head[..], b"null}"].concat()).unwrap()
        }
    }

    fn write(path: &Path, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[tokio::test]
    async fn discovers_jobs_through_links_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs");
        let outside = dir.path().join("outside");
        write(&jobs.join("hello"), 0o755);
        write(&jobs.join("notes.txt"), 0o644);
        write(&jobs.join(".hidden"), 0o755);
        write(&jobs.join("testing/deep/hello"), 0o700);
        write(&outside.join("linked-job"), 0o755);
        symlink(&outside, jobs.join("linked")).unwrap();
        symlink("..", jobs.join("testing/loop")).unwrap();
        symlink("missing", jobs.join("dangling")).unwrap();
        symlink("self", jobs.join("self")).unwrap();
        fs::write(jobs.join("hello.input.json"), "{}").unwrap();

        let catalog = Catalog::new(jobs.clone(), Duration::from_secs(10));
        let ids: Vec<_> = catalog
            .snapshot()
            .await
            .entries
            .iter()
            .map(|e| e.file.id.to_string())
            .collect();
        assert_eq!(ids, ["hello", "linked/linked-job", "testing/deep/hello"]);

        let found = catalog.find("linked/linked-job").await.unwrap();
        assert_eq!(found.file.path, jobs.join("linked/linked-job"));
        for unknown in [
            "notes.txt",
            "testing",
            "testing/loop/hello",
            "missing",
            "self",
            "hello.input.json",
        ] {
            assert_eq!(
                catalog.find(unknown).await.err(),
                Some(NotAJob::Unknown),
                "{unknown}"
            );
        }
        for malformed in [
            ".hidden",
            "../outside/linked-job",
            "/etc/passwd",
            "testing//deep/hello",
        ] {
            assert!(
                matches!(catalog.find(malformed).await, Err(NotAJob::Malformed(_))),
                "{malformed}"
            );
        }
    }

    #[tokio::test]
    async fn reads_input_specs() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("plain"), 0o755);
        write(&dir.path().join("greet"), 0o755);
        write(&dir.path().join("broken"), 0o755);
        fs::write(
            dir.path().join("greet.input.json"),
            r#"{"NAME": {}, "CITY": {"x": 1}}"#,
        )
        .unwrap();
        fs::write(dir.path().join("broken.input.json"), "{not json").unwrap();
        let catalog = Catalog::new(dir.path().to_owned(), Duration::from_secs(10));

        let greet = catalog.find("greet").await.unwrap().job();
        assert_eq!(
            serde_json::to_string(&greet.input_spec).unwrap(),
            r#"{"NAME":{},"CITY":{"x":1}}"#
        );
        let plain = catalog.find("plain").await.unwrap().job();
        assert!(plain.input_spec.is_empty() && plain.settings.is_empty());
        let broken = catalog.find("broken").await.unwrap();
        assert!(broken.job().input_spec.is_empty());
        assert!(
            broken
                .job()
                .error
                .as_ref()
                .unwrap()
                .contains("broken.input.json")
        );
        assert!(broken.run.is_err());
    }

    #[tokio::test]
    async fn sees_changes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a/first"), 0o755);
        let catalog = Catalog::new(dir.path().to_owned(), Duration::from_secs(10));
        let before = catalog.snapshot().await;
        assert!(
            Arc::ptr_eq(&before, &catalog.snapshot().await),
            "kept while nothing changes"
        );

        write(&dir.path().join("a/second"), 0o644);
        assert!(catalog.find("a/second").await.is_err());
        fs::set_permissions(
            dir.path().join("a/second"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert!(catalog.find("a/second").await.is_ok(), "a chmod +x is seen");
        fs::write(dir.path().join("a/second.input.json"), r#"{"X": {}}"#).unwrap();
        assert!(
            catalog
                .find("a/second")
                .await
                .unwrap()
                .job()
                .input_spec
                .contains_key("X")
        );
        fs::write(dir.path().join("a/.settings.json"), r#"{"timeout": "1s"}"#).unwrap();
        let settings = catalog.find("a/first").await.unwrap().job().settings;
        assert_eq!(settings.timeout.as_deref(), Some("1s"));
        fs::create_dir(dir.path().join("b")).unwrap();
        write(&dir.path().join("b/third"), 0o755);
        assert_eq!(
            catalog.snapshot().await.entries.len(),
            3,
            "new folders are watched too"
        );
    }
}
