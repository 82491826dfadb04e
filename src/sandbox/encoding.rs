//! Text encodings the sandbox serves: base64url for opaque paging cursors, and UTC
//! timestamps/dates from integer epoch values (infallible, no `Option` in request paths),
//! costs as the decimal text Meta and LinkedIn send, and Salesforce's 18-character ids.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url (RFC 4648 §5) with `=` padding.
pub(crate) fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Inverse of [`base64url_encode`]; `None` for anything that is not canonical padded
/// base64url.
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (qi, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    // Reject non-canonical encodings (stray low bits), so an altered cursor never decodes.
    (base64url_encode(&out) == text).then_some(out)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` for days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) const MS_PER_SEC: i64 = 1_000;
pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// `YYYY-MM-DD` for days since 1970-01-01.
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// An instant as `YYYY-MM-DDTHH:MM:SS[.mmm]Z` text, written digit by digit on the stack: a
/// page of contacts carries a dozen timestamps each, and `format!` made them a quarter of
/// the twin's work. Years outside 0–9999 (no four-digit form) are formatted the slow way.
pub(crate) enum TimeText {
    Short { bytes: [u8; 24], len: u8 },
    Wide(String),
}

impl TimeText {
    pub(crate) fn new(ms: i64, millis: bool) -> Self {
        let days = ms.div_euclid(MS_PER_DAY);
        let in_day = ms.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            let (h, mi, s, frac) = (
                in_day / MS_PER_HOUR,
                in_day / 60_000 % 60,
                in_day / 1_000 % 60,
                in_day % 1_000,
            );
            let fraction = if millis {
                format!(".{frac:03}")
            } else {
                String::new()
            };
            return Self::Wide(format!(
                "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}Z"
            ));
        }
        let mut bytes = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                bytes[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, i64::from(m));
        put(8, 2, i64::from(d));
        put(11, 2, in_day / MS_PER_HOUR);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1_000 % 60);
        put(20, 3, in_day % 1_000);
        let len = if millis {
            24
        } else {
            bytes.copy_within(23..24, 19);
            20
        };
        Self::Short { bytes, len }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Digits and separators only: ASCII, so valid UTF-8.
            Self::Short { bytes, len } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Wide(text) => text,
        }
    }
}

fn format_time(ms: i64, millis: bool) -> String {
    TimeText::new(ms, millis).as_str().to_owned()
}

/// `2026-10-01T12:34:56.789Z` for epoch milliseconds.
pub(crate) fn format_iso_millis(ms: i64) -> String {
    format_time(ms, true)
}

/// `2026-10-01T12:34:56Z` for epoch milliseconds (the fraction is dropped).
pub(crate) fn format_iso_seconds(ms: i64) -> String {
    format_time(ms, false)
}

/// A UUID-shaped lowercase hex id (8-4-4-4-12) from two 64-bit values.
pub(crate) fn uuid_like(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// A cost in micros as a decimal string with up to `max_decimals` decimals, trailing
/// zeros dropped (`12.3`, `5`), as Meta and LinkedIn send them.
pub(crate) fn decimal_text(micros: i64, max_decimals: u32) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let unit = 10u64.pow(6 - max_decimals);
    let scaled = m / unit;
    let base = 10u64.pow(max_decimals);
    let whole = scaled / base;
    let frac = scaled % base;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:0width$}", width = max_decimals as usize);
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 18-character id of lead number `n`: `00Q` key prefix, a 15-character case-sensitive
/// id, and Salesforce's 3-character case-safe suffix.
pub(crate) fn lead_id(n: u64) -> String {
    let mut digits = Vec::new();
    let mut v = n;
    for _ in 0..7 {
        digits.push(BASE62[(v % 62) as usize]);
        v /= 62;
    }
    digits.reverse();
    let id15 = format!("00Q5g000{}", String::from_utf8_lossy(&digits));
    let mut suffix = String::new();
    for chunk in id15.as_bytes().chunks(5) {
        let mut bits = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix.push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits] as char);
    }
    id15 + &suffix
}

/// A HubSpot filter value as epoch milliseconds: what HubSpot accepts for a date-time
/// property — epoch milliseconds, `YYYY-MM-DD` (midnight UTC) or ISO 8601
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. The twin's own parser, not the client's: a
/// parser both shared would hide the bugs both would make.
pub(crate) fn parse_timestamp_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not epoch milliseconds, a date or an ISO 8601 date-time");
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| bad());
    }
    let number = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (date, time) = t.split_once('T').unwrap_or((t, ""));
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (year, month, day) = (number(y)?, number(m)?, number(d)?);
    let month = u32::try_from(month).map_err(|_| bad())?;
    let day = u32::try_from(day).map_err(|_| bad())?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    let midnight = days_from_civil(year, month, day) * MS_PER_DAY;
    if time.is_empty() {
        return if t.contains('T') {
            Err(bad())
        } else {
            Ok(midnight)
        };
    }
    // The zone: `Z`, or a sign and `HH:MM` after the seconds.
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else if time.len() > 6 && matches!(time.as_bytes()[time.len() - 6], b'+' | b'-') {
        let (clock, zone) = time.split_at(time.len() - 6);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').ok_or_else(bad)?;
        let (h, m) = (number(h)?, number(m)?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        (clock, sign * (h * MS_PER_HOUR + m * 60_000))
    } else {
        return Err(bad());
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = hms.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    if h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return Err(bad());
    }
    let (h, m, s) = (number(h)?, number(m)?, number(s)?);
    if h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        // Digits past the millisecond are dropped, as HubSpot keeps milliseconds.
        let digits = &fraction[..fraction.len().min(3)];
        number(fraction)?;
        number(digits)? * 10i64.pow(3 - digits.len() as u32)
    };
    Ok(midnight + h * MS_PER_HOUR + m * 60_000 + s * MS_PER_SEC + millis - offset_ms)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_timestamps_parse_as_hubspot_accepts_them() {
        let at = DateTime::parse_from_rfc3339("2026-11-19T10:20:30.456Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(parse_timestamp_ms(&at.to_string()), Ok(at));
        assert_eq!(parse_timestamp_ms("2026-11-19T10:20:30.456Z"), Ok(at));
        assert_eq!(parse_timestamp_ms("2026-11-19T10:20:30.456789Z"), Ok(at));
        assert_eq!(parse_timestamp_ms("2026-11-19T12:20:30.456+02:00"), Ok(at));
        assert_eq!(parse_timestamp_ms("2026-11-19T10:20:30Z"), Ok(at - 456));
        let midnight = DateTime::parse_from_rfc3339("2026-11-19T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(parse_timestamp_ms("2026-11-19"), Ok(midnight));
        for bad in [
            "",
            "yesterday",
            "2026-11-19T",
            "2026-02-30",
            "2026-11-19T24:00:00Z",
            "2026-11-19T10:20:30",
            "2026-11-19T10:20:30.4x6Z",
            "2026-1-19",
        ] {
            assert!(parse_timestamp_ms(bad).is_err(), "{bad:?} was accepted");
        }
    }
    #[test]
    fn decimals_are_rendered_exactly() {
        assert_eq!(decimal_text(12_340_000, 2), "12.34");
        assert_eq!(decimal_text(12_300_000, 2), "12.3");
        assert_eq!(decimal_text(5_000_000, 2), "5");
        assert_eq!(decimal_text(1_230_000, 6), "1.23");
        assert_eq!(decimal_text(-500_000, 2), "-0.5");
    }
    use chrono::{DateTime, NaiveDate};

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let mut ms = -86_400_000_i64 * 365 * 3 - 1;
        while ms < 86_400_000_i64 * 365 * 60 {
            let t = DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(
                format_iso_millis(ms),
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            assert_eq!(
                format_iso_seconds(ms),
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
            ms += 7_777_777_777 / 13;
        }
        assert_eq!(
            format_iso_millis(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn base64url_round_trips_and_rejects_noise() {
        for len in 1..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url_encode(&bytes);
            assert_eq!(base64url_decode(&text).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(base64url_encode(b"100"), "MTAw");
        assert_eq!(base64url_encode(b"1000"), "MTAwMA==");
        assert!(base64url_decode("MTAw%3D").is_none());
        assert!(base64url_decode("MTAwMQ=").is_none());
        assert!(
            base64url_decode("MTAwMR==").is_none(),
            "non-canonical tail bits"
        );
        assert!(base64url_decode("").is_none());
    }

    #[test]
    fn civil_dates_match_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        for days in (-719_000..2_900_000).step_by(997) {
            let date = epoch + chrono::Duration::days(days);
            assert_eq!(format_date(days), date.format("%Y-%m-%d").to_string());
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn timestamps_match_chrono() {
        for ms in [0_i64, 1_795_000_123_456, 1_790_000_000_000, 86_399_999] {
            let dt = DateTime::from_timestamp_millis(ms).expect("in range");
            assert_eq!(
                format_iso_millis(ms),
                dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            assert_eq!(
                format_iso_seconds(ms),
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
        }
    }

    #[test]
    fn uuid_like_has_uuid_shape() {
        let id = uuid_like(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let lens: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12]);
    }
}
