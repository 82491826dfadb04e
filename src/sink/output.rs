//! Where a source's rows go during a run: a dataset builder per partition, flushed batch by
//! batch into staged Parquet files, plus the source's rejects and its read/written counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use serde_json::Value;

use super::commit::StagedFile;
use super::layout::{staging_path, table_file};
use super::parquet::ParquetFile;
use crate::error::{Error, Result};
use crate::normalize::{BatchStamp, Dataset, RejectRow, TableRows};

/// Which Hive partition (`date=2026-11-21`) a row belongs to; `None` for unpartitioned tables.
pub type PartitionFn<R> = fn(&R) -> Option<String>;

struct Part<B> {
    builder: B,
    file: Option<ParquetFile>,
}

/// Where and how a source's output is staged.
#[derive(Debug, Clone)]
pub struct OutputTarget {
    /// The warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// The job name.
    pub job: String,
    /// The source name.
    pub source: String,
    /// The run's lineage columns.
    pub stamp: BatchStamp,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Live count of records read (rows and rejects), for progress display.
    pub records: Arc<std::sync::atomic::AtomicU64>,
}

/// The staged output of one source for one dataset.
pub struct DatasetOutput<B: TableRows> {
    store: Arc<dyn ObjectStore>,
    job: String,
    source: String,
    dataset: Dataset,
    schema: SchemaRef,
    stamp: BatchStamp,
    batch_rows: usize,
    new_builder: fn(usize) -> B,
    partition_of: PartitionFn<B::Row>,
    parts: BTreeMap<Option<String>, Part<B>>,
    rejects: Vec<RejectRow>,
    read: u64,
    records: Arc<std::sync::atomic::AtomicU64>,
}

impl<B: TableRows> std::fmt::Debug for DatasetOutput<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetOutput")
            .field("source", &self.source)
            .field("dataset", &self.dataset)
            .field("read", &self.read)
            .finish()
    }
}

/// What a source produced, ready for the commit.
#[derive(Debug)]
pub struct OutputSummary {
    /// The dataset written.
    pub dataset: Dataset,
    /// The source name.
    pub source: String,
    /// Records read from the vendor.
    pub read: u64,
    /// Rows written to the dataset.
    pub written: u64,
    /// The staged files.
    pub files: Vec<StagedFile>,
    /// Records that could not be normalized.
    pub rejects: Vec<RejectRow>,
}

impl<B: TableRows> DatasetOutput<B> {
    /// An output for one source's rows of `dataset`.
    pub fn new(
        target: OutputTarget,
        dataset: Dataset,
        schema: SchemaRef,
        new_builder: fn(usize) -> B,
        partition_of: PartitionFn<B::Row>,
    ) -> Self {
        DatasetOutput {
            store: target.store,
            job: target.job,
            source: target.source,
            dataset,
            schema,
            stamp: target.stamp,
            batch_rows: target.batch_rows.max(1),
            new_builder,
            partition_of,
            parts: BTreeMap::new(),
            rejects: Vec::new(),
            read: 0,
            records: target.records,
        }
    }

    /// Add one decoded row; writes a batch out when the builder is full.
    pub async fn push(&mut self, row: B::Row) -> Result<()> {
        self.read += 1;
        self.records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = (self.partition_of)(&row);
        let batch_rows = self.batch_rows;
        let new_builder = self.new_builder;
        let part = self.parts.entry(key.clone()).or_insert_with(|| Part {
            builder: new_builder(batch_rows.min(1024)),
            file: None,
        });
        part.builder.push(row);
        if part.builder.len() >= batch_rows {
            let (store, schema, stamp) = (&self.store, &self.schema, &self.stamp);
            flush(
                store,
                &self.job,
                &self.source,
                self.dataset,
                schema,
                stamp,
                &key,
                part,
            )
            .await?;
        }
        Ok(())
    }

    /// Record a record that could not be normalized; the pull goes on.
    pub fn reject(&mut self, location: &str, record: &Value, reason: String) {
        self.read += 1;
        self.records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(source = %self.source, %location, %reason, "record rejected");
        self.rejects.push(RejectRow {
            dataset: self.dataset.table().to_string(),
            source: self.source.clone(),
            location: location.to_string(),
            record: record.to_string(),
            reason,
        });
    }

    /// Flush what is buffered and close every file.
    pub async fn finish(mut self) -> Result<OutputSummary> {
        let mut files = Vec::new();
        let mut written = 0;
        let parts = std::mem::take(&mut self.parts);
        for (key, mut part) in parts {
            flush(
                &self.store,
                &self.job,
                &self.source,
                self.dataset,
                &self.schema,
                &self.stamp,
                &key,
                &mut part,
            )
            .await?;
            let Some(file) = part.file else { continue };
            let (staged, rows) = file.close().await?;
            let final_path = table_file(
                self.dataset.table(),
                key.as_deref(),
                &self.job,
                &self.source,
            );
            let bytes = self
                .store
                .head(&staged)
                .await
                .map_err(|e| Error::storage(staged.to_string(), e))?
                .size;
            written += rows;
            files.push(StagedFile {
                table: self.dataset.table().to_string(),
                staged: staged.to_string(),
                target: final_path.to_string(),
                rows,
                bytes,
            });
        }
        Ok(OutputSummary {
            dataset: self.dataset,
            source: self.source,
            read: self.read,
            written,
            files,
            rejects: self.rejects,
        })
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "borrows disjoint fields of the output"
)]
async fn flush<B: TableRows>(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    source: &str,
    dataset: Dataset,
    schema: &SchemaRef,
    stamp: &BatchStamp,
    key: &Option<String>,
    part: &mut Part<B>,
) -> Result<()> {
    if part.builder.is_empty() {
        return Ok(());
    }
    let batch = part.builder.finish(stamp);
    if part.file.is_none() {
        let target = table_file(dataset.table(), key.as_deref(), job, source);
        let staged = staging_path(job, &stamp.run_id, &target);
        part.file = Some(ParquetFile::create(store, staged, Arc::clone(schema))?);
    }
    if let Some(file) = part.file.as_mut() {
        file.write(&batch).await?;
    }
    Ok(())
}
