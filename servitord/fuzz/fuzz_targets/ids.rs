//! Job and execution ids, the only request values that reach file paths.
//! Properties: execution ids accepted are exactly the canonical positive decimals (the
//! text is the number's own decimal form), and every positive u64 is accepted; job ids
//! accepted are exactly those of the documented shape, and such an id joined to a
//! folder stays inside it, one normal path component per segment.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use servitord::ids::{check_job_id, parse_execution_id};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        execution_id(text);
        job_id(text);
    }
    if let Some((number, _)) = bytes.split_first_chunk::<8>() {
        let id = u64::from_le_bytes(*number).max(1);
        assert_eq!(parse_execution_id(&id.to_string()), Ok(id));
    }
});

fn execution_id(text: &str) {
    match parse_execution_id(text) {
        Ok(id) => {
            assert!(id >= 1);
            assert_eq!(id.to_string(), text);
        }
        Err(error) => {
            let canonical = text
                .parse::<u64>()
                .is_ok_and(|n| n >= 1 && n.to_string() == text);
            assert!(!canonical, "{text:?} refused");
            let message = error.to_string();
            assert!(message.starts_with("execution_id must be"), "{message}");
        }
    }
}

fn job_id(text: &str) {
    let shaped = !text.is_empty()
        && text.len() <= 4096
        && !text.contains('\0')
        && text.split('/').all(|segment| {
            !segment.is_empty() && !segment.starts_with('.') && segment.len() <= 255
        });
    assert_eq!(check_job_id(text).is_ok(), shaped, "{text:?}");
    if !shaped {
        return;
    }
    let components: Vec<_> = Path::new(text).components().collect();
    assert!(
        components.iter().all(|c| matches!(c, Component::Normal(_))),
        "{text:?}: {components:?}"
    );
    assert_eq!(components.len(), text.split('/').count(), "{text:?}");
    let base = Path::new("/srv/servitor/state/jobs");
    let joined = base.join(text);
    assert!(joined.starts_with(base));
    assert_eq!(
        joined.components().count(),
        base.components().count() + components.len()
    );
}
