//! The LinkedIn Marketing API imitation: `GET /linkedin/rest/adAccounts/{id}` (currency) and
//! `GET /linkedin/rest/adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&
//! dateRange=(…)&accounts=List(urn%3Ali%3A…)` with the Rest.li 2.0 query read literally (a
//! percent-encoded `(` is refused, as LinkedIn refuses it), `LinkedIn-Version` checked
//! against the active versions (426 `NONEXISTENT_VERSION` otherwise), no paging (an inert
//! `paging` object), elements unsorted, `costInLocalCurrency` strings some with float
//! tails, and the daily application limit (429, `serviceErrorCode` 101) on demand.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Datelike;
use serde_json::{Value, json};

use super::data::SandboxData;
use super::encoding::{civil_from_days, days_from_civil, decimal_text};
use super::request::bearer_token;
use super::spend::{Customer, MALFORMED_COST};
use super::twin::Twin;

/// Bearer token the LinkedIn imitation accepts.
pub const LINKEDIN_ACCESS_TOKEN: &str = "sandbox-linkedin-token";
/// OAuth client id the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_ID: &str = "sandbox-linkedin-client";
/// OAuth client secret the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_SECRET: &str = "sandbox-linkedin-secret";
/// Refresh token the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_REFRESH_TOKEN: &str = "sandbox-linkedin-refresh-token";

/// The LinkedIn Ads twin and its OAuth token endpoint.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/linkedin"],
    routes,
    env: &[
        ("LINKEDIN_ACCESS_TOKEN", LINKEDIN_ACCESS_TOKEN),
        ("LINKEDIN_REFRESH_TOKEN", LINKEDIN_REFRESH_TOKEN),
        ("LINKEDIN_CLIENT_ID", LINKEDIN_CLIENT_ID),
        ("LINKEDIN_CLIENT_SECRET", LINKEDIN_CLIENT_SECRET),
    ],
    terse_429: None,
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route("/linkedin/rest/adAccounts/{id}", get(ad_account))
        .route("/linkedin/rest/adAnalytics", get(ad_analytics))
        .route("/linkedin/oauth/v2/accessToken", post(access_token))
}

fn error(status: StatusCode, code: &str, service_code: Option<i64>, message: &str) -> Response {
    let mut body = json!({ "status": status.as_u16(), "code": code, "message": message });
    if let Some(s) = service_code {
        body["serviceErrorCode"] = json!(s);
    }
    (status, axum::Json(body)).into_response()
}

/// Auth, version and limit checks shared by both routes.
fn check(data: &SandboxData, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let version = headers
        .get("linkedin-version")
        .and_then(|v| v.to_str().ok());
    let Some(version) = version else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "VERSION_MISSING",
            None,
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        )));
    };
    // Active: the twelve months up to the sandbox's today.
    let today = data.options().today;
    let current = today.year() * 12 + today.month0() as i32;
    let requested = version
        .parse::<i32>()
        .ok()
        .filter(|_| version.len() == 6)
        .map(|v| (v / 100) * 12 + (v % 100 - 1));
    if !requested
        .is_some_and(|r| r <= current && r > current - 12 && (1..=12).contains(&(r % 12 + 1)))
    {
        return Err(Box::new(error(
            StatusCode::UPGRADE_REQUIRED,
            "NONEXISTENT_VERSION",
            None,
            &format!("Requested version {version} is not active"),
        )));
    }
    match bearer_token(headers) {
        Some(LINKEDIN_ACCESS_TOKEN) => {}
        _ => {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "INVALID_ACCESS_TOKEN",
                Some(65600),
                "Invalid access token",
            )));
        }
    }
    if data.control.daily_limit_reached() {
        return Err(Box::new(error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            Some(101),
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        )));
    }
    Ok(())
}

fn account<'a>(data: &'a SandboxData, id: &str) -> Result<&'a Customer, Box<Response>> {
    data.linkedin_accounts
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                Some(100),
                &format!("Not enough permissions to access: urn:li:sponsoredAccount:{id}"),
            ))
        })
}

/// `GET /linkedin/rest/adAccounts/{id}`.
pub(crate) async fn ad_account(
    State(data): State<Arc<SandboxData>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&data, &headers) {
        return *r;
    }
    match account(&data, &id) {
        Ok(a) => axum::Json(json!({
            "id": a.id.parse::<u64>().unwrap_or(0),
            "name": a.descriptive_name,
            "currency": a.currency,
            "status": "ACTIVE",
            "type": "BUSINESS",
            "reference": "urn:li:organization:2414183",
            "test": false,
        }))
        .into_response(),
        Err(r) => *r,
    }
}

/// `(year:Y,month:M,day:D)` → days since the epoch.
fn restli_date(text: &str) -> Option<i64> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let (mut y, mut m, mut d) = (None, None, None);
    for part in inner.split(',') {
        let (k, v) = part.split_once(':')?;
        let v: i64 = v.parse().ok()?;
        match k {
            "year" => y = Some(v),
            "month" => m = Some(v as u32),
            "day" => d = Some(v as u32),
            _ => return None,
        }
    }
    let (y, m, d) = (y?, m?, d?);
    chrono::NaiveDate::from_ymd_opt(y as i32, m, d)?;
    Some(days_from_civil(y, m, d))
}

/// `(start:(…),end:(…))`.
fn date_range(text: &str) -> Option<(i64, i64)> {
    let inner = text.strip_prefix("(start:")?.strip_suffix(')')?;
    let (start, end) = inner.split_once(",end:")?;
    Some((restli_date(start)?, restli_date(end)?))
}

/// `GET /linkedin/rest/adAnalytics`.
pub(crate) async fn ad_analytics(
    State(data): State<Arc<SandboxData>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check(&data, &headers) {
        return *r;
    }
    let raw = raw.unwrap_or_default();
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "ILLEGAL_ARGUMENT", Some(100), m);
    if raw.contains("%28") || raw.contains("%29") || raw.contains("%2C") {
        return bad(
            "Invalid param. Rest.li 2.0 structure characters ( ) , : must not be percent-encoded (X-Restli-Protocol-Version: 2.0.0).",
        );
    }
    if headers
        .get("x-restli-protocol-version")
        .and_then(|v| v.to_str().ok())
        != Some("2.0.0")
    {
        return bad(
            "Invalid param: send X-Restli-Protocol-Version: 2.0.0 for Rest.li 2.0 query syntax.",
        );
    }
    let params: Vec<(&str, &str)> = raw.split('&').filter_map(|p| p.split_once('=')).collect();
    let param = |k: &str| params.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    if param("q") != Some("analytics") || param("pivot") != Some("CAMPAIGN") {
        return bad("The sandbox serves q=analytics&pivot=CAMPAIGN only.");
    }
    if param("timeGranularity") != Some("DAILY") {
        return bad("The sandbox serves timeGranularity=DAILY only.");
    }
    let Some((since, until)) = param("dateRange").and_then(date_range) else {
        return bad(
            "Invalid param dateRange: expected (start:(year:Y,month:M,day:D),end:(year:Y,month:M,day:D)).",
        );
    };
    let Some(account_id) = param("accounts")
        .and_then(|a| a.strip_prefix("List(urn%3Ali%3AsponsoredAccount%3A"))
        .and_then(|a| a.strip_suffix(')'))
    else {
        return bad("Invalid param accounts: expected List(urn%3Ali%3AsponsoredAccount%3A<id>).");
    };
    let acct = match account(&data, account_id) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let fields: Vec<&str> = param("fields").unwrap_or("").split(',').collect();
    let date = |day: i64| {
        let (y, m, d) = civil_from_days(day);
        json!({ "year": y, "month": m, "day": d })
    };
    // LinkedIn returns elements in no particular order: newest first here.
    let elements: Vec<Value> = acct
        .rows
        .iter()
        .filter(|r| r.day >= since && r.day <= until)
        .rev()
        .enumerate()
        .map(|(i, r)| {
            let campaign = &acct.campaigns[r.campaign];
            let (cost, impressions, clicks) = data.control.restated(
                data.today_days,
                r.day,
                (r.cost_micros, r.impressions, r.clicks),
            );
            let mut obj = serde_json::Map::new();
            for &f in &fields {
                let value = match f {
                    "dateRange" => json!({ "start": date(r.day), "end": date(r.day) }),
                    "pivotValues" => json!([format!("urn:li:sponsoredCampaign:{}", campaign.id)]),
                    "impressions" => json!(impressions),
                    "clicks" => json!(clicks),
                    "costInLocalCurrency" if r.malformed => json!(MALFORMED_COST),
                    // Some costs carry a float tail, as LinkedIn's do.
                    "costInLocalCurrency" if i % 7 == 3 => json!(format!(
                        "{}.{:02}0000000000001",
                        cost / 1_000_000,
                        (cost % 1_000_000) / 10_000
                    )),
                    "costInLocalCurrency" => json!(decimal_text(cost, 2)),
                    "costInUsd" if acct.currency == "USD" => json!(decimal_text(cost, 2)),
                    _ => continue,
                };
                obj.insert(f.to_string(), value);
            }
            Value::Object(obj)
        })
        .collect();
    let count = elements.len();
    axum::Json(json!({
        "paging": { "start": 0, "count": count.max(10), "links": [] },
        "elements": elements,
    }))
    .into_response()
}

/// `POST /linkedin/oauth/v2/accessToken`: the refresh-token grant, answered as LinkedIn does.
pub(crate) async fn access_token(body: axum::body::Bytes) -> Response {
    let form = super::request::query_pairs(std::str::from_utf8(&body).unwrap_or(""));
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let bad = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if get("grant_type") != Some("refresh_token") {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "A required parameter \"grant_type\" is missing or invalid",
        );
    }
    if get("client_id") != Some(LINKEDIN_CLIENT_ID)
        || get("client_secret") != Some(LINKEDIN_CLIENT_SECRET)
    {
        return bad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if get("refresh_token") != Some(LINKEDIN_REFRESH_TOKEN) {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The provided authorization grant or refresh token is invalid, expired or revoked",
        );
    }
    axum::Json(json!({
        "access_token": LINKEDIN_ACCESS_TOKEN,
        "expires_in": 5_184_000,
        "refresh_token": LINKEDIN_REFRESH_TOKEN,
        "refresh_token_expires_in": 31_536_000,
        "scope": "r_ads_reporting",
    }))
    .into_response()
}
