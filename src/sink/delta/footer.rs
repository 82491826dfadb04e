//! The Arrow schema of a Parquet object, from its footer alone (two ranged reads).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};

use crate::error::{Error, Result};

/// The Arrow schema of the Parquet object at `path`.
pub(super) async fn arrow_schema(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<SchemaRef> {
    let name = path.to_string();
    let size = store
        .head(path)
        .await
        .map_err(|e| Error::storage(&name, e))?
        .size;
    if size < 8 {
        return Err(Error::encode(&name, "too small to be a Parquet file"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| Error::storage(&name, e))?;
    let footer = FooterTail::try_new(
        tail.as_ref()
            .try_into()
            .map_err(|_| Error::encode(&name, "short footer"))?,
    )
    .map_err(|e| Error::encode(&name, e))?;
    let length = u64::try_from(footer.metadata_length()).unwrap_or(u64::MAX);
    let start = (size - 8)
        .checked_sub(length)
        .ok_or_else(|| Error::encode(&name, "footer longer than the file"))?;
    let bytes = store
        .get_range(path, start..size - 8)
        .await
        .map_err(|e| Error::storage(&name, e))?;
    let metadata =
        ParquetMetaDataReader::decode_metadata(&bytes).map_err(|e| Error::encode(&name, e))?;
    let file = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| Error::encode(&name, e))?;
    Ok(Arc::new(schema))
}
