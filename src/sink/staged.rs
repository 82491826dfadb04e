//! Files a run stages, seen from the store: the published day partitions a backfill leaves
//! without a replacement, and a published file's row count. (A staged file's size is the
//! bytes its writer wrote: `ClosedFile`.)

use std::sync::Arc;

use chrono::NaiveDate;
use object_store::{ObjectStore, ObjectStoreExt};

use super::commit::StagedFile;
use super::layout::table_file;
use crate::error::{Error, Result};
use crate::normalize::Dataset;

/// The day partitions of `source`'s spend table between `from` and `to` that exist in the warehouse but
/// that the backfill produced no file for: the vendor has no rows for those days any more.
pub async fn emptied_partitions(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    source: &str,
    (from, to): (NaiveDate, NaiveDate),
    staged: &[StagedFile],
) -> Result<Vec<String>> {
    let table = Dataset::Spend.table();
    let root = object_store::path::Path::from(table);
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let mut emptied = Vec::new();
    for partition in listing.common_prefixes {
        let Some(day) = partition.filename().and_then(super::layout::partition_day) else {
            continue;
        };
        if day < from || day > to {
            continue;
        }
        let file = table_file(table, Some(&super::layout::day_partition(day)), job, source);
        let target = file.to_string();
        if staged.iter().any(|f| f.target == target) {
            continue;
        }
        if store.head(&file).await.is_ok() {
            emptied.push(target);
        }
    }
    Ok(emptied)
}

/// The row count a published Parquet file's metadata states (its footer only: no data
/// pages read); `None` when there is no such file.
pub async fn published_rows(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
) -> Result<Option<u64>> {
    Ok(super::ParquetObject::open(store, path)
        .await?
        .map(|file| file.rows()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::record_batch::RecordBatch;

    /// A published file's count comes from its footer; a missing file has none.
    #[tokio::test]
    async fn a_published_files_rows_are_counted_and_a_missing_file_has_none() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let batch = |n: i64| {
            RecordBatch::try_from_iter([(
                "score",
                Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
            )])
            .unwrap()
        };
        let path = object_store::path::Path::from("leads/job.hubspot.parquet");
        let batches = [batch(3), batch(4)];
        super::super::write_batches(&store, &path, batches[0].schema(), &batches)
            .await
            .unwrap();
        assert_eq!(published_rows(&store, &path).await.unwrap(), Some(7));
        let missing = object_store::path::Path::from("leads/job.salesforce.parquet");
        assert_eq!(published_rows(&store, &missing).await.unwrap(), None);
    }
}
