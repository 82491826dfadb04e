//! Calendar arithmetic shared by the metric tables: days since the epoch, UTC days and months
//! of microsecond timestamps. A leaf: it imports nothing from the metrics (the epoch-day
//! conversion itself is the crate's [`crate::days`]).

pub use crate::days::{epoch_days, from_epoch_days};

/// Microseconds per day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Microseconds per hour.
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// The UTC day (days since epoch) of a timestamp.
pub fn day_of(micros: i64) -> i32 {
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX)
}

/// The first day of the UTC month of a timestamp, as days since epoch.
pub fn month_of(micros: i64) -> i32 {
    month_of_day(day_of(micros))
}

/// The first day of the month of a day.
pub fn month_of_day(day: i32) -> i32 {
    use chrono::Datelike;
    let date = from_epoch_days(day);
    epoch_days(date.with_day(1).unwrap_or(date))
}

/// The first day of the month after `month`.
pub fn next_month(month: i32) -> i32 {
    use chrono::Datelike;
    let date = from_epoch_days(month);
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1).map_or(month + 31, epoch_days)
}
