//! eNPS from `survey_responses`: `enps_responses` (each response with its period and bucket)
//! and `enps` (survey × period × dimension × group, plus an overall row per survey and
//! period). Promoters answer 9–10, passives 7–8, detractors the rest of the scale (0–6, or
//! 1–6 on a 1–10 scale); eNPS = %promoters − %detractors over scored responses.
//!
//! Anonymity: a group with fewer scored respondents than the threshold is suppressed —
//! counts, percentages and eNPS null, `suppressed = true`. When exactly one group of a
//! dimension is suppressed in a period, the next-smallest group is suppressed too, so the
//! small group cannot be recovered by subtracting the others from the overall row.
//!
//! Dimensions: `department`, `team` and `location` are columns of `survey_responses`; any
//! other (`tenure`, …) is read from its `groups` JSON column (the survey sources fill it
//! from answers, `group_questions`). A configured dimension that is null in every response
//! of a survey is reported ([`Enps::empty_dimensions`], into `_runs.warnings`): its eNPS
//! would otherwise quietly be one null group.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::Datelike;

use super::arrays::{
    get_i64, get_str, get_ts, i64_col, metric_batch, metric_schema, str_col, timestamp_type,
    ts_array, ts_col,
};
use super::config::{EnpsConfig, EnpsDimension, EnpsPeriod, EnpsScale};
use super::dates::{day_of, month_of_day, next_month};
use super::dates::{epoch_days, from_epoch_days};
use crate::error::Result;
use crate::normalize::BatchStamp;

/// An eNPS bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Promoter,
    Passive,
    Detractor,
}

impl Bucket {
    /// Its name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Promoter => "promoter",
            Bucket::Passive => "passive",
            Bucket::Detractor => "detractor",
        }
    }
}

/// The bucket of a score on a scale; `None` outside the scale.
pub fn bucket(score: i64, scale: EnpsScale) -> Option<Bucket> {
    match score {
        _ if !scale.contains(score) => None,
        9.. => Some(Bucket::Promoter),
        7..=8 => Some(Bucket::Passive),
        _ => Some(Bucket::Detractor),
    }
}

/// The first day of the period holding `day`.
pub fn period_start(day: i32, period: EnpsPeriod) -> i32 {
    let date = from_epoch_days(day);
    match period {
        EnpsPeriod::Month => month_of_day(day),
        EnpsPeriod::Week => day - date.weekday().num_days_from_monday() as i32,
        EnpsPeriod::Quarter => {
            let month = (date.month0() / 3) * 3 + 1;
            chrono::NaiveDate::from_ymd_opt(date.year(), month, 1).map_or(day, epoch_days)
        }
    }
}

/// The period after the one starting on `start`.
pub fn next_period(start: i32, period: EnpsPeriod) -> i32 {
    match period {
        EnpsPeriod::Week => start + 7,
        EnpsPeriod::Month => next_month(start),
        EnpsPeriod::Quarter => next_month(next_month(next_month(start))),
    }
}

/// The period's label: `2026-11`, `2026-W47`, `2026-Q4`.
pub fn period_label(start: i32, period: EnpsPeriod) -> String {
    let date = from_epoch_days(start);
    match period {
        EnpsPeriod::Month => date.format("%Y-%m").to_string(),
        EnpsPeriod::Week => date.format("%G-W%V").to_string(),
        EnpsPeriod::Quarter => format!("{}-Q{}", date.year(), date.month0() / 3 + 1),
    }
}

/// One response as `enps_responses` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub source_system: String,
    pub survey_id: String,
    pub response_id: String,
    pub respondent_hash: Option<String>,
    pub submitted_at: Option<i64>,
    /// First day of its period; `None` without a submission time.
    pub period_start: Option<i32>,
    pub score: Option<i64>,
    /// `None` when unanswered or outside the scale.
    pub bucket: Option<Bucket>,
    pub department: Option<String>,
    pub team: Option<String>,
    pub location: Option<String>,
    /// The other dimensions' groups (`survey_responses.groups`).
    pub groups: BTreeMap<String, String>,
}

impl Response {
    fn group(&self, dimension: &EnpsDimension) -> Option<&str> {
        match dimension.as_str() {
            "department" => self.department.as_deref(),
            "team" => self.team.as_deref(),
            "location" => self.location.as_deref(),
            other => self.groups.get(other).map(String::as_str),
        }
    }
}

/// The `survey_responses` columns `responses` reads (a projection for readers; `groups`
/// may be missing from files written before it existed).
pub const RESPONSE_COLUMNS: [&str; 11] = [
    "source_system",
    "survey_id",
    "response_id",
    "respondent_hash",
    "question_ref",
    "department",
    "team",
    "location",
    "submitted_at",
    "score",
    "groups",
];

/// The responses of `survey_responses` batches on the configured question, bucketed.
pub fn responses(batches: &[RecordBatch], cfg: &EnpsConfig) -> Result<Vec<Response>> {
    let t = "survey_responses";
    let mut out = Vec::new();
    for b in batches {
        let s = |n: &str| str_col(b, n, t);
        let (system, survey, response, respondent, question) = (
            s("source_system")?,
            s("survey_id")?,
            s("response_id")?,
            s("respondent_hash")?,
            s("question_ref")?,
        );
        let (department, team, location) = (s("department")?, s("team")?, s("location")?);
        let groups = super::arrays::opt_str_col(b, "groups", t)?;
        let submitted = ts_col(b, "submitted_at", t)?;
        let scores = i64_col(b, "score", t)?;
        let owned = |a: &StringArray, i| get_str(a, i).map(str::to_string);
        for i in 0..b.num_rows() {
            if let Some(wanted) = &cfg.question_ref
                && get_str(question, i) != Some(wanted.as_str())
            {
                continue;
            }
            let (Some(survey_id), Some(response_id)) = (get_str(survey, i), get_str(response, i))
            else {
                continue;
            };
            let submitted_at = get_ts(submitted, i);
            let score = get_i64(scores, i);
            out.push(Response {
                source_system: get_str(system, i).unwrap_or_default().to_string(),
                survey_id: survey_id.to_string(),
                response_id: response_id.to_string(),
                respondent_hash: owned(respondent, i),
                submitted_at,
                period_start: submitted_at.map(|at| period_start(day_of(at), cfg.period)),
                score,
                bucket: score.and_then(|s| bucket(s, cfg.scale)),
                department: owned(department, i),
                team: owned(team, i),
                location: owned(location, i),
                groups: groups
                    .and_then(|g| get_str(g, i))
                    .and_then(|json| serde_json::from_str(json).ok())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Scored responses of a group by bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub respondents: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
}

impl Counts {
    fn add(&mut self, b: Bucket) {
        self.respondents += 1;
        match b {
            Bucket::Promoter => self.promoters += 1,
            Bucket::Passive => self.passives += 1,
            Bucket::Detractor => self.detractors += 1,
        }
    }

    /// eNPS = %promoters − %detractors; `None` without respondents.
    pub fn enps(&self) -> Option<f64> {
        (self.respondents > 0)
            .then(|| 100.0 * (self.promoters - self.detractors) as f64 / self.respondents as f64)
    }
}

/// One row of `enps`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnpsRow {
    pub survey_id: String,
    pub period_start: i32,
    /// `overall`, or the dimension's name.
    pub dimension: String,
    /// The group; `None` on the overall row and for responses without the attribute.
    pub group: Option<String>,
    pub counts: Counts,
    pub suppressed: bool,
}

type Groups = BTreeMap<Option<String>, Counts>;

/// The `enps` accumulator: fold responses in one at a time (one count per survey × period ×
/// group, not per response), then read the rows.
#[derive(Debug)]
pub struct Enps {
    dims: Vec<EnpsDimension>,
    by_period: BTreeMap<(String, i32), (Counts, Vec<Groups>)>,
    /// Per survey: responses seen, and per dimension whether any had a group.
    filled: BTreeMap<String, (u64, Vec<bool>)>,
}

impl Enps {
    /// An empty accumulator for the job's dimensions.
    pub fn new(cfg: &EnpsConfig) -> Self {
        Enps {
            dims: cfg.group_by.clone(),
            by_period: BTreeMap::new(),
            filled: BTreeMap::new(),
        }
    }

    /// Count one response (unscored and undated ones count nowhere).
    pub fn add(&mut self, r: &Response) {
        let filled = self
            .filled
            .entry(r.survey_id.clone())
            .or_insert_with(|| (0, vec![false; self.dims.len()]));
        filled.0 += 1;
        for (seen, dim) in filled.1.iter_mut().zip(&self.dims) {
            *seen = *seen || r.group(dim).is_some();
        }
        let (Some(start), Some(b)) = (r.period_start, r.bucket) else {
            return;
        };
        let dims = &self.dims;
        let entry = self
            .by_period
            .entry((r.survey_id.clone(), start))
            .or_insert_with(|| (Counts::default(), vec![Groups::new(); dims.len()]));
        entry.0.add(b);
        for (groups, dim) in entry.1.iter_mut().zip(dims) {
            groups
                .entry(r.group(dim).map(str::to_string))
                .or_default()
                .add(b);
        }
    }

    /// `(survey, dimension, responses)` for every configured dimension that no response of
    /// the survey has a group for (its eNPS by that dimension is one null group), as
    /// `_runs.warnings` words them.
    pub fn empty_dimensions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (survey, (responses, seen)) in &self.filled {
            for (dim, seen) in self.dims.iter().zip(seen) {
                if !seen {
                    out.push(format!(
                        "enps: survey {survey}: dimension `{}` is null in all {responses} \
                         responses, so its eNPS is one null group (map it with the source's \
                         hidden_fields / custom_variables / group_questions, or leave it out \
                         of metrics.enps.group_by)",
                        dim.as_str()
                    ));
                }
            }
        }
        out
    }

    /// The `enps` rows: every period from a survey's first to its last (a period without
    /// responses has an overall row with no respondents, suppressed), each configured
    /// dimension's groups where there are responses.
    pub fn rows(self, cfg: &EnpsConfig) -> Vec<EnpsRow> {
        let Enps {
            dims,
            mut by_period,
            ..
        } = self;
        let dims = &dims;
        // Fill the gaps so a period with no responses is visible.
        let mut spans: BTreeMap<String, (i32, i32)> = BTreeMap::new();
        for (survey, start) in by_period.keys() {
            let span = spans.entry(survey.clone()).or_insert((*start, *start));
            span.0 = span.0.min(*start);
            span.1 = span.1.max(*start);
        }
        for (survey, (first, last)) in spans {
            let mut p = first;
            while p < last {
                by_period
                    .entry((survey.clone(), p))
                    .or_insert_with(|| (Counts::default(), vec![Groups::new(); dims.len()]));
                p = next_period(p, cfg.period);
            }
        }

        let threshold = cfg.anonymity_threshold;
        let mut out = Vec::new();
        for ((survey, start), (overall, groups)) in by_period {
            out.push(EnpsRow {
                survey_id: survey.clone(),
                period_start: start,
                dimension: "overall".to_string(),
                group: None,
                counts: overall,
                suppressed: overall.respondents < threshold,
            });
            for (dim, groups) in dims.iter().zip(groups) {
                let mut rows: Vec<EnpsRow> = groups
                    .into_iter()
                    .map(|(group, counts)| EnpsRow {
                        survey_id: survey.clone(),
                        period_start: start,
                        dimension: dim.as_str().to_string(),
                        group,
                        counts,
                        suppressed: counts.respondents < threshold,
                    })
                    .collect();
                if rows.iter().filter(|r| r.suppressed).count() == 1 {
                    // Complementary suppression: hide the smallest other group as well.
                    if let Some(next) = rows
                        .iter_mut()
                        .filter(|r| !r.suppressed)
                        .min_by_key(|r| r.counts.respondents)
                    {
                        next.suppressed = true;
                    }
                }
                out.extend(rows);
            }
        }
        out
    }
}

/// The `enps` rows of `responses` (see `Enps::rows`).
pub fn aggregate(responses: &[Response], cfg: &EnpsConfig) -> Vec<EnpsRow> {
    let mut enps = Enps::new(cfg);
    for r in responses {
        enps.add(r);
    }
    enps.rows(cfg)
}

/// The `enps_responses` schema.
pub fn responses_schema() -> SchemaRef {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    metric_schema(vec![
        s("source_system", false),
        s("survey_id", false),
        s("response_id", false),
        s("respondent_hash", true),
        Field::new("submitted_at", timestamp_type(), true),
        s("period", true),
        Field::new("period_start", DataType::Date32, true),
        Field::new("score", DataType::Int64, true),
        s("bucket", true),
        s("department", true),
        s("team", true),
        s("location", true),
        s("groups", true),
    ])
}

/// `enps_responses` as one batch.
pub fn responses_batch(
    rows: &[Response],
    cfg: &EnpsConfig,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    let strs = |f: &dyn Fn(&Response) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        strs(&|r| Some(&r.source_system)),
        strs(&|r| Some(&r.survey_id)),
        strs(&|r| Some(&r.response_id)),
        strs(&|r| r.respondent_hash.as_deref()),
        ts_array(rows.iter().map(|r| r.submitted_at).collect()),
        Arc::new(
            rows.iter()
                .map(|r| r.period_start.map(|p| period_label(p, cfg.period)))
                .collect::<StringArray>(),
        ),
        Arc::new(Date32Array::from(
            rows.iter().map(|r| r.period_start).collect::<Vec<_>>(),
        )),
        Arc::new(rows.iter().map(|r| r.score).collect::<Int64Array>()),
        strs(&|r| r.bucket.map(Bucket::as_str)),
        strs(&|r| r.department.as_deref()),
        strs(&|r| r.team.as_deref()),
        strs(&|r| r.location.as_deref()),
        Arc::new(
            rows.iter()
                .map(|r| {
                    (!r.groups.is_empty())
                        .then(|| serde_json::to_string(&r.groups).unwrap_or_default())
                })
                .collect::<StringArray>(),
        ),
    ];
    metric_batch("enps_responses", &responses_schema(), columns, stamp)
}

/// The `enps` schema.
pub fn schema() -> SchemaRef {
    let count = |n: &str| Field::new(n, DataType::Int64, true);
    let pct = |n: &str| Field::new(n, DataType::Float64, true);
    metric_schema(vec![
        Field::new("survey_id", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("period_start", DataType::Date32, false),
        Field::new("dimension", DataType::Utf8, false),
        Field::new("group_value", DataType::Utf8, true),
        count("respondents"),
        count("promoters"),
        count("passives"),
        count("detractors"),
        pct("pct_promoters"),
        pct("pct_passives"),
        pct("pct_detractors"),
        pct("enps"),
        Field::new("suppressed", DataType::Boolean, false),
    ])
}

/// `enps` as one batch.
pub fn batch(rows: &[EnpsRow], cfg: &EnpsConfig, stamp: &BatchStamp) -> Result<RecordBatch> {
    let shown = |r: &EnpsRow| (!r.suppressed).then_some(r.counts);
    let count = |f: fn(&Counts) -> i64| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| shown(r).map(|c| f(&c)))
                .collect::<Int64Array>(),
        )
    };
    let pct = |f: fn(&Counts) -> i64| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| {
                    shown(r)
                        .filter(|c| c.respondents > 0)
                        .map(|c| 100.0 * f(&c) as f64 / c.respondents as f64)
                })
                .collect::<Float64Array>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| Some(r.survey_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(period_label(r.period_start, cfg.period)))
                .collect::<StringArray>(),
        ),
        Arc::new(Date32Array::from(
            rows.iter().map(|r| r.period_start).collect::<Vec<_>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.dimension.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.group.as_deref())
                .collect::<StringArray>(),
        ),
        count(|c| c.respondents),
        count(|c| c.promoters),
        count(|c| c.passives),
        count(|c| c.detractors),
        pct(|c| c.promoters),
        pct(|c| c.passives),
        pct(|c| c.detractors),
        Arc::new(
            rows.iter()
                .map(|r| shown(r).and_then(|c| c.enps()))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.suppressed))
                .collect::<BooleanArray>(),
        ),
    ];
    metric_batch("enps", &schema(), columns, stamp)
}
