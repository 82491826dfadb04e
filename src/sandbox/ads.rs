//! The admin endpoints that drive the ad-platform twins: `POST /_admin/restate` restates the
//! last day on every platform, `POST /_admin/faults` switches the faults of
//! [`SpendControl`](super::spend_control::SpendControl) on or off.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::data::SandboxData;

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
