//! How a run that ends as `failure` is retried: how many times, and after how long.

use std::time::Duration;

use servitor_shared::Retry;

/// More retries than this are a loop, not a retry policy.
pub const MAX_ATTEMPTS: u32 = 100;
/// The longest wait before a retry, given or grown by `backoff`: a retry later than
/// a day is not one.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);
/// A larger factor reaches `MAX_DELAY` within a retry or two anyway.
pub const MAX_BACKOFF: f64 = 100.0;
/// The wait when `delay` is not set: a retry at once mostly meets the same fault.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(10);

/// A job's checked `retry` setting; without one, no retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    attempts: u32,
    delay: Duration,
    backoff: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryError {
    #[error("retry.attempts must be at most {MAX_ATTEMPTS}, not {0}")]
    TooManyAttempts(u32),
    #[error("retry.delay {text:?} is not a duration like \"30s\" or \"5m\": {reason}")]
    BadDelay { text: String, reason: String },
    #[error("retry.delay must be at most 1day, not {0:?}")]
    DelayTooLong(String),
    #[error("retry.backoff must be a number from 1 to {MAX_BACKOFF}, not {0}")]
    BadBackoff(f64),
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::NONE
    }
}

impl RetryPolicy {
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 0,
        delay: DEFAULT_DELAY,
        backoff: 1.0,
    };

    /// Checks a job's merged `retry`: `attempts` defaults to 0 (so a folder may set
    /// only the delays), `delay` to 10 s, `backoff` to 1 (the same delay each time).
    pub fn from_settings(retry: Option<&Retry>) -> Result<RetryPolicy, RetryError> {
        let Some(retry) = retry else {
            return Ok(RetryPolicy::NONE);
        };
        let attempts = retry.attempts.unwrap_or(0);
        if attempts > MAX_ATTEMPTS {
            return Err(RetryError::TooManyAttempts(attempts));
        }
        let delay = match &retry.delay {
            Some(text) => {
                let delay = humantime::parse_duration(text).map_err(|e| RetryError::BadDelay {
                    text: text.clone(),
                    reason: e.to_string(),
                })?;
                if delay > MAX_DELAY {
                    return Err(RetryError::DelayTooLong(text.clone()));
                }
                delay
            }
            None => DEFAULT_DELAY,
        };
        let backoff = retry.backoff.unwrap_or(1.0);
        // Written this way round, NaN is refused too.
        if !(1.0..=MAX_BACKOFF).contains(&backoff) {
            return Err(RetryError::BadBackoff(backoff));
        }
        Ok(RetryPolicy {
            attempts,
            delay,
            backoff,
        })
    }

    /// How many retries may follow the first failure.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failure of the original run (`retries_done` 0) or of a retry (its
    /// number), the wait before the next retry; `None` when that failure is final.
    pub fn next_retry(&self, retries_done: u32) -> Option<Duration> {
        (retries_done < self.attempts).then(|| self.delay_before(retries_done + 1))
    }

    /// The wait before retry number `n` (1 is the first): `delay × backoff^(n-1)`,
    /// at most `MAX_DELAY`.
    pub fn delay_before(&self, n: u32) -> Duration {
        if self.delay.is_zero() {
            return Duration::ZERO;
        }
        let factor = self.backoff.powf(f64::from(n.saturating_sub(1)));
        // Infinite once large enough, never NaN (both are at least 1 and finite);
        // `try_from` refuses the infinite.
        Duration::try_from_secs_f64(self.delay.as_secs_f64() * factor)
            .map_or(MAX_DELAY, |delay| delay.min(MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<RetryPolicy, RetryError> {
        RetryPolicy::from_settings(Some(&serde_json::from_str(json).unwrap()))
    }

    #[test]
    fn no_retry_setting_no_retries() {
        let none = RetryPolicy::from_settings(None).unwrap();
        assert_eq!(none, RetryPolicy::NONE);
        assert_eq!(none.next_retry(0), None);
        // A folder's delays alone retry nothing until a job sets `attempts`.
        assert_eq!(policy(r#"{"delay": "1m"}"#).unwrap().next_retry(0), None);
    }

    #[test]
    fn delays_grow_by_backoff() {
        let doubling = policy(r#"{"attempts": 3, "delay": "30s", "backoff": 2}"#).unwrap();
        assert_eq!(doubling.attempts(), 3);
        let waits: Vec<_> = (0..5).map(|done| doubling.next_retry(done)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(waits, [secs(30), secs(60), secs(120), None, None]);
        assert_eq!(doubling.delay_before(0), Duration::from_secs(30));

        let fractional = policy(r#"{"attempts": 2, "delay": "10s", "backoff": 1.5}"#).unwrap();
        assert_eq!(fractional.delay_before(2), Duration::from_secs(15));
        let constant = policy(r#"{"attempts": 100}"#).unwrap();
        assert_eq!(constant.delay_before(100), DEFAULT_DELAY);
    }

    #[test]
    fn delays_are_capped_without_overflow() {
        let steep = policy(r#"{"attempts": 100, "delay": "1day", "backoff": 100}"#).unwrap();
        for n in [1, 2, 50, 100, u32::MAX] {
            assert_eq!(steep.delay_before(n), MAX_DELAY, "retry {n}");
        }
        let short = policy(r#"{"attempts": 100, "delay": "1ms", "backoff": 1.0001}"#).unwrap();
        assert_eq!(short.delay_before(u32::MAX), MAX_DELAY);
        assert!(short.delay_before(2) > Duration::from_millis(1));
        let immediate = policy(r#"{"attempts": 5, "delay": "0s", "backoff": 100}"#).unwrap();
        assert_eq!(immediate.delay_before(u32::MAX), Duration::ZERO);
        assert_eq!(immediate.next_retry(4), Some(Duration::ZERO));
    }

    #[test]
    fn bad_values_are_named() {
        let error = |json| policy(json).unwrap_err().to_string();
        assert_eq!(
            error(r#"{"attempts": 101}"#),
            "retry.attempts must be at most 100, not 101"
        );
        assert!(
            error(r#"{"delay": "soon"}"#).starts_with("retry.delay \"soon\" is not a duration")
        );
        assert_eq!(
            error(r#"{"delay": "2days"}"#),
            "retry.delay must be at most 1day, not \"2days\""
        );
        assert_eq!(
            error(r#"{"backoff": 0.5}"#),
            "retry.backoff must be a number from 1 to 100, not 0.5"
        );
        assert!(error(r#"{"backoff": -2}"#).contains("not -2"));
        assert!(error(r#"{"backoff": 1e300}"#).contains("from 1 to 100"));
        assert!(
            RetryPolicy::from_settings(Some(&Retry {
                backoff: Some(f64::NAN),
                ..Retry::default()
            }))
            .is_err()
        );
    }
}
