//! From the wall-clock times a cron expression matches to the instants it fires at,
//! across daylight-saving changes, as Vixie cron (Debian's cron) does:
//!
//! - When the clock jumps forward (spring), the skipped wall-clock times never happen.
//!   A fixed-time job whose time is skipped fires once, at the jump (`30 2 * * *` at
//!   03:00 in Madrid); an interval job just goes on at its next time after the jump
//!   (`*/15 * * * *`: 01:45 then 03:00, 15 real minutes apart).
//! - When the clock goes back (autumn), an hour of wall-clock times happens twice. A
//!   fixed-time job fires once, in the first pass; an interval job fires in both
//!   passes, so it keeps its pace in real time (`0 * * * *`: 02:00 summer time, 02:00
//!   winter time, 03:00, an hour apart each).
//!
//! croner's own zoned search does nearly this, but counts lists and ranges
//! (`0 9,17 * * *`) as interval jobs where cron counts them as fixed-time, so it would
//! skip a 02:30 of `30 2,14 * * *` in spring and run it twice in autumn. So croner is
//! asked for wall-clock (civil) matches only, and the instants are chosen here.

use croner::Cron;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::cron::Kind;

/// Bounds a walk over wall-clock matches. A walk goes past a match only inside a
/// skipped or repeated hour, and then jumps to its end, so no real zone comes near.
const MAX_MATCHES: usize = 100_000;

/// The first fire time strictly after `after`.
pub(super) fn next_after(
    cron: &Cron,
    kind: Kind,
    zone: &TimeZone,
    after: Timestamp,
) -> Option<Timestamp> {
    let wall = zone.to_datetime(after);
    let ahead = first_after(cron, kind, zone, after, wall, false);
    // `after` in the first pass of a repeated hour: an interval job's second pass
    // starts over from the hour's first wall-clock time, and may come sooner.
    let second_pass = match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Fold { before, .. }
            if kind == Kind::Interval && zone.to_offset(after) == before =>
        {
            transition_after(zone, after)
                .and_then(|turn| first_after(cron, kind, zone, after, zone.to_datetime(turn), true))
        }
        _ => None,
    };
    match (ahead, second_pass) {
        (Some(ahead), Some(second)) => Some(ahead.min(second)),
        (ahead, second) => ahead.or(second),
    }
}

/// The first instant after `after` among the wall-clock matches from `from` on
/// (`from` itself included when `inclusive`).
fn first_after(
    cron: &Cron,
    kind: Kind,
    zone: &TimeZone,
    after: Timestamp,
    mut from: DateTime,
    mut inclusive: bool,
) -> Option<Timestamp> {
    for _ in 0..MAX_MATCHES {
        let wall = cron.find_next_occurrence(&from, inclusive).ok()?;
        (from, inclusive) = (wall, false);
        match zone.to_ambiguous_timestamp(wall).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                let at = offset.to_timestamp(wall).ok()?;
                if at > after {
                    return Some(at);
                }
            }
            AmbiguousOffset::Gap { after: resumed, .. } => {
                // Read with the offset after the jump, a skipped time falls before it.
                let jump = transition_after(zone, resumed.to_timestamp(wall).ok()?)?;
                if kind == Kind::Fixed && jump > after {
                    return Some(jump);
                }
                // Later matches inside the gap would fire at the same jump: go on
                // from the first wall-clock time after it.
                (from, inclusive) = (resumed.to_datetime(jump), true);
            }
            AmbiguousOffset::Fold {
                before,
                after: repeated,
            } => {
                let first = before.to_timestamp(wall).ok()?;
                if first > after {
                    return Some(first);
                }
                match kind {
                    Kind::Interval => {
                        let second = repeated.to_timestamp(wall).ok()?;
                        if second > after {
                            return Some(second);
                        }
                    }
                    Kind::Fixed => {
                        // Fired in the first pass: go on from the end of the repeat.
                        let turn = transition_after(zone, first)?;
                        (from, inclusive) = (before.to_datetime(turn), true);
                    }
                }
            }
        }
    }
    None
}

/// The first offset change strictly after `at`.
fn transition_after(zone: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    zone.following(at).next().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::super::cron::Expression;
    use super::*;

    const MADRID: &str = "Europe/Madrid";

    /// The fire times of `text` in `zone` after `from` (a UTC instant) and up to
    /// `until`, as local times with their offsets.
    fn fires(text: &str, zone: &str, from: &str, until: &str) -> Vec<String> {
        let expression = Expression::parse(text).unwrap();
        let zone = TimeZone::get(zone).unwrap();
        let until: Timestamp = until.parse().unwrap();
        let mut at: Timestamp = from.parse().unwrap();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            match expression.next_after(&zone, at) {
                Some(next) if next <= until => {
                    assert!(next > at, "{text}: {next} is not after {at}");
                    seen.push(next.to_zoned(zone.clone()).strftime("%F %T%:z").to_string());
                    at = next;
                }
                _ => return seen,
            }
        }
        panic!("{text}: more than 1000 fire times");
    }

    // Madrid, 2026-03-29: at 02:00 (+01:00) the clock jumps to 03:00 (+02:00).
    const SPRING_FROM: &str = "2026-03-28T22:00:00Z";
    const SPRING_UNTIL: &str = "2026-03-30T06:00:00Z";
    // Madrid, 2026-10-25: at 03:00 (+02:00) the clock goes back to 02:00 (+01:00).
    const AUTUMN_FROM: &str = "2026-10-24T22:00:00Z";
    const AUTUMN_UNTIL: &str = "2026-10-26T06:00:00Z";

    #[test]
    fn a_skipped_time_fires_once_at_the_jump() {
        assert_eq!(
            fires("30 2 * * *", MADRID, SPRING_FROM, SPRING_UNTIL),
            ["2026-03-29 03:00:00+02:00", "2026-03-30 02:30:00+02:00"]
        );
        assert_eq!(
            fires("0 2 * * *", MADRID, SPRING_FROM, SPRING_UNTIL),
            ["2026-03-29 03:00:00+02:00", "2026-03-30 02:00:00+02:00"]
        );
        // Times just outside the gap are untouched.
        assert_eq!(
            fires("59 1 * * *", MADRID, SPRING_FROM, SPRING_UNTIL),
            ["2026-03-29 01:59:00+01:00", "2026-03-30 01:59:00+02:00"]
        );
        // A skipped time and the jump's own wall-clock time fire once, together.
        assert_eq!(
            fires(
                "15 30 2 * * *",
                MADRID,
                "2026-03-29T00:00:00Z",
                "2026-03-29T02:00:00Z"
            ),
            ["2026-03-29 03:00:00+02:00"]
        );
        assert_eq!(
            fires(
                "0 1-3 * * *",
                MADRID,
                "2026-03-28T23:30:00Z",
                "2026-03-29T22:00:00Z"
            ),
            ["2026-03-29 01:00:00+01:00", "2026-03-29 03:00:00+02:00"]
        );
    }

    #[test]
    fn a_repeated_time_fires_once() {
        assert_eq!(
            fires("30 2 * * *", MADRID, AUTUMN_FROM, AUTUMN_UNTIL),
            ["2026-10-25 02:30:00+02:00", "2026-10-26 02:30:00+01:00"]
        );
        // Asked from inside the second pass, it does not fire again that day.
        assert_eq!(
            fires("30 2 * * *", MADRID, "2026-10-25T01:10:00Z", AUTUMN_UNTIL),
            ["2026-10-26 02:30:00+01:00"]
        );
    }

    #[test]
    fn lists_and_ranges_are_fixed_times_as_in_cron() {
        // croner alone would skip the 02:30 in spring and fire it twice in autumn.
        assert_eq!(
            fires("30 2,14 * * *", MADRID, SPRING_FROM, "2026-03-29T22:00:00Z"),
            ["2026-03-29 03:00:00+02:00", "2026-03-29 14:30:00+02:00"]
        );
        assert_eq!(
            fires("30 2,14 * * *", MADRID, AUTUMN_FROM, "2026-10-25T22:00:00Z"),
            ["2026-10-25 02:30:00+02:00", "2026-10-25 14:30:00+01:00"]
        );
        assert_eq!(
            fires(
                "0 1-3 * * *",
                MADRID,
                "2026-10-24T22:30:00Z",
                "2026-10-25T22:00:00Z"
            ),
            [
                "2026-10-25 01:00:00+02:00",
                "2026-10-25 02:00:00+02:00",
                "2026-10-25 03:00:00+01:00"
            ]
        );
    }

    #[test]
    fn intervals_keep_their_pace_in_real_time() {
        assert_eq!(
            fires(
                "*/15 * * * *",
                MADRID,
                "2026-03-29T00:30:00Z",
                "2026-03-29T01:30:00Z"
            ),
            [
                "2026-03-29 01:45:00+01:00",
                "2026-03-29 03:00:00+02:00",
                "2026-03-29 03:15:00+02:00",
                "2026-03-29 03:30:00+02:00"
            ]
        );
        assert_eq!(
            fires(
                "*/15 * * * *",
                MADRID,
                "2026-10-24T23:40:00Z",
                "2026-10-25T02:00:00Z"
            ),
            [
                "2026-10-25 01:45:00+02:00",
                "2026-10-25 02:00:00+02:00",
                "2026-10-25 02:15:00+02:00",
                "2026-10-25 02:30:00+02:00",
                "2026-10-25 02:45:00+02:00",
                "2026-10-25 02:00:00+01:00",
                "2026-10-25 02:15:00+01:00",
                "2026-10-25 02:30:00+01:00",
                "2026-10-25 02:45:00+01:00",
                "2026-10-25 03:00:00+01:00"
            ]
        );
        for (from, until) in [
            ("2026-03-28T22:00:00Z", "2026-03-29T04:00:00Z"),
            ("2026-10-24T22:00:00Z", "2026-10-25T04:00:00Z"),
        ] {
            let quarters = fires("*/15 * * * *", MADRID, from, until);
            assert_eq!(quarters.len(), 6 * 4, "one every 15 real minutes");
            let hours = fires("@hourly", MADRID, from, until);
            assert_eq!(hours.len(), 6, "one every real hour: {hours:?}");
        }
        assert_eq!(
            fires(
                "0 * * * *",
                MADRID,
                "2026-10-24T23:30:00Z",
                "2026-10-25T02:00:00Z"
            ),
            [
                "2026-10-25 02:00:00+02:00",
                "2026-10-25 02:00:00+01:00",
                "2026-10-25 03:00:00+01:00"
            ]
        );
        assert_eq!(
            fires(
                "0 * * * *",
                MADRID,
                "2026-03-28T23:30:00Z",
                "2026-03-29T01:00:00Z"
            ),
            ["2026-03-29 01:00:00+01:00", "2026-03-29 03:00:00+02:00"]
        );
    }

    #[test]
    fn an_interval_inside_the_changed_hour_only() {
        // Its times are all skipped in spring, and all repeated in autumn.
        assert!(fires("*/20 2 * * *", MADRID, SPRING_FROM, "2026-03-29T22:00:00Z").is_empty());
        assert_eq!(
            fires("*/20 2 * * *", MADRID, AUTUMN_FROM, "2026-10-25T22:00:00Z"),
            [
                "2026-10-25 02:00:00+02:00",
                "2026-10-25 02:20:00+02:00",
                "2026-10-25 02:40:00+02:00",
                "2026-10-25 02:00:00+01:00",
                "2026-10-25 02:20:00+01:00",
                "2026-10-25 02:40:00+01:00"
            ]
        );
    }

    #[test]
    fn seconds_across_the_jump() {
        assert_eq!(
            fires(
                "*/20 * * * * *",
                MADRID,
                "2026-03-29T00:59:15Z",
                "2026-03-29T01:00:40Z"
            ),
            [
                "2026-03-29 01:59:20+01:00",
                "2026-03-29 01:59:40+01:00",
                "2026-03-29 03:00:00+02:00",
                "2026-03-29 03:00:20+02:00",
                "2026-03-29 03:00:40+02:00"
            ]
        );
    }

    #[test]
    fn a_half_hour_change() {
        // Lord Howe Island moves its clocks by 30 minutes: 02:00 becomes 02:30.
        assert_eq!(
            fires(
                "15 2 * * *",
                "Australia/Lord_Howe",
                "2026-10-03T12:00:00Z",
                "2026-10-05T12:00:00Z"
            ),
            ["2026-10-04 02:30:00+11:00", "2026-10-05 02:15:00+11:00"]
        );
    }

    #[test]
    fn zones_without_changes() {
        assert_eq!(
            fires(
                "0 0 * * *",
                "UTC",
                "2026-03-28T12:00:00Z",
                "2026-03-30T12:00:00Z"
            ),
            ["2026-03-29 00:00:00+00:00", "2026-03-30 00:00:00+00:00"]
        );
        // Half a second past a fire time, the next one is the next second's.
        let expression = Expression::parse("* * * * * *").unwrap();
        let at: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        assert_eq!(
            expression.next_after(&TimeZone::UTC, at),
            Some("2026-01-01T00:00:01Z".parse().unwrap())
        );
    }
}
