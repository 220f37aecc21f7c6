//! One cron expression. croner parses it and says which wall-clock times match;
//! `wall_clock` says which instants those are.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::ScheduleError;
use super::wall_clock;

/// The nicknames croner knows (it has no `@midnight`; `@reboot` means nothing here).
const NICKNAMES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// What a daylight-saving change does to a job, told apart as Vixie cron does: by
/// whether its time-of-day fields start with `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Values, lists or ranges only (`30 2 * * *`, `0 9,17 * * 1-5`): each time runs
    /// once a day, even when the clock skips or repeats it.
    Fixed,
    /// A `*` in the seconds, minute or hour field (`*/15 * * * *`, `0 * * * *`): runs
    /// at each of its wall-clock times that happens, so it keeps its pace in real time.
    Interval,
}

#[derive(Debug, Clone)]
pub(super) struct Expression {
    text: String,
    cron: Cron,
    kind: Kind,
}

impl Expression {
    /// Five fields, six with a leading seconds field, or a nickname such as `@daily`.
    pub(super) fn parse(text: &str) -> Result<Expression, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            expression: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.starts_with('@') {
            if !NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(trimmed)) {
                return Err(invalid(format!(
                    "the nicknames are {}",
                    NICKNAMES.join(", ")
                )));
            }
        } else {
            // croner also takes a seventh field, the year; cron has no such thing.
            let fields = trimmed.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(invalid(format!(
                    "it has {fields} fields, not 5 (minute hour day-of-month month day-of-week) or 6 (a seconds field first)"
                )));
            }
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(trimmed)
            .map_err(|e| invalid(e.to_string().trim_end_matches('.').to_owned()))?;
        // croner searches up to the year 5000 before giving up on a pattern that no
        // date matches (`0 0 30 2 *`): refuse it once here, not at every search. The
        // calendar repeats every 400 years, so any date that matches comes well before.
        if cron
            .find_next_occurrence(&DateTime::constant(2000, 1, 1, 0, 0, 0, 0), false)
            .is_err()
        {
            return Err(ScheduleError::NeverFires {
                expression: text.to_owned(),
            });
        }
        let pattern = &cron.pattern;
        let kind = if pattern.seconds.from_wildcard
            || pattern.minutes.from_wildcard
            || pattern.hours.from_wildcard
        {
            Kind::Interval
        } else {
            Kind::Fixed
        };
        Ok(Expression {
            text: text.to_owned(),
            cron,
            kind,
        })
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The first fire time strictly after `after`, in `zone`.
    pub(super) fn next_after(&self, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        wall_clock::next_after(&self.cron, self.kind, zone, after)
    }

    /// In words, by croner: "At 02:30", "Every 2 seconds", "At minute 0 past every hour".
    pub(super) fn describe(&self) -> String {
        let text = self.cron.describe();
        let text = text.trim_end_matches('.');
        match text.strip_prefix("At every ") {
            Some(rest) => format!("Every {rest}"),
            None => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Expression::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn five_or_six_fields_or_a_nickname() {
        for (text, kind) in [
            ("30 2 * * *", Kind::Fixed),
            ("0 9,17 * * 1-5", Kind::Fixed),
            ("0 30 2 * * *", Kind::Fixed),
            ("*/15 * * * *", Kind::Interval),
            ("0 * * * *", Kind::Interval),
            ("*/2 * * * * *", Kind::Interval),
            ("*/10 30 2 * * *", Kind::Interval),
            ("0 0 29 2 *", Kind::Fixed),
            ("@hourly", Kind::Interval),
            ("@daily", Kind::Fixed),
            ("@Weekly", Kind::Fixed),
            ("@monthly", Kind::Fixed),
            ("@yearly", Kind::Fixed),
            ("@annually", Kind::Fixed),
            (" 0 0 * * sun ", Kind::Fixed),
        ] {
            let expression = Expression::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(expression.kind(), kind, "{text}");
            assert_eq!(expression.text(), text);
        }
    }

    #[test]
    fn errors_name_the_expression() {
        assert_eq!(
            error("61 * * * *"),
            "schedule \"61 * * * *\" is not a cron expression: Component error: Number out of bounds"
        );
        assert!(error("* * * *").ends_with("it has 4 fields, not 5 (minute hour day-of-month month day-of-week) or 6 (a seconds field first)"));
        assert!(error("0 0 0 1 1 * 2030").contains("it has 7 fields"));
        assert!(error("").contains("it has 0 fields"));
        assert_eq!(
            error("@reboot"),
            "schedule \"@reboot\" is not a cron expression: the nicknames are @yearly, @annually, @monthly, @weekly, @daily, @hourly"
        );
        assert!(error("@midnight").contains("the nicknames are"));
        assert!(error("0/5 * * * *").contains("Invalid step syntax"));
        assert!(error("every day").contains("it has 2 fields"));
        assert!(error("a b c d e").contains("illegal"));
        assert_eq!(
            error("0 0 30 2 *"),
            "schedule \"0 0 30 2 *\" never fires: no date matches it"
        );
    }

    #[test]
    fn descriptions() {
        for (text, words) in [
            ("30 2 * * *", "At 02:30"),
            ("*/2 * * * * *", "Every 2 seconds"),
            ("0 * * * *", "At minute 0 past every hour"),
            ("*/15 * * * *", "Every 15 minutes"),
            (
                "30 9 * * 1-5",
                "At 09:30, on Monday, Tuesday, Wednesday, Thursday, and Friday",
            ),
            ("@monthly", "At 00:00, on day 1"),
        ] {
            assert_eq!(Expression::parse(text).unwrap().describe(), words);
        }
    }
}
