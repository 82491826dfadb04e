//! Exact money: `DECIMAL(18,6)` micros, decimal text parsed into scaled integers, products
//! and quotients rounded half away from zero, never through a float. It imports only
//! `dates` from the metrics; the money type itself is the canonical tables'
//! ([`crate::normalize::money_type`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use super::dates::epoch_days;

use crate::error::{Error, Result};
use crate::normalize::{MONEY_PRECISION, MONEY_SCALE};

/// Precision and scale of money columns (the canonical tables' own).
pub const MONEY: (u8, i8) = (MONEY_PRECISION, MONEY_SCALE);
/// Decimal places of a parsed exchange rate.
pub const RATE_SCALE: u32 = 10;
/// A rate of one at `RATE_SCALE`.
pub const RATE_ONE: i128 = 10_i128.pow(RATE_SCALE);

/// Check one exchange-rate entry: from `date` (`YYYY-MM-DD`) on, one `currency` (ISO-4217)
/// buys `rate` (decimal text, above zero) reporting units. Returns (days since the epoch,
/// the trimmed currency, the rate × 10^10).
pub fn parse_rate<'a>(
    date: &str,
    currency: &'a str,
    rate: &str,
) -> std::result::Result<(i32, &'a str, i128), String> {
    let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| format!("date `{date}` is not YYYY-MM-DD"))?;
    let currency = currency.trim();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!("`{currency}` is not an ISO-4217 code like USD"));
    }
    let scaled = parse_decimal(rate, RATE_SCALE)?;
    if scaled <= 0 {
        return Err(format!("rate `{rate}` must be greater than zero"));
    }
    Ok((epoch_days(day), currency, scaled))
}

/// Parse a non-negative decimal string into an integer scaled by 10^scale; more decimals
/// than `scale` are an error rather than a silent rounding.
pub fn parse_decimal(text: &str, scale: u32) -> std::result::Result<i128, String> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
        return Err(format!("`{text}` is not a decimal number"));
    }
    if frac.len() > scale as usize {
        return Err(format!("`{text}` has more than {scale} decimals"));
    }
    let mut value: i128 = 0;
    for c in int.chars().chain(frac.chars()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(c as u8 - b'0')))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    value *= 10_i128.pow(scale - frac.len() as u32);
    Ok(if negative { -value } else { value })
}

/// `a × b / 10^scale`, rounded half away from zero.
pub fn mul_round(a: i128, b: i128, scale_one: i128) -> Option<i128> {
    let product = a.checked_mul(b)?;
    Some(div_round(product, scale_one))
}

/// `n / d` rounded half away from zero (`d > 0`).
pub fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.abs() * 2 >= d { q + n.signum() } else { q }
}

pub use crate::normalize::money_type;

/// A money array from micros.
pub fn money_array(values: Vec<Option<i128>>, table: &str) -> Result<ArrayRef> {
    Decimal128Array::from(values)
        .with_precision_and_scale(MONEY.0, MONEY.1)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::encode(table, e))
}

/// A money column as `Decimal128` micros, whatever decimal or integer type another writer
/// chose (`Decimal64`, a different scale): arrow's cast kernel rescales exactly.
pub(crate) fn money_values(
    batch: &RecordBatch,
    name: &str,
    table: &str,
) -> Result<Decimal128Array> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::encode(table, format!("input has no `{name}` column")))?;
    let target = DataType::Decimal128(38, MONEY.1);
    let cast = match column.data_type() {
        DataType::Decimal128(_, s) if *s == MONEY.1 => Arc::clone(column),
        _ => arrow::compute::cast(column, &target).map_err(|e| {
            Error::encode(
                table,
                crate::error::Detail::new(format!("column `{name}` is not a money amount: {e}"), e),
            )
        })?,
    };
    cast.as_any()
        .downcast_ref::<Decimal128Array>()
        .cloned()
        .ok_or_else(|| Error::encode(table, format!("column `{name}` is not a decimal")))
}
