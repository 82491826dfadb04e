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
use super::partition::{file_batch, file_schema};
use super::seen::SeenKeys;
use crate::error::{Error, Result};
use crate::normalize::bounds::{Bounds, Flags, Plausible, RowJson};
use crate::normalize::{BatchStamp, Dataset, RejectRow, TableRows};

impl<B> crate::sources::RowSink<B::Row> for DatasetOutput<B>
where
    B: TableRows + Send,
    B::Row: Send,
{
    async fn push(&mut self, row: B::Row) -> Result<()> {
        DatasetOutput::push(self, row).await
    }

    fn reject(&mut self, location: &str, record: &Value, reason: String) {
        DatasetOutput::reject(self, location, record, reason);
    }

    fn merge_with_previous(&mut self) {
        DatasetOutput::merge_with_previous(self);
    }

    fn cover_day(&mut self, day: chrono::NaiveDate) {
        self.cover_partition(super::datasets::day_partition(day));
    }

    fn job(&self) -> &str {
        DatasetOutput::job(self)
    }
}

/// `_rejects.location` of a record the plausibility rules rejected.
pub const PLAUSIBILITY_LOCATION: &str = "plausibility check";

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
    /// The run's clock in microseconds (a replay's is the recorded run's): the plausibility
    /// rules judge dates against it, so a reprocess days later keeps exactly what the run kept.
    pub clock_micros: i64,
    /// Live count of records read (rows and rejects), for progress display.
    pub records: Arc<std::sync::atomic::AtomicU64>,
}

/// How an incremental pull merges into the table: rows keyed by one string column, the
/// newest version of a key wins, and the previous file's other rows are kept.
struct MergeKey<R> {
    column: &'static str,
    key_of: fn(&R) -> String,
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
    merge_key: Option<MergeKey<B::Row>>,
    /// Merging: the pulled rows by key (later pulls of a key replace earlier ones).
    merging: Option<BTreeMap<String, B::Row>>,
    records: Arc<std::sync::atomic::AtomicU64>,
    /// The table's key, to keep a record the vendor served twice (a repeated page) once.
    key_of: Option<fn(&B::Row) -> String>,
    /// Keys written so far by a full (non-merging) pull, as 128-bit keyed fingerprints (a
    /// collision among 10^9 keys has odds below 10^-20), in bounded memory (see
    /// [`SeenKeys`]).
    seen: SeenKeys,
    /// Rejected records of a full pull, by fingerprint of their text (rejects are few).
    seen_rejects: std::collections::HashSet<u128>,
    /// The fingerprint's two keyed hashes (random per run).
    fingerprint: [std::hash::RandomState; 2],
    /// Records of a full pull dropped as repeats of a key already written.
    repeats: u64,
    /// The run's clock, for the plausibility rules every row passes.
    bounds: Bounds,
    /// Records kept with an implausible value mended, for `_runs.warnings`.
    flags: Flags,
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
    /// Distinct records read from the vendor.
    pub read: u64,
    /// Records pulled more than once in this run (overlapping windows) and kept once.
    pub duplicates: u64,
    /// Rows of this pull written (read = written + rejects).
    pub written: u64,
    /// Rows of the previous file kept by an incremental merge.
    pub carried: u64,
    /// Was this an incremental pull (merged into the previous file) rather than a full one?
    pub incremental: bool,
    /// The staged files.
    pub files: Vec<StagedFile>,
    /// Records that could not be normalized.
    pub rejects: Vec<RejectRow>,
    /// What the source says the run should know (kept in `_runs.warnings`), e.g. that a
    /// vendor's daily limit ended its pull early.
    pub warnings: Vec<String>,
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
        let bounds = Bounds::new(target.clock_micros);
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
            merge_key: None,
            merging: None,
            records: target.records,
            key_of: None,
            seen: SeenKeys::default(),
            seen_rejects: std::collections::HashSet::new(),
            fingerprint: [std::hash::RandomState::new(), std::hash::RandomState::new()],
            repeats: 0,
            bounds,
            flags: Flags::default(),
        }
    }

    /// The job this output belongs to (for errors that name it).
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Declare the table's key: a record whose key was already pulled in this run (a page the
    /// vendor served twice) is counted as a duplicate and written once (the first version).
    /// Holds one key string per row of the run.
    pub fn with_key(mut self, key_of: fn(&B::Row) -> String) -> Self {
        self.key_of = Some(key_of);
        self
    }

    /// Declare the table's key so incremental pulls can merge into it.
    pub fn with_merge_key(mut self, column: &'static str, key_of: fn(&B::Row) -> String) -> Self {
        self.merge_key = Some(MergeKey { column, key_of });
        self.key_of = Some(key_of);
        self
    }

    /// This pull is incremental: keep the previous file's rows whose keys were not pulled
    /// again, and de-duplicate the pulled rows by key (the last pulled version wins). Pulled
    /// rows are held until `finish`, which an incremental pull's size allows.
    pub fn merge_with_previous(&mut self) {
        if self.merge_key.is_some() && self.merging.is_none() {
            self.merging = Some(BTreeMap::new());
        }
    }

    /// Add one decoded row; writes a batch out when the builder is full. The row first
    /// passes the dataset's plausibility rules (`normalize::bounds`): an impossible record
    /// goes to the rejects with the reason, an implausible value is mended and counted.
    pub async fn push(&mut self, mut row: B::Row) -> Result<()> {
        let mut found = Vec::new();
        if let Err(reason) = row.check(&self.bounds, &mut found) {
            let record = row.to_json();
            self.reject(PLAUSIBILITY_LOCATION, &record, reason);
            return Ok(());
        }
        if !found.is_empty() {
            self.flags.record(&row.record_id(), &found);
        }
        self.records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let (Some(merging), Some(merge_key)) = (self.merging.as_mut(), self.merge_key.as_ref()) {
            self.read += 1;
            merging.insert((merge_key.key_of)(&row), row);
            return Ok(());
        }
        if let Some(key_of) = self.key_of
            && !self
                .seen
                .insert(fingerprint(&self.fingerprint, &key_of(&row)))
                .map_err(|e| {
                    Error::io(
                        format!(
                            "{} {}: spilling the keys already written to the temporary directory (TMPDIR)",
                            self.source,
                            self.dataset.table()
                        ),
                        e,
                    )
                })?
        {
            // Read = distinct records: a repeat is counted apart, like the merge path does.
            self.repeats += 1;
            return Ok(());
        }
        self.read += 1;
        self.append(row).await
    }

    async fn append(&mut self, row: B::Row) -> Result<()> {
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

    /// Declare that this pull covers partition `key` even if no row lands in it: `finish`
    /// then writes an empty file there, replacing whatever an earlier run wrote.
    pub fn cover_partition(&mut self, key: String) {
        let new_builder = self.new_builder;
        self.parts.entry(Some(key)).or_insert_with(|| Part {
            builder: new_builder(1),
            file: None,
        });
    }

    /// Record a record that could not be normalized; the pull goes on.
    pub fn reject(&mut self, location: &str, record: &Value, reason: String) {
        // A reason may quote the offending value (`… is not a timestamp`): no raw e-mail.
        let reason = crate::normalize::redact_text(&reason);
        let text = record.to_string();
        if self.key_of.is_some()
            && !self
                .seen_rejects
                .insert(fingerprint(&self.fingerprint, &text))
        {
            // The same malformed record served again (a repeated page) is rejected once.
            self.repeats += 1;
            return;
        }
        self.read += 1;
        self.records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(source = %self.source, %location, %reason, "record rejected");
        self.rejects.push(RejectRow {
            dataset: self.dataset.table().to_string(),
            source: self.source.clone(),
            location: location.to_string(),
            record: text,
            reason,
        });
    }

    /// Write the pulled rows, then the previous file's rows with other keys. Returns how
    /// many pulled records repeated a key pulled earlier in this run, and how many previous
    /// rows were carried over.
    async fn merge(&mut self, pulled: BTreeMap<String, B::Row>) -> Result<(u64, u64)> {
        let merge_key = self
            .merge_key
            .as_ref()
            .expect("merging implies a merge key");
        let column = merge_key.column;
        let repeats = self.read - self.rejects.len() as u64 - pulled.len() as u64;
        // A record re-read by an overlapping window counts once.
        self.read -= repeats;
        let keys: std::collections::HashSet<String> = pulled.keys().cloned().collect();
        for row in pulled.into_values() {
            self.append(row).await?;
        }
        let previous = table_file(self.dataset.table(), None, &self.job, &self.source);
        let batches = match crate::sink::read_parquet_rows(&self.store, &previous).await {
            Ok(batches) => batches,
            Err(Error::Storage { .. }) if self.store.head(&previous).await.is_err() => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut carried = 0;
        for batch in batches {
            let kept = keep_other_keys(&batch, column, &keys)
                .and_then(|kept| conform_to(&kept, &self.schema))
                .map_err(|e| Error::encode(previous.to_string(), e))?;
            if kept.num_rows() == 0 {
                continue;
            }
            carried += kept.num_rows() as u64;
            let part = self.parts.entry(None).or_insert_with(|| Part {
                builder: (self.new_builder)(1),
                file: None,
            });
            flush(
                &self.store,
                &self.job,
                &self.source,
                self.dataset,
                &self.schema,
                &self.stamp,
                &None,
                part,
            )
            .await?;
            if part.file.is_none() {
                let staged = staging_path(&self.job, &self.stamp.run_id, &previous);
                part.file = Some(ParquetFile::create(
                    &self.store,
                    staged,
                    Arc::clone(&self.schema),
                )?);
            }
            if let Some(file) = part.file.as_mut() {
                // Previous rows keep their own `_run_id` and `_ingested_at` lineage.
                file.write(&kept).await?;
            }
        }
        Ok((repeats, carried))
    }

    /// Flush what is buffered and close every file.
    pub async fn finish(mut self) -> Result<OutputSummary> {
        let mut files = Vec::new();
        let mut written = 0;
        let (mut duplicates, mut carried) = (0, 0);
        let incremental = self.merging.is_some();
        if let Some(merging) = self.merging.take() {
            (duplicates, carried) = self.merge(merging).await?;
        }
        duplicates += self.repeats;
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
            if part.file.is_none()
                && let Some(partition) = key.as_deref()
            {
                // A covered partition with no rows: an empty file replaces the old one.
                let target = table_file(
                    self.dataset.table(),
                    Some(partition),
                    &self.job,
                    &self.source,
                );
                let staged = staging_path(&self.job, &self.stamp.run_id, &target);
                part.file = Some(ParquetFile::create(
                    &self.store,
                    staged,
                    file_schema(&self.schema, target.as_ref()),
                )?);
            }
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
            duplicates,
            carried,
            incremental,
            written: written - carried,
            files,
            rejects: self.rejects,
            warnings: self.flags.warnings(self.dataset.table()),
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
    // A partition's column lives in its folder name only (Hive), not in the file.
    let target = table_file(dataset.table(), key.as_deref(), job, source);
    if part.file.is_none() {
        let staged = staging_path(job, &stamp.run_id, &target);
        part.file = Some(ParquetFile::create(
            store,
            staged,
            file_schema(schema, target.as_ref()),
        )?);
    }
    if let Some(file) = part.file.as_mut() {
        file.write(&file_batch(&batch, target.as_ref())?).await?;
    }
    Ok(())
}

/// A 128-bit fingerprint of `key` from two independently keyed hashes.
fn fingerprint(states: &[std::hash::RandomState; 2], key: &str) -> u128 {
    use std::hash::BuildHasher;
    (u128::from(states[0].hash_one(key)) << 64) | u128::from(states[1].hash_one(key))
}

/// The rows of `batch` whose `column` value is not in `keys`.
/// A batch of an earlier file in the table's current schema: a nullable column added since
/// (the firmographics, `custom`) is null for its rows, so upgrading funnelhouse does not
/// break the next incremental merge. A missing non-nullable column is an error.
fn conform_to(
    batch: &arrow::record_batch::RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> std::result::Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(Arc::clone(c)),
            None if f.is_nullable() => Ok(arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
            None => Err(arrow::error::ArrowError::SchemaError(format!(
                "the earlier file has no `{}`",
                f.name()
            ))),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    arrow::record_batch::RecordBatch::try_new(Arc::clone(schema), columns)
}

fn keep_other_keys(
    batch: &arrow::record_batch::RecordBatch,
    column: &str,
    keys: &std::collections::HashSet<String>,
) -> std::result::Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{Array, BooleanArray, StringArray};
    let values = batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!("no string column `{column}`"))
        })?;
    let keep: BooleanArray = (0..values.len())
        .map(|i| Some(values.is_null(i) || !keys.contains(values.value(i))))
        .collect();
    arrow::compute::filter_record_batch(batch, &keep)
}
