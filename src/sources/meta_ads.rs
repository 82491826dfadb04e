//! Meta (Facebook) Ads Insights → `spend`: `GET /{version}/act_{id}/insights` at campaign
//! level with `time_increment=1` over date chunks, following `paging.next` verbatim until it
//! is absent or `data` is empty. Spend is a decimal string in the account currency (parsed
//! exactly), a missing `clicks` is 0. Throttles (codes 4, 17, 32, 613, 80000-range) wait the
//! `estimated_time_to_regain_access` of the usage headers; code 1 ("reduce the amount of
//! data") splits the date range in halves and pulls each, and so does a range that holds
//! more rows than it may keep waiting for its last page (later ranges of the account then
//! start that short); an invalid or expired token (190) fails the source at once. `next`
//! links carry the access token: they are followed but never logged, and redacted before a
//! body is landed raw.

use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::decoded_once::DecodedOnce;
use super::lenient::{RawRecords, decode_each, lenient_object, read_each};
use super::spend_window::{Window, WindowSettings, halve};
use super::{DecodedPage, SourceContext, answer, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::{HttpSettings, Verdict, body_excerpt, retry_after};
use crate::normalize::SpendRow;
use crate::normalize::parse::{Scalar, date_days, decimal_micros, opt_i64, opt_small_str, opt_str};
use crate::sources::RowSink;

/// `[[sources]] kind = "meta_ads"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaAdsConfig {
    /// Unique source name.
    pub name: String,
    /// Graph API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Graph API version path segment, e.g. `v23.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Ad account ids, digits with or without the `act_` prefix.
    pub account_ids: Vec<String>,
    /// System-user or long-lived user token with `ads_read`, e.g. `"${META_ACCESS_TOKEN}"`.
    pub access_token: Template,
    /// Days before today the first run pulls.
    #[serde(default = "default_initial_days")]
    pub initial_days: u32,
    /// Days before today every later run re-pulls (attribution restates up to 28 days).
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// Days per insights request before any split.
    #[serde(default = "default_chunk_days")]
    pub chunk_days: u32,
    /// Rows per page (`limit`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> Template {
    Template::new("https://graph.facebook.com")
}

fn default_api_version() -> String {
    "v23.0".to_string()
}

fn default_initial_days() -> u32 {
    90
}

fn default_lookback_days() -> u32 {
    7
}

fn default_chunk_days() -> u32 {
    31
}

fn default_page_size() -> u32 {
    500
}

/// The digits of an ad account id (`act_123` or `123`).
pub fn account_digits(id: &str) -> &str {
    id.strip_prefix("act_").unwrap_or(id)
}

impl MetaAdsConfig {
    /// The look-back settings.
    pub fn window(&self) -> WindowSettings {
        WindowSettings {
            initial_days: self.initial_days,
            lookback_days: self.lookback_days,
            chunk_days: self.chunk_days,
        }
    }

    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(self.window().check(93));
        if self.account_ids.is_empty() {
            problems.push(("account_ids", "list at least one ad account id".to_string()));
        }
        for id in &self.account_ids {
            let digits = account_digits(id);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                problems.push((
                    "account_ids",
                    format!("`{id}` is not an ad account id like act_1234567890"),
                ));
            }
        }
        let version_ok = self
            .api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok()
            });
        if !version_ok {
            problems.push((
                "api_version",
                format!(
                    "`{}` is not a Graph API version like v23.0",
                    self.api_version
                ),
            ));
        }
        if self.page_size == 0 || self.page_size > 5000 {
            problems.push(("page_size", "must be between 1 and 5000".to_string()));
        }
        problems
    }
}

const FIELDS: &str = "account_currency,campaign_id,campaign_name,spend,impressions,clicks";

/// What one request for a date range brought back.
enum RangeOutcome {
    /// Every page of the range, decoded, with where each was read (none when they were
    /// written as they came: a single day is never split).
    Done(Vec<(String, InsightsPage)>),
    /// Code 1: ask for less.
    TooMuchData(String),
    /// The range holds more rows than [`HELD_ROWS`]: pull it in halves instead.
    TooLarge,
}

/// Rows a range of several days holds before its pages are written (a code 1 on a later
/// page splits the range, and the rows read so far must then not be written). Past it the
/// range is pulled in halves, and later ranges of the account start no longer than that:
/// what a range holds stays bounded however many campaigns an account runs.
const HELD_ROWS: usize = 20_000;

/// Pull the window for every account into `out`.
pub async fn pull(
    cfg: &MetaAdsConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut impl RowSink<SpendRow>,
) -> Result<()> {
    let window = Window::for_run(&cfg.window(), ctx);
    let last = answer::LastAnswer::default();
    for account in &cfg.account_ids {
        let account = account_digits(account);
        let url = join_url(
            base_url,
            &format!("{}/act_{account}/insights", cfg.api_version),
        );
        // Days a range of this account may span: halved each time one held too many rows.
        let mut span = i64::from(cfg.chunk_days.max(1));
        for chunk in window.chunks(cfg.chunk_days) {
            // Ranges still to pull, first on top; code 1 replaces a range by its halves.
            let mut pending = vec![chunk];
            while let Some((from, to)) = pending.pop() {
                if (to - from).num_days() + 1 > span
                    && let Some((first, second)) = halve(from, to)
                {
                    pending.push(second);
                    pending.push(first);
                    continue;
                }
                let code_1 =
                    match pull_range(cfg, (&url, account), token, ctx, (from, to), &last, out)
                        .await?
                    {
                        RangeOutcome::Done(pages) => {
                            for (location, page) in pages {
                                page.write(out, &location).await?;
                            }
                            continue;
                        }
                        RangeOutcome::TooLarge => None,
                        RangeOutcome::TooMuchData(message) => Some(message),
                    };
                // Only code 1 can come back for a single day: its pages are never held.
                let Some((first, second)) = halve(from, to) else {
                    return Err(ctx.protocol(
                        &url,
                        format!(
                            "Meta asks for less data even for the single day {from} (code 1): {}; lower page_size",
                            code_1.unwrap_or_default()
                        ),
                    ));
                };
                if code_1.is_some() {
                    tracing::info!(source = %ctx.source_name, account, %from, %to,
                        "Meta asks for less data (code 1); splitting the date range");
                } else {
                    tracing::debug!(source = %ctx.source_name, account, %from, %to, held = HELD_ROWS,
                        "a date range holds too many rows to wait for its last page; splitting it");
                    span = span.min((first.1 - first.0).num_days() + 1);
                }
                pending.push(second);
                pending.push(first);
            }
        }
    }
    window.cover(ctx, out)
}

/// All pages of one account and range. The rows of a range of several days are held until
/// the range is complete, so a code 1 on a later page never leaves half a range behind (at
/// most [`HELD_ROWS`]: past it the range is given up, to be pulled in halves); a single day
/// cannot be split, so its pages go to `out` as they come (a code 1 there fails the source).
#[allow(
    clippy::too_many_arguments,
    reason = "the range's request context, passed through from the account loop"
)]
async fn pull_range(
    cfg: &MetaAdsConfig,
    (url, account): (&str, &str),
    token: &Secret,
    ctx: &SourceContext,
    (from, to): (NaiveDate, NaiveDate),
    last: &answer::LastAnswer,
    out: &mut impl RowSink<SpendRow>,
) -> Result<RangeOutcome> {
    let hold = from < to;
    let mut held = 0usize;
    let time_range = format!(r#"{{"since":"{from}","until":"{to}"}}"#);
    let limit = cfg.page_size.to_string();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("level", "campaign")
        .append_pair("fields", FIELDS)
        .append_pair("time_range", &time_range)
        .append_pair("time_increment", "1")
        .append_pair("limit", &limit)
        .finish();
    let mut request = ctx.http.inner().get(format!("{url}?{query}"));
    // The `after` cursor the request is sent with (none on a range's first page).
    let mut sent_after: Option<String> = None;
    let mut pages = Vec::new();
    let mut page = 0u64;
    loop {
        page += 1;
        // Checking that the answer is this request's reads its rows, so the page is
        // decoded there, once.
        let once = DecodedOnce::default();
        let body = {
            let key = request_key(account, (from, to), sent_after.as_deref());
            let ours = |body: &[u8]| {
                checked_decode(
                    body,
                    account,
                    (from, to),
                    sent_after.as_deref(),
                    (&key, last),
                )
            };
            let classify = once.checked(ctx, "meta_ads/insights", &verdict, ours);
            ctx.pages
                .fetch_scrubbed(
                    "meta_ads/insights",
                    request.bearer_auth(token.expose()),
                    &classify,
                    &scrub_tokens,
                )
                .await?
        };
        last.accepted(
            &request_key(account, (from, to), sent_after.as_deref()),
            &body,
        );
        // An error body the verdict accepts (code 1) was not decoded while judged.
        let decoded = once
            .take(&body)
            .unwrap_or_else(|| Answer::parse(&body).and_then(|a| a.decode(account, &body)))
            .map_err(|message| ctx.protocol(url, message))?;
        let mut page_rows = match decoded {
            Insights::TooMuchData(message) => return Ok(RangeOutcome::TooMuchData(message)),
            Insights::Page(page_rows) => page_rows,
        };
        // The link holds the token: it is not kept with the rows.
        let next = page_rows.next.take();
        let location = format!("act_{account} {from}..{to} page {page}");
        if !hold {
            page_rows.write(out, &location).await?;
        } else {
            held += page_rows.rows.len() + page_rows.rejects.len();
            pages.push((location, page_rows));
            if held > HELD_ROWS && next.is_some() {
                return Ok(RangeOutcome::TooLarge);
            }
        }
        match next {
            Some(next) => {
                // Verbatim: the cursor is opaque; the link is never logged (it holds the token).
                request = ctx.http.inner().get(&next);
                sent_after = reqwest::Url::parse(&next).ok().and_then(|link| {
                    link.query_pairs()
                        .find(|(k, _)| k == "after")
                        .map(|(_, v)| v.into_owned())
                });
            }
            None => return Ok(RangeOutcome::Done(pages)),
        }
    }
}

/// A decoded insights page: rows and rejects, and the `next` link to follow (none on the
/// last page: no link, or no rows).
type InsightsPage = DecodedPage<SpendRow, Option<String>>;

/// What one insights answer holds.
#[derive(Debug)]
enum Insights {
    /// Code 1, with Meta's message: ask for less data.
    TooMuchData(String),
    /// A page of rows.
    Page(InsightsPage),
}

lenient_object! {
    /// An insights answer: its rows and paging, or an error.
    struct AnswerParts<'a> {
        "error" => error: Scalar<'a>,
        "data" => data: RawRecords<'a>,
        "paging" => paging: PagingPart<'a>,
    }
}

lenient_object! {
    /// `paging`.
    struct PagingPart<'a> {
        "next" => next: Scalar<'a>,
        "cursors" => cursors: CursorsPart<'a>,
    }
}

lenient_object! {
    /// `paging.cursors`.
    struct CursorsPart<'a> {
        "after" => after: Scalar<'a>,
    }
}

lenient_object! {
    /// One insights row, as [`FIELDS`] asks for it.
    struct Row<'a> {
        "date_start" => date_start: Scalar<'a>,
        "date_stop" => date_stop: Scalar<'a>,
        "campaign_id" => campaign_id: Scalar<'a>,
        "campaign_name" => campaign_name: Scalar<'a>,
        "account_currency" => account_currency: Scalar<'a>,
        "spend" => spend: Scalar<'a>,
        "impressions" => impressions: Scalar<'a>,
        "clicks" => clicks: Scalar<'a>,
    }
}

/// An insights answer borrowed from its body, each row parsed into a borrowed [`Row`].
#[derive(Debug)]
struct Answer<'a> {
    /// `error`, when there is one (even `null`).
    error: Option<Scalar<'a>>,
    /// The rows of `data` with their raw JSON; `None` when `data` is no array.
    rows: Option<Vec<(&'a RawValue, Row<'a>)>>,
    /// `paging`.
    paging: Option<PagingPart<'a>>,
}

impl<'a> Answer<'a> {
    /// Parse a body and each of its rows; `Err` when the body is not JSON.
    fn parse(body: &'a [u8]) -> std::result::Result<Answer<'a>, String> {
        let parts: AnswerParts<'a> =
            crate::json::from_slice(body).map_err(|e| super::not_json(&e, body))?;
        let rows = parts.data.and_then(|d| d.0).map(|r| read_each(r).collect());
        Ok(Answer {
            error: parts.error,
            rows,
            paging: parts.paging,
        })
    }

    /// Every row's `date_start` and `date_stop` strings, in order.
    fn dates(&self) -> impl Iterator<Item = &str> {
        self.rows
            .iter()
            .flatten()
            .flat_map(|(_, row)| [row.date_start.as_ref(), row.date_stop.as_ref()])
            .filter_map(|day| day?.as_str())
    }

    /// `paging.cursors.after`.
    fn after(&self) -> Option<&str> {
        self.paging
            .as_ref()?
            .cursors
            .as_ref()?
            .after
            .as_ref()?
            .as_str()
    }

    /// The page's rows or what its error asks for; `Err` when it is neither (`body` is
    /// quoted, redacted, in the error).
    fn decode(self, account: &str, body: &[u8]) -> std::result::Result<Insights, String> {
        if let Some(error) = self.error {
            let error = error.to_value();
            if error.get("code").and_then(Value::as_i64) == Some(1) {
                let message = opt_str(error.get("message")).unwrap_or_default();
                return Ok(Insights::TooMuchData(message));
            }
            return Err(format!("error body: {}", body_excerpt(body)));
        }
        let rows = self.rows.ok_or("no `data` array")?;
        let next = self
            .paging
            .as_ref()
            .and_then(|p| p.next.as_ref())
            .and_then(Scalar::as_str)
            .filter(|n| !n.is_empty() && !rows.is_empty())
            .map(str::to_string);
        let page = decode_each(&rows, next, |row| decode_row(row, account));
        Ok(Insights::Page(page))
    }
}

/// Judge an answer (see [`belongs`]) and decode it: `Err` when it is not this request's
/// answer, else the decoded page or why the body is no page (reported once accepted).
fn checked_decode(
    body: &[u8],
    account: &str,
    range: (NaiveDate, NaiveDate),
    sent_after: Option<&str>,
    request: (&str, &answer::LastAnswer),
) -> std::result::Result<std::result::Result<Insights, String>, String> {
    let answer = match Answer::parse(body) {
        Ok(answer) => answer,
        Err(not_json) => return Ok(Err(not_json)),
    };
    belongs(&answer, body, range, sent_after, request)?;
    Ok(answer.decode(account, body))
}

/// Is this insights answer the one asked for: every row dated inside `from..=to`, and a
/// page after cursor `sent_after` ending somewhere else? (The last page of the previous
/// date range served again would otherwise end this range with no rows of its own.)
///
/// An empty page names nothing: one that repeats the previous, different request's answer
/// (`last`; `key` names this request) is asked for once more.
fn belongs(
    answer: &Answer<'_>,
    body: &[u8],
    (from, to): (NaiveDate, NaiveDate),
    sent_after: Option<&str>,
    (key, last): (&str, &answer::LastAnswer),
) -> std::result::Result<(), String> {
    answer::days_within(answer.dates(), from, to)?;
    answer::cursor_advanced(sent_after, answer.after())?;
    let has_data = answer.rows.as_ref().is_some_and(|r| !r.is_empty());
    last.check(key, body, has_data)
}

/// What names an insights request: account, range and cursor (never the `next` link, which
/// holds the token).
fn request_key(account: &str, (from, to): (NaiveDate, NaiveDate), after: Option<&str>) -> String {
    format!("act_{account} {from}..{to} after {}", after.unwrap_or(""))
}

/// One insights row as a `spend` row, or why not.
fn decode_row(row: &Row<'_>, account: &str) -> std::result::Result<SpendRow, String> {
    let date = row
        .date_start
        .as_ref()
        .and_then(Scalar::as_str)
        .ok_or("row has no date_start")?;
    let campaign_id = opt_small_str(row.campaign_id.as_ref()).ok_or("row has no campaign_id")?;
    let currency = opt_small_str(row.account_currency.as_ref())
        .ok_or("row has no account_currency (request the field)")?;
    let spend = match opt_str(row.spend.as_ref()) {
        None => 0,
        Some(text) => decimal_micros(&text).map_err(|e| format!("spend: {e}"))?,
    };
    Ok(SpendRow {
        date: date_days(date)?,
        platform: "meta_ads".into(),
        account_id: account.into(),
        campaign_id,
        campaign_name: opt_small_str(row.campaign_name.as_ref()),
        channel: Some("paid_social".into()),
        currency,
        spend,
        impressions: opt_i64(row.impressions.as_ref(), "impressions")?.unwrap_or(0),
        clicks: opt_i64(row.clicks.as_ref(), "clicks")?.unwrap_or(0),
    })
}

/// Meta's classification (errors come as HTTP 400 or 500 with `{"error": {code, …}}`).
/// Throttles wait the longest `estimated_time_to_regain_access`, else `Retry-After`, else
/// the source's rate-limit window; so does any 429, whatever its body (a proxy's or a CDN's
/// 429 is no Graph error, and no reason to give up).
pub fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Accept;
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Verdict::RateLimited(regain_access_wait(headers).or_else(|| retry_after(headers)));
    }
    let error = crate::json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let Some(error) = error else {
        return crate::http::default_verdict(status, headers, body);
    };
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let message = opt_str(error.get("message")).unwrap_or_default();
    let transient = error.get("is_transient").and_then(Value::as_bool) == Some(true);
    let code_text = match (code, subcode) {
        (Some(c), Some(s)) => format!("code {c}, subcode {s}"),
        (Some(c), None) => format!("code {c}"),
        _ => "no code".to_string(),
    };
    match code {
        // The caller splits the range.
        Some(1) => Verdict::Accept,
        Some(4 | 17 | 32 | 613) | Some(80_000..=80_099) => {
            Verdict::RateLimited(regain_access_wait(headers).or_else(|| retry_after(headers)))
        }
        Some(2) => Verdict::Retry(None),
        _ if transient => Verdict::Retry(None),
        Some(190) => Verdict::Fatal(format!(
            "the access token is invalid or expired ({code_text}): {message} — issue a new token"
        )),
        Some(2635) => Verdict::Fatal(format!(
            "API version not served ({code_text}): {message} — set api_version"
        )),
        Some(10) | Some(200..=299) => Verdict::Fatal(format!(
            "permission denied ({code_text}): {message} — the token needs ads_read on the account"
        )),
        _ if status.is_server_error() => Verdict::Retry(None),
        _ => Verdict::Fatal(format!("HTTP {} ({code_text}): {message}", status.as_u16())),
    }
}

/// The longest `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`
/// or `X-Ad-Account-Usage`; `None` when absent or zero.
pub fn regain_access_wait(headers: &HeaderMap) -> Option<Duration> {
    let mut minutes: f64 = 0.0;
    for name in ["x-business-use-case-usage", "x-ad-account-usage"] {
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let Ok(json) = crate::json::from_str::<Value>(value) else {
            continue;
        };
        collect_regain(&json, &mut minutes);
    }
    (minutes > 0.0 && minutes.is_finite()).then(|| Duration::from_secs_f64(minutes * 60.0))
}

fn collect_regain(value: &Value, minutes: &mut f64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "estimated_time_to_regain_access" {
                    if let Some(m) = v.as_f64() {
                        *minutes = minutes.max(m);
                    }
                } else {
                    collect_regain(v, minutes);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_regain(i, minutes)),
        _ => {}
    }
}

/// The body with every `access_token=…` query value replaced, for raw landing.
pub fn scrub_tokens(body: &Bytes) -> Bytes {
    const KEY: &str = "access_token=";
    let text = String::from_utf8_lossy(body);
    if !text.contains(KEY) {
        return body.clone();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_ref();
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        out.push_str("REDACTED");
        rest = &rest[at + KEY.len()..];
        let end = rest
            .find(|c: char| matches!(c, '&' | '"' | '\\' | '#') || c.is_whitespace())
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    Bytes::from(out)
}

impl super::SourceKind for MetaAdsConfig {
    const KIND: &'static str = "meta_ads";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Spend;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        vec![("access_token", &self.access_token)]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        MetaAdsConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        let token = resolved.secret("access_token");
        pull(self, &resolved.base_url, token, ctx, outputs.spend()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `decode_row` of a row given as a `Value`.
    fn decode_value(record: &Value, account: &str) -> std::result::Result<SpendRow, String> {
        let text = record.to_string();
        let row: Row<'_> = serde_json::from_str(&text).unwrap();
        decode_row(&row, account)
    }

    /// The decoded page of an answer taken as this request's.
    fn decode_body(body: &[u8]) -> std::result::Result<Insights, String> {
        Answer::parse(body)?.decode("101", body)
    }

    #[test]
    fn spend_is_exact_and_missing_clicks_are_zero() {
        let row = decode_value(
            &json!({"date_start": "2026-11-01", "date_stop": "2026-11-01", "campaign_id": "120210000000001",
                    "campaign_name": "Prospecting", "spend": "1234.5", "impressions": "1000",
                    "account_currency": "GBP"}),
            "101",
        )
        .unwrap();
        assert_eq!(row.spend, 1_234_500_000);
        assert_eq!(row.clicks, 0);
        assert_eq!(row.currency, "GBP");
        assert!(decode_value(&json!({"date_start": "2026-11-01", "campaign_id": "1", "account_currency": "GBP", "spend": "1,5"}), "1").is_err());
    }

    #[test]
    fn a_malformed_row_is_rejected_whole_among_good_rows() {
        let good = |campaign: &str| {
            json!({"date_start": "2026-11-01", "date_stop": "2026-11-01", "campaign_id": campaign,
                   "campaign_name": "Pro\"spect", "spend": "12.345", "impressions": "10", "clicks": "3",
                   "account_currency": "EUR"})
        };
        let malformed = json!({"date_start": "2026-11-01", "date_stop": "2026-11-01", "campaign_id": "9",
            "spend": "12,50", "account_currency": "EUR"});
        let next = "https://graph.facebook.com/v23.0/act_101/insights?access_token=T&after=QQ";
        let body = json!({"data": [good("1"), malformed, good("2")],
            "paging": {"cursors": {"before": "P", "after": "QQ"}, "next": next}})
        .to_string();
        let Ok(Insights::Page(page)) = decode_body(body.as_bytes()) else {
            panic!("a page of rows");
        };
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[1].campaign_id, "2");
        assert_eq!(page.rows[0].campaign_name.as_deref(), Some("Pro\"spect"));
        assert_eq!((page.rows[0].spend, page.rows[0].clicks), (12_345_000, 3));
        assert_eq!(
            page.rejects,
            vec![(
                malformed,
                "spend: `12,50` is not a decimal number".to_string()
            )]
        );
        assert_eq!(page.next.as_deref(), Some(next));

        // Meta writes `/` as `\/`: the link is read unescaped. An empty page ends the range.
        let escaped =
            br#"{"data":[7],"paging":{"next":"https:\/\/graph.facebook.com\/x?after=A"}}"#;
        let Ok(Insights::Page(page)) = decode_body(escaped) else {
            panic!("a page of rows");
        };
        assert_eq!(
            page.rejects,
            vec![(json!(7), "row has no date_start".to_string())]
        );
        assert_eq!(
            page.next.as_deref(),
            Some("https://graph.facebook.com/x?after=A")
        );
        let last = br#"{"data":[],"paging":{"next":"https://graph.facebook.com/x?after=B"}}"#;
        assert!(matches!(decode_body(last), Ok(Insights::Page(p)) if p.next.is_none()));

        // Errors and bodies that are no page.
        let reduce = br#"{"error":{"message":"Please reduce the amount of data","code":1}}"#;
        assert!(
            matches!(decode_body(reduce), Ok(Insights::TooMuchData(m)) if m == "Please reduce the amount of data")
        );
        assert!(
            decode_body(br#"{"error":null,"data":[]}"#)
                .unwrap_err()
                .starts_with("error body: ")
        );
        assert_eq!(
            decode_body(br#"{"data":{}}"#).unwrap_err(),
            "no `data` array"
        );
        assert_eq!(
            decode_body(br#"[{"data":[]}]"#).unwrap_err(),
            "no `data` array"
        );
        assert!(
            decode_body(b"{\"data\":[")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn errors_are_classified_by_code() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            r#"{"101":[{"type":"ads_insights","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":2}]}"#
                .parse()
                .unwrap(),
        );
        let throttle = br#"{"error":{"message":"(#80000) There have been too many calls","type":"OAuthException","code":80000,"error_subcode":2446079,"fbtrace_id":"A"}}"#;
        assert_eq!(
            verdict(StatusCode::BAD_REQUEST, &headers, throttle),
            Verdict::RateLimited(Some(Duration::from_secs(120)))
        );
        // A 429 that is no Graph error (a proxy's, a plain-text body) is still a rate limit.
        for body in [&b"Too Many Requests"[..], br#"{"error":"rate_limited"}"#] {
            assert_eq!(
                verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body),
                Verdict::RateLimited(None)
            );
        }
        let expired = br#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#;
        assert!(matches!(
            verdict(StatusCode::BAD_REQUEST, &HeaderMap::new(), expired),
            Verdict::Fatal(m) if m.contains("190") && m.contains("expired")
        ));
        let reduce = br#"{"error":{"message":"Please reduce the amount of data you're asking for, then retry your request","code":1}}"#;
        assert_eq!(
            verdict(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new(), reduce),
            Verdict::Accept
        );
    }

    #[test]
    fn an_answer_for_another_range_or_the_page_before_is_not_accepted() {
        let (from, to) = (
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
        );
        let page = |day: &str, after: &str| {
            serde_json::to_vec(&json!({"data": [{"date_start": day, "date_stop": day}],
                "paging": {"cursors": {"after": after}}}))
            .unwrap()
        };
        let last = answer::LastAnswer::default();
        let belongs = |body: &[u8], range, sent_after, request| {
            checked_decode(body, "1", range, sent_after, request).map(|_| ())
        };
        let (range, fresh) = ((from, to), ("k", &last));
        assert!(belongs(&page("2026-10-02", "b"), range, None, fresh).is_ok());
        assert!(belongs(&page("2026-10-02", "b"), range, Some("a"), fresh).is_ok());
        assert!(belongs(&page("2026-09-30", "b"), range, None, fresh).is_err());
        assert!(belongs(&page("2026-10-02", "a"), range, Some("a"), fresh).is_err());
        assert!(belongs(br#"{"error":{"code":1}}"#, range, Some("a"), fresh).is_ok());
        assert!(belongs(b"not json", range, Some("a"), fresh).is_ok());
        // The previous range's empty page again: asked for once more.
        let empty = br#"{"data":[],"paging":{"cursors":{"after":"x"}}}"#;
        last.accepted("k", empty);
        assert!(belongs(empty, range, None, ("k2", &last)).is_err());
        assert!(belongs(empty, range, None, ("k2", &last)).is_ok());
    }

    #[test]
    fn tokens_are_scrubbed_from_landed_bodies() {
        let body = Bytes::from_static(
            br#"{"paging":{"next":"https://graph.facebook.com/v23.0/act_1/insights?access_token=EAAB123&after=QVFI"}}"#,
        );
        let scrubbed = scrub_tokens(&body);
        let text = std::str::from_utf8(&scrubbed).unwrap();
        assert!(!text.contains("EAAB123"));
        assert!(text.contains("access_token=REDACTED&after=QVFI"));
    }
}
