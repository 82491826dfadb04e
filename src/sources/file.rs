//! Files a source reads whole — a CSV or JSON file at a local path, `file://`, `s3://` or
//! `http(s)://` URL — shared by the `costs` and `intent` sources: reading the bytes (an
//! `http(s)` body goes through the run's page landing like any vendor page), telling the
//! format from the name, and splitting the text into records that keep their line numbers
//! for `_rejects.location`.
//!
//! An `s3://` file is read through the [`ObjectOpener`] the run hands the source (the
//! warehouse's own S3 settings); a source never builds a store itself.

use std::sync::Arc;

use object_store::ObjectStore;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::SourceContext;
use crate::error::{Detail, Error, Result};

/// Opens the object an object-store URL (`s3://bucket/key`) names, for a file a source reads
/// whole. The run provides it, built like its warehouse's store, so both honour the same
/// environment (endpoint, region, path style, `AWS_ALLOW_HTTP`, credentials) and read a key
/// written in a URL the same way.
pub trait ObjectOpener: Send + Sync + std::fmt::Debug {
    /// The store holding the object `url` names, and the object's key in it; the error
    /// completes a sentence about the URL (`names no bucket`).
    fn open(
        &self,
        url: &str,
    ) -> std::result::Result<(Arc<dyn ObjectStore>, object_store::path::Path), Detail>;
}

/// File format of a CSV-or-JSON source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Comma-separated with a header line (RFC 4180 quoting).
    Csv,
    /// A JSON array of objects, or JSON Lines.
    Json,
}

/// The `format` problem of a source whose format is neither given nor told by its name.
pub fn check_format(format: Option<FileFormat>, url: &str) -> Option<(&'static str, String)> {
    (format.is_none() && format_from_name(url).is_none()).then(|| {
        (
            "format",
            "cannot tell the format from the file name: set format = \"csv\" or \"json\""
                .to_string(),
        )
    })
}

/// Read the file at `url` and split it into records: its display name (for
/// `_rejects.location`, no query string or user info) and `(line, record)` pairs. A CSV
/// header must name every column of `required`; `what` names the file in errors.
pub async fn load(
    url: &str,
    format: Option<FileFormat>,
    endpoint: &str,
    what: &str,
    required: &[&[&str]],
    ctx: &SourceContext,
) -> Result<(String, Vec<(usize, Record)>)> {
    let format = format
        .or_else(|| format_from_name(url))
        .unwrap_or(FileFormat::Csv);
    let bytes = read(url, endpoint, what, ctx).await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ctx.protocol(url, format!("the {what} is not UTF-8 text")))?;
    let records = match format {
        FileFormat::Csv => csv_records(&text, required).map_err(|m| ctx.protocol(url, m))?,
        FileFormat::Json => json_records(&text).map_err(|m| ctx.protocol(url, m))?,
    };
    Ok((display_name(url), records))
}

pub fn format_from_name(name: &str) -> Option<FileFormat> {
    let path = name
        .split(['?', '#'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    if path.ends_with(".csv") {
        Some(FileFormat::Csv)
    } else if path.ends_with(".json") || path.ends_with(".jsonl") || path.ends_with(".ndjson") {
        Some(FileFormat::Json)
    } else {
        None
    }
}

/// The URL without query string or user info, for `_rejects.location`.
pub fn display_name(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() != "file" && u.host_str().is_some() => crate::http::redact_url(&u),
        _ => url.to_string(),
    }
}

/// The bytes of the file at `url`.
///
/// `endpoint` names the body in `_raw/` (design §9, e.g. `costs/file`); `what` names the
/// file in errors (`costs file`).
pub async fn read(
    url: &str,
    endpoint: &str,
    what: &str,
    ctx: &SourceContext,
) -> Result<bytes::Bytes> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let request = ctx.http.inner().get(url);
        return ctx.pages.fetch(endpoint, request).await;
    }
    if url.starts_with("s3://") {
        return read_object(url, what, ctx).await;
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    tokio::fs::read(path)
        .await
        .map(bytes::Bytes::from)
        .map_err(|e| {
            let problem = crate::config::file_problem(&e);
            Error::io(format!("{what} {path} {problem}"), e)
        })
}

/// The bytes of the object `url` names, through the run's [`ObjectOpener`]. Errors name the
/// source and the URL (redacted) and keep the object store's error as their cause.
async fn read_object(url: &str, what: &str, ctx: &SourceContext) -> Result<bytes::Bytes> {
    use object_store::ObjectStoreExt;
    let failed =
        |detail: Detail| Error::source_file(&ctx.source_name, what, display_name(url), detail);
    let Some(opener) = &ctx.objects else {
        return Err(failed(
            "cannot be read: the run gave this source no object store".into(),
        ));
    };
    let (store, key) = opener.open(url).map_err(failed)?;
    let not_read = |e: object_store::Error| {
        failed(match e {
            object_store::Error::NotFound { .. } => Detail::new("does not exist".into(), e),
            e => Detail::new(format!("cannot be read: {e}"), e),
        })
    };
    let got = store.get(&key).await.map_err(not_read)?;
    got.bytes().await.map_err(not_read)
}

/// One record of a file: its fields by (lower-cased, for CSV) name, or the raw text and why
/// it is unreadable.
pub type Record = std::result::Result<Map<String, Value>, (Value, String)>;

/// The fields of one CSV record, or the raw text and why it is unreadable.
type Fields = std::result::Result<Vec<String>, (Value, String)>;

/// `(line number, record)` of every data line of a CSV text with a header line. Header names
/// are trimmed, lower-cased, with spaces and hyphens as `_` (`Topic Name` is `topic_name`).
/// `required` lists the columns the header must have, each as its accepted names: a column
/// none of whose names is there is an error.
pub fn csv_records(
    text: &str,
    required: &[&[&str]],
) -> std::result::Result<Vec<(usize, Record)>, String> {
    let mut rows = csv_rows(text).into_iter();
    let Some((_, Ok(header))) = rows.next() else {
        return Err("the CSV file has no header line".into());
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| column_name(h.trim_start_matches('\u{feff}')))
        .collect();
    for names in required {
        if !header.iter().any(|h| names.contains(&h.as_str())) {
            return Err(format!(
                "the CSV header has no `{}` column (found: {})",
                names.join("` or `"),
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

/// A column name as records key it: trimmed, lower-cased, spaces and hyphens as `_`.
pub fn column_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
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
pub fn json_records(text: &str) -> std::result::Result<Vec<(usize, Record)>, String> {
    let object = |v: Value| match v {
        Value::Object(map) => Ok(map),
        other => Err((other, "not a JSON object".to_string())),
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> = crate::json::from_str(text)
            .map_err(|e| format!("the JSON file is not an array of objects: {e}"))?;
        // Line of each item: JSON arrays in such files put one object per line; count
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

/// The trimmed text of `key` (numbers and booleans as written); `None` when absent, null
/// or blank.
pub fn text_of(record: &Map<String, Value>, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    /// Every URL names its last segment as a key of one in-memory store, whatever its bucket.
    #[derive(Debug)]
    struct OneStore(Arc<InMemory>);

    impl ObjectOpener for OneStore {
        fn open(
            &self,
            url: &str,
        ) -> std::result::Result<(Arc<dyn ObjectStore>, object_store::path::Path), Detail> {
            let key = url.rsplit('/').next().unwrap_or_default();
            let key = object_store::path::Path::parse(key).map_err(Detail::caused_by)?;
            Ok((Arc::clone(&self.0) as Arc<dyn ObjectStore>, key))
        }
    }

    fn ctx() -> SourceContext {
        SourceContext::for_test(
            "costs",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            crate::state::SourceState::default(),
        )
    }

    #[tokio::test]
    async fn an_s3_file_is_read_through_the_runs_opener() {
        let store = Arc::new(InMemory::new());
        store
            .put(
                &object_store::path::Path::parse("costs.csv").unwrap(),
                PutPayload::from_static(b"month\n"),
            )
            .await
            .unwrap();
        let ctx = ctx().with_objects(Arc::new(OneStore(store)));
        let bytes = read("s3://b/costs.csv", "costs/file", "costs file", &ctx)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"month\n");
    }

    #[tokio::test]
    async fn a_missing_object_names_the_source_and_the_redacted_url_and_keeps_the_cause() {
        let ctx = ctx().with_objects(Arc::new(OneStore(Arc::new(InMemory::new()))));
        let e = read("s3://user:pw@b/gone.csv", "costs/file", "costs file", &ctx)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "source `costs`: costs file s3://b/gone.csv does not exist"
        );
        assert!(matches!(
            e.source()
                .and_then(|c| c.downcast_ref::<object_store::Error>()),
            Some(object_store::Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_context_without_a_run_cannot_read_s3_files() {
        let e = read("s3://b/costs.csv", "costs/file", "costs file", &ctx())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::SourceFile { source_name, url, .. } if source_name == "costs" && url == "s3://b/costs.csv"),
            "{e}"
        );
    }
}
