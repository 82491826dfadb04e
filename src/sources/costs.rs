//! Non-ad marketing and sales costs (salaries, tools, events, agencies) → `costs`, from a
//! CSV or JSON file at a local path, `file://`, `s3://` or `http(s)://` URL: one row per
//! month, category, optional channel and currency, with an exact decimal amount. A line
//! that does not parse goes to `_rejects` with its file and line number; the rest load.
//! The table is replaced whole on every run (`costs/<job>.<source>.parquet`).
//!
//! CSV needs a header naming `month, category, channel, currency, amount` (any order,
//! `channel` optional); JSON is an array of objects or JSON Lines with those keys.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::SourceContext;
use crate::config::Template;
use crate::error::{Error, Result};
use crate::http::HttpSettings;
use crate::normalize::parse::{decimal_micros, snake_case};
use crate::normalize::{CostRow, CostsBuilder};
use crate::sink::DatasetOutput;

/// File format of a costs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostsFormat {
    /// Comma-separated with a header line (RFC 4180 quoting).
    Csv,
    /// A JSON array of objects, or JSON Lines.
    Json,
}

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
        if self.format.is_none() && format_from_name(self.url.raw()).is_none() {
            problems.push((
                "format",
                "cannot tell the format from the file name: set format = \"csv\" or \"json\""
                    .to_string(),
            ));
        }
        problems
    }
}

fn format_from_name(name: &str) -> Option<CostsFormat> {
    let path = name
        .split(['?', '#'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    if path.ends_with(".csv") {
        Some(CostsFormat::Csv)
    } else if path.ends_with(".json") || path.ends_with(".jsonl") || path.ends_with(".ndjson") {
        Some(CostsFormat::Json)
    } else {
        None
    }
}

/// Read the file and load every line into `out`.
pub async fn pull(
    cfg: &CostsConfig,
    url: &str,
    ctx: &SourceContext,
    out: &mut DatasetOutput<CostsBuilder>,
) -> Result<()> {
    let format = cfg
        .format
        .or_else(|| format_from_name(url))
        .unwrap_or(CostsFormat::Csv);
    let bytes = read(url, ctx).await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ctx.protocol(url, "the costs file is not UTF-8 text"))?;
    let name = display_name(url);
    let records = match format {
        CostsFormat::Csv => csv_records(&text).map_err(|m| ctx.protocol(url, m))?,
        CostsFormat::Json => json_records(&text).map_err(|m| ctx.protocol(url, m))?,
    };
    for (line, record) in records {
        let location = format!("{name}:{line}");
        match record.and_then(|r| decode(&r).map_err(|e| (Value::Object(r), e))) {
            Ok(row) => out.push(row).await?,
            Err((raw, reason)) => out.reject(&location, &raw, reason),
        }
    }
    Ok(())
}

/// The URL without query string or user info, for `_rejects.location`.
fn display_name(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() != "file" && u.host_str().is_some() => crate::http::redact_url(&u),
        _ => url.to_string(),
    }
}

async fn read(url: &str, ctx: &SourceContext) -> Result<bytes::Bytes> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let request = ctx.http.inner().get(url);
        return ctx.pages.fetch("costs/file", request).await;
    }
    if url.starts_with("s3://") {
        use object_store::ObjectStoreExt;
        let parsed = url::Url::parse(url).map_err(|e| Error::storage(url, e))?;
        let bucket = format!("s3://{}", parsed.host_str().unwrap_or_default());
        let key = object_store::path::Path::from(parsed.path().trim_start_matches('/'));
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(bucket)
                .build()
                .map_err(|e| Error::storage(url, e))?,
        );
        let got = store.get(&key).await.map_err(|e| Error::storage(url, e))?;
        return got.bytes().await.map_err(|e| Error::storage(url, e));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    tokio::fs::read(path)
        .await
        .map(bytes::Bytes::from)
        .map_err(|e| {
            let problem = crate::config::file_problem(&e);
            Error::io(format!("costs file {path} {problem}"), e)
        })
}

type Record = std::result::Result<Map<String, Value>, (Value, String)>;

/// The fields of one CSV record, or the raw text and why it is unreadable.
type Fields = std::result::Result<Vec<String>, (Value, String)>;

/// `(line number, record)` of every data line of a CSV text with a header line.
fn csv_records(text: &str) -> std::result::Result<Vec<(usize, Record)>, String> {
    let mut rows = csv_rows(text).into_iter();
    let Some((_, Ok(header))) = rows.next() else {
        return Err("the CSV file has no header line".into());
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    for needed in ["month", "category", "currency", "amount"] {
        if !header.iter().any(|h| h == needed) {
            return Err(format!(
                "the CSV header has no `{needed}` column (found: {})",
                header.join(", ")
            ));
        }
    }
    Ok(rows
        .map(|(line, fields)| {
            let record = fields.and_then(|fields| {
                let map: Map<String, Value> = header
                    .iter()
                    .zip(fields.iter().map(|f| Value::String(f.clone())))
                    .map(|(h, v)| (h.clone(), v))
                    .collect();
                if fields.len() != header.len() {
                    Err((
                        Value::Object(map),
                        format!("{} fields, the header has {}", fields.len(), header.len()),
                    ))
                } else {
                    Ok(map)
                }
            });
            (line, record)
        })
        .collect())
}

/// Split CSV text into records: `(line the record starts on, fields)`; blank lines skipped.
/// Quoted fields may hold commas, doubled quotes and line breaks.
fn csv_rows(text: &str) -> Vec<(usize, Fields)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut raw = String::new();
        let mut error = None;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    error = Some("a quoted field is never closed".to_string());
                }
                break;
            };
            if c != '\n' && c != '\r' || quoted {
                raw.push(c);
            }
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        raw.push('"');
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() => quoted = true,
                ',' => fields.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    line += 1;
                    break;
                }
                _ => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() == 1 && fields[0].trim().is_empty() && error.is_none() {
            continue;
        }
        let record = match error {
            Some(e) => Err((Value::String(raw), e)),
            None => Ok(fields),
        };
        out.push((start, record));
    }
    out
}

/// `(line or item number, record)` of a JSON array of objects or of JSON Lines.
fn json_records(text: &str) -> std::result::Result<Vec<(usize, Record)>, String> {
    let object = |v: Value| match v {
        Value::Object(map) => Ok(map),
        other => Err((other, "not a JSON object".to_string())),
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> = crate::json::from_str(text)
            .map_err(|e| format!("the JSON file is not an array of objects: {e}"))?;
        // Line of each item: JSON arrays in costs files put one object per line; count
        // from the item's position in a re-scan of top-level objects.
        let lines = top_level_object_lines(text);
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (lines.get(i).copied().unwrap_or(i + 1), object(v)))
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let record = crate::json::from_str::<Value>(l)
                .map_err(|e| (Value::String(l.to_string()), format!("not JSON: {e}")))
                .and_then(object);
            (i + 1, record)
        })
        .collect())
}

/// The line on which each element of the top-level JSON array starts.
fn top_level_object_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut line, mut in_string, mut escaped) = (0usize, 1usize, false, false);
    let mut starts = Vec::new();
    let mut expecting = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expecting && !c.is_whitespace() && c != ',' && c != ']' {
            starts.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    starts
}

fn text_of(record: &Map<String, Value>, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
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
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok(CostRow {
        month: (month - epoch).num_days() as i32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_keep_their_numbers_and_quotes() {
        let text = "month,category,channel,currency,amount\n2026-10,Salaries,,EUR,42000.00\n\n\"2026-11\",\"Events, fairs\",paid social,EUR,\"1,5\"\n2026-11,Tools,,usd,99.99\n";
        let records = csv_records(text).unwrap();
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
