//! The ad platforms' run-time switches: restatement of the last day between runs and the
//! faults tests switch on (Google quota errors, Meta throttles and its code-1 range limit,
//! LinkedIn's daily limit), and the per-row facts tests total independently. A leaf: the
//! shared world holds one [`SpendControl`], the handlers read it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Days one Meta insights request may span before it answers code 1, by default.
pub(super) const META_DEFAULT_MAX_RANGE_DAYS: u32 = 45;

/// One served spend row, as the vendor reports it now (restatement applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendFact {
    /// `google_ads`, `meta_ads` or `linkedin_ads`.
    pub platform: &'static str,
    /// Customer / ad account id.
    pub account_id: String,
    /// ISO-4217 currency of the account.
    pub currency: String,
    /// Campaign id.
    pub campaign_id: String,
    /// Day, `YYYY-MM-DD`.
    pub date: String,
    /// Cost in millionths of the currency unit.
    pub cost_micros: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Served with an unparseable cost.
    pub malformed: bool,
}

/// Faults and restatement, switched at run time (admin endpoint or [`SandboxData::control`]).
#[derive(Debug)]
pub struct SpendControl {
    restatements: AtomicU64,
    google_quota_errors: AtomicU32,
    google_retry_delay: Mutex<String>,
    meta_throttles: AtomicU32,
    meta_regain_minutes: Mutex<f64>,
    meta_max_range_days: AtomicU32,
    linkedin_daily_limit: AtomicBool,
}

impl Default for SpendControl {
    fn default() -> Self {
        SpendControl {
            restatements: AtomicU64::new(0),
            google_quota_errors: AtomicU32::new(0),
            google_retry_delay: Mutex::new("1s".into()),
            meta_throttles: AtomicU32::new(0),
            meta_regain_minutes: Mutex::new(1.0),
            meta_max_range_days: AtomicU32::new(META_DEFAULT_MAX_RANGE_DAYS),
            linkedin_daily_limit: AtomicBool::new(false),
        }
    }
}

impl SpendControl {
    /// Restate the last day of data (yesterday) on every platform: each call changes its
    /// cost, impressions and clicks again. Returns how many restatements there have been.
    pub fn restate(&self) -> u64 {
        self.restatements.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The next `count` Google Ads requests answer 429 `RESOURCE_EXHAUSTED` with this
    /// `retryDelay` (a Duration string such as `"1.5s"`).
    pub fn google_quota_errors(&self, count: u32, retry_delay: &str) {
        if let Ok(mut d) = self.google_retry_delay.lock() {
            *d = retry_delay.to_string();
        }
        self.google_quota_errors.store(count, Ordering::SeqCst);
    }

    /// The next `count` Meta requests are throttled (code 80000) with this
    /// `estimated_time_to_regain_access` in minutes.
    pub fn meta_throttles(&self, count: u32, regain_minutes: f64) {
        if let Ok(mut m) = self.meta_regain_minutes.lock() {
            *m = regain_minutes;
        }
        self.meta_throttles.store(count, Ordering::SeqCst);
    }

    /// Meta answers code 1 for a `time_range` longer than `days` (0 = never).
    pub fn meta_max_range_days(&self, days: u32) {
        self.meta_max_range_days.store(days, Ordering::SeqCst);
    }

    /// LinkedIn answers every request with its daily-limit 429 while `on`.
    pub fn linkedin_daily_limit(&self, on: bool) {
        self.linkedin_daily_limit.store(on, Ordering::SeqCst);
    }

    pub(crate) fn take_google_quota_error(&self) -> Option<String> {
        take(&self.google_quota_errors).then(|| {
            self.google_retry_delay
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default()
        })
    }

    pub(crate) fn take_meta_throttle(&self) -> Option<f64> {
        take(&self.meta_throttles)
            .then(|| self.meta_regain_minutes.lock().map(|m| *m).unwrap_or(1.0))
    }

    pub(crate) fn max_range_days(&self) -> u32 {
        self.meta_max_range_days.load(Ordering::SeqCst)
    }

    pub(crate) fn daily_limit_reached(&self) -> bool {
        self.linkedin_daily_limit.load(Ordering::SeqCst)
    }

    /// `(cost_micros, impressions, clicks)` of a row on `day` as served now: the last day
    /// before `today` moves by a fixed step per restatement (cost by 1.23 and 10 clicks).
    pub(crate) fn restated(
        &self,
        today_days: i64,
        day: i64,
        metrics: (i64, i64, i64),
    ) -> (i64, i64, i64) {
        let n = self.restatements.load(Ordering::SeqCst) as i64;
        if n == 0 || day != today_days - 1 {
            return metrics;
        }
        let (cost, impressions, clicks) = metrics;
        (cost + n * 1_230_000, impressions + n * 100, clicks + n * 10)
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restatement_moves_only_the_last_day() {
        let c = SpendControl::default();
        assert_eq!(c.restated(100, 99, (1, 2, 3)), (1, 2, 3));
        c.restate();
        assert_eq!(c.restated(100, 99, (1, 2, 3)), (1_230_001, 102, 13));
        assert_eq!(c.restated(100, 98, (1, 2, 3)), (1, 2, 3));
    }
}
