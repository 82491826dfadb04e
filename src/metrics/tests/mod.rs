//! Metric tests with hand-computed expected values written in the test: every stage rule
//! path, scoring and ranking, funnel and CPSQL on a small data set, SAL around its target
//! and SLA bounds, eNPS anonymity, and streaming: many small batches give what one gives.

mod config;
mod enps;
mod funnel_cpsql;
mod icp;
mod intent;
mod sal;
mod stages;
mod streaming;

use chrono::{DateTime, NaiveDate};

use super::lead::Lead;
use crate::normalize::BatchStamp;

/// µs since the epoch of an RFC 3339 time.
pub(super) fn t(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_micros()
}

/// Days since the epoch of a `YYYY-MM-DD` date.
pub(super) fn d(s: &str) -> i32 {
    super::dates::epoch_days(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

/// A HubSpot lead with only an id.
pub(super) fn lead(id: &str) -> Lead {
    Lead {
        source_system: "hubspot".into(),
        lead_id: id.into(),
        ..Lead::default()
    }
}

/// A stamp for test batches.
pub(super) fn stamp(run: &str) -> BatchStamp {
    BatchStamp {
        run_id: run.into(),
        ingested_at_micros: 0,
    }
}

/// `12.345` as micros.
pub(super) fn money(text: &str) -> i128 {
    super::money::parse_decimal(text, 6).unwrap()
}
