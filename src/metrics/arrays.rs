//! Typed access to the columns of canonical batches by name, with errors that name the
//! table and column (a file written by an older or foreign writer must fail clearly, not
//! panic), and small builders shared by the metric tables.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::dates::{epoch_days, month_of_day};
use crate::error::{Error, Result};
use crate::normalize::BatchStamp;

fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
    table: &str,
    expected: &str,
) -> Result<&'a T> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::encode(table, format!("input has no `{name}` column")))?;
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        Error::encode(
            table,
            format!(
                "column `{name}` is {} where {expected} was expected",
                array.data_type()
            ),
        )
    })
}

/// A `Utf8` column.
pub fn str_col<'a>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<&'a StringArray> {
    column(batch, name, table, "Utf8")
}

/// A `Utf8` column that older files may lack.
pub fn opt_str_col<'a>(
    batch: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<Option<&'a StringArray>> {
    if batch.column_by_name(name).is_none() {
        return Ok(None);
    }
    str_col(batch, name, table).map(Some)
}

/// An `Int64` column.
pub fn i64_col<'a>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<&'a Int64Array> {
    column(batch, name, table, "Int64")
}

/// A `Boolean` column.
pub fn bool_col<'a>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<&'a BooleanArray> {
    column(batch, name, table, "Boolean")
}

/// A `Date32` column.
pub fn date_col<'a>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<&'a Date32Array> {
    column(batch, name, table, "Date32")
}

/// A `Decimal128` column.
pub fn decimal_col<'a>(
    batch: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<&'a Decimal128Array> {
    column(batch, name, table, "Decimal128")
}

/// A microsecond timestamp column.
pub fn ts_col<'a>(
    batch: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<&'a TimestampMicrosecondArray> {
    column(batch, name, table, "Timestamp(µs)")
}

/// A microsecond timestamp column that older files may lack.
pub fn opt_ts_col<'a>(
    batch: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<Option<&'a TimestampMicrosecondArray>> {
    if batch.column_by_name(name).is_none() {
        return Ok(None);
    }
    ts_col(batch, name, table).map(Some)
}

/// The value at `i`, or `None` when null.
pub fn get_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// The value at `i`, or `None` when null.
pub fn get_i64(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// The value at `i`, or `None` when null.
pub fn get_bool(a: &BooleanArray, i: usize) -> Option<bool> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// The value at `i`, or `None` when null.
pub fn get_ts(a: &TimestampMicrosecondArray, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// A metric table's schema: its fields, then the lineage columns `_run_id`, `_ingested_at`.
pub fn metric_schema(fields: Vec<Field>) -> SchemaRef {
    let mut fields = fields;
    fields.extend(BatchStamp::fields());
    Arc::new(Schema::new(fields))
}

/// A batch of `schema` from its columns plus the run's lineage columns.
pub fn metric_batch(
    table: &str,
    schema: &SchemaRef,
    mut columns: Vec<ArrayRef>,
    stamp: &BatchStamp,
) -> Result<RecordBatch> {
    let rows = columns.first().map_or(0, |c| c.len());
    columns.extend(stamp.columns(rows));
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| Error::encode(table, e))
}

/// Canonical timestamps: UTC microseconds (the canonical tables' own type).
pub use crate::normalize::timestamp_type;

/// A UTC microsecond timestamp array.
pub fn ts_array(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

/// The first day of each row's `month`: a `Date32`, or text `YYYY-MM` / `YYYY-MM-DD`.
pub fn months_of(batch: &RecordBatch, table: &str) -> Result<Vec<Option<i32>>> {
    let column = batch
        .column_by_name("month")
        .ok_or_else(|| Error::encode(table, "input has no `month` column"))?;
    match column.data_type() {
        DataType::Date32 => {
            let dates = date_col(batch, "month", table)?;
            Ok((0..dates.len())
                .map(|i| (!dates.is_null(i)).then(|| month_of_day(dates.value(i))))
                .collect())
        }
        DataType::Utf8 => {
            let text = str_col(batch, "month", table)?;
            (0..text.len())
                .map(|i| {
                    let Some(s) = get_str(text, i) else {
                        return Ok(None);
                    };
                    let full = if s.len() == 7 {
                        format!("{s}-01")
                    } else {
                        s.to_string()
                    };
                    chrono::NaiveDate::parse_from_str(&full, "%Y-%m-%d")
                        .map(|d| Some(month_of_day(epoch_days(d))))
                        .map_err(|_| Error::encode(table, format!("month `{s}` is not YYYY-MM")))
                })
                .collect()
        }
        other => Err(Error::encode(
            table,
            format!("column `month` is {other}; expected Date32 or YYYY-MM text"),
        )),
    }
}
