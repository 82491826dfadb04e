//! Parsers for the value shapes vendors send: timestamps in every documented form, integers
//! and booleans as strings, exact decimals. Errors are short phrases used in reject reasons.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

/// A string field where `""` and `null` both mean "no value".
pub fn opt_str(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A timestamp in microseconds since the epoch, UTC, from any documented vendor form:
/// RFC 3339 with `Z` or an offset (with or without fraction), Salesforce's `+0000`,
/// a naive `YYYY-MM-DDTHH:MM:SS` (taken as UTC), a date (midnight UTC) or epoch milliseconds.
pub fn timestamp_micros(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = t.parse().map_err(|_| format!("`{t}` is not a timestamp"))?;
        return millis
            .checked_mul(1000)
            .ok_or_else(|| format!("`{t}` is out of range"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    if let Ok(dt) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(dt.and_utc().timestamp_micros());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |dt| dt.and_utc().timestamp_micros()));
    }
    Err(format!("`{t}` is not a timestamp"))
}

/// An optional timestamp field (`null` / `""` → `None`).
pub fn opt_timestamp(value: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    match opt_str(value) {
        None => Ok(None),
        Some(s) => timestamp_micros(&s)
            .map(Some)
            .map_err(|e| format!("{field}: {e}")),
    }
}

/// An optional integer sent as a JSON number or a string.
pub fn opt_i64(value: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("{field}: `{n}` is not an integer")),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            t.parse::<i64>()
                .or_else(|_| {
                    // HubSpot sends some counts as "3.0".
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                        .ok_or(())
                })
                .map(Some)
                .map_err(|_| format!("{field}: `{s}` is not an integer"))
        }
        Some(other) => Err(format!("{field}: `{other}` is not an integer")),
    }
}

/// A required integer.
pub fn req_i64(value: Option<&Value>, field: &str) -> Result<i64, String> {
    opt_i64(value, field)?.ok_or_else(|| format!("{field}: missing"))
}

/// An optional boolean: JSON `true`/`false` or the strings `"true"`/`"false"`.
pub fn opt_bool(value: Option<&Value>, field: &str) -> Result<Option<bool>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(format!("{field}: `{s}` is not a boolean")),
        },
        Some(other) => Err(format!("{field}: `{other}` is not a boolean")),
    }
}

/// An exact decimal string (`"12.34"`, `"-0.5"`, `"3"`, `"1.2345678901"`) in millionths,
/// rounded half away from zero at the sixth decimal. Never goes through a float.
pub fn decimal_micros(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = !(int_part.is_empty() && frac_part.is_empty())
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit())
        && int_part.len() <= 12;
    if !valid {
        return Err(format!("`{text}` is not a decimal number"));
    }
    let int: i128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| format!("`{text}` is out of range"))?
    };
    let mut frac: i128 = 0;
    for (i, b) in frac_part.bytes().take(6).enumerate() {
        frac += i128::from(b - b'0') * 10i128.pow(5 - i as u32);
    }
    if frac_part.len() > 6 && frac_part.as_bytes()[6] >= b'5' {
        frac += 1;
    }
    let value = int * 1_000_000 + frac;
    Ok(if negative { -value } else { value })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn date_days(text: &str) -> Result<i32, String> {
    let d = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a YYYY-MM-DD date"))?;
    Ok((d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32)
}

/// `SCREAMING_CASE` or `Mixed Case` vendor enum values as snake_case channel names.
pub fn snake_case(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_vendor_form() {
        let base = 1_764_000_000_000_000; // 2025-11-24T16:00:00Z
        assert_eq!(timestamp_micros("2025-11-24T16:00:00Z"), Ok(base));
        assert_eq!(
            timestamp_micros("2025-11-24T16:00:00.250Z"),
            Ok(base + 250_000)
        );
        assert_eq!(timestamp_micros("2025-11-24T17:00:00+01:00"), Ok(base));
        assert_eq!(timestamp_micros("2025-11-24T16:00:00.000+0000"), Ok(base));
        assert_eq!(timestamp_micros("2025-11-24T16:00:00"), Ok(base));
        assert_eq!(timestamp_micros("1764000000000"), Ok(base));
        assert_eq!(
            timestamp_micros("2025-11-24"),
            Ok(base - 16 * 3_600_000_000)
        );
        assert!(timestamp_micros("not-a-date").is_err());
        assert!(timestamp_micros("").is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_micros("12.34"), Ok(12_340_000));
        assert_eq!(decimal_micros("-0.5"), Ok(-500_000));
        assert_eq!(decimal_micros("3"), Ok(3_000_000));
        assert_eq!(decimal_micros(".25"), Ok(250_000));
        assert_eq!(decimal_micros("0.1234565"), Ok(123_457));
        assert_eq!(decimal_micros("0.1234564999"), Ok(123_456));
        assert_eq!(decimal_micros("6.300000000000001"), Ok(6_300_000));
        assert!(decimal_micros("12x5").is_err());
        assert!(decimal_micros("").is_err());
        assert!(decimal_micros("1e5").is_err());
    }

    #[test]
    fn integers_and_booleans_from_strings() {
        use serde_json::json;
        assert_eq!(
            opt_i64(Some(&json!("12345678901")), "x"),
            Ok(Some(12_345_678_901))
        );
        assert_eq!(opt_i64(Some(&json!("3.0")), "x"), Ok(Some(3)));
        assert_eq!(opt_i64(Some(&json!("")), "x"), Ok(None));
        assert!(opt_i64(Some(&json!("abc")), "x").is_err());
        assert_eq!(opt_bool(Some(&json!("true")), "x"), Ok(Some(true)));
        assert_eq!(opt_bool(Some(&json!(null)), "x"), Ok(None));
        assert!(opt_bool(Some(&json!("maybe")), "x").is_err());
        assert_eq!(date_days("1970-01-02"), Ok(1));
        assert_eq!(snake_case("PAID_SEARCH"), "paid_search");
    }
}
