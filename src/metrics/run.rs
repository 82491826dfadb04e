//! The metrics step of a run: after the sources are pulled and before the commit, read the
//! **current** state of the input tables — for each of the job's files, the replacement this
//! run staged if there is one, else the published file — compute every metric table and
//! stage it as `<table>/<job>.parquet`, so it publishes in the same commit as its inputs.
//! Spend and costs files staged by this run are rewritten with `spend_reporting` /
//! `amount_reporting` on the way.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::cpsql::Cpsql;
use super::fx::{FxRates, add_costs_reporting, add_spend_reporting};
use super::{Inputs, Settings, compute};
use crate::config::{EnvLookup, JobConfig};
use crate::error::{Error, Result};
use crate::normalize::BatchStamp;
use crate::sink::{StagedFile, read_parquet_rows, staging_path, write_batches};

/// Every table the metrics step writes, in the order it writes them.
pub const METRIC_TABLES: [&str; 8] = [
    "lead_stages",
    "lead_stage_transitions",
    "funnel_daily",
    "funnel_cohort_monthly",
    "cpsql_monthly",
    "sal_acceptance_monthly",
    "enps_responses",
    "enps",
];

/// The final path of a metric table's file: `<table>/<job>.parquet`.
pub fn metric_path(table: &str, job: &str) -> Path {
    Path::from(format!("{table}/{job}.parquet"))
}

/// The job's current files of an input table: final path → where to read it now.
async fn current_files(
    store: &Arc<dyn ObjectStore>,
    table: &str,
    job: &str,
    staged: &[StagedFile],
) -> Result<BTreeMap<String, String>> {
    let prefix = Path::from(table);
    let listed: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    let ours = |name: &str| {
        // `<job>.<source>.parquet`: job and source names contain no dots.
        name.strip_prefix(job)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".parquet"))
            .is_some_and(|source| !source.is_empty() && !source.contains('.'))
    };
    let mut files = BTreeMap::new();
    for meta in listed {
        if meta.location.filename().is_some_and(ours) {
            files.insert(meta.location.to_string(), meta.location.to_string());
        }
    }
    for file in staged.iter().filter(|f| f.table == table) {
        files.insert(file.target.clone(), file.staged.clone());
    }
    Ok(files)
}

async fn read_optional(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Vec<RecordBatch>> {
    match store.head(path).await {
        Ok(_) => read_parquet_rows(store, path).await,
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(Error::storage(path.to_string(), e)),
    }
}

async fn read_all(
    store: &Arc<dyn ObjectStore>,
    files: &BTreeMap<String, String>,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for location in files.values() {
        out.extend(read_parquet_rows(store, &Path::from(location.as_str())).await?);
    }
    Ok(out)
}

/// Compute and stage every metric table for this run; `files` are the run's staged source
/// files (its spend files gain `spend_reporting`). Returns the staged metric files.
pub async fn stage_metrics(
    job: &JobConfig,
    env: EnvLookup<'_>,
    store: &Arc<dyn ObjectStore>,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    files: &mut [StagedFile],
) -> Result<Vec<StagedFile>> {
    let rates_file = match &job.fx.rates_file {
        Some(t) => Some(t.resolve(env).map_err(|var| {
            Error::config(
                &job.path,
                format!("fx.rates_file: environment variable `{var}` is not set"),
            )
        })?),
        None => None,
    };
    let fx = FxRates::load(
        &job.fx,
        &job.reporting_currency,
        &job.path,
        rates_file.as_deref(),
    )
    .await?;

    // Spend, file by file: enrich what this run staged, fold everything into CPSQL.
    let mut cpsql = Cpsql::default();
    let mut unconverted = std::collections::BTreeSet::new();
    let spend_files = current_files(store, "spend", &job.name, files).await?;
    for location in spend_files.values() {
        let path = Path::from(location.as_str());
        let batches = read_parquet_rows(store, &path).await?;
        let staged_here = files.iter().position(|f| f.staged == *location);
        let mut enriched = Vec::with_capacity(batches.len());
        for batch in &batches {
            let (with_reporting, missing) = add_spend_reporting(batch, &fx)?;
            if staged_here.is_some() {
                unconverted.extend(missing);
            }
            cpsql.add_spend(&with_reporting, &fx, &job.metrics.cpsql)?;
            enriched.push(with_reporting);
        }
        if let (Some(index), Some(first)) = (staged_here, enriched.first()) {
            write_batches(store, &path, first.schema(), &enriched).await?;
            files[index].bytes = object_size(store, &path).await?;
        }
    }
    // Costs (written by the costs source when the job has one): the same, with
    // `amount_reporting` at the rate of the month's first day.
    let costs_files = current_files(store, "costs", &job.name, files).await?;
    for location in costs_files.values() {
        let path = Path::from(location.as_str());
        let batches = read_parquet_rows(store, &path).await?;
        let staged_here = files.iter().position(|f| f.staged == *location);
        let mut enriched = Vec::with_capacity(batches.len());
        for batch in &batches {
            cpsql.add_costs(batch, &fx)?;
            if staged_here.is_some() {
                let (with_reporting, missing) = add_costs_reporting(batch, &fx)?;
                unconverted.extend(missing);
                enriched.push(with_reporting);
            }
        }
        if let (Some(index), Some(first)) = (staged_here, enriched.first()) {
            write_batches(store, &path, first.schema(), &enriched).await?;
            files[index].bytes = object_size(store, &path).await?;
        }
    }
    if !unconverted.is_empty() {
        tracing::warn!(currencies = ?unconverted, reporting = %fx.reporting(),
            "no FX rate for some amounts: their *_reporting is null and cpsql_monthly marks them incomplete");
    }

    let leads = read_all(
        store,
        &current_files(store, "leads", &job.name, files).await?,
    )
    .await?;
    let surveys = read_all(
        store,
        &current_files(store, "survey_responses", &job.name, files).await?,
    )
    .await?;
    let previous_stages = read_optional(store, &metric_path("lead_stages", &job.name)).await?;
    let previous_transitions =
        read_optional(store, &metric_path("lead_stage_transitions", &job.name)).await?;

    let tables = compute(
        Inputs {
            leads: &leads,
            previous_stages: &previous_stages,
            previous_transitions: &previous_transitions,
            survey_responses: &surveys,
        },
        cpsql,
        Settings {
            stages: &job.stages,
            metrics: &job.metrics,
            reporting_currency: &job.reporting_currency,
            now_micros: now.timestamp_micros(),
        },
        stamp,
    )?;

    let mut staged = Vec::with_capacity(tables.len());
    for table in tables {
        let target = metric_path(table.table, &job.name);
        let path = staging_path(&job.name, &stamp.run_id, &target);
        let rows = write_batches(store, &path, table.schema, &table.batches).await?;
        tracing::info!(table = table.table, rows, "metric table staged");
        staged.push(StagedFile {
            table: table.table.to_string(),
            staged: path.to_string(),
            target: target.to_string(),
            rows,
            bytes: object_size(store, &path).await?,
        });
    }
    Ok(staged)
}

async fn object_size(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<u64> {
    Ok(store
        .head(path)
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?
        .size)
}
