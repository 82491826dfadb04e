//! The rate-limit middleware and its admin endpoint: a request to an endpoint whose window
//! is armed (see `limits.rs`) gets that vendor's terse 429 and never reaches the handler.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::data::SandboxData;
use super::limits::VENDORS;

/// Which vendor endpoint a request path is, if one of [`VENDORS`] (its index).
fn vendor_of(path: &str) -> Option<usize> {
    if path == "/salesforce/services/oauth2/token" {
        Some(0)
    } else if path.starts_with("/meta/") && path.ends_with("/insights") {
        Some(1)
    } else if path.starts_with("/surveymonkey/") && path.ends_with("/responses/bulk") {
        Some(2)
    } else {
        None
    }
}

/// The middleware: a refused request gets its vendor's 429 and never reaches the handler.
pub(crate) async fn enforce(
    State(data): State<Arc<SandboxData>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(vendor) = vendor_of(request.uri().path()) else {
        return next.run(request).await;
    };
    if !data.rate_limits.refuse(vendor) {
        return next.run(request).await;
    }
    match vendor {
        0 => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "error": "rate_limit_exceeded",
                "error_description": "too many token requests from this client; try again later",
            })),
        )
            .into_response(),
        1 => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": "Too Many Requests", "message": "rate limited at the edge"})),
        )
            .into_response(),
        _ => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ratelimit-app-global-minute-remaining", "0")],
            Json(json!({"error": {
                "id": "1040",
                "name": "Rate limit reached",
                "docs": "https://developer.surveymonkey.com/api/v3/#error-codes",
                "message": "Too many requests were made, try again later.",
                "http_status_code": 429,
            }})),
        )
            .into_response(),
    }
}

/// Body of `POST /_admin/rate_limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitRequest {
    vendor: String,
    window_ms: u64,
}

/// `POST /_admin/rate_limits` `{"vendor": "meta", "window_ms": 1500}`.
pub(crate) async fn arm(
    State(data): State<Arc<SandboxData>>,
    Json(request): Json<RateLimitRequest>,
) -> Response {
    if data.rate_limit(&request.vendor, Duration::from_millis(request.window_ms)) {
        Json(json!({"ok": true})).into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("vendor must be one of {VENDORS:?}")})),
        )
            .into_response()
    }
}
