//! Timestamps as the state files write them.

use std::time::SystemTime;

/// Now, in the state files' format: ISO-8601 UTC with microseconds and an explicit
/// offset, e.g. `2024-03-17T00:59:08.123456+00:00` (what Python's `isoformat()` gives).
pub fn now() -> String {
    format(SystemTime::now())
}

pub fn format(time: SystemTime) -> String {
    let zulu = humantime::format_rfc3339_micros(time).to_string();
    let base = zulu.strip_suffix('Z').unwrap_or(&zulu);
    format!("{base}+00:00")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_like_python_isoformat() {
        let t = UNIX_EPOCH + Duration::from_micros(1_710_637_148_123_456);
        assert_eq!(super::format(t), "2024-03-17T00:59:08.123456+00:00");
        assert_eq!(
            super::format(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000+00:00"
        );
    }
}
