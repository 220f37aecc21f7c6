//! `input.json`, a run's input values. Properties: values that read are written as a
//! 2-space-indented JSON object with a trailing newline, which reads back to the same
//! values in the same order, and writing it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servitord::state_files::{format_input_values, parse_input_values};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(values) = parse_input_values(text) else {
        return;
    };
    let written = format_input_values(&values);
    assert!(
        written.starts_with('{') && written.ends_with("}\n"),
        "{written:?}"
    );
    let read = parse_input_values(&written).expect("written input values read back");
    // IndexMap's `==` ignores the order: compare the pairs.
    assert!(read.iter().eq(values.iter()), "{read:?} != {values:?}");
    assert_eq!(format_input_values(&read), written);
    // It is what the API answers too: an object of strings.
    let value: serde_json::Value = serde_json::from_str(&written).expect("JSON");
    let object = value.as_object().expect("an object");
    assert_eq!(object.len(), values.len());
    assert!(object.values().all(serde_json::Value::is_string));
});
