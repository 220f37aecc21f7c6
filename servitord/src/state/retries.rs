//! `state/retries.json`: the retries waiting for their delay, so that a restart makes
//! them instead of forgetting them. One small file replaced whole on each change:
//!
//! ```json
//! {"pending": [{"job": "backup/nightly", "retry_of": "4", "attempt": 1, "due": "2026-12-03T02:31:00Z"}]}
//! ```
//!
//! Input values are not here: the failed run's own (secret ones masked) are read back
//! from its execution, and a secret one then makes the retry fail saying so.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::write;

/// The file's name under `state/`.
pub const RETRIES: &str = "retries.json";

/// One retry to make at `due`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRetry {
    pub job: String,
    /// The execution that failed, as the API writes execution ids.
    pub retry_of: String,
    pub attempt: u32,
    /// When to make it, RFC 3339.
    pub due: String,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    #[serde(default)]
    pending: Vec<SavedRetry>,
}

/// Reads the file; none yet is none pending, a damaged one is reported and read as
/// none (those retries are then not made).
pub fn read(path: &Path) -> Vec<SavedRetry> {
    let parsed = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<File>(&bytes).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(e),
    };
    parsed.map(|file| file.pending).unwrap_or_else(|e| {
        tracing::error!(file = %path.display(), "cannot read the pending retries, none is made: {e}");
        Vec::new()
    })
}

/// Replaces the file: a crash leaves the old one or the new one.
pub fn save(fsync: bool, path: &Path, pending: &[SavedRetry]) -> io::Result<()> {
    let file = File {
        pending: pending.to_vec(),
    };
    write::replace_json(fsync, path, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(RETRIES);
        assert_eq!(read(&path), Vec::new());
        let pending = vec![SavedRetry {
            job: "a/b".into(),
            retry_of: "4".into(),
            attempt: 2,
            due: "2026-12-03T02:31:00Z".into(),
        }];
        save(false, &path, &pending).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"pending\":[{\"job\":\"a/b\",\"retry_of\":\"4\",\"attempt\":2,\"due\":\"2026-12-03T02:31:00Z\"}]}\n"
        );
        assert_eq!(read(&path), pending);
        std::fs::write(&path, "{\"pending\": [3").unwrap();
        assert_eq!(read(&path), Vec::new());
    }
}
