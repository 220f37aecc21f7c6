//! `state/schedules.json`: what the scheduler must remember across a restart, in one
//! small file replaced whole (write-then-rename) on each change, not a file per run:
//!
//! ```json
//! {"last_fires": {"backup/nightly": "2026-12-03T02:30:00Z"}, "paused": ["reports/weekly"]}
//! ```
//!
//! `last_fires`: each job's latest fire time handed out, so that a restart never fires
//! a time twice and knows what it missed; `paused`: the jobs paused through the API.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::write;

/// The file's name under `state/`.
pub const SCHEDULES: &str = "schedules.json";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct SavedSchedules {
    pub last_fires: BTreeMap<String, Timestamp>,
    pub paused: BTreeSet<String>,
}

/// The file as written: times in RFC 3339.
#[derive(Serialize, Deserialize)]
struct File {
    #[serde(default)]
    last_fires: BTreeMap<String, String>,
    #[serde(default)]
    paused: BTreeSet<String>,
}

/// Reads the file; none yet is an empty one, a damaged one is reported and read as
/// empty (then every schedule fires from now on, none catches up).
pub fn read(path: &Path) -> SavedSchedules {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes).unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), "cannot read the schedules' state, starting afresh: {e}");
            SavedSchedules::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => SavedSchedules::default(),
        Err(e) => {
            tracing::error!(file = %path.display(), "cannot read the schedules' state, starting afresh: {e}");
            SavedSchedules::default()
        }
    }
}

/// Reads the file's text; an unreadable time is an error, as the whole file then is.
pub fn parse(bytes: &[u8]) -> Result<SavedSchedules, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let last_fires = file
        .last_fires
        .into_iter()
        .map(|(job, at)| match at.parse() {
            Ok(at) => Ok((job, at)),
            Err(e) => Err(format!("last fire of {job:?}: {e}")),
        })
        .collect::<Result<_, _>>()?;
    Ok(SavedSchedules {
        last_fires,
        paused: file.paused,
    })
}

/// Replaces the file: a crash leaves the old one or the new one.
pub fn save(fsync: bool, path: &Path, saved: &SavedSchedules) -> io::Result<()> {
    let file = File {
        last_fires: (saved.last_fires.iter())
            .map(|(job, at)| (job.clone(), at.to_string()))
            .collect(),
        paused: saved.paused.clone(),
    };
    write::replace_json(fsync, path, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(SCHEDULES);
        assert_eq!(read(&path), SavedSchedules::default());
        let mut saved = SavedSchedules::default();
        saved
            .last_fires
            .insert("a/b".into(), "2026-12-03T02:30:00Z".parse().unwrap());
        saved.paused.insert("c".into());
        save(false, &path, &saved).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"last_fires\":{\"a/b\":\"2026-12-03T02:30:00Z\"},\"paused\":[\"c\"]}\n"
        );
        assert_eq!(read(&path), saved);
        std::fs::write(&path, "{\"last_fires\": 3").unwrap();
        assert_eq!(read(&path), SavedSchedules::default());
    }
}
