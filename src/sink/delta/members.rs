//! What a compacted file holds: the published names (relative to the table) of the files
//! merged into it, each with its row count, in row order — kept in the file's own metadata
//! (`funnelhouse.members`, a JSON list of `[name, rows]`). A run that replaces one of those
//! names rewrites the compacted file without that member's rows, in the same commit, so a
//! day of `spend` compacted across sources can still be replaced by one source alone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::path::Path;

use super::names::logical_target;
use crate::error::{Error, Result};
use crate::sink::parquet::{read_parquet_rows, write_batches};

/// One data file to add.
#[derive(Debug, Clone)]
pub(super) struct Add {
    /// Path relative to the table folder.
    pub path: String,
    /// Its partition values (column, value).
    pub partition: Vec<(String, String)>,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

/// The metadata key of a compacted file's members.
pub(super) const MEMBERS_KEY: &str = "funnelhouse.members";

/// The suffix of the files compaction writes.
pub(super) const COMPACTED_SUFFIX: &str = ".c.delta.parquet";

/// One merged file: its published name (relative to the table) and rows.
pub(super) type Member = (String, u64);

/// The members recorded in `schema`'s metadata (none for a file compaction did not write).
pub(super) fn recorded(schema: &Schema) -> Vec<Member> {
    schema
        .metadata()
        .get(MEMBERS_KEY)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// `schema` without metadata, then with `members` recorded.
pub(super) fn with_members(schema: &Schema, members: &[Member]) -> SchemaRef {
    let mut metadata = HashMap::new();
    metadata.insert(
        MEMBERS_KEY.to_string(),
        serde_json::to_string(members).unwrap_or_default(),
    );
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata))
}

/// The members of the data file at `path` (relative to its table) holding `rows` rows, with
/// `schema` as its footer has it (batches read back carry no schema metadata): those recorded
/// by compaction, or the file itself under its published name.
pub(super) fn members_of(path: &str, schema: &Schema, rows: u64) -> Vec<Member> {
    let recorded = recorded(schema);
    if path.ends_with(COMPACTED_SUFFIX) && recorded.iter().map(|m| m.1).sum::<u64>() == rows {
        recorded
    } else {
        vec![(logical_target(path), rows)]
    }
}

/// Batches re-labelled with `schema` (same columns, the members' metadata).
pub(super) fn relabel(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| {
            RecordBatch::try_new(Arc::clone(schema), b.columns().to_vec())
                .map_err(|e| Error::encode("compacted file", e))
        })
        .collect()
}

/// If the compacted file `file` (relative to `table`, in `partition`) holds a member named in
/// `replaced`, write it again without those rows as `new_name` and return what to add (`None`
/// inside when no rows remain); `Ok(None)` when it holds none of them.
pub(super) async fn rewrite_without(
    store: &Arc<dyn ObjectStore>,
    table: &str,
    file: &str,
    partition: &[(String, String)],
    replaced: &BTreeSet<String>,
    new_name: &str,
) -> Result<Option<Option<Add>>> {
    let path = Path::from(format!("{table}/{file}"));
    let footer = super::footer::arrow_schema(store, &path).await?;
    let batches = read_parquet_rows(store, &path).await?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let members = members_of(file, &footer, rows);
    if !members.iter().any(|(name, _)| replaced.contains(name)) {
        return Ok(None);
    }
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(Some(None));
    };
    // Rows are the members' in order: keep the ranges of those not replaced.
    let whole = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| Error::encode(path.to_string(), e))?;
    let mut kept_members = Vec::new();
    let mut kept = Vec::new();
    let mut offset = 0usize;
    for (name, rows) in members {
        let n = usize::try_from(rows).unwrap_or(usize::MAX);
        if !replaced.contains(&name) {
            kept.push(whole.slice(offset, n.min(whole.num_rows() - offset)));
            kept_members.push((name, rows));
        }
        offset = offset.saturating_add(n);
    }
    if kept_members.is_empty() {
        return Ok(Some(None));
    }
    let schema = with_members(&schema, &kept_members);
    let kept = relabel(&schema, kept)?;
    let target = Path::from(format!("{table}/{new_name}"));
    let written = write_batches(store, &target, schema, &kept).await?;
    Ok(Some(Some(Add {
        path: new_name.to_string(),
        partition: partition.to_vec(),
        size: written.bytes,
        rows: written.rows,
    })))
}
