//! `sal_acceptance_monthly`: leads handed to sales (their MQL date is the hand-off) per
//! month × level (`total`, `owner`, `channel`): accepted (`became_sal_at` set), rejected
//! (`sal_rejected_at` set and never accepted), pending (neither); the acceptance rate
//! `accepted / (accepted + rejected)` against the job's target; the median hours from
//! hand-off to acceptance; and the contact SLA from acceptance to first contact.
//!
//! Leads are folded in one at a time, in two passes (`Sal`, then `SalMedians`): the counts
//! need one, the exact median a second — pass 1 counts each row's hours per value bucket,
//! which tells the bucket and position of the middle values; pass 2 keeps only the hours in
//! those buckets. Memory holds per row a few hundred bucket counts and a slice of its
//! hours, not one number per accepted lead.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{get_str, get_ts, metric_batch, metric_schema, str_col, ts_col};
use super::config::{SalConfig, Stage};
use super::dates::{MICROS_PER_HOUR, month_of};
use super::funnel::rate;
use super::intern::{FastMap, Interner};
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
    /// Median hours from hand-off to acceptance; `None` without accepted leads.
    pub median_hours_to_accept: Option<f64>,
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

/// A lead as the rows see it: hand-off month, hand-off and acceptance time.
struct Handoff {
    month: i32,
    at: i64,
    accepted: Option<i64>,
}

impl Handoff {
    /// `None` when the lead was never handed off.
    fn of(r: &LeadStage) -> Option<Self> {
        Some(Handoff::new(r.became(Stage::Mql)?, r.became(Stage::Sal)))
    }

    /// Handed off at `at`, accepted at `accepted`.
    fn new(at: i64, accepted: Option<i64>) -> Self {
        Handoff {
            month: month_of(at),
            at,
            accepted,
        }
    }

    /// Hours from hand-off to acceptance, if accepted.
    fn hours(&self) -> Option<f64> {
        self.accepted
            .map(|accepted| (accepted - self.at) as f64 / MICROS_PER_HOUR as f64)
    }
}

/// The bucket of an hours value: the top 16 bits of its `f64::total_cmp` key (sign,
/// exponent, 4 mantissa bits), so buckets sort as the values do and each spans at most
/// 1/16 of an octave. Hours between a microsecond and millennia fall in ~1,800 buckets.
fn bucket(hours: f64) -> u16 {
    let bits = hours.to_bits() as i64;
    // total_cmp's order as a signed key, then as an unsigned one.
    let key = bits ^ ((((bits >> 63) as u64) >> 1) as i64);
    (((key as u64) ^ (1 << 63)) >> 48) as u16
}

/// The exact median of one row's hours without keeping them all.
#[derive(Debug, Default)]
struct MedianSearch {
    /// Pass 1: hours per bucket.
    counts: BTreeMap<u16, u64>,
    /// Pass 2: each middle value (one, or two for an even count) as (bucket, position among
    /// the bucket's values in order).
    middle: Vec<(u16, usize)>,
    /// Pass 2: the hours of the buckets holding a middle value.
    kept: BTreeMap<u16, Vec<f64>>,
}

impl MedianSearch {
    fn count(&mut self, hours: f64) {
        *self.counts.entry(bucket(hours)).or_default() += 1;
    }

    /// Between the passes: locate the middle values.
    fn locate(&mut self) {
        let counts = std::mem::take(&mut self.counts);
        let n: u64 = counts.values().sum();
        if n == 0 {
            return;
        }
        let mut wanted = if n.is_multiple_of(2) {
            vec![n / 2 - 1, n / 2]
        } else {
            vec![n / 2]
        };
        wanted.reverse();
        let mut before = 0;
        for (b, count) in counts {
            while let Some(rank) = wanted.last().copied().filter(|r| *r < before + count) {
                let position = usize::try_from(rank - before).unwrap_or(usize::MAX);
                self.middle.push((b, position));
                self.kept.entry(b).or_default();
                wanted.pop();
            }
            before += count;
        }
    }

    fn keep(&mut self, hours: f64) {
        if let Some(values) = self.kept.get_mut(&bucket(hours)) {
            values.push(hours);
        }
    }

    /// After pass 2: the median (the mean of the middle two for an even count), as `median`
    /// computes it over all the values.
    fn median(mut self) -> Option<f64> {
        for values in self.kept.values_mut() {
            values.sort_by(f64::total_cmp);
        }
        let value = |(b, i): (u16, usize)| self.kept.get(&b).and_then(|v| v.get(i)).copied();
        match *self.middle.as_slice() {
            [one] => value(one),
            [low, high] => Some((value(low)? + value(high)?) / 2.0),
            _ => None,
        }
    }
}

/// One row being accumulated.
#[derive(Debug, Default)]
struct Row {
    counts: Acceptance,
    median: MedianSearch,
}

/// The SAL accumulator, pass 1: fold staged leads in one at a time, then `medians` for the
/// second pass.
#[derive(Debug)]
pub struct Sal {
    /// The SLA bounds, µs.
    bounds: [i64; 2],
    now: i64,
    /// Owners and channels.
    names: Interner,
    rows: FastMap<(i32, LevelId), Row>,
}

impl Sal {
    /// An empty accumulator for the job's SLA and the run's clock (µs).
    pub fn new(cfg: &SalConfig, now: i64) -> Self {
        Sal {
            bounds: cfg.sla_hours.map(|h| h.saturating_mul(MICROS_PER_HOUR)),
            now,
            names: Interner::default(),
            rows: FastMap::default(),
        }
    }

    /// Count one staged lead, if it was handed off.
    pub fn add(&mut self, r: &LeadStage) {
        let [first, second] = self.bounds;
        let Some(handoff) = Handoff::of(r) else {
            return;
        };
        let hours = handoff.hours();
        let rejected = handoff.accepted.is_none() && r.lead.sal_rejected_at.is_some();
        let owner = self.names.opt(r.lead.owner_id.as_deref());
        let channel = self.names.opt(r.lead.channel.as_deref());
        for level in [
            LevelId::Total,
            LevelId::Owner(owner),
            LevelId::Channel(channel),
        ] {
            let row = self.rows.entry((handoff.month, level)).or_default();
            let a = &mut row.counts;
            a.handed_off += 1;
            let (Some(accepted), Some(hours)) = (handoff.accepted, hours) else {
                if rejected {
                    a.rejected += 1;
                } else {
                    a.pending += 1;
                }
                continue;
            };
            a.accepted += 1;
            row.median.count(hours);
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

    /// End pass 1: the second pass, which finds the medians.
    pub fn medians(mut self) -> SalMedians {
        for row in self.rows.values_mut() {
            row.median.locate();
        }
        SalMedians { sal: self }
    }
}

/// The SAL accumulator, pass 2: fold the same staged leads in again for the medians, then
/// read the rows.
#[derive(Debug)]
pub struct SalMedians {
    sal: Sal,
}

impl SalMedians {
    /// Keep the hours of one staged lead where a median needs them.
    pub fn add(&mut self, r: &LeadStage) {
        if let Some(handoff) = Handoff::of(r) {
            self.keep(
                &handoff,
                r.lead.owner_id.as_deref(),
                r.lead.channel.as_deref(),
            );
        }
    }

    /// Keep the hours of the leads of a `lead_stages` batch (the first pass's rows).
    pub fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        const TABLE: &str = "lead_stages";
        let mql = ts_col(batch, "became_mql_at", TABLE)?;
        let sal = ts_col(batch, "became_sal_at", TABLE)?;
        let owner = str_col(batch, "owner_id", TABLE)?;
        let channel = str_col(batch, "channel", TABLE)?;
        for i in 0..batch.num_rows() {
            let Some(at) = get_ts(mql, i) else { continue };
            let handoff = Handoff::new(at, get_ts(sal, i));
            self.keep(&handoff, get_str(owner, i), get_str(channel, i));
        }
        Ok(())
    }

    fn keep(&mut self, handoff: &Handoff, owner: Option<&str>, channel: Option<&str>) {
        let Some(hours) = handoff.hours() else {
            return;
        };
        let names = &self.sal.names;
        // A name pass 1 never saw has no row to keep hours for.
        let id = |name: Option<&str>| match name {
            Some(name) => names.get(name).map(Some),
            None => Some(None),
        };
        let (Some(owner), Some(channel)) = (id(owner), id(channel)) else {
            return;
        };
        for level in [
            LevelId::Total,
            LevelId::Owner(owner),
            LevelId::Channel(channel),
        ] {
            if let Some(row) = self.sal.rows.get_mut(&(handoff.month, level)) {
                row.median.keep(hours);
            }
        }
    }

    /// The rows, by (hand-off month, level).
    pub fn rows(self) -> BTreeMap<(i32, Level), Acceptance> {
        let names = self.sal.names;
        self.sal
            .rows
            .into_iter()
            .map(|((month, level), row)| {
                let level = match level {
                    LevelId::Total => Level::Total,
                    LevelId::Owner(o) => Level::Owner(names.owned(o)),
                    LevelId::Channel(c) => Level::Channel(names.owned(c)),
                };
                let mut a = row.counts;
                a.median_hours_to_accept = row.median.median();
                ((month, level), a)
            })
            .collect()
    }

    /// `sal_acceptance_monthly` as one batch.
    pub fn batch(self, cfg: &SalConfig, stamp: &BatchStamp) -> Result<RecordBatch> {
        table(self.rows(), cfg, stamp)
    }
}

/// Both passes over `rows`.
fn fold(rows: &[LeadStage], cfg: &SalConfig, now: i64) -> SalMedians {
    let mut sal = Sal::new(cfg, now);
    for r in rows {
        sal.add(r);
    }
    let mut medians = sal.medians();
    for r in rows {
        medians.add(r);
    }
    medians
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
    agg: BTreeMap<(i32, Level), Acceptance>,
    cfg: &SalConfig,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    let n = agg.len();
    let keys: Vec<(i32, Level)> = agg.keys().cloned().collect();
    let rates: Vec<Option<f64>> = agg
        .values()
        .map(|a| rate(a.accepted, a.accepted + a.rejected))
        .collect();
    let medians: Vec<Option<f64>> = agg.values().map(|a| a.median_hours_to_accept).collect();
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
