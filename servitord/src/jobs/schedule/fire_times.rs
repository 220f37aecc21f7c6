//! A job's schedule: its cron expressions in its time zone, when it fires next, and
//! what a restart does about the fire times it missed.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use servitor_shared::{CatchUp, JobSettings};

use super::ScheduleError;
use super::cron::Expression;

/// Bounds the walk from the earliest missed fire time to the latest (see `missed`).
const MAX_MISSED_WALK: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Schedule {
    expressions: Vec<Expression>,
    zone: TimeZone,
    catch_up: CatchUp,
}

impl Schedule {
    /// The schedule of a job's merged settings: `None` when it has none (or `[]`).
    /// A `timezone` is checked even then, as any other bad value would be.
    pub fn from_settings(settings: &JobSettings) -> Result<Option<Schedule>, ScheduleError> {
        let zone = zone(settings.timezone.as_deref())?;
        let expressions = match &settings.schedule {
            Some(schedule) if !schedule.expressions().is_empty() => schedule.expressions(),
            _ => return Ok(None),
        };
        Ok(Some(Schedule {
            expressions: expressions
                .iter()
                .map(|text| Expression::parse(text))
                .collect::<Result<_, _>>()?,
            zone,
            catch_up: settings.catch_up.unwrap_or_default(),
        }))
    }

    /// The first fire time strictly after `after`, the earliest of all expressions';
    /// `None` when none fires again (before the year 5000).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.expressions
            .iter()
            .filter_map(|expression| expression.next_after(&self.zone, after))
            .min()
    }

    /// The latest fire time after `last_fire` and not after `now`: one was missed.
    pub fn missed(&self, last_fire: Timestamp, now: Timestamp) -> Option<Timestamp> {
        // Walking every missed time could take long (a job every second, down for a
        // month): look back from `now` over doubling spans instead. The first span
        // with a fire time in it holds few, as the half before it held none.
        let mut span = SignedDuration::from_secs(1);
        loop {
            let from = now
                .checked_sub(span)
                .map_or(last_fire, |from| from.max(last_fire));
            if let Some(first) = self.next_after(from).filter(|&t| t <= now) {
                let mut latest = first;
                for _ in 0..MAX_MISSED_WALK {
                    match self.next_after(latest) {
                        Some(next) if next <= now => latest = next,
                        _ => break,
                    }
                }
                return Some(latest);
            }
            if from <= last_fire {
                return None;
            }
            span = span.checked_mul(2)?;
        }
    }

    /// The fire time a start makes up for at once, after the daemon was down since
    /// `last_fire`: with `catch_up: once`, the latest one missed.
    pub fn catch_up(&self, last_fire: Timestamp, now: Timestamp) -> Option<Timestamp> {
        match self.catch_up {
            CatchUp::Skip => None,
            CatchUp::Once => self.missed(last_fire, now),
        }
    }

    pub fn catch_up_policy(&self) -> CatchUp {
        self.catch_up
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The IANA name of the zone, for people; "local" for a system zone without one.
    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("local")
    }

    pub fn expressions(&self) -> impl Iterator<Item = &str> {
        self.expressions.iter().map(|expression| expression.text())
    }

    /// In words, one expression after the other: "At 02:30; Every 15 minutes".
    pub fn describe(&self) -> String {
        let words: Vec<String> = self.expressions.iter().map(Expression::describe).collect();
        words.join("; ")
    }
}

/// Two schedules are the same when they fire at the same times and catch up alike.
impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.zone == other.zone
            && self.catch_up == other.catch_up
            && self.expressions().eq(other.expressions())
    }
}

/// The named zone, or the daemon's own (jiff's system zone: `TZ`, else
/// `/etc/localtime`).
fn zone(name: Option<&str>) -> Result<TimeZone, ScheduleError> {
    match name {
        Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::UnknownTimezone {
            name: name.to_owned(),
        }),
        None => Ok(TimeZone::system()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(json: &str) -> Schedule {
        Schedule::from_settings(&serde_json::from_str(json).unwrap())
            .unwrap()
            .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn settings() {
        let parse = |json: &str| Schedule::from_settings(&serde_json::from_str(json).unwrap());
        assert_eq!(parse("{}"), Ok(None));
        assert_eq!(parse(r#"{"schedule": []}"#), Ok(None));
        assert_eq!(
            parse(r#"{"timezone": "Mars/Olympus"}"#),
            Err(ScheduleError::UnknownTimezone {
                name: "Mars/Olympus".into()
            })
        );
        assert_eq!(
            parse(r#"{"schedule": ["@daily", "61 * * * *"]}"#)
                .unwrap_err()
                .to_string(),
            "schedule \"61 * * * *\" is not a cron expression: Component error: Number out of bounds"
        );
        let nightly = schedule(r#"{"schedule": "30 2 * * *", "timezone": "Europe/Madrid"}"#);
        assert_eq!(nightly.zone_name(), "Europe/Madrid");
        assert_eq!(nightly.catch_up_policy(), CatchUp::Skip);
        assert_eq!(nightly.describe(), "At 02:30");
        assert_eq!(nightly.expressions().collect::<Vec<_>>(), ["30 2 * * *"]);
        assert_eq!(
            nightly,
            schedule(r#"{"schedule": ["30 2 * * *"], "timezone": "Europe/Madrid"}"#)
        );
        assert_ne!(
            nightly,
            schedule(r#"{"schedule": "30 2 * * *", "timezone": "UTC"}"#)
        );
    }

    #[test]
    fn the_daemon_zone_is_the_default() {
        let local = schedule(r#"{"schedule": "@daily"}"#);
        assert_eq!(local.zone(), &TimeZone::system());
    }

    #[test]
    fn the_earliest_of_several_expressions_and_never_the_same_time_twice() {
        let schedule = schedule(
            r#"{"schedule": ["0 9 * * *", "30 8 * * *", "0 9 * * 1-5"], "timezone": "UTC"}"#,
        );
        assert_eq!(
            schedule.describe(),
            "At 09:00; At 08:30; At 09:00, on Monday, Tuesday, Wednesday, Thursday, and Friday"
        );
        let mut times = Vec::new();
        let mut after = at("2026-06-01T00:00:00Z"); // a Monday
        for _ in 0..4 {
            after = schedule.next_after(after).unwrap();
            times.push(after.to_string());
        }
        assert_eq!(
            times,
            [
                "2026-06-01T08:30:00Z",
                "2026-06-01T09:00:00Z",
                "2026-06-02T08:30:00Z",
                "2026-06-02T09:00:00Z"
            ]
        );
    }

    #[test]
    fn catch_up_after_a_restart() {
        let every_ten = r#"{"schedule": "*/10 * * * *", "timezone": "UTC""#;
        let skip = schedule(&format!("{every_ten}}}"));
        let once = schedule(&format!(r#"{every_ten}, "catch_up": "once"}}"#));
        let last = at("2026-06-01T10:00:00Z");

        // Down across 10:10 to 10:40: the latest missed is 10:40, made up once.
        let now = at("2026-06-01T10:45:00Z");
        assert_eq!(skip.missed(last, now), Some(at("2026-06-01T10:40:00Z")));
        assert_eq!(skip.catch_up(last, now), None);
        assert_eq!(once.catch_up(last, now), Some(at("2026-06-01T10:40:00Z")));
        assert_eq!(once.next_after(now), Some(at("2026-06-01T10:50:00Z")));
        // A fire time exactly at `now` counts as missed.
        assert_eq!(
            once.catch_up(last, at("2026-06-01T10:10:00Z")),
            Some(at("2026-06-01T10:10:00Z"))
        );
        // Back before the next fire time: nothing missed.
        assert_eq!(once.catch_up(last, at("2026-06-01T10:09:59Z")), None);
        // The clock went back across the restart: nothing missed either.
        assert_eq!(once.catch_up(last, at("2026-06-01T09:00:00Z")), None);

        // Down a year, with a job every second: found without walking every second.
        let every_second =
            schedule(r#"{"schedule": "* * * * * *", "timezone": "UTC", "catch_up": "once"}"#);
        assert_eq!(
            every_second.catch_up(at("2025-06-01T10:00:00Z"), at("2026-06-01T10:00:00.5Z")),
            Some(at("2026-06-01T10:00:00Z"))
        );
        // And a yearly one missed long ago.
        let yearly = schedule(r#"{"schedule": "@yearly", "timezone": "UTC", "catch_up": "once"}"#);
        assert_eq!(
            yearly.catch_up(at("2020-06-01T10:00:00Z"), at("2026-06-01T10:00:00Z")),
            Some(at("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            yearly.catch_up(at("2026-01-01T00:00:00Z"), at("2026-06-01T10:00:00Z")),
            None
        );
    }
}
