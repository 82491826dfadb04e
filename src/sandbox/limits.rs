//! Rate limits in the shapes vendors really answer them, on demand (`POST
//! /_admin/rate_limits` or `SandboxData::rate_limit`): for a window of time every request
//! to one vendor endpoint is refused with a 429 that says little or nothing about when to
//! come back. Which endpoints can be refused, and how, each twin declares (its
//! `Terse429` in `twin.rs`): Salesforce's token endpoint, Meta's insights and
//! SurveyMonkey's responses today.
//!
//! This module keeps the armed windows by name (a leaf the shared world holds);
//! `throttle.rs` is the middleware that answers the 429s.
//!
//! The window starts at the first refused request, so a client passes only by waiting it
//! out; retrying on a short backoff spends every attempt inside it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, Copy)]
struct Limit {
    /// How long the endpoint refuses once the first refusal is sent.
    window: Duration,
    /// When the first refusal was sent (the window's start).
    started: Option<Instant>,
    /// 429s sent.
    refused: u64,
}

/// The armed rate limits, by endpoint name.
#[derive(Debug, Default)]
pub(crate) struct RateLimitShapes {
    limits: Mutex<HashMap<&'static str, Limit>>,
}

impl RateLimitShapes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Limit>> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Should this request to endpoint `name` be refused now?
    pub(crate) fn refuse(&self, name: &str) -> bool {
        let mut limits = self.lock();
        let Some(limit) = limits.get_mut(name) else {
            return false;
        };
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

    /// Refuse every request to endpoint `name` for `window`, counted from the first
    /// refusal (the caller checked that a twin declares `name`).
    pub(crate) fn arm(&self, name: &'static str, window: Duration) {
        self.lock().insert(
            name,
            Limit {
                window,
                started: None,
                refused: 0,
            },
        );
    }

    /// 429s sent to endpoint `name` since it was last armed.
    pub(crate) fn refusals(&self, name: &str) -> u64 {
        self.lock().get(name).map_or(0, |l| l.refused)
    }
}
