//! The funnel, from `lead_stages`: `funnel_daily` counts leads entering each path stage per
//! UTC day × channel × campaign (a lead enters a stage at its `became_<stage>_at`, and the
//! `lead` stage at `created_at`); `funnel_cohort_monthly` follows the leads created in a
//! month (× channel) and counts how many have reached each stage so far, with the
//! stage-to-stage conversion rates. Both hold one accumulator per output row, folded in one
//! lead at a time (`Funnel`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{metric_batch, metric_schema};
use super::config::PATH;
use super::dates::{day_of, month_of};
use super::intern::{FastMap, Interner};
use super::stages::LeadStage;
use crate::error::Result;
use crate::normalize::BatchStamp;

/// Column names of the per-stage counts, in path order.
const DAILY_COUNTS: [&str; 6] = [
    "new_leads",
    "new_warm",
    "new_mqls",
    "new_sals",
    "new_sqls",
    "new_customers",
];

type DailyKey = (i32, Option<String>, Option<String>);

/// The funnel accumulator: fold staged leads in one at a time, then read the tables.
#[derive(Debug, Default)]
pub struct Funnel {
    /// Channels and campaigns.
    names: Interner,
    /// (day, channel, campaign) → leads entering each stage that day.
    daily: FastMap<(i32, Option<usize>, Option<usize>), [i64; 6]>,
    /// (creation month, channel) → cohort.
    cohorts: FastMap<(i32, Option<usize>), Cohort>,
}

impl Funnel {
    /// Count one staged lead.
    pub fn add(&mut self, r: &LeadStage) {
        let channel = self.names.opt(r.lead.channel.as_deref());
        let campaign = self.names.opt(r.lead.campaign_id.as_deref());
        for (i, stage) in PATH.iter().enumerate() {
            let Some(at) = r.became(*stage) else { continue };
            self.daily
                .entry((day_of(at), channel, campaign))
                .or_default()[i] += 1;
        }
        // Leads without a creation date belong to no cohort.
        if let Some(created) = r.lead.created_at {
            let cohort = self
                .cohorts
                .entry((month_of(created), channel))
                .or_default();
            for (i, stage) in PATH.iter().enumerate() {
                if r.reached(*stage) {
                    cohort.reached[i] += 1;
                }
            }
        }
    }

    /// `funnel_daily` rows: (day, channel, campaign) → leads entering each stage that day.
    pub fn daily(&self) -> BTreeMap<DailyKey, [i64; 6]> {
        self.daily
            .iter()
            .map(|((day, channel, campaign), counts)| {
                (
                    (
                        *day,
                        self.names.owned(*channel),
                        self.names.owned(*campaign),
                    ),
                    *counts,
                )
            })
            .collect()
    }

    /// `funnel_cohort_monthly` rows: (creation month, channel) → cohort.
    pub fn cohorts(&self) -> BTreeMap<(i32, Option<String>), Cohort> {
        self.cohorts
            .iter()
            .map(|((month, channel), cohort)| ((*month, self.names.owned(*channel)), *cohort))
            .collect()
    }

    /// `funnel_daily` as one batch.
    pub fn daily_batch(&self, stamp: &BatchStamp) -> Result<RecordBatch> {
        daily_table(&self.daily(), stamp)
    }

    /// `funnel_cohort_monthly` as one batch.
    pub fn cohort_batch(&self, stamp: &BatchStamp) -> Result<RecordBatch> {
        cohort_table(&self.cohorts(), stamp)
    }
}

fn fold(rows: &[LeadStage]) -> Funnel {
    let mut funnel = Funnel::default();
    for r in rows {
        funnel.add(r);
    }
    funnel
}

/// `funnel_daily` rows: (day, channel, campaign) → leads entering each stage that day.
pub fn daily(rows: &[LeadStage]) -> BTreeMap<DailyKey, [i64; 6]> {
    fold(rows).daily()
}

/// The `funnel_daily` schema.
pub fn daily_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("date", DataType::Date32, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("campaign_id", DataType::Utf8, true),
    ];
    fields.extend(DAILY_COUNTS.map(|n| Field::new(n, DataType::Int64, false)));
    metric_schema(fields)
}

/// `funnel_daily` as one batch.
pub fn daily_batch(rows: &[LeadStage], stamp: &BatchStamp) -> Result<RecordBatch> {
    fold(rows).daily_batch(stamp)
}

fn daily_table(agg: &BTreeMap<DailyKey, [i64; 6]>, stamp: &BatchStamp) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            agg.keys().map(|k| k.0).collect::<Vec<_>>(),
        )),
        Arc::new(agg.keys().map(|k| k.1.as_deref()).collect::<StringArray>()),
        Arc::new(agg.keys().map(|k| k.2.as_deref()).collect::<StringArray>()),
    ];
    for i in 0..DAILY_COUNTS.len() {
        columns.push(Arc::new(agg.values().map(|v| v[i]).collect::<Int64Array>()));
    }
    metric_batch("funnel_daily", &daily_schema(), columns, stamp)
}

/// One cohort: leads created in a month in a channel, and how many reached each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cohort {
    /// Leads created (= reached `lead`), then reached warm, mql, sal, sql, customer.
    pub reached: [i64; 6],
}

/// `funnel_cohort_monthly` rows: (creation month, channel) → cohort. Leads without a
/// creation date belong to no cohort.
pub fn cohorts(rows: &[LeadStage]) -> BTreeMap<(i32, Option<String>), Cohort> {
    fold(rows).cohorts()
}

/// `part / whole`, null when `whole` is 0.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The `funnel_cohort_monthly` schema.
pub fn cohort_schema() -> SchemaRef {
    let count = |n: &str| Field::new(n, DataType::Int64, false);
    let rate = |n: &str| Field::new(n, DataType::Float64, true);
    metric_schema(vec![
        Field::new("month", DataType::Date32, false),
        Field::new("channel", DataType::Utf8, true),
        count("leads"),
        count("reached_warm"),
        count("reached_mql"),
        count("reached_sal"),
        count("reached_sql"),
        count("reached_customer"),
        rate("lead_to_mql_rate"),
        rate("mql_to_sal_rate"),
        rate("sal_to_sql_rate"),
        rate("sql_to_customer_rate"),
        rate("lead_to_customer_rate"),
    ])
}

/// `funnel_cohort_monthly` as one batch.
pub fn cohort_batch(rows: &[LeadStage], stamp: &BatchStamp) -> Result<RecordBatch> {
    fold(rows).cohort_batch(stamp)
}

fn cohort_table(
    agg: &BTreeMap<(i32, Option<String>), Cohort>,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            agg.keys().map(|k| k.0).collect::<Vec<_>>(),
        )),
        Arc::new(agg.keys().map(|k| k.1.as_deref()).collect::<StringArray>()),
    ];
    for i in 0..6 {
        columns.push(Arc::new(
            agg.values().map(|c| c.reached[i]).collect::<Int64Array>(),
        ));
    }
    // lead→mql, mql→sal, sal→sql, sql→customer, lead→customer.
    for (part, whole) in [(2, 0), (3, 2), (4, 3), (5, 4), (5, 0)] {
        columns.push(Arc::new(
            agg.values()
                .map(|c| rate(c.reached[part], c.reached[whole]))
                .collect::<Float64Array>(),
        ));
    }
    metric_batch("funnel_cohort_monthly", &cohort_schema(), columns, stamp)
}
