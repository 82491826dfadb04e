//! The rate-limit middleware and its admin endpoint: a request to an endpoint whose window
//! is armed (see `limits.rs`) gets that twin's terse 429 and never reaches the handler.
//! Which endpoints there are comes from the twins (their [`Terse429`]), handed in by the
//! router.

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
use super::twin::{Terse429, Twin};

/// What the middleware and the admin endpoint need: the data (its armed windows) and the
/// twins (their terse 429s).
pub(crate) type Throttled = (Arc<SandboxData>, &'static [Twin]);

fn terse_429s(twins: &'static [Twin]) -> impl Iterator<Item = &'static Terse429> {
    twins.iter().filter_map(|t| t.terse_429.as_ref())
}

/// The middleware: a refused request gets its twin's 429 and never reaches the handler.
pub(crate) async fn enforce(
    State((data, twins)): State<Throttled>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let Some(limit) = terse_429s(twins).find(|l| (l.endpoint)(path)) else {
        return next.run(request).await;
    };
    if data.rate_limits.refuse(limit.name) {
        (limit.answer)()
    } else {
        next.run(request).await
    }
}

/// Arm the terse 429 named `name` for `window`; `false` when no twin declares one by that
/// name.
pub(crate) fn arm_named(
    data: &SandboxData,
    twins: &'static [Twin],
    name: &str,
    window: Duration,
) -> bool {
    match terse_429s(twins).find(|l| l.name == name) {
        Some(limit) => {
            data.rate_limits.arm(limit.name, window);
            true
        }
        None => false,
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
    State((data, twins)): State<Throttled>,
    Json(request): Json<RateLimitRequest>,
) -> Response {
    let window = Duration::from_millis(request.window_ms);
    if arm_named(&data, twins, &request.vendor, window) {
        Json(json!({"ok": true})).into_response()
    } else {
        let names: Vec<&str> = terse_429s(twins).map(|l| l.name).collect();
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("vendor must be one of {names:?}")})),
        )
            .into_response()
    }
}
