//! Third-party intent per lead: the job's `intent_signals` (from `kind = "intent"` sources)
//! joined to leads by `leads.email_domain` and `leads.email_hash`. Each signal of the
//! look-back window counts `score × 0.5^(age_days / half_life_days)` (`age_days`: whole
//! days from the signal's date to the run's UTC day); a lead's
//! `third_party_intent_score` is the max (or, configured, the sum) of its signals, each
//! signal counted once even when it matches the lead by both domain and e-mail hash. The
//! newest matching signal's date (00:00 UTC) feeds the lead's `last_intent_at`, so a dead
//! lead with new third-party intent is recycled by the `new_intent_after_rejection` rule.
//!
//! The index holds the window's signals (a few per company and topic and week), never the
//! leads; applying it to a lead is two hash lookups.

use std::collections::HashMap;

use arrow::array::{Array, Date32Array, Float64Array};
use arrow::record_batch::RecordBatch;

use super::arrays::{get_str, opt_str_col};
use super::config::{IntentCombine, IntentDecayConfig};
use super::dates::{MICROS_PER_DAY, day_of};
use super::lead::Lead;
use crate::error::{Error, Result};

/// The `intent_signals` columns the index reads (a projection for readers).
pub const SIGNAL_COLUMNS: [&str; 5] = ["domain", "email_hash", "date", "topic", "score"];

/// One signal of the window: its decayed score and its day.
#[derive(Debug, Clone, Copy)]
struct Signal {
    decayed: f64,
    day: i32,
}

/// The window's signals by company domain and by e-mail hash.
#[derive(Debug)]
pub struct IntentIndex {
    cfg: IntentDecayConfig,
    today: i32,
    signals: Vec<Signal>,
    by_domain: HashMap<String, Vec<u32>>,
    by_email: HashMap<String, Vec<u32>>,
}

impl IntentIndex {
    /// An empty index for the run whose clock is `now_micros`.
    pub fn new(cfg: &IntentDecayConfig, now_micros: i64) -> Self {
        IntentIndex {
            cfg: cfg.clone(),
            today: day_of(now_micros),
            signals: Vec::new(),
            by_domain: HashMap::new(),
            by_email: HashMap::new(),
        }
    }

    /// A signal's decayed score, or `None` when it is outside the look-back window. A signal
    /// dated after the run's day counts as today's.
    pub fn decayed(&self, score: f64, day: i32) -> Option<f64> {
        let age = i64::from(self.today) - i64::from(day);
        if age > self.cfg.lookback_days {
            return None;
        }
        let age = age.max(0) as f64;
        Some(score * 0.5_f64.powf(age / self.cfg.half_life_days))
    }

    /// Add the signals of an `intent_signals` batch.
    pub fn add_batch(&mut self, b: &RecordBatch) -> Result<()> {
        let t = "intent_signals";
        let domains = opt_str_col(b, "domain", t)?;
        let emails = opt_str_col(b, "email_hash", t)?;
        let topics = opt_str_col(b, "topic", t)?;
        let dates = b
            .column_by_name("date")
            .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            .ok_or_else(|| Error::encode(t, "column `date` is missing or not a DATE"))?;
        let scores = b
            .column_by_name("score")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .ok_or_else(|| Error::encode(t, "column `score` is missing or not a DOUBLE"))?;
        for i in 0..b.num_rows() {
            if dates.is_null(i) || scores.is_null(i) {
                continue;
            }
            if !self.cfg.topics.is_empty() {
                let topic = topics.and_then(|a| get_str(a, i)).unwrap_or_default();
                let wanted = self
                    .cfg
                    .topics
                    .iter()
                    .any(|w| w.trim().eq_ignore_ascii_case(topic.trim()));
                if !wanted {
                    continue;
                }
            }
            let day = dates.value(i);
            let Some(decayed) = self.decayed(scores.value(i), day) else {
                continue;
            };
            let domain = domains.and_then(|a| get_str(a, i));
            let email = emails.and_then(|a| get_str(a, i));
            if domain.is_none() && email.is_none() {
                continue;
            }
            let index = u32::try_from(self.signals.len())
                .map_err(|_| Error::encode(t, "more than 4 billion intent signals"))?;
            self.signals.push(Signal { decayed, day });
            if let Some(domain) = domain {
                self.by_domain
                    .entry(domain.to_ascii_lowercase())
                    .or_default()
                    .push(index);
            }
            if let Some(email) = email {
                self.by_email
                    .entry(email.to_string())
                    .or_default()
                    .push(index);
            }
        }
        Ok(())
    }

    /// Signals in the index.
    pub fn len(&self) -> usize {
        self.signals.len()
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }

    /// Set `lead.intent_score` from its signals and move `lead.last_intent_at` to the newest
    /// signal's day when that is later than the CRM's date.
    pub fn apply(&self, lead: &mut Lead) {
        lead.intent_score = None;
        if self.signals.is_empty() {
            return;
        }
        let by_domain = lead
            .email_domain
            .as_deref()
            .and_then(|d| self.by_domain.get(d.trim().to_ascii_lowercase().as_str()));
        let by_email = lead
            .email_hash
            .as_deref()
            .and_then(|h| self.by_email.get(h));
        let (domain, email) = (
            by_domain.map_or(&[][..], Vec::as_slice),
            by_email.map_or(&[][..], Vec::as_slice),
        );
        if domain.is_empty() && email.is_empty() {
            return;
        }
        let mut score = 0.0_f64;
        let mut newest = i32::MIN;
        // A signal keyed by both matches twice: count it once.
        let once = email.iter().filter(|i| !domain.contains(i));
        for &i in domain.iter().chain(once) {
            let signal = self.signals[i as usize];
            score = match self.cfg.combine {
                IntentCombine::Max => score.max(signal.decayed),
                IntentCombine::Sum => score + signal.decayed,
            };
            newest = newest.max(signal.day);
        }
        lead.intent_score = Some(score);
        let at = i64::from(newest) * MICROS_PER_DAY;
        if lead.last_intent_at.is_none_or(|crm| at > crm) {
            lead.last_intent_at = Some(at);
        }
    }
}

/// The index of `intent_signals` batches (in memory, for tests and `super::compute`).
pub fn index(
    batches: &[RecordBatch],
    cfg: &IntentDecayConfig,
    now_micros: i64,
) -> Result<IntentIndex> {
    let mut index = IntentIndex::new(cfg, now_micros);
    for b in batches {
        index.add_batch(b)?;
    }
    Ok(index)
}
