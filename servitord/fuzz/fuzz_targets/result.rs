//! `result.tsv`. Properties: a result that reads is written back as one line (one tab,
//! one newline, no CR) that reads back the same, tabs and newlines of the message
//! turned into spaces, and writing it again changes nothing; any result the runner
//! records (an exit code and any message) reads back; an unreadable file is reported
//! in a short message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitor_shared::RunResult;
use servitord::state_files::{format_result, parse_result};

fuzz_target!(|bytes: &[u8]| {
    // Read as the store reads it: a file that is not UTF-8 is a read error already.
    if let Ok(text) = std::str::from_utf8(bytes) {
        match parse_result(text) {
            Ok(result) => check_written(&result),
            Err(problem) => {
                assert!(problem.starts_with("unreadable result"), "{problem}");
                assert!(problem.len() < 1024, "{problem}");
            }
        }
    }
    // What the runner records: any exit code, any message.
    if let Some((code, message)) = bytes.split_first_chunk::<8>() {
        check_written(&RunResult {
            exit_code: i64::from_le_bytes(*code),
            message: String::from_utf8_lossy(message).into_owned(),
        });
    }
});

fn check_written(result: &RunResult) {
    let written = format_result(result);
    let line = written
        .strip_suffix('\n')
        .expect("a result ends with a newline");
    assert!(!line.contains(['\n', '\r']), "{written:?}");
    assert_eq!(line.matches('\t').count(), 1, "{written:?}");
    let read = parse_result(&written).expect("a written result reads back");
    assert_eq!(read.exit_code, result.exit_code);
    assert_eq!(
        read.message,
        result.message.replace(['\t', '\n', '\r'], " ")
    );
    assert_eq!(format_result(&read), written);
}
