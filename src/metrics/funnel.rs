//! The funnel, from `lead_stages`: `funnel_daily` counts leads entering each path stage per
//! UTC day × channel × campaign (a lead enters a stage at its `became_<stage>_at`, and the
//! `lead` stage at `created_at`); `funnel_cohort_monthly` follows the leads created in a
//! month (× channel) and counts how many have reached each stage so far, with the
//! stage-to-stage conversion rates. Both hold one accumulator per output row, folded in one
//! lead at a time (`Funnel`). A `funnel_daily` group is keyed by the day and the interned
//! channel and campaign ids in 12 bytes, and there can be millions of them, so they are
//! held within a budget and come out batch by batch (`DailyRows`, see `daily_groups`); the
//! table is ordered by ranks of the names, so neither folding nor ordering compares or
//! copies a string.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{metric_batch, metric_schema};
use super::bounded_groups::{CHUNK_ROWS, SortedGroups};
use super::config::PATH;
use super::daily_groups::{Counts, DailyGroups, DayGroup, NULL};
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

fn id32(id: Option<usize>) -> u32 {
    id.map_or(NULL, |id| u32::try_from(id).expect("fewer than 2^32 names"))
}

/// The funnel accumulator: fold staged leads in one at a time, then read the tables.
#[derive(Debug, Default)]
pub struct Funnel {
    /// Channels and campaigns.
    names: Interner,
    /// (day, channel, campaign) → leads entering each stage that day.
    daily: DailyGroups,
    /// (creation month, channel) → cohort.
    cohorts: FastMap<(i32, Option<usize>), Cohort>,
}

impl Funnel {
    /// A funnel holding at most `groups` `funnel_daily` groups in memory (the default holds
    /// `daily_groups::DEFAULT_BUDGET`); past that they go to temporary files.
    pub fn with_daily_budget(groups: usize) -> Self {
        Funnel {
            daily: DailyGroups::new(groups),
            ..Funnel::default()
        }
    }

    /// Count one staged lead; an error when its groups could not be set aside on disk.
    pub fn add(&mut self, r: &LeadStage) -> Result<()> {
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
            self.daily.get(group)[i] += 1;
        }
        self.daily.bound(|| self.names.ranks())?;
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
        Ok(())
    }

    /// `funnel_daily` rows: (day, channel, campaign) → leads entering each stage that day.
    pub fn daily(self) -> Result<BTreeMap<DailyKey, [i64; 6]>> {
        let ranks = self.names.ranks();
        let mut groups = self.daily.finish(ranks)?;
        let mut rows = BTreeMap::new();
        let owned = |id: u32| name(&self.names, id).map(str::to_string);
        while let Some(chunk) = groups.next_chunk(CHUNK_ROWS)? {
            for (g, counts) in chunk {
                rows.insert((g.day, owned(g.channel), owned(g.campaign)), counts);
            }
        }
        Ok(rows)
    }

    /// `funnel_cohort_monthly` rows: (creation month, channel) → cohort.
    pub fn cohorts(&self) -> BTreeMap<(i32, Option<String>), Cohort> {
        self.cohorts
            .iter()
            .map(|((month, channel), cohort)| ((*month, self.names.owned(*channel)), *cohort))
            .collect()
    }

    /// `funnel_daily` in the table's order — day, then channel, then campaign, a null before
    /// any name and names in byte order (as the `BTreeMap` of [`Funnel::daily`] orders them)
    /// — batch by batch.
    pub fn into_daily(self, stamp: &BatchStamp) -> Result<DailyRows> {
        let ranks = self.names.ranks();
        Ok(DailyRows {
            groups: self.daily.finish(ranks)?,
            names: self.names,
            stamp: stamp.clone(),
            batch_rows: CHUNK_ROWS,
        })
    }

    /// `funnel_cohort_monthly` as one batch.
    pub fn cohort_batch(&self, stamp: &BatchStamp) -> Result<RecordBatch> {
        cohort_table(&self.cohorts(), stamp)
    }
}

fn name(names: &Interner, id: u32) -> Option<&str> {
    (id != NULL).then(|| names.name(id as usize))
}

/// `funnel_daily`'s batches in the table's order, each built from a chunk of the merged
/// groups: only that chunk's names are copied.
#[derive(Debug)]
pub struct DailyRows {
    groups: SortedGroups<DayGroup>,
    names: Interner,
    stamp: BatchStamp,
    batch_rows: usize,
}

impl DailyRows {
    fn batch(&self, groups: &[(DayGroup, Counts)]) -> Result<RecordBatch> {
        let name = |id: u32| name(&self.names, id);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(
                groups.iter().map(|(g, _)| g.day).collect::<Vec<_>>(),
            )),
            Arc::new(
                groups
                    .iter()
                    .map(|(g, _)| name(g.channel))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                groups
                    .iter()
                    .map(|(g, _)| name(g.campaign))
                    .collect::<StringArray>(),
            ),
        ];
        for i in 0..DAILY_COUNTS.len() {
            columns.push(Arc::new(
                groups.iter().map(|(_, c)| c[i]).collect::<Int64Array>(),
            ));
        }
        metric_batch("funnel_daily", &daily_schema(), columns, &self.stamp)
    }
}

impl Iterator for DailyRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.groups.next_chunk(self.batch_rows) {
            Ok(Some(chunk)) => Some(self.batch(&chunk)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

fn fold(rows: &[LeadStage]) -> Result<Funnel> {
    let mut funnel = Funnel::default();
    for r in rows {
        funnel.add(r)?;
    }
    Ok(funnel)
}

/// `funnel_daily` rows: (day, channel, campaign) → leads entering each stage that day.
pub fn daily(rows: &[LeadStage]) -> Result<BTreeMap<DailyKey, [i64; 6]>> {
    fold(rows)?.daily()
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

/// One cohort: leads created in a month in a channel, and how many reached each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cohort {
    /// Leads created (= reached `lead`), then reached warm, mql, sal, sql, customer.
    pub reached: [i64; 6],
}

/// `funnel_cohort_monthly` rows: (creation month, channel) → cohort. Leads without a
/// creation date belong to no cohort.
pub fn cohorts(rows: &[LeadStage]) -> Result<BTreeMap<(i32, Option<String>), Cohort>> {
    Ok(fold(rows)?.cohorts())
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
    fold(rows)?.cohort_batch(stamp)
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
    use crate::metrics::bounded_groups::MAX_RUNS;
    use crate::metrics::daily_groups::DEFAULT_BUDGET;
    use arrow::array::{Array, AsArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::Int64Type;

    /// (day, channel, campaign, stage index, leads), folded in this order.
    type Add<'a> = (i32, Option<&'a str>, Option<&'a str>, usize, usize);

    /// Fold `adds` into a funnel holding at most `budget` groups, interning each name when it
    /// is first seen (as `Funnel::add` does), so names keep arriving after runs were written.
    fn fold_groups(budget: usize, adds: &[Add<'_>]) -> Funnel {
        let mut funnel = Funnel::with_daily_budget(budget);
        for &(day, channel, campaign, stage, leads) in adds {
            let group = DayGroup {
                day,
                channel: id32(funnel.names.opt(channel)),
                campaign: id32(funnel.names.opt(campaign)),
            };
            for _ in 0..leads {
                funnel.daily.get(group)[stage] += 1;
                funnel.daily.bound(|| funnel.names.ranks()).unwrap();
            }
        }
        funnel
    }

    fn stamp() -> BatchStamp {
        BatchStamp {
            run_id: "r".into(),
            ingested_at_micros: 0,
        }
    }

    /// `funnel_daily`'s batches, `batch_rows` groups each.
    fn daily_batches(funnel: Funnel, batch_rows: usize) -> Vec<RecordBatch> {
        let mut rows = funnel.into_daily(&stamp()).unwrap();
        rows.batch_rows = batch_rows;
        rows.collect::<Result<Vec<_>>>().unwrap()
    }

    fn counts(batch: &RecordBatch, column: &str) -> Vec<i64> {
        let column = batch.column_by_name(column).unwrap();
        column.as_primitive::<Int64Type>().values().to_vec()
    }

    /// Groups come out by day, then channel, then campaign, nulls first and names in byte
    /// order — not in the order the names were first seen — and the same whether they were
    /// all held in memory or set aside a few at a time: `paid_social`/`a` is counted in
    /// three steps that land in different runs, and `Z` is first seen after runs holding
    /// `a`, `b` and `é` were written.
    #[test]
    fn daily_rows_are_ordered_by_name_and_the_same_within_any_budget() {
        let adds: [Add<'_>; 9] = [
            (2, Some("search"), Some("a"), 0, 1),
            (1, Some("paid_social"), Some("é"), 0, 2),
            (1, Some("paid_social"), Some("a"), 0, 3),
            (1, Some("paid_social"), Some("b"), 0, 3),
            (1, Some("search"), None, 0, 4),
            (1, None, Some("Z"), 0, 5),
            (1, Some("paid_social"), Some("Z"), 0, 6),
            (1, Some("paid_social"), Some("a"), 0, 4),
            (1, Some("paid_social"), Some("a"), 2, 1),
        ];
        let unbounded = daily_batches(fold_groups(usize::MAX, &adds), CHUNK_ROWS);
        assert_eq!(unbounded.len(), 1);
        let batch = &unbounded[0];
        // Day 1: null channel; paid_social with Z < a < b < é; search with a null campaign.
        assert_eq!(counts(batch, "new_leads"), [5, 6, 7, 3, 2, 4, 1]);
        assert_eq!(counts(batch, "new_mqls"), [0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(counts(batch, "new_sals"), [0; 7]);
        let campaigns = batch
            .column_by_name("campaign_id")
            .unwrap()
            .as_string::<i32>();
        assert!(campaigns.is_null(5));
        assert_eq!(campaigns.value(2), "a");
        let expected: Vec<[i64; 6]> = fold_groups(usize::MAX, &adds)
            .daily()
            .unwrap()
            .into_values()
            .collect();
        assert_eq!(expected.len(), 7);
        assert_eq!(expected[2], [7, 0, 1, 0, 0, 0]);

        for budget in [1, 2, 3] {
            let funnel = fold_groups(budget, &adds);
            assert!(funnel.daily.runs() > 0, "budget {budget} set nothing aside");
            let batches = daily_batches(funnel, 3);
            assert_eq!(batches.len(), 3, "budget {budget}");
            let whole = concat_batches(&daily_schema(), &batches).unwrap();
            assert_eq!(&whole, batch, "budget {budget}");
        }
    }

    /// A pseudo-random stream of leads over many days, channels and campaigns (names in
    /// byte order unlike their first sight or their numbers, nulls included) gives, within
    /// budgets that set aside hundreds of runs and merge them, the rows of a `BTreeMap`
    /// keyed by the names themselves.
    #[test]
    fn a_small_budget_gives_the_rows_of_a_map_keyed_by_name() {
        let channels = [
            None,
            Some("search"),
            Some("paid_social"),
            Some("Email"),
            Some("événement"),
        ];
        let campaigns: Vec<Option<String>> = std::iter::once(None)
            .chain((0..40).map(|k| Some(format!("camp-{k}"))))
            .collect();
        let mut state: u64 = 7;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let adds: Vec<Add<'_>> = (0..4000)
            .map(|_| {
                let day = 20_000 + next(30) as i32;
                let channel = channels[next(channels.len())];
                let campaign = campaigns[next(campaigns.len())].as_deref();
                (day, channel, campaign, next(6), 1)
            })
            .collect();
        let mut expected: BTreeMap<DailyKey, [i64; 6]> = BTreeMap::new();
        for &(day, channel, campaign, stage, leads) in &adds {
            let key = (day, channel.map(String::from), campaign.map(String::from));
            expected.entry(key).or_default()[stage] += leads as i64;
        }
        assert!(expected.len() > 2000, "{} groups", expected.len());

        let unbounded = daily_batches(fold_groups(usize::MAX, &adds), CHUNK_ROWS);
        assert_eq!(unbounded.len(), 1);
        assert_eq!(unbounded[0].num_rows(), expected.len());
        for budget in [5, 64, 1000] {
            let funnel = fold_groups(budget, &adds);
            // 4,000 leads set aside in runs of at most `budget` groups, merged into one
            // whenever they reach MAX_RUNS.
            assert!(
                (1..MAX_RUNS).contains(&funnel.daily.runs()),
                "budget {budget}: {} runs",
                funnel.daily.runs()
            );
            assert_eq!(fold_groups(budget, &adds).daily().unwrap(), expected);
            let batches = daily_batches(funnel, 97);
            assert_eq!(batches.len(), expected.len().div_ceil(97));
            let whole = concat_batches(&daily_schema(), &batches).unwrap();
            assert_eq!(whole, unbounded[0], "budget {budget}");
        }
    }

    /// The peak-memory repro of `funnel_daily` for a spend-heavy job: 6,000 campaigns over
    /// two channels × 365 days, a lead per group (2.19 M groups), folded campaign after
    /// campaign, then read out batch by batch. Run it alone under `/usr/bin/time -v` for
    /// the peak RSS.
    #[test]
    #[ignore = "a memory repro, run by hand"]
    fn many_campaigns_by_days_repro() {
        assert_eq!(many_campaigns_by_days(DEFAULT_BUDGET, false), 2_190_000);
    }

    /// The same with every group held in memory and the table kept whole, as before the
    /// budget: the peak to compare with.
    #[test]
    #[ignore = "a memory repro, run by hand"]
    fn many_campaigns_by_days_repro_unbounded() {
        assert_eq!(many_campaigns_by_days(usize::MAX, true), 2_190_000);
    }

    fn many_campaigns_by_days(budget: usize, keep_whole: bool) -> usize {
        let mut funnel = Funnel::with_daily_budget(budget);
        let channels = [Some("paid_search"), Some("paid_social")];
        for campaign in 0..6000 {
            let name = format!("campaign-{campaign}");
            let channel = id32(funnel.names.opt(channels[campaign % 2]));
            let campaign = id32(funnel.names.opt(Some(&name)));
            for day in 20_000..20_365 {
                let group = DayGroup {
                    day,
                    channel,
                    campaign,
                };
                funnel.daily.get(group)[0] += 1;
                funnel.daily.bound(|| funnel.names.ranks()).unwrap();
            }
        }
        let rows = funnel.into_daily(&stamp()).unwrap();
        if keep_whole {
            let batches = rows.collect::<Result<Vec<_>>>().unwrap();
            batches.iter().map(RecordBatch::num_rows).sum()
        } else {
            rows.map(|batch| batch.unwrap().num_rows()).sum()
        }
    }
}
