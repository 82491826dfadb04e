//! What the ad-platform twins share: the Meta and LinkedIn accounts (generated like the
//! Google Ads customers, in other currencies), restatement of the last day between runs,
//! the faults tests switch on (Google quota errors, Meta throttles and its code-1 range
//! limit, LinkedIn's daily limit), the admin endpoints that drive them, and the per-row
//! facts tests total independently.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::data::SandboxData;
use super::spend::Customer;

/// Bearer token (or `access_token` parameter) the Meta imitation accepts.
pub const META_ACCESS_TOKEN: &str = "sandbox-meta-token";
/// Meta ad accounts served: `(id without act_, currency)`.
pub const META_ACCOUNTS: &[(&str, &str)] =
    &[("101000000000001", "GBP"), ("101000000000002", "USD")];
/// Bearer token the LinkedIn imitation accepts.
pub const LINKEDIN_ACCESS_TOKEN: &str = "sandbox-linkedin-token";
/// LinkedIn sponsored accounts served: `(id, currency)`.
pub const LINKEDIN_ACCOUNTS: &[(&str, &str)] = &[("508123456", "USD"), ("508654321", "EUR")];
/// OAuth client id the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_ID: &str = "sandbox-linkedin-client";
/// OAuth client secret the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_SECRET: &str = "sandbox-linkedin-secret";
/// Refresh token the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_REFRESH_TOKEN: &str = "sandbox-linkedin-refresh-token";
/// The manager account of the Google Ads customers; a `login-customer-id` naming any other
/// account is denied.
pub const GOOGLE_ADS_MANAGER_ID: &str = "9990001112";
/// OAuth client id the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_ID: &str = "sandbox-client-id.apps.googleusercontent.com";
/// OAuth client secret the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_SECRET: &str = "sandbox-client-secret";
/// Refresh token the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// Days one Meta insights request may span before it answers code 1, by default.
pub const META_DEFAULT_MAX_RANGE_DAYS: u32 = 45;

/// One served spend row, as the vendor reports it now (restatement applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendFact {
    /// `google_ads`, `meta_ads` or `linkedin_ads`.
    pub platform: &'static str,
    /// Customer / ad account id.
    pub account_id: String,
    /// ISO-4217 currency of the account.
    pub currency: String,
    /// Campaign id.
    pub campaign_id: String,
    /// Day, `YYYY-MM-DD`.
    pub date: String,
    /// Cost in millionths of the currency unit.
    pub cost_micros: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Served with an unparseable cost.
    pub malformed: bool,
}

/// Faults and restatement, switched at run time (admin endpoint or [`SandboxData::control`]).
#[derive(Debug)]
pub struct SpendControl {
    restatements: AtomicU64,
    google_quota_errors: AtomicU32,
    google_retry_delay: Mutex<String>,
    meta_throttles: AtomicU32,
    meta_regain_minutes: Mutex<f64>,
    meta_max_range_days: AtomicU32,
    linkedin_daily_limit: AtomicBool,
}

impl Default for SpendControl {
    fn default() -> Self {
        SpendControl {
            restatements: AtomicU64::new(0),
            google_quota_errors: AtomicU32::new(0),
            google_retry_delay: Mutex::new("1s".into()),
            meta_throttles: AtomicU32::new(0),
            meta_regain_minutes: Mutex::new(1.0),
            meta_max_range_days: AtomicU32::new(META_DEFAULT_MAX_RANGE_DAYS),
            linkedin_daily_limit: AtomicBool::new(false),
        }
    }
}

impl SpendControl {
    /// Restate the last day of data (yesterday) on every platform: each call changes its
    /// cost, impressions and clicks again. Returns how many restatements there have been.
    pub fn restate(&self) -> u64 {
        self.restatements.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The next `count` Google Ads requests answer 429 `RESOURCE_EXHAUSTED` with this
    /// `retryDelay` (a Duration string such as `"1.5s"`).
    pub fn google_quota_errors(&self, count: u32, retry_delay: &str) {
        if let Ok(mut d) = self.google_retry_delay.lock() {
            *d = retry_delay.to_string();
        }
        self.google_quota_errors.store(count, Ordering::SeqCst);
    }

    /// The next `count` Meta requests are throttled (code 80000) with this
    /// `estimated_time_to_regain_access` in minutes.
    pub fn meta_throttles(&self, count: u32, regain_minutes: f64) {
        if let Ok(mut m) = self.meta_regain_minutes.lock() {
            *m = regain_minutes;
        }
        self.meta_throttles.store(count, Ordering::SeqCst);
    }

    /// Meta answers code 1 for a `time_range` longer than `days` (0 = never).
    pub fn meta_max_range_days(&self, days: u32) {
        self.meta_max_range_days.store(days, Ordering::SeqCst);
    }

    /// LinkedIn answers every request with its daily-limit 429 while `on`.
    pub fn linkedin_daily_limit(&self, on: bool) {
        self.linkedin_daily_limit.store(on, Ordering::SeqCst);
    }

    pub(crate) fn take_google_quota_error(&self) -> Option<String> {
        take(&self.google_quota_errors).then(|| {
            self.google_retry_delay
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default()
        })
    }

    pub(crate) fn take_meta_throttle(&self) -> Option<f64> {
        take(&self.meta_throttles)
            .then(|| self.meta_regain_minutes.lock().map(|m| *m).unwrap_or(1.0))
    }

    pub(crate) fn max_range_days(&self) -> u32 {
        self.meta_max_range_days.load(Ordering::SeqCst)
    }

    pub(crate) fn daily_limit_reached(&self) -> bool {
        self.linkedin_daily_limit.load(Ordering::SeqCst)
    }

    /// `(cost_micros, impressions, clicks)` of a row on `day` as served now: the last day
    /// before `today` moves by a fixed step per restatement (cost by 1.23 and 10 clicks).
    pub(crate) fn restated(
        &self,
        today_days: i64,
        day: i64,
        metrics: (i64, i64, i64),
    ) -> (i64, i64, i64) {
        let n = self.restatements.load(Ordering::SeqCst) as i64;
        if n == 0 || day != today_days - 1 {
            return metrics;
        }
        let (cost, impressions, clicks) = metrics;
        (cost + n * 1_230_000, impressions + n * 100, clicks + n * 10)
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// `(platform, accounts)` of every ad platform the sandbox serves.
pub(crate) fn platforms(data: &SandboxData) -> [(&'static str, &[Customer]); 3] {
    [
        ("google_ads", &data.customers),
        ("meta_ads", &data.meta_accounts),
        ("linkedin_ads", &data.linkedin_accounts),
    ]
}

/// Every spend row served now, all platforms.
pub(crate) fn facts(data: &SandboxData) -> Vec<SpendFact> {
    let mut out = Vec::new();
    for (platform, accounts) in platforms(data) {
        for account in accounts {
            for row in &account.rows {
                let (cost_micros, impressions, clicks) = data.control.restated(
                    data.today_days,
                    row.day,
                    (row.cost_micros, row.impressions, row.clicks),
                );
                out.push(SpendFact {
                    platform,
                    account_id: account.id.to_string(),
                    currency: account.currency.to_string(),
                    campaign_id: account.campaigns[row.campaign].id.to_string(),
                    date: super::encoding::format_date(row.day),
                    cost_micros,
                    impressions,
                    clicks,
                    malformed: row.malformed,
                });
            }
        }
    }
    out
}

/// Body of `POST /_admin/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsRequest {
    google_ads_quota_errors: Option<u32>,
    google_ads_retry_delay: Option<String>,
    meta_throttles: Option<u32>,
    meta_regain_minutes: Option<f64>,
    meta_max_range_days: Option<u32>,
    linkedin_daily_limit: Option<bool>,
}

/// `POST /_admin/restate`: restate the last day on every platform.
pub(crate) async fn restate(State(data): State<std::sync::Arc<SandboxData>>) -> Response {
    let n = data.control.restate();
    (StatusCode::OK, Json(json!({ "restatements": n }))).into_response()
}

/// `POST /_admin/faults`: switch faults on or off.
pub(crate) async fn faults(
    State(data): State<std::sync::Arc<SandboxData>>,
    body: axum::body::Bytes,
) -> Response {
    let request: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("bad faults body: {e}") })),
            )
                .into_response();
        }
    };
    let c = &data.control;
    if let Some(n) = request.google_ads_quota_errors {
        c.google_quota_errors(n, request.google_ads_retry_delay.as_deref().unwrap_or("1s"));
    }
    if let Some(n) = request.meta_throttles {
        c.meta_throttles(n, request.meta_regain_minutes.unwrap_or(1.0));
    }
    if let Some(days) = request.meta_max_range_days {
        c.meta_max_range_days(days);
    }
    if let Some(on) = request.linkedin_daily_limit {
        c.linkedin_daily_limit(on);
    }
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}

/// A cost in micros as a decimal string with up to `max_decimals` decimals, trailing
/// zeros dropped (`12.3`, `5`), as Meta and LinkedIn send them.
pub(crate) fn decimal_text(micros: i64, max_decimals: u32) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let unit = 10u64.pow(6 - max_decimals);
    let scaled = m / unit;
    let base = 10u64.pow(max_decimals);
    let whole = scaled / base;
    let frac = scaled % base;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:0width$}", width = max_decimals as usize);
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_rendered_exactly() {
        assert_eq!(decimal_text(12_340_000, 2), "12.34");
        assert_eq!(decimal_text(12_300_000, 2), "12.3");
        assert_eq!(decimal_text(5_000_000, 2), "5");
        assert_eq!(decimal_text(1_230_000, 6), "1.23");
        assert_eq!(decimal_text(-500_000, 2), "-0.5");
    }

    #[test]
    fn restatement_moves_only_the_last_day() {
        let c = SpendControl::default();
        assert_eq!(c.restated(100, 99, (1, 2, 3)), (1, 2, 3));
        c.restate();
        assert_eq!(c.restated(100, 99, (1, 2, 3)), (1_230_001, 102, 13));
        assert_eq!(c.restated(100, 98, (1, 2, 3)), (1, 2, 3));
    }
}
