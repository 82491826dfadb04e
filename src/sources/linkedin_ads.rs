//! LinkedIn Marketing API ad analytics → `spend`: the currency of each ad account from
//! `GET /rest/adAccounts/{id}`, then `GET /rest/adAnalytics?q=analytics&pivot=CAMPAIGN&
//! timeGranularity=DAILY` per account and date chunk (the API has no paging: chunks are the
//! paging). The Rest.li 2.0 query (`dateRange=(start:(…))`, `List(urn%3Ali%3A…)`) is built
//! by hand and sent literally — never re-encoded. `costInLocalCurrency` is parsed as an
//! exact decimal (long float tails round at the sixth decimal). Auth is a bearer token,
//! fixed or refreshed from an OAuth refresh token (again once after a 401). The daily application
//! limit fails the source at once with the reset time (00:00 UTC).

use chrono::{Datelike, Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::decoded_once::DecodedOnce;
use super::lenient::{RawRecords, anything_else_is, decode_each, lenient_object, read_each};
use super::oauth::OAuthToken;
use super::spend_window::{Window, WindowSettings};
use super::{DecodedPage, SourceContext, answer, join_url};
use crate::config::Template;
use crate::error::Result;
use crate::http::{HttpSettings, Verdict, body_excerpt, retry_after};
use crate::normalize::SpendRow;
use crate::normalize::parse::{Scalar, decimal_micros, opt_i64, opt_str};
use crate::normalize::scalar::Key;
use crate::sources::RowSink;

/// `[[sources]] kind = "linkedin_ads"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedinAdsConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// `LinkedIn-Version` header, `YYYYMM` (versions retire after about a year).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Sponsored ad account ids (digits).
    pub account_ids: Vec<String>,
    /// OAuth access token with `r_ads_reporting`, e.g. `"${LINKEDIN_ACCESS_TOKEN}"` (or use
    /// a refresh token).
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
    /// Days before today every later run re-pulls.
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// Days per adAnalytics request (responses are capped, not paged).
    #[serde(default = "default_chunk_days")]
    pub chunk_days: u32,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> Template {
    Template::new("https://api.linkedin.com")
}

fn default_token_url() -> Template {
    Template::new("https://www.linkedin.com/oauth/v2/accessToken")
}

fn default_api_version() -> String {
    "202610".to_string()
}

fn default_initial_days() -> u32 {
    90
}

fn default_lookback_days() -> u32 {
    7
}

fn default_chunk_days() -> u32 {
    30
}

impl LinkedinAdsConfig {
    /// The look-back settings.
    pub fn window(&self) -> WindowSettings {
        WindowSettings {
            initial_days: self.initial_days,
            lookback_days: self.lookback_days,
            chunk_days: self.chunk_days,
        }
    }

    /// Credentials by key: `access_token` and/or the refresh trio (with `token_url`).
    pub fn secrets(&self) -> Vec<(&'static str, &Template)> {
        super::oauth::declared_secrets(
            &self.access_token,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
            &self.token_url,
        )
    }

    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(self.window().check(366));
        problems.extend(super::oauth::check_credentials(
            &self.access_token,
            &self.refresh_token,
            &self.client_id,
            &self.client_secret,
        ));
        if self.account_ids.is_empty() {
            problems.push(("account_ids", "list at least one ad account id".to_string()));
        }
        for id in &self.account_ids {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                problems.push((
                    "account_ids",
                    format!("`{id}` is not a numeric sponsored account id"),
                ));
            }
        }
        let v = &self.api_version;
        let month_ok = v.len() == 6
            && v.bytes().all(|b| b.is_ascii_digit())
            && (1..=12).contains(&v[4..].parse::<u32>().unwrap_or(0));
        if !month_ok {
            problems.push((
                "api_version",
                format!("`{v}` is not a LinkedIn-Version like 202610 (YYYYMM)"),
            ));
        }
        problems
    }
}

/// `(year:Y,month:M,day:D)`.
fn restli_date(d: NaiveDate) -> String {
    format!("(year:{},month:{},day:{})", d.year(), d.month(), d.day())
}

/// The adAnalytics URL for one account and range, Rest.li 2.0 encoded by hand.
pub fn analytics_url(base_url: &str, account: &str, from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "{}?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(start:{},end:{})\
         &accounts=List(urn%3Ali%3AsponsoredAccount%3A{account})\
         &fields=dateRange,pivotValues,impressions,clicks,costInLocalCurrency",
        join_url(base_url, "rest/adAnalytics"),
        restli_date(from),
        restli_date(to),
    )
}

/// Pull the window for every account into `out`.
pub async fn pull(
    cfg: &LinkedinAdsConfig,
    base_url: &str,
    token: &OAuthToken,
    ctx: &SourceContext,
    out: &mut impl RowSink<SpendRow>,
) -> Result<()> {
    let window = Window::for_run(&cfg.window(), ctx);
    let get = |url: &str, access: &str| {
        ctx.http
            .inner()
            .get(url)
            .bearer_auth(access)
            .header("LinkedIn-Version", cfg.api_version.as_str())
            .header("X-Restli-Protocol-Version", "2.0.0")
    };
    // The analytics route is one for every account and chunk, and its elements do not
    // name their account: an answer repeated for the next account is caught by being the
    // same bytes as the previous, different request's.
    let last_analytics = answer::LastAnswer::default();
    for account in &cfg.account_ids {
        let account_url = join_url(base_url, &format!("rest/adAccounts/{account}"));
        let ours = |body: &[u8]| account_belongs(body, account);
        let classify = answer::checked(ctx, "linkedin_ads/ad_account", &verdict, ours);
        let body = token
            .fetch(ctx, "linkedin_ads/ad_account", &classify, |access| {
                get(&account_url, access)
            })
            .await?;
        let parsed = ctx.parse_json(&account_url, &body).await?;
        let currency = opt_str(parsed.get("currency"))
            .ok_or_else(|| ctx.protocol(&account_url, "the ad account has no `currency`"))?;
        for (from, to) in window.chunks(cfg.chunk_days) {
            let url = analytics_url(base_url, account, from, to);
            // Checking that the answer is this request's reads its elements, so the page
            // is decoded there, once.
            let once = DecodedOnce::default();
            let ours = |body: &[u8]| {
                let answer = match Analytics::parse(body) {
                    Ok(answer) => answer,
                    // Not JSON: reported once the loop hands the body back.
                    Err(not_json) => return Ok(Err(not_json)),
                };
                analytics_belong(&answer, body, from, to, &url, &last_analytics)?;
                Ok(answer.decode(account, &currency))
            };
            let classify = once.checked(ctx, "linkedin_ads/ad_analytics", &verdict, ours);
            let body = token
                .fetch(ctx, "linkedin_ads/ad_analytics", &classify, |access| {
                    get(&url, access)
                })
                .await?;
            drop(classify);
            last_analytics.accepted(&url, &body);
            let decoded = once
                .take(&body)
                .unwrap_or_else(|| Analytics::parse(&body)?.decode(account, &currency))
                .map_err(|message| ctx.protocol(&url, message))?;
            let location = format!("account {account} {from}..{to}");
            decoded.write(out, &location).await?;
        }
    }
    window.cover(ctx, out)
}

/// Is this the ad account asked for? (Its `id`, when the answer has one.)
fn account_belongs(body: &[u8], account: &str) -> std::result::Result<(), String> {
    let Ok(parsed) = crate::json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match opt_str(parsed.get("id")) {
        Some(id) if id != account => Err(format!(
            "it describes ad account {id}, not the one requested"
        )),
        _ => Ok(()),
    }
}

/// An analytics answer borrowed from its body, each element parsed into a borrowed
/// [`Element`]; `elements` is `None` when the answer has no `elements` array.
#[derive(Debug)]
struct Analytics<'a> {
    elements: Option<Vec<(&'a RawValue, Element<'a>)>>,
}

lenient_object! {
    /// An analytics answer.
    struct AnalyticsParts<'a> {
        "elements" => elements: RawRecords<'a>,
    }
}

lenient_object! {
    /// One analytics element, as the request's `fields` ask for it.
    struct Element<'a> {
        "dateRange" => date_range: DateRangePart<'a>,
        "pivotValues" => pivot_values: FirstPivot<'a>,
        "costInLocalCurrency" => cost: Scalar<'a>,
        "impressions" => impressions: Scalar<'a>,
        "clicks" => clicks: Scalar<'a>,
    }
}

lenient_object! {
    /// `dateRange`.
    struct DateRangePart<'a> {
        "start" => start: DatePart<'a>,
    }
}

lenient_object! {
    /// `dateRange.start`.
    struct DatePart<'a> {
        "year" => year: Scalar<'a>,
        "month" => month: Scalar<'a>,
        "day" => day: Scalar<'a>,
    }
}

/// What a `/pivotValues/0` pointer finds: an array's first element, or an object's member
/// `"0"` (the last one if repeated).
#[derive(Debug, Default)]
struct FirstPivot<'a>(Option<Scalar<'a>>);

impl<'de> Deserialize<'de> for FirstPivot<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct PivotVisitor;
        impl<'de> serde::de::Visitor<'de> for PivotVisitor {
            type Value = FirstPivot<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstPivot(first))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut zero = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "0" {
                        zero = Some(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(FirstPivot(zero))
            }
            anything_else_is!('de, FirstPivot(None));
        }
        d.deserialize_any(PivotVisitor)
    }
}

impl DatePart<'_> {
    /// `year`, `month` or `day` as a whole number, when it is one.
    fn part(&self, k: &str) -> Option<&serde_json::Number> {
        let value = match k {
            "year" => &self.year,
            "month" => &self.month,
            _ => &self.day,
        };
        match value.as_ref()? {
            Scalar::Number(n) => Some(n),
            _ => None,
        }
    }
}

impl Element<'_> {
    /// `dateRange.start`, when present (even as something other than an object).
    fn start(&self) -> Option<&DatePart<'_>> {
        self.date_range.as_ref()?.start.as_ref()
    }
}

impl<'a> Analytics<'a> {
    /// Parse a body and each of its elements; `Err` when the body is not JSON.
    fn parse(body: &'a [u8]) -> std::result::Result<Analytics<'a>, String> {
        let parts: AnalyticsParts<'a> =
            crate::json::from_slice(body).map_err(|e| super::not_json(&e, body))?;
        let elements = parts
            .elements
            .and_then(|e| e.0)
            .map(|r| read_each(r).collect());
        Ok(Analytics { elements })
    }

    /// The rows and rejects; `Err` when there is no `elements` array.
    fn decode(
        self,
        account: &str,
        currency: &str,
    ) -> std::result::Result<DecodedPage<SpendRow, ()>, String> {
        let elements = self.elements.ok_or("no `elements` array")?;
        Ok(decode_each(&elements, (), |element| {
            decode_row(element, account, currency)
        }))
    }
}

/// Is this analytics answer the one for `url` (`from..=to` of one account)? Every element
/// starts inside the range, and an answer with elements is not the previous, different
/// request's answer again.
fn analytics_belong(
    answer: &Analytics<'_>,
    body: &[u8],
    from: NaiveDate,
    to: NaiveDate,
    url: &str,
    last: &answer::LastAnswer,
) -> std::result::Result<(), String> {
    let elements = answer.elements.as_deref().unwrap_or_default();
    let days: Vec<String> = elements
        .iter()
        .filter_map(|(_, element)| {
            let start = element.start()?;
            let part = |k: &str| start.part(k)?.as_i64();
            let day = NaiveDate::from_ymd_opt(
                i32::try_from(part("year")?).ok()?,
                u32::try_from(part("month")?).ok()?,
                u32::try_from(part("day")?).ok()?,
            )?;
            Some(day.to_string())
        })
        .collect();
    answer::days_within(days.iter().map(String::as_str), from, to)?;
    last.check(url, body, !elements.is_empty())
}

/// One analytics element as a `spend` row, or why not.
fn decode_row(
    element: &Element<'_>,
    account: &str,
    currency: &str,
) -> std::result::Result<SpendRow, String> {
    let start = element.start().ok_or("element has no dateRange.start")?;
    let part = |k: &str| {
        start
            .part(k)
            .and_then(serde_json::Number::as_u64)
            .ok_or_else(|| format!("dateRange.start.{k} is missing"))
    };
    let date = NaiveDate::from_ymd_opt(
        part("year")? as i32,
        part("month")? as u32,
        part("day")? as u32,
    )
    .ok_or("dateRange.start is not a date")?;
    let urn = element
        .pivot_values
        .as_ref()
        .and_then(|p| p.0.as_ref())
        .and_then(Scalar::as_str)
        .ok_or("element has no pivotValues")?;
    let campaign_id = urn
        .strip_prefix("urn:li:sponsoredCampaign:")
        .ok_or_else(|| format!("`{urn}` is not a sponsoredCampaign URN"))?;
    let spend = match opt_str(element.cost.as_ref()) {
        None => 0,
        Some(text) => decimal_micros(&text).map_err(|e| format!("costInLocalCurrency: {e}"))?,
    };
    Ok(SpendRow {
        date: crate::days::epoch_days(date),
        platform: "linkedin_ads".into(),
        account_id: account.into(),
        campaign_id: campaign_id.into(),
        campaign_name: None,
        channel: Some("paid_social".into()),
        currency: currency.into(),
        spend,
        impressions: opt_i64(element.impressions.as_ref(), "impressions")?.unwrap_or(0),
        clicks: opt_i64(element.clicks.as_ref(), "clicks")?.unwrap_or(0),
    })
}

/// LinkedIn's classification: the daily limit (429, `serviceErrorCode` 101 or a "DAY
/// limit" message) is fatal with the reset time; other 429s and 5xx retry; 426 names the
/// retired version; other errors are fatal with the vendor's message.
pub fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Accept;
    }
    let error = crate::json::from_slice::<Value>(body).ok();
    let message = error
        .as_ref()
        .and_then(|e| opt_str(e.get("message")))
        .unwrap_or_else(|| body_excerpt(body));
    let code = error.as_ref().and_then(|e| opt_str(e.get("code")));
    match status.as_u16() {
        429 => {
            let daily = message.to_ascii_uppercase().contains("DAY")
                || error
                    .as_ref()
                    .and_then(|e| e.get("serviceErrorCode"))
                    .and_then(Value::as_i64)
                    == Some(101);
            if daily {
                let reset = (Utc::now().date_naive() + Duration::days(1))
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc().to_rfc3339())
                    .unwrap_or_default();
                Verdict::Fatal(format!(
                    "daily API limit reached: {message} — the limit resets at {reset}; run again after that"
                ))
            } else {
                Verdict::RateLimited(retry_after(headers))
            }
        }
        426 => Verdict::Fatal(format!(
            "LinkedIn-Version not active ({}): {message} — set api_version to a current YYYYMM",
            code.unwrap_or_default()
        )),
        401 => Verdict::Fatal(format!(
            "HTTP 401: {message} — the access token is invalid or expired"
        )),
        s if s >= 500 => Verdict::Retry(retry_after(headers)),
        s => Verdict::Fatal(format!("HTTP {s}: {message}")),
    }
}

impl super::SourceKind for LinkedinAdsConfig {
    const KIND: &'static str = "linkedin_ads";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Spend;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn http_urls(&self) -> Vec<(&'static str, &Template)> {
        vec![("base_url", &self.base_url), ("token_url", &self.token_url)]
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        LinkedinAdsConfig::secrets(self)
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        LinkedinAdsConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        let token = super::oauth::from_resolved(resolved);
        pull(self, &resolved.base_url, &token, ctx, outputs.spend()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restli_query_is_literal() {
        let url = analytics_url(
            "https://api.linkedin.com",
            "508123456",
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 30).unwrap(),
        );
        assert!(url.contains(
            "dateRange=(start:(year:2026,month:10,day:1),end:(year:2026,month:10,day:30))"
        ));
        assert!(url.contains("accounts=List(urn%3Ali%3AsponsoredAccount%3A508123456)"));
        // reqwest keeps it as is.
        let parsed = reqwest::Url::parse(&url).unwrap();
        assert_eq!(parsed.as_str(), url);
    }

    /// `decode_row` of an element given as a `Value`.
    fn decode_value(element: &Value) -> std::result::Result<SpendRow, String> {
        let text = element.to_string();
        let element: Element<'_> = serde_json::from_str(&text).unwrap();
        decode_row(&element, "508123456", "USD")
    }

    #[test]
    fn cost_tails_round_last() {
        let row = decode_value(
            &json!({"dateRange": {"start": {"year": 2026, "month": 11, "day": 3}, "end": {"year": 2026, "month": 11, "day": 3}},
                    "pivotValues": ["urn:li:sponsoredCampaign:61234567"], "impressions": 1200,
                    "costInLocalCurrency": "6.300000000000001"}),
        )
        .unwrap();
        assert_eq!(row.spend, 6_300_000);
        assert_eq!(row.clicks, 0);
        assert_eq!(row.campaign_id, "61234567");
    }

    #[test]
    fn a_malformed_element_is_rejected_whole_among_good_rows() {
        let good = |campaign: u64| {
            json!({"dateRange": {"start": {"year": 2026, "month": 11, "day": 3}},
                   "pivotValues": [format!("urn:li:sponsoredCampaign:{campaign}"), "urn:li:other:1"],
                   "impressions": 10, "clicks": "2", "costInLocalCurrency": "1.5"})
        };
        let malformed = json!({"dateRange": {"start": {"year": 2026, "month": 11, "day": 3}},
            "pivotValues": ["urn:li:sponsoredCampaign:3"], "costInLocalCurrency": "1.5.0"});
        let body =
            json!({"elements": [good(1), malformed, good(2)], "paging": {"count": 10}}).to_string();
        let page = Analytics::parse(body.as_bytes())
            .unwrap()
            .decode("508123456", "USD")
            .unwrap();
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[1].campaign_id, "2");
        assert_eq!((page.rows[0].spend, page.rows[0].clicks), (1_500_000, 2));
        assert_eq!(
            page.rejects,
            vec![(
                malformed,
                "costInLocalCurrency: `1.5.0` is not a decimal number".to_string()
            )]
        );
        // `pivotValues/0` as a pointer saw it: an object's member "0" too.
        let odd = br#"{"elements":[{"dateRange":{"start":{"year":2026,"month":2,"day":30}}},
            {"dateRange":{"start":{"year":2026,"month":2,"day":3}},"pivotValues":{"0":"urn:li:sponsoredCampaign:7"}},
            {"dateRange":{"start":null}}, "x"]}"#;
        let page = Analytics::parse(odd).unwrap().decode("1", "USD").unwrap();
        assert_eq!(page.rows[0].campaign_id, "7");
        let reasons: Vec<&str> = page.rejects.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "dateRange.start is not a date",
                "dateRange.start.year is missing",
                "element has no dateRange.start"
            ]
        );
        let no_elements = Analytics::parse(br#"{"elements":{}}"#)
            .unwrap()
            .decode("1", "USD");
        assert_eq!(no_elements.unwrap_err(), "no `elements` array");
        assert!(Analytics::parse(b"{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn daily_limit_is_fatal_with_the_reset_time() {
        let body = br#"{"status":429,"serviceErrorCode":101,"code":"TOO_MANY_REQUESTS","message":"Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}"#;
        assert!(matches!(
            verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body),
            Verdict::Fatal(m) if m.contains("resets at") && m.contains("T00:00:00")
        ));
        assert_eq!(
            verdict(
                StatusCode::TOO_MANY_REQUESTS,
                &HeaderMap::new(),
                br#"{"status":429,"message":"Too many requests"}"#
            ),
            Verdict::RateLimited(None)
        );
    }

    #[test]
    fn analytics_of_other_dates_or_repeated_for_another_request_are_not_accepted() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let body = br#"{"elements":[{"dateRange":{"start":{"year":2026,"month":10,"day":3}}}]}"#;
        let last = answer::LastAnswer::default();
        let analytics_belong = |body: &[u8], from, to, url: &str, last: &answer::LastAnswer| {
            let answer = Analytics::parse(body).unwrap();
            analytics_belong(&answer, body, from, to, url, last)
        };
        assert!(analytics_belong(body, d("2026-10-01"), d("2026-10-31"), "a", &last).is_ok());
        assert!(analytics_belong(body, d("2026-11-01"), d("2026-11-30"), "b", &last).is_err());
        last.accepted("a", body);
        // The same dates for the next account: the very same bytes are the last answer again.
        assert!(analytics_belong(body, d("2026-10-01"), d("2026-10-31"), "b", &last).is_err());
        assert!(account_belongs(br#"{"id":508123456,"currency":"USD"}"#, "508123456").is_ok());
        assert!(account_belongs(br#"{"id":508654321,"currency":"USD"}"#, "508123456").is_err());
    }
}
