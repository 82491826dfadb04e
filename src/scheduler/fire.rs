//! When a job fires: cron expressions read as wall-clock times in the job's time zone.
//!
//! The cron crate steps through instants of whatever zone it is given; across a DST change
//! that can skip a fire whose local time does not exist or repeat one whose local time occurs
//! twice. So the schedule is evaluated on naive local times and each is mapped to one instant:
//! a time inside the spring-forward gap fires when the gap ends (02:30 → 03:00), a time that
//! occurs twice in the autumn fires only at its first occurrence. A nightly run therefore
//! happens exactly once per day either way.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A job's cron schedule in its time zone.
#[derive(Debug, Clone)]
pub struct FireSchedule {
    schedule: cron::Schedule,
    timezone: Tz,
    expr: String,
}

impl FireSchedule {
    /// Parse `expr` (5 or 6 cron fields) for `timezone`.
    pub fn new(expr: &str, timezone: Tz) -> Result<Self, String> {
        Ok(FireSchedule {
            schedule: crate::config::cron_schedule(expr)?,
            timezone,
            expr: expr.to_string(),
        })
    }

    /// The cron expression as written in the job file.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone the expression is read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire strictly after `after`, or `None` when the expression never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&self.timezone).naive_local();
        // The naive local times are stepped as if they were UTC: no gaps, no repeats. No
        // fire with a local time at or before `local_after` can lie after `after`: a repeated
        // time maps to its first occurrence and a time in a gap to the gap's end, both no
        // later than `after` itself.
        let start = Utc.from_utc_datetime(&local_after);
        self.schedule
            .after(&start)
            // Bounded: only the first fire whose first occurrence already passed is skipped.
            .take(10_000)
            .map(|naive| self.instant_of(naive.naive_utc()))
            .find(|instant| *instant > after)
    }

    /// The next `count` fires after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::with_capacity(count);
        let mut cursor = after;
        while fires.len() < count {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            fires.push(next);
            cursor = next;
        }
        fires
    }

    /// The instant a local wall-clock fire time stands for.
    fn instant_of(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            // The first occurrence; the second is the same wall-clock time and must not fire.
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                // Inside a gap: the first wall-clock minute that exists is the end of the gap.
                // Gaps are at most a few hours in every zone of the tz database.
                (1..=24 * 60)
                    .find_map(|m| {
                        self.timezone
                            .from_local_datetime(&(local + Duration::minutes(m)))
                            .earliest()
                    })
                    .map(|t| t.with_timezone(&Utc))
                    // Unreachable with tz data; reading the time as UTC still fires once.
                    .unwrap_or_else(|| Utc.from_utc_datetime(&local))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid RFC 3339")
            .with_timezone(&Utc)
    }

    fn berlin(expr: &str) -> FireSchedule {
        FireSchedule::new(expr, chrono_tz::Europe::Berlin).expect("valid cron")
    }

    #[test]
    fn nightly_at_three_stays_at_three_local_across_both_changes() {
        let s = berlin("0 3 * * *");
        assert_eq!(
            s.upcoming(utc("2026-03-27T12:00:00Z"), 4),
            vec![
                utc("2026-03-28T02:00:00Z"), // 03:00 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST, the day of the change
                utc("2026-03-30T01:00:00Z"),
                utc("2026-03-31T01:00:00Z"),
            ]
        );
        assert_eq!(
            s.upcoming(utc("2026-10-23T12:00:00Z"), 4),
            vec![
                utc("2026-10-24T01:00:00Z"), // 03:00 CEST
                utc("2026-10-25T02:00:00Z"), // 03:00 CET, the day of the change
                utc("2026-10-26T02:00:00Z"),
                utc("2026-10-27T02:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_once_when_the_gap_ends() {
        let s = berlin("30 2 * * *");
        assert_eq!(
            s.upcoming(utc("2026-03-27T12:00:00Z"), 3),
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 02:30 does not exist: 03:00 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
            ]
        );
    }

    #[test]
    fn a_time_repeated_in_the_autumn_fires_once() {
        let s = berlin("30 2 * * *");
        assert_eq!(
            s.upcoming(utc("2026-10-23T12:00:00Z"), 3),
            vec![
                utc("2026-10-24T00:30:00Z"), // 02:30 CEST
                utc("2026-10-25T00:30:00Z"), // first 02:30 (CEST); 01:30Z is the same wall time
                utc("2026-10-26T01:30:00Z"), // 02:30 CET
            ]
        );
        // Asked from inside the repeated hour, the repeat is not a fire either.
        assert_eq!(
            s.next_after(utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn hourly_schedules_neither_skip_nor_double_wall_clock_hours() {
        let s = berlin("0 * * * *");
        let spring = s.upcoming(utc("2026-03-28T23:30:00Z"), 4);
        // 01:00 CET, then 02:00 (missing) fires at 03:00 CEST together with 03:00: once.
        assert_eq!(
            spring,
            vec![
                utc("2026-03-29T00:00:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-29T02:00:00Z"),
                utc("2026-03-29T03:00:00Z"),
            ]
        );
        let autumn = s.upcoming(utc("2026-10-24T23:30:00Z"), 3);
        assert_eq!(
            autumn,
            vec![
                utc("2026-10-25T00:00:00Z"), // 02:00 CEST
                utc("2026-10-25T02:00:00Z"), // 03:00 CET; the repeated 02:00 CET is skipped
                utc("2026-10-25T03:00:00Z"),
            ]
        );
    }

    #[test]
    fn utc_schedules_and_six_fields() {
        let s = FireSchedule::new("15 0 6 * * *", chrono_tz::UTC).expect("valid");
        assert_eq!(
            s.next_after(utc("2026-11-25T06:00:15Z")),
            Some(utc("2026-11-26T06:00:15Z"))
        );
        assert!(FireSchedule::new("nope", chrono_tz::UTC).is_err());
    }
}
