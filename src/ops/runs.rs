//! `funnelhouse runs JOB`: the job's recent runs from `_runs` (newest first) and, where the
//! job keeps them, its current watermarks from `_state/<job>/<source>.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use crate::cli::report_error;
use crate::config::{Template, process_env};
use crate::error::{Error, Result};
use crate::sink::{Warehouse, WarehouseUrl, read_parquet_rows};

/// One `_runs` row, as listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// The run id (sorts by start time).
    pub run_id: String,
    /// `succeeded`, `partial` or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Which sources failed and why.
    pub error: Option<String>,
    /// `<dataset>` → (read, written, rejected), for every `<dataset>_read` column present.
    pub datasets: BTreeMap<String, (i64, i64, i64)>,
    /// HTTP requests, retries included.
    pub requests: i64,
    /// Retries.
    pub retries: i64,
}

/// A source's stream and the watermark it will resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The source name (the state file's name).
    pub source: String,
    /// The stream within the source.
    pub stream: String,
    /// The watermark, as the source stores it.
    pub watermark: String,
}

#[derive(Debug, Deserialize)]
struct StateFile {
    #[serde(default)]
    streams: BTreeMap<String, StreamState>,
}

#[derive(Debug, Deserialize)]
struct StreamState {
    watermark: Option<String>,
}

/// The `limit` newest runs of `job`, newest first.
pub async fn recent_runs(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    limit: usize,
) -> Result<Vec<RunSummary>> {
    let prefix = ObjectPath::from("_runs");
    let wanted = format!("{job}.");
    let mut paths: Vec<ObjectPath> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::storage("_runs/", e))?
        .into_iter()
        // `_runs/<job>.<run_id>.parquet`; a job named `a` must not list job `a.b`'s runs,
        // and job names cannot hold dots, so the rest must be exactly `<run_id>.parquet`.
        .filter(|p| {
            p.filename().is_some_and(|f| {
                f.strip_prefix(&wanted)
                    .and_then(|rest| rest.strip_suffix(".parquet"))
                    .is_some_and(|run_id| !run_id.is_empty() && !run_id.contains('.'))
            })
        })
        .collect();
    // Run ids start with the UTC start time, so name order is start order.
    paths.sort_by(|a, b| b.as_ref().cmp(a.as_ref()));
    paths.truncate(limit);
    let mut runs = Vec::with_capacity(paths.len());
    for path in &paths {
        for batch in read_parquet_rows(store, path).await? {
            runs.extend(rows_of(&batch));
        }
    }
    runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    Ok(runs)
}

/// The watermarks in `_state/<job>/*.json`; empty when the job keeps none.
pub async fn watermarks(store: &dyn ObjectStore, job: &str) -> Result<Vec<Watermark>> {
    let prefix = ObjectPath::from(format!("_state/{job}"));
    let mut metas = store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut out = Vec::new();
    for meta in metas {
        let Some(source) = meta
            .location
            .filename()
            .and_then(|f| f.strip_suffix(".json"))
            .map(str::to_string)
        else {
            continue;
        };
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| Error::storage(meta.location.to_string(), e))?
            .bytes()
            .await
            .map_err(|e| Error::storage(meta.location.to_string(), e))?;
        let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::storage(
                meta.location.to_string(),
                format!("not a state file ({{\"streams\": {{…}}}}): {e}"),
            )
        })?;
        for (stream, s) in state.streams {
            if let Some(watermark) = s.watermark {
                out.push(Watermark {
                    source: source.clone(),
                    stream,
                    watermark,
                });
            }
        }
    }
    Ok(out)
}

fn rows_of(batch: &RecordBatch) -> Vec<RunSummary> {
    let schema = batch.schema();
    let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i));
    let string = |name: &str, row: usize| {
        column(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .filter(|c| c.is_valid(row))
            .map(|c| c.value(row).to_string())
    };
    let int = |name: &str, row: usize| {
        column(name)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .filter(|c| c.is_valid(row))
            .map_or(0, |c| c.value(row))
    };
    let time = |name: &str, row: usize| {
        column(name)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .filter(|c| c.is_valid(row))
            .and_then(|c| DateTime::from_timestamp_micros(c.value(row)))
    };
    // Datasets are found by column name, so tables added later are listed without a change.
    let datasets: Vec<String> = schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_read").map(str::to_string))
        .collect();
    (0..batch.num_rows())
        .map(|row| RunSummary {
            run_id: string("run_id", row).unwrap_or_default(),
            status: string("status", row).unwrap_or_default(),
            started_at: time("started_at", row),
            finished_at: time("finished_at", row),
            error: string("error", row),
            datasets: datasets
                .iter()
                .map(|d| {
                    (
                        d.clone(),
                        (
                            int(&format!("{d}_read"), row),
                            int(&format!("{d}_written"), row),
                            int(&format!("{d}_rejected"), row),
                        ),
                    )
                })
                .collect(),
            requests: int("requests", row),
            retries: int("retries", row),
        })
        .collect()
}

/// The text `funnelhouse runs` prints.
pub fn render(job: &str, warehouse: &str, runs: &[RunSummary], marks: &[Watermark]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "job `{job}` in {warehouse}: {} run(s), newest first",
        runs.len()
    );
    if !runs.is_empty() {
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:<20} {:>8}  {:<40} {:>8} {:>7}  error",
            "run_id",
            "status",
            "started (UTC)",
            "secs",
            "read/written/rejected",
            "requests",
            "retries"
        );
    }
    for r in runs {
        let secs = match (r.started_at, r.finished_at) {
            (Some(s), Some(f)) => format!("{:.1}", (f - s).num_milliseconds() as f64 / 1000.0),
            _ => "-".into(),
        };
        let counts: Vec<String> = r
            .datasets
            .iter()
            .filter(|(_, (read, _, _))| *read > 0)
            .map(|(d, (read, written, rejected))| format!("{d} {read}/{written}/{rejected}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:<20} {:>8}  {:<40} {:>8} {:>7}  {}",
            r.run_id,
            r.status,
            r.started_at
                .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            secs,
            if counts.is_empty() {
                "-".into()
            } else {
                counts.join(", ")
            },
            r.requests,
            r.retries,
            r.error.as_deref().unwrap_or("")
        );
    }
    if marks.is_empty() {
        let _ = writeln!(out, "watermarks: none stored (full pulls)");
    } else {
        let _ = writeln!(out, "watermarks:");
        for m in marks {
            let _ = writeln!(out, "  {:<20} {:<24} {}", m.source, m.stream, m.watermark);
        }
    }
    out
}

/// The two keys of a job file `runs` needs. Read on their own so that an operator can list
/// runs without the vendor tokens a full load insists on; `validate` checks the rest.
#[derive(Debug, Deserialize)]
struct JobHeader {
    name: String,
    warehouse: Template,
}

/// `funnelhouse runs JOB [--limit N]`.
pub async fn runs_command(path: &Path, limit: usize) -> ExitCode {
    match list(path, limit).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => report_error(&e),
    }
}

async fn list(path: &Path, limit: usize) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading job file {}", path.display()), e))?;
    let job: JobHeader = toml::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
    let raw = job.warehouse.resolve(&process_env).map_err(|var| {
        Error::config(
            path,
            format!("warehouse: environment variable `{var}` is not set"),
        )
    })?;
    let raw = crate::config::resolve_job_path(path, &raw);
    let url = WarehouseUrl::parse(&raw).map_err(|e| Error::config(path, e))?;
    let warehouse = Warehouse::open(url)?;
    let runs = recent_runs(&warehouse.store, &job.name, limit).await?;
    let marks = watermarks(warehouse.store.as_ref(), &job.name).await?;
    Ok(render(&job.name, &warehouse.describe(), &runs, &marks))
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;
    use crate::normalize::{BatchStamp, RunRow, RunsBuilder, TableRows, runs_schema};
    use crate::sink::{runs_path, write_batches};

    async fn put_run(store: &Arc<dyn ObjectStore>, job: &str, run_id: &str, status: &str) {
        let mut rows = RunsBuilder::new(1);
        rows.push(RunRow {
            run_id: run_id.into(),
            job: job.into(),
            status: status.into(),
            started_at: Some(1_764_000_000_000_000),
            finished_at: Some(1_764_000_002_500_000),
            error: (status != "succeeded").then(|| "ads: HTTP 401".to_string()),
            leads_read: 10,
            leads_written: 9,
            leads_rejected: 1,
            spend_read: 0,
            spend_written: 0,
            spend_rejected: 0,
            survey_responses_read: 0,
            survey_responses_written: 0,
            survey_responses_rejected: 0,
            costs_read: 0,
            costs_written: 0,
            costs_rejected: 0,
            warnings: None,
            requests: 4,
            retries: 1,
            bytes_received: 100,
        });
        let stamp = BatchStamp {
            run_id: run_id.into(),
            ingested_at_micros: 0,
        };
        write_batches(
            store,
            &runs_path(job, run_id),
            runs_schema(),
            &[rows.finish(&stamp)],
        )
        .await
        .expect("run row written");
    }

    #[tokio::test]
    async fn lists_only_this_jobs_runs_newest_first_with_watermarks() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        put_run(&store, "a", "20261124T030000Z-000001", "succeeded").await;
        put_run(&store, "a", "20261125T030000Z-000002", "partial").await;
        put_run(&store, "a-b", "20261125T040000Z-000003", "succeeded").await;
        store
            .put(
                &ObjectPath::from("_state/a/hubspot.json"),
                r#"{"streams": {"contacts": {"watermark": "2026-11-24T00:00:00Z"}, "archived": {}}}"#
                    .into(),
            )
            .await
            .expect("state written");

        let runs = recent_runs(&store, "a", 20).await.expect("runs listed");
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["20261125T030000Z-000002", "20261124T030000Z-000001"]);
        assert_eq!(runs[0].datasets["leads"], (10, 9, 1));
        assert_eq!(runs[0].error.as_deref(), Some("ads: HTTP 401"));
        assert_eq!(recent_runs(&store, "a", 1).await.expect("listed").len(), 1);

        let marks = watermarks(store.as_ref(), "a").await.expect("state read");
        assert_eq!(
            marks,
            [Watermark {
                source: "hubspot".into(),
                stream: "contacts".into(),
                watermark: "2026-11-24T00:00:00Z".into()
            }]
        );
        assert!(
            watermarks(store.as_ref(), "a-b")
                .await
                .expect("no state")
                .is_empty()
        );

        let text = render("a", "memory://", &runs, &marks);
        assert!(text.contains("leads 10/9/1"), "{text}");
        assert!(text.contains("2.5"), "duration in seconds: {text}");
        assert!(text.contains("hubspot") && text.contains("2026-11-24T00:00:00Z"));
    }

    #[tokio::test]
    async fn a_state_file_of_another_shape_is_an_error_naming_it() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        store
            .put(&ObjectPath::from("_state/a/x.json"), "[1]".into())
            .await
            .expect("written");
        let err = watermarks(store.as_ref(), "a")
            .await
            .expect_err("bad shape");
        assert!(err.to_string().contains("_state/a/x.json"), "{err}");
    }
}
