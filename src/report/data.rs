//! What the report shows, read back from the warehouse: the run's `_runs` row and `_rejects`
//! file, and the job's metric tables as the last commit left them. Nothing here computes a
//! metric again; the report shows the tables' numbers (one source of truth), only summing
//! the funnel's channels into a total and picking the recent months.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::sink::layout::metric_file as metric_path;
use crate::sink::{rejects_path, runs_path, stream_parquet_file};

/// How many months of the funnel, CPSQL and SAL the report shows.
pub const RECENT_MONTHS: usize = 6;
/// How many reject reasons the run health lists.
pub const TOP_REJECT_REASONS: usize = 5;

/// Money as exact micros of the reporting currency (the tables' `DECIMAL(18, 6)`).
pub type Micros = i128;

/// Everything one report page shows.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// The job.
    pub job: String,
    /// The job's time zone (times are shown in it).
    pub timezone: chrono_tz::Tz,
    /// The reporting currency.
    pub currency: String,
    /// The run reported on.
    pub run: Option<RunHealth>,
    /// The sources of the job file and how each did in that run.
    pub sources: Vec<SourceOutcome>,
    /// The run's rejects: total and the most frequent reasons.
    pub rejects: Rejects,
    /// The run whose commit wrote the metric tables shown (`_run_id` of their rows).
    pub metrics_run_id: Option<String>,
    /// The month the run happened in (UTC, as the tables' months): not complete yet.
    pub current_month: Option<NaiveDate>,
    /// Funnel cohorts, all channels together, oldest first.
    pub funnel: Vec<FunnelMonth>,
    /// `cpsql_monthly` total rows, oldest first.
    pub cpsql: Vec<CpsqlRow>,
    /// `cpsql_monthly` channel rows of one month (see `cpsql_channel_month`).
    pub cpsql_channels: Vec<CpsqlRow>,
    /// The month `cpsql_channels` is about: the latest complete month with channel rows.
    pub cpsql_channel_month: Option<NaiveDate>,
    /// `sal_acceptance_monthly` total rows, oldest first.
    pub sal: Vec<SalMonth>,
    /// `enps` rows, by survey then period then dimension.
    pub enps: Vec<EnpsRow>,
}

/// The run's `_runs` row.
#[derive(Debug, Clone, Default)]
pub struct RunHealth {
    /// Run id.
    pub run_id: String,
    /// `succeeded`, `partial` or `failed`.
    pub status: String,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// Failed sources and why.
    pub error: Option<String>,
    /// Warnings, one per item.
    pub warnings: Vec<String>,
    /// Dataset → (read, written, rejected).
    pub datasets: BTreeMap<String, (i64, i64, i64)>,
    /// HTTP requests.
    pub requests: i64,
    /// Retries.
    pub retries: i64,
}

/// One source of the job and its outcome in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOutcome {
    /// Source name.
    pub name: String,
    /// Why it failed; `None` when it committed.
    pub error: Option<String>,
}

/// The run's rejects.
#[derive(Debug, Clone, Default)]
pub struct Rejects {
    /// Rows in the run's `_rejects` file.
    pub total: u64,
    /// (dataset, reason, count), most frequent first.
    pub top: Vec<(String, String, u64)>,
}

/// One creation month of the funnel, every channel summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunnelMonth {
    /// First day of the month.
    pub month: NaiveDate,
    /// leads, warm, MQL, SAL, SQL, customer (reached so far).
    pub reached: [i64; 6],
}

/// One `cpsql_monthly` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpsqlRow {
    /// First day of the month.
    pub month: NaiveDate,
    /// Channel (channel rows only).
    pub channel: Option<String>,
    /// Spend in the reporting currency.
    pub spend: Micros,
    /// SQLs that month.
    pub sqls: i64,
    /// Cost per SQL, null when unknown or no SQLs.
    pub cpsql: Option<Micros>,
    /// Every amount converted.
    pub complete: bool,
    /// Currencies without a rate.
    pub missing_currencies: Option<String>,
}

/// One `sal_acceptance_monthly` total row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalMonth {
    /// First day of the hand-off month.
    pub month: NaiveDate,
    /// Handed to sales.
    pub handed_off: i64,
    /// Accepted.
    pub accepted: i64,
    /// Rejected.
    pub rejected: i64,
    /// Neither yet.
    pub pending: i64,
    /// accepted / (accepted + rejected).
    pub acceptance_rate: Option<f64>,
    /// The job's target.
    pub target: f64,
    /// Median hours to accept.
    pub median_hours: Option<f64>,
    /// The SLA bounds in hours.
    pub sla_hours: (i64, i64),
    /// Contacted within the first bound.
    pub within_first: i64,
    /// Contacted within the second bound.
    pub within_second: i64,
    /// Breached.
    pub breached: i64,
    /// Not contacted, still inside the SLA.
    pub open: i64,
}

/// One `enps` row. Suppressed rows carry no numbers: the table has none to give.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnpsRow {
    /// Survey.
    pub survey_id: String,
    /// `2026-11`, `2026-W47`, `2026-Q4`.
    pub period: String,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// `overall` or a grouping column.
    pub dimension: String,
    /// The group.
    pub group: Option<String>,
    /// Scored respondents (null when suppressed).
    pub respondents: Option<i64>,
    /// %promoters, %passives, %detractors.
    pub pct: [Option<f64>; 3],
    /// eNPS.
    pub enps: Option<f64>,
    /// Too few respondents to show.
    pub suppressed: bool,
}

/// Read everything the report on `run_id` shows. `source_names` are the job file's sources;
/// `now` decides which month is still in progress.
pub async fn load(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    run_id: &str,
    source_names: &[String],
    timezone: chrono_tz::Tz,
    currency: &str,
) -> Result<ReportData> {
    // Every input at once: on object storage each read is a round trip or two, and one
    // after another they were most of the report's time.
    let run = read_optional(store, runs_path(job, run_id));
    // `_rejects` and `cpsql_monthly` grow with the rejects and the campaigns: streamed, only
    // what the page shows kept.
    let rejects = async {
        let mut rejects = RejectCounts::default();
        stream_optional(store, rejects_path(job, run_id), &REJECT_COLUMNS, |batch| {
            rejects.add(batch);
            Ok(())
        })
        .await?;
        Ok(rejects.top())
    };
    let table = |name: &str| read_optional(store, metric_path(name, job));
    let cpsql = async {
        let mut cpsql = Vec::new();
        stream_optional(
            store,
            metric_path("cpsql_monthly", job),
            &CPSQL_COLUMNS,
            |batch| {
                let shown = shown_cpsql_rows(batch)?;
                if shown.num_rows() > 0 {
                    cpsql.push(shown);
                }
                Ok(())
            },
        )
        .await?;
        Ok(cpsql)
    };
    let (run, rejects, cohort, cpsql, sal, enps) = futures::try_join!(
        run,
        rejects,
        table("funnel_cohort_monthly"),
        cpsql,
        table("sal_acceptance_monthly"),
        table("enps"),
    )?;
    let run = run.iter().find_map(run_health);
    let sources = source_names
        .iter()
        .map(|name| SourceOutcome {
            name: name.clone(),
            error: run
                .as_ref()
                .and_then(|r| r.error.as_deref())
                .and_then(|e| source_error(e, name, source_names)),
        })
        .collect();
    let current_month = run
        .as_ref()
        .and_then(|r| r.started_at)
        .map(|t| first_of_month(t.date_naive()));

    let metrics_run_id = [&cpsql, &cohort, &sal, &enps]
        .into_iter()
        .flatten()
        .find_map(|b| string_at(b, "_run_id", 0));

    let mut data = ReportData {
        job: job.to_string(),
        timezone,
        currency: currency.to_string(),
        run,
        sources,
        rejects,
        metrics_run_id,
        current_month,
        funnel: funnel_months(&cohort),
        sal: sal_months(&sal),
        enps: enps_rows(&enps),
        ..ReportData::default()
    };
    let (totals, channels) = cpsql_rows(&cpsql);
    data.cpsql = totals;
    // The channel view is about one finished month, so its numbers will not move.
    data.cpsql_channel_month = channels
        .iter()
        .map(|r| r.month)
        .filter(|m| current_month.is_none_or(|c| *m < c))
        .max();
    data.cpsql_channels = channels
        .into_iter()
        .filter(|r| Some(r.month) == data.cpsql_channel_month)
        .collect();
    keep_recent(&mut data.funnel, |m| m.month);
    keep_recent(&mut data.cpsql, |m| m.month);
    keep_recent(&mut data.sal, |m| m.month);
    Ok(data)
}

/// The newest run of `job` in `_runs`, if any.
pub async fn latest_run_id(store: &Arc<dyn ObjectStore>, job: &str) -> Result<Option<String>> {
    Ok(crate::ops::runs::recent_runs(store, job, 1)
        .await?
        .into_iter()
        .next()
        .map(|r| r.run_id))
}

fn keep_recent<T>(rows: &mut Vec<T>, month: impl Fn(&T) -> NaiveDate) {
    rows.sort_by_key(&month);
    let skip = rows.len().saturating_sub(RECENT_MONTHS);
    rows.drain(..skip);
}

/// A run's error names each failed source as `<name>: <message>`, joined by `; `. Messages may
/// hold `; ` themselves, so a source's message ends where the next source's name starts.
fn source_error(error: &str, name: &str, all: &[String]) -> Option<String> {
    let starts = |text: &str, n: &str| text.starts_with(&format!("{n}: "));
    let mut at = 0;
    let mut found: Option<usize> = None;
    let mut end = error.len();
    while at <= error.len() {
        let rest = &error[at..];
        if found.is_some() && all.iter().any(|n| starts(rest, n)) {
            end = at.saturating_sub(2);
            break;
        }
        if found.is_none() && starts(rest, name) {
            found = Some(at + name.len() + 2);
        }
        match rest.find("; ") {
            Some(i) => at += i + 2,
            None => break,
        }
    }
    found.map(|start| error[start..end.max(start)].to_string())
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Every batch of an object; none when it does not exist.
async fn read_optional(store: &Arc<dyn ObjectStore>, path: Path) -> Result<Vec<RecordBatch>> {
    stream_parquet_file(store, &path, None, true)
        .await?
        .try_collect()
        .await
}

/// Fold the batches of an object, only `columns`, if it exists.
async fn stream_optional(
    store: &Arc<dyn ObjectStore>,
    path: Path,
    columns: &[&str],
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let mut batches = stream_parquet_file(store, &path, Some(columns), true).await?;
    while let Some(batch) = batches.try_next().await? {
        each(&batch)?;
    }
    Ok(())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    batch.schema().index_of(name).ok().map(|i| batch.column(i))
}

fn string_at(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let col = column(batch, name)?;
    if !col.is_valid(row) {
        return None;
    }
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(col.as_string_view().value(row).to_string()),
        DataType::Dictionary(_, _) => {
            let cast = arrow::compute::cast(&col.slice(row, 1), &DataType::Utf8).ok()?;
            Some(cast.as_string::<i32>().value(0).to_string())
        }
        _ => None,
    }
}

fn int_at(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    column(batch, name)?
        .as_primitive_opt::<Int64Type>()
        .filter(|c| c.is_valid(row))
        .map(|c| c.value(row))
}

fn float_at(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    column(batch, name)?
        .as_primitive_opt::<Float64Type>()
        .filter(|c| c.is_valid(row))
        .map(|c| c.value(row))
}

fn bool_at(batch: &RecordBatch, name: &str, row: usize) -> Option<bool> {
    column(batch, name)?
        .as_boolean_opt()
        .filter(|c| c.is_valid(row))
        .map(|c| c.value(row))
}

fn date_at(batch: &RecordBatch, name: &str, row: usize) -> Option<NaiveDate> {
    let days = column(batch, name)?
        .as_primitive_opt::<Date32Type>()
        .filter(|c| c.is_valid(row))?
        .value(row);
    crate::days::checked_from_epoch_days(days)
}

fn time_at(batch: &RecordBatch, name: &str, row: usize) -> Option<DateTime<Utc>> {
    column(batch, name)?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .filter(|c| c.is_valid(row))
        .and_then(|c| DateTime::from_timestamp_micros(c.value(row)))
}

/// A money column's value as micros, whatever decimal scale the writer chose.
fn micros_at(batch: &RecordBatch, name: &str, row: usize) -> Option<Micros> {
    let col = column(batch, name)?;
    if !col.is_valid(row) {
        return None;
    }
    let money = arrow::compute::cast(&col.slice(row, 1), &DataType::Decimal128(38, 6)).ok()?;
    let money = money.as_primitive_opt::<arrow::datatypes::Decimal128Type>()?;
    money.is_valid(0).then(|| money.value(0))
}

fn run_health(batch: &RecordBatch) -> Option<RunHealth> {
    if batch.num_rows() == 0 {
        return None;
    }
    let datasets = batch
        .schema()
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_read").map(str::to_string))
        .map(|d| {
            let n = |suffix: &str| int_at(batch, &format!("{d}_{suffix}"), 0).unwrap_or(0);
            let counts = (n("read"), n("written"), n("rejected"));
            (d, counts)
        })
        .collect();
    Some(RunHealth {
        run_id: string_at(batch, "run_id", 0).unwrap_or_default(),
        status: string_at(batch, "status", 0).unwrap_or_default(),
        started_at: time_at(batch, "started_at", 0),
        finished_at: time_at(batch, "finished_at", 0),
        error: string_at(batch, "error", 0),
        warnings: string_at(batch, "warnings", 0)
            .map(|w| w.split("; ").map(str::to_string).collect())
            .unwrap_or_default(),
        datasets,
        requests: int_at(batch, "requests", 0).unwrap_or(0),
        retries: int_at(batch, "retries", 0).unwrap_or(0),
    })
}

/// The `_rejects` columns the run health counts.
const REJECT_COLUMNS: [&str; 2] = ["dataset", "reason"];

/// Rejects counted by (dataset, reason), batch by batch.
#[derive(Debug, Default)]
struct RejectCounts {
    counts: BTreeMap<(String, String), u64>,
    total: u64,
}

impl RejectCounts {
    fn add(&mut self, batch: &RecordBatch) {
        for row in 0..batch.num_rows() {
            self.total += 1;
            let key = (
                string_at(batch, "dataset", row).unwrap_or_default(),
                string_at(batch, "reason", row).unwrap_or_default(),
            );
            *self.counts.entry(key).or_default() += 1;
        }
    }

    /// The total and the most frequent reasons.
    fn top(self) -> Rejects {
        let mut top: Vec<(String, String, u64)> = self
            .counts
            .into_iter()
            .map(|((d, r), n)| (d, r, n))
            .collect();
        top.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        top.truncate(TOP_REJECT_REASONS);
        Rejects {
            total: self.total,
            top,
        }
    }
}

const REACHED: [&str; 6] = [
    "leads",
    "reached_warm",
    "reached_mql",
    "reached_sal",
    "reached_sql",
    "reached_customer",
];

fn funnel_months(batches: &[RecordBatch]) -> Vec<FunnelMonth> {
    let mut months: BTreeMap<NaiveDate, [i64; 6]> = BTreeMap::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let Some(month) = date_at(batch, "month", row) else {
                continue;
            };
            let sums = months.entry(month).or_default();
            for (sum, name) in sums.iter_mut().zip(REACHED) {
                *sum += int_at(batch, name, row).unwrap_or(0);
            }
        }
    }
    months
        .into_iter()
        .map(|(month, reached)| FunnelMonth { month, reached })
        .collect()
}

/// The `cpsql_monthly` columns the page shows.
const CPSQL_COLUMNS: [&str; 9] = [
    "month",
    "level",
    "channel",
    "spend",
    "sqls",
    "cpsql",
    "complete",
    "missing_currencies",
    "_run_id",
];

/// The rows of a `cpsql_monthly` batch the page shows: the total and channel levels (a
/// handful a month), not the campaigns (thousands).
fn shown_cpsql_rows(batch: &RecordBatch) -> Result<RecordBatch> {
    let shown: arrow::array::BooleanArray = (0..batch.num_rows())
        .map(|row| {
            Some(matches!(
                string_at(batch, "level", row).as_deref(),
                Some("total" | "channel")
            ))
        })
        .collect();
    arrow::compute::filter_record_batch(batch, &shown)
        .map_err(|e| Error::encode("cpsql_monthly", e))
}

/// (total rows, channel rows) of `cpsql_monthly`, each by month.
fn cpsql_rows(batches: &[RecordBatch]) -> (Vec<CpsqlRow>, Vec<CpsqlRow>) {
    let (mut totals, mut channels) = (Vec::new(), Vec::new());
    for batch in batches {
        for row in 0..batch.num_rows() {
            let Some(month) = date_at(batch, "month", row) else {
                continue;
            };
            let level = string_at(batch, "level", row).unwrap_or_default();
            let r = CpsqlRow {
                month,
                channel: string_at(batch, "channel", row),
                spend: micros_at(batch, "spend", row).unwrap_or(0),
                sqls: int_at(batch, "sqls", row).unwrap_or(0),
                cpsql: micros_at(batch, "cpsql", row),
                complete: bool_at(batch, "complete", row).unwrap_or(true),
                missing_currencies: string_at(batch, "missing_currencies", row),
            };
            match level.as_str() {
                "total" => totals.push(r),
                "channel" => channels.push(r),
                _ => {}
            }
        }
    }
    totals.sort_by_key(|r| r.month);
    channels.sort_by(|a, b| (a.month, &a.channel).cmp(&(b.month, &b.channel)));
    (totals, channels)
}

fn sal_months(batches: &[RecordBatch]) -> Vec<SalMonth> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let (Some(month), Some("total")) = (
                date_at(batch, "month", row),
                string_at(batch, "level", row).as_deref(),
            ) else {
                continue;
            };
            let n = |name: &str| int_at(batch, name, row).unwrap_or(0);
            out.push(SalMonth {
                month,
                handed_off: n("handed_off"),
                accepted: n("accepted"),
                rejected: n("rejected"),
                pending: n("pending"),
                acceptance_rate: float_at(batch, "acceptance_rate", row),
                target: float_at(batch, "target", row).unwrap_or(0.9),
                median_hours: float_at(batch, "median_hours_to_accept", row),
                sla_hours: (n("sla_first_hours"), n("sla_second_hours")),
                within_first: n("sla_contacted_within_24h"),
                within_second: n("sla_contacted_within_48h"),
                breached: n("sla_breached"),
                open: n("sla_open"),
            });
        }
    }
    out.sort_by_key(|m| m.month);
    out
}

fn enps_rows(batches: &[RecordBatch]) -> Vec<EnpsRow> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let Some(period_start) = date_at(batch, "period_start", row) else {
                continue;
            };
            let suppressed = bool_at(batch, "suppressed", row).unwrap_or(true);
            // A suppressed row's numbers are never carried into the page, whatever a
            // writer left in the table.
            let shown = |v: Option<f64>| v.filter(|_| !suppressed);
            out.push(EnpsRow {
                survey_id: string_at(batch, "survey_id", row).unwrap_or_default(),
                period: string_at(batch, "period", row).unwrap_or_default(),
                period_start,
                dimension: string_at(batch, "dimension", row).unwrap_or_default(),
                group: string_at(batch, "group_value", row),
                respondents: int_at(batch, "respondents", row).filter(|_| !suppressed),
                pct: [
                    shown(float_at(batch, "pct_promoters", row)),
                    shown(float_at(batch, "pct_passives", row)),
                    shown(float_at(batch, "pct_detractors", row)),
                ],
                enps: shown(float_at(batch, "enps", row)),
                suppressed,
            });
        }
    }
    out.sort_by(|a, b| {
        (
            &a.survey_id,
            a.period_start,
            a.dimension != "overall",
            &a.dimension,
            &a.group,
        )
            .cmp(&(
                &b.survey_id,
                b.period_start,
                b.dimension != "overall",
                &b.dimension,
                &b.group,
            ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sources_message_is_found_even_when_it_holds_semicolons() {
        let all = [
            "hubspot".to_string(),
            "ads".to_string(),
            "typeform".to_string(),
        ];
        let error = "hubspot: HTTP 500; retries exhausted; typeform: HTTP 401";
        assert_eq!(
            source_error(error, "hubspot", &all).as_deref(),
            Some("HTTP 500; retries exhausted")
        );
        assert_eq!(
            source_error(error, "typeform", &all).as_deref(),
            Some("HTTP 401")
        );
        assert_eq!(source_error(error, "ads", &all), None);
    }

    #[test]
    fn only_the_recent_months_are_kept_oldest_first() {
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).expect("date");
        let mut months: Vec<NaiveDate> = (1..=9).rev().map(day).collect();
        keep_recent(&mut months, |m| *m);
        assert_eq!(months, (4..=9).map(day).collect::<Vec<_>>());
    }
}
