//! Operating-system errors as people read them.

/// The OS's words for an error (`No such file or directory`), without the
/// ` (os error 2)` that Rust appends: what the old tool recorded, and what a person can
/// act on.
pub fn error_text(error: &dyn std::error::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn drops_the_error_number() {
        let missing = std::io::Error::from_raw_os_error(2);
        assert_eq!(super::error_text(&missing), "No such file or directory");
        let custom = std::io::Error::other("cannot open the log");
        assert_eq!(super::error_text(&custom), "cannot open the log");
    }
}
