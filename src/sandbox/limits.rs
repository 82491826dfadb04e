//! Rate limits in the shapes vendors really answer them, on demand (`POST
//! /_admin/rate_limits` or [`SandboxData::rate_limit`]): for a window of time every request
//! to one vendor endpoint is refused with a 429 that says little or nothing about when to
//! come back —
//! - `salesforce_token`: the OAuth token endpoint, `{"error": "rate_limit_exceeded", …}`
//!   and no `Retry-After` (Salesforce sends none);
//! - `meta`: Graph insights, `{"error": "Too Many Requests", …}` (a proxy's or CDN's 429:
//!   no Graph error object, no usage header);
//! - `surveymonkey`: responses, error 1040 with `X-Ratelimit-App-Global-Minute-Remaining:
//!   0` but no `…-Minute-Reset`.
//!
//! The window starts at the first refused request, so a client passes only by waiting it
//! out; retrying on a short backoff spends every attempt inside it.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::data::SandboxData;

/// The endpoints that can be rate limited, by name.
const VENDORS: [&str; 3] = ["salesforce_token", "meta", "surveymonkey"];

/// Which vendor endpoint a request path is, if one of [`VENDORS`].
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

#[derive(Debug, Default, Clone, Copy)]
struct Limit {
    /// How long the endpoint refuses once the first refusal is sent.
    window: Duration,
    /// When the first refusal was sent (the window's start).
    started: Option<Instant>,
    /// 429s sent.
    refused: u64,
}

/// The armed rate limits, one per vendor endpoint.
#[derive(Debug, Default)]
pub struct RateLimitShapes {
    limits: Mutex<[Limit; 3]>,
}

impl RateLimitShapes {
    fn lock(&self) -> std::sync::MutexGuard<'_, [Limit; 3]> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Should this request be refused now?
    fn refuse(&self, vendor: usize) -> bool {
        let mut limits = self.lock();
        let limit = &mut limits[vendor];
        if limit.window.is_zero() {
            return false;
        }
        let started = *limit.started.get_or_insert_with(Instant::now);
        if started.elapsed() < limit.window {
            limit.refused += 1;
            true
        } else {
            false
        }
    }
}

impl SandboxData {
    /// Refuse every request to `vendor` (`salesforce_token`, `meta`, `surveymonkey`) with
    /// its 429 shape for `window`, counted from the first refusal. `false` for an unknown
    /// vendor.
    pub fn rate_limit(&self, vendor: &str, window: Duration) -> bool {
        let Some(i) = VENDORS.iter().position(|v| *v == vendor) else {
            return false;
        };
        self.rate_limits.lock()[i] = Limit {
            window,
            started: None,
            refused: 0,
        };
        true
    }

    /// 429s sent to `vendor` since it was last armed.
    pub fn rate_limit_refusals(&self, vendor: &str) -> u64 {
        VENDORS
            .iter()
            .position(|v| *v == vendor)
            .map_or(0, |i| self.rate_limits.lock()[i].refused)
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
