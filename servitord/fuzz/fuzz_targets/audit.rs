//! `audit.json`, who ran and who cancelled a run. Properties: an audit that reads is
//! written back as a JSON object that reads back the same, and writing it again
//! changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitord::state_files::{format_audit, parse_audit};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(audit) = parse_audit(text) else {
        return;
    };
    let written = format_audit(&audit);
    assert!(
        written.starts_with('{') && written.ends_with("}\n"),
        "{written:?}"
    );
    let read = parse_audit(&written).expect("a written audit reads back");
    assert_eq!(read, audit);
    assert_eq!(format_audit(&read), written);
});
