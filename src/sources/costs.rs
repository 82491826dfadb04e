//! Non-ad marketing and sales costs (salaries, tools, events, agencies) → `costs`, from a
//! CSV or JSON file at a local path, `file://`, `s3://` or `http(s)://` URL: one row per
//! month, category, optional channel and currency, with an exact decimal amount. A line
//! that does not parse goes to `_rejects` with its file and line number; the rest load.
//! The table is replaced whole on every run (`costs/<job>.<source>.parquet`).
//!
//! CSV needs a header naming `month, category, channel, currency, amount` (any order,
//! `channel` optional); JSON is an array of objects or JSON Lines with those keys. Reading
//! and splitting the file is [`super::file`]'s, shared with the `intent` source.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::SourceContext;
use super::file::{check_format, text_of};
use crate::config::Template;
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::CostRow;
use crate::normalize::parse::{decimal_micros, snake_case};
use crate::sources::RowSink;

/// File format of a costs file.
pub use super::file::FileFormat as CostsFormat;

/// `[[sources]] kind = "costs"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostsConfig {
    /// Unique source name.
    pub name: String,
    /// Where the file is: a path (relative to the job file), `file://…`,
    /// `s3://bucket/key` or `http(s)://…`.
    pub url: Template,
    /// `csv` or `json`; by default from the file extension (`.csv`, `.json`, `.jsonl`).
    #[serde(default)]
    pub format: Option<CostsFormat>,
    /// Timeouts and retries for `http(s)://` URLs.
    #[serde(default)]
    pub http: HttpSettings,
}

impl CostsConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(check_format(self.format, self.url.raw()));
        problems
    }
}

/// Read the file and load every line into `out`.
pub async fn pull(
    cfg: &CostsConfig,
    url: &str,
    ctx: &SourceContext,
    out: &mut impl RowSink<CostRow>,
) -> Result<()> {
    let required: [&[&str]; 4] = [&["month"], &["category"], &["currency"], &["amount"]];
    let (name, records) =
        super::file::load(url, cfg.format, "costs/file", "costs file", &required, ctx).await?;
    for (line, record) in records {
        let location = format!("{name}:{line}");
        match record.and_then(|r| decode(&r).map_err(|e| (Value::Object(r), e))) {
            Ok(row) => out.push(row).await?,
            Err((raw, reason)) => out.reject(&location, &raw, reason),
        }
    }
    Ok(())
}

/// One record as a `costs` row, or why not.
pub fn decode(record: &Map<String, Value>) -> std::result::Result<CostRow, String> {
    let month_text = text_of(record, "month").ok_or("month is missing")?;
    let month = parse_month(&month_text)?;
    let category = text_of(record, "category").ok_or("category is missing")?;
    let currency = text_of(record, "currency").ok_or("currency is missing")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "currency `{currency}` is not an ISO-4217 code like EUR"
        ));
    }
    let amount_text = text_of(record, "amount").ok_or("amount is missing")?;
    let amount = decimal_micros(&amount_text).map_err(|e| format!("amount: {e}"))?;
    Ok(CostRow {
        month: crate::days::epoch_days(month),
        category,
        channel: text_of(record, "channel").map(|c| snake_case(&c)),
        currency,
        amount,
    })
}

/// `YYYY-MM` or `YYYY-MM-01` as the first day of the month.
fn parse_month(text: &str) -> std::result::Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .map_err(|_| format!("month `{text}` is not YYYY-MM"))?;
    if date.day() != 1 {
        return Err(format!("month `{text}` is not the first day of a month"));
    }
    Ok(date)
}

impl super::SourceKind for CostsConfig {
    const KIND: &'static str = "costs";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Costs;
    // The file's URL plays the base URL's part; it may be a path (relative to the job
    // file) or an object-store URL, checked as such elsewhere.
    const URL_IS_PATH: bool = true;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.url
    }

    fn http_urls(&self) -> Vec<(&'static str, &Template)> {
        Vec::new()
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        Vec::new()
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        CostsConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        pull(self, &resolved.base_url, ctx, outputs.costs()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::file::{csv_records, json_records};

    const REQUIRED: [&[&str]; 4] = [&["month"], &["category"], &["currency"], &["amount"]];

    #[test]
    fn csv_lines_keep_their_numbers_and_quotes() {
        let text = "month,category,channel,currency,amount\n2026-10,Salaries,,EUR,42000.00\n\n\"2026-11\",\"Events, fairs\",paid social,EUR,\"1,5\"\n2026-11,Tools,,usd,99.99\n";
        let records = csv_records(text, &REQUIRED).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].0, 2);
        assert_eq!(records[1].0, 4);
        let first = decode(records[0].1.as_ref().unwrap()).unwrap();
        assert_eq!(first.amount, 42_000_000_000);
        assert_eq!(first.channel, None);
        let second = records[1].1.as_ref().unwrap();
        assert_eq!(second["category"], "Events, fairs");
        assert!(decode(second).unwrap_err().contains("amount"));
        assert!(
            decode(records[2].1.as_ref().unwrap())
                .unwrap_err()
                .contains("currency")
        );
    }

    #[test]
    fn json_arrays_and_lines() {
        let array = "[\n  {\"month\": \"2026-10\", \"category\": \"Tools\", \"currency\": \"EUR\", \"amount\": \"10.5\"},\n  {\"month\": \"2026-13\", \"category\": \"Tools\", \"currency\": \"EUR\", \"amount\": \"1\"}\n]";
        let records = json_records(array).unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(
            decode(records[1].1.as_ref().unwrap())
                .unwrap_err()
                .contains("2026-13")
        );
        let lines = "{\"month\": \"2026-10-01\", \"category\": \"Agency\", \"channel\": \"Paid Search\", \"currency\": \"GBP\", \"amount\": 1200}\nnot json\n";
        let records = json_records(lines).unwrap();
        let row = decode(records[0].1.as_ref().unwrap()).unwrap();
        assert_eq!(row.channel.as_deref(), Some("paid_search"));
        assert_eq!(row.amount, 1_200_000_000);
        assert!(records[1].1.is_err());
    }
}
