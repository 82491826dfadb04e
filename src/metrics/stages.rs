//! `lead_stages` and `lead_stage_transitions`: every (non-deleted) lead classified by the
//! job's stage rules (first match wins, `stage_reason` names the rule), scored by its scoring
//! rules, ranked within its owner, with the time it became each stage — the CRM's date where
//! it has one, else the first run that observed the stage (from the previous `lead_stages`).
//! A lead whose stage differs from the previous run's is a transition.
//!
//! Leads are staged one at a time from their batches (`Stager`), so no table of leads is
//! ever held; `priority_rank` needs all of an owner's leads, so it takes two passes
//! (`OwnerScores`, then `OwnerRanks`). Only the previous run's state is kept per lead, packed.
//! The rules' conditions are compiled once per stager (`conditions::Test`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanArray, Decimal128Array, Float64Array, Float64Builder,
    Int64Array, Int64Builder, MapArray, StringArray, StringBuilder, StructArray,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{
    bool_col, decimal_col, get_bool, get_i64, get_str, get_ts, i64_col, metric_batch,
    metric_schema, opt_str_col, opt_ts_col, str_col, timestamp_type, ts_col,
};
use super::conditions::{Context, Test};
use super::config::{PATH, ScoreKind, ScoringConfig, Stage, StagesConfig};
use super::dates::MICROS_PER_DAY;
use super::intent::IntentIndex;
use super::intern::Interner;
use super::lead::Lead;
use crate::error::{Error, Result};
use crate::normalize::{BatchStamp, CustomValue};

/// The stages with a `became_<stage>_at` column, in path order.
pub const BECAME: [Stage; 5] = [
    Stage::Warm,
    Stage::Mql,
    Stage::Sal,
    Stage::Sql,
    Stage::Customer,
];

/// What the previous run wrote for one lead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviousStage {
    /// Its stage then.
    pub stage: Stage,
    /// When it entered that stage.
    pub entered_at: Option<i64>,
    /// `became_<stage>_at` in `BECAME` order.
    pub became: [Option<i64>; 5],
}

/// One lead in `PreviousStages`: 24 bytes, its dates in the shared date list.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The 128-bit hash of (source_system, lead_id).
    key: [u64; 2],
    /// Where its dates start in `PreviousStages::dates`.
    first_date: u32,
    stage: Stage,
    /// Which dates it has: bit 0 `entered_at`, bit 1 + i `became[i]`; the dates follow in
    /// that order.
    present: u8,
}

/// Previous state by (source_system, lead_id). The table has an entry for every lead of the
/// job, so it is kept compact — 24 bytes a lead plus 8 per date it has, rather than two
/// owned strings and six `Option<i64>` in a hash table (~200 MiB at a million leads):
/// entries are keyed by a 128-bit hash of (system, id), two independently keyed SipHashes
/// (two of ten million leads share a key with a chance of ~1e-25), sorted by it, and found
/// through a directory of the hash's top bits and a binary search among a few entries.
/// Build it with `PreviousStagesBuilder`.
#[derive(Debug, Clone, Default)]
pub struct PreviousStages {
    hashers: [RandomState; 2],
    /// Sorted by key, one per key.
    entries: Vec<Entry>,
    dates: Vec<i64>,
    /// `entries[directory[b]..directory[b + 1]]` are those whose key's top `bits` bits are b.
    directory: Vec<u32>,
    bits: u32,
}

impl PreviousStages {
    /// No previous state (a first run).
    pub fn new() -> Self {
        Self::default()
    }

    fn key(hashers: &[RandomState; 2], source_system: &str, lead_id: &str) -> [u64; 2] {
        hashers
            .each_ref()
            .map(|h| h.hash_one((source_system, lead_id)))
    }

    /// A lead's previous state.
    pub fn get(&self, source_system: &str, lead_id: &str) -> Option<PreviousStage> {
        if self.entries.is_empty() {
            return None;
        }
        let key = Self::key(&self.hashers, source_system, lead_id);
        let bucket = key[0].checked_shr(64 - self.bits).unwrap_or(0) as usize;
        let (from, to) = (self.directory[bucket], self.directory[bucket + 1]);
        let candidates = &self.entries[from as usize..to as usize];
        let i = candidates.binary_search_by(|e| e.key.cmp(&key)).ok()?;
        let e = &candidates[i];
        let mut dates = self.dates[e.first_date as usize..].iter();
        let mut date = |bit: usize| {
            (e.present & (1 << bit) != 0)
                .then(|| dates.next().copied())
                .flatten()
        };
        let entered_at = date(0);
        let became = std::array::from_fn(|i| date(i + 1));
        Some(PreviousStage {
            stage: e.stage,
            entered_at,
            became,
        })
    }

    /// Leads with a previous state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Is there no previous state at all?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds `PreviousStages` from the previous run's `lead_stages`, batch by batch.
#[derive(Debug, Default)]
pub struct PreviousStagesBuilder {
    hashers: [RandomState; 2],
    entries: Vec<Entry>,
    dates: Vec<i64>,
}

impl PreviousStagesBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder for `leads` leads: their entries allocated once rather than doubled
    /// as they come (a doubling holds the old and new list at once).
    pub fn with_capacity(leads: usize) -> Self {
        PreviousStagesBuilder {
            entries: Vec::with_capacity(leads),
            // Most leads have an entry date and one or two `became_*` dates.
            dates: Vec::with_capacity(leads.saturating_mul(2)),
            ..Self::default()
        }
    }

    /// Record a lead's previous state; a later entry for the same lead replaces it.
    pub fn insert(
        &mut self,
        source_system: &str,
        lead_id: &str,
        stage: &PreviousStage,
    ) -> Result<()> {
        let first_date = u32::try_from(self.dates.len())
            .map_err(|_| Error::encode("lead_stages", "too many previous stage dates"))?;
        let mut present = 0;
        for (bit, date) in std::iter::once(stage.entered_at)
            .chain(stage.became)
            .enumerate()
        {
            if let Some(d) = date {
                present |= 1 << bit;
                self.dates.push(d);
            }
        }
        self.entries.push(Entry {
            key: PreviousStages::key(&self.hashers, source_system, lead_id),
            first_date,
            stage: stage.stage,
            present,
        });
        Ok(())
    }

    /// Fold in a batch of the previous run's `lead_stages`.
    pub fn add_batch(&mut self, b: &RecordBatch) -> Result<()> {
        let t = "lead_stages";
        let system = str_col(b, "source_system", t)?;
        let id = str_col(b, "lead_id", t)?;
        let stage = str_col(b, "stage", t)?;
        let entered = ts_col(b, "stage_entered_at", t)?;
        let became: Vec<_> = BECAME
            .iter()
            .map(|s| ts_col(b, &format!("became_{}_at", s.as_str()), t))
            .collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            let (Some(system), Some(id), Some(stage)) = (
                get_str(system, i),
                get_str(id, i),
                get_str(stage, i).and_then(Stage::parse),
            ) else {
                continue;
            };
            let mut dates = [None; 5];
            for (slot, column) in dates.iter_mut().zip(&became) {
                *slot = get_ts(column, i);
            }
            self.insert(
                system,
                id,
                &PreviousStage {
                    stage,
                    entered_at: get_ts(entered, i),
                    became: dates,
                },
            )?;
        }
        Ok(())
    }

    /// The finished table.
    pub fn finish(self) -> PreviousStages {
        let PreviousStagesBuilder {
            hashers,
            mut entries,
            mut dates,
        } = self;
        // Stable: of a lead's entries, the last inserted ends up last and is kept.
        entries.sort_by_key(|e| e.key);
        entries.dedup_by(|later, kept| {
            let same = later.key == kept.key;
            if same {
                *kept = *later;
            }
            same
        });
        entries.shrink_to_fit();
        dates.shrink_to_fit();
        // About four entries a bucket.
        let bits = (entries.len() / 4)
            .next_power_of_two()
            .trailing_zeros()
            .min(24);
        let mut directory = vec![0_u32; (1 << bits) + 1];
        for e in &entries {
            let bucket = e.key[0].checked_shr(64 - bits).unwrap_or(0) as usize;
            directory[bucket + 1] += 1;
        }
        for b in 1..directory.len() {
            directory[b] += directory[b - 1];
        }
        PreviousStages {
            hashers,
            entries,
            dates,
            directory,
            bits,
        }
    }
}

/// The `lead_stages` columns `PreviousStagesBuilder::add_batch` reads (a projection for readers).
pub const PREVIOUS_COLUMNS: [&str; 9] = [
    "source_system",
    "lead_id",
    "stage",
    "stage_entered_at",
    "became_warm_at",
    "became_mql_at",
    "became_sal_at",
    "became_sql_at",
    "became_customer_at",
];

/// Read the previous run's `lead_stages` batches.
pub fn previous_stages(batches: &[RecordBatch]) -> Result<PreviousStages> {
    let mut out = PreviousStagesBuilder::new();
    for b in batches {
        out.add_batch(b)?;
    }
    Ok(out.finish())
}

/// The `leads` columns the metrics read (a projection for readers: the rest is not decoded);
/// the last two, the e-mail's domain and hash, only when intent signals join by them (see
/// [`lead_columns`]).
pub const LEAD_COLUMNS: [&str; 35] = [
    "source_system",
    "lead_id",
    "owner_id",
    "channel",
    "campaign_id",
    "country",
    "job_title",
    "authority",
    "lifecycle_stage_raw",
    "lead_status_raw",
    "vendor_score",
    "content_downloads",
    "web_visits",
    "email_engagements",
    "demo_requested",
    "budget_confirmed",
    "need_confirmed",
    "timeline_confirmed",
    "is_deleted",
    "created_at",
    "mql_at",
    "sal_at",
    "sal_rejected_at",
    "sql_at",
    "opportunity_at",
    "customer_at",
    "first_contacted_at",
    "last_intent_at",
    "industry",
    "employee_count",
    "annual_revenue",
    "annual_revenue_currency",
    "custom",
    "email_domain",
    "email_hash",
];

/// [`LEAD_COLUMNS`], without `email_domain` and `email_hash` when no intent signal joins by
/// them (`intent` false): the hash is the largest column of `leads` (64 bytes a lead, 44 % of
/// the file at 1 M), and [`LeadColumns::without_emails`] would not look at either.
pub fn lead_columns(intent: bool) -> &'static [&'static str] {
    if intent {
        &LEAD_COLUMNS
    } else {
        &LEAD_COLUMNS[..LEAD_COLUMNS.len() - 2]
    }
}

/// The columns of a `lead_stages` batch of pass 1 that folding its rows into the
/// aggregates reads (`LeadAggregates::fold` in `metrics`), looked up and typed once per batch.
#[derive(Debug)]
pub struct StagedColumns<'a> {
    owner: &'a StringArray,
    channel: &'a StringArray,
    campaign: &'a StringArray,
    created: &'a TimestampMicrosecondArray,
    stage: &'a StringArray,
    score: &'a Int64Array,
    became: [&'a TimestampMicrosecondArray; 5],
    rejected: &'a TimestampMicrosecondArray,
    contacted: &'a TimestampMicrosecondArray,
}

impl<'a> StagedColumns<'a> {
    /// The columns of `b`, or an error naming the first missing or mistyped one.
    pub fn new(b: &'a RecordBatch) -> Result<Self> {
        let t = "lead_stages";
        let mut became = Vec::with_capacity(BECAME.len());
        for stage in BECAME {
            became.push(ts_col(b, &format!("became_{}_at", stage.as_str()), t)?);
        }
        Ok(StagedColumns {
            owner: str_col(b, "owner_id", t)?,
            channel: str_col(b, "channel", t)?,
            campaign: str_col(b, "campaign_id", t)?,
            created: ts_col(b, "created_at", t)?,
            stage: str_col(b, "stage", t)?,
            score: i64_col(b, "score", t)?,
            became: became
                .try_into()
                .map_err(|_| Error::encode(t, "the became_*_at columns"))?,
            rejected: ts_col(b, "sal_rejected_at", t)?,
            contacted: ts_col(b, "first_contacted_at", t)?,
        })
    }

    /// Put row `i` into `row`: the members the aggregates read (owner, channel, campaign,
    /// creation, stage, score, the dates it became each stage, rejection and first
    /// contact), reusing its buffers. The row's other members are left as they were.
    pub fn fill(&self, i: usize, row: &mut LeadStage) -> Result<()> {
        let stage = self.stage.value(i);
        row.stage = Stage::parse(stage)
            .ok_or_else(|| Error::encode("lead_stages", format!("unknown stage {stage:?}")))?;
        row.score = self.score.value(i);
        for (slot, column) in row.became.iter_mut().zip(self.became) {
            *slot = get_ts(column, i);
        }
        let lead = &mut row.lead;
        set_opt(&mut lead.owner_id, get_str(self.owner, i));
        set_opt(&mut lead.channel, get_str(self.channel, i));
        set_opt(&mut lead.campaign_id, get_str(self.campaign, i));
        lead.created_at = get_ts(self.created, i);
        lead.sal_rejected_at = get_ts(self.rejected, i);
        lead.first_contacted_at = get_ts(self.contacted, i);
        Ok(())
    }
}

/// The columns of one `leads` batch, looked up and typed once per batch.
#[derive(Debug)]
pub struct LeadColumns<'a> {
    rows: usize,
    system: &'a StringArray,
    id: &'a StringArray,
    owner: &'a StringArray,
    channel: &'a StringArray,
    campaign: &'a StringArray,
    country: &'a StringArray,
    title: &'a StringArray,
    authority: &'a StringArray,
    lifecycle: &'a StringArray,
    status: &'a StringArray,
    vendor_score: &'a Int64Array,
    downloads: &'a Int64Array,
    visits: &'a Int64Array,
    emails: &'a Int64Array,
    demo: &'a BooleanArray,
    budget: &'a BooleanArray,
    need: &'a BooleanArray,
    timeline: &'a BooleanArray,
    deleted: &'a BooleanArray,
    created: &'a TimestampMicrosecondArray,
    mql: &'a TimestampMicrosecondArray,
    sal: &'a TimestampMicrosecondArray,
    rejected: &'a TimestampMicrosecondArray,
    sql: &'a TimestampMicrosecondArray,
    opportunity: &'a TimestampMicrosecondArray,
    customer: &'a TimestampMicrosecondArray,
    contacted: &'a TimestampMicrosecondArray,
    /// Files written before the column existed have no intent date.
    intent: Option<&'a TimestampMicrosecondArray>,
    /// Join third-party intent (optional: a projection may leave them out).
    domain: Option<&'a StringArray>,
    email_hash: Option<&'a StringArray>,
    /// Firmographics and custom properties; files written before them lack the columns.
    icp: IcpColumns<'a>,
}

/// The firmographic and custom-property columns of one `leads` batch, each absent from
/// files written before it existed.
#[derive(Debug, Default)]
struct IcpColumns<'a> {
    industry: Option<&'a StringArray>,
    employees: Option<&'a Int64Array>,
    revenue: Option<&'a Decimal128Array>,
    currency: Option<&'a StringArray>,
    custom: Option<CustomColumns<'a>>,
}

/// `leads.custom` taken apart: per row, the entries `offsets[i]..offsets[i + 1]`.
#[derive(Debug)]
struct CustomColumns<'a> {
    map: &'a MapArray,
    keys: &'a StringArray,
    string: Option<&'a StringArray>,
    number: Option<&'a Float64Array>,
    boolean: Option<&'a BooleanArray>,
    timestamp: Option<&'a TimestampMicrosecondArray>,
}

impl<'a> IcpColumns<'a> {
    fn new(b: &'a RecordBatch) -> Result<Self> {
        let t = "leads";
        let present = |name: &str| b.column_by_name(name).is_some();
        let custom = match b.column_by_name("custom") {
            None => None,
            Some(column) => {
                let wrong = || Error::encode(t, "column `custom` is not a map of structs");
                let map = column
                    .as_any()
                    .downcast_ref::<MapArray>()
                    .ok_or_else(wrong)?;
                let keys = map
                    .keys()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(wrong)?;
                let values = map
                    .values()
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or_else(wrong)?;
                let field = |name: &str| values.column_by_name(name).map(|c| c.as_any());
                Some(CustomColumns {
                    map,
                    keys,
                    string: field("string").and_then(|c| c.downcast_ref()),
                    number: field("number").and_then(|c| c.downcast_ref()),
                    boolean: field("boolean").and_then(|c| c.downcast_ref()),
                    timestamp: field("timestamp").and_then(|c| c.downcast_ref()),
                })
            }
        };
        Ok(IcpColumns {
            industry: opt_str_col(b, "industry", t)?,
            employees: if present("employee_count") {
                Some(i64_col(b, "employee_count", t)?)
            } else {
                None
            },
            revenue: if present("annual_revenue") {
                Some(decimal_col(b, "annual_revenue", t)?)
            } else {
                None
            },
            currency: opt_str_col(b, "annual_revenue_currency", t)?,
            custom,
        })
    }

    /// Overwrite the firmographics and custom properties of `lead` with row `i`.
    fn fill(&self, i: usize, lead: &mut Lead) {
        set_opt(
            &mut lead.industry,
            self.industry.and_then(|a| get_str(a, i)),
        );
        lead.employee_count = self.employees.and_then(|a| get_i64(a, i));
        lead.annual_revenue = self
            .revenue
            .and_then(|a| (!a.is_null(i)).then(|| a.value(i)));
        set_opt(
            &mut lead.annual_revenue_currency,
            self.currency.and_then(|a| get_str(a, i)),
        );
        // The entries overwrite the previous lead's in place (no allocation per lead once
        // the buffers are warm), then the rest is cut off.
        let mut kept = 0;
        if let Some(c) = &self.custom
            && !c.map.is_null(i)
        {
            let offsets = c.map.value_offsets();
            for e in offsets[i] as usize..offsets[i + 1] as usize {
                let Some(name) = get_str(c.keys, e) else {
                    continue;
                };
                let text = c.string.and_then(|a| get_str(a, e));
                let other = if text.is_some() {
                    None
                } else if let Some(v) = c.number.and_then(|a| (!a.is_null(e)).then(|| a.value(e))) {
                    Some(CustomValue::Number(v))
                } else if let Some(v) = c.boolean.and_then(|a| get_bool(a, e)) {
                    Some(CustomValue::Bool(v))
                } else {
                    c.timestamp
                        .and_then(|a| get_ts(a, e))
                        .map(CustomValue::Timestamp)
                };
                if text.is_none() && other.is_none() {
                    continue;
                }
                if kept == lead.custom.len() {
                    lead.custom.push((String::new(), CustomValue::Bool(false)));
                }
                let (slot_name, slot_value) = &mut lead.custom[kept];
                set(slot_name, name);
                match (text, other, slot_value) {
                    (Some(t), _, CustomValue::Str(buffer)) => set(buffer, t),
                    (Some(t), _, slot) => *slot = CustomValue::Str(t.to_string()),
                    (None, Some(v), slot) => *slot = v,
                    (None, None, _) => {}
                }
                kept += 1;
            }
        }
        lead.custom.truncate(kept);
    }
}

/// Overwrite `slot` with `value`, reusing its buffer.
fn set(slot: &mut String, value: &str) {
    slot.clear();
    slot.push_str(value);
}

/// Overwrite `slot` with `value`, reusing its buffer when both are set.
fn set_opt(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(s), Some(v)) => set(s, v),
        (_, v) => *slot = v.map(str::to_string),
    }
}

impl<'a> LeadColumns<'a> {
    /// The columns of `b`, or an error naming the first missing or mistyped one.
    pub fn new(b: &'a RecordBatch) -> Result<Self> {
        let t = "leads";
        let s = |n: &str| str_col(b, n, t);
        let n = |name: &str| i64_col(b, name, t);
        let f = |name: &str| bool_col(b, name, t);
        let d = |name: &str| ts_col(b, name, t);
        Ok(LeadColumns {
            rows: b.num_rows(),
            system: s("source_system")?,
            id: s("lead_id")?,
            owner: s("owner_id")?,
            channel: s("channel")?,
            campaign: s("campaign_id")?,
            country: s("country")?,
            title: s("job_title")?,
            authority: s("authority")?,
            lifecycle: s("lifecycle_stage_raw")?,
            status: s("lead_status_raw")?,
            vendor_score: n("vendor_score")?,
            downloads: n("content_downloads")?,
            visits: n("web_visits")?,
            emails: n("email_engagements")?,
            demo: f("demo_requested")?,
            budget: f("budget_confirmed")?,
            need: f("need_confirmed")?,
            timeline: f("timeline_confirmed")?,
            deleted: f("is_deleted")?,
            created: d("created_at")?,
            mql: d("mql_at")?,
            sal: d("sal_at")?,
            rejected: d("sal_rejected_at")?,
            sql: d("sql_at")?,
            opportunity: d("opportunity_at")?,
            customer: d("customer_at")?,
            contacted: d("first_contacted_at")?,
            intent: opt_ts_col(b, "last_intent_at", t)?,
            icp: IcpColumns::new(b)?,
            domain: opt_str_col(b, "email_domain", t)?,
            email_hash: opt_str_col(b, "email_hash", t)?,
        })
    }

    /// The same columns without the e-mail domain and hash: only third-party intent joins
    /// by them, and a job without intent signals need not copy them into every lead (two
    /// strings a lead, one of 64 bytes, in both passes). Its leads have neither.
    pub fn without_emails(self) -> Self {
        LeadColumns {
            domain: None,
            email_hash: None,
            ..self
        }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Is the batch empty?
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Overwrite `lead` with row `i`, reusing its string buffers (no allocation per lead
    /// once they are warm). False, leaving `lead` unspecified, when the row is no lead:
    /// deleted, or without a source system or id.
    pub fn fill(&self, i: usize, lead: &mut Lead) -> bool {
        if get_bool(self.deleted, i).unwrap_or(false) {
            return false;
        }
        let (Some(system), Some(id)) = (get_str(self.system, i), get_str(self.id, i)) else {
            return false;
        };
        set(&mut lead.source_system, system);
        set(&mut lead.lead_id, id);
        set_opt(&mut lead.owner_id, get_str(self.owner, i));
        set_opt(&mut lead.channel, get_str(self.channel, i));
        set_opt(&mut lead.campaign_id, get_str(self.campaign, i));
        set_opt(&mut lead.country, get_str(self.country, i));
        set_opt(&mut lead.job_title, get_str(self.title, i));
        set_opt(&mut lead.authority, get_str(self.authority, i));
        set_opt(&mut lead.lifecycle_stage_raw, get_str(self.lifecycle, i));
        set_opt(&mut lead.lead_status_raw, get_str(self.status, i));
        lead.vendor_score = get_i64(self.vendor_score, i);
        lead.demo_requested = get_bool(self.demo, i);
        lead.content_downloads = get_i64(self.downloads, i);
        lead.web_visits = get_i64(self.visits, i);
        lead.email_engagements = get_i64(self.emails, i);
        lead.budget_confirmed = get_bool(self.budget, i);
        lead.need_confirmed = get_bool(self.need, i);
        lead.timeline_confirmed = get_bool(self.timeline, i);
        lead.created_at = get_ts(self.created, i);
        lead.mql_at = get_ts(self.mql, i);
        lead.sal_at = get_ts(self.sal, i);
        lead.sal_rejected_at = get_ts(self.rejected, i);
        lead.sql_at = get_ts(self.sql, i);
        lead.opportunity_at = get_ts(self.opportunity, i);
        lead.customer_at = get_ts(self.customer, i);
        lead.first_contacted_at = get_ts(self.contacted, i);
        lead.last_intent_at = self.intent.and_then(|a| get_ts(a, i));
        self.icp.fill(i, lead);
        set_opt(
            &mut lead.email_domain,
            self.domain.and_then(|a| get_str(a, i)),
        );
        set_opt(
            &mut lead.email_hash,
            self.email_hash.and_then(|a| get_str(a, i)),
        );
        lead.intent_score = None;
        true
    }
}

/// The non-deleted leads of `leads` batches.
pub fn leads_from_batches(batches: &[RecordBatch]) -> Result<Vec<Lead>> {
    let mut out = Vec::new();
    for b in batches {
        let columns = LeadColumns::new(b)?;
        for i in 0..columns.len() {
            let mut lead = Lead::default();
            if columns.fill(i, &mut lead) {
                out.push(lead);
            }
        }
    }
    Ok(out)
}

/// A lead's score: `(score, fit, intent)`, each part capped.
pub fn score(
    lead: &Lead,
    cfg: &ScoringConfig,
    previous: Option<&PreviousStage>,
) -> (i64, i64, i64) {
    let tests: Vec<Test<'_>> = cfg.rules.iter().map(|r| Test::compile(&r.when)).collect();
    score_with(lead, cfg, &tests, previous)
}

/// [`score`] with the rules' conditions compiled (`tests`, in rule order).
fn score_with(
    lead: &Lead,
    cfg: &ScoringConfig,
    tests: &[Test<'_>],
    previous: Option<&PreviousStage>,
) -> (i64, i64, i64) {
    let ctx = Context { score: 0, previous };
    let (mut fit, mut intent) = (0_i64, 0_i64);
    for (rule, test) in cfg.rules.iter().zip(tests) {
        if !test.holds(lead, &ctx) {
            continue;
        }
        let units = rule.per.map_or(1, |c| lead.count(c).max(0));
        let mut points = rule.points.saturating_mul(units);
        if let Some(cap) = rule.cap {
            points = points.min(cap);
        }
        match rule.kind {
            ScoreKind::Fit => fit = fit.saturating_add(points),
            ScoreKind::Intent => intent = intent.saturating_add(points),
        }
    }
    let fit = fit.min(cfg.fit_cap);
    let intent = intent.min(cfg.intent_cap);
    (fit + intent, fit, intent)
}

/// A job's stage and scoring rules, their conditions compiled once for all the leads.
#[derive(Debug)]
struct Rules<'a> {
    cfg: &'a StagesConfig,
    /// The stage rules' conditions, in rule order.
    stages: Vec<Test<'a>>,
    /// The scoring rules' conditions, in rule order.
    scoring: Vec<Test<'a>>,
}

impl<'a> Rules<'a> {
    fn new(cfg: &'a StagesConfig) -> Self {
        Rules {
            cfg,
            stages: cfg.rules.iter().map(|r| Test::compile(&r.when)).collect(),
            scoring: cfg
                .scoring
                .rules
                .iter()
                .map(|r| Test::compile(&r.when))
                .collect(),
        }
    }

    fn score(&self, lead: &Lead, previous: Option<&PreviousStage>) -> (i64, i64, i64) {
        score_with(lead, &self.cfg.scoring, &self.scoring, previous)
    }

    /// The index of the rule that decides a lead's stage (first match wins); `None` when
    /// no rule matches.
    fn deciding_rule(
        &self,
        lead: &Lead,
        score: i64,
        previous: Option<&PreviousStage>,
    ) -> Option<usize> {
        let ctx = Context { score, previous };
        self.stages.iter().position(|test| test.holds(lead, &ctx))
    }
}

/// Write the `stage_reason` of the deciding rule into `out`: the rule's name, else its stage
/// and position.
fn write_reason(cfg: &StagesConfig, rule: Option<usize>, out: &mut String) {
    out.clear();
    match rule {
        Some(i) => match &cfg.rules[i].name {
            Some(name) => out.push_str(name),
            None => {
                // Writing to a String cannot fail.
                let _ = write!(out, "{}#{}", cfg.rules[i].stage.as_str(), i + 1);
            }
        },
        // No rule matched: every contact is at least a lead.
        None => out.push_str("no_rule_matched"),
    }
}

/// The stage of a lead and the rule that decided it (first match wins).
pub fn classify(
    lead: &Lead,
    cfg: &StagesConfig,
    score: i64,
    previous: Option<&PreviousStage>,
) -> (Stage, String) {
    let rule = Rules::new(cfg).deciding_rule(lead, score, previous);
    let mut reason = String::new();
    write_reason(cfg, rule, &mut reason);
    (rule.map_or(Stage::Lead, |i| cfg.rules[i].stage), reason)
}

/// One row of `lead_stages`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadStage {
    pub lead: Lead,
    pub stage: Stage,
    pub stage_reason: String,
    pub stage_entered_at: i64,
    pub days_in_stage: i64,
    pub score: i64,
    pub fit_score: i64,
    pub intent_score: i64,
    pub priority_rank: Option<i64>,
    /// `became_<stage>_at` in `BECAME` order.
    pub became: [Option<i64>; 5],
}

impl LeadStage {
    /// A row for `lead`, not yet staged.
    pub(super) fn new(lead: Lead) -> Self {
        LeadStage {
            lead,
            stage: Stage::Lead,
            stage_reason: String::new(),
            stage_entered_at: 0,
            days_in_stage: 0,
            score: 0,
            fit_score: 0,
            intent_score: 0,
            priority_rank: None,
            became: [None; 5],
        }
    }

    /// When the lead became `stage` (`lead` is its creation).
    pub fn became(&self, stage: Stage) -> Option<i64> {
        if stage == Stage::Lead {
            return self.lead.created_at;
        }
        BECAME
            .iter()
            .position(|s| *s == stage)
            .and_then(|i| self.became[i])
    }

    /// Has the lead reached `stage` of the path (itself or any later stage observed)?
    pub fn reached(&self, stage: Stage) -> bool {
        let Some(from) = stage.path_index() else {
            return false;
        };
        if stage == Stage::Lead {
            return true;
        }
        self.stage.path_index().is_some_and(|i| i >= from)
            || PATH[from..].iter().any(|s| self.became(*s).is_some())
    }

    /// Is the lead open, so ranked within its owner (not customer, not disqualified)?
    pub fn is_open(&self) -> bool {
        !matches!(self.stage, Stage::Customer | Stage::Disqualified)
    }
}

/// A stage change observed by this run.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub source_system: String,
    pub lead_id: String,
    /// `None` when the lead is seen for the first time.
    pub from_stage: Option<Stage>,
    pub to_stage: Stage,
    pub changed_at: i64,
}

/// A lead whose stage differs from the previous run's: the stage it left (`None` when seen
/// for the first time). It changed to `row.stage` at `row.stage_entered_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Option<Stage>,
}

/// Classify, score and date the lead of `row` — everything but `priority_rank`, which needs
/// all of its owner's leads. `now` is the run's clock (µs). Returns the change when the
/// stage differs from the previous run's.
fn stage_row(
    row: &mut LeadStage,
    rules: &Rules<'_>,
    prev: Option<&PreviousStage>,
    now: i64,
) -> Option<Change> {
    let cfg = rules.cfg;
    let lead = &row.lead;
    let (total, fit, intent) = rules.score(lead, prev);
    let rule = rules.deciding_rule(lead, total, prev);
    let stage = rule.map_or(Stage::Lead, |i| cfg.rules[i].stage);
    write_reason(cfg, rule, &mut row.stage_reason);
    let mut became = [None; 5];
    for (slot, (i, s)) in became.iter_mut().zip(BECAME.iter().enumerate()) {
        // A CRM date counts only once the rules agree the lead got there (a job's
        // stricter SQL criteria must not be overruled by the CRM's SQL date); leads
        // off the path (disqualified, recycled) keep the dates of how far they got.
        let reached = stage
            .path_index()
            .is_none_or(|p| s.path_index().is_some_and(|q| p >= q));
        let vendor = if reached {
            lead.vendor_became(*s)
        } else {
            None
        };
        *slot = vendor
            .or_else(|| prev.and_then(|p| p.became[i]))
            .or((stage == *s).then_some(now));
    }
    let vendor_entered = match stage {
        Stage::Lead => lead.created_at,
        Stage::Disqualified => lead.sal_rejected_at,
        Stage::Recycled => lead.last_intent_at,
        s => BECAME.iter().position(|b| *b == s).and_then(|i| became[i]),
    };
    let entered = vendor_entered
        .or_else(|| prev.filter(|p| p.stage == stage).and_then(|p| p.entered_at))
        .unwrap_or(now);
    row.stage = stage;
    row.stage_entered_at = entered;
    row.days_in_stage = (now - entered).max(0) / MICROS_PER_DAY;
    row.score = total;
    row.fit_score = fit;
    row.intent_score = intent;
    row.priority_rank = None;
    row.became = became;
    prev.is_none_or(|p| p.stage != stage).then(|| Change {
        from: prev.map(|p| p.stage),
    })
}

/// Stages the leads of `leads` batches one at a time through one reused row, so a batch
/// costs no allocation per lead once the row's buffers are warm. Both passes over the leads
/// use it: classification is deterministic, so the second pass sees what the first did.
#[derive(Debug)]
pub struct Stager<'a> {
    /// The job's rules, compiled once and shared with the helper of [`Stager::stage_batch`].
    rules: Arc<Rules<'a>>,
    /// Shared, so that pass 1 can take the leads a hash partition at a time and hold only
    /// that partition's state (`metrics::partitions`).
    previous: Arc<PreviousStages>,
    now: i64,
    /// Third-party intent joined to each lead before it is staged.
    intent: Option<&'a IntentIndex>,
    row: LeadStage,
}

impl<'a> Stager<'a> {
    /// A stager for the job's rules, the previous run's state and the run's clock (µs).
    pub fn new(cfg: &'a StagesConfig, previous: Arc<PreviousStages>, now: i64) -> Self {
        Stager {
            rules: Arc::new(Rules::new(cfg)),
            previous,
            now,
            intent: None,
            row: LeadStage::new(Lead::default()),
        }
    }

    /// A stager with the same rules, state, clock and intent, and a row of its own.
    fn helper(&self) -> Self {
        Stager {
            rules: Arc::clone(&self.rules),
            previous: Arc::clone(&self.previous),
            now: self.now,
            intent: self.intent,
            row: LeadStage::new(Lead::default()),
        }
    }

    /// Join `intent`'s signals to every lead staged (score and `last_intent_at`).
    pub fn with_intent(mut self, intent: Option<&'a IntentIndex>) -> Self {
        self.intent = intent;
        self
    }

    /// Stage the leads that follow against `previous` instead.
    pub fn set_previous(&mut self, previous: Arc<PreviousStages>) {
        self.previous = previous;
    }

    /// Like [`Stager::with_intent`], in place.
    pub fn set_intent(&mut self, intent: Option<&'a IntentIndex>) {
        self.intent = intent;
    }

    /// Stage every lead of a `leads` batch in order, each row (its `priority_rank` unset)
    /// and its change, if any, handed to `each` with the collector it goes into: collectors
    /// made by `new` (for about that many rows), returned in row order. A large batch is
    /// staged by two threads working from its two ends: this one claims rows from the front
    /// into one collector; a scoped helper claims rows from the back, a collector for each
    /// stretch it claims; they stop where they meet. The helper's rows are collected where
    /// it stages them, not cloned (each lead with its strings) for this thread to hand on
    /// after the meeting. Whatever `each` costs, the split follows it (classification is most of the
    /// metrics' work, and the two passes would otherwise run it on one core).
    pub fn stage_batch<T: Send>(
        &mut self,
        batch: &RecordBatch,
        new: impl Fn(usize) -> T + Sync,
        each: impl Fn(&mut T, &LeadStage, Option<Change>) -> Result<()> + Sync,
    ) -> Result<Vec<T>> {
        let mut columns = LeadColumns::new(batch)?;
        if self.intent.is_none_or(IntentIndex::is_empty) {
            columns = columns.without_emails();
        }
        let rows = columns.len();
        // `Ends` packs row numbers in 32 bits.
        if rows < SPLIT_BATCH_ROWS || u32::try_from(rows).is_err() {
            let mut all = new(rows);
            self.stage_range(&columns, 0..rows, &mut |row, change| {
                each(&mut all, row, change)
            })?;
            return Ok(vec![all]);
        }
        let ends = Ends::new(rows);
        let mut helper = self.helper();
        let (new, each) = (&new, &each);
        std::thread::scope(|scope| {
            let from_the_back = scope.spawn(|| {
                // Claimed stretches, last first.
                let mut stretches = Vec::new();
                while let Some(range) = ends.claim_back() {
                    let mut stretch = new(range.len());
                    helper.stage_range(&columns, range, &mut |row, change| {
                        each(&mut stretch, row, change)
                    })?;
                    stretches.push(stretch);
                }
                Ok::<_, crate::Error>(stretches)
            });
            let mut front = new(rows / 2 + CLAIM_ROWS);
            while let Some(range) = ends.claim_front() {
                self.stage_range(&columns, range, &mut |row, change| {
                    each(&mut front, row, change)
                })?;
            }
            let stretches = from_the_back
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            let mut all = Vec::with_capacity(1 + stretches.len());
            all.push(front);
            all.extend(stretches.into_iter().rev());
            Ok(all)
        })
    }

    /// Stage the leads of `columns` at `range`, in order, through the reused row.
    fn stage_range(
        &mut self,
        columns: &LeadColumns<'_>,
        range: std::ops::Range<usize>,
        each: &mut impl FnMut(&LeadStage, Option<Change>) -> Result<()>,
    ) -> Result<()> {
        for i in range {
            if !columns.fill(i, &mut self.row.lead) {
                continue;
            }
            if let Some(intent) = self.intent {
                intent.apply(&mut self.row.lead);
            }
            let prev = self
                .previous
                .get(&self.row.lead.source_system, &self.row.lead.lead_id);
            let change = stage_row(&mut self.row, &self.rules, prev.as_ref(), self.now);
            each(&self.row, change)?;
        }
        Ok(())
    }
}

/// Leads a batch needs before [`Stager::stage_batch`] splits it across two threads: below
/// it, starting a thread costs more than it saves.
const SPLIT_BATCH_ROWS: usize = 4_096;

/// Rows one claim of [`Ends`] takes: few enough that the two threads finish together,
/// enough that claiming costs nothing next to staging.
const CLAIM_ROWS: usize = 128;

/// The rows of a batch not claimed yet, `front..back`, packed in one atomic so that the
/// two ends are claimed without a lock.
struct Ends(std::sync::atomic::AtomicU64);

impl Ends {
    fn new(rows: usize) -> Self {
        Ends(std::sync::atomic::AtomicU64::new(rows as u64))
    }

    fn claim_front(&self) -> Option<std::ops::Range<usize>> {
        self.claim(|front, back| {
            let end = back.min(front + CLAIM_ROWS as u64);
            (front..end, (end, back))
        })
    }

    fn claim_back(&self) -> Option<std::ops::Range<usize>> {
        self.claim(|front, back| {
            let start = front.max(back.saturating_sub(CLAIM_ROWS as u64));
            (start..back, (front, start))
        })
    }

    /// Claim what `take(front, back)` says (the rows and the new ends), unless none is left.
    fn claim(
        &self,
        take: impl Fn(u64, u64) -> (std::ops::Range<u64>, (u64, u64)),
    ) -> Option<std::ops::Range<usize>> {
        use std::sync::atomic::Ordering;
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let (front, back) = (current >> 32, current & u64::from(u32::MAX));
            if front >= back {
                return None;
            }
            let (rows, (front, back)) = take(front, back);
            match self.0.compare_exchange_weak(
                current,
                (front << 32) | back,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(rows.start as usize..rows.end as usize),
                Err(now) => current = now,
            }
        }
    }
}

/// Classify, score, date and rank every lead; `now` is the run's clock (µs). The in-memory
/// form of the two passes the metrics step makes over the `leads` table.
pub fn compute(
    leads: Vec<Lead>,
    cfg: &StagesConfig,
    previous: &PreviousStages,
    now: i64,
) -> (Vec<LeadStage>, Vec<Transition>) {
    let mut rows = Vec::with_capacity(leads.len());
    let mut transitions = Vec::new();
    let mut owners = OwnerScores::default();
    let rules = Rules::new(cfg);
    for lead in leads {
        let prev = previous.get(&lead.source_system, &lead.lead_id);
        let mut row = LeadStage::new(lead);
        if let Some(change) = stage_row(&mut row, &rules, prev.as_ref(), now) {
            transitions.push(Transition {
                source_system: row.lead.source_system.clone(),
                lead_id: row.lead.lead_id.clone(),
                from_stage: change.from,
                to_stage: row.stage,
                changed_at: row.stage_entered_at,
            });
        }
        owners.add(&row);
        rows.push(row);
    }
    let ranks = owners.ranks();
    for row in &mut rows {
        // Every open lead was counted just above: the rank is always there.
        row.priority_rank = ranks.rank(row).ok().flatten();
    }
    (rows, transitions)
}

/// `priority_rank`, first pass: per owner, how many open leads have each score. Scores are
/// small integers, so this stays a few entries per owner however many leads there are.
/// Leads without an owner are ranked together.
#[derive(Debug, Default)]
pub struct OwnerScores {
    owners: Interner,
    /// By owner id.
    owned: Vec<BTreeMap<i64, u64>>,
    unowned: BTreeMap<i64, u64>,
}

impl OwnerScores {
    /// Count a staged lead (closed leads are not ranked).
    pub fn add(&mut self, row: &LeadStage) {
        if !row.is_open() {
            return;
        }
        let counts = match row.lead.owner_id.as_deref() {
            Some(owner) => {
                let id = self.owners.id(owner);
                if id == self.owned.len() {
                    self.owned.push(BTreeMap::new());
                }
                &mut self.owned[id]
            }
            None => &mut self.unowned,
        };
        *counts.entry(row.score).or_default() += 1;
    }

    /// The ranks: 1 for the highest score among an owner's open leads; equal scores share a
    /// rank and the next rank skips (1, 1, 3) — a score's rank is 1 + the number of the
    /// owner's open leads with a strictly higher score.
    pub fn ranks(self) -> OwnerRanks {
        fn ranked(counts: BTreeMap<i64, u64>) -> BTreeMap<i64, i64> {
            let mut above = 0_u64;
            let mut out = BTreeMap::new();
            for (score, n) in counts.into_iter().rev() {
                out.insert(
                    score,
                    i64::try_from(above).unwrap_or(i64::MAX).saturating_add(1),
                );
                above += n;
            }
            out
        }
        OwnerRanks {
            owners: self.owners,
            owned: self.owned.into_iter().map(ranked).collect(),
            unowned: ranked(self.unowned),
        }
    }
}

/// `priority_rank`, second pass: the rank of each (owner, score) among the owner's open leads.
#[derive(Debug)]
pub struct OwnerRanks {
    owners: Interner,
    owned: Vec<BTreeMap<i64, i64>>,
    unowned: BTreeMap<i64, i64>,
}

impl OwnerRanks {
    /// A staged lead's `priority_rank`: `None` for closed leads. An error when the first
    /// pass did not count an open lead with this owner and score — the leads changed between
    /// the passes.
    pub fn rank(&self, row: &LeadStage) -> Result<Option<i64>> {
        let l = &row.lead;
        self.rank_of(row.is_open(), l.owner_id.as_deref(), row.score)
            .ok_or_else(|| {
                unseen(
                    &l.source_system,
                    &l.lead_id,
                    l.owner_id.as_deref(),
                    row.score,
                )
            })
    }

    /// The rank of an open (`open`) lead of `owner` with `score`; `Some(None)` for a closed
    /// lead, `None` when the first pass counted no open lead like it.
    fn rank_of(&self, open: bool, owner: Option<&str>, score: i64) -> Option<Option<i64>> {
        if !open {
            return Some(None);
        }
        let ranks = match owner {
            Some(owner) => self.owners.get(owner).map(|id| &self.owned[id]),
            None => Some(&self.unowned),
        };
        ranks.and_then(|r| r.get(&score)).map(|rank| Some(*rank))
    }

    /// A `lead_stages` batch as the first pass built it (`priority_rank` null) with its
    /// ranks filled in.
    pub fn rank_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        const TABLE: &str = "lead_stages";
        let owner = str_col(batch, "owner_id", TABLE)?;
        let stage = str_col(batch, "stage", TABLE)?;
        let score = i64_col(batch, "score", TABLE)?;
        let mut ranks = Int64Builder::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let open = Stage::parse(stage.value(i))
                .is_some_and(|s| !matches!(s, Stage::Customer | Stage::Disqualified));
            let (owner, score) = (get_str(owner, i), score.value(i));
            match self.rank_of(open, owner, score) {
                Some(rank) => ranks.append_option(rank),
                None => {
                    let system = str_col(batch, "source_system", TABLE)?.value(i);
                    let id = str_col(batch, "lead_id", TABLE)?.value(i);
                    return Err(unseen(system, id, owner, score));
                }
            }
        }
        let at = batch
            .schema()
            .index_of("priority_rank")
            .map_err(|e| Error::encode(TABLE, e))?;
        let mut columns = batch.columns().to_vec();
        columns[at] = Arc::new(ranks.finish());
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| Error::encode(TABLE, e))
    }
}

/// An open lead the first pass did not count: the passes saw different leads.
fn unseen(system: &str, id: &str, owner: Option<&str>, score: i64) -> Error {
    Error::encode(
        "lead_stages",
        format!(
            "lead {system}/{id} (owner {owner:?}, score {score}) was not seen by the first pass \
             over `leads`: the passes saw different leads"
        ),
    )
}

/// The `lead_stages` schema.
pub fn lead_stages_schema() -> SchemaRef {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let ts = |n: &str, null| Field::new(n, timestamp_type(), null);
    let i = |n: &str, null| Field::new(n, DataType::Int64, null);
    let mut fields = vec![
        s("source_system", false),
        s("lead_id", false),
        s("owner_id", true),
        s("channel", true),
        s("campaign_id", true),
        ts("created_at", true),
        s("stage", false),
        s("stage_reason", false),
        ts("stage_entered_at", false),
        i("days_in_stage", false),
        i("score", false),
        i("fit_score", false),
        i("intent_score", false),
        i("priority_rank", true),
    ];
    for stage in BECAME {
        fields.push(ts(&format!("became_{}_at", stage.as_str()), true));
    }
    fields.extend([
        ts("sal_rejected_at", true),
        ts("first_contacted_at", true),
        ts("last_intent_at", true),
    ]);
    fields.push(Field::new(
        "third_party_intent_score",
        DataType::Float64,
        true,
    ));
    metric_schema(fields)
}

/// A UTC microsecond timestamp column from its builder.
fn finish_ts(b: &mut TimestampMicrosecondBuilder) -> ArrayRef {
    Arc::new(b.finish().with_timezone("UTC"))
}

/// `lead_stages` rows appended one at a time (the reused row of the second pass), then
/// finished into a batch.
#[derive(Debug)]
pub struct LeadStagesBuilder {
    strs: [StringBuilder; 5],
    created: TimestampMicrosecondBuilder,
    stage: StringBuilder,
    reason: StringBuilder,
    entered: TimestampMicrosecondBuilder,
    /// days_in_stage, score, fit_score, intent_score, priority_rank.
    ints: [Int64Builder; 5],
    became: [TimestampMicrosecondBuilder; 5],
    /// sal_rejected_at, first_contacted_at, last_intent_at.
    tail: [TimestampMicrosecondBuilder; 3],
    third_party_intent: Float64Builder,
}

impl LeadStagesBuilder {
    /// A builder for about `rows` rows.
    pub fn new(rows: usize) -> Self {
        let strs = || StringBuilder::with_capacity(rows, rows * 16);
        let ts = || TimestampMicrosecondBuilder::with_capacity(rows);
        let ints = || Int64Builder::with_capacity(rows);
        LeadStagesBuilder {
            strs: std::array::from_fn(|_| strs()),
            created: ts(),
            stage: strs(),
            reason: strs(),
            entered: ts(),
            ints: std::array::from_fn(|_| ints()),
            became: std::array::from_fn(|_| ts()),
            tail: std::array::from_fn(|_| ts()),
            third_party_intent: Float64Builder::with_capacity(rows),
        }
    }

    /// Append a row.
    pub fn push(&mut self, r: &LeadStage) {
        self.push_ranked(r, r.priority_rank);
    }

    /// Append a row with its `priority_rank` (the second pass's reused row has none).
    pub fn push_ranked(&mut self, r: &LeadStage, priority_rank: Option<i64>) {
        let l = &r.lead;
        let [system, id, owner, channel, campaign] = &mut self.strs;
        system.append_value(&l.source_system);
        id.append_value(&l.lead_id);
        owner.append_option(l.owner_id.as_deref());
        channel.append_option(l.channel.as_deref());
        campaign.append_option(l.campaign_id.as_deref());
        self.created.append_option(l.created_at);
        self.stage.append_value(r.stage.as_str());
        self.reason.append_value(&r.stage_reason);
        self.entered.append_value(r.stage_entered_at);
        let [days, score, fit, intent, rank] = &mut self.ints;
        days.append_value(r.days_in_stage);
        score.append_value(r.score);
        fit.append_value(r.fit_score);
        intent.append_value(r.intent_score);
        rank.append_option(priority_rank);
        for (b, v) in self.became.iter_mut().zip(r.became) {
            b.append_option(v);
        }
        let [rejected, contacted, intent_at] = &mut self.tail;
        rejected.append_option(l.sal_rejected_at);
        contacted.append_option(l.first_contacted_at);
        intent_at.append_option(l.last_intent_at);
        self.third_party_intent.append_option(l.intent_score);
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.stage.len()
    }

    /// Are there none?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows appended so far as a batch; the builder starts over.
    pub fn finish(&mut self, stamp: &BatchStamp) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(26);
        columns.extend(
            self.strs
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(finish_ts(&mut self.created));
        columns.push(Arc::new(self.stage.finish()));
        columns.push(Arc::new(self.reason.finish()));
        columns.push(finish_ts(&mut self.entered));
        columns.extend(
            self.ints
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.extend(self.became.iter_mut().map(finish_ts));
        columns.extend(self.tail.iter_mut().map(finish_ts));
        columns.push(Arc::new(self.third_party_intent.finish()));
        metric_batch("lead_stages", &lead_stages_schema(), columns, stamp)
    }
}

/// `lead_stages` as one batch.
pub fn lead_stages_batch(rows: &[LeadStage], stamp: &BatchStamp) -> Result<RecordBatch> {
    let mut b = LeadStagesBuilder::new(rows.len());
    for r in rows {
        b.push(r);
    }
    b.finish(stamp)
}

/// The `lead_stage_transitions` schema.
pub fn transitions_schema() -> SchemaRef {
    metric_schema(vec![
        Field::new("source_system", DataType::Utf8, false),
        Field::new("lead_id", DataType::Utf8, false),
        Field::new("from_stage", DataType::Utf8, true),
        Field::new("to_stage", DataType::Utf8, false),
        Field::new("changed_at", timestamp_type(), false),
        Field::new("run_id", DataType::Utf8, false),
    ])
}

/// `lead_stage_transitions` rows appended one at a time, then finished into a batch.
#[derive(Debug)]
pub struct TransitionsBuilder {
    system: StringBuilder,
    id: StringBuilder,
    from: StringBuilder,
    to: StringBuilder,
    changed: TimestampMicrosecondBuilder,
}

impl TransitionsBuilder {
    /// A builder for about `rows` rows.
    pub fn new(rows: usize) -> Self {
        let strs = || StringBuilder::with_capacity(rows, rows * 8);
        TransitionsBuilder {
            system: strs(),
            id: strs(),
            from: strs(),
            to: strs(),
            changed: TimestampMicrosecondBuilder::with_capacity(rows),
        }
    }

    /// Append a change of the lead `system`/`id`.
    pub fn push(
        &mut self,
        system: &str,
        id: &str,
        from: Option<Stage>,
        to: Stage,
        changed_at: i64,
    ) {
        self.system.append_value(system);
        self.id.append_value(id);
        self.from.append_option(from.map(Stage::as_str));
        self.to.append_value(to.as_str());
        self.changed.append_value(changed_at);
    }

    /// Append the change of a staged row.
    pub fn push_change(&mut self, row: &LeadStage, change: Change) {
        self.push(
            &row.lead.source_system,
            &row.lead.lead_id,
            change.from,
            row.stage,
            row.stage_entered_at,
        );
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.to.len()
    }

    /// Are there none?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows appended so far as a batch of this run; the builder starts over.
    pub fn finish(&mut self, stamp: &BatchStamp) -> Result<RecordBatch> {
        let rows = self.to.len();
        let run_id: StringArray = std::iter::repeat_n(Some(stamp.run_id.as_str()), rows).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.system.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.from.finish()),
            Arc::new(self.to.finish()),
            finish_ts(&mut self.changed),
            Arc::new(run_id),
        ];
        metric_batch(
            "lead_stage_transitions",
            &transitions_schema(),
            columns,
            stamp,
        )
    }
}

/// This run's transitions as one batch.
pub fn transitions_batch(rows: &[Transition], stamp: &BatchStamp) -> Result<RecordBatch> {
    let mut b = TransitionsBuilder::new(rows.len());
    for r in rows {
        b.push(
            &r.source_system,
            &r.lead_id,
            r.from_stage,
            r.to_stage,
            r.changed_at,
        );
    }
    b.finish(stamp)
}

/// Earlier transitions (read back) in the current schema, so they can be rewritten with
/// this run's rows appended.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef, table: &str) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| Error::encode(table, format!("earlier file has no `{}`", f.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| Error::encode(table, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads claiming from the two ends take every row once: the front's stretches
    /// ascend, the back's descend, and they meet without overlapping.
    #[test]
    fn the_two_ends_claim_every_row_once() {
        for rows in [0, 1, CLAIM_ROWS - 1, CLAIM_ROWS, 2 * CLAIM_ROWS + 1, 16_384] {
            let ends = Ends::new(rows);
            let (front, back) = std::thread::scope(|scope| {
                let back = scope.spawn(|| std::iter::from_fn(|| ends.claim_back()).collect());
                let front: Vec<_> = std::iter::from_fn(|| ends.claim_front()).collect();
                (front, back.join().unwrap())
            });
            let back: Vec<std::ops::Range<usize>> = back;
            let claimed: Vec<usize> = front
                .iter()
                .chain(back.iter().rev())
                .flat_map(|r| r.clone())
                .collect();
            assert_eq!(claimed, (0..rows).collect::<Vec<_>>(), "{rows} rows");
            assert!(front.iter().chain(&back).all(|r| r.len() <= CLAIM_ROWS));
        }
    }

    /// The e-mail's domain and hash are read from `leads` only when intent signals join by
    /// them; every other column the metrics read is read either way.
    #[test]
    fn the_email_columns_are_read_only_for_intent() {
        let emails = ["email_domain", "email_hash"];
        let with = lead_columns(true);
        let without = lead_columns(false);
        assert!(emails.iter().all(|c| with.contains(c)));
        assert!(emails.iter().all(|c| !without.contains(c)));
        assert_eq!(without.len() + emails.len(), with.len());
        assert!(without.iter().all(|c| with.contains(c)));
    }
}
