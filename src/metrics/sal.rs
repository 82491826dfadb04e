//! `sal_acceptance_monthly`: leads handed to sales (their MQL date is the hand-off) per
//! month × level (`total`, `owner`, `channel`): accepted (`became_sal_at` set), rejected
//! (`sal_rejected_at` set and never accepted), pending (neither); the acceptance rate
//! `accepted / (accepted + rejected)` against the job's target; the median hours from
//! hand-off to acceptance; and the contact SLA from acceptance to first contact. Leads are
//! folded in one at a time (`Sal`); the median keeps the hours of each row's accepted leads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{MICROS_PER_HOUR, metric_batch, metric_schema, month_of};
use super::config::{SalConfig, Stage};
use super::funnel::rate;
use super::intern::Interner;
use super::stages::LeadStage;
use crate::error::Result;
use crate::normalize::BatchStamp;

/// The grain of a row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Every hand-off of the month.
    Total,
    /// One owner (`None`: unassigned).
    Owner(Option<String>),
    /// One channel (`None`: unknown).
    Channel(Option<String>),
}

/// One output row's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acceptance {
    pub handed_off: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub pending: i64,
    /// Hours from hand-off to acceptance, one per accepted lead.
    pub hours_to_accept: Vec<f64>,
    /// Accepted and first contacted within the first SLA bound (inclusive).
    pub within_first: i64,
    /// Accepted and first contacted within the second SLA bound (inclusive; includes the
    /// first).
    pub within_second: i64,
    /// Not contacted within the second bound, including uncontacted leads accepted longer
    /// ago than it.
    pub breached: i64,
    /// Accepted, not contacted yet, still inside the second bound.
    pub open: i64,
}

/// `Level` with its owner or channel interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LevelId {
    Total,
    Owner(Option<usize>),
    Channel(Option<usize>),
}

/// The SAL accumulator: fold staged leads in one at a time, then read the rows.
#[derive(Debug)]
pub struct Sal {
    /// The SLA bounds, µs.
    bounds: [i64; 2],
    now: i64,
    /// Owners and channels.
    names: Interner,
    rows: HashMap<(i32, LevelId), Acceptance>,
}

impl Sal {
    /// An empty accumulator for the job's SLA and the run's clock (µs).
    pub fn new(cfg: &SalConfig, now: i64) -> Self {
        Sal {
            bounds: cfg.sla_hours.map(|h| h.saturating_mul(MICROS_PER_HOUR)),
            now,
            names: Interner::default(),
            rows: HashMap::new(),
        }
    }

    /// Count one staged lead, if it was handed off.
    pub fn add(&mut self, r: &LeadStage) {
        let [first, second] = self.bounds;
        let Some(handoff) = r.became(Stage::Mql) else {
            return;
        };
        let month = month_of(handoff);
        let accepted_at = r.became(Stage::Sal);
        let rejected = accepted_at.is_none() && r.lead.sal_rejected_at.is_some();
        let owner = self.names.opt(r.lead.owner_id.as_deref());
        let channel = self.names.opt(r.lead.channel.as_deref());
        for level in [
            LevelId::Total,
            LevelId::Owner(owner),
            LevelId::Channel(channel),
        ] {
            let a = self.rows.entry((month, level)).or_default();
            a.handed_off += 1;
            let Some(accepted) = accepted_at else {
                if rejected {
                    a.rejected += 1;
                } else {
                    a.pending += 1;
                }
                continue;
            };
            a.accepted += 1;
            a.hours_to_accept
                .push((accepted - handoff) as f64 / MICROS_PER_HOUR as f64);
            match r.lead.first_contacted_at {
                Some(contacted) => {
                    let waited = contacted - accepted;
                    if waited <= first {
                        a.within_first += 1;
                    }
                    if waited <= second {
                        a.within_second += 1;
                    } else {
                        a.breached += 1;
                    }
                }
                None if self.now - accepted > second => a.breached += 1,
                None => a.open += 1,
            }
        }
    }

    /// The rows, by (hand-off month, level).
    pub fn rows(self) -> BTreeMap<(i32, Level), Acceptance> {
        let names = self.names;
        self.rows
            .into_iter()
            .map(|((month, level), a)| {
                let level = match level {
                    LevelId::Total => Level::Total,
                    LevelId::Owner(o) => Level::Owner(names.owned(o)),
                    LevelId::Channel(c) => Level::Channel(names.owned(c)),
                };
                ((month, level), a)
            })
            .collect()
    }

    /// `sal_acceptance_monthly` as one batch.
    pub fn batch(self, cfg: &SalConfig, stamp: &BatchStamp) -> Result<RecordBatch> {
        table(self.rows(), cfg, stamp)
    }
}

fn fold(rows: &[LeadStage], cfg: &SalConfig, now: i64) -> Sal {
    let mut sal = Sal::new(cfg, now);
    for r in rows {
        sal.add(r);
    }
    sal
}

/// The rows, by (hand-off month, level).
pub fn acceptance(
    rows: &[LeadStage],
    cfg: &SalConfig,
    now: i64,
) -> BTreeMap<(i32, Level), Acceptance> {
    fold(rows, cfg, now).rows()
}

/// The median of `values` (the mean of the middle two for an even count); null when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// The `sal_acceptance_monthly` schema.
pub fn schema() -> SchemaRef {
    let count = |n: &str| Field::new(n, DataType::Int64, false);
    metric_schema(vec![
        Field::new("month", DataType::Date32, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("owner_id", DataType::Utf8, true),
        Field::new("channel", DataType::Utf8, true),
        count("handed_off"),
        count("accepted"),
        count("rejected"),
        count("pending"),
        Field::new("acceptance_rate", DataType::Float64, true),
        Field::new("target", DataType::Float64, false),
        Field::new("meets_target", DataType::Boolean, true),
        Field::new("median_hours_to_accept", DataType::Float64, true),
        count("sla_first_hours"),
        count("sla_second_hours"),
        count("sla_contacted_within_24h"),
        count("sla_contacted_within_48h"),
        count("sla_breached"),
        count("sla_open"),
    ])
}

/// `sal_acceptance_monthly` as one batch.
pub fn batch(
    rows: &[LeadStage],
    cfg: &SalConfig,
    now: i64,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    fold(rows, cfg, now).batch(cfg, stamp)
}

fn table(
    mut agg: BTreeMap<(i32, Level), Acceptance>,
    cfg: &SalConfig,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    let n = agg.len();
    let keys: Vec<(i32, Level)> = agg.keys().cloned().collect();
    let rates: Vec<Option<f64>> = agg
        .values()
        .map(|a| rate(a.accepted, a.accepted + a.rejected))
        .collect();
    let medians: Vec<Option<f64>> = agg
        .values_mut()
        .map(|a| median(&mut a.hours_to_accept))
        .collect();
    let count = |f: &dyn Fn(&Acceptance) -> i64| -> ArrayRef {
        Arc::new(agg.values().map(f).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            keys.iter().map(|k| k.0).collect::<Vec<_>>(),
        )),
        Arc::new(
            keys.iter()
                .map(|k| {
                    Some(match k.1 {
                        Level::Total => "total",
                        Level::Owner(_) => "owner",
                        Level::Channel(_) => "channel",
                    })
                })
                .collect::<StringArray>(),
        ),
        Arc::new(
            keys.iter()
                .map(|k| match &k.1 {
                    Level::Owner(o) => o.as_deref(),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        Arc::new(
            keys.iter()
                .map(|k| match &k.1 {
                    Level::Channel(c) => c.as_deref(),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        count(&|a| a.handed_off),
        count(&|a| a.accepted),
        count(&|a| a.rejected),
        count(&|a| a.pending),
        Arc::new(Float64Array::from(rates.clone())),
        Arc::new(Float64Array::from(vec![cfg.target; n])),
        Arc::new(
            rates
                .iter()
                .map(|r| r.map(|r| r >= cfg.target))
                .collect::<BooleanArray>(),
        ),
        Arc::new(Float64Array::from(medians)),
        Arc::new(Int64Array::from(vec![cfg.sla_hours[0]; n])),
        Arc::new(Int64Array::from(vec![cfg.sla_hours[1]; n])),
        count(&|a| a.within_first),
        count(&|a| a.within_second),
        count(&|a| a.breached),
        count(&|a| a.open),
    ];
    metric_batch("sal_acceptance_monthly", &schema(), columns, stamp)
}
