//! Google Ads campaign spend → `spend`, through `googleAds:search`: one GAQL query per
//! customer over a date window, `nextPageToken` paging with the identical query, int64s as
//! strings, cost in micros (exactly `Decimal128(18, 6)`), currency from the customer.

use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{SourceContext, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::parse::{date_days, opt_i64, opt_str};
use crate::normalize::{SpendBuilder, SpendRow};
use crate::sink::DatasetOutput;

/// `[[sources]] kind = "google_ads"`.
#[derive(Debug, Clone, Deserialize)]
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
    /// Customer ids to pull, 10 digits without dashes.
    pub customer_ids: Vec<String>,
    /// Manager account id sent as `login-customer-id`, when going through a manager.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// `developer-token` header, e.g. `"${GOOGLE_ADS_DEVELOPER_TOKEN}"`.
    pub developer_token: Template,
    /// OAuth access token, e.g. `"${GOOGLE_ADS_ACCESS_TOKEN}"`.
    pub access_token: Template,
    /// Days before today to pull (inclusive window ending today).
    #[serde(default = "default_lookback_days")]
    pub lookback_days: u32,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> Template {
    Template::new("https://googleads.googleapis.com")
}

fn default_api_version() -> String {
    "v21".to_string()
}

fn default_lookback_days() -> u32 {
    90
}

fn is_customer_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit())
}

impl GoogleAdsConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
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
        if self.lookback_days == 0 || self.lookback_days > 3650 {
            problems.push(("lookback_days", "must be between 1 and 3650".to_string()));
        }
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
    access_token: &Secret,
    developer_token: &Secret,
    ctx: &SourceContext,
    out: &mut DatasetOutput<SpendBuilder>,
) -> Result<()> {
    // A backfill names its range; a nightly run pulls `lookback_days` up to today.
    let (from, to) = ctx.window.unwrap_or_else(|| {
        (
            ctx.today - Duration::days(i64::from(cfg.lookback_days)),
            ctx.today,
        )
    });
    let query = gaql(from, to);
    for customer in &cfg.customer_ids {
        let url = join_url(
            base_url,
            &format!("{}/customers/{customer}/googleAds:search", cfg.api_version),
        );
        let mut page_token: Option<String> = None;
        let mut page = 0u64;
        loop {
            page += 1;
            let mut body = json!({ "query": query });
            if let Some(token) = &page_token {
                body["pageToken"] = Value::String(token.clone());
            }
            let mut request = ctx
                .http
                .inner()
                .post(&url)
                .bearer_auth(access_token.expose())
                .header("developer-token", developer_token.expose())
                .json(&body);
            if let Some(manager) = &cfg.login_customer_id {
                request = request.header("login-customer-id", manager);
            }
            let page_body = ctx.pages.fetch("google_ads/search", request).await?;
            let parsed = ctx.parse_json(&url, &page_body)?;
            let location = format!("customer {customer} page {page}");
            if let Some(results) = parsed.get("results") {
                let rows = results
                    .as_array()
                    .ok_or_else(|| ctx.protocol(&url, "`results` is not an array"))?;
                for result in rows {
                    match decode_row(result, customer) {
                        Ok(row) => out.push(row).await?,
                        Err(reason) => out.reject(&location, result, reason),
                    }
                }
            }
            page_token = parsed
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if page_token.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// `advertisingChannelType` as our channel names.
pub fn channel_of(channel_type: &str) -> String {
    match channel_type {
        "SEARCH" => "paid_search".to_string(),
        "DISPLAY" => "display".to_string(),
        "VIDEO" => "video".to_string(),
        "SHOPPING" => "shopping".to_string(),
        other => crate::normalize::parse::snake_case(other),
    }
}

/// One search result row as a `spend` row, or why not.
pub fn decode_row(result: &Value, customer: &str) -> std::result::Result<SpendRow, String> {
    let date = result
        .pointer("/segments/date")
        .and_then(Value::as_str)
        .ok_or("row has no segments.date")?;
    let campaign_id = opt_str(result.pointer("/campaign/id")).ok_or("row has no campaign.id")?;
    let currency = opt_str(result.pointer("/customer/currencyCode"))
        .ok_or("row has no customer.currencyCode (select customer.currency_code)")?;
    let cost_micros =
        opt_i64(result.pointer("/metrics/costMicros"), "metrics.costMicros")?.unwrap_or(0);
    Ok(SpendRow {
        date: date_days(date)?,
        platform: "google_ads".into(),
        account_id: customer.to_string(),
        campaign_id,
        campaign_name: opt_str(result.pointer("/campaign/name")),
        channel: result
            .pointer("/campaign/advertisingChannelType")
            .and_then(Value::as_str)
            .map(channel_of),
        currency,
        // Micros are exactly the Decimal128(18, 6) representation.
        spend: i128::from(cost_micros),
        impressions: opt_i64(
            result.pointer("/metrics/impressions"),
            "metrics.impressions",
        )?
        .unwrap_or(0),
        clicks: opt_i64(result.pointer("/metrics/clicks"), "metrics.clicks")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_are_exact_and_missing_metrics_are_zero() {
        let row = decode_row(
            &json!({
                "customer": {"resourceName": "customers/1112223334", "currencyCode": "EUR"},
                "campaign": {"resourceName": "x", "id": "20000000001", "name": "Brand", "advertisingChannelType": "SEARCH"},
                "segments": {"date": "2026-11-01"},
                "metrics": {"costMicros": "12345678901", "impressions": "1000"}
            }),
            "1112223334",
        )
        .unwrap();
        assert_eq!(row.spend, 12_345_678_901);
        assert_eq!(row.clicks, 0);
        assert_eq!(row.channel.as_deref(), Some("paid_search"));
        assert_eq!(row.date, date_days("2026-11-01").unwrap());
        let bad = decode_row(
            &json!({"customer": {"currencyCode": "EUR"}, "campaign": {"id": "1"}, "segments": {"date": "2026-11-01"},
                    "metrics": {"costMicros": "12x5"}}),
            "1112223334",
        );
        assert!(bad.unwrap_err().contains("12x5"));
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
