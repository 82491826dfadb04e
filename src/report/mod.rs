//! The run report: a self-contained HTML page per run, written next to the tables as
//! `_reports/<job>/<run_id>.html` and `_reports/<job>/latest.html`, for the people who look
//! at charts rather than query tables. It shows run health, the funnel, CPSQL, SAL acceptance
//! and eNPS, read back from what the run committed (`data`), drawn as SVG (`charts`) into one
//! page (`page`).
//!
//! A run writes its report after its commit; failing to write it is a warning, never a
//! failed run. `funnelhouse report JOB` builds it again from the warehouse.

pub mod charts;
pub mod data;
pub mod page;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;

use crate::config::{JobConfig, Template, process_env};
use crate::error::{Error, Result};
use crate::sink::{Warehouse, WarehouseUrl};

/// `_reports/<job>/<run_id>.html`.
pub fn report_path(job: &str, run_id: &str) -> ObjectPath {
    ObjectPath::from(format!("_reports/{job}/{run_id}.html"))
}

/// `_reports/<job>/latest.html`.
pub fn latest_path(job: &str) -> ObjectPath {
    ObjectPath::from(format!("_reports/{job}/latest.html"))
}

/// What a report needs to know about its job.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// Job name.
    pub name: String,
    /// Time zone times are shown in.
    pub timezone: chrono_tz::Tz,
    /// Reporting currency.
    pub currency: String,
    /// The sources of the job file, in order.
    pub sources: Vec<String>,
}

impl ReportJob {
    /// From a loaded job.
    pub fn of(job: &JobConfig) -> Self {
        ReportJob {
            name: job.name.clone(),
            timezone: job.timezone,
            currency: job.reporting_currency.clone(),
            sources: job.sources.iter().map(|s| s.name().to_string()).collect(),
        }
    }
}

/// The page for `run_id`, from the warehouse.
pub async fn build(store: &Arc<dyn ObjectStore>, job: &ReportJob, run_id: &str) -> Result<String> {
    let data = data::load(
        store,
        &job.name,
        run_id,
        &job.sources,
        job.timezone,
        &job.currency,
    )
    .await?;
    page::render(&data, Utc::now())
}

/// Build the report of `run_id` and write it to the warehouse; also as `latest.html` when
/// `latest`. Returns the run's report path.
pub async fn write(
    store: &Arc<dyn ObjectStore>,
    job: &ReportJob,
    run_id: &str,
    latest: bool,
) -> Result<ObjectPath> {
    let html = bytes::Bytes::from(build(store, job, run_id).await?);
    let path = report_path(&job.name, run_id);
    store
        .put(&path, PutPayload::from_bytes(html.clone()))
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    if latest {
        let latest = latest_path(&job.name);
        store
            .put(&latest, PutPayload::from_bytes(html))
            .await
            .map_err(|e| Error::storage(latest.to_string(), e))?;
    }
    Ok(path)
}

/// The pipeline's hook after a run committed: write its report, and on failure only warn —
/// the run's data is committed whatever happens to its report.
pub async fn after_run(store: &Arc<dyn ObjectStore>, job: &JobConfig, run_id: &str) {
    match write(store, &ReportJob::of(job), run_id, true).await {
        Ok(path) => tracing::info!(report = %path, "run report written"),
        Err(e) => {
            tracing::warn!(error = %e, "the run committed, but its report could not be written; `funnelhouse report` builds it again")
        }
    }
}

/// The keys of a job file `report` needs. Read on their own (as `runs` does) so a report can
/// be built without the vendor tokens a full load insists on.
#[derive(Debug, Deserialize)]
struct JobHeader {
    name: String,
    warehouse: Template,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default = "eur")]
    reporting_currency: String,
    #[serde(default)]
    sources: Vec<SourceName>,
}

#[derive(Debug, Deserialize)]
struct SourceName {
    name: String,
}

fn utc() -> String {
    "UTC".into()
}

fn eur() -> String {
    "EUR".into()
}

/// `funnelhouse report JOB [--run RUN_ID] [--out FILE]`: build a run's page again (the newest
/// run's by default) into the warehouse, or into `out`; returns where it went.
pub async fn rebuild(path: &Path, run_id: Option<&str>, out: Option<&Path>) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading job file {}", path.display()), e))?;
    let header: JobHeader =
        toml::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
    let timezone: chrono_tz::Tz = header.timezone.parse().map_err(|_| {
        Error::config(
            path,
            format!("timezone: `{}` is not an IANA time zone", header.timezone),
        )
    })?;
    let raw = header.warehouse.resolve(&process_env).map_err(|var| {
        Error::config(
            path,
            format!("warehouse: environment variable `{var}` is not set"),
        )
    })?;
    let warehouse =
        Warehouse::open(WarehouseUrl::parse(&raw).map_err(|e| Error::config(path, e))?)?;
    let job = ReportJob {
        name: header.name,
        timezone,
        currency: header.reporting_currency,
        sources: header.sources.into_iter().map(|s| s.name).collect(),
    };
    let store = &warehouse.store;
    let latest = data::latest_run_id(store, &job.name).await?;
    let run_id = match (run_id, &latest) {
        (Some(id), _) => id.to_string(),
        (None, Some(id)) => id.clone(),
        (None, None) => {
            return Err(Error::Run {
                job: job.name,
                message: format!("no run in {}/_runs yet", warehouse.describe()),
            });
        }
    };
    let row = crate::sink::runs_path(&job.name, &run_id);
    match store.head(&row).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::Run {
                job: job.name,
                message: format!("no run `{run_id}` in _runs (see `funnelhouse runs`)"),
            });
        }
        Err(e) => return Err(Error::storage(row.to_string(), e)),
    }
    match out {
        Some(file) => {
            let html = build(store, &job, &run_id).await?;
            std::fs::write(file, html)
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
            Ok(file.display().to_string())
        }
        None => {
            let is_latest = latest.as_deref() == Some(run_id.as_str());
            let written = write(store, &job, &run_id, is_latest).await?;
            Ok(match &warehouse.url {
                WarehouseUrl::Local(dir) => dir.join(written.as_ref()).display().to_string(),
                _ => format!("{}/{written}", warehouse.describe().trim_end_matches('/')),
            })
        }
    }
}
