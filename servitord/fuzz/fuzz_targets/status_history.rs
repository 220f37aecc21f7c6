//! `status_history.tsv`, read as the store reads it (damaged UTF-8 replaced, never
//! refused). Properties: every line is accounted for as a change or a problem; each
//! change formats back to the very line it came from (a CR before the newline aside),
//! so no field holds a tab or a newline; what is formatted reads back the same; and
//! appending a line the way the store does keeps every readable line and adds one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitor_shared::ExecutionStatus;
use servitord::state_files::{format_status_line, parse_status_history};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let history = parse_status_history(&text);

    assert_eq!(
        history.needs_newline,
        !text.is_empty() && !text.ends_with('\n')
    );
    // The lines of the file, without their newline (a final empty piece is no line).
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    if lines.is_empty() {
        assert!(history.changes.is_empty());
        assert_eq!(history.problems.len(), 1, "{:?}", history.problems);
    } else {
        assert_eq!(history.changes.len() + history.problems.len(), lines.len());
    }

    // Each change is one of the lines, in order: a subsequence of `lines`.
    let mut rest = lines.iter();
    let mut rewritten = String::new();
    for change in &history.changes {
        assert_ne!(change.status, ExecutionStatus::Unknown);
        assert!(!change.timestamp.is_empty());
        assert!(
            !change.timestamp.contains(['\t', '\n']),
            "{:?}",
            change.timestamp
        );
        let line = format_status_line(&change.timestamp, change.status);
        let bare = line.strip_suffix('\n').expect("a line ends with a newline");
        assert!(!bare.contains('\n'));
        assert_eq!(bare.matches('\t').count(), 1);
        assert!(
            rest.any(|original| original.strip_suffix('\r').unwrap_or(original) == bare),
            "{bare:?} is not a line of {text:?}"
        );
        rewritten.push_str(&line);
        // The store reads the end time of a run from its last timestamp.
        let _ = change.timestamp.parse::<jiff::Timestamp>();
    }

    // What is written reads back whole.
    if !history.changes.is_empty() {
        let again = parse_status_history(&rewritten);
        assert_eq!(again.changes, history.changes);
        assert!(again.problems.is_empty(), "{:?}", again.problems);
        assert!(!again.needs_newline);
    }

    // An append, as the store does it after reading the file.
    let mut appended = text.clone().into_owned();
    if history.needs_newline {
        appended.push('\n');
    }
    appended.push_str(&format_status_line(
        "2024-03-17T00:59:08.123456+00:00",
        ExecutionStatus::Running,
    ));
    let after = parse_status_history(&appended);
    assert_eq!(after.changes.len(), history.changes.len() + 1);
    assert_eq!(after.changes[..history.changes.len()], history.changes[..]);
    assert_eq!(
        after.changes.last().map(|c| c.status),
        Some(ExecutionStatus::Running)
    );
    assert!(!after.needs_newline);
    let problems_before = if lines.is_empty() {
        0
    } else {
        history.problems.len()
    };
    assert_eq!(after.problems.len(), problems_before);
});
