//! The Meta Marketing API imitation: `GET /meta/{version}/act_{id}/insights` at campaign
//! level with `time_increment=1` over a `time_range`, `limit` + `after` cursor paging with a
//! `paging.next` link that embeds the access token (as Meta's do), spend as a decimal string
//! in the account currency, zero metrics omitted, and the Graph error envelope: 190 for a
//! bad or expired token, 2635 for a retired version, 80000 throttles with
//! `estimated_time_to_regain_access` in `X-Business-Use-Case-Usage`, and code 1 (HTTP 500)
//! for a `time_range` longer than the configured limit. Usage headers ride on every answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::answer::{LastSize, json_page};
use super::data::SandboxData;
use super::encoding::{
    base64url_decode, base64url_encode, days_from_civil, decimal_text, format_date,
};
use super::request::{bearer_token, query_pairs};
use super::spend::MALFORMED_COST;
use super::twin::{Terse429, Twin};

/// Bearer token (or `access_token` parameter) the Meta imitation accepts.
pub const META_ACCESS_TOKEN: &str = "sandbox-meta-token";

/// The Meta Ads twin.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/meta"],
    routes,
    env: &[("META_ACCESS_TOKEN", META_ACCESS_TOKEN)],
    terse_429: Some(EDGE_RATE_LIMIT),
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new().route("/meta/{version}/{account}/insights", get(insights))
}

/// Meta's insights behind a proxy's or CDN's 429: no Graph error object, no usage header.
const EDGE_RATE_LIMIT: Terse429 = Terse429 {
    name: "meta",
    endpoint: is_insights,
    answer: edge_rate_limited,
};

fn is_insights(path: &str) -> bool {
    path.starts_with("/meta/") && path.ends_with("/insights")
}

fn edge_rate_limited() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"error": "Too Many Requests", "message": "rate limited at the edge"})),
    )
        .into_response()
}

/// Graph API versions served (older ones are answered with code 2635).
const SUPPORTED_MAJOR: std::ops::RangeInclusive<u32> = 21..=24;
/// The size of the last answer, so the next insights page is written without growing.
static PAGE_SIZE: LastSize = LastSize::new();

fn graph_error(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    kind: &str,
    message: &str,
) -> (StatusCode, Value) {
    let mut error = json!({
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "AsandboxTrace01",
    });
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    (status, json!({ "error": error }))
}

fn usage_headers(account: &str, regain_minutes: f64, pct: u32) -> Vec<(&'static str, String)> {
    let regain = if regain_minutes.fract() == 0.0 {
        format!("{}", regain_minutes as i64)
    } else {
        format!("{regain_minutes}")
    };
    vec![
        (
            "x-business-use-case-usage",
            format!(
                r#"{{"{account}":[{{"type":"ads_insights","call_count":{pct},"total_cputime":{pct},"total_time":{pct},"estimated_time_to_regain_access":{regain}}}]}}"#
            ),
        ),
        (
            "x-fb-ads-insights-throttle",
            format!(
                r#"{{"app_id_util_pct":{pct},"acc_id_util_pct":{pct},"ads_api_access_tier":"standard_access"}}"#
            ),
        ),
        (
            "x-app-usage",
            format!(r#"{{"call_count":{pct},"total_cputime":1,"total_time":1}}"#),
        ),
    ]
}

fn respond(status: StatusCode, body: Value, headers: Vec<(&'static str, String)>) -> Response {
    let mut response = json_page(status, &body, &PAGE_SIZE);
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// `(since, until)` days of a `time_range` JSON value.
fn time_range(text: &str) -> Option<(i64, i64)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let day = |k: &str| -> Option<i64> {
        let s = v.get(k)?.as_str()?;
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        use chrono::Datelike;
        Some(days_from_civil(i64::from(d.year()), d.month(), d.day()))
    };
    Some((day("since")?, day("until")?))
}

/// `GET /meta/{version}/{act_id}/insights`.
pub(crate) async fn insights(
    State(data): State<Arc<SandboxData>>,
    Path((version, account)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query_pairs(raw.as_deref().unwrap_or(""));
    let param = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let account_digits = account.strip_prefix("act_").unwrap_or("");
    let ok_usage = usage_headers(account_digits, 0.0, 12);

    let major = version
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|v| v.parse::<u32>().ok());
    if !major.is_some_and(|m| SUPPORTED_MAJOR.contains(&m)) {
        let (s, b) = graph_error(
            StatusCode::BAD_REQUEST,
            2635,
            None,
            "OAuthException",
            &format!(
                "(#2635) You are calling a deprecated version of the Ads API ({version}). Please update to the latest version: v{}.0.",
                SUPPORTED_MAJOR.end()
            ),
        );
        return respond(s, b, vec![]);
    }
    let token = bearer_token(&headers).or(param("access_token"));
    if token != Some(META_ACCESS_TOKEN) {
        let (s, b) = graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(463),
            "OAuthException",
            "Error validating access token: Session has expired on Thursday, 19-Nov-26 10:00:00 PST. The current time is Friday, 20-Nov-26 04:00:00 PST.",
        );
        return respond(s, b, vec![]);
    }
    let Some(acct) = data.meta_accounts.iter().find(|a| a.id == account_digits) else {
        let (s, b) = graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            "GraphMethodException",
            &format!(
                "Unsupported get request. Object with ID '{account}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        );
        return respond(s, b, vec![]);
    };
    if let Some(regain) = data.control.take_meta_throttle() {
        let (s, b) = graph_error(
            StatusCode::BAD_REQUEST,
            80000,
            Some(2_446_079),
            "OAuthException",
            "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
        );
        return respond(s, b, usage_headers(account_digits, regain, 100));
    }
    let bad_param = |m: &str| {
        let (s, b) = graph_error(StatusCode::BAD_REQUEST, 100, None, "OAuthException", m);
        respond(s, b, ok_usage.clone())
    };
    if param("level") != Some("campaign") {
        return bad_param("(#100) The sandbox serves level=campaign only");
    }
    if param("time_increment") != Some("1") {
        return bad_param("(#100) The sandbox serves time_increment=1 only");
    }
    let Some((since, until)) = param("time_range").and_then(time_range) else {
        return bad_param(
            "(#100) time_range must be {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"}",
        );
    };
    if until < since {
        return bad_param("(#100) time_range: since must not be after until");
    }
    let max = data.control.max_range_days();
    if max > 0 && until - since + 1 > i64::from(max) {
        let (s, b) = graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            1,
            Some(99),
            "OAuthException",
            "Please reduce the amount of data you're asking for, then retry your request",
        );
        return respond(s, b, ok_usage);
    }
    let limit: usize = match param("limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if (1..=5000).contains(&n) => n,
        _ => return bad_param("(#100) limit must be between 1 and 5000"),
    };
    let start = match param("after") {
        None => 0,
        Some(cursor) => match base64url_decode(cursor)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(n) => n,
            None => return bad_param("(#100) Invalid cursor"),
        },
    };
    let fields: Vec<&str> = param("fields").unwrap_or("").split(',').collect();
    let rows: Vec<_> = acct
        .rows
        .iter()
        .filter(|r| r.day >= since && r.day <= until)
        .collect();
    let end = (start + limit).min(rows.len());
    let page: Vec<Value> = rows[start.min(end)..end]
        .iter()
        .map(|r| {
            let campaign = &acct.campaigns[r.campaign];
            let (cost, impressions, clicks) = data.control.restated(
                data.today_days,
                r.day,
                (r.cost_micros, r.impressions, r.clicks),
            );
            let date = format_date(r.day);
            let mut obj = serde_json::Map::new();
            for &f in &fields {
                let value = match f {
                    "account_currency" => json!(acct.currency),
                    "account_id" => json!(acct.id),
                    "campaign_id" => json!(campaign.id.to_string()),
                    "campaign_name" => json!(
                        campaign
                            .name
                            .replace("Search", "Social")
                            .replace("Display", "Feed")
                    ),
                    "spend" if r.malformed => json!(MALFORMED_COST),
                    "spend" => json!(decimal_text(cost, 2)),
                    "impressions" if impressions != 0 => json!(impressions.to_string()),
                    "clicks" if clicks != 0 => json!(clicks.to_string()),
                    _ => continue,
                };
                obj.insert(f.to_string(), value);
            }
            obj.insert("date_start".into(), json!(date));
            obj.insert("date_stop".into(), json!(date));
            Value::Object(obj)
        })
        .collect();
    let mut paging = json!({
        "cursors": {
            "before": base64url_encode(format!("offset:{start}").as_bytes()),
            "after": base64url_encode(format!("offset:{end}").as_bytes()),
        }
    });
    if end < rows.len() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        // Meta's next links carry the token, whichever way it was sent.
        next.append_pair("access_token", META_ACCESS_TOKEN);
        for (k, v) in &pairs {
            if k != "after" && k != "access_token" {
                next.append_pair(k, v);
            }
        }
        next.append_pair(
            "after",
            &base64url_encode(format!("offset:{end}").as_bytes()),
        );
        paging["next"] = json!(format!(
            "http://{host}/meta/{version}/{account}/insights?{}",
            next.finish()
        ));
    }
    respond(
        StatusCode::OK,
        json!({ "data": page, "paging": paging }),
        ok_usage,
    )
}
