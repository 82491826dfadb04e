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

/// The row count a published Parquet file's metadata states (no data pages read); `None`
/// when there is no such file.
pub async fn published_rows(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
) -> Result<Option<u64>> {
    use parquet::file::reader::FileReader;
    let bytes = match store.get(path).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| Error::storage(path.to_string(), e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage(path.to_string(), e)),
    };
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes)
        .map_err(|e| Error::encode(path.to_string(), e))?;
    Ok(Some(
        u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0),
    ))
}
