//! A per-source client-side rate limiter, configured from the vendor account's published
//! limits: a burst window (at most N requests in any rolling window, e.g. 100 per 10 s) and a
//! daily request budget for the run. Sources call [`RateLimiter::acquire`] before each
//! request; it waits until the window has room, or says the budget is spent.
//!
//! A request counts in the window from when it is granted until a window after its answer
//! came back (the [`Grant`] is dropped). The vendor counts it when it arrives, which is
//! somewhere between those two instants, so a request sent once that window has passed
//! can never be counted together with it — whatever the latency — and no fixed safety
//! margin is spent on every window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::http::{HttpStats, RateWait};

/// `[sources.rate_limit]`: the account's limits, as the vendor publishes them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// Held by the caller waiting for room, so callers are granted in the order they came.
    queue: tokio::sync::Mutex<()>,
    /// Signalled when an answer comes back.
    answered: Notify,
    /// Where waits are reported, for the progress display.
    stats: Option<Arc<HttpStats>>,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// The requests that still count in the window, oldest first: their grant number and
    /// when their answer came back (`None` while in flight).
    sent: VecDeque<(u64, Option<Instant>)>,
    /// Requests granted this run.
    granted: u64,
}

/// Room for one request in the window; drop it when the request's answer has come back
/// (or the request failed).
#[derive(Debug)]
#[must_use = "the request counts as in flight until the grant is dropped"]
pub struct Grant<'a> {
    limiter: &'a RateLimiter,
    number: u64,
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut state = self.limiter.lock();
        if let Some(slot) = state.sent.iter_mut().find(|(n, _)| *n == self.number) {
            slot.1 = Some(now);
        }
        drop(state);
        self.limiter.answered.notify_one();
    }
}

impl RateLimiter {
    /// A limiter with `settings`.
    pub fn new(settings: &RateLimitSettings) -> Self {
        RateLimiter {
            settings: settings.clone(),
            state: Mutex::new(LimiterState::default()),
            queue: tokio::sync::Mutex::new(()),
            answered: Notify::new(),
            stats: None,
        }
    }

    /// Report every wait for room to `stats` (the source's HTTP counters), so the source's
    /// progress line says it is waiting on its rate limit rather than looking stuck.
    pub fn reporting_to(mut self, stats: Arc<HttpStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        // The state is a queue of instants: still consistent if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests granted so far.
    pub fn granted(&self) -> u64 {
        self.lock().granted
    }

    /// Wait until one more request fits in the burst window, then count it; or say the
    /// run's budget is spent (without waiting).
    pub async fn acquire(&self) -> Result<Grant<'_>, BudgetSpent> {
        let window = self.settings.window();
        let max = self.settings.requests_per_window.max(1) as usize;
        let _turn = self.queue.lock().await;
        loop {
            let wait_until = {
                let mut state = self.lock();
                if self.settings.daily_budget > 0 && state.granted >= self.settings.daily_budget {
                    return Err(BudgetSpent {
                        budget: self.settings.daily_budget,
                    });
                }
                let now = Instant::now();
                while state
                    .sent
                    .front()
                    .is_some_and(|&(_, answered)| answered.is_some_and(|t| now >= t + window))
                {
                    state.sent.pop_front();
                }
                if state.sent.len() < max {
                    state.granted += 1;
                    let number = state.granted;
                    state.sent.push_back((number, None));
                    return Ok(Grant {
                        limiter: self,
                        number,
                    });
                }
                state.sent.front().and_then(|&(_, answered)| answered)
            };
            let _waiting = self.stats.as_ref().map(|stats| {
                let left =
                    wait_until.map(|a| (a + window).saturating_duration_since(Instant::now()));
                stats.rate_limit_wait(RateWait::Window, left)
            });
            match wait_until {
                Some(answered) => tokio::time::sleep_until(answered + window).await,
                // The oldest is still in flight: its answer starts its last window.
                None => self.answered.notified().await,
            }
        }
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
            drop(limiter.acquire().await.unwrap());
        }
        // 3 at t=0, 3 at t=200ms, 1 at t=400ms.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1_500),
            "{elapsed:?}"
        );
        assert_eq!(
            limiter.acquire().await.err(),
            Some(BudgetSpent { budget: 7 })
        );
        assert_eq!(limiter.granted(), 7);
    }

    /// A request counts until a window after its answer: a slow answer delays the next
    /// grant, and the grant after an answer that never comes waits for it.
    #[tokio::test]
    async fn a_request_counts_until_a_window_after_its_answer() {
        let limiter = RateLimiter::new(&RateLimitSettings {
            requests_per_window: 2,
            window_ms: 200,
            daily_budget: 0,
        });
        let start = Instant::now();
        let first = limiter.acquire().await.unwrap();
        drop(limiter.acquire().await.unwrap());
        let third = async {
            let grant = limiter.acquire().await.unwrap();
            (start.elapsed(), grant)
        };
        let answer_first = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(first);
        };
        let ((elapsed, _third), ()) = tokio::join!(third, answer_first);
        // The second's window ended at 200 ms, but the first answered at 100 ms: 300 ms.
        assert!(
            elapsed >= Duration::from_millis(295) && elapsed < Duration::from_millis(1_500),
            "{elapsed:?}"
        );
    }

    /// The progress display learns of a wait for room while it lasts, and of nothing else.
    #[tokio::test]
    async fn waits_for_room_are_reported_while_they_last() {
        let stats = Arc::new(HttpStats::default());
        let limiter = RateLimiter::new(&RateLimitSettings {
            requests_per_window: 1,
            window_ms: 300,
            daily_budget: 0,
        })
        .reporting_to(Arc::clone(&stats));
        drop(limiter.acquire().await.unwrap());
        assert_eq!(stats.rate_limited(), None, "the first request did not wait");
        let second = limiter.acquire();
        let watch = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stats.rate_limited()
        };
        let (grant, seen) = tokio::join!(second, watch);
        drop(grant.unwrap());
        let seen = seen.expect("waiting was visible while it lasted");
        assert_eq!(seen.why, RateWait::Window);
        assert!(
            seen.remaining
                .is_some_and(|r| r <= Duration::from_millis(300)),
            "{seen:?}"
        );
        assert_eq!(stats.rate_limited(), None, "no longer waiting");
        assert!(stats.rate_limit_waited() >= Duration::from_millis(150));
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
