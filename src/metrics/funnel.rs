//! The funnel, from `lead_stages`: `funnel_daily` counts leads entering each path stage per
//! UTC day × channel × campaign (a lead enters a stage at its `became_<stage>_at`, and the
//! `lead` stage at `created_at`); `funnel_cohort_monthly` follows the leads created in a
//! month (× channel) and counts how many have reached each stage so far, with the
//! stage-to-stage conversion rates. Both hold one accumulator per output row, folded in one
//! lead at a time (`Funnel`). A `funnel_daily` group is keyed by the day and the interned
//! channel and campaign ids in 12 bytes; the table is ordered by ranks of the names, so
//! neither folding nor ordering compares or copies a string.

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

/// The interned id that stands for a null channel or campaign.
const NULL: u32 = u32::MAX;

/// A `funnel_daily` group: day, channel id, campaign id ([`NULL`] for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayGroup {
    day: i32,
    channel: u32,
    campaign: u32,
}

impl std::hash::Hash for DayGroup {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Two words, each mixed once by `FastHasher` (a derived hash writes three).
        state.write_u64((u64::from(self.day as u32) << 32) | u64::from(self.channel));
        state.write_u32(self.campaign);
    }
}

fn id32(id: Option<usize>) -> u32 {
    id.map_or(NULL, |id| u32::try_from(id).expect("fewer than 2^32 names"))
}

/// The funnel accumulator: fold staged leads in one at a time, then read the tables.
#[derive(Debug, Default)]
pub struct Funnel {
    /// Channels and campaigns.
    names: Interner,
    /// (day, channel, campaign) → leads entering each stage that day.
    daily: FastMap<DayGroup, [i64; 6]>,
    /// (creation month, channel) → cohort.
    cohorts: FastMap<(i32, Option<usize>), Cohort>,
}

impl Funnel {
    /// Count one staged lead.
    pub fn add(&mut self, r: &LeadStage) {
        let channel = self.names.opt(r.lead.channel.as_deref());
        let campaign = self.names.opt(r.lead.campaign_id.as_deref());
        let (channel_id, campaign_id) = (id32(channel), id32(campaign));
        for (i, stage) in PATH.iter().enumerate() {
            let Some(at) = r.became(*stage) else { continue };
            let group = DayGroup {
                day: day_of(at),
                channel: channel_id,
                campaign: campaign_id,
            };
            self.daily.entry(group).or_default()[i] += 1;
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
        let owned = |id: u32| self.name(id).map(str::to_string);
        self.daily
            .iter()
            .map(|(g, counts)| ((g.day, owned(g.channel), owned(g.campaign)), *counts))
            .collect()
    }

    fn name(&self, id: u32) -> Option<&str> {
        (id != NULL).then(|| self.names.name(id as usize))
    }

    /// The groups in the table's order: day, then channel, then campaign, a null before any
    /// name and names in byte order (as the `BTreeMap` of [`Funnel::daily`] orders them).
    fn ordered_groups(&self) -> Vec<(DayGroup, [i64; 6])> {
        let ranks = self.names.ranks();
        let rank = |id: u32| {
            if id == NULL {
                0
            } else {
                u64::from(ranks[id as usize]) + 1
            }
        };
        let mut groups: Vec<(DayGroup, [i64; 6])> =
            self.daily.iter().map(|(g, c)| (*g, *c)).collect();
        groups.sort_unstable_by_key(|(g, _)| (g.day, rank(g.channel), rank(g.campaign)));
        groups
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
        let groups = self.ordered_groups();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(
                groups.iter().map(|(g, _)| g.day).collect::<Vec<_>>(),
            )),
            Arc::new(
                groups
                    .iter()
                    .map(|(g, _)| self.name(g.channel))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                groups
                    .iter()
                    .map(|(g, _)| self.name(g.campaign))
                    .collect::<StringArray>(),
            ),
        ];
        for i in 0..DAILY_COUNTS.len() {
            columns.push(Arc::new(
                groups.iter().map(|(_, c)| c[i]).collect::<Int64Array>(),
            ));
        }
        metric_batch("funnel_daily", &daily_schema(), columns, stamp)
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    /// Groups come out by day, then channel, then campaign, nulls first and names in byte
    /// order — not in the order the names were first seen.
    #[test]
    fn daily_rows_are_ordered_by_name_without_comparing_strings() {
        let mut funnel = Funnel::default();
        let mut id = |name: Option<&str>| id32(funnel.names.opt(name));
        let (search, social, b, a, upper, accent) = (
            id(Some("search")),
            id(Some("paid_social")),
            id(Some("b")),
            id(Some("a")),
            id(Some("Z")),
            id(Some("é")),
        );
        let groups = [
            (2, search, a, 1),
            (1, social, accent, 2),
            (1, social, b, 3),
            (1, search, NULL, 4),
            (1, NULL, upper, 5),
            (1, social, upper, 6),
            (1, social, a, 7),
        ];
        for (day, channel, campaign, leads) in groups {
            let group = DayGroup {
                day,
                channel,
                campaign,
            };
            funnel.daily.insert(group, [leads, 0, 0, 0, 0, 0]);
        }
        let stamp = BatchStamp {
            run_id: "r".into(),
            ingested_at_micros: 0,
        };
        let batch = funnel.daily_batch(&stamp).unwrap();
        let leads = batch
            .column_by_name("new_leads")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        // Day 1: null channel; paid_social with Z < a < b < é; search with a null campaign.
        assert_eq!(leads.values().to_vec(), vec![5, 6, 7, 3, 2, 4, 1]);
        let expected: Vec<i64> = funnel.daily().values().map(|c| c[0]).collect();
        assert_eq!(leads.values().to_vec(), expected);
        let campaigns = batch
            .column_by_name("campaign_id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(campaigns.is_null(5));
        assert_eq!(campaigns.value(2), "a");
    }
}
