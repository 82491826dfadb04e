//! Google Ads campaign spend → `spend`, through `googleAds:searchStream` (one JSON array of
//! batches per request) or `googleAds:search` (`nextPageToken` paging with the identical
//! query): one GAQL query per customer and date chunk, int64s as strings, cost in micros
//! (exactly `Decimal128(18, 6)`), currency from the customer. Auth is a bearer token —
//! static, or refreshed from an OAuth refresh token — plus `developer-token` and, through a
//! manager, `login-customer-id`. Errors come as Google's `GoogleAdsFailure` (array-wrapped
//! for searchStream): quota errors wait their `retryDelay`, query, auth and permission
//! errors are fatal.

use std::time::Duration as StdDuration;

use chrono::NaiveDate;
use compact_str::CompactString;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::decoded_once::DecodedOnce;
use super::lenient::{RawRecords, anything_else_is, decode_each, lenient_object, read_each};
use super::oauth::OAuthToken;
use super::spend_window::{Window, WindowSettings};
use super::{DecodedPage, SourceContext, answer, join_url};
use crate::config::Template;
use crate::error::Result;
use crate::http::{HttpSettings, Verdict, body_excerpt, retry_after};
use crate::normalize::SpendRow;
use crate::normalize::parse::{Scalar, date_days, opt_i64, opt_small_str, opt_str};
use crate::sources::RowSink;

/// Which GoogleAdsService method to query through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoogleAdsMethod {
    /// `googleAds:searchStream`: all rows of a query in one response.
    SearchStream,
    /// `googleAds:search`: 10,000-row pages linked by `nextPageToken`.
    Search,
}

/// `[[sources]] kind = "google_ads"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// API version path segment (Google sunsets one roughly every year).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// `search_stream` (default) or `search`.
    #[serde(default = "default_method")]
    pub method: GoogleAdsMethod,
    /// Customer ids to pull, 10 digits without dashes.
    pub customer_ids: Vec<String>,
    /// Manager account id sent as `login-customer-id`, when going through a manager.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// `developer-token` header, e.g. `"${GOOGLE_ADS_DEVELOPER_TOKEN}"`.
    pub developer_token: Template,
    /// A fixed OAuth access token, e.g. `"${GOOGLE_ADS_ACCESS_TOKEN}"` (or use a refresh token).
    #[serde(default)]
    pub access_token: Option<Template>,
    /// OAuth refresh token; with `client_id` and `client_secret`, access tokens are fetched
    /// from `token_url` at the start of the pull and again after a 401.
    #[serde(default)]
    pub refresh_token: Option<Template>,
    /// OAuth client id (with `refresh_token`).
    #[serde(default)]
    pub client_id: Option<Template>,
    /// OAuth client secret (with `refresh_token`).
    #[serde(default)]
    pub client_secret: Option<Template>,
    /// OAuth token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: Template,
    /// Days before today the first run pulls.
    #[serde(default = "default_initial_days")]
    pub initial_days: u32,
    /// Days before today every later run re-pulls (restated conversions and costs).
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// Days per query (searchStream cannot resume, so keep windows small).
    #[serde(default = "default_chunk_days")]
    pub chunk_days: u32,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> Template {
    Template::new("https://googleads.googleapis.com")
}

fn default_token_url() -> Template {
    Template::new("https://oauth2.googleapis.com/token")
}

fn default_api_version() -> String {
    "v21".to_string()
}

fn default_method() -> GoogleAdsMethod {
    GoogleAdsMethod::SearchStream
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

fn is_customer_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit())
}

impl GoogleAdsConfig {
    /// The look-back settings.
    pub fn window(&self) -> WindowSettings {
        WindowSettings {
            initial_days: self.initial_days,
            lookback_days: self.lookback_days,
            chunk_days: self.chunk_days,
        }
    }

    /// Credentials by key: `developer_token`, then `access_token` and/or the refresh trio.
    pub fn secrets(&self) -> Vec<(&'static str, &Template)> {
        let mut out = vec![("developer_token", &self.developer_token)];
        out.extend(super::oauth::declared_secrets(
            &self.access_token,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
            &self.token_url,
        ));
        out
    }

    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(self.window().check(366));
        if self.customer_ids.is_empty() {
            problems.push(("customer_ids", "list at least one customer id".to_string()));
        }
        for id in &self.customer_ids {
            if !is_customer_id(id) {
                problems.push((
                    "customer_ids",
                    format!("`{id}` is not a 10-digit customer id (no dashes)"),
                ));
            }
        }
        if let Some(id) = &self.login_customer_id
            && !is_customer_id(id)
        {
            problems.push((
                "login_customer_id",
                format!("`{id}` is not a 10-digit customer id (no dashes)"),
            ));
        }
        if !self.api_version.starts_with('v') || self.api_version[1..].parse::<u32>().is_err() {
            problems.push((
                "api_version",
                format!("`{}` is not a version like v21", self.api_version),
            ));
        }
        problems.extend(super::oauth::check_credentials(
            &self.access_token,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
        ));
        problems
    }
}

/// The GAQL query for one date window.
pub fn gaql(from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "SELECT customer.currency_code, campaign.id, campaign.name, campaign.advertising_channel_type, \
         segments.date, metrics.cost_micros, metrics.impressions, metrics.clicks \
         FROM campaign WHERE segments.date BETWEEN '{from}' AND '{to}' ORDER BY segments.date"
    )
}

/// Pull the window for every customer into `out`.
pub async fn pull(
    cfg: &GoogleAdsConfig,
    base_url: &str,
    token: &OAuthToken,
    developer_token: &crate::config::Secret,
    ctx: &SourceContext,
    out: &mut impl RowSink<SpendRow>,
) -> Result<()> {
    let window = Window::for_run(&cfg.window(), ctx);
    let method = match cfg.method {
        GoogleAdsMethod::SearchStream => "searchStream",
        GoogleAdsMethod::Search => "search",
    };
    let last = answer::LastAnswer::default();
    for customer in &cfg.customer_ids {
        let url = join_url(
            base_url,
            &format!(
                "{}/customers/{customer}/googleAds:{method}",
                cfg.api_version
            ),
        );
        for (from, to) in window.chunks(cfg.chunk_days) {
            let query = gaql(from, to);
            let mut page_token: Option<String> = None;
            let mut page = 0u64;
            loop {
                page += 1;
                let mut body = json!({ "query": query });
                if let Some(next) = &page_token {
                    body["pageToken"] = Value::String(next.clone());
                }
                let key = format!(
                    "{customer} {from}..{to} {}",
                    page_token.as_deref().unwrap_or("")
                );
                // Rows dated outside the query's window, or an empty answer the same as the
                // previous query's: maybe not the answer to this query (a cache or the API
                // serving an earlier response again); see `answer.rs`. Checking reads the
                // rows, so the page is decoded there, once.
                let once = DecodedOnce::default();
                let ours = |body: &[u8]| {
                    let answer = match Answer::parse(body) {
                        Ok(answer) => answer,
                        // Not JSON: reported once the loop hands the body back.
                        Err(not_json) => return Ok(Err(not_json)),
                    };
                    answer::days_within(answer.dates(), from, to)?;
                    last.check(&key, body, answer.dates().next().is_some())?;
                    Ok(answer.decode(customer))
                };
                let classify = once.checked(ctx, "google_ads/search", &verdict, ours);
                let page_body = token
                    .fetch(ctx, "google_ads/search", &classify, |access| {
                        let mut request = ctx
                            .http
                            .inner()
                            .post(&url)
                            .bearer_auth(access)
                            .header("developer-token", developer_token.expose())
                            .json(&body);
                        if let Some(manager) = &cfg.login_customer_id {
                            request = request.header("login-customer-id", manager);
                        }
                        request
                    })
                    .await?;
                drop(classify);
                last.accepted(&key, &page_body);
                let decoded = once
                    .take(&page_body)
                    .unwrap_or_else(|| decode_answer(&page_body, customer))
                    .map_err(|message| ctx.protocol(&url, message))?;
                let location = format!("customer {customer} {from}..{to} page {page}");
                page_token = decoded.write(out, &location).await?;
                if page_token.is_none() {
                    break;
                }
            }
        }
    }
    window.cover(ctx, out)
}

/// A decoded answer: its rows and rejects, and the `nextPageToken` to send next.
type GooglePage = DecodedPage<SpendRow, Option<String>>;

/// Decode an answer, or say why it is not a page at all.
fn decode_answer(body: &[u8], customer: &str) -> std::result::Result<GooglePage, String> {
    Answer::parse(body)?.decode(customer)
}

/// An answer borrowed from its body: a `search` page, or the batches of a `searchStream`
/// answer (a JSON array), each result parsed into a borrowed [`Row`].
#[derive(Debug, Default)]
struct Answer<'a> {
    /// Every result of every batch with a `results` array, in order, with its raw JSON.
    results: Vec<(&'a RawValue, Row<'a>)>,
    /// A batch whose `results` is there but not an array.
    results_not_array: bool,
    /// A `search` page's `nextPageToken`.
    next_page_token: Option<Scalar<'a>>,
}

lenient_object! {
    /// One `searchStream` batch, or a `search` page.
    struct Batch<'a> {
        "results" => results: RawRecords<'a>,
        "nextPageToken" => next_page_token: Scalar<'a>,
    }
}

/// A `search` page is one batch; a `searchStream` answer an array of them (any other
/// element, or any other body, holds none).
enum Batches<'a> {
    Stream(Vec<Batch<'a>>),
    Page(Batch<'a>),
}

impl<'de> Deserialize<'de> for Batches<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct BatchesVisitor;
        impl<'de> serde::de::Visitor<'de> for BatchesVisitor {
            type Value = Batches<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut batches = Vec::new();
                while let Some(batch) = seq.next_element()? {
                    batches.push(batch);
                }
                Ok(Batches::Stream(batches))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let deserializer = serde::de::value::MapAccessDeserializer::new(map);
                Batch::deserialize(deserializer).map(Batches::Page)
            }
            // Any other body holds no batch.
            anything_else_is!('de, Batches::Stream(Vec::new()));
        }
        d.deserialize_any(BatchesVisitor)
    }
}

lenient_object! {
    /// One search result, as the GAQL query selects it.
    struct Row<'a> {
        "customer" => customer: CustomerPart<'a>,
        "campaign" => campaign: CampaignPart<'a>,
        "segments" => segments: SegmentsPart<'a>,
        "metrics" => metrics: MetricsPart<'a>,
    }
}

lenient_object! {
    /// `customer`.
    struct CustomerPart<'a> {
        "currencyCode" => currency_code: Scalar<'a>,
    }
}

lenient_object! {
    /// `campaign`.
    struct CampaignPart<'a> {
        "id" => id: Scalar<'a>,
        "name" => name: Scalar<'a>,
        "advertisingChannelType" => channel_type: Scalar<'a>,
    }
}

lenient_object! {
    /// `segments`.
    struct SegmentsPart<'a> {
        "date" => date: Scalar<'a>,
    }
}

lenient_object! {
    /// `metrics`.
    struct MetricsPart<'a> {
        "costMicros" => cost_micros: Scalar<'a>,
        "impressions" => impressions: Scalar<'a>,
        "clicks" => clicks: Scalar<'a>,
    }
}

impl<'a> Answer<'a> {
    /// Parse a body and each of its results; `Err` when the body is not JSON.
    fn parse(body: &'a [u8]) -> std::result::Result<Answer<'a>, String> {
        let batches: Batches<'a> =
            crate::json::from_slice(body).map_err(|e| super::not_json(&e, body))?;
        let (batches, next_page_token) = match batches {
            Batches::Stream(batches) => (batches, None),
            Batches::Page(page) => {
                let token = page.next_page_token.clone();
                (vec![page], token)
            }
        };
        let mut answer = Answer {
            next_page_token,
            ..Answer::default()
        };
        for results in batches.into_iter().filter_map(|b| b.results) {
            let Some(records) = results.0 else {
                answer.results_not_array = true;
                continue;
            };
            answer.results.extend(read_each(records));
        }
        Ok(answer)
    }

    /// Every result's `segments.date` string, in order.
    fn dates(&self) -> impl Iterator<Item = &str> {
        self.results.iter().filter_map(|(_, row)| row.date())
    }

    /// The rows and rejects, and the next page's token; `Err` when a batch's `results` is
    /// not an array.
    fn decode(self, customer: &str) -> std::result::Result<GooglePage, String> {
        if self.results_not_array {
            return Err("`results` is not an array".to_string());
        }
        let next = self
            .next_page_token
            .as_ref()
            .and_then(Scalar::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok(decode_each(&self.results, next, |row| {
            decode_row(row, customer)
        }))
    }
}

impl Row<'_> {
    /// `segments.date` when it is a string.
    fn date(&self) -> Option<&str> {
        self.segments.as_ref()?.date.as_ref()?.as_str()
    }
}

/// Google's error classification: quota errors (429 `RESOURCE_EXHAUSTED`) wait their
/// `retryDelay`; 500/503/504 retry; query, auth and permission errors are fatal with the
/// failure's error code and message.
pub fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Accept;
    }
    let failure = GoogleFailure::parse(body);
    if status == StatusCode::TOO_MANY_REQUESTS || failure.as_ref().is_some_and(|f| f.is_quota()) {
        let delay = failure
            .as_ref()
            .and_then(|f| f.retry_delay)
            .or_else(|| retry_after(headers));
        return Verdict::RateLimited(delay);
    }
    // A sunset version answers 501 UNIMPLEMENTED: retrying cannot help.
    let unimplemented = status == StatusCode::NOT_IMPLEMENTED
        || failure
            .as_ref()
            .is_some_and(|f| f.status == "UNIMPLEMENTED");
    if status.is_server_error() && !unimplemented {
        return Verdict::Retry(retry_after(headers));
    }
    let what = failure
        .map(|f| f.describe())
        .unwrap_or_else(|| body_excerpt(body));
    let hint = match status.as_u16() {
        401 => " (the access token is invalid or expired: refresh it or set refresh_token)",
        403 => " (check the customer id, and login_customer_id when going through a manager)",
        404 | 501 => " (this API version is not served, or the path is wrong: check api_version)",
        _ => "",
    };
    Verdict::Fatal(format!("HTTP {}: {what}{hint}", status.as_u16()))
}

/// The parts of a Google Ads error body the classification needs.
#[derive(Debug, Clone, PartialEq)]
struct GoogleFailure {
    status: String,
    message: String,
    /// `(kind, enum)` of each `errorCode`, e.g. `("quotaError", "RESOURCE_EXHAUSTED")`.
    codes: Vec<(String, String)>,
    retry_delay: Option<StdDuration>,
}

impl GoogleFailure {
    fn parse(body: &[u8]) -> Option<GoogleFailure> {
        let value: Value = crate::json::from_slice(body).ok()?;
        // searchStream wraps the error in an array.
        let error = match &value {
            Value::Array(items) => items.iter().find_map(|i| i.get("error"))?,
            other => other.get("error")?,
        };
        let mut failure = GoogleFailure {
            status: opt_str(error.get("status")).unwrap_or_default(),
            message: opt_str(error.get("message")).unwrap_or_default(),
            codes: Vec::new(),
            retry_delay: None,
        };
        let details = error.get("details").and_then(Value::as_array);
        for detail in details.into_iter().flatten() {
            let errors = detail.get("errors").and_then(Value::as_array);
            for e in errors.into_iter().flatten() {
                if let Some(Value::Object(code)) = e.get("errorCode") {
                    for (kind, name) in code {
                        failure
                            .codes
                            .push((kind.clone(), name.as_str().unwrap_or_default().to_string()));
                    }
                }
                if let Some(message) = opt_str(e.get("message")) {
                    failure.message = message;
                }
                if let Some(delay) = e
                    .pointer("/details/quotaErrorDetails/retryDelay")
                    .and_then(Value::as_str)
                    .and_then(parse_duration)
                {
                    failure.retry_delay = Some(delay);
                }
            }
        }
        Some(failure)
    }

    fn is_quota(&self) -> bool {
        self.status == "RESOURCE_EXHAUSTED" || self.codes.iter().any(|(k, _)| k == "quotaError")
    }

    fn describe(&self) -> String {
        let codes = self
            .codes
            .iter()
            .map(|(k, v)| format!("{k}.{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        if codes.is_empty() {
            format!("{}: {}", self.status, self.message)
        } else {
            format!("{} {codes}: {}", self.status, self.message)
        }
    }
}

/// A protobuf `Duration` in JSON: `"3s"`, `"0.5s"`, `"1.000340012s"`.
pub fn parse_duration(text: &str) -> Option<StdDuration> {
    let secs = text.trim().strip_suffix('s')?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut nanos: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(StdDuration::new(whole, nanos))
}

/// `advertisingChannelType` as our channel names.
pub fn channel_of(channel_type: &str) -> CompactString {
    match channel_type {
        "SEARCH" => "paid_search".into(),
        "DISPLAY" => "display".into(),
        "VIDEO" => "video".into(),
        "SHOPPING" => "shopping".into(),
        other => crate::normalize::parse::snake_case_compact(other),
    }
}

/// One search result row as a `spend` row, or why not.
fn decode_row(row: &Row<'_>, customer: &str) -> std::result::Result<SpendRow, String> {
    let (customer_part, campaign, metrics) = (
        row.customer.as_ref(),
        row.campaign.as_ref(),
        row.metrics.as_ref(),
    );
    let date = row.date().ok_or("row has no segments.date")?;
    let campaign_id =
        opt_small_str(campaign.and_then(|c| c.id.as_ref())).ok_or("row has no campaign.id")?;
    let currency = opt_small_str(customer_part.and_then(|c| c.currency_code.as_ref()))
        .ok_or("row has no customer.currencyCode (select customer.currency_code)")?;
    let cost_micros = opt_i64(
        metrics.and_then(|m| m.cost_micros.as_ref()),
        "metrics.costMicros",
    )?
    .unwrap_or(0);
    Ok(SpendRow {
        date: date_days(date)?,
        platform: "google_ads".into(),
        account_id: customer.into(),
        campaign_id,
        campaign_name: opt_small_str(campaign.and_then(|c| c.name.as_ref())),
        channel: campaign
            .and_then(|c| c.channel_type.as_ref())
            .and_then(Scalar::as_str)
            .map(channel_of),
        currency,
        // Micros are exactly the Decimal128(18, 6) representation.
        spend: i128::from(cost_micros),
        impressions: opt_i64(
            metrics.and_then(|m| m.impressions.as_ref()),
            "metrics.impressions",
        )?
        .unwrap_or(0),
        clicks: opt_i64(metrics.and_then(|m| m.clicks.as_ref()), "metrics.clicks")?.unwrap_or(0),
    })
}

impl super::SourceKind for GoogleAdsConfig {
    const KIND: &'static str = "google_ads";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Spend;
    const SUPPORTS_BACKFILL: bool = true;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn http_urls(&self) -> Vec<(&'static str, &Template)> {
        vec![("base_url", &self.base_url), ("token_url", &self.token_url)]
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        GoogleAdsConfig::secrets(self)
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        GoogleAdsConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        let token = super::oauth::from_resolved(resolved);
        let developer = resolved.secret("developer_token");
        pull(
            self,
            &resolved.base_url,
            &token,
            developer,
            ctx,
            outputs.spend(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `decode_row` of a result given as a `Value`.
    fn decode_value(result: &Value) -> std::result::Result<SpendRow, String> {
        let text = result.to_string();
        let row: Row<'_> = serde_json::from_str(&text).unwrap();
        decode_row(&row, "1112223334")
    }

    #[test]
    fn an_answer_about_other_dates_is_noticed() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let row = |date: &str| json!({"segments": {"date": date}});
        let stream = json!([{"results": [row("2026-10-01"), row("2026-10-31")]}]);
        let outside = |v: &Value, from: &str, to: &str| {
            let body = v.to_string();
            let answer = Answer::parse(body.as_bytes()).unwrap();
            answer::days_within(answer.dates(), d(from), d(to)).err()
        };
        assert_eq!(outside(&stream, "2026-10-01", "2026-10-31"), None);
        assert!(
            outside(&stream, "2026-11-01", "2026-11-30").is_some_and(|e| e.contains("2026-10-01"))
        );
        let page = json!({"results": [row("2026-11-01")], "nextPageToken": "x"});
        assert!(
            outside(&page, "2026-10-01", "2026-10-31").is_some_and(|e| e.contains("2026-11-01"))
        );
        assert_eq!(outside(&json!([{}]), "2026-10-01", "2026-10-31"), None);
    }

    #[test]
    fn micros_are_exact_and_missing_metrics_are_zero() {
        let row = decode_value(&json!({
            "customer": {"resourceName": "customers/1112223334", "currencyCode": "EUR"},
            "campaign": {"resourceName": "x", "id": "20000000001", "name": "Brand", "advertisingChannelType": "SEARCH"},
            "segments": {"date": "2026-11-01"},
            "metrics": {"costMicros": "12345678901", "impressions": "1000"}
        }))
        .unwrap();
        assert_eq!(row.spend, 12_345_678_901);
        assert_eq!(row.clicks, 0);
        assert_eq!(row.channel.as_deref(), Some("paid_search"));
        assert_eq!(row.date, date_days("2026-11-01").unwrap());
        let bad = decode_value(
            &json!({"customer": {"currencyCode": "EUR"}, "campaign": {"id": "1"}, "segments": {"date": "2026-11-01"},
                    "metrics": {"costMicros": "12x5"}}),
        );
        assert!(bad.unwrap_err().contains("12x5"));
    }

    #[test]
    fn a_malformed_result_is_rejected_whole_among_good_rows() {
        let good = |campaign: &str| {
            json!({"customer": {"resourceName": "customers/1112223334", "currencyCode": "EUR"},
                   "campaign": {"resourceName": "c", "id": campaign, "name": "Br\u{e4}nd \"A\"", "advertisingChannelType": "VIDEO"},
                   "segments": {"date": "2026-11-01"},
                   "metrics": {"costMicros": "1500000", "impressions": "10", "clicks": 2}})
        };
        let malformed = json!({"customer": {"currencyCode": "EUR"}, "campaign": {"id": "3"},
            "segments": {"date": "2026-11-01"}, "metrics": {"costMicros": "12x5", "clicks": 1}});
        let body = json!({"results": [good("1"), malformed, good("2")], "nextPageToken": "n2"})
            .to_string();
        let page = decode_answer(body.as_bytes(), "1112223334").unwrap();
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[1].campaign_id, "2");
        assert_eq!(
            page.rows[0].campaign_name.as_deref(),
            Some("Br\u{e4}nd \"A\"")
        );
        assert_eq!(page.rows[0].channel.as_deref(), Some("video"));
        assert_eq!((page.rows[0].spend, page.rows[0].clicks), (1_500_000, 2));
        assert_eq!(
            page.rejects,
            vec![(
                malformed,
                "metrics.costMicros: `12x5` is not an integer".to_string()
            )]
        );
        assert_eq!(page.next.as_deref(), Some("n2"));

        // searchStream: batches in an array, odd elements and results skipped or rejected
        // as a `Value` walk saw them; the last of a repeated member wins.
        let stream = br#"[{"results":[7,{"segments":{"date":"2026-11-01"},"segments":{"date":5}}]},
            "x", {"nextPageToken":"ignored"}, {"results":[]}]"#;
        let page = decode_answer(stream, "1112223334").unwrap();
        let reasons: Vec<&str> = page.rejects.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(reasons, ["row has no segments.date"; 2]);
        assert_eq!(page.rejects[0].0, json!(7));
        assert_eq!(page.rejects[1].0, json!({"segments": {"date": 5}}));
        assert_eq!(page.next, None);

        // Not a page at all.
        let not_array = decode_answer(br#"{"results":{"a":1}}"#, "1").unwrap_err();
        assert_eq!(not_array, "`results` is not an array");
        assert!(decode_answer(br#"{"results":null}"#, "1").is_err());
        assert!(
            decode_answer(b"<html>", "1")
                .unwrap_err()
                .contains("not JSON")
        );
        let empty = decode_answer(br#"{"nextPageToken":""}"#, "1").unwrap();
        assert!(empty.rows.is_empty() && empty.next.is_none());
    }

    #[test]
    fn errors_are_classified_by_failure() {
        let quota = br#"[{"error":{"code":429,"message":"Resource has been exhausted.","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
            "errors":[{"errorCode":{"quotaError":"RESOURCE_TEMPORARILY_EXHAUSTED"},"message":"Too many requests.",
            "details":{"quotaErrorDetails":{"rateScope":"DEVELOPER","rateName":"Requests","retryDelay":"1.5s"}}}]}]}}]"#;
        assert_eq!(
            verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), quota),
            Verdict::RateLimited(Some(StdDuration::from_millis(1500)))
        );
        let query = br#"{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT",
            "details":[{"errors":[{"errorCode":{"queryError":"UNRECOGNIZED_FIELD"},"message":"Unrecognized field."}]}]}}"#;
        assert!(matches!(
            verdict(StatusCode::BAD_REQUEST, &HeaderMap::new(), query),
            Verdict::Fatal(m) if m.contains("queryError.UNRECOGNIZED_FIELD") && m.contains("Unrecognized field")
        ));
        assert!(matches!(
            verdict(StatusCode::FORBIDDEN, &HeaderMap::new(), b"[]"),
            Verdict::Fatal(m) if m.contains("login_customer_id")
        ));
        assert_eq!(
            verdict(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b""),
            Verdict::Retry(None)
        );
        assert_eq!(parse_duration("3s"), Some(StdDuration::from_secs(3)));
        assert_eq!(parse_duration("0.25s"), Some(StdDuration::from_millis(250)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn gaql_quotes_dates() {
        let q = gaql(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        );
        assert!(q.contains("BETWEEN '2026-01-01' AND '2026-01-31'"));
    }
}
