//! Third-party intent data → `intent_signals`, from a CSV or JSON file at a local path,
//! `file://`, `s3://` or `http(s)://` URL (read like a costs file, see [`super::file`]): one
//! row per company domain or e-mail, topic and date with the provider's score, as the
//! common intent-data exports have them (Bombora's "Company Surge": domain, topic, composite
//! score 0–100, week). A line that does not parse goes to `_rejects` with its file and line
//! number; the rest load. The table is replaced whole on every run
//! (`intent_signals/<job>.<source>.parquet`): the file is the provider's current export.
//!
//! The metrics step joins the signals to leads by `leads.email_domain` and `leads.email_hash`
//! (`crate::metrics::intent`). A raw `email` column is hashed with the job's key on reading
//! and never written; an `email_hash` column must already hold that keyed hash.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::SourceContext;
use super::file::{FileFormat, check_format, column_name};
use crate::config::Template;
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::{IntentSignalRow, PersonalDataHasher};
use crate::sources::RowSink;

/// `[[sources]] kind = "intent"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentConfig {
    /// Unique source name; also `intent_signals.provider`.
    pub name: String,
    /// Where the file is: a path (relative to the job file), `file://…`,
    /// `s3://bucket/key` or `http(s)://…`.
    pub url: Template,
    /// `csv` or `json`; by default from the file extension (`.csv`, `.json`, `.jsonl`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Timeouts and retries for `http(s)://` URLs.
    #[serde(default)]
    pub http: HttpSettings,
}

impl IntentConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(check_format(self.format, self.url.raw()));
        problems
    }
}

/// The names each column is accepted under (after [`column_name`]): the common exports'.
const DOMAIN: &[&str] = &[
    "domain",
    "company_domain",
    "domain_name",
    "website",
    "company_website",
];
const EMAIL_HASH: &[&str] = &["email_hash"];
const EMAIL: &[&str] = &["email", "email_address", "work_email"];
const DATE: &[&str] = &["date", "signal_date", "week", "week_start", "week_of"];
const TOPIC: &[&str] = &["topic", "topic_name", "intent_topic"];
const SCORE: &[&str] = &["score", "composite_score", "intent_score", "surge_score"];

/// Read the file and load every line into `out`.
pub async fn pull(
    cfg: &IntentConfig,
    url: &str,
    ctx: &SourceContext,
    out: &mut impl RowSink<IntentSignalRow>,
) -> Result<()> {
    let key: Vec<&str> = [DOMAIN, EMAIL_HASH, EMAIL].concat();
    let required: [&[&str]; 3] = [&key, DATE, SCORE];
    let (name, records) = super::file::load(
        url,
        cfg.format,
        "intent/file",
        "intent file",
        &required,
        ctx,
    )
    .await?;
    for (line, record) in records {
        let location = format!("{name}:{line}");
        let decoded = record
            .and_then(|r| decode(&r, &cfg.name, &ctx.hasher).map_err(|e| (Value::Object(r), e)));
        match decoded {
            Ok(row) => out.push(row).await?,
            Err((mut raw, reason)) => {
                // A raw `email` column never reaches `_rejects`.
                crate::normalize::scrub_personal_data(&mut raw, &ctx.hasher);
                out.reject(&location, &raw, reason);
            }
        }
    }
    Ok(())
}

/// The trimmed text of the first of `names` the record has (keys compared as
/// [`column_name`] writes them, so JSON keys may be `Topic Name` too).
fn field(record: &Map<String, Value>, names: &[&str]) -> Option<String> {
    let (_, value) = record
        .iter()
        .find(|(key, _)| names.contains(&column_name(key).as_str()))?;
    match value {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// One record as an `intent_signals` row, or why not.
pub fn decode(
    record: &Map<String, Value>,
    provider: &str,
    hasher: &PersonalDataHasher,
) -> std::result::Result<IntentSignalRow, String> {
    let domain = field(record, DOMAIN).map(|d| domain_of(&d)).transpose()?;
    let email_hash = match (field(record, EMAIL_HASH), field(record, EMAIL)) {
        (Some(hash), _) => {
            let hash = hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(
                    "email_hash is not a 64-hex-digit keyed hash (leads.email_hash)".into(),
                );
            }
            Some(hash)
        }
        (None, Some(email)) if email.contains('@') => Some(hasher.hash(&email)),
        (None, Some(_)) => return Err("email is not an e-mail address".into()),
        (None, None) => None,
    };
    if domain.is_none() && email_hash.is_none() {
        return Err("no domain, email_hash or email: the signal matches no lead".into());
    }
    let date_text = field(record, DATE).ok_or("date is missing")?;
    let date = parse_date(&date_text)?;
    let score_text = field(record, SCORE).ok_or("score is missing")?;
    let score: f64 = score_text
        .parse()
        .map_err(|_| format!("score `{score_text}` is not a number"))?;
    if !(0.0..=100.0).contains(&score) {
        return Err(format!("score {score_text} is outside 0-100"));
    }
    Ok(IntentSignalRow {
        provider: provider.to_string(),
        domain,
        email_hash,
        date: crate::days::epoch_days(date),
        topic: field(record, TOPIC),
        score,
    })
}

/// A company domain as `leads.email_domain` holds one: lower-case, without scheme, `www.`,
/// port, path or trailing dot (`https://www.Acme.com/about` is `acme.com`).
fn domain_of(text: &str) -> std::result::Result<String, String> {
    let lower = text.trim().to_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split(['/', '?', '#', ':']).next().unwrap_or_default();
    let host = host
        .strip_prefix("www.")
        .unwrap_or(host)
        .trim_end_matches('.');
    let valid = host.contains('.')
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(host.to_string())
    } else if text.contains('@') {
        // Never quote what may be an e-mail address.
        Err("domain holds an e-mail address, not a domain".into())
    } else {
        Err(format!("domain `{text}` is not a domain name"))
    }
}

/// `YYYY-MM-DD`, an RFC 3339 timestamp (its UTC day) or `YYYY-MM-DD HH:MM:SS`.
fn parse_date(text: &str) -> std::result::Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&chrono::Utc).date_naive())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map(|t| t.date())
        })
        .map_err(|_| format!("date `{text}` is not YYYY-MM-DD"))
}

impl super::SourceKind for IntentConfig {
    const KIND: &'static str = "intent";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::IntentSignals;
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
        IntentConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        pull(self, &resolved.base_url, ctx, outputs.intent()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::file::{csv_records, json_records};

    fn required() -> Vec<Vec<&'static str>> {
        vec![
            [DOMAIN, EMAIL_HASH, EMAIL].concat(),
            DATE.to_vec(),
            SCORE.to_vec(),
        ]
    }

    #[test]
    fn bombora_style_csv_rows_and_their_rejects() {
        let hasher = PersonalDataHasher::new(b"k");
        let text = "Domain,Company Name,Topic Name,Composite Score,Date\n\
            https://www.Acme.com/about,Acme,Data Warehousing,72,2026-11-16\n\
            acme.com,Acme,ETL,130,2026-11-16\n\
            ,Nobody,ETL,50,2026-11-16\n\
            globex.io,Globex,ETL,55.5,16/11/2026\n";
        let required = required();
        let required: Vec<&[&str]> = required.iter().map(Vec::as_slice).collect();
        let records = csv_records(text, &required).unwrap();
        let row = decode(records[0].1.as_ref().unwrap(), "bombora", &hasher).unwrap();
        assert_eq!(row.domain.as_deref(), Some("acme.com"));
        assert_eq!(row.topic.as_deref(), Some("Data Warehousing"));
        assert_eq!(row.score, 72.0);
        assert_eq!(row.date, 20_773, "2026-11-16 is day 20773");
        assert_eq!(row.provider, "bombora");
        let reason = |i: usize| decode(records[i].1.as_ref().unwrap(), "b", &hasher).unwrap_err();
        assert!(reason(1).contains("outside 0-100"), "{}", reason(1));
        assert!(reason(2).contains("no domain"), "{}", reason(2));
        assert!(reason(3).contains("YYYY-MM-DD"), "{}", reason(3));

        let no_score = "domain,topic,date\nacme.com,ETL,2026-11-16\n";
        let err = csv_records(no_score, &required).unwrap_err();
        assert!(err.contains("`score` or `composite_score`"), "{err}");
    }

    #[test]
    fn emails_are_hashed_and_hashes_checked() {
        let hasher = PersonalDataHasher::new(b"k");
        let lines = format!(
            "{{\"email\": \"Ann@Example.com\", \"topic\": \"CRM\", \"score\": 80, \"date\": \"2026-11-20T10:00:00Z\"}}\n\
             {{\"email_hash\": \"{}\", \"score\": 10, \"date\": \"2026-11-20\"}}\n\
             {{\"email_hash\": \"abc\", \"score\": 10, \"date\": \"2026-11-20\"}}\n",
            "A".repeat(64)
        );
        let records = json_records(&lines).unwrap();
        let row = decode(records[0].1.as_ref().unwrap(), "p", &hasher).unwrap();
        assert_eq!(
            row.email_hash.as_deref(),
            Some(hasher.hash("ann@example.com").as_str())
        );
        assert_eq!(row.domain, None);
        let row = decode(records[1].1.as_ref().unwrap(), "p", &hasher).unwrap();
        assert_eq!(row.email_hash, Some("a".repeat(64)));
        assert!(decode(records[2].1.as_ref().unwrap(), "p", &hasher).is_err());
        assert!(
            domain_of("ann@example.com")
                .unwrap_err()
                .contains("e-mail address")
        );
    }
}
