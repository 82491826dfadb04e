//! Hive partitions. A partitioned table's partition column lives in the folder name only
//! (`spend/date=2026-11-21/<job>.<source>.parquet`), never inside its files: that is the Hive
//! convention every reader follows. DuckDB (`hive_partitioning`, detected by default), Spark,
//! Trino, Polars, pyarrow's datasets and pandas add the column back from the path; a file
//! that also held it would make pyarrow and pandas refuse the table (`Unable to merge: Field
//! date has incompatible types: date32[day] vs string`). So rows are stripped of their
//! partition columns when a file is written, and given them back from the path when the run
//! reads one (the metrics read `spend` back).

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, StringArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use crate::error::{Error, Result};

/// The `(column, value)` of every `column=value` folder in `path`, outermost first.
pub fn partition_values(path: &str) -> Vec<(&str, &str)> {
    let mut segments: Vec<&str> = path.split('/').collect();
    // The file name is not a folder, even if it holds a `=`.
    segments.pop();
    segments
        .into_iter()
        .filter_map(|segment| segment.split_once('='))
        .filter(|(column, _)| !column.is_empty())
        .collect()
}

/// The schema of a file written at `path`: `schema` without the columns its folders hold.
pub fn file_schema(schema: &SchemaRef, path: &str) -> SchemaRef {
    let partitions = partition_values(path);
    if partitions.is_empty() {
        return Arc::clone(schema);
    }
    let kept: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| !partitions.iter().any(|(c, _)| f.name() == c))
        .cloned()
        .collect();
    Arc::new(Schema::new_with_metadata(kept, schema.metadata().clone()))
}

/// `batch` as a file at `path` holds it: without the columns its folders hold.
pub fn file_batch(batch: &RecordBatch, path: &str) -> Result<RecordBatch> {
    let partitions = partition_values(path);
    if partitions.is_empty() {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let keep: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !partitions.iter().any(|(c, _)| f.name() == c))
        .map(|(i, _)| i)
        .collect();
    batch
        .project(&keep)
        .map_err(|e| Error::encode(path.to_string(), e))
}

/// A batch read from the file at `path` with its partition columns put back, typed and placed
/// as in `table` (the table's canonical schema). A column the file already holds (written
/// before partition columns moved to the path) is kept as it is.
pub fn with_partition_columns(
    batch: &RecordBatch,
    path: &str,
    table: &Schema,
) -> Result<RecordBatch> {
    let mut batch = batch.clone();
    for (column, value) in partition_values(path) {
        if batch.schema().column_with_name(column).is_some() {
            continue;
        }
        let Ok(position) = table.index_of(column) else {
            continue;
        };
        let field = table.field(position);
        let rows = batch.num_rows();
        let array: ArrayRef = match field.data_type() {
            DataType::Date32 => {
                let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                    Error::encode(
                        path.to_string(),
                        format!("`{column}={value}` is not a date"),
                    )
                })?;
                let days = crate::days::epoch_days(day);
                Arc::new(Date32Array::from(vec![days; rows]))
            }
            DataType::Utf8 => Arc::new(StringArray::from(vec![value; rows])),
            other => {
                return Err(Error::encode(
                    path.to_string(),
                    format!("partition column `{column}` of type {other} cannot be read back"),
                ));
            }
        };
        // Before the first column that follows it in the table, so the order is the table's.
        let schema = batch.schema();
        let at = schema
            .fields()
            .iter()
            .position(|f| table.index_of(f.name()).is_ok_and(|i| i > position))
            .unwrap_or(schema.fields().len());
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        let mut columns = batch.columns().to_vec();
        fields.insert(at, Arc::new(field.clone()));
        columns.insert(at, array);
        batch = RecordBatch::try_new(
            Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            columns,
        )
        .map_err(|e| Error::encode(path.to_string(), e))?;
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::Field;

    fn table() -> Schema {
        Schema::new(vec![
            Field::new("date", DataType::Date32, false),
            Field::new("campaign_id", DataType::Utf8, false),
            Field::new("clicks", DataType::Int64, false),
        ])
    }

    #[test]
    fn partition_folders_are_found_in_staged_and_final_paths() {
        assert_eq!(
            partition_values("_staging/demo/r1/spend/date=2026-11-21/demo.g.parquet"),
            vec![("date", "2026-11-21")]
        );
        assert!(partition_values("leads/demo.hubspot.parquet").is_empty());
        assert!(partition_values("leads/a=b.parquet").is_empty());
    }

    #[test]
    fn the_partition_column_leaves_the_file_and_comes_back_from_the_path() {
        let path = "spend/date=2026-11-21/demo.g.parquet";
        let schema = Arc::new(table());
        let days = (NaiveDate::from_ymd_opt(2026, 11, 21).unwrap() - NaiveDate::default())
            .num_days() as i32;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Date32Array::from(vec![days; 2])),
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let stored = file_batch(&batch, path).unwrap();
        assert_eq!(stored.schema(), file_schema(&schema, path));
        assert!(stored.schema().column_with_name("date").is_none());
        assert_eq!(
            with_partition_columns(&stored, path, &table()).unwrap(),
            batch
        );
        // A file from before the column moved to the path keeps its own.
        assert_eq!(
            with_partition_columns(&batch, path, &table()).unwrap(),
            batch
        );
        // Unpartitioned files are untouched.
        let plain = "costs/demo.c.parquet";
        assert_eq!(file_batch(&batch, plain).unwrap(), batch);
    }
}
