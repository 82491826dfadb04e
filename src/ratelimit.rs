//! A per-source client-side rate limiter, configured from the vendor account's published
//! limits: a burst window (at most N requests in any rolling window, e.g. 100 per 10 s) and a
//! daily request budget for the run. Sources call [`RateLimiter::acquire`] before each
//! request; it waits until the window has room, or says the budget is spent.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// `[sources.rate_limit]`: the account's limits, as the vendor publishes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests allowed in any rolling window of `window_ms`.
    #[serde(default = "default_requests_per_window")]
    pub requests_per_window: u32,
    /// Length of the burst window in milliseconds.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Requests this source may send in one run (its share of the daily limit); `0` = no
    /// budget of our own (the vendor's daily 429 still stops the source).
    #[serde(default = "default_daily_budget")]
    pub daily_budget: u64,
}

fn default_requests_per_window() -> u32 {
    100
}
fn default_window_ms() -> u64 {
    10_000
}
fn default_daily_budget() -> u64 {
    250_000
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            requests_per_window: default_requests_per_window(),
            window_ms: default_window_ms(),
            daily_budget: default_daily_budget(),
        }
    }
}

impl RateLimitSettings {
    /// `(key, problem)` pairs for values that cannot work.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.requests_per_window == 0 {
            problems.push((
                "rate_limit",
                "requests_per_window must be at least 1".to_string(),
            ));
        }
        if self.window_ms == 0 || self.window_ms > 86_400_000 {
            problems.push((
                "rate_limit",
                "window_ms must be between 1 and 86400000".to_string(),
            ));
        }
        problems
    }

    /// The burst window.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

/// The run's budget of requests is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent {
    /// The budget that was configured.
    pub budget: u64,
}

/// One source's limiter for one run.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// Send times of the requests inside the current window, oldest first.
    sent: VecDeque<Instant>,
    /// Requests granted this run.
    granted: u64,
}

impl RateLimiter {
    /// A limiter with `settings`.
    pub fn new(settings: &RateLimitSettings) -> Self {
        RateLimiter {
            settings: settings.clone(),
            state: Mutex::new(LimiterState::default()),
        }
    }

    /// Requests granted so far.
    pub async fn granted(&self) -> u64 {
        self.state.lock().await.granted
    }

    /// Wait until one more request fits in the burst window, then count it; or say the
    /// run's budget is spent (without waiting).
    pub async fn acquire(&self) -> Result<(), BudgetSpent> {
        let window = self.settings.window();
        let max = self.settings.requests_per_window.max(1) as usize;
        let mut state = self.state.lock().await;
        if self.settings.daily_budget > 0 && state.granted >= self.settings.daily_budget {
            return Err(BudgetSpent {
                budget: self.settings.daily_budget,
            });
        }
        loop {
            let now = Instant::now();
            while state
                .sent
                .front()
                .is_some_and(|&t| now.duration_since(t) >= window)
            {
                state.sent.pop_front();
            }
            if state.sent.len() < max {
                break;
            }
            let oldest = state.sent.front().copied().unwrap_or(now);
            // The vendor counts a request when it arrives, a little after we send it: wait
            // a margin (5% of the window, at least 20 ms) past the window's end. Holding
            // the lock while waiting keeps concurrent callers in order.
            let margin = (window / 20).max(Duration::from_millis(20));
            tokio::time::sleep_until(oldest + window + margin).await;
        }
        state.sent.push_back(Instant::now());
        state.granted += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_bursts_by_the_window_and_stops_at_the_budget() {
        let limiter = RateLimiter::new(&RateLimitSettings {
            requests_per_window: 3,
            window_ms: 200,
            daily_budget: 7,
        });
        let start = Instant::now();
        for _ in 0..7 {
            limiter.acquire().await.unwrap();
        }
        // 3 at t=0, 3 at t=200ms, 1 at t=400ms.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1_500),
            "{elapsed:?}"
        );
        assert_eq!(limiter.acquire().await, Err(BudgetSpent { budget: 7 }));
        assert_eq!(limiter.granted().await, 7);
    }

    #[test]
    fn rejects_impossible_settings() {
        let bad = RateLimitSettings {
            requests_per_window: 0,
            window_ms: 0,
            daily_budget: 0,
        };
        assert_eq!(bad.check().len(), 2);
        assert!(RateLimitSettings::default().check().is_empty());
    }
}
