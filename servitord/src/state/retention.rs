//! Retention: which of a job's old finished executions its settings let go.
//!
//! The store renames an expired execution's folder out of sight first (atomic: readers
//! see it or not); it is then deleted off the async threads. `last_execution.txt`
//! stays, so ids never repeat. Queued and running executions, and the newest one, are
//! never removed.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::jobs::settings::Retention;

/// Prefix of an execution folder being deleted (hidden: the store skips it).
pub const REMOVED_PREFIX: &str = ".removed-";

/// Whether an execution that ended at `ended` and is the `rank`-th newest (0 for the
/// newest) may be deleted: it is beyond the newest `keep_last` and older than
/// `max_age`, either alone when only one is given.
pub fn expired(policy: Retention, rank: usize, ended: Option<Timestamp>, now: Timestamp) -> bool {
    if rank == 0 {
        return false;
    }
    let beyond = policy.keep_last.map(|keep| rank as u64 >= keep);
    let old = policy.max_age.map(|max_age| {
        ended.is_some_and(|ended| {
            Duration::try_from(now.duration_since(ended)).is_ok_and(|age| age > max_age)
        })
    });
    match (beyond, old) {
        (Some(beyond), Some(old)) => beyond && old,
        (Some(expired), None) | (None, Some(expired)) => expired,
        (None, None) => false,
    }
}

/// Deletes folders already moved out of sight (and leftovers of a crash mid-delete).
pub fn delete_in_background(folders: Vec<PathBuf>) {
    if folders.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        for folder in folders {
            if let Err(e) = fs::remove_dir_all(&folder) {
                tracing::warn!(folder = %folder.display(), "cannot delete a removed execution: {e}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_what_either_rule_keeps() {
        let now: Timestamp = "2026-01-31T00:00:00+00:00".parse().unwrap();
        let day = |d: i64| Some(now - jiff::SignedDuration::from_hours(24 * d));
        let last_3 = Retention {
            keep_last: Some(3),
            max_age: None,
        };
        let week = Retention {
            keep_last: None,
            max_age: Some(Duration::from_secs(7 * 86_400)),
        };
        let both = Retention {
            keep_last: Some(3),
            max_age: Some(Duration::from_secs(7 * 86_400)),
        };
        assert!(!expired(last_3, 2, day(100), now));
        assert!(expired(last_3, 3, day(0), now));
        assert!(!expired(week, 10, day(6), now));
        assert!(expired(week, 10, day(8), now));
        assert!(!expired(week, 0, day(800), now), "never the newest");
        assert!(!expired(both, 5, day(1), now), "young enough");
        assert!(!expired(both, 1, day(100), now), "among the last 3");
        assert!(expired(both, 5, day(100), now));
        assert!(!expired(week, 5, None, now), "no known end, no age");
    }
}
