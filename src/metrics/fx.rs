//! Currency conversion into the job's reporting currency: rates by (currency, first day they
//! apply), from a CSV/JSON file or URL and inline `[[fx.rates]]`, the last known rate
//! carried forward. Amounts stay exact: `DECIMAL(18,6)` micros times a rate with 10
//! decimals, rounded half away from zero, never through a float. A currency without a rate
//! on or before a date converts to null — callers say so instead of mixing it in.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Builder};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{date_col, decimal_col, months_of, str_col};
use super::config::InlineRate;
use super::money::{MONEY, RATE_ONE, money_values, mul_round, parse_rate};
use crate::error::{Error, Result};

/// Exchange rates into one reporting currency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FxRates {
    reporting: String,
    /// currency → (days since epoch → rate × 10^10).
    rates: HashMap<String, BTreeMap<i32, i128>>,
}

impl FxRates {
    /// No rates: only the reporting currency converts.
    pub fn new(reporting: &str) -> Self {
        FxRates {
            reporting: reporting.to_string(),
            rates: HashMap::new(),
        }
    }

    /// The reporting currency.
    pub fn reporting(&self) -> &str {
        &self.reporting
    }

    /// Add a rate: from `date` on, one `currency` is `rate` (decimal text) reporting units.
    pub fn insert(
        &mut self,
        date: &str,
        currency: &str,
        rate: &str,
    ) -> std::result::Result<(), String> {
        let (day, currency, scaled) = parse_rate(date, currency, rate)?;
        self.rates
            .entry(currency.to_string())
            .or_default()
            .insert(day, scaled);
        Ok(())
    }

    /// The rate × 10^10 in effect for `currency` on `day` (the last one on or before it).
    pub fn rate_on(&self, currency: &str, day: i32) -> Option<i128> {
        if currency == self.reporting {
            return Some(RATE_ONE);
        }
        self.rates
            .get(currency)?
            .range(..=day)
            .next_back()
            .map(|(_, r)| *r)
    }

    /// `amount` (micros of `currency`) in micros of the reporting currency, on `day`.
    pub fn convert(&self, amount: i128, currency: &str, day: i32) -> Option<i128> {
        mul_round(amount, self.rate_on(currency, day)?, RATE_ONE)
    }

    /// Parse a rates file's text: CSV with a `date,currency,rate` header (any column order)
    /// or a JSON array of `{date, currency, rate}` objects.
    pub fn add_text(&mut self, text: &str, origin: &str) -> std::result::Result<(), String> {
        if text.trim_start().starts_with('[') {
            let rows: Vec<serde_json::Value> = crate::json::from_str(text)
                .map_err(|e| format!("{origin}: not a JSON array of rates: {e}"))?;
            for (i, row) in rows.iter().enumerate() {
                let field = |k: &str| match row.get(k) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                    _ => Err(format!("{origin}: entry {i} has no `{k}`")),
                };
                self.insert(&field("date")?, &field("currency")?, &field("rate")?)
                    .map_err(|e| format!("{origin}: entry {i}: {e}"))?;
            }
            return Ok(());
        }
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Ok(());
        };
        let names: Vec<String> = header
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let index = |k: &str| {
            names
                .iter()
                .position(|n| n == k)
                .ok_or_else(|| format!("{origin}: the header has no `{k}` column"))
        };
        let (d, c, r) = (index("date")?, index("currency")?, index("rate")?);
        for (n, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or("");
            self.insert(cell(d), cell(c), cell(r))
                .map_err(|e| format!("{origin}: line {}: {e}", n + 1))?;
        }
        Ok(())
    }

    /// Add inline rates.
    pub fn add_inline(&mut self, rates: &[InlineRate]) -> std::result::Result<(), String> {
        for (i, r) in rates.iter().enumerate() {
            self.insert(&r.date, &r.currency, &r.rate.text())
                .map_err(|e| format!("fx.rates[{i}]: {e}"))?;
        }
        Ok(())
    }
}

/// For `validate`: the text of a rates file must parse (`origin` names it in the problem).
pub fn check_rates_text(text: &str, origin: &str) -> Option<String> {
    FxRates::new("XXX").add_text(text, origin).err()
}

/// `spend` with `spend_reporting` (the amount in the reporting currency at the day's rate,
/// null without a rate) inserted after `spend`; the currencies that lacked a rate are
/// returned.
pub fn add_spend_reporting(
    batch: &RecordBatch,
    fx: &FxRates,
) -> Result<(RecordBatch, BTreeSet<String>)> {
    let dates = date_col(batch, "date", "spend")?;
    let days: Vec<Option<i32>> = (0..dates.len())
        .map(|i| (!dates.is_null(i)).then(|| dates.value(i)))
        .collect();
    let amounts = decimal_col(batch, "spend", "spend")?;
    add_reporting(batch, fx, "spend", amounts, "spend", &days)
}

/// `costs` with `amount_reporting` (at the rate of the month's first day) inserted after
/// `amount`.
pub fn add_costs_reporting(
    batch: &RecordBatch,
    fx: &FxRates,
) -> Result<(RecordBatch, BTreeSet<String>)> {
    let months = months_of(batch, "costs")?;
    let amounts = money_values(batch, "amount", "costs")?;
    add_reporting(batch, fx, "costs", &amounts, "amount", &months)
}

/// Insert `<amount>_reporting` after the `amount` column: `amounts` (micros) converted by
/// each row's day; a column of that name already there is replaced.
fn add_reporting(
    batch: &RecordBatch,
    fx: &FxRates,
    table: &str,
    amounts: &arrow::array::Decimal128Array,
    amount: &str,
    days: &[Option<i32>],
) -> Result<(RecordBatch, BTreeSet<String>)> {
    let currencies = str_col(batch, "currency", table)?;
    let out_name = reporting_name(amount);
    let mut out = Decimal128Builder::with_capacity(batch.num_rows())
        .with_precision_and_scale(MONEY.0, MONEY.1)
        .map_err(|e| Error::encode(table, e))?;
    let mut missing = BTreeSet::new();
    for (i, day) in days.iter().enumerate() {
        let (Some(day), false, false) = (day, amounts.is_null(i), currencies.is_null(i)) else {
            out.append_null();
            continue;
        };
        match fx.convert(amounts.value(i), currencies.value(i), *day) {
            Some(v) => out.append_value(v),
            None => {
                missing.insert(currencies.value(i).to_string());
                out.append_null();
            }
        }
    }
    let converted: ArrayRef = Arc::new(out.finish());
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len() + 1);
    for (i, field) in schema.fields().iter().enumerate() {
        // Re-deriving an already enriched batch replaces the old conversion.
        if *field.name() == out_name {
            continue;
        }
        columns.push(Arc::clone(batch.column(i)));
        if field.name() == amount {
            columns.push(Arc::clone(&converted));
        }
    }
    let batch = RecordBatch::try_new(with_reporting_field(&schema, amount), columns)
        .map_err(|e| Error::encode(table, e))?;
    Ok((batch, missing))
}

/// The schema of `spend` batches once [`add_spend_reporting`] has run over them.
pub fn spend_reporting_schema(spend: &Schema) -> SchemaRef {
    with_reporting_field(spend, "spend")
}

/// The schema of `costs` batches once [`add_costs_reporting`] has run over them.
pub fn costs_reporting_schema(costs: &Schema) -> SchemaRef {
    with_reporting_field(costs, "amount")
}

/// `schema` with `<amount>_reporting` right after `amount` (an old one dropped), as
/// [`add_reporting`] lays its batches out: writers declare their files with it up front.
fn with_reporting_field(schema: &Schema, amount: &str) -> SchemaRef {
    let out_name = reporting_name(amount);
    let mut fields: Vec<Field> = Vec::with_capacity(schema.fields().len() + 1);
    for field in schema.fields() {
        if *field.name() == out_name {
            continue;
        }
        fields.push(field.as_ref().clone());
        if field.name() == amount {
            fields.push(reporting_field(&out_name));
        }
    }
    Arc::new(Schema::new(fields))
}

fn reporting_name(amount: &str) -> String {
    format!("{amount}_reporting")
}

fn reporting_field(name: &str) -> Field {
    Field::new(name, crate::normalize::money_type(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::dates::epoch_days;
    use chrono::NaiveDate;

    fn day(s: &str) -> i32 {
        epoch_days(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn rates_carry_forward_and_convert_exactly() {
        let mut fx = FxRates::new("EUR");
        fx.add_text(
            "date,currency,rate\n2026-10-01,USD,0.9\n2026-10-15,USD,0.8\n",
            "t",
        )
        .unwrap();
        // Before the first rate: none.
        assert_eq!(fx.convert(1_000_000, "USD", day("2026-09-30")), None);
        // 12.345678 USD × 0.9 = 11.1111102 → 11.111110 (rounded to micros).
        assert_eq!(
            fx.convert(12_345_678, "USD", day("2026-10-01")),
            Some(11_111_110)
        );
        // Carried forward to the 14th, replaced on the 15th: 10 USD × 0.8 = 8 EUR.
        assert_eq!(
            fx.convert(10_000_000, "USD", day("2026-10-14")),
            Some(9_000_000)
        );
        assert_eq!(
            fx.convert(10_000_000, "USD", day("2026-12-31")),
            Some(8_000_000)
        );
        // The reporting currency converts at 1; an unknown currency does not convert.
        assert_eq!(fx.convert(5, "EUR", 0), Some(5));
        assert_eq!(fx.convert(5, "GBP", day("2026-10-20")), None);
        // Half away from zero: 0.000001 × 0.5 = 0.0000005 → 0.000001.
        fx.insert("2026-01-01", "SEK", "0.5").unwrap();
        assert_eq!(fx.convert(1, "SEK", day("2026-02-01")), Some(1));
    }

    #[test]
    fn json_and_inline_rates_and_bad_input() {
        let mut fx = FxRates::new("EUR");
        fx.add_text(
            r#"[{"date":"2026-01-01","currency":"USD","rate":"0.5"},{"date":"2026-02-01","currency":"USD","rate":0.25}]"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            fx.convert(4_000_000, "USD", day("2026-02-02")),
            Some(1_000_000)
        );
        assert!(
            fx.insert("2026-13-01", "USD", "1")
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        assert!(
            fx.insert("2026-01-01", "usd", "1")
                .unwrap_err()
                .contains("ISO-4217")
        );
        assert!(
            fx.insert("2026-01-01", "USD", "0")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(fx.insert("2026-01-01", "USD", "1,2").is_err());
        let err = FxRates::new("EUR")
            .add_text("date,currency,rate\n2026-01-01,USD,x\n", "rates.csv")
            .unwrap_err();
        assert!(err.contains("rates.csv: line 2"), "{err}");
    }
}
