//! Query strings, as every route reads its parameters. The parser is checked against a
//! small reference written here from the rules (split on `&`, then on the first `=`;
//! `+` is a space; `%XX` is a byte, a stray `%` is itself; the result must be UTF-8; an
//! empty value counts as absent; at most 1000 parameters). Properties: both accept the
//! same queries; `get` answers the first non-empty value of a name; `with_prefix`
//! answers each prefixed name once, first value, in order; a refusal is a `400`.
#![no_main]

use std::collections::{HashMap, HashSet};

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use servitord::Params;

const MAX_PARAMS: usize = 1000;
const INPUT_PREFIX: &str = "input_value_";

fuzz_target!(|bytes: &[u8]| {
    let Ok(query) = std::str::from_utf8(bytes) else {
        return;
    };
    match (Params::parse(Some(query)), reference(query)) {
        (Ok(params), Some(pairs)) => check(&params, &pairs, query),
        (Err(error), None) => assert_eq!(error.into_response().status().as_u16(), 400),
        (parsed, expected) => panic!(
            "{query:?}: the parser {} it, the reference {}",
            if parsed.is_ok() { "accepts" } else { "refuses" },
            if expected.is_some() {
                "accepts"
            } else {
                "refuses"
            },
        ),
    }
});

fn check(params: &Params, pairs: &[(String, String)], query: &str) {
    // The first value of each name (hashed: the parser's own look-ups are linear).
    let mut first: HashMap<&str, &str> = HashMap::new();
    for (name, value) in pairs {
        first.entry(name).or_insert(value);
    }
    for (name, value) in &first {
        assert_eq!(params.get(name), Some(*value), "{query:?}: {name:?}");
        assert!(params.require(name).is_ok());
    }
    // Names given only with empty values are absent.
    let mut absent = HashSet::new();
    for part in query.split('&') {
        let name = decode(part.split_once('=').map_or(part, |(n, _)| n)).expect("decodes");
        if !first.contains_key(name.as_str()) && absent.insert(name.clone()) {
            assert_eq!(params.get(&name), None, "{query:?}: {name:?}");
            let Err(error) = params.require(&name) else {
                panic!("{query:?}: {name:?} is required and present");
            };
            assert_eq!(error.into_response().status().as_u16(), 400);
        }
    }
    for prefix in [INPUT_PREFIX, "", "a"] {
        let mut seen = HashSet::new();
        let expected: Vec<(&str, &str)> = pairs
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix(prefix)?, value.as_str())))
            .filter(|(key, _)| seen.insert(*key))
            .collect();
        let got: Vec<_> = params.with_prefix(prefix).collect();
        assert_eq!(got, expected, "{query:?}, prefix {prefix:?}");
    }
}

/// The decoded `(name, value)` pairs with a non-empty value, or `None` when the query
/// is refused.
fn reference(query: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    (pairs.len() <= MAX_PARAMS).then_some(pairs)
}

fn decode(text: &str) -> Option<String> {
    let hex = |b: &u8| char::from(*b).to_digit(16);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => decoded.push(b' '),
            b'%' => match (
                bytes.get(at + 1).and_then(hex),
                bytes.get(at + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    decoded.push(u8::try_from(high * 16 + low).expect("two hex digits"));
                    at += 3;
                    continue;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        at += 1;
    }
    String::from_utf8(decoded).ok()
}
