//! The Google Ads API imitation (REST): `POST /google_ads/{version}/customers/{id}/
//! googleAds:search` and `…:searchStream` — OAuth bearer + `developer-token` auth, a GAQL
//! subset over campaign × day metrics, `pageToken` paging in 10,000-row pages, and
//! Google-shaped error bodies (`GoogleAdsFailure` details).
//!
//! Sandbox-only: `?sandbox_page_size=N` (1–10,000) on the URL shrinks pages and stream
//! batches so paging can be exercised at small scale.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value as JsonValue, json};

use super::answer::{LastSize, json_page};
use super::data::SandboxData;
use super::encoding::{base64url_decode, base64url_encode, format_date};
use super::gaql::{self, Field, Query, Value};
use super::request::{bearer_token, query_pairs};
use super::rng::hash_bytes;
use super::spend::{Customer, MALFORMED_COST};
use super::twin::Twin;

/// OAuth access token (`Authorization: Bearer`) the Google Ads imitation accepts.
pub const GOOGLE_ADS_ACCESS_TOKEN: &str = "sandbox-google-ads-token";
/// `developer-token` header value the Google Ads imitation accepts.
pub const GOOGLE_ADS_DEVELOPER_TOKEN: &str = "sandbox-developer-token";
/// The manager account of the Google Ads customers; a `login-customer-id` naming any other
/// account is denied.
pub const GOOGLE_ADS_MANAGER_ID: &str = "9990001112";
/// OAuth client id the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_ID: &str = "sandbox-client-id.apps.googleusercontent.com";
/// OAuth client secret the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_SECRET: &str = "sandbox-client-secret";
/// Refresh token the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// The Google Ads twin and Google's OAuth token endpoint.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/google_ads", "/google_oauth"],
    routes,
    env: &[
        ("GOOGLE_ADS_ACCESS_TOKEN", GOOGLE_ADS_ACCESS_TOKEN),
        ("GOOGLE_ADS_DEVELOPER_TOKEN", GOOGLE_ADS_DEVELOPER_TOKEN),
        ("GOOGLE_ADS_REFRESH_TOKEN", GOOGLE_ADS_REFRESH_TOKEN),
        ("GOOGLE_ADS_CLIENT_ID", GOOGLE_ADS_CLIENT_ID),
        ("GOOGLE_ADS_CLIENT_SECRET", GOOGLE_ADS_CLIENT_SECRET),
    ],
    terse_429: None,
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route(
            "/google_ads/{version}/customers/{customer_id}/googleAds:search",
            post(search),
        )
        .route(
            "/google_ads/{version}/customers/{customer_id}/googleAds:searchStream",
            post(search_stream),
        )
        .route("/google_oauth/token", post(token))
}

/// Rows per Google Ads `search` page (as the real API); `?sandbox_page_size=N` overrides.
pub const GOOGLE_ADS_PAGE_SIZE: usize = 10_000;

const TOKEN_KEY: u64 = 0x4741_4453_5041_4745;
static SEARCH_PAGE_SIZE: LastSize = LastSize::new();
static STREAM_SIZE: LastSize = LastSize::new();

/// An error in Google's shape; `failure` adds a `GoogleAdsFailure` detail
/// `(errorCode kind, enum name, message)`.
#[derive(Debug)]
struct GoogleError {
    http: StatusCode,
    status: &'static str,
    message: String,
    failure: Option<(&'static str, &'static str, String)>,
}

impl GoogleError {
    fn plain(http: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            http,
            status,
            message: message.into(),
            failure: None,
        }
    }

    fn invalid(kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            status: "INVALID_ARGUMENT",
            message: "Request contains an invalid argument.".to_owned(),
            failure: Some((kind, code, message.into())),
        }
    }

    fn body(&self, version: &str, request_id: &str) -> JsonValue {
        let mut error = json!({
            "code": self.http.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if let (Some((kind, code, message)), Some(obj)) = (&self.failure, error.as_object_mut()) {
            let mut error_code = Map::new();
            error_code.insert((*kind).to_owned(), JsonValue::from(*code));
            obj.insert(
                "details".to_owned(),
                json!([{
                    "@type": format!(
                        "type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"
                    ),
                    "errors": [{ "errorCode": error_code, "message": message }],
                    "requestId": request_id,
                }]),
            );
        }
        json!({ "error": error })
    }

    fn respond(&self, version: &str, request_id: &str, stream: bool) -> Response {
        let body = self.body(version, request_id);
        // searchStream wraps errors in an array, as it wraps its batches.
        let body = if stream { json!([body]) } else { body };
        (self.http, Json(body)).into_response()
    }
}

/// A result row: one campaign on one day, or summed over the range when the query does
/// not select `segments.date`.
#[derive(Debug, Clone, Copy)]
struct OutRow {
    campaign: usize,
    day: Option<i64>,
    cost_micros: i64,
    impressions: i64,
    clicks: i64,
    malformed: bool,
}

impl OutRow {
    fn value(&self, customer: &Customer, field: Field) -> Value {
        let campaign = &customer.campaigns[self.campaign];
        match field {
            Field::CustomerResourceName => Value::Text(format!("customers/{}", customer.id)),
            Field::CustomerId => Value::Int(customer.id.parse().unwrap_or(0)),
            Field::CustomerCurrencyCode => Value::Text(customer.currency.to_owned()),
            Field::CustomerDescriptiveName => Value::Text(customer.descriptive_name.clone()),
            Field::CustomerTimeZone => Value::Text(customer.time_zone.to_owned()),
            Field::CampaignResourceName => Value::Text(format!(
                "customers/{}/campaigns/{}",
                customer.id, campaign.id
            )),
            Field::CampaignId => Value::Int(campaign.id as i64),
            Field::CampaignName => Value::Text(campaign.name.clone()),
            Field::CampaignChannelType => Value::Text(campaign.channel.to_owned()),
            Field::CampaignStatus => Value::Text(campaign.status.to_owned()),
            Field::SegmentsDate => Value::Int(self.day.unwrap_or(i64::MIN)),
            Field::MetricsCostMicros => Value::Int(self.cost_micros),
            Field::MetricsImpressions => Value::Int(self.impressions),
            Field::MetricsClicks => Value::Int(self.clicks),
        }
    }

    /// The row as Google serializes it: nested per resource, int64 as strings, enums as
    /// names, the resource names of `customer` (when any customer field is selected) and
    /// `campaign` always present, zero-valued metrics omitted (proto3 JSON).
    fn render(&self, customer: &Customer, select: &[Field]) -> JsonValue {
        let mut row = Map::new();
        let mut customer_obj = Map::new();
        let mut campaign_obj = Map::new();
        let mut segments = Map::new();
        let mut metrics = Map::new();
        for &field in select {
            let (resource, key) = field.json_path().split_once('.').unwrap_or(("", ""));
            let target = match resource {
                "customer" => &mut customer_obj,
                "campaign" => &mut campaign_obj,
                "segments" => &mut segments,
                _ => &mut metrics,
            };
            let text = match (field, self.value(customer, field)) {
                (Field::MetricsCostMicros, _) if self.malformed => MALFORMED_COST.to_owned(),
                (f, Value::Int(0)) if f.is_metric() => continue,
                (Field::SegmentsDate, Value::Int(day)) => format_date(day),
                (_, Value::Int(n)) => n.to_string(),
                (_, Value::Text(t)) => t,
            };
            target.insert(key.to_owned(), JsonValue::from(text));
        }
        if !customer_obj.is_empty() {
            customer_obj.insert(
                "resourceName".to_owned(),
                JsonValue::from(format!("customers/{}", customer.id)),
            );
            row.insert("customer".to_owned(), JsonValue::Object(customer_obj));
        }
        campaign_obj.insert(
            "resourceName".to_owned(),
            JsonValue::from(format!(
                "customers/{}/campaigns/{}",
                customer.id, customer.campaigns[self.campaign].id
            )),
        );
        row.insert("campaign".to_owned(), JsonValue::Object(campaign_obj));
        if !segments.is_empty() {
            row.insert("segments".to_owned(), JsonValue::Object(segments));
        }
        if select.iter().any(|f| f.is_metric()) {
            row.insert("metrics".to_owned(), JsonValue::Object(metrics));
        }
        JsonValue::Object(row)
    }
}

/// A validated request, its rows computed.
struct Prepared<'a> {
    customer: &'a Customer,
    customer_index: usize,
    query: Query,
    rows: Vec<OutRow>,
    page_size: usize,
    body: Map<String, JsonValue>,
    query_hash: u64,
}

/// `POST /google_ads/{version}/customers/{customer_id}/googleAds:search`.
pub(crate) async fn search(
    State(data): State<Arc<SandboxData>>,
    Path((version, customer_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let request_id = request_id(&data, &customer_id, &body);
    if let Some(fault) = injected_fault(&data, &version, &request_id, false) {
        return fault;
    }
    let prepared = prepare(
        &data,
        &version,
        &customer_id,
        &headers,
        raw.as_deref(),
        &body,
        false,
    );
    match prepared.and_then(|p| search_page(&data, p)) {
        Ok(page) => json_page(StatusCode::OK, &page, &SEARCH_PAGE_SIZE),
        Err(e) => e.respond(&version, &request_id, false),
    }
}

/// `POST /google_ads/{version}/customers/{customer_id}/googleAds:searchStream`.
pub(crate) async fn search_stream(
    State(data): State<Arc<SandboxData>>,
    Path((version, customer_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let request_id = request_id(&data, &customer_id, &body);
    if let Some(fault) = injected_fault(&data, &version, &request_id, true) {
        return fault;
    }
    match prepare(
        &data,
        &version,
        &customer_id,
        &headers,
        raw.as_deref(),
        &body,
        true,
    ) {
        Ok(p) => json_page(
            StatusCode::OK,
            &stream_batches(&p, &request_id),
            &STREAM_SIZE,
        ),
        Err(e) => e.respond(&version, &request_id, true),
    }
}

/// Versions served; an older well-formed one is answered as Google answers a sunset version.
const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 19..=22;

/// A sunset API version, or a quota error switched on through the sandbox control.
fn injected_fault(
    data: &SandboxData,
    version: &str,
    request_id: &str,
    stream: bool,
) -> Option<Response> {
    let wrap = |body: JsonValue| if stream { json!([body]) } else { body };
    if let Some(n) = version
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
        && !SUPPORTED_VERSIONS.contains(&n)
    {
        let body = json!({ "error": {
            "code": 501,
            "message": format!("GRPC target method can't be resolved. (Google Ads API {version} has been sunset; the oldest available version is v{}.)", SUPPORTED_VERSIONS.start()),
            "status": "UNIMPLEMENTED",
        }});
        return Some((StatusCode::NOT_IMPLEMENTED, Json(wrap(body))).into_response());
    }
    let delay = data.control.take_google_quota_error()?;
    let body = json!({ "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
            "errors": [{
                "errorCode": { "quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED" },
                "message": "Too many requests. Retry in the time specified by retryDelay.",
                "details": { "quotaErrorDetails": {
                    "rateScope": "DEVELOPER", "rateName": "Number of operations for explorer access", "retryDelay": delay,
                }},
            }],
            "requestId": request_id,
        }],
    }});
    Some((StatusCode::TOO_MANY_REQUESTS, Json(wrap(body))).into_response())
}

/// `POST /google_oauth/token`: the refresh-token grant, answered as Google's endpoint does.
pub(crate) async fn token(body: Bytes) -> Response {
    let form = query_pairs(std::str::from_utf8(&body).unwrap_or(""));
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let bad = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if get("grant_type") != Some("refresh_token") {
        return bad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    if get("client_id") != Some(GOOGLE_ADS_CLIENT_ID)
        || get("client_secret") != Some(GOOGLE_ADS_CLIENT_SECRET)
    {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    if get("refresh_token") != Some(GOOGLE_ADS_REFRESH_TOKEN) {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
    }
    Json(json!({
        "access_token": GOOGLE_ADS_ACCESS_TOKEN,
        "expires_in": 3599,
        "scope": "https://www.googleapis.com/auth/adwords",
        "token_type": "Bearer",
    }))
    .into_response()
}

fn request_id(data: &SandboxData, customer_id: &str, body: &[u8]) -> String {
    let a = hash_bytes(data.options().seed, body);
    let b = hash_bytes(a, customer_id.as_bytes());
    let mut bytes = a.to_le_bytes().to_vec();
    bytes.extend_from_slice(&b.to_le_bytes());
    base64url_encode(&bytes).trim_end_matches('=').to_owned()
}

fn prepare<'a>(
    data: &'a SandboxData,
    version: &str,
    customer_id: &str,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &[u8],
    stream: bool,
) -> Result<Prepared<'a>, GoogleError> {
    let version_ok = version.len() > 1
        && version.starts_with('v')
        && version[1..].chars().all(|c| c.is_ascii_digit());
    if !version_ok {
        return Err(GoogleError::plain(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("API version '{version}' does not exist (use e.g. v20)."),
        ));
    }
    match bearer_token(headers) {
        Some(GOOGLE_ADS_ACCESS_TOKEN) => {}
        Some(_) => {
            return Err(GoogleError::plain(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
            ));
        }
        None => {
            return Err(GoogleError::plain(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
            ));
        }
    }
    let developer_token = headers.get("developer-token").and_then(|v| v.to_str().ok());
    if developer_token != Some(GOOGLE_ADS_DEVELOPER_TOKEN) {
        return Err(GoogleError {
            http: StatusCode::UNAUTHORIZED,
            status: "UNAUTHENTICATED",
            message: "Request is missing required authentication credential.".to_owned(),
            failure: Some((
                "authenticationError",
                "DEVELOPER_TOKEN_INVALID",
                "The developer token is not valid.".to_owned(),
            )),
        });
    }
    if customer_id.len() != 10 || !customer_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(GoogleError::invalid(
            "requestError",
            "INVALID_CUSTOMER_ID",
            format!("Invalid customer ID '{customer_id}': 10 digits, no dashes."),
        ));
    }
    // Through a manager: `login-customer-id` must name the manager of the customers served.
    let login = headers
        .get("login-customer-id")
        .and_then(|v| v.to_str().ok());
    let wrong_manager = login.is_some_and(|id| id != GOOGLE_ADS_MANAGER_ID);
    let found = data.customers.iter().position(|c| c.id == customer_id);
    let Some(customer_index) = found.filter(|_| !wrong_manager) else {
        return Err(GoogleError {
            http: StatusCode::FORBIDDEN,
            status: "PERMISSION_DENIED",
            message: "The caller does not have permission".to_owned(),
            failure: Some((
                "authorizationError",
                "USER_PERMISSION_DENIED",
                "User doesn't have permission to access customer. Note: If you're accessing a \
                 client customer, the manager's customer id must be set in the \
                 'login-customer-id' header."
                    .to_owned(),
            )),
        });
    };
    let customer = &data.customers[customer_index];

    let mut page_size = GOOGLE_ADS_PAGE_SIZE;
    for (key, value) in query_pairs(raw_query.unwrap_or("")) {
        if key == "sandbox_page_size" {
            match value.parse::<usize>() {
                Ok(n) if (1..=GOOGLE_ADS_PAGE_SIZE).contains(&n) => page_size = n,
                _ => {
                    return Err(GoogleError::invalid(
                        "requestError",
                        "INVALID_INPUT",
                        format!("sandbox_page_size must be 1..={GOOGLE_ADS_PAGE_SIZE}."),
                    ));
                }
            }
        }
    }

    let body: Map<String, JsonValue> = match serde_json::from_slice(body) {
        Ok(JsonValue::Object(map)) => map,
        _ => {
            return Err(GoogleError::plain(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received. Expected a JSON object like {\"query\": \"SELECT …\"}.",
            ));
        }
    };
    let allowed: &[&str] = if stream {
        &["query", "summaryRowSetting"]
    } else {
        &[
            "query",
            "pageToken",
            "returnTotalResultsCount",
            "validateOnly",
            "summaryRowSetting",
            "pageSize",
        ]
    };
    if let Some(unknown) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(GoogleError::plain(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            ),
        ));
    }
    if body.contains_key("pageSize") {
        return Err(GoogleError::invalid(
            "requestError",
            "PAGE_SIZE_NOT_SUPPORTED",
            "Setting the page size is not supported. Search Responses will have fixed page size \
             of '10000' rows.",
        ));
    }
    let Some(text) = body
        .get("query")
        .and_then(JsonValue::as_str)
        .filter(|q| !q.trim().is_empty())
    else {
        return Err(GoogleError::invalid(
            "requestError",
            "REQUIRED_FIELD_MISSING",
            "The 'query' field is required.",
        ));
    };
    let query = gaql::parse(text, data.today_days)
        .map_err(|e| GoogleError::invalid("queryError", e.code, e.message))?;
    let query_hash = hash_bytes(data.options().seed ^ customer_index as u64, text.as_bytes());
    let restate = |day: i64, m: (i64, i64, i64)| data.control.restated(data.today_days, day, m);
    let rows = select_rows(customer, &query, &restate);
    Ok(Prepared {
        customer,
        customer_index,
        query,
        rows,
        page_size,
        body,
        query_hash,
    })
}

/// Filters, aggregates (without `segments.date`), drops all-zero rows, orders and limits.
fn select_rows(
    customer: &Customer,
    query: &Query,
    restate: &dyn Fn(i64, (i64, i64, i64)) -> (i64, i64, i64),
) -> Vec<OutRow> {
    let (metric_conditions, row_conditions): (Vec<_>, Vec<_>) =
        query.conditions.iter().partition(|c| c.field().is_metric());
    let raw = customer
        .rows
        .iter()
        .map(|r| {
            let (cost_micros, impressions, clicks) =
                restate(r.day, (r.cost_micros, r.impressions, r.clicks));
            OutRow {
                campaign: r.campaign,
                day: Some(r.day),
                cost_micros,
                impressions,
                clicks,
                malformed: r.malformed,
            }
        })
        .filter(|row| {
            row_conditions
                .iter()
                .all(|c| c.matches(&row.value(customer, c.field())))
        });
    let mut rows: Vec<OutRow> = if query.select.contains(&Field::SegmentsDate) {
        raw.collect()
    } else {
        let mut sums: BTreeMap<usize, OutRow> = BTreeMap::new();
        for row in raw {
            let sum = sums.entry(row.campaign).or_insert(OutRow {
                day: None,
                cost_micros: 0,
                impressions: 0,
                clicks: 0,
                malformed: false,
                ..row
            });
            sum.cost_micros += row.cost_micros;
            sum.impressions += row.impressions;
            sum.clicks += row.clicks;
            sum.malformed |= row.malformed;
        }
        sums.into_values().collect()
    };
    let selected_metrics: Vec<Field> = query
        .select
        .iter()
        .copied()
        .filter(|f| f.is_metric())
        .collect();
    rows.retain(|row| {
        metric_conditions
            .iter()
            .all(|c| c.matches(&row.value(customer, c.field())))
            && (selected_metrics.is_empty()
                || selected_metrics
                    .iter()
                    .any(|&f| row.value(customer, f) != Value::Int(0)))
    });
    if !query.order_by.is_empty() {
        rows.sort_by(|a, b| {
            for &(field, descending) in &query.order_by {
                let ord = a
                    .value(customer, field)
                    .partial_cmp(&b.value(customer, field))
                    .unwrap_or(Ordering::Equal);
                let ord = if descending { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    if let Some(limit) = query.limit {
        rows.truncate(limit);
    }
    rows
}

fn field_mask(query: &Query) -> String {
    query
        .select
        .iter()
        .map(|f| f.json_path())
        .collect::<Vec<_>>()
        .join(",")
}

fn resource_consumption(p: &Prepared<'_>) -> String {
    (p.customer.rows.len() * 12 + 40).to_string()
}

fn encode_page_token(p: &Prepared<'_>, seed: u64, pos: usize) -> String {
    let check = hash_bytes(seed ^ TOKEN_KEY ^ p.query_hash, &(pos as u64).to_le_bytes());
    let payload = format!("{:02}{pos:010}{check:016x}", p.customer_index);
    base64url_encode(payload.as_bytes())
}

fn decode_page_token(p: &Prepared<'_>, seed: u64, token: &str) -> Option<usize> {
    let bytes = base64url_decode(token)?;
    let payload = std::str::from_utf8(&bytes).ok()?;
    if payload.len() != 28 || !payload.is_ascii() {
        return None;
    }
    let customer: usize = payload[..2].parse().ok()?;
    let pos: usize = payload[2..12].parse().ok()?;
    let check = u64::from_str_radix(&payload[12..], 16).ok()?;
    let expected = hash_bytes(seed ^ TOKEN_KEY ^ p.query_hash, &(pos as u64).to_le_bytes());
    (customer == p.customer_index && check == expected && pos < p.rows.len()).then_some(pos)
}

fn search_page(data: &SandboxData, p: Prepared<'_>) -> Result<JsonValue, GoogleError> {
    let seed = data.options().seed;
    let start = match p.body.get("pageToken") {
        None => 0,
        Some(JsonValue::String(token)) if token.is_empty() => 0,
        Some(JsonValue::String(token)) => decode_page_token(&p, seed, token).ok_or_else(|| {
            GoogleError::invalid(
                "requestError",
                "INVALID_PAGE_TOKEN",
                "Page token is invalid: re-send the identical query with the nextPageToken \
                 of the previous page.",
            )
        })?,
        Some(_) => {
            return Err(GoogleError::plain(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid value at 'page_token' (TYPE_STRING).",
            ));
        }
    };
    let mut page = Map::new();
    let validate_only = p.body.get("validateOnly").and_then(JsonValue::as_bool) == Some(true);
    if !validate_only {
        let end = (start + p.page_size).min(p.rows.len());
        let results: Vec<JsonValue> = p.rows[start..end]
            .iter()
            .map(|row| row.render(p.customer, &p.query.select))
            .collect();
        if !results.is_empty() {
            page.insert("results".to_owned(), JsonValue::Array(results));
        }
        if end < p.rows.len() {
            page.insert(
                "nextPageToken".to_owned(),
                JsonValue::from(encode_page_token(&p, seed, end)),
            );
        }
        if p.body
            .get("returnTotalResultsCount")
            .and_then(JsonValue::as_bool)
            == Some(true)
        {
            page.insert(
                "totalResultsCount".to_owned(),
                JsonValue::from(p.rows.len().to_string()),
            );
        }
    }
    page.insert(
        "fieldMask".to_owned(),
        JsonValue::from(field_mask(&p.query)),
    );
    page.insert(
        "queryResourceConsumption".to_owned(),
        JsonValue::from(resource_consumption(&p)),
    );
    Ok(JsonValue::Object(page))
}

fn stream_batches(p: &Prepared<'_>, request_id: &str) -> JsonValue {
    let mask = field_mask(&p.query);
    let chunks: Vec<&[OutRow]> = if p.rows.is_empty() {
        vec![&[]]
    } else {
        p.rows.chunks(p.page_size).collect()
    };
    let last = chunks.len() - 1;
    let batches = chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut batch = Map::new();
            if !chunk.is_empty() {
                batch.insert(
                    "results".to_owned(),
                    JsonValue::Array(
                        chunk
                            .iter()
                            .map(|row| row.render(p.customer, &p.query.select))
                            .collect(),
                    ),
                );
            }
            batch.insert("fieldMask".to_owned(), JsonValue::from(mask.clone()));
            batch.insert("requestId".to_owned(), JsonValue::from(request_id));
            if i == last {
                batch.insert(
                    "queryResourceConsumption".to_owned(),
                    JsonValue::from(resource_consumption(p)),
                );
            }
            JsonValue::Object(batch)
        })
        .collect();
    JsonValue::Array(batches)
}
