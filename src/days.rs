//! Days since 1970-01-01: how every Arrow `Date32` column (and the metrics' day and month
//! keys) counts a date. The one conversion between a calendar date and that count, for the
//! sources that decode dates, the sink that reads partition folders back, the metrics and
//! the report. A leaf: it imports nothing from the crate.

use chrono::NaiveDate;

/// 1970-01-01, day 0.
pub const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

/// Days since 1970-01-01 of `date`. Every date chrono can hold (±262 000 years) fits.
pub fn epoch_days(date: NaiveDate) -> i32 {
    i32::try_from((date - EPOCH).num_days()).unwrap_or(i32::MAX)
}

/// The date `days` after 1970-01-01; `None` past the dates chrono can hold (a `Date32`
/// value can count further).
pub fn checked_from_epoch_days(days: i32) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// The date `days` after 1970-01-01, held to the dates chrono can hold.
pub fn from_epoch_days(days: i32) -> NaiveDate {
    checked_from_epoch_days(days).unwrap_or(if days < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_day_counts_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(epoch_days(EPOCH), 0);
        assert_eq!(epoch_days(day), 20_778);
        assert_eq!(from_epoch_days(20_778), day);
        assert_eq!(
            checked_from_epoch_days(-1),
            NaiveDate::from_ymd_opt(1969, 12, 31)
        );
        assert_eq!(checked_from_epoch_days(i32::MAX), None);
        assert_eq!(from_epoch_days(i32::MAX), NaiveDate::MAX);
    }
}
