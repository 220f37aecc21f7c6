//! Validation of the ids that reach file paths: a job id must be a canonical relative
//! path of visible names, an execution id a positive decimal number.

/// Longest job id accepted, in bytes (Linux's PATH_MAX).
const MAX_JOB_ID_LEN: usize = 4096;
/// Longest name of one path segment (Linux's NAME_MAX).
const MAX_SEGMENT_LEN: usize = 255;

/// Checks that `id` is shaped like a job id: `/`-separated names, none of them empty,
/// `.`, `..` or hidden (starting with `.`), without NUL. Only such ids are ever joined
/// to a folder; whether the job exists is the catalog's business.
pub fn check_job_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a job id cannot be empty".into());
    }
    if id.len() > MAX_JOB_ID_LEN {
        return Err(format!("a job id is at most {MAX_JOB_ID_LEN} bytes long"));
    }
    if id.contains('\0') {
        return Err("a job id cannot contain NUL".into());
    }
    for segment in id.split('/') {
        if segment.is_empty() {
            return Err("a job id is a path relative to config/jobs, without empty segments (no leading, trailing or double '/')".into());
        }
        if segment.starts_with('.') {
            return Err("a job id has no '.', '..' or hidden (dot) segments".into());
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(format!(
                "a job id's names are at most {MAX_SEGMENT_LEN} bytes long"
            ));
        }
    }
    Ok(())
}

/// Parses an execution id: a positive decimal number in canonical form (no sign,
/// no leading zeros, no spaces).
pub fn parse_execution_id(text: &str) -> Result<u64, String> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    match text.parse::<u64>() {
        Ok(id) if canonical => Ok(id),
        _ => Err(format!(
            "execution_id must be a positive decimal number, not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids() {
        for good in [
            "a",
            "testing/deep/hello",
            "with space",
            "ünï/cödé",
            "a&b#c%d",
            "x.sh",
        ] {
            assert!(check_job_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/",
            "a//b",
            "a/./b",
            "a/../b",
            "..",
            ".",
            ".hidden",
            "a/.b",
            "../../../../usr/bin/id",
            "a\0b",
        ] {
            assert!(check_job_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_job_id(&"a".repeat(256)).is_err());
        assert!(check_job_id(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn execution_ids() {
        assert_eq!(parse_execution_id("1"), Ok(1));
        assert_eq!(parse_execution_id("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "0",
            "007",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "../../x",
            "18446744073709551616",
            "１",
        ] {
            assert!(parse_execution_id(bad).is_err(), "{bad:?}");
        }
    }
}
