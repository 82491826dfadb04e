//! `funnelhouse runs JOB`: the job's recent runs from `_runs` (newest first), where the job
//! keeps them its current watermarks from its state files, and who holds the job's lock —
//! as tables, or with `--json` as one JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use serde::Deserialize;
use serde_json::{Value, json};

use super::format::{self, table};
use crate::config::{Template, process_env};
use crate::error::{Error, Result};
use crate::lock::LockRecord;
use crate::sink::{Warehouse, WarehouseUrl, layout, read_parquet_rows};

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
    /// What the run flagged without failing (a shrunken full pull, a daily limit).
    pub warnings: Option<String>,
    /// `<dataset>` → (read, written, rejected), for every `<dataset>_read` column present.
    pub datasets: BTreeMap<String, (i64, i64, i64)>,
    /// HTTP requests, retries included.
    pub requests: i64,
    /// Retries.
    pub retries: i64,
    /// Response body bytes received.
    pub bytes_received: i64,
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

/// `_runs` files read at once. Each is one row, and on object storage a round trip: one
/// after another, a fan-in's look at fifty runs of each job it covers waited on fifty.
const RUN_FILES_READ_AT_ONCE: usize = 16;

/// The `limit` newest runs of `job`, newest first.
pub async fn recent_runs(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    limit: usize,
) -> Result<Vec<RunSummary>> {
    let prefix = layout::runs_prefix();
    let mut paths: Vec<ObjectPath> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::storage(format!("{prefix}/"), e))?
        .into_iter()
        .filter(|p| {
            p.filename()
                .is_some_and(|f| layout::runs_file_run_id(f, job).is_some())
        })
        .collect();
    // Run ids start with the UTC start time, so name order is start order.
    paths.sort_by(|a, b| b.as_ref().cmp(a.as_ref()));
    paths.truncate(limit);
    // Collected first: a stream mapping by closure over borrowed paths is not `Send` for
    // every lifetime, which the scheduler's spawned runs (a fan-in reads runs) need.
    let reads: Vec<_> = paths
        .iter()
        .map(|path| read_parquet_rows(store, path))
        .collect();
    let files: Vec<Vec<RecordBatch>> = futures::stream::iter(reads)
        .buffered(RUN_FILES_READ_AT_ONCE)
        .try_collect()
        .await?;
    let mut runs = Vec::with_capacity(paths.len());
    for batch in files.iter().flatten() {
        runs.extend(rows_of(batch));
    }
    // A run id names its start to the second; two runs in one second (a quick `--source`
    // rerun) are told apart by when they finished.
    let second = |run_id: &str| {
        run_id
            .split_once('-')
            .map_or(run_id, |(at, _)| at)
            .to_string()
    };
    runs.sort_by(|a, b| {
        second(&b.run_id)
            .cmp(&second(&a.run_id))
            .then(b.finished_at.cmp(&a.finished_at))
            .then(b.run_id.cmp(&a.run_id))
    });
    Ok(runs)
}

/// The watermarks in `_state/<job>/*.json`; empty when the job keeps none.
pub async fn watermarks(store: &dyn ObjectStore, job: &str) -> Result<Vec<Watermark>> {
    let mut out = Vec::new();
    for (source, state) in crate::state::load_all(store, job).await? {
        out.extend(state.watermarks().map(|(stream, watermark)| Watermark {
            source: source.clone(),
            stream: stream.to_string(),
            watermark: watermark.to_string(),
        }));
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
            warnings: string("warnings", row),
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
            bytes_received: int("bytes_received", row),
        })
        .collect()
}

/// What `runs` read: the job's recent runs, watermarks and lock, at `now`.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The job's name.
    pub job: String,
    /// The warehouse, as described in logs (no credentials).
    pub warehouse: String,
    /// Recent runs, newest first.
    pub runs: Vec<RunSummary>,
    /// Stored watermarks.
    pub watermarks: Vec<Watermark>,
    /// The lock object, if one exists (held, or left behind by a killed run).
    pub lock: Option<LockRecord>,
    /// When the listing was read (decides whether the lock's lease has run out).
    pub now: DateTime<Utc>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn took(r: &RunSummary) -> Option<std::time::Duration> {
    (r.finished_at? - r.started_at?).to_std().ok()
}

/// The text `funnelhouse runs` prints.
pub fn render(listing: &Listing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "job `{}` in {}: {} run(s), newest first",
        listing.job,
        listing.warehouse,
        listing.runs.len()
    );
    if !listing.runs.is_empty() {
        let mut runs = table(
            &[
                "run_id",
                "status",
                "started (UTC)",
                "took",
                "read/written/rejected",
                "requests",
                "retries",
                "received",
            ],
            &["took", "requests", "retries", "received"],
        );
        for r in &listing.runs {
            let counts: Vec<String> = r
                .datasets
                .iter()
                .filter(|(_, (read, _, _))| *read > 0)
                .map(|(d, (read, written, rejected))| format!("{d} {read}/{written}/{rejected}"))
                .collect();
            runs.add_row(vec![
                r.run_id.clone(),
                r.status.clone(),
                r.started_at.map_or("-".into(), utc),
                took(r).map_or("-".into(), format::duration),
                if counts.is_empty() {
                    "-".into()
                } else {
                    counts.join(", ")
                },
                r.requests.to_string(),
                r.retries.to_string(),
                format::bytes(u64::try_from(r.bytes_received).unwrap_or(0)),
            ]);
        }
        out.push_str(&format::render(&runs));
        // Errors and warnings below the table: one can be a paragraph.
        for r in &listing.runs {
            if let Some(error) = &r.error {
                let _ = writeln!(out, "  {} error: {error}", r.run_id);
            }
            if let Some(warnings) = &r.warnings {
                let _ = writeln!(out, "  {} warnings: {warnings}", r.run_id);
            }
        }
    }
    out.push('\n');
    if listing.watermarks.is_empty() {
        let _ = writeln!(out, "watermarks: none stored (full pulls)");
    } else {
        let mut marks = table(&["source", "stream", "watermark"], &[]);
        for m in &listing.watermarks {
            marks.add_row(vec![
                m.source.clone(),
                m.stream.clone(),
                m.watermark.clone(),
            ]);
        }
        out.push_str(&format::render(&marks));
    }
    out.push('\n');
    let _ = writeln!(out, "{}", describe_lock(listing.lock.as_ref(), listing.now));
    out
}

/// One line on the job's lock, for a person deciding whether a run is going.
fn describe_lock(lock: Option<&LockRecord>, now: DateTime<Utc>) -> String {
    let Some(lock) = lock else {
        return "lock: free (no run of this job is going)".to_string();
    };
    let ago = |t: DateTime<Utc>| format::duration((now - t).to_std().unwrap_or_default());
    let holder = format!(
        "run {} on host {}, pid {}, since {} UTC ({} ago)",
        lock.run_id,
        lock.host,
        lock.pid,
        utc(lock.acquired_at),
        ago(lock.acquired_at)
    );
    if lock.expires_at > now {
        format!(
            "lock: held by {holder}; lease until {} UTC (in {}, renewed while the run lives)",
            utc(lock.expires_at),
            format::duration((lock.expires_at - now).to_std().unwrap_or_default())
        )
    } else {
        format!(
            "lock: left by {holder}; its lease ran out at {} UTC ({} ago): that run was probably killed, and the next run takes the lock over",
            utc(lock.expires_at),
            ago(lock.expires_at)
        )
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// What `funnelhouse runs --json` prints: one document with the runs, watermarks and lock.
pub fn to_json(listing: &Listing) -> Value {
    let runs: Vec<Value> = listing
        .runs
        .iter()
        .map(|r| {
            let datasets: serde_json::Map<String, Value> = r
                .datasets
                .iter()
                .map(|(d, (read, written, rejected))| {
                    (
                        d.clone(),
                        json!({"read": read, "written": written, "rejected": rejected}),
                    )
                })
                .collect();
            json!({
                "run_id": r.run_id,
                "status": r.status,
                "started_at": r.started_at.map(rfc3339),
                "finished_at": r.finished_at.map(rfc3339),
                "duration_secs": took(r).map(|d| d.as_secs_f64()),
                "error": r.error,
                "warnings": r.warnings,
                "datasets": datasets,
                "requests": r.requests,
                "retries": r.retries,
                "bytes_received": r.bytes_received,
            })
        })
        .collect();
    let watermarks: Vec<Value> = listing
        .watermarks
        .iter()
        .map(|m| json!({"source": m.source, "stream": m.stream, "watermark": m.watermark}))
        .collect();
    let lock = listing.lock.as_ref().map(|l| {
        json!({
            "run_id": l.run_id,
            "host": l.host,
            "pid": l.pid,
            "acquired_at": rfc3339(l.acquired_at),
            "expires_at": rfc3339(l.expires_at),
            "expired": l.expires_at <= listing.now,
        })
    });
    json!({
        "job": listing.job,
        "warehouse": listing.warehouse,
        "runs": runs,
        "watermarks": watermarks,
        "lock": lock,
    })
}

/// The two keys of a job file `runs` needs. Read on their own so that an operator can list
/// runs without the vendor tokens a full load insists on; `validate` checks the rest.
#[derive(Debug, Deserialize)]
struct JobHeader {
    name: String,
    warehouse: Template,
}

/// The listing of `funnelhouse runs JOB [--limit N]`: the job file's newest `limit` runs,
/// its watermarks and its lock, read from its warehouse.
pub async fn list(path: &Path, limit: usize) -> Result<Listing> {
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
    let lock = crate::lock::holder(warehouse.store.as_ref(), &job.name).await?;
    Ok(Listing {
        job: job.name,
        warehouse: warehouse.describe(),
        runs,
        watermarks: marks,
        lock,
        now: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;
    use crate::normalize::{BatchStamp, RunRow, RunsBuilder, TableRows, runs_schema};
    use crate::sink::{runs_path, write_batches};

    async fn put_run(store: &Arc<dyn ObjectStore>, job: &str, run_id: &str, status: &str) {
        let mut rows = RunsBuilder::new(1);
        rows.push(&RunRow {
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
            intent_signals_read: 0,
            intent_signals_written: 0,
            intent_signals_rejected: 0,
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

        let mut listing = Listing {
            job: "a".into(),
            warehouse: "memory://".into(),
            runs,
            watermarks: marks,
            lock: None,
            now: Utc::now(),
        };
        let text = render(&listing);
        assert!(text.contains("leads 10/9/1"), "{text}");
        assert!(text.contains("2.5 s"), "duration in human units: {text}");
        assert!(text.contains("100 B"), "bytes received: {text}");
        assert!(text.contains("ads: HTTP 401"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["hubspot", "contacts", "2026-11-24T00:00:00Z"]),
            "{text}"
        );
        assert!(text.contains("lock: free"), "{text}");

        // A held lock names its holder and lease; one past its lease says so.
        let now = listing.now;
        let mut record = LockRecord {
            job: "a".into(),
            run_id: "20261125T050000Z-00000a".into(),
            host: "etl-7".into(),
            pid: 4242,
            acquired_at: now - chrono::Duration::seconds(90),
            expires_at: now + chrono::Duration::seconds(600),
            process: None,
        };
        listing.lock = Some(record.clone());
        let text = render(&listing);
        assert!(
            text.contains("lock: held by run 20261125T050000Z-00000a on host etl-7, pid 4242"),
            "{text}"
        );
        assert!(
            text.contains("(1m 30s ago)") && text.contains("lease until"),
            "{text}"
        );
        let doc = to_json(&listing);
        assert_eq!(doc["lock"]["host"], "etl-7");
        assert_eq!(doc["lock"]["pid"], 4242);
        assert_eq!(doc["lock"]["expired"], false);
        assert_eq!(doc["runs"][0]["run_id"], "20261125T030000Z-000002");
        assert_eq!(doc["runs"][0]["datasets"]["leads"]["rejected"], 1);
        assert_eq!(doc["runs"][0]["duration_secs"], 2.5);
        assert_eq!(doc["watermarks"][0]["stream"], "contacts");
        record.expires_at = now - chrono::Duration::seconds(30);
        listing.lock = Some(record);
        let text = render(&listing);
        assert!(
            text.contains("lock: left by run") && text.contains("lease ran out"),
            "{text}"
        );
        assert_eq!(to_json(&listing)["lock"]["expired"], true);
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
