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

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int32Array, Int64Array, ListBuilder,
    StringArray, UInt8Array, UInt32Array, UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, SchemaRef, UInt8Type, UInt32Type};
use arrow::record_batch::RecordBatch;

use super::arrays::{
    date_col, get_str, metric_batch, metric_schema, months_of, opt_str_col, str_col,
};
use super::bounded_groups::{BoundedGroups, GroupKind, SortKey, SortedGroups};
use super::config::{CpsqlConfig, Stage};
use super::daily_groups::{NULL, rank_or_null};
use super::dates::{month_of, month_of_day, next_month};
use super::fx::FxRates;
use super::intern::Interner;
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
    missing: Vec<u32>,
    /// Whether any spend or cost row counted here at all.
    pub any: bool,
}

impl Money {
    /// Count an amount: `converted` to the reporting currency, or `None` when its currency
    /// (`currency`, interned) has no rate.
    fn add(&mut self, converted: Option<i128>, currency: u32, ad: bool) {
        self.any = true;
        match converted {
            Some(v) if ad => self.ad_spend += v,
            Some(v) => self.other_costs += v,
            None => self.miss(currency),
        }
    }

    fn miss(&mut self, currency: u32) {
        if !self.missing.contains(&currency) {
            self.missing.push(currency);
        }
    }
}

/// A row's grain, with its channel or campaign interned ([`NULL`]: leads without a
/// channel), so that folding a row allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Level {
    /// All spend and leads of the month.
    Total,
    /// One (lead) channel.
    Channel(u32),
    /// One campaign id.
    Campaign(u32),
}

impl Level {
    /// The level's code in a run and its id.
    fn code(self) -> (u8, u32) {
        match self {
            Level::Total => (0, NULL),
            Level::Channel(c) => (1, c),
            Level::Campaign(c) => (2, c),
        }
    }

    fn of_code(code: u8, id: u32) -> Option<Level> {
        match code {
            0 => Some(Level::Total),
            1 => Some(Level::Channel(id)),
            2 => Some(Level::Campaign(id)),
            _ => None,
        }
    }
}

/// A `cpsql_monthly` row being folded.
#[derive(Debug, Clone)]
pub(super) struct Row {
    money: Money,
    /// Leads, MQLs, SALs, SQLs entering the stage.
    counts: [i64; 4],
    /// Channel shown on campaign rows (interned; [`NULL`] until one is seen).
    channel: u32,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            money: Money::default(),
            counts: [0; 4],
            channel: NULL,
        }
    }
}

/// `cpsql_monthly`'s rows as [`BoundedGroups`] hold them: months × campaigns grow with the
/// spend (a year of 14,000 campaigns is 170,000 rows).
#[derive(Debug)]
pub(super) struct CpsqlGroup;

impl GroupKind for CpsqlGroup {
    const TABLE: &'static str = "cpsql_monthly";
    type Key = (i32, Level);
    type Value = Row;
    /// About 5 MB of map: a year of ~4,000 campaigns stays in memory.
    const DEFAULT_BUDGET: usize = 50_000;

    /// Month, then total, channels (no channel first) and campaigns, names in byte order.
    fn sort_key(&(month, level): &(i32, Level), ranks: &[u32]) -> SortKey {
        let (code, id) = level.code();
        (month, u32::from(code), rank_or_null(id, ranks))
    }

    fn merge(row: &mut Row, later: Row) {
        row.money.ad_spend += later.money.ad_spend;
        row.money.other_costs += later.money.other_costs;
        row.money.any |= later.money.any;
        for currency in later.money.missing {
            row.money.miss(currency);
        }
        for (count, add) in row.counts.iter_mut().zip(later.counts) {
            *count += add;
        }
        // The first channel seen for a campaign is the one shown; earlier runs saw first.
        if row.channel == NULL {
            row.channel = later.channel;
        }
    }

    fn fields() -> Vec<Field> {
        let int64 = |n: &str| Field::new(n, DataType::Int64, false);
        let item = Field::new_list_field(DataType::UInt32, false);
        let mut fields = vec![
            Field::new("month", DataType::Int32, false),
            Field::new("level", DataType::UInt8, false),
            Field::new("id", DataType::UInt32, false),
            // i128 money as its high and low 64 bits.
            int64("ad_high"),
            int64("ad_low"),
            int64("other_high"),
            int64("other_low"),
            Field::new("any", DataType::Boolean, false),
            Field::new("missing", DataType::List(Arc::new(item)), false),
            Field::new("channel", DataType::UInt32, false),
        ];
        fields.extend((0..4).map(|i| int64(&format!("n{i}"))));
        fields
    }

    fn columns(groups: &[((i32, Level), Row)]) -> Vec<ArrayRef> {
        let high = |v: i128| (v >> 64) as i64;
        let low = |v: i128| v as u64 as i64;
        let money = |f: &dyn Fn(&Money) -> i64| -> ArrayRef {
            Arc::new(
                groups
                    .iter()
                    .map(|(_, r)| f(&r.money))
                    .collect::<Int64Array>(),
            )
        };
        let item = Field::new_list_field(DataType::UInt32, false);
        let mut missing = ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(item));
        for (_, row) in groups {
            missing.values().append_slice(&row.money.missing);
            missing.append(true);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(groups.iter().map(|((m, _), _)| *m).collect::<Int32Array>()),
            Arc::new(
                groups
                    .iter()
                    .map(|((_, l), _)| l.code().0)
                    .collect::<UInt8Array>(),
            ),
            Arc::new(
                groups
                    .iter()
                    .map(|((_, l), _)| l.code().1)
                    .collect::<UInt32Array>(),
            ),
            money(&|m| high(m.ad_spend)),
            money(&|m| low(m.ad_spend)),
            money(&|m| high(m.other_costs)),
            money(&|m| low(m.other_costs)),
            Arc::new(
                groups
                    .iter()
                    .map(|(_, r)| Some(r.money.any))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(missing.finish()),
            Arc::new(
                groups
                    .iter()
                    .map(|(_, r)| r.channel)
                    .collect::<UInt32Array>(),
            ),
        ];
        for i in 0..4 {
            columns.push(Arc::new(
                groups
                    .iter()
                    .map(|(_, r)| r.counts[i])
                    .collect::<Int64Array>(),
            ));
        }
        columns
    }

    fn groups(batch: &RecordBatch) -> Option<Vec<((i32, Level), Row)>> {
        (batch.num_columns() == 14).then_some(())?;
        let int64 = |i: usize| batch.column(i).as_primitive_opt::<Int64Type>();
        let months = batch.column(0).as_primitive_opt::<Int32Type>()?;
        let codes = batch.column(1).as_primitive_opt::<UInt8Type>()?;
        let ids = batch.column(2).as_primitive_opt::<UInt32Type>()?;
        let [ad_high, ad_low, other_high, other_low] = [int64(3)?, int64(4)?, int64(5)?, int64(6)?];
        let any = batch.column(7).as_boolean_opt()?;
        let missing = batch.column(8).as_list_opt::<i32>()?;
        let channels = batch.column(9).as_primitive_opt::<UInt32Type>()?;
        let counts = [int64(10)?, int64(11)?, int64(12)?, int64(13)?];
        let money = |high: i64, low: i64| (i128::from(high) << 64) | i128::from(low as u64);
        (0..batch.num_rows())
            .map(|i| {
                let level = Level::of_code(codes.value(i), ids.value(i))?;
                let currencies = missing.value(i);
                let money = Money {
                    ad_spend: money(ad_high.value(i), ad_low.value(i)),
                    other_costs: money(other_high.value(i), other_low.value(i)),
                    missing: currencies
                        .as_primitive_opt::<UInt32Type>()?
                        .values()
                        .to_vec(),
                    any: any.value(i),
                };
                let row = Row {
                    money,
                    counts: std::array::from_fn(|n| counts[n].value(i)),
                    channel: channels.value(i),
                };
                Some(((months.value(i), level), row))
            })
            .collect()
    }
}

/// The accumulator: fold spend, costs and lead stages in, then `finish`.
#[derive(Debug, Default)]
pub struct Cpsql {
    /// Channels, campaigns and currencies.
    names: Interner,
    rows: BoundedGroups<CpsqlGroup>,
    /// The first and last month with any data.
    months: Option<(i32, i32)>,
    /// Months with a spend or cost row (in which case the total row has money).
    months_with_money: BTreeSet<i32>,
}

impl Cpsql {
    /// An accumulator holding at most `rows` rows in memory (the default holds
    /// `CpsqlGroup::DEFAULT_BUDGET`); past that they go to temporary files.
    pub fn with_budget(rows: usize) -> Self {
        Cpsql {
            rows: BoundedGroups::new(rows),
            ..Cpsql::default()
        }
    }

    /// Runs of rows set aside on disk now.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.rows.runs()
    }

    fn row(&mut self, month: i32, level: Level) -> &mut Row {
        self.rows.get((month, level))
    }

    fn id(&mut self, name: &str) -> u32 {
        u32::try_from(self.names.id(name)).expect("fewer than 2^32 names")
    }

    fn saw_month(&mut self, month: i32, money: bool) {
        self.months = Some(match self.months {
            None => (month, month),
            Some((first, last)) => (first.min(month), last.max(month)),
        });
        if money {
            self.months_with_money.insert(month);
        }
    }

    /// Set rows aside when the budget is reached.
    fn bound(&mut self) -> Result<()> {
        let names = &self.names;
        self.rows.bound(|| names.ranks())
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
            self.saw_month(month, true);
            let currency = get_str(currencies, i).unwrap_or("");
            let converted = fx.convert(amounts.value(i), currency, day);
            let currency = if converted.is_none() {
                self.id(currency)
            } else {
                NULL
            };
            let channel = match get_str(channels, i) {
                Some(c) => self.id(cfg.lead_channel(c)),
                None => NULL,
            };
            self.row(month, Level::Total)
                .money
                .add(converted, currency, true);
            self.row(month, Level::Channel(channel))
                .money
                .add(converted, currency, true);
            if let Some(campaign) = get_str(campaigns, i) {
                let campaign = self.id(campaign);
                let row = self.row(month, Level::Campaign(campaign));
                row.money.add(converted, currency, true);
                if row.channel == NULL {
                    row.channel = channel;
                }
            }
            self.bound()?;
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
            self.saw_month(month, true);
            let currency = get_str(currencies, i).unwrap_or("");
            // A monthly cost converts at the rate in effect on the month's first day.
            let converted = fx.convert(amounts.value(i), currency, month);
            let currency = if converted.is_none() {
                self.id(currency)
            } else {
                NULL
            };
            self.row(month, Level::Total)
                .money
                .add(converted, currency, false);
            if let Some(channel) = channels.and_then(|c| get_str(c, i)) {
                let channel = self.id(channel);
                self.row(month, Level::Channel(channel))
                    .money
                    .add(converted, currency, false);
            }
            self.bound()?;
        }
        Ok(())
    }

    /// Count leads entering lead / MQL / SAL / SQL per month.
    pub fn add_leads(&mut self, rows: &[LeadStage]) -> Result<()> {
        rows.iter().try_for_each(|r| self.add_lead(r))
    }

    /// Count one lead entering lead / MQL / SAL / SQL.
    pub fn add_lead(&mut self, r: &LeadStage) -> Result<()> {
        let channel = r.lead.channel.as_deref().map_or(NULL, |c| self.id(c));
        let campaign = r.lead.campaign_id.as_deref().map(|c| self.id(c));
        for (i, stage) in [Stage::Lead, Stage::Mql, Stage::Sal, Stage::Sql]
            .into_iter()
            .enumerate()
        {
            let Some(at) = r.became(stage) else { continue };
            let month = month_of(at);
            self.saw_month(month, false);
            self.row(month, Level::Total).counts[i] += 1;
            self.row(month, Level::Channel(channel)).counts[i] += 1;
            if let Some(campaign) = campaign {
                let row = self.row(month, Level::Campaign(campaign));
                row.counts[i] += 1;
                if row.channel == NULL {
                    row.channel = channel;
                }
            }
        }
        self.bound()
    }

    /// The table: total rows for every month from the first to the last with any data
    /// (so an empty month shows as zeros), channel and campaign rows where there is data.
    pub fn finish(self, reporting: &str, stamp: &BatchStamp) -> Result<RecordBatch> {
        let batches = self
            .into_batches(reporting, stamp)?
            .collect::<Result<Vec<_>>>()?;
        arrow::compute::concat_batches(&schema(), &batches)
            .map_err(|e| crate::Error::encode("cpsql_monthly", e))
    }

    /// [`Cpsql::finish`] as batches of at most [`CHUNK_ROWS`] rows in the table's order
    /// (month, then total, channels, campaigns, names in byte order), each built as it is
    /// asked for from the rows merged back from memory and any set aside.
    pub fn into_batches(mut self, reporting: &str, stamp: &BatchStamp) -> Result<CpsqlRows> {
        if let Some((first, last)) = self.months {
            let mut m = first;
            while m <= last {
                self.row(m, Level::Total);
                m = next_month(m);
            }
        }
        Ok(CpsqlRows {
            rows: self.rows.finish(self.names.ranks())?,
            names: self.names,
            months_with_money: self.months_with_money,
            reporting: reporting.to_string(),
            stamp: stamp.clone(),
        })
    }
}

/// Rows per batch of [`Cpsql::into_batches`].
pub const CHUNK_ROWS: usize = 8_192;

/// `cpsql_monthly`'s rows in order, a batch at a time (see [`Cpsql::into_batches`]).
#[derive(Debug)]
pub struct CpsqlRows {
    rows: SortedGroups<CpsqlGroup>,
    names: Interner,
    /// A month without a single spend or cost row (say, before the spend sources'
    /// look-back) has no known cost: its cost-per figures are null, not zero.
    months_with_money: BTreeSet<i32>,
    reporting: String,
    stamp: BatchStamp,
}

impl Iterator for CpsqlRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rows.next_chunk(CHUNK_ROWS) {
            Ok(chunk) => chunk.map(|rows| self.batch(rows)),
            Err(e) => Some(Err(e)),
        }
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
        let name = |id: u32| (id != NULL).then(|| names.name(id as usize));
        for ((m, lvl), row) in rows {
            month.push(m);
            let (level_name, ch, camp) = match lvl {
                Level::Total => ("total", None, None),
                Level::Channel(c) => ("channel", name(c), None),
                Level::Campaign(c) => ("campaign", name(row.channel), name(c)),
            };
            level.push(level_name);
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
                let mut codes: Vec<&str> = row
                    .money
                    .missing
                    .iter()
                    .map(|c| names.name(*c as usize))
                    .collect();
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
