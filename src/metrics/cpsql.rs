//! `cpsql_monthly`: month × level (`total`, `channel`, `campaign`) — spend in the reporting
//! currency, leads / MQLs / SALs / SQLs entering the stage that month, and the cost per each.
//! Ad spend counts at every level (campaign by its id, channel by its channel mapped through
//! `[metrics.cpsql.channel_map]`); non-ad costs count at the total level and, when they name
//! a channel, at that channel. Zero SQLs → `cpsql` null, spend kept. An amount whose
//! currency has no rate is left out of `spend` and the row says so: `complete = false`,
//! `missing_currencies` lists them, and the cost-per figures are null rather than too low.
//! A month with no spend or cost rows at all has null cost-per figures too (unknown ≠ 0).
//! Spend and costs are folded in batch by batch; memory holds one accumulator per row.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{
    date_col, get_str, metric_batch, metric_schema, months_of, opt_str_col, str_col,
};
use super::config::{CpsqlConfig, Stage};
use super::dates::{month_of, month_of_day, next_month};
use super::fx::FxRates;
use super::intern::{FastMap, Interner};
use super::money::{div_round, money_array, money_type, money_values};
use super::stages::LeadStage;
use crate::error::Result;
use crate::normalize::BatchStamp;

/// Money gathered for one output row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Money {
    /// Converted ad spend, micros of the reporting currency.
    pub ad_spend: i128,
    /// Converted non-ad costs.
    pub other_costs: i128,
    /// Currencies that had no rate, each once, interned by the accumulator: a row per
    /// campaign and month is many rows, and a set of strings in each was most of their
    /// memory when a currency had no rate.
    missing: Vec<usize>,
    /// Whether any spend or cost row counted here at all.
    pub any: bool,
}

impl Money {
    /// Count an amount: `converted` to the reporting currency, or `None` when its currency
    /// (`currency`, interned) has no rate.
    fn add(&mut self, converted: Option<i128>, currency: Option<usize>, ad: bool) {
        self.any = true;
        match converted {
            Some(v) if ad => self.ad_spend += v,
            Some(v) => self.other_costs += v,
            None => {
                if let Some(currency) = currency
                    && !self.missing.contains(&currency)
                {
                    self.missing.push(currency);
                }
            }
        }
    }
}

/// The grain of a row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// All spend and leads of the month.
    Total,
    /// One (lead) channel; `None` for leads without a channel.
    Channel(Option<String>),
    /// One campaign id.
    Campaign(String),
}

/// `Level` with its channel or campaign interned, so that folding a row allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LevelId {
    Total,
    Channel(Option<usize>),
    Campaign(usize),
}

#[derive(Debug, Clone, Default)]
struct Row {
    money: Money,
    /// Leads, MQLs, SALs, SQLs entering the stage.
    counts: [i64; 4],
    /// Channel shown on campaign rows (interned).
    channel: Option<usize>,
}

/// The accumulator: fold spend, costs and lead stages in, then `finish`.
#[derive(Debug, Default)]
pub struct Cpsql {
    /// Channels and campaigns.
    names: Interner,
    rows: FastMap<(i32, LevelId), Row>,
}

impl Cpsql {
    fn row(&mut self, month: i32, level: LevelId) -> &mut Row {
        self.rows.entry((month, level)).or_default()
    }

    /// The interned currency of an amount that did not convert (`None` when it did).
    fn unconverted(&mut self, converted: Option<i128>, currency: &str) -> Option<usize> {
        converted.is_none().then(|| self.names.id(currency))
    }

    /// Fold in a batch of `spend`.
    pub fn add_spend(
        &mut self,
        batch: &RecordBatch,
        fx: &FxRates,
        cfg: &CpsqlConfig,
    ) -> Result<()> {
        let t = "spend";
        let dates = date_col(batch, "date", t)?;
        let campaigns = str_col(batch, "campaign_id", t)?;
        let channels = str_col(batch, "channel", t)?;
        let currencies = str_col(batch, "currency", t)?;
        let amounts = money_values(batch, "spend", t)?;
        for i in 0..batch.num_rows() {
            if dates.is_null(i) || amounts.is_null(i) {
                continue;
            }
            let day = dates.value(i);
            let month = month_of_day(day);
            let currency = get_str(currencies, i).unwrap_or("");
            let converted = fx.convert(amounts.value(i), currency, day);
            let unconverted = self.unconverted(converted, currency);
            let channel = get_str(channels, i).map(|c| self.names.id(cfg.lead_channel(c)));
            self.row(month, LevelId::Total)
                .money
                .add(converted, unconverted, true);
            self.row(month, LevelId::Channel(channel))
                .money
                .add(converted, unconverted, true);
            if let Some(campaign) = get_str(campaigns, i) {
                let campaign = self.names.id(campaign);
                let row = self.row(month, LevelId::Campaign(campaign));
                row.money.add(converted, unconverted, true);
                if row.channel.is_none() {
                    row.channel = channel;
                }
            }
        }
        Ok(())
    }

    /// Fold in a batch of `costs` (month, category, channel?, currency, amount).
    pub fn add_costs(&mut self, batch: &RecordBatch, fx: &FxRates) -> Result<()> {
        let t = "costs";
        let months = months_of(batch, t)?;
        let channels = opt_str_col(batch, "channel", t)?;
        let currencies = str_col(batch, "currency", t)?;
        let amounts = money_values(batch, "amount", t)?;
        for (i, month) in months.into_iter().enumerate() {
            let Some(month) = month else { continue };
            if amounts.is_null(i) {
                continue;
            }
            let currency = get_str(currencies, i).unwrap_or("");
            // A monthly cost converts at the rate in effect on the month's first day.
            let converted = fx.convert(amounts.value(i), currency, month);
            let unconverted = self.unconverted(converted, currency);
            self.row(month, LevelId::Total)
                .money
                .add(converted, unconverted, false);
            if let Some(channel) = channels.and_then(|c| get_str(c, i)) {
                let channel = self.names.id(channel);
                self.row(month, LevelId::Channel(Some(channel))).money.add(
                    converted,
                    unconverted,
                    false,
                );
            }
        }
        Ok(())
    }

    /// Count leads entering lead / MQL / SAL / SQL per month.
    pub fn add_leads(&mut self, rows: &[LeadStage]) {
        for r in rows {
            self.add_lead(r);
        }
    }

    /// Count one lead entering lead / MQL / SAL / SQL.
    pub fn add_lead(&mut self, r: &LeadStage) {
        let channel = self.names.opt(r.lead.channel.as_deref());
        let campaign = self.names.opt(r.lead.campaign_id.as_deref());
        for (i, stage) in [Stage::Lead, Stage::Mql, Stage::Sal, Stage::Sql]
            .into_iter()
            .enumerate()
        {
            let Some(at) = r.became(stage) else { continue };
            let month = month_of(at);
            self.row(month, LevelId::Total).counts[i] += 1;
            self.row(month, LevelId::Channel(channel)).counts[i] += 1;
            if let Some(campaign) = campaign {
                let row = self.row(month, LevelId::Campaign(campaign));
                row.counts[i] += 1;
                if row.channel.is_none() {
                    row.channel = channel;
                }
            }
        }
    }

    /// The table: total rows for every month from the first to the last with any data
    /// (so an empty month shows as zeros), channel and campaign rows where there is data.
    pub fn finish(self, reporting: &str, stamp: &BatchStamp) -> Result<RecordBatch> {
        let batches = self
            .into_batches(reporting, stamp)
            .collect::<Result<Vec<_>>>()?;
        arrow::compute::concat_batches(&schema(), &batches)
            .map_err(|e| crate::Error::encode("cpsql_monthly", e))
    }

    /// [`Cpsql::finish`] as batches of at most [`CHUNK_ROWS`] rows, each built as it is
    /// asked for: the rows grow with months × campaigns, and their columns are built a
    /// chunk at a time rather than all at once.
    pub fn into_batches(mut self, reporting: &str, stamp: &BatchStamp) -> CpsqlRows {
        let first = self.rows.keys().map(|k| k.0).min();
        let last = self.rows.keys().map(|k| k.0).max();
        if let (Some(first), Some(last)) = (first, last) {
            let mut m = first;
            while m <= last {
                self.row(m, LevelId::Total);
                m = next_month(m);
            }
        }
        // A month without a single spend or cost row (say, before the spend sources'
        // look-back) has no known cost: its cost-per figures are null, not zero.
        let months_with_money: BTreeSet<i32> = self
            .rows
            .iter()
            .filter(|((_, level), row)| *level == LevelId::Total && row.money.any)
            .map(|((month, _), _)| *month)
            .collect();
        // The output is ordered by (month, level) with the names themselves.
        let names = self.names;
        let mut rows: Vec<((i32, Level), Row)> = self
            .rows
            .into_iter()
            .map(|((month, level), row)| {
                let level = match level {
                    LevelId::Total => Level::Total,
                    LevelId::Channel(c) => Level::Channel(names.owned(c)),
                    LevelId::Campaign(c) => Level::Campaign(names.name(c).to_string()),
                };
                ((month, level), row)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        CpsqlRows {
            rows: rows.into_iter(),
            names,
            months_with_money,
            reporting: reporting.to_string(),
            stamp: stamp.clone(),
        }
    }
}

/// Rows per batch of [`Cpsql::into_batches`].
pub const CHUNK_ROWS: usize = 8_192;

/// `cpsql_monthly`'s rows in order, a batch at a time (see [`Cpsql::into_batches`]).
#[derive(Debug)]
pub struct CpsqlRows {
    rows: std::vec::IntoIter<((i32, Level), Row)>,
    names: Interner,
    months_with_money: BTreeSet<i32>,
    reporting: String,
    stamp: BatchStamp,
}

impl Iterator for CpsqlRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk: Vec<_> = self.rows.by_ref().take(CHUNK_ROWS).collect();
        (!chunk.is_empty()).then(|| self.batch(chunk))
    }
}

impl CpsqlRows {
    fn batch(&self, rows: Vec<((i32, Level), Row)>) -> Result<RecordBatch> {
        let names = &self.names;
        let n = rows.len();
        let mut month = Vec::with_capacity(n);
        let mut level = Vec::with_capacity(n);
        let mut channel = Vec::with_capacity(n);
        let mut campaign = Vec::with_capacity(n);
        let (mut ad, mut other, mut spend) = (vec![], vec![], vec![]);
        let mut counts: [Vec<i64>; 4] = Default::default();
        let mut per: [Vec<Option<i128>>; 4] = Default::default();
        let (mut complete, mut missing) = (vec![], vec![]);
        for ((m, lvl), row) in rows {
            month.push(m);
            let (name, ch, camp) = match lvl {
                Level::Total => ("total", None, None),
                Level::Channel(c) => ("channel", c, None),
                Level::Campaign(c) => ("campaign", names.owned(row.channel), Some(c)),
            };
            level.push(name);
            channel.push(ch);
            campaign.push(camp);
            let total = row.money.ad_spend + row.money.other_costs;
            ad.push(Some(row.money.ad_spend));
            other.push(Some(row.money.other_costs));
            spend.push(Some(total));
            let is_complete = row.money.missing.is_empty();
            let known = is_complete && self.months_with_money.contains(&m);
            for i in 0..4 {
                counts[i].push(row.counts[i]);
                per[i].push(
                    (known && row.counts[i] > 0)
                        .then(|| div_round(total, i128::from(row.counts[i]))),
                );
            }
            complete.push(is_complete);
            missing.push((!is_complete).then(|| {
                let mut codes: Vec<&str> =
                    row.money.missing.iter().map(|c| names.name(*c)).collect();
                codes.sort_unstable();
                codes.join(",")
            }));
        }
        let t = "cpsql_monthly";
        let [leads, mqls, sals, sqls] = counts;
        let [per_lead, per_mql, per_sal, per_sql] = per;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(month)),
            Arc::new(StringArray::from(level)),
            Arc::new(StringArray::from(channel)),
            Arc::new(StringArray::from(campaign)),
            Arc::new(StringArray::from(vec![self.reporting.as_str(); n])),
            money_array(ad, t)?,
            money_array(other, t)?,
            money_array(spend, t)?,
            Arc::new(Int64Array::from(leads)),
            Arc::new(Int64Array::from(mqls)),
            Arc::new(Int64Array::from(sals)),
            Arc::new(Int64Array::from(sqls)),
            money_array(per_lead, t)?,
            money_array(per_mql, t)?,
            money_array(per_sal, t)?,
            money_array(per_sql, t)?,
            Arc::new(BooleanArray::from(complete)),
            Arc::new(StringArray::from(missing)),
        ];
        metric_batch(t, &schema(), columns, &self.stamp)
    }
}

/// The `cpsql_monthly` schema.
pub fn schema() -> SchemaRef {
    let money = |n: &str, null| Field::new(n, money_type(), null);
    let count = |n: &str| Field::new(n, DataType::Int64, false);
    metric_schema(vec![
        Field::new("month", DataType::Date32, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("campaign_id", DataType::Utf8, true),
        Field::new("currency", DataType::Utf8, false),
        money("ad_spend", false),
        money("other_costs", false),
        money("spend", false),
        count("leads"),
        count("mqls"),
        count("sals"),
        count("sqls"),
        money("cost_per_lead", true),
        money("cost_per_mql", true),
        money("cost_per_sal", true),
        money("cpsql", true),
        Field::new("complete", DataType::Boolean, false),
        Field::new("missing_currencies", DataType::Utf8, true),
    ])
}
