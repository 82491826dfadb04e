//! The end of a run: the `_rejects` and `_runs` files staged beside its tables, and a run
//! stopped before its commit record recorded as `aborted` with nothing published.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use object_store::ObjectStore;

use super::RunReport;
use crate::config::JobConfig;
use crate::error::Result;
use crate::normalize::{BatchStamp, RunRow, RunsBuilder, TableRows, rejects_schema, runs_schema};
use crate::sink::layout::{REJECTS_TABLE, RUNS_TABLE, raw_run_root, staging_run_prefix};
use crate::sink::{
    ParquetFile, Rejects, StagedFile, Warehouse, discard_staging, rejects_path, runs_path,
    staging_path, write_batches,
};

/// A run asked to stop before its commit record: nothing of it is published. What it staged
/// and the pages it landed are removed (the pages first: a kill in between leaves a raw folder
/// without a `_runs` row, which the next start removes), then a `_runs` row records it as
/// `aborted` with the reason. The caller releases the lock.
pub(super) async fn abort_run(
    warehouse: &Warehouse,
    job: &JobConfig,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    started: Instant,
    stop: crate::cancel::Stop,
) -> Result<RunReport> {
    let store = &warehouse.store;
    let run_id = &stamp.run_id;
    tracing::warn!(
        reason = stop.describe(),
        "run stopped before its commit: nothing is published"
    );
    remove_run_files(warehouse, job, run_id).await?;
    let row = RunRow {
        error: Some(format!(
            "stopped by {} before its commit; nothing was published",
            stop.describe()
        )),
        ..RunRow::without_rows(run_id, &job.name, "aborted", now.timestamp_micros())
    };
    let mut runs = RunsBuilder::new(1);
    runs.push(&row);
    let target = runs_path(&job.name, run_id);
    let file = write_batches(store, &target, runs_schema(), &[runs.finish(stamp)])
        .await?
        .staged(RUNS_TABLE, target.as_ref());
    Ok(RunReport {
        job: job.name.clone(),
        run_id: run_id.clone(),
        status: "aborted",
        datasets: BTreeMap::new(),
        sources: Vec::new(),
        files: vec![file],
        elapsed: started.elapsed(),
        warehouse: warehouse.describe(),
    })
}

/// Looks at a stopped run's files: how often, and how long apart, before the removal gives
/// up waiting for writes still landing (the next start removes anything later still).
const REMOVAL_PASSES: usize = 20;
const QUIET_PERIOD: std::time::Duration = std::time::Duration::from_millis(250);

/// Remove a stopped run's landed pages (first) and staged files, until a look a quiet
/// period later finds nothing of them. A write the stop cut short can land after a first
/// removal: on a local warehouse object_store writes on blocking threads, which run to the
/// end (and rename their file into place) even once the task awaiting them is aborted.
async fn remove_run_files(warehouse: &Warehouse, job: &JobConfig, run_id: &str) -> Result<()> {
    let store = &warehouse.store;
    let raw = object_store::path::Path::from(raw_run_root(&job.name, run_id));
    let staging = staging_run_prefix(&job.name, run_id);
    for pass in 1..=REMOVAL_PASSES {
        // A write landing during the removal fails it too (a local folder no longer empty
        // when it is removed): that pass is looked at again like one that left files.
        let removed = async {
            crate::sink::remove_prefix(warehouse, &raw).await?;
            discard_staging(store, &job.name, run_id).await
        }
        .await;
        tokio::time::sleep(QUIET_PERIOD).await;
        match removed {
            Ok(())
                if !holds_objects(store, &raw).await?
                    && !holds_objects(store, &staging).await? =>
            {
                return Ok(());
            }
            Err(e) if pass == REMOVAL_PASSES => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

async fn holds_objects(
    store: &Arc<dyn ObjectStore>,
    prefix: &object_store::path::Path,
) -> Result<bool> {
    use futures::StreamExt;
    match store.list(Some(prefix)).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(crate::error::Error::storage(prefix.to_string(), e)),
    }
}

/// Stage the run's `_rejects` file (one, possibly empty): it publishes in the same commit as
/// the rows it accounts for.
pub(super) async fn stage_rejects(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    stamp: &BatchStamp,
    rejects: Vec<Rejects>,
) -> Result<StagedFile> {
    let rejects_target = rejects_path(job, &stamp.run_id);
    let rejects_staged = staging_path(job, &stamp.run_id, &rejects_target);
    let rejects_rows: u64 = rejects.iter().map(Rejects::len).sum();
    // Batch by batch, as each source set them aside: never all of them in memory. No
    // rejects, no batch: the file is still written, with no rows.
    let mut file = ParquetFile::create(store, rejects_staged.clone(), rejects_schema())?;
    for batch in rejects.into_iter().flat_map(|r| r.into_batches(stamp)) {
        let batch = batch.map_err(|e| {
            e.into_error(format!(
                "{rejects_staged}: rejects set aside in the temporary directory (TMPDIR)"
            ))
        })?;
        file.write(&batch).await?;
    }
    let closed = file.close().await?;
    Ok(StagedFile {
        rows: rejects_rows,
        ..closed.staged(REJECTS_TABLE, rejects_target.as_ref())
    })
}

/// Stage the run's `_runs` row. Staged and published with the rest: a run that committed is
/// in `_runs`, also when it is killed after its commit record and the next start rolls it
/// forward.
pub(super) async fn stage_run_row(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    stamp: &BatchStamp,
    run_row: RunRow,
) -> Result<StagedFile> {
    let mut runs = RunsBuilder::new(1);
    runs.push(&run_row);
    let runs_target = runs_path(job, &stamp.run_id);
    let runs_staged = staging_path(job, &stamp.run_id, &runs_target);
    let written = write_batches(store, &runs_staged, runs_schema(), &[runs.finish(stamp)]).await?;
    Ok(written.staged(RUNS_TABLE, runs_target.as_ref()))
}
