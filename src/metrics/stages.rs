//! `lead_stages` and `lead_stage_transitions`: every (non-deleted) lead classified by the
//! job's stage rules (first match wins, `stage_reason` names the rule), scored by its scoring
//! rules, ranked within its owner, with the time it became each stage — the CRM's date where
//! it has one, else the first run that observed the stage (from the previous `lead_stages`).
//! A lead whose stage differs from the previous run's is a transition.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::arrays::{
    MICROS_PER_DAY, bool_col, get_bool, get_i64, get_str, get_ts, i64_col, metric_batch,
    metric_schema, opt_ts_col, str_col, timestamp_type, ts_array, ts_col,
};
use super::config::{
    Condition, CountColumn, DateColumn, PATH, ScoreKind, ScoringConfig, Stage, StagesConfig,
};
use crate::error::{Error, Result};
use crate::normalize::BatchStamp;

/// The stages with a `became_<stage>_at` column, in path order.
pub const BECAME: [Stage; 5] = [
    Stage::Warm,
    Stage::Mql,
    Stage::Sal,
    Stage::Sql,
    Stage::Customer,
];

/// One lead's canonical columns, as the rules see them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lead {
    pub source_system: String,
    pub lead_id: String,
    pub owner_id: Option<String>,
    pub channel: Option<String>,
    pub campaign_id: Option<String>,
    pub country: Option<String>,
    pub job_title: Option<String>,
    pub authority: Option<String>,
    pub lifecycle_stage_raw: Option<String>,
    pub lead_status_raw: Option<String>,
    pub vendor_score: Option<i64>,
    pub demo_requested: Option<bool>,
    pub content_downloads: Option<i64>,
    pub web_visits: Option<i64>,
    pub email_engagements: Option<i64>,
    pub budget_confirmed: Option<bool>,
    pub need_confirmed: Option<bool>,
    pub timeline_confirmed: Option<bool>,
    pub created_at: Option<i64>,
    pub mql_at: Option<i64>,
    pub sal_at: Option<i64>,
    pub sal_rejected_at: Option<i64>,
    pub sql_at: Option<i64>,
    pub opportunity_at: Option<i64>,
    pub customer_at: Option<i64>,
    pub first_contacted_at: Option<i64>,
    pub last_intent_at: Option<i64>,
}

impl Lead {
    fn date(&self, column: DateColumn) -> Option<i64> {
        match column {
            DateColumn::CreatedAt => self.created_at,
            DateColumn::MqlAt => self.mql_at,
            DateColumn::SalAt => self.sal_at,
            DateColumn::SalRejectedAt => self.sal_rejected_at,
            DateColumn::SqlAt => self.sql_at,
            DateColumn::OpportunityAt => self.opportunity_at,
            DateColumn::CustomerAt => self.customer_at,
            DateColumn::FirstContactedAt => self.first_contacted_at,
            DateColumn::LastIntentAt => self.last_intent_at,
        }
    }

    fn count(&self, column: CountColumn) -> i64 {
        match column {
            CountColumn::ContentDownloads => self.content_downloads,
            CountColumn::WebVisits => self.web_visits,
            CountColumn::EmailEngagements => self.email_engagements,
        }
        .unwrap_or(0)
    }

    /// The CRM's own date for reaching a path stage.
    fn vendor_became(&self, stage: Stage) -> Option<i64> {
        match stage {
            Stage::Mql => self.mql_at,
            Stage::Sal => self.sal_at,
            Stage::Sql => self.sql_at.or(self.opportunity_at),
            Stage::Customer => self.customer_at,
            _ => None,
        }
    }
}

/// What the previous run wrote for one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousStage {
    /// Its stage then.
    pub stage: Stage,
    /// When it entered that stage.
    pub entered_at: Option<i64>,
    /// `became_<stage>_at` in `BECAME` order.
    pub became: [Option<i64>; 5],
}

/// Previous state by (source_system, lead_id).
pub type PreviousStages = HashMap<(String, String), PreviousStage>;

/// Read the previous run's `lead_stages` batches.
pub fn previous_stages(batches: &[RecordBatch]) -> Result<PreviousStages> {
    let t = "lead_stages";
    let mut out = PreviousStages::new();
    for b in batches {
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
            out.insert(
                (system.to_string(), id.to_string()),
                PreviousStage {
                    stage,
                    entered_at: get_ts(entered, i),
                    became: dates,
                },
            );
        }
    }
    Ok(out)
}

/// The non-deleted leads of `leads` batches.
pub fn leads_from_batches(batches: &[RecordBatch]) -> Result<Vec<Lead>> {
    let t = "leads";
    let mut out = Vec::new();
    for b in batches {
        let s = |n: &str| str_col(b, n, t);
        let (system, id, owner, channel, campaign) = (
            s("source_system")?,
            s("lead_id")?,
            s("owner_id")?,
            s("channel")?,
            s("campaign_id")?,
        );
        let (country, title, authority, lifecycle, status) = (
            s("country")?,
            s("job_title")?,
            s("authority")?,
            s("lifecycle_stage_raw")?,
            s("lead_status_raw")?,
        );
        let n = |name: &str| i64_col(b, name, t);
        let (vendor_score, downloads, visits, emails) = (
            n("vendor_score")?,
            n("content_downloads")?,
            n("web_visits")?,
            n("email_engagements")?,
        );
        let f = |name: &str| bool_col(b, name, t);
        let (demo, budget, need, timeline, deleted) = (
            f("demo_requested")?,
            f("budget_confirmed")?,
            f("need_confirmed")?,
            f("timeline_confirmed")?,
            f("is_deleted")?,
        );
        let d = |name: &str| ts_col(b, name, t);
        let (created, mql, sal, rejected, sql, opportunity, customer, contacted) = (
            d("created_at")?,
            d("mql_at")?,
            d("sal_at")?,
            d("sal_rejected_at")?,
            d("sql_at")?,
            d("opportunity_at")?,
            d("customer_at")?,
            d("first_contacted_at")?,
        );
        // Files written before the column existed have no intent date.
        let intent = opt_ts_col(b, "last_intent_at", t)?;
        let owned = |a: &StringArray, i| get_str(a, i).map(str::to_string);
        for i in 0..b.num_rows() {
            if get_bool(deleted, i).unwrap_or(false) {
                continue;
            }
            let (Some(system), Some(id)) = (get_str(system, i), get_str(id, i)) else {
                continue;
            };
            out.push(Lead {
                source_system: system.to_string(),
                lead_id: id.to_string(),
                owner_id: owned(owner, i),
                channel: owned(channel, i),
                campaign_id: owned(campaign, i),
                country: owned(country, i),
                job_title: owned(title, i),
                authority: owned(authority, i),
                lifecycle_stage_raw: owned(lifecycle, i),
                lead_status_raw: owned(status, i),
                vendor_score: get_i64(vendor_score, i),
                demo_requested: get_bool(demo, i),
                content_downloads: get_i64(downloads, i),
                web_visits: get_i64(visits, i),
                email_engagements: get_i64(emails, i),
                budget_confirmed: get_bool(budget, i),
                need_confirmed: get_bool(need, i),
                timeline_confirmed: get_bool(timeline, i),
                created_at: get_ts(created, i),
                mql_at: get_ts(mql, i),
                sal_at: get_ts(sal, i),
                sal_rejected_at: get_ts(rejected, i),
                sql_at: get_ts(sql, i),
                opportunity_at: get_ts(opportunity, i),
                customer_at: get_ts(customer, i),
                first_contacted_at: get_ts(contacted, i),
                last_intent_at: intent.and_then(|a| get_ts(a, i)),
            });
        }
    }
    Ok(out)
}

/// What a condition may look at besides the lead itself.
struct Context<'a> {
    score: i64,
    previous: Option<&'a PreviousStage>,
}

fn one_of(list: &[String], value: Option<&str>) -> bool {
    list.is_empty()
        || value.is_some_and(|v| list.iter().any(|w| w.trim().eq_ignore_ascii_case(v.trim())))
}

fn flag(want: Option<bool>, value: Option<bool>) -> bool {
    want.is_none_or(|w| w == value.unwrap_or(false))
}

fn at_least(min: Option<i64>, value: Option<i64>) -> bool {
    min.is_none_or(|m| value.is_some_and(|v| v >= m))
}

/// New intent after a rejection by sales, or after a run observed the lead disqualified —
/// unless the lead has moved on since (an SQL date, or accepted again after the rejection):
/// then the later rules place it.
fn new_intent_after_rejection(lead: &Lead, previous: Option<&PreviousStage>) -> bool {
    let Some(intent) = lead.last_intent_at else {
        return false;
    };
    let accepted_again = match (lead.sal_at, lead.sal_rejected_at) {
        (Some(accepted), Some(rejected)) => accepted > rejected,
        _ => false,
    };
    if lead.sql_at.is_some() || accepted_again {
        return false;
    }
    if lead.sal_rejected_at.is_some_and(|r| intent > r) {
        return true;
    }
    match previous {
        Some(p) if p.stage == Stage::Disqualified => p.entered_at.is_some_and(|e| intent > e),
        Some(p) if p.stage == Stage::Recycled => p.entered_at.is_some_and(|e| intent >= e),
        _ => false,
    }
}

fn matches(c: &Condition, lead: &Lead, ctx: &Context<'_>) -> bool {
    one_of(&c.source_system, Some(&lead.source_system))
        && one_of(&c.lifecycle_stage_raw, lead.lifecycle_stage_raw.as_deref())
        && one_of(&c.lead_status_raw, lead.lead_status_raw.as_deref())
        && one_of(&c.channel, lead.channel.as_deref())
        && one_of(&c.country, lead.country.as_deref())
        && one_of(&c.authority, lead.authority.as_deref())
        && (c.job_title_contains.is_empty()
            || lead.job_title.as_deref().is_some_and(|t| {
                let t = t.to_lowercase();
                c.job_title_contains
                    .iter()
                    .any(|w| !w.is_empty() && t.contains(&w.to_lowercase()))
            }))
        && c.set.iter().all(|d| lead.date(*d).is_some())
        && c.unset.iter().all(|d| lead.date(*d).is_none())
        && flag(c.demo_requested, lead.demo_requested)
        && flag(c.budget_confirmed, lead.budget_confirmed)
        && flag(c.need_confirmed, lead.need_confirmed)
        && flag(c.timeline_confirmed, lead.timeline_confirmed)
        && at_least(c.min_score, Some(ctx.score))
        && at_least(c.min_vendor_score, lead.vendor_score)
        && at_least(c.min_content_downloads, lead.content_downloads)
        && at_least(c.min_web_visits, lead.web_visits)
        && at_least(c.min_email_engagements, lead.email_engagements)
        && c.new_intent_after_rejection
            .is_none_or(|w| w == new_intent_after_rejection(lead, ctx.previous))
        && (c.any.is_empty() || c.any.iter().any(|a| matches(a, lead, ctx)))
}

/// A lead's score: `(score, fit, intent)`, each part capped.
pub fn score(
    lead: &Lead,
    cfg: &ScoringConfig,
    previous: Option<&PreviousStage>,
) -> (i64, i64, i64) {
    let ctx = Context { score: 0, previous };
    let (mut fit, mut intent) = (0_i64, 0_i64);
    for rule in &cfg.rules {
        if !matches(&rule.when, lead, &ctx) {
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

/// The stage of a lead and the rule that decided it (first match wins).
pub fn classify(
    lead: &Lead,
    cfg: &StagesConfig,
    score: i64,
    previous: Option<&PreviousStage>,
) -> (Stage, String) {
    let ctx = Context { score, previous };
    for (i, rule) in cfg.rules.iter().enumerate() {
        if matches(&rule.when, lead, &ctx) {
            let reason = rule
                .name
                .clone()
                .unwrap_or_else(|| format!("{}#{}", rule.stage.as_str(), i + 1));
            return (rule.stage, reason);
        }
    }
    // No rule matched: every contact is at least a lead.
    (Stage::Lead, "no_rule_matched".to_string())
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

/// Classify, score and date every lead; `now` is the run's clock (µs).
pub fn compute(
    leads: Vec<Lead>,
    cfg: &StagesConfig,
    previous: &PreviousStages,
    now: i64,
) -> (Vec<LeadStage>, Vec<Transition>) {
    let mut rows = Vec::with_capacity(leads.len());
    let mut transitions = Vec::new();
    for lead in leads {
        let prev = previous.get(&(lead.source_system.clone(), lead.lead_id.clone()));
        let (total, fit, intent) = score(&lead, &cfg.scoring, prev);
        let (stage, reason) = classify(&lead, cfg, total, prev);
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
        if prev.is_none_or(|p| p.stage != stage) {
            transitions.push(Transition {
                source_system: lead.source_system.clone(),
                lead_id: lead.lead_id.clone(),
                from_stage: prev.map(|p| p.stage),
                to_stage: stage,
                changed_at: entered,
            });
        }
        rows.push(LeadStage {
            stage,
            stage_reason: reason,
            stage_entered_at: entered,
            days_in_stage: (now - entered).max(0) / MICROS_PER_DAY,
            score: total,
            fit_score: fit,
            intent_score: intent,
            priority_rank: None,
            became,
            lead,
        });
    }
    rank_within_owner(&mut rows);
    (rows, transitions)
}

/// `priority_rank`: 1 for the highest score among an owner's open leads (not customer, not
/// disqualified); equal scores share a rank and the next rank skips (1, 1, 3). Leads without
/// an owner are ranked together.
fn rank_within_owner(rows: &mut [LeadStage]) {
    let mut by_owner: HashMap<Option<String>, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if matches!(r.stage, Stage::Customer | Stage::Disqualified) {
            continue;
        }
        by_owner.entry(r.lead.owner_id.clone()).or_default().push(i);
    }
    for (_, mut members) in by_owner {
        members.sort_by_key(|i| std::cmp::Reverse(rows[*i].score));
        let mut rank = 0;
        let mut last = None;
        for (position, i) in members.iter().enumerate() {
            if last != Some(rows[*i].score) {
                rank = position as i64 + 1;
                last = Some(rows[*i].score);
            }
            rows[*i].priority_rank = Some(rank);
        }
    }
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
    metric_schema(fields)
}

/// `lead_stages` as one batch.
pub fn lead_stages_batch(rows: &[LeadStage], stamp: &BatchStamp) -> Result<RecordBatch> {
    let strs = |f: &dyn Fn(&LeadStage) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let ints = |f: &dyn Fn(&LeadStage) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int64Array>())
    };
    let times = |f: &dyn Fn(&LeadStage) -> Option<i64>| ts_array(rows.iter().map(f).collect());
    let mut columns = vec![
        strs(&|r| Some(&r.lead.source_system)),
        strs(&|r| Some(&r.lead.lead_id)),
        strs(&|r| r.lead.owner_id.as_deref()),
        strs(&|r| r.lead.channel.as_deref()),
        strs(&|r| r.lead.campaign_id.as_deref()),
        times(&|r| r.lead.created_at),
        strs(&|r| Some(r.stage.as_str())),
        strs(&|r| Some(&r.stage_reason)),
        times(&|r| Some(r.stage_entered_at)),
        ints(&|r| Some(r.days_in_stage)),
        ints(&|r| Some(r.score)),
        ints(&|r| Some(r.fit_score)),
        ints(&|r| Some(r.intent_score)),
        ints(&|r| r.priority_rank),
    ];
    for i in 0..BECAME.len() {
        columns.push(times(&|r| r.became[i]));
    }
    columns.extend([
        times(&|r| r.lead.sal_rejected_at),
        times(&|r| r.lead.first_contacted_at),
        times(&|r| r.lead.last_intent_at),
    ]);
    metric_batch("lead_stages", &lead_stages_schema(), columns, stamp)
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

/// This run's transitions as one batch.
pub fn transitions_batch(rows: &[Transition], stamp: &BatchStamp) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| Some(r.source_system.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.lead_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.from_stage.map(Stage::as_str))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.to_stage.as_str()))
                .collect::<StringArray>(),
        ),
        ts_array(rows.iter().map(|r| Some(r.changed_at)).collect()),
        Arc::new(
            rows.iter()
                .map(|_| Some(stamp.run_id.as_str()))
                .collect::<StringArray>(),
        ),
    ];
    metric_batch(
        "lead_stage_transitions",
        &transitions_schema(),
        columns,
        stamp,
    )
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
