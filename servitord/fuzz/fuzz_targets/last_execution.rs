//! `last_execution.txt`. Properties: text reads as a number exactly when, trimmed, it is
//! an optionally `+`-signed decimal that fits a u64 (what Python's `int()` of the old
//! tool wrote, and `str::parse` reads), with that value; every number written reads
//! back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitord::state_files::{format_last_execution, parse_last_execution};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        assert_eq!(parse_last_execution(text), reference(text), "{text:?}");
    }
    if let Some((number, _)) = bytes.split_first_chunk::<8>() {
        let id = u64::from_le_bytes(*number);
        let written = format_last_execution(id);
        assert!(written.bytes().all(|b| b.is_ascii_digit()), "{written:?}");
        assert_eq!(parse_last_execution(&written), Some(id));
    }
});

/// Digits, by hand: no leading-zero, sign or overflow rules borrowed from `parse`.
fn reference(text: &str) -> Option<u64> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.bytes().try_fold(0u64, |value, digit| {
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}
