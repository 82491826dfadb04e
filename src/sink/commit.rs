//! Publishing a run: every file is staged under `_staging/`, then a commit record listing
//! them is written, then each staged object is renamed onto its final name (an atomic
//! replace per object), then the record is removed. A run that dies before the record
//! changes nothing readers see; one that dies while publishing is rolled forward by the
//! next start of the job.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::document::write_json;
use super::layout::{commit_path, commits_prefix, staging_prefix, staging_run_prefix};
use crate::error::{Error, Result};

/// A file staged by a run, and where it goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StagedFile {
    /// The table it belongs to.
    pub table: String,
    /// Where it was staged.
    pub staged: String,
    /// Its final name.
    pub target: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// The commit record of a run: what to publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingCommit {
    /// The job.
    pub job: String,
    /// The run.
    pub run_id: String,
    /// Every file to publish.
    pub files: Vec<StagedFile>,
    /// Objects to remove once every file is published: partitions a backfill rebuilt to
    /// nothing (the vendor now has no rows for that day).
    #[serde(default)]
    pub deletes: Vec<String>,
    /// How the job's tables are laid out; `delta` adds one Delta commit per table.
    #[serde(default)]
    pub table_format: super::delta::TableFormat,
    /// The `txn` version of this commit's Delta commits, fixed before the record is written
    /// so that a roll-forward commits each table once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_version: Option<i64>,
}

/// Write the commit record, publish every file, then remove the record and the staging area.
pub async fn publish(store: &Arc<dyn ObjectStore>, commit: &PendingCommit) -> Result<()> {
    // --- Delta hook: the version its Delta commits carry, in the record. ---
    let delta;
    let commit = if commit.table_format == super::delta::TableFormat::Delta {
        let mut with_version = commit.clone();
        with_version.txn_version = Some(super::delta::next_txn_version(store, commit).await?);
        delta = with_version;
        &delta
    } else {
        commit
    };
    write_json(
        store.as_ref(),
        &commit_path(&commit.job, &commit.run_id),
        commit,
    )
    .await?;
    finish_publish(store, commit).await
}

/// Files renamed at once while publishing. Each rename is a request to the object store (a
/// copy and a delete on S3), so one at a time left a run with 730 spend partitions waiting on
/// as many round trips in a row; the order is free, the commit record covers every file.
const PUBLISH_CONCURRENCY: usize = 16;

async fn finish_publish(store: &Arc<dyn ObjectStore>, commit: &PendingCommit) -> Result<()> {
    let delta = commit.table_format == super::delta::TableFormat::Delta;
    let mut files = commit.files.iter();
    // The first file alone, then the `publish` pause point: a crash test stops the run there
    // with one file published and the others not.
    if let Some(first) = files.next() {
        publish_file(store, commit, first, delta).await?;
        crate::pause::point("publish").await;
    }
    // Collected first: a stream mapping by closure over borrowed files is not `Send` for
    // every lifetime, which the scheduler's spawned runs need.
    let renames: Vec<_> = files
        .map(|file| publish_file(store, commit, file, delta))
        .collect();
    futures::stream::iter(renames)
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let deletes: Vec<_> = commit
        .deletes
        .iter()
        .map(|stale| delete_stale(store, stale))
        .collect();
    futures::stream::iter(deletes)
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    if delta {
        super::delta::commit_tables(store, commit).await?;
    }
    let record_path = commit_path(&commit.job, &commit.run_id);
    store
        .delete(&record_path)
        .await
        .map_err(|e| Error::storage(record_path.to_string(), e))?;
    discard_staging(store, &commit.job, &commit.run_id).await
}

/// Remove an object a backfill rebuilt to nothing (gone already is fine).
async fn delete_stale(store: &Arc<dyn ObjectStore>, stale: &str) -> Result<()> {
    match store.delete(&Path::from(stale)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage(stale.to_string(), e)),
    }
}

/// One staged file onto its table (for a Delta job, after the copy its log will name).
async fn publish_file(
    store: &Arc<dyn ObjectStore>,
    commit: &PendingCommit,
    file: &StagedFile,
    delta: bool,
) -> Result<()> {
    if delta {
        super::delta::keep_data_file(store, commit, file).await?;
    }
    let staged = Path::from(file.staged.as_str());
    let target = Path::from(file.target.as_str());
    match store.rename(&staged, &target).await {
        Ok(()) => Ok(()),
        // Already moved by an earlier, interrupted publish of this same commit.
        Err(object_store::Error::NotFound { .. }) if store.head(&target).await.is_ok() => Ok(()),
        Err(e) => Err(Error::storage(file.target.clone(), e)),
    }
}

/// Remove whatever a run left under `_staging/<job>/<run_id>/`.
pub async fn discard_staging(store: &Arc<dyn ObjectStore>, job: &str, run_id: &str) -> Result<()> {
    let prefix = staging_run_prefix(job, run_id);
    let leftovers: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    for meta in leftovers {
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::storage(meta.location.to_string(), e)),
        }
    }
    Ok(())
}

/// Remove every staging area of `job`: called under the job's lock after
/// [`roll_forward`], when anything still staged belongs to a run that died before its commit
/// record and will never be published. Returns how many objects were removed.
pub async fn discard_abandoned_staging(store: &Arc<dyn ObjectStore>, job: &str) -> Result<usize> {
    let prefix = staging_prefix(job);
    let leftovers: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    for meta in &leftovers {
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::storage(meta.location.to_string(), e)),
        }
    }
    Ok(leftovers.len())
}

/// Finish any publish of this job that a killed run left half done; returns how many.
pub async fn roll_forward(store: &Arc<dyn ObjectStore>, job: &str) -> Result<usize> {
    let prefix = commits_prefix(job);
    let records: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    let mut finished = 0;
    for meta in records {
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| Error::storage(meta.location.to_string(), e))?
            .bytes()
            .await
            .map_err(|e| Error::storage(meta.location.to_string(), e))?;
        let commit: PendingCommit = serde_json::from_slice(&bytes).map_err(|e| {
            Error::storage(
                meta.location.to_string(),
                crate::error::Detail::new(format!("unreadable commit record: {e}"), e),
            )
        })?;
        tracing::warn!(job, run_id = %commit.run_id, "rolling forward an interrupted publish");
        finish_publish(store, &commit).await?;
        finished += 1;
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn publish_moves_files_and_roll_forward_finishes_a_half_publish() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let file = |n: &str| StagedFile {
            table: "t".into(),
            staged: format!("_staging/j/r1/t/{n}"),
            target: format!("t/{n}"),
            rows: 1,
            bytes: 1,
        };
        for n in ["a", "b"] {
            store
                .put(
                    &Path::from(format!("_staging/j/r1/t/{n}")),
                    PutPayload::from_static(b"new"),
                )
                .await
                .unwrap();
        }
        let commit = PendingCommit {
            job: "j".into(),
            run_id: "r1".into(),
            files: vec![file("a"), file("b")],
            deletes: vec![],
            table_format: Default::default(),
            txn_version: None,
        };
        // Simulate a run killed after the record and the first rename.
        store
            .put(
                &commit_path("j", "r1"),
                PutPayload::from(serde_json::to_vec(&commit).unwrap()),
            )
            .await
            .unwrap();
        store
            .rename(&Path::from("_staging/j/r1/t/a"), &Path::from("t/a"))
            .await
            .unwrap();

        assert_eq!(roll_forward(&store, "j").await.unwrap(), 1);
        for n in ["a", "b"] {
            let got = store
                .get(&Path::from(format!("t/{n}")))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&got[..], b"new");
        }
        let left: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(
            left.len(),
            2,
            "only the two published files remain: {left:?}"
        );
        assert_eq!(roll_forward(&store, "j").await.unwrap(), 0);
    }
}
