//! Parsers for the value shapes vendors send: timestamps in every documented form, integers
//! and booleans as strings, exact decimals. Errors are short phrases used in reject reasons.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

pub use super::scalar::Scalar;

/// What a parser sees of a JSON value: the same rules apply whether a page was parsed
/// into a `serde_json::Value` tree or into borrowed [`Scalar`]s.
#[derive(Debug)]
pub enum Leaf<'v> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as JSON wrote it.
    Number(serde_json::Number),
    /// A string.
    Str(&'v str),
    /// An object or array, as JSON text.
    Nested(String),
}

/// A JSON value the parsers below accept.
pub trait JsonLeaf {
    /// This value as a [`Leaf`].
    fn leaf(&self) -> Leaf<'_>;
}

impl JsonLeaf for Value {
    fn leaf(&self) -> Leaf<'_> {
        match self {
            Value::Null => Leaf::Null,
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Number(n) => Leaf::Number(n.clone()),
            Value::String(s) => Leaf::Str(s),
            other => Leaf::Nested(other.to_string()),
        }
    }
}

/// Pages parsed by sonic-rs into its own (arena-backed, much cheaper to build) tree.
impl JsonLeaf for sonic_rs::Value {
    fn leaf(&self) -> Leaf<'_> {
        use sonic_rs::{JsonType, JsonValueTrait};
        match self.get_type() {
            JsonType::Null => Leaf::Null,
            JsonType::Boolean => Leaf::Bool(self.is_true()),
            JsonType::String => Leaf::Str(self.as_str().unwrap_or_default()),
            JsonType::Number => {
                let number = if let Some(i) = self.as_i64() {
                    Some(serde_json::Number::from(i))
                } else if let Some(u) = self.as_u64() {
                    Some(serde_json::Number::from(u))
                } else {
                    self.as_f64().and_then(serde_json::Number::from_f64)
                };
                number.map_or(Leaf::Null, Leaf::Number)
            }
            JsonType::Array | JsonType::Object => Leaf::Nested(self.to_string()),
        }
    }
}

impl JsonLeaf for Scalar<'_> {
    fn leaf(&self) -> Leaf<'_> {
        match self {
            Scalar::Null => Leaf::Null,
            Scalar::Bool(b) => Leaf::Bool(*b),
            Scalar::Number(n) => Leaf::Number(n.clone()),
            Scalar::Str(s) => Leaf::Str(s),
            Scalar::Nested(v) => Leaf::Nested(v.to_string()),
        }
    }
}

/// A string field where `""` and `null` both mean "no value".
pub fn opt_str<V: JsonLeaf + ?Sized>(value: Option<&V>) -> Option<String> {
    opt_text(value).map(Cow::into_owned)
}

/// [`opt_str`] held inline when short (ids, codes and names mostly are: no allocation).
pub fn opt_small_str<V: JsonLeaf + ?Sized>(
    value: Option<&V>,
) -> Option<compact_str::CompactString> {
    opt_text(value).map(compact_str::CompactString::from)
}

/// [`opt_str`]'s text, borrowed from the value where it is a string: for a caller that
/// derives its own string from it (a label, snake-cased) and would otherwise copy it first.
pub fn opt_text<V: JsonLeaf + ?Sized>(value: Option<&V>) -> Option<Cow<'_, str>> {
    match value?.leaf() {
        Leaf::Str("") | Leaf::Null => None,
        Leaf::Str(s) => Some(Cow::Borrowed(s)),
        Leaf::Bool(b) => Some(Cow::Owned(b.to_string())),
        Leaf::Number(n) => Some(Cow::Owned(n.to_string())),
        Leaf::Nested(text) => Some(Cow::Owned(text)),
    }
}

/// `text` without the whitespace around it, exactly as [`str::trim`] gives it. Almost every
/// vendor value has none, and `trim` walks characters in from both ends to find that out
/// (0.7 % of a 1 M replay's samples, a few calls per field): when both end bytes are ASCII
/// and not whitespace, nothing is cut and `text` comes back as it is.
#[inline]
pub fn trim(text: &str) -> &str {
    let solid = |b: &u8| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' ');
    let bytes = text.as_bytes();
    if bytes.first().is_some_and(solid) && bytes.last().is_some_and(solid) {
        text
    } else {
        text.trim()
    }
}

/// A timestamp in microseconds since the epoch, UTC, from any documented vendor form:
/// RFC 3339 with `Z` or an offset (with or without fraction), Salesforce's `+0000`,
/// a naive `YYYY-MM-DDTHH:MM:SS` (taken as UTC), a date (midnight UTC) or epoch milliseconds.
pub fn timestamp_micros(text: &str) -> Result<i64, String> {
    let t = trim(text);
    if let Some(micros) = rfc3339_fast(t.as_bytes()) {
        return Ok(micros);
    }
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

/// The common shape `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` without chrono: every
/// contact carries a dozen timestamps, and this is a tenth of chrono's cost. Anything else
/// (leap seconds, lower-case separators, other forms) returns `None` for the general path.
fn rfc3339_fast(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut fraction_micros = 0i64;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut micros = 0i64;
        for i in 0..6 {
            micros = micros * 10
                + after_dot
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        fraction_micros = micros;
        rest = &after_dot[n..];
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1_000_000 + fraction_micros)
}

/// An optional timestamp field (`null` / `""` → `None`).
pub fn opt_timestamp<V: JsonLeaf + ?Sized>(
    value: Option<&V>,
    field: &str,
) -> Result<Option<i64>, String> {
    let Some(value) = value else { return Ok(None) };
    let parse = |s: &str| {
        timestamp_micros(s)
            .map(Some)
            .map_err(|e| format!("{field}: {e}"))
    };
    match value.leaf() {
        Leaf::Str("") | Leaf::Null => Ok(None),
        Leaf::Str(s) => parse(s),
        Leaf::Bool(b) => parse(&b.to_string()),
        Leaf::Number(n) => parse(&n.to_string()),
        Leaf::Nested(text) => parse(&text),
    }
}

/// An optional integer sent as a JSON number or a string.
pub fn opt_i64<V: JsonLeaf + ?Sized>(
    value: Option<&V>,
    field: &str,
) -> Result<Option<i64>, String> {
    let Some(value) = value else { return Ok(None) };
    match value.leaf() {
        Leaf::Null | Leaf::Str("") => Ok(None),
        Leaf::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("{field}: `{n}` is not an integer")),
        Leaf::Str(s) => {
            let t = trim(s);
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
        Leaf::Bool(b) => Err(format!("{field}: `{b}` is not an integer")),
        Leaf::Nested(text) => Err(format!("{field}: `{text}` is not an integer")),
    }
}

/// A required integer.
pub fn req_i64<V: JsonLeaf + ?Sized>(value: Option<&V>, field: &str) -> Result<i64, String> {
    opt_i64(value, field)?.ok_or_else(|| format!("{field}: missing"))
}

/// An optional boolean: JSON `true`/`false` or the strings `"true"`/`"false"`.
pub fn opt_bool<V: JsonLeaf + ?Sized>(
    value: Option<&V>,
    field: &str,
) -> Result<Option<bool>, String> {
    let Some(value) = value else { return Ok(None) };
    match value.leaf() {
        Leaf::Null => Ok(None),
        Leaf::Bool(b) => Ok(Some(b)),
        Leaf::Str(s) => match trim(s) {
            "" => Ok(None),
            t if ["true", "yes", "1"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w)) =>
            {
                Ok(Some(true))
            }
            t if ["false", "no", "0"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w)) =>
            {
                Ok(Some(false))
            }
            _ => Err(format!("{field}: `{s}` is not a boolean")),
        },
        Leaf::Number(n) => Err(format!("{field}: `{n}` is not a boolean")),
        Leaf::Nested(text) => Err(format!("{field}: `{text}` is not a boolean")),
    }
}

/// An exact decimal string (`"12.34"`, `"-0.5"`, `"3"`, `"1.2345678901"`) in millionths,
/// rounded half away from zero at the sixth decimal. Never goes through a float.
pub fn decimal_micros(text: &str) -> Result<i128, String> {
    let t = trim(text);
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

/// An optional amount of money in millionths, sent as a decimal string (HubSpot) or a JSON
/// number (Salesforce's doubles, written out in full first: never rounded through the
/// float's binary value beyond what the vendor sent).
pub fn opt_money<V: JsonLeaf + ?Sized>(
    value: Option<&V>,
    field: &str,
) -> Result<Option<i128>, String> {
    let Some(value) = value else { return Ok(None) };
    let text = match value.leaf() {
        Leaf::Null | Leaf::Str("") => return Ok(None),
        Leaf::Str(s) => s.to_string(),
        Leaf::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            // Rust prints a float's shortest round-trip digits, never in exponent form.
            (None, Some(f)) if f.is_finite() => f.to_string(),
            _ => n.to_string(),
        },
        Leaf::Bool(b) => b.to_string(),
        Leaf::Nested(text) => text,
    };
    decimal_micros(&text)
        .map(Some)
        .map_err(|e| format!("{field}: {e}"))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn date_days(text: &str) -> Result<i32, String> {
    let trimmed = trim(text);
    // Every spend row has one, and chrono's `parse_from_str` reads its format string again
    // on each call: the exact `YYYY-MM-DD` shape is read here, anything else by chrono.
    let d = match ymd_fast(trimmed.as_bytes()) {
        Some(ymd) => ymd,
        None => NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").ok(),
    }
    .ok_or_else(|| format!("`{text}` is not a YYYY-MM-DD date"))?;
    Ok(crate::days::epoch_days(d))
}

/// `Some(date)` of exactly `YYYY-MM-DD` (`Some(None)` when that names no day, as
/// `2023-02-29`); `None` for any other shape.
fn ymd_fast(b: &[u8]) -> Option<Option<NaiveDate>> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *b else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| u32::from(c - b'0'));
    let year = ((digit(y0)? * 10 + digit(y1)?) * 10 + digit(y2)?) * 10 + digit(y3)?;
    let (month, day) = (digit(m0)? * 10 + digit(m1)?, digit(d0)? * 10 + digit(d1)?);
    Some(NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        month,
        day,
    ))
}

/// The byte a character of a label becomes in [`snake_case`]: a letter or digit in lower
/// case, anything else `_` (one byte per character, whatever it took).
fn snake_byte(c: char) -> u8 {
    if c.is_ascii_alphanumeric() {
        c.to_ascii_lowercase() as u8
    } else {
        b'_'
    }
}

/// [`snake_case`] held inline when short (a label is a few bytes: no allocation). A text
/// that fits inline is written into a buffer on the stack and checked as UTF-8 once
/// (collecting `char`s into the string cost twice the `String` version's time).
pub fn snake_case_compact(text: &str) -> compact_str::CompactString {
    const INLINE: usize = 24;
    let text = trim(text);
    if text.len() > INLINE {
        return snake_case(text).into();
    }
    let mut bytes = [0u8; INLINE];
    let mut len = 0;
    for c in text.chars() {
        bytes[len] = snake_byte(c);
        len += 1;
    }
    compact_str::CompactString::from_utf8(&bytes[..len]).expect("ASCII bytes are UTF-8")
}

/// `SCREAMING_CASE` or `Mixed Case` vendor enum values as snake_case channel names.
pub fn snake_case(text: &str) -> String {
    let text = trim(text);
    // Sized once: each character becomes a single byte, never more than it took.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        out.push(char::from(snake_byte(c)));
    }
    out
}

/// `text` lower-cased exactly as [`str::to_lowercase`] does it, borrowed when there is
/// nothing to change: most e-mail addresses and domains are lower-case ASCII already.
pub fn lower_case(text: &str) -> Cow<'_, str> {
    if text
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
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
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let forms = [
            "2026-11-24T16:00:00Z",
            "2024-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00.123456789+05:30",
            "2026-01-01T00:00:00.000-0800",
            "1999-12-31T12:30:00+0000",
            "2100-02-28T01:02:03.04Z",
        ];
        for text in forms {
            let chrono_micros = DateTime::parse_from_rfc3339(text)
                .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
                .unwrap()
                .with_timezone(&Utc)
                .timestamp_micros();
            assert_eq!(rfc3339_fast(text.as_bytes()), Some(chrono_micros), "{text}");
        }
        // Not the fast shape: left to the general path, which decides.
        for text in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-24T16:00:60Z",
            "2026-11-24 16:00:00Z",
            "2026-11-24T16:00:00",
            "2026-11-24T16:00:00.Z",
        ] {
            assert_eq!(rfc3339_fast(text.as_bytes()), None, "{text}");
        }
        assert!(timestamp_micros("2023-02-29T00:00:00Z").is_err());
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
        for text in [
            "PAID_SEARCH",
            " Paid Search ",
            "Réseaux sociaux",
            "",
            "a-very-long-label-past-24-bytes",
            "exactly-24-bytes-long-ab",
            "ÉÉÉÉÉÉÉÉÉÉÉÉ",
            "ÉÉÉÉÉÉÉÉÉÉÉÉÉ",
        ] {
            assert_eq!(snake_case_compact(text), snake_case(text), "{text:?}");
        }
    }

    #[test]
    fn trim_cuts_what_str_trim_cuts() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{b}a\u{c}",
            "\ta b\r\n",
            "\u{a0}a",
            "a\u{3000}",
            "\u{85}",
            "é",
            " é ",
            "2026-11-24T16:00:00Z",
            "x\u{2028}",
            "\u{1c}a\u{1f}",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn the_fast_date_path_agrees_with_chrono() {
        let chrono_days = |t: &str| {
            NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .ok()
                .map(crate::days::epoch_days)
        };
        for text in [
            "2026-11-24",
            "1970-01-01",
            "1969-12-31",
            "2024-02-29",
            "2000-02-29",
            " 2026-03-01 ",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert!(ymd_fast(text.trim().as_bytes()).is_some(), "{text}");
            assert_eq!(date_days(text).ok(), chrono_days(text), "{text}");
            assert!(chrono_days(text).is_some(), "{text}");
        }
        // Days that do not exist are refused by both, naming the text.
        for text in [
            "2023-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
        ] {
            assert_eq!(chrono_days(text), None, "{text}");
            let error = date_days(text).unwrap_err();
            assert!(error.contains(text), "{error}");
        }
        // Other shapes go to chrono, which decides.
        for text in [
            "2026-1-5",
            "+2026-01-05",
            "2026/01/05",
            "20260105",
            "2026-01-05T00",
            "",
        ] {
            assert_eq!(ymd_fast(text.as_bytes()), None, "{text}");
            assert_eq!(date_days(text).ok(), chrono_days(text), "{text}");
        }
    }

    #[test]
    fn a_sonic_rs_tree_reads_like_a_serde_json_one() {
        let texts = [
            "null",
            "true",
            "\"\"",
            "\"a\\\"b\"",
            "\"2026-11-02T09:30:00+00:00\"",
            "\"42\"",
            "-7",
            "18446744073709551615",
            "3.0",
            "2.5",
            "[1,2]",
            "{\"a\":null}",
        ];
        for text in texts {
            let serde: Value = serde_json::from_str(text).unwrap();
            let sonic: sonic_rs::Value = sonic_rs::from_str(text).unwrap();
            assert_eq!(opt_str(Some(&sonic)), opt_str(Some(&serde)), "{text}");
            assert_eq!(
                opt_i64(Some(&sonic), "f"),
                opt_i64(Some(&serde), "f"),
                "{text}"
            );
            assert_eq!(
                opt_bool(Some(&sonic), "f"),
                opt_bool(Some(&serde), "f"),
                "{text}"
            );
            assert_eq!(
                opt_timestamp(Some(&sonic), "f"),
                opt_timestamp(Some(&serde), "f"),
                "{text}"
            );
        }
    }
}
