//! Rate limits in the shapes vendors really answer them, on demand (`POST
//! /_admin/rate_limits` or `SandboxData::rate_limit`): for a window of time every request
//! to one vendor endpoint is refused with a 429 that says little or nothing about when to
//! come back —
//! - `salesforce_token`: the OAuth token endpoint, `{"error": "rate_limit_exceeded", …}`
//!   and no `Retry-After` (Salesforce sends none);
//! - `meta`: Graph insights, `{"error": "Too Many Requests", …}` (a proxy's or CDN's 429:
//!   no Graph error object, no usage header);
//! - `surveymonkey`: responses, error 1040 with `X-Ratelimit-App-Global-Minute-Remaining:
//!   0` but no `…-Minute-Reset`.
//!
//! This module keeps the armed windows (a leaf the shared world holds); `throttle.rs` is the
//! middleware that answers the 429s.
//!
//! The window starts at the first refused request, so a client passes only by waiting it
//! out; retrying on a short backoff spends every attempt inside it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The endpoints that can be rate limited, by name.
pub(crate) const VENDORS: [&str; 3] = ["salesforce_token", "meta", "surveymonkey"];

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
pub(crate) struct RateLimitShapes {
    limits: Mutex<[Limit; 3]>,
}

impl RateLimitShapes {
    fn lock(&self) -> std::sync::MutexGuard<'_, [Limit; 3]> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Should this request be refused now?
    pub(crate) fn refuse(&self, vendor: usize) -> bool {
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

    /// Refuse every request to `vendor` for `window`, counted from the first refusal;
    /// `false` for an unknown vendor.
    pub(crate) fn arm(&self, vendor: &str, window: Duration) -> bool {
        let Some(i) = VENDORS.iter().position(|v| *v == vendor) else {
            return false;
        };
        self.lock()[i] = Limit {
            window,
            started: None,
            refused: 0,
        };
        true
    }

    /// 429s sent to `vendor` since it was last armed.
    pub(crate) fn refusals(&self, vendor: &str) -> u64 {
        VENDORS
            .iter()
            .position(|v| *v == vendor)
            .map_or(0, |i| self.lock()[i].refused)
    }
}
