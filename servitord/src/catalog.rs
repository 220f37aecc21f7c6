//! The job catalog: every executable regular file under `config/jobs`, at any depth,
//! following symlinks to files and folders. A job's id is its path relative to that
//! folder. Hidden names are skipped, and a folder that is its own ancestor (a symlink
//! loop) is not entered again, so every job is listed once.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::time::Duration;

use servitor_shared::{InputSpec, Job, JobSettings, inputs};

use crate::ids;
use crate::process_group::Signal;
use crate::settings::{self, Settings};

/// Folders deeper than this are not searched (a guard against symlink mazes).
const MAX_DEPTH: usize = 64;
const OWNER_EXECUTE: u32 = 0o100;
const SPEC_SUFFIX: &str = ".input.json";

pub struct Catalog {
    jobs_dir: PathBuf,
    stop_grace: Duration,
}

/// A discovered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    pub id: String,
    /// The executable, as reached under `config/jobs` (symlinks not resolved).
    pub path: PathBuf,
}

/// Why an id names no job.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAJob {
    /// Not shaped like a job id (`..`, empty or hidden segments...).
    Malformed(String),
    Unknown,
}

impl JobFile {
    /// `X.input.json` beside the job, `{}` when there is none; its inputs are checked.
    pub fn input_spec(&self) -> Result<InputSpec, String> {
        let mut spec_path = self.path.clone().into_os_string();
        spec_path.push(SPEC_SUFFIX);
        let text = match fs::read_to_string(&spec_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(InputSpec::new()),
            Err(e) => return Err(format!("cannot read {}{SPEC_SUFFIX}: {e}", self.id)),
        };
        let spec: InputSpec = serde_json::from_str(&text)
            .map_err(|e| format!("{}{SPEC_SUFFIX} is not a JSON object: {e}", self.id))?;
        inputs::fields(&spec).map_err(|e| format!("{}{SPEC_SUFFIX}: {e}", self.id))?;
        Ok(spec)
    }
}

impl Catalog {
    /// `stop_grace` is the daemon's default for jobs whose settings do not say.
    pub fn new(jobs_dir: PathBuf, stop_grace: Duration) -> Self {
        Self {
            jobs_dir,
            stop_grace,
        }
    }

    pub fn jobs_dir(&self) -> &Path {
        &self.jobs_dir
    }

    /// A job's settings: as written (merged over its folders'), and checked.
    pub fn settings(&self, id: &str) -> Result<(JobSettings, Settings), String> {
        let written = settings::read(&self.jobs_dir, id)?;
        let checked = settings::check(&written, self.stop_grace)
            .map_err(|e| format!("settings of {id}: {e}"))?;
        Ok((written, checked))
    }

    /// How a cancelled run of the job is stopped: the signal and grace period of its
    /// settings, or the defaults when they cannot be read.
    pub fn cancel_stop(&self, id: &str) -> (Signal, Duration) {
        match self.settings(id) {
            Ok((_, settings)) => (
                settings.stop_signal.unwrap_or(Signal::INT),
                settings.stop_grace,
            ),
            Err(_) => (Signal::INT, self.stop_grace),
        }
    }

    /// What a run of the job needs, or why it cannot run.
    pub fn run_config(&self, job: &JobFile) -> Result<(InputSpec, Settings), String> {
        let spec = job.input_spec()?;
        let (_, settings) = self.settings(&job.id)?;
        Ok((spec, settings))
    }

    /// The job as the API describes it; a broken spec or settings file is reported,
    /// not fatal.
    pub fn describe(&self, job: &JobFile) -> Job {
        let mut errors = Vec::new();
        let input_spec = job.input_spec().unwrap_or_else(|e| {
            errors.push(e);
            InputSpec::new()
        });
        let settings = match self.settings(&job.id) {
            Ok((written, _)) => written,
            Err(e) => {
                errors.push(e);
                JobSettings::default()
            }
        };
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if let Some(error) = &error {
            tracing::warn!(job = %job.id, "{error}");
        }
        Job {
            job_id: job.id.clone(),
            input_spec,
            settings,
            error,
        }
    }

    /// All jobs, sorted by id.
    pub fn list(&self) -> Vec<JobFile> {
        let mut jobs = Vec::new();
        if let Ok(root) = fs::metadata(&self.jobs_dir) {
            let mut ancestors = vec![identity(&root)];
            self.walk(&self.jobs_dir, "", &mut ancestors, &mut jobs);
        }
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        jobs
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        ancestors: &mut Vec<(u64, u64)>,
        jobs: &mut Vec<JobFile>,
    ) {
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
                self.walk(&path, &format!("{id}/"), ancestors, jobs);
                ancestors.pop();
            } else if is_job(&meta) {
                jobs.push(JobFile { id, path });
            }
        }
    }

    /// The job with exactly this id, with the same rules as `list` but only the
    /// files on its path looked at.
    pub fn find(&self, id: &str) -> Result<JobFile, NotAJob> {
        ids::check_job_id(id).map_err(NotAJob::Malformed)?;
        let mut path = self.jobs_dir.clone();
        let root = fs::metadata(&path).map_err(|_| NotAJob::Unknown)?;
        let mut ancestors = vec![identity(&root)];
        let mut segments = id.split('/').peekable();
        while let Some(segment) = segments.next() {
            path.push(segment);
            let meta = fs::metadata(&path).map_err(|_| NotAJob::Unknown)?;
            if segments.peek().is_none() {
                return if is_job(&meta) {
                    Ok(JobFile {
                        id: id.to_owned(),
                        path,
                    })
                } else {
                    Err(NotAJob::Unknown)
                };
            }
            let key = identity(&meta);
            if !meta.is_dir() || ancestors.contains(&key) || ancestors.len() > MAX_DEPTH {
                return Err(NotAJob::Unknown);
            }
            ancestors.push(key);
        }
        Err(NotAJob::Unknown)
    }
}

fn identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn is_job(meta: &Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & OWNER_EXECUTE != 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(path: &Path, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn discovers_jobs_through_links_and_loops() {
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
        let ids: Vec<_> = catalog.list().into_iter().map(|j| j.id).collect();
        assert_eq!(ids, ["hello", "linked/linked-job", "testing/deep/hello"]);

        let found = catalog.find("linked/linked-job").unwrap();
        assert_eq!(found.path, jobs.join("linked/linked-job"));
        for unknown in [
            "notes.txt",
            "testing",
            "testing/loop/hello",
            "missing",
            "self",
            "hello.input.json",
        ] {
            assert_eq!(catalog.find(unknown), Err(NotAJob::Unknown), "{unknown}");
        }
        for malformed in [
            ".hidden",
            "../outside/linked-job",
            "/etc/passwd",
            "testing//deep/hello",
        ] {
            assert!(
                matches!(catalog.find(malformed), Err(NotAJob::Malformed(_))),
                "{malformed}"
            );
        }
    }

    #[test]
    fn reads_input_specs() {
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

        let greet = catalog.describe(&catalog.find("greet").unwrap());
        assert_eq!(
            serde_json::to_string(&greet.input_spec).unwrap(),
            r#"{"NAME":{},"CITY":{"x":1}}"#
        );
        let plain = catalog.describe(&catalog.find("plain").unwrap());
        assert!(plain.input_spec.is_empty() && plain.settings.is_empty());
        let broken = catalog.describe(&catalog.find("broken").unwrap());
        assert!(broken.input_spec.is_empty());
        assert!(broken.error.unwrap().contains("broken.input.json"));
    }
}
