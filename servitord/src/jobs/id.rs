//! The ids that reach file paths, validated once where they enter: a [`JobId`] is a
//! canonical relative path of visible names, an execution id a positive decimal
//! number, and a [`RunId`] names one execution of one job. Holding one means it was
//! checked, in every build, so joining it to a folder is safe.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Longest job id accepted, in bytes (Linux's PATH_MAX).
const MAX_JOB_ID_LEN: usize = 4096;
/// Longest name of one path segment (Linux's NAME_MAX).
const MAX_SEGMENT_LEN: usize = 255;

/// Why a text is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a job id cannot be empty")]
    EmptyJob,
    #[error("a job id is at most {MAX_JOB_ID_LEN} bytes long")]
    JobTooLong,
    #[error("a job id cannot contain NUL")]
    Nul,
    #[error(
        "a job id is a path relative to config/jobs, without empty segments (no leading, trailing or double '/')"
    )]
    EmptySegment,
    #[error("a job id has no '.', '..' or hidden (dot) segments")]
    HiddenSegment,
    #[error("a job id's names are at most {MAX_SEGMENT_LEN} bytes long")]
    SegmentTooLong,
    #[error("execution_id must be a positive decimal number, not {0:?}")]
    Execution(String),
}

/// Checks that `id` is shaped like a job id: `/`-separated names, none of them empty,
/// `.`, `..` or hidden (starting with `.`), without NUL. Whether the job exists is the
/// catalog's business.
pub fn check_job_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::EmptyJob);
    }
    if id.len() > MAX_JOB_ID_LEN {
        return Err(IdError::JobTooLong);
    }
    if id.contains('\0') {
        return Err(IdError::Nul);
    }
    for segment in id.split('/') {
        if segment.is_empty() {
            return Err(IdError::EmptySegment);
        }
        if segment.starts_with('.') {
            return Err(IdError::HiddenSegment);
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(IdError::SegmentTooLong);
        }
    }
    Ok(())
}

/// Parses an execution id: a positive decimal number in canonical form (no sign,
/// no leading zeros, no spaces).
pub fn parse_execution_id(text: &str) -> Result<u64, IdError> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    match text.parse::<u64>() {
        Ok(id) if canonical => Ok(id),
        _ => Err(IdError::Execution(text.to_owned())),
    }
}

/// A job id that passed [`check_job_id`]; cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Arc<str>);

impl JobId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        check_job_id(text)?;
        Ok(Self(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for JobId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One execution of one job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    pub job: JobId,
    pub execution: u64,
}

impl RunId {
    pub fn new(job: JobId, execution: u64) -> Self {
        Self { job, execution }
    }
}

/// `backup/nightly #42`, as people and the log read it.
impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.job, self.execution)
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
            assert_eq!(
                JobId::parse(good).map(|id| id.to_string()).as_deref(),
                Ok(good)
            );
        }
        for (bad, why) in [
            ("", IdError::EmptyJob),
            ("/etc/passwd", IdError::EmptySegment),
            ("a/", IdError::EmptySegment),
            ("a//b", IdError::EmptySegment),
            ("a/./b", IdError::HiddenSegment),
            ("a/../b", IdError::HiddenSegment),
            ("..", IdError::HiddenSegment),
            (".", IdError::HiddenSegment),
            (".hidden", IdError::HiddenSegment),
            ("a/.b", IdError::HiddenSegment),
            ("../../../../usr/bin/id", IdError::HiddenSegment),
            ("a\0b", IdError::Nul),
        ] {
            assert_eq!(JobId::parse(bad), Err(why), "{bad:?}");
        }
        assert_eq!(JobId::parse(&"a".repeat(256)), Err(IdError::SegmentTooLong));
        assert_eq!(JobId::parse(&"a/".repeat(3000)), Err(IdError::JobTooLong));
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
        assert_eq!(
            parse_execution_id("x").unwrap_err().to_string(),
            "execution_id must be a positive decimal number, not \"x\""
        );
    }

    #[test]
    fn runs_read_as_people_write_them() {
        let run = RunId::new(JobId::parse("backup/nightly").unwrap(), 42);
        assert_eq!(run.to_string(), "backup/nightly #42");
    }
}
