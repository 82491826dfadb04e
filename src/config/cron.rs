//! Cron expressions as people write them in crontab: five fields (`min hour day month
//! weekday`, weekday 0–7 with 0 and 7 both Sunday) or six with seconds first.
//!
//! Each field is checked here, so a mistake is reported in the user's own fields and ranges
//! ("field 2 (hour) `25` is outside 0–23"), not in the `cron` crate's seven-field form.
//! The crate numbers weekdays 1–7 from Sunday, so a crontab `1` (Monday) would silently mean
//! Sunday: the fields are handed to it as explicit lists, weekdays by name. A schedule that
//! can never fire (`0 3 31 2 *`) is refused too, and so is one restricting both the day of
//! month and the weekday (crontab ORs them, the crate ANDs them).

use std::collections::BTreeSet;

/// One cron field: its name, range and, for months and weekdays, the accepted names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Three-letter names, the first meaning `min` (weekdays: `SUN` = 0).
    names: &'static [&'static str],
    /// Accepts `?` as "any" (day of month and weekday, as Quartz writes them).
    question_mark: bool,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    question_mark: false,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    question_mark: false,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    question_mark: false,
};
const DAY: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    question_mark: true,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    question_mark: false,
};
/// 7 is accepted as Sunday, as in crontab; [`WEEKDAY_NAMES`] has the seven days.
const WEEKDAY: Field = Field {
    name: "weekday",
    min: 0,
    max: 7,
    names: &WEEKDAY_NAMES,
    question_mark: true,
};
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What a field allows: everything, or these values.
enum Values {
    Any,
    Some(BTreeSet<u32>),
}

/// Parse a cron expression: standard 5 fields (minute first) or 6 with seconds. Errors name
/// the user's field and its valid range.
pub fn cron_schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let specs: &[Field] = match fields.len() {
        5 => &[MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        6 => &[SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        n => {
            return Err(format!(
                "`{expr}` has {n} fields; expected 5 (minute hour day-of-month month weekday), \
                 or 6 with seconds first"
            ));
        }
    };
    let mut parts = Vec::with_capacity(7);
    if fields.len() == 5 {
        parts.push("0".to_string());
    }
    let mut restricted = Vec::new();
    for (position, (text, spec)) in fields.iter().zip(specs).enumerate() {
        let values = parse_field(text, spec).map_err(|problem| {
            format!(
                "`{expr}`: field {} ({}) `{text}` {problem}",
                position + 1,
                spec.name
            )
        })?;
        if matches!(values, Values::Some(_)) {
            restricted.push(spec.name);
        }
        parts.push(crate_field(&values, spec));
    }
    // crontab fires when the day of month OR the weekday matches; the `cron` crate only
    // when both do. Rather than fire on other days than the user expects, refuse the mix.
    if restricted.contains(&DAY.name) && restricted.contains(&WEEKDAY.name) {
        return Err(format!(
            "`{expr}` restricts both the day of month and the weekday; crontab would fire when \
             either matches, so this is ambiguous: set one of them to `*`"
        ));
    }
    let full = parts.join(" ");
    let schedule = full
        .parse::<cron::Schedule>()
        .map_err(|e| format!("`{expr}` is not a valid cron expression: {e}"))?;
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!(
            "`{expr}` never fires: no date has that day of month in those months"
        ));
    }
    Ok(schedule)
}

/// The field as the `cron` crate reads it: `*` or an explicit list (weekdays by name).
fn crate_field(values: &Values, spec: &Field) -> String {
    match values {
        Values::Any => "*".to_string(),
        Values::Some(set) if spec.name == WEEKDAY.name => {
            let days: BTreeSet<u32> = set.iter().map(|d| d % 7).collect();
            days.iter()
                .map(|&d| WEEKDAY_NAMES[d as usize])
                .collect::<Vec<_>>()
                .join(",")
        }
        Values::Some(set) => set.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
    }
}

/// `*`, `?`, `N`, `A-B`, any of those with `/STEP`, comma-separated; names for months and
/// weekdays. `Err` says what is wrong with the field, for a message that names it.
fn parse_field(text: &str, spec: &Field) -> Result<Values, String> {
    let range = || format!("{}–{}", spec.min, spec.max);
    let named = if spec.names.is_empty() {
        String::new()
    } else {
        format!(" or {}–{}", spec.names[0], spec.names[spec.names.len() - 1])
    };
    if text == "*" || (spec.question_mark && text == "?") {
        return Ok(Values::Any);
    }
    let mut set = BTreeSet::new();
    for item in text.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
                    format!("has step `/{step}`; a step is a whole number from 1")
                })?;
                (base, Some(step))
            }
            None => (item, None),
        };
        let value = |v: &str| -> Result<u32, String> {
            let parsed = v.parse::<u32>().ok().or_else(|| {
                spec.names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(v))
                    .map(|i| spec.min + i as u32)
            });
            match parsed {
                Some(n) if (spec.min..=spec.max).contains(&n) => Ok(n),
                Some(_) if v == text => Err(format!("is outside {}{named}", range())),
                Some(n) => Err(format!("has `{n}`, outside {}{named}", range())),
                None if v.is_empty() => Err(format!("has an empty part; use {}{named}", range())),
                None => Err(format!("has `{v}`, not a value in {}{named}", range())),
            }
        };
        let (low, high) = if base == "*" || (spec.question_mark && base == "?") {
            (spec.min, spec.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("has the range `{base}`, which runs backwards"));
            }
            (a, b)
        } else {
            let a = value(base)?;
            // `5/15` means from 5 to the end in steps of 15, as in crontab.
            (a, if step.is_some() { spec.max } else { a })
        };
        set.extend((low..=high).step_by(step.unwrap_or(1) as usize));
    }
    Ok(Values::Some(set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn next(expr: &str) -> chrono::DateTime<chrono::Utc> {
        let start = chrono::Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
        cron_schedule(expr).unwrap().after(&start).next().unwrap()
    }

    #[test]
    fn cron_accepts_five_and_six_fields() {
        assert!(cron_schedule("0 3 * * *").is_ok());
        assert!(cron_schedule("0 0 3 * * *").is_ok());
        assert!(cron_schedule("*/15 9-17 * JAN-MAR mon-fri").is_ok());
        assert!(cron_schedule("0 3 * *").is_err());
        assert!(cron_schedule("61 3 * * *").is_err());
    }

    #[test]
    fn errors_name_the_users_field_and_its_range() {
        let e = cron_schedule("61 3 * * *").unwrap_err();
        assert!(e.starts_with("`61 3 * * *`: field 1 (minute) `61`"), "{e}");
        assert!(e.contains("0–59"), "{e}");
        let e = cron_schedule("0 25 * * *").unwrap_err();
        assert!(
            e.contains("field 2 (hour) `25`") && e.contains("0–23"),
            "{e}"
        );
        let e = cron_schedule("0 3 * 13 *").unwrap_err();
        assert!(
            e.contains("field 4 (month)") && e.contains("JAN–DEC"),
            "{e}"
        );
        let e = cron_schedule("0 3 * * 8").unwrap_err();
        assert!(e.contains("field 5 (weekday)") && e.contains("0–7"), "{e}");
        let e = cron_schedule("0 5-2 * * *").unwrap_err();
        assert!(e.contains("runs backwards"), "{e}");
        let e = cron_schedule("0 0 3 * * * 2027").unwrap_err();
        assert!(e.contains("has 7 fields"), "{e}");
        let e = cron_schedule("0 3 31 2 *").unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        let e = cron_schedule("0 3 1 * MON").unwrap_err();
        assert!(e.contains("both the day of month and the weekday"), "{e}");
    }

    #[test]
    fn weekdays_count_from_sunday_zero_as_in_crontab() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(next("0 3 * * 1").weekday(), Weekday::Mon);
        assert_eq!(next("0 3 * * 0").weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 7").weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 5-7").weekday(), Weekday::Fri);
        assert_eq!(next("0 3 * * sat").weekday(), Weekday::Sat);
        let every_quarter = next("5/15 3 * * *");
        assert_eq!((every_quarter.hour(), every_quarter.minute()), (3, 5));
    }
}
