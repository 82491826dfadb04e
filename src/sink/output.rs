//! Where a source's rows go during a run: a dataset builder per partition, flushed batch by
//! batch into staged Parquet files, plus the source's rejects and its read/written counts.
//!
//! Memory stays bounded however many partitions a pull spreads over. A partition that fills a
//! batch streams into its own file (at most [`OPEN_FILES`] at once); the rows of partitions
//! that fill none (a year of daily spend is 365 partitions, each a few hundred rows) are held
//! up to a budget of [`BUFFERED_ROWS`] in all, then the largest are set aside on local disk
//! (`spill`) and written to their files, in the order they were pushed, when the pull ends.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, btree_map};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use serde_json::Value;

use super::commit::StagedFile;
use super::layout::{staging_path, table_file};
use super::parquet::{ClosedFile, ParquetFile};
use super::partition::{file_batch, file_schema};
use super::rejects::Rejects;
use super::seen::SeenKeys;
use crate::error::{Error, Result};
use crate::metrics::fx::FxRates;
use crate::normalize::bounds::{Bounds, Flags, Plausible, RowJson};
use crate::normalize::{BatchStamp, Dataset, RejectRow, TableRows};
use crate::spill::{Segment, Spill, SpillError};

impl<B> crate::sources::RowSink<B::Row> for DatasetOutput<B>
where
    B: TableRows + Send,
    B::Row: Send + 'static,
{
    async fn push(&mut self, row: B::Row) -> Result<()> {
        DatasetOutput::push(self, row).await
    }

    async fn push_all(&mut self, rows: Vec<B::Row>) -> Result<()> {
        DatasetOutput::push_all(self, rows).await
    }

    fn reject(&mut self, location: &str, record: &Value, reason: String) {
        DatasetOutput::reject(self, location, record, reason);
    }

    fn merge_with_previous(&mut self) {
        DatasetOutput::merge_with_previous(self);
    }

    fn cover_day(&mut self, day: chrono::NaiveDate) {
        self.cover_partition(super::layout::day_partition(day));
    }

    fn job(&self) -> &str {
        DatasetOutput::job(self)
    }
}

/// What [`DatasetOutput::admit`] made of a row.
enum Admitted {
    /// Rejected, or a repeat of a key already written: nothing more to do.
    Skipped,
    /// In its partition's builder; what is then due to be written, if anything.
    Buffered(Option<Due>),
    /// An incremental pull's row, checked: the caller hands it over to the merge.
    ToMerge,
}

/// Rows of a page from which freeing them is handed to a background thread: below it, the
/// hand-over costs about what it saves.
const FREED_ELSEWHERE_ROWS: usize = 32;

/// `_rejects.location` of a record the plausibility rules rejected.
pub(super) const PLAUSIBILITY_LOCATION: &str = "plausibility check";

/// Which Hive partition (`date=2026-11-21`) a row belongs to; `None` for unpartitioned tables.
pub type PartitionFn<R> = fn(&R) -> Option<String>;

/// Rows held in memory across all the partitions of one output (unless a batch is larger)
/// before the largest partitions' rows are set aside on disk: a few MiB of builders.
pub(super) const BUFFERED_ROWS: usize = 65_536;

/// Partition files an output keeps open while its pull streams: each holds a row group in
/// the making, an upload buffer and a compression context per column (about 4 MB all told
/// for a spend file), and every source of a run pulls at once, so one each. A partition that
/// fills a batch while its output's file is open sets the batch aside on disk instead; the
/// files are written one at a time when the pull ends. With four, a 10 M-lead spend-heavy
/// run peaked 15-23 MiB higher (eight spend files open beside the lead and survey files)
/// and was no faster.
pub(super) const OPEN_FILES: usize = 1;

/// First capacity of the builder of any partition but an output's first: most partitioned
/// outputs have many small partitions, which grow their builders only as far as they need.
const PARTITION_CAPACITY: usize = 64;

struct Part<B> {
    /// Rows not yet written or set aside (`None` once set aside, to give its memory back).
    builder: Option<B>,
    /// This partition filled a whole batch: while it is its output's only partition (an
    /// unpartitioned table), its next builder is made that size at once rather than grown
    /// to it by doubling (copying every column's buffers on the way).
    fills_batches: bool,
    file: Option<ParquetFile>,
    /// Rows set aside on disk before the partition had a file, oldest first.
    spilled: Vec<Segment>,
}

impl<B: TableRows> Part<B> {
    fn new() -> Self {
        Part {
            builder: None,
            fills_batches: false,
            file: None,
            spilled: Vec::new(),
        }
    }

    fn buffered(&self) -> usize {
        self.builder.as_ref().map_or(0, TableRows::len)
    }
}

/// The rows a partition's new builder is made for. Only a lone partition (`lone`: the
/// output's only one, as in an unpartitioned table) that filled a batch before starts at a
/// full batch; where many partitions fill batches (a 10 M-lead year of spend: thousands of
/// campaigns a day), each day's few rows past its batch would hold a whole batch's buffers
/// until set aside. Hundreds of them were 124 MB at the peak of such a pull, memory that
/// grew with the campaigns; grown by doubling, they hold about what they buffer.
fn builder_capacity(batch_rows: usize, first: bool, lone: bool, fills_batches: bool) -> usize {
    if fills_batches && lone {
        batch_rows
    } else if first {
        batch_rows.min(1024)
    } else {
        batch_rows.min(PARTITION_CAPACITY)
    }
}

/// The value bytes a full batch's variable-width columns took, per column: a new builder
/// is made with room for as many a row (and a sixteenth more), so that its string columns
/// are not grown to size by doubling — each step a reallocation copying what the column
/// holds (an `email_hash` column starting at 8 bytes a row copied itself three times over;
/// about 1 % of a 1 M-lead run's CPU went to those copies).
#[derive(Debug)]
struct ValueRoom {
    bytes: Vec<usize>,
    rows: usize,
}

impl ValueRoom {
    fn of<B: TableRows>(builder: &B) -> Self {
        ValueRoom {
            bytes: builder.value_bytes(),
            rows: builder.len().max(1),
        }
    }

    /// Room for `rows` rows like those measured.
    fn for_rows(&self, rows: usize) -> Vec<usize> {
        self.bytes
            .iter()
            .map(|&bytes| {
                let scaled = bytes.saturating_mul(rows) / self.rows;
                scaled.saturating_add(scaled / 16 + 64)
            })
            .collect()
    }
}

/// What is due after a row was buffered (see `DatasetOutput::admit`).
struct Due {
    /// The partition whose batch is full.
    full: Option<Option<String>>,
}

/// What writing a partition's file needs from its output, borrowed apart from the partitions.
struct Dest<'a> {
    store: &'a Arc<dyn ObjectStore>,
    job: &'a str,
    source: &'a str,
    dataset: Dataset,
    schema: &'a SchemaRef,
    stamp: &'a BatchStamp,
    reporting: Option<&'a mut Reporting>,
}

/// The output's [`Dest`], as a macro so it borrows only the fields it names.
macro_rules! dest {
    ($output:expr) => {
        Dest {
            store: &$output.store,
            job: &$output.job,
            source: &$output.source,
            dataset: $output.dataset,
            schema: &$output.schema,
            stamp: &$output.stamp,
            reporting: $output.reporting.as_mut(),
        }
    };
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
    /// The job's exchange rates, for the outputs whose files carry an amount in the
    /// reporting currency (spend, costs).
    pub fx: Arc<FxRates>,
}

/// Adds `<amount>_reporting` to a batch of a dataset, returning the currencies that had no
/// rate (`crate::metrics::fx::add_spend_reporting`, `add_costs_reporting`).
pub(super) type AddReporting =
    fn(&RecordBatch, &FxRates) -> Result<(RecordBatch, BTreeSet<String>)>;

/// The reporting-currency column an output's files carry, added to every batch as it is
/// built, so each file is written once, complete.
struct Reporting {
    fx: Arc<FxRates>,
    add: AddReporting,
    /// The currencies some row had no rate for.
    unconverted: BTreeSet<String>,
}

/// How an incremental pull merges into the table: rows keyed by one string column, the
/// newest version of a key wins, and the previous file's other rows are kept.
struct MergeKey<R> {
    column: &'static str,
    key_of: KeyFn<R>,
}

/// A row's key: borrowed from the row where one column is the key (no allocation per row
/// just to fingerprint it), built where it is several.
pub(crate) type KeyFn<R> = fn(&R) -> Cow<'_, str>;

/// The staged output of one source for one dataset.
pub struct DatasetOutput<B: TableRows> {
    store: Arc<dyn ObjectStore>,
    job: String,
    source: String,
    dataset: Dataset,
    schema: SchemaRef,
    stamp: BatchStamp,
    batch_rows: usize,
    /// The value bytes of the last full batch: what new builders are sized by.
    room: Option<ValueRoom>,
    partition_of: PartitionFn<B::Row>,
    parts: BTreeMap<Option<String>, Part<B>>,
    rejects: Rejects,
    read: u64,
    merge_key: Option<MergeKey<B::Row>>,
    /// Merging: the pulled rows by key (later pulls of a key replace earlier ones).
    merging: Option<BTreeMap<String, B::Row>>,
    records: Arc<std::sync::atomic::AtomicU64>,
    /// The table's key, to keep a record the vendor served twice (a repeated page) once.
    key_of: Option<KeyFn<B::Row>>,
    /// Rows in the partitions' builders.
    buffered: usize,
    /// The budget of `buffered` (see [`BUFFERED_ROWS`]).
    buffer_rows: usize,
    /// Partition files opened while the pull streams (see [`OPEN_FILES`]).
    open_files: usize,
    /// Rows set aside on disk.
    spill: Spill,
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
    /// The column in the reporting currency, for spend and costs.
    reporting: Option<Reporting>,
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
    pub rejects: Rejects,
    /// What the source says the run should know (kept in `_runs.warnings`), e.g. that a
    /// vendor's daily limit ended its pull early.
    pub warnings: Vec<String>,
    /// Currencies without an FX rate for some row: their `*_reporting` is null.
    pub unconverted: BTreeSet<String>,
}

impl<B: TableRows> DatasetOutput<B> {
    /// An output for one source's rows of `dataset`.
    pub fn new(
        target: OutputTarget,
        dataset: Dataset,
        schema: SchemaRef,
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
            buffered: 0,
            buffer_rows: BUFFERED_ROWS.max(2 * target.batch_rows),
            open_files: 0,
            spill: Spill::default(),
            room: None,
            partition_of,
            parts: BTreeMap::new(),
            rejects: Rejects::default(),
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
            reporting: None,
        }
    }

    /// Give every row `<amount>_reporting` at `fx`'s rates as its batch is built: `add`
    /// inserts the column, `schema` is the dataset's schema with it.
    pub fn with_reporting(
        mut self,
        fx: Arc<FxRates>,
        schema: SchemaRef,
        add: AddReporting,
    ) -> Self {
        self.schema = schema;
        self.reporting = Some(Reporting {
            fx,
            add,
            unconverted: BTreeSet::new(),
        });
        self
    }

    /// The job this output belongs to (for errors that name it).
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Hold at most `rows` rows in memory across partitions (the default is
    /// [`BUFFERED_ROWS`], or two batches if that is more); tests use tiny budgets.
    pub fn with_buffer_rows(mut self, rows: usize) -> Self {
        self.buffer_rows = rows.max(1);
        self
    }

    /// Declare the table's key: a record whose key was already pulled in this run (a page the
    /// vendor served twice) is counted as a duplicate and written once (the first version).
    /// Holds a 128-bit fingerprint per row of the run, in bounded memory ([`SeenKeys`]).
    pub fn with_key(mut self, key_of: KeyFn<B::Row>) -> Self {
        self.key_of = Some(key_of);
        self
    }

    /// Declare the table's key so incremental pulls can merge into it.
    pub fn with_merge_key(mut self, column: &'static str, key_of: KeyFn<B::Row>) -> Self {
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
        match self.admit(&mut row)? {
            Admitted::Buffered(Some(due)) => self.settle(due).await,
            Admitted::ToMerge => {
                self.hold_for_merge(row);
                Ok(())
            }
            Admitted::Buffered(None) | Admitted::Skipped => Ok(()),
        }
    }

    /// [`Self::push`] every row of a page, in order. Each row is taken in by plain calls and
    /// only the rare batch to write is awaited, and read where it lies: a row (hundreds of
    /// bytes) is not moved out of the page, nor into one future after another, on its way to
    /// the builder, which copies its values. The page's rows (a few allocations each) are
    /// then freed on a background thread: this runs on the source's own task, which a
    /// cursor-paged pull waits on.
    pub async fn push_all(&mut self, mut rows: Vec<B::Row>) -> Result<()>
    where
        B::Row: Send + 'static,
    {
        if self.merging.is_some() {
            // An incremental pull keeps its rows, checked, until the merge: nothing is
            // written here, so nothing is awaited.
            for mut row in rows {
                if let Admitted::ToMerge = self.admit(&mut row)? {
                    self.hold_for_merge(row);
                }
            }
            return Ok(());
        }
        for row in &mut rows {
            if let Admitted::Buffered(Some(due)) = self.admit(row)? {
                self.settle(due).await?;
            }
        }
        if rows.len() >= FREED_ELSEWHERE_ROWS {
            drop(crate::background::spawn(move || drop(rows)));
        }
        Ok(())
    }

    /// Check, de-duplicate and buffer one row (its implausible values mended in place).
    fn admit(&mut self, row: &mut B::Row) -> Result<Admitted> {
        let mut found = Vec::new();
        if let Err(reason) = row.check(&self.bounds, &mut found) {
            let record = row.to_json();
            self.reject(PLAUSIBILITY_LOCATION, &record, reason);
            return Ok(Admitted::Skipped);
        }
        if !found.is_empty() {
            self.flags.record(&row.record_id(), &found);
        }
        self.records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.merging.is_some() {
            return Ok(Admitted::ToMerge);
        }
        if let Some(key_of) = self.key_of
            && !self
                .seen
                .insert(fingerprint(&self.fingerprint, &key_of(row)))
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
            return Ok(Admitted::Skipped);
        }
        self.read += 1;
        Ok(Admitted::Buffered(self.buffer(row)))
    }

    /// Keep an admitted row of an incremental pull for the merge (the last version of a key
    /// wins).
    fn hold_for_merge(&mut self, row: B::Row) {
        if let (Some(merging), Some(merge_key)) = (self.merging.as_mut(), self.merge_key.as_ref()) {
            self.read += 1;
            merging.insert((merge_key.key_of)(&row).into_owned(), row);
        }
    }

    /// Add a checked row to its partition's builder; what is then due, if anything.
    fn buffer(&mut self, row: &B::Row) -> Option<Due> {
        let key = (self.partition_of)(row);
        let before = self.parts.len();
        // One lookup per row: whether the partition is new tells whether it is the only one.
        let (part, new) = match self.parts.entry(key.clone()) {
            btree_map::Entry::Occupied(held) => (held.into_mut(), false),
            btree_map::Entry::Vacant(slot) => (slot.insert(Part::new()), true),
        };
        let (first, lone) = (before == 0, before == 0 || (before == 1 && !new));
        let capacity = builder_capacity(self.batch_rows, first, lone, part.fills_batches);
        let room = &self.room;
        let builder = part.builder.get_or_insert_with(|| {
            B::with_room(
                capacity,
                room.as_ref().map(|r| r.for_rows(capacity)).as_deref(),
            )
        });
        builder.push(row);
        self.buffered += 1;
        let full = builder.len() >= self.batch_rows;
        if full {
            self.room = Some(ValueRoom::of(builder));
        }
        if !full && self.buffered < self.buffer_rows {
            return None;
        }
        Some(Due {
            full: full.then_some(key),
        })
    }

    /// Write what [`Self::admit`] left due: the full batch, then relief of the budget.
    async fn settle(&mut self, due: Due) -> Result<()> {
        if let Some(key) = &due.full {
            self.batch_full(key).await?;
        }
        if self.buffered >= self.buffer_rows {
            self.relieve().await?;
        }
        Ok(())
    }

    /// Partition `key` filled a batch: into its file, opened now if fewer than
    /// [`OPEN_FILES`] are, else aside on disk until the pull ends.
    async fn batch_full(&mut self, key: &Option<String>) -> Result<()> {
        let mut dest = dest!(self);
        let part = self.parts.get_mut(key).expect("the row's partition");
        part.fills_batches = true;
        let rows = part.buffered();
        if part.file.is_none() && self.open_files >= OPEN_FILES {
            let batch = dest.take_batch(key, part)?;
            let segments = self
                .spill
                .write_run(std::slice::from_ref(&batch))
                .map_err(|e| dest.spill_error(e))?;
            part.spilled.extend(segments);
        } else {
            if part.file.is_none() {
                self.open_files += 1;
            }
            dest.write(key, part, &mut self.spill).await?;
        }
        self.buffered -= rows;
        Ok(())
    }

    /// Bring the rows held in memory down to half the budget: partitions with an open file
    /// write theirs there, then the largest others are set aside on disk, in one run.
    async fn relieve(&mut self) -> Result<()> {
        let mut dest = dest!(self);
        for (key, part) in self.parts.iter_mut() {
            if part.file.is_some() && part.buffered() > 0 {
                self.buffered -= part.buffered();
                dest.write(key, part, &mut self.spill).await?;
            }
        }
        let goal = self.buffer_rows / 2;
        let mut largest: Vec<(usize, &Option<String>)> = self
            .parts
            .iter()
            .filter(|(_, part)| part.buffered() > 0)
            .map(|(key, part)| (part.buffered(), key))
            .collect();
        largest.sort_by_key(|(rows, _)| std::cmp::Reverse(*rows));
        let mut keys = Vec::new();
        let mut left = self.buffered;
        for (rows, key) in largest {
            if left <= goal {
                break;
            }
            left -= rows;
            keys.push(key.clone());
        }
        let mut batches = Vec::with_capacity(keys.len());
        for key in &keys {
            let part = self.parts.get_mut(key).expect("a buffered partition");
            batches.push(dest.take_batch(key, part)?);
        }
        let segments = self
            .spill
            .write_run(&batches)
            .map_err(|e| dest.spill_error(e))?;
        for (key, segment) in keys.iter().zip(segments) {
            let part = self.parts.get_mut(key).expect("a buffered partition");
            part.spilled.push(segment);
        }
        self.buffered = left;
        Ok(())
    }

    /// Declare that this pull covers partition `key` even if no row lands in it: `finish`
    /// then writes an empty file there, replacing whatever an earlier run wrote.
    pub fn cover_partition(&mut self, key: String) {
        self.parts.entry(Some(key)).or_insert_with(Part::new);
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
        let row = RejectRow {
            dataset: self.dataset.table().to_string(),
            source: self.source.clone(),
            location: location.to_string(),
            record: text,
            reason,
        };
        self.rejects.push(row, &self.stamp);
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
        let repeats = self.read - self.rejects.len() - pulled.len() as u64;
        // A record re-read by an overlapping window counts once.
        self.read -= repeats;
        let keys: std::collections::HashSet<String> = pulled.keys().cloned().collect();
        // Taken out of the map one by one, so each row's memory goes as it is written.
        for row in pulled.into_values() {
            if let Some(due) = self.buffer(&row) {
                self.settle(due).await?;
            }
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
            let part = self.parts.entry(None).or_insert_with(Part::new);
            dest!(self).write(&None, part, &mut self.spill).await?;
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
        // Dropped (a stopped run), it aborts the uploads in flight.
        let mut closing = tokio::task::JoinSet::new();
        let (mut duplicates, mut carried) = (0, 0);
        let incremental = self.merging.is_some();
        if let Some(merging) = self.merging.take() {
            (duplicates, carried) = self.merge(merging).await?;
        }
        duplicates += self.repeats;
        let parts = std::mem::take(&mut self.parts);
        for (index, (key, mut part)) in parts.into_iter().enumerate() {
            dest!(self).write(&key, &mut part, &mut self.spill).await?;
            let target = table_file(
                self.dataset.table(),
                key.as_deref(),
                &self.job,
                &self.source,
            );
            if part.file.is_none() && key.is_some() {
                // A covered partition with no rows: an empty file replaces the old one.
                let staged = staging_path(&self.job, &self.stamp.run_id, &target);
                part.file = Some(ParquetFile::create(
                    &self.store,
                    staged,
                    file_schema(&self.schema, target.as_ref()),
                )?);
            }
            let Some(file) = part.file else { continue };
            closing.spawn(async move { file.close().await.map(|closed| (index, closed, target)) });
            // A few at once, not every partition: each open file holds its encoder.
            while closing.len() >= FILES_CLOSING_AT_ONCE {
                files.push(self.closed(closing.join_next().await)?);
            }
        }
        while !closing.is_empty() {
            files.push(self.closed(closing.join_next().await)?);
        }
        // In partition order, whatever order the uploads ended in.
        files.sort_by_key(|(index, _)| *index);
        let files: Vec<StagedFile> = files.into_iter().map(|(_, file)| file).collect();
        let written: u64 = files.iter().map(|f| f.rows).sum();
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
            unconverted: self.reporting.map(|r| r.unconverted).unwrap_or_default(),
        })
    }
}

/// A partition file closed: its place among the partitions, the file, its final path.
type Closing = Result<(usize, ClosedFile, object_store::path::Path)>;

/// What a task of a `JoinSet` ends with.
type Joined<T> = std::result::Result<T, tokio::task::JoinError>;

/// Partition files finished and uploaded at once when a dataset's pull ends. A year of
/// spend is 730 day files, most of them written only now; one after the other, each waited
/// on its upload (a round trip to the object store) before the next began.
const FILES_CLOSING_AT_ONCE: usize = 8;

impl<B: TableRows> DatasetOutput<B> {
    /// The [`StagedFile`] of a closed partition file (with its place among the partitions),
    /// from `JoinSet::join_next`.
    fn closed(&self, joined: Option<Joined<Closing>>) -> Result<(usize, StagedFile)> {
        let (index, closed, target) = joined
            .ok_or_else(|| Error::encode(self.dataset.table(), "no partition file was closing"))?
            .map_err(|e| Error::encode(self.dataset.table(), e))??;
        Ok((index, closed.staged(self.dataset.table(), target.as_ref())))
    }
}

impl Dest<'_> {
    /// The file of partition `key`.
    fn target(&self, key: &Option<String>) -> object_store::path::Path {
        table_file(self.dataset.table(), key.as_deref(), self.job, self.source)
    }

    /// Write what partition `key` holds to its file (opened if need be): first the rows set
    /// aside on disk, oldest first, then its builder's, so the file keeps the push order.
    async fn write<B: TableRows>(
        &mut self,
        key: &Option<String>,
        part: &mut Part<B>,
        spill: &mut Spill,
    ) -> Result<()> {
        if part.spilled.is_empty() && part.buffered() == 0 {
            return Ok(());
        }
        let target = self.target(key);
        let file = match &mut part.file {
            Some(file) => file,
            None => {
                let staged = staging_path(self.job, &self.stamp.run_id, &target);
                part.file.insert(ParquetFile::create(
                    self.store,
                    staged,
                    file_schema(self.schema, target.as_ref()),
                )?)
            }
        };
        for segment in part.spilled.drain(..) {
            let batch = spill.read(segment).map_err(|e| self.spill_error(e))?;
            file.write(&batch).await?;
        }
        if let Some(builder) = part.builder.as_mut()
            && !builder.is_empty()
        {
            let batch = self.built(builder, &target)?;
            file.write(&batch).await?;
        }
        Ok(())
    }

    /// The builder's rows as the file at `target` holds them: with the reporting column when
    /// the output has one, without the partition columns (Hive: those live in the folder
    /// name only).
    fn built<B: TableRows>(
        &mut self,
        builder: &mut B,
        target: &object_store::path::Path,
    ) -> Result<RecordBatch> {
        let mut batch = builder.finish(self.stamp);
        if let Some(reporting) = self.reporting.as_deref_mut() {
            let (with_reporting, missing) = (reporting.add)(&batch, &reporting.fx)?;
            reporting.unconverted.extend(missing);
            batch = with_reporting;
        }
        file_batch(&batch, target.as_ref())
    }

    /// The builder's rows as the partition's file holds them, giving the builder's memory back.
    fn take_batch<B: TableRows>(
        &mut self,
        key: &Option<String>,
        part: &mut Part<B>,
    ) -> Result<RecordBatch> {
        let mut builder = part.builder.take().expect("a partition with rows");
        let target = self.target(key);
        self.built(&mut builder, &target)
    }

    fn spill_error(&self, e: SpillError) -> Error {
        e.into_error(format!(
            "{} {}: setting rows aside in the temporary directory (TMPDIR)",
            self.source,
            self.dataset.table()
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::datasets::{SpendBuilder, SpendRow, spend_schema};
    use crate::sink::read_parquet_rows;
    use arrow::record_batch::RecordBatch;
    use object_store::path::Path;

    /// A full batch's builder is for a lone partition that fills batches; among many, a
    /// partition past its batch grows from a small builder like any other, so memory follows
    /// the rows held, not the partitions that once filled a batch.
    #[test]
    fn only_a_lone_partition_that_filled_a_batch_starts_at_a_full_batch() {
        assert_eq!(builder_capacity(8192, false, true, true), 8192);
        assert_eq!(
            builder_capacity(8192, false, false, true),
            PARTITION_CAPACITY
        );
        assert_eq!(builder_capacity(8192, true, true, false), 1024);
        assert_eq!(
            builder_capacity(8192, false, false, false),
            PARTITION_CAPACITY
        );
        assert_eq!(builder_capacity(16, false, false, false), 16);
    }

    /// 2026-12-01, the clock of these pulls.
    const CLOCK_MICROS: i64 = 1_796_083_200_000_000;
    const TODAY: i32 = 20_788;

    fn target(store: Arc<dyn ObjectStore>, batch_rows: usize) -> OutputTarget {
        OutputTarget {
            store,
            job: "demo".into(),
            source: "google".into(),
            stamp: BatchStamp {
                run_id: "r1".into(),
                ingested_at_micros: CLOCK_MICROS,
            },
            batch_rows,
            clock_micros: CLOCK_MICROS,
            records: Arc::default(),
            fx: Arc::new(FxRates::new("EUR")),
        }
    }

    fn spend_output(store: Arc<dyn ObjectStore>, batch_rows: usize) -> DatasetOutput<SpendBuilder> {
        DatasetOutput::new(
            target(store, batch_rows),
            Dataset::Spend,
            spend_schema(),
            crate::sink::spend_partition,
        )
    }

    fn spend(day: i32, campaign: usize) -> SpendRow {
        SpendRow {
            date: TODAY - day,
            platform: "google_ads".into(),
            account_id: "123".into(),
            campaign_id: format!("c{campaign}").into(),
            campaign_name: Some(format!("Campaign {campaign}").into()),
            channel: Some("paid_search".into()),
            currency: "EUR".into(),
            spend: 1_000_000 + campaign as i128,
            impressions: 100 + i64::from(day),
            clicks: 7,
        }
    }

    /// A builder's string columns report the bytes they hold, and the next builder is
    /// sized from them for its own number of rows, with a sixteenth and 64 bytes to spare.
    #[test]
    fn a_new_builder_has_room_for_rows_like_the_last_full_batch() {
        let mut builder = SpendBuilder::with_room(4, None);
        for campaign in [1, 2, 12] {
            builder.push(&spend(0, campaign));
        }
        // date, platform ("google_ads"), account ("123"), campaign ("c1", "c2", "c12"),
        // name ("Campaign 1", "Campaign 2", "Campaign 12"), channel ("paid_search"),
        // currency ("EUR"), spend, impressions, clicks.
        assert_eq!(builder.value_bytes(), vec![0, 30, 9, 7, 31, 33, 9, 0, 0, 0]);
        let room = ValueRoom::of(&builder);
        // 30 bytes for 3 rows is 600 for 60: +37 (a sixteenth) +64.
        assert_eq!(
            room.for_rows(60),
            vec![64, 701, 255, 212, 722, 765, 255, 64, 64, 64]
        );
        let mut sized = SpendBuilder::with_room(60, Some(&room.for_rows(60)));
        assert!(sized.is_empty());
        sized.push(&spend(0, 3));
        assert_eq!(sized.value_bytes(), vec![0, 10, 3, 2, 10, 11, 3, 0, 0, 0]);
    }

    /// Every staged file of a spend pull of 10 campaigns × 6 days (campaign after
    /// campaign) plus a covered day without rows: its rows by target path.
    async fn pulled(
        batch_rows: usize,
        buffer_rows: usize,
    ) -> BTreeMap<String, Option<RecordBatch>> {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let mut out = spend_output(Arc::clone(&store), batch_rows).with_buffer_rows(buffer_rows);
        out.cover_partition("date=2026-11-01".into());
        for campaign in 0..10 {
            for day in 0..6 {
                out.push(spend(day, campaign)).await.unwrap();
                let held: usize = out.parts.values().map(Part::buffered).sum();
                assert_eq!(out.buffered, held);
                assert!(held <= buffer_rows.max(batch_rows));
            }
        }
        if buffer_rows < 10 {
            // The tiny budget took every path: files opened up to the limit, full batches
            // and small partitions set aside.
            assert_eq!(out.open_files, OPEN_FILES);
            assert!(out.parts.values().any(|p| !p.spilled.is_empty()));
        }
        let summary = out.finish().await.unwrap();
        assert_eq!((summary.read, summary.written), (60, 60));
        let mut tables = BTreeMap::new();
        for file in summary.files {
            let batches = read_parquet_rows(&store, &Path::from(file.staged.as_str()))
                .await
                .unwrap();
            let rows = batches
                .first()
                .map(|first| arrow::compute::concat_batches(&first.schema(), &batches).unwrap());
            assert_eq!(rows.as_ref().map_or(0, |r| r.num_rows() as u64), file.rows);
            tables.insert(file.target, rows);
        }
        tables
    }

    /// A page pushed whole (`push_all`: each row read where it lies, the page then freed on
    /// a background thread) is kept exactly as its rows pushed one at a time: the same
    /// files with the same rows, the same counts, a key served twice written once.
    #[tokio::test]
    async fn a_page_pushed_whole_is_kept_as_its_rows_pushed_one_by_one() {
        // 10 campaigns × 6 days, then one of them again: 61 rows, one repeated key.
        let page = || {
            let mut rows: Vec<SpendRow> = (0..10)
                .flat_map(|campaign| (0..6).map(move |day| spend(day, campaign)))
                .collect();
            rows.push(spend(2, 3));
            rows
        };
        assert!(page().len() >= FREED_ELSEWHERE_ROWS);
        let kept = |whole: bool| async move {
            let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
            let mut out = spend_output(Arc::clone(&store), 8192)
                .with_key(|r| format!("{}/{}", r.date, r.campaign_id).into());
            if whole {
                out.push_all(page()).await.unwrap();
            } else {
                for row in page() {
                    out.push(row).await.unwrap();
                }
            }
            let summary = out.finish().await.unwrap();
            let mut files = BTreeMap::new();
            for file in &summary.files {
                let batches = read_parquet_rows(&store, &Path::from(file.staged.as_str()))
                    .await
                    .unwrap();
                files.insert(file.target.clone(), batches);
            }
            ((summary.read, summary.duplicates, summary.written), files)
        };
        let (counts, files) = kept(true).await;
        assert_eq!(counts, (60, 1, 60));
        assert_eq!(files.len(), 6, "a file per day");
        assert_eq!((counts, files), kept(false).await);
    }

    #[tokio::test]
    async fn a_tiny_budget_writes_the_same_files_as_holding_every_row() {
        use arrow::array::{Array, StringArray};
        let unbounded = pulled(8192, usize::MAX).await;
        let bounded = pulled(2, 5).await;
        assert_eq!(bounded, unbounded);
        // Hand-checked: a file per day plus the covered empty day, each day's campaigns in
        // the order they were pushed, and no `date` column in the files.
        assert_eq!(unbounded.len(), 7);
        assert_eq!(unbounded["spend/date=2026-11-01/demo.google.parquet"], None);
        let day = unbounded["spend/date=2026-11-28/demo.google.parquet"]
            .as_ref()
            .unwrap();
        assert!(day.schema().column_with_name("date").is_none());
        let campaigns = day
            .column_by_name("campaign_id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let campaigns: Vec<&str> = (0..campaigns.len()).map(|i| campaigns.value(i)).collect();
        assert_eq!(
            campaigns,
            ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]
        );
    }

    /// Spend is written once, complete: every file carries `spend_reporting` at the day's
    /// rate, including rows set aside on disk, and a currency without a rate is reported.
    #[tokio::test]
    async fn spend_files_carry_the_reporting_column_and_report_missing_rates() {
        use crate::metrics::fx::{add_spend_reporting, spend_reporting_schema};
        use arrow::array::{Array, Decimal128Array};
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let mut fx = FxRates::new("EUR");
        fx.insert("2026-01-01", "USD", "0.5").unwrap();
        let fx = Arc::new(fx);
        // A tiny budget over more days than open files: some rows are set aside on disk
        // before they reach their file.
        let mut out = spend_output(Arc::clone(&store), 2)
            .with_buffer_rows(3)
            .with_reporting(
                Arc::clone(&fx),
                spend_reporting_schema(&spend_schema()),
                add_spend_reporting,
            );
        for campaign in 0..6 {
            for day in 0..6 {
                let mut row = spend(day, campaign);
                row.currency = ["EUR", "USD", "GBP"][campaign % 3].into();
                out.push(row).await.unwrap();
            }
        }
        let summary = out.finish().await.unwrap();
        assert_eq!(summary.unconverted, BTreeSet::from(["GBP".to_string()]));
        assert_eq!(summary.files.len(), 6);
        for file in summary.files {
            let batches = read_parquet_rows(&store, &Path::from(file.staged.as_str()))
                .await
                .unwrap();
            let rows = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
            assert_eq!(rows.num_rows(), 6);
            let names: Vec<String> = rows
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let at = names.iter().position(|n| n == "spend").unwrap();
            assert_eq!(names[at + 1], "spend_reporting");
            let column = |name: &str| {
                rows.column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Decimal128Array>()
                    .unwrap()
                    .clone()
            };
            let (spend, reporting) = (column("spend"), column("spend_reporting"));
            let currencies = rows
                .column_by_name("currency")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            for i in 0..rows.num_rows() {
                match currencies.value(i) {
                    "EUR" => assert_eq!(reporting.value(i), spend.value(i)),
                    "USD" => assert_eq!(reporting.value(i), (spend.value(i) + 1) / 2),
                    _ => assert!(reporting.is_null(i)),
                }
            }
        }
    }

    /// The peak-memory repro of a spend-heavy account: 880 campaigns × 365 days, campaign
    /// after campaign (as `googleAds:search` pages them), so no day fills a batch until the
    /// pull ends. Run it alone under `/usr/bin/time -v` to read the peak RSS.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a memory repro, run by hand"]
    async fn spend_heavy_account_repro() {
        spend_heavy_account(880, BUFFERED_ROWS).await;
    }

    /// Three times the campaigns: the peak must stay where it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a memory repro, run by hand"]
    async fn spend_heavy_account_repro_triple() {
        spend_heavy_account(3 * 880, BUFFERED_ROWS).await;
    }

    /// The same with every row held until the pull ends, as before the budget: the peak to
    /// compare with.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a memory repro, run by hand"]
    async fn spend_heavy_account_repro_unbounded() {
        spend_heavy_account(880, usize::MAX).await;
    }

    async fn spend_heavy_account(campaigns: usize, buffer_rows: usize) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mut out = spend_output(Arc::clone(&store), 8192).with_buffer_rows(buffer_rows);
        for campaign in 0..campaigns {
            for day in 0..365 {
                out.push(spend(day, campaign)).await.unwrap();
            }
        }
        let summary = out.finish().await.unwrap();
        assert_eq!(summary.written, campaigns as u64 * 365);
        assert_eq!(summary.files.len(), 365);
        let _ = store
            .head(&Path::from(summary.files[0].staged.as_str()))
            .await
            .unwrap();
    }
}
