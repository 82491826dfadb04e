//! Parquet settings in one place, the streaming writer and the streaming reader. Batches are
//! encoded in memory, their columns over two threads (`parquet_columns`), and each finished
//! row group goes onto object_store's `BufWriter` (a multipart upload), so a file is visible
//! only once complete and memory holds at most one row group; reading back fetches a few
//! row groups' column chunks ahead of the one decoded, in batches of bounded size (a small
//! file is fetched whole, in one request, and decoded from memory).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, TryFutureExt};
use futures::stream::{BoxStream, StreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderBuilder, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use tokio::io::AsyncWriteExt;

use super::parquet_columns::ColumnsWriter;
use crate::error::{Error, Result};

/// Rows per row group: large enough for good compression, small enough to bound memory.
pub(super) const ROW_GROUP_ROWS: usize = 131_072;

/// Bytes a file's row group in the making may hold (its encoded pages, dictionaries and
/// page buffers, `ArrowWriter::memory_size`) before it is written out early: wide rows
/// (a lead's 131,072 rows are ~17 MB uncompressed) would otherwise make each open file hold
/// several MiB, and several files are open at once.
pub(super) const ROW_GROUP_BYTES: usize = 4 << 20;

/// Bytes a file's upload buffers before it becomes a multipart upload, and each part's size
/// after: S3's smallest part. With [`UPLOAD_PARTS_IN_FLIGHT`] it bounds a file's upload side.
const UPLOAD_PART_BYTES: usize = 5 << 20;

/// Parts of one file uploaded at once.
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// Rows per batch when a file is streamed back: a decoded batch of the widest table stays a
/// few MiB.
pub(super) const READ_BATCH_ROWS: usize = 16_384;

/// Batches a reader's stream decodes ahead of it (see `read_ahead`).
const READ_AHEAD_BATCHES: usize = 2;

/// Columns whose values are (nearly) unique per row: ids, the e-mail hash and event times.
/// A dictionary for them is built only to be thrown away (Parquet falls back to plain
/// encoding once it outgrows its page, row group after row group) and costs a hash and a
/// comparison per value, so they are written plain; ZSTD compresses them as well or better
/// (pyarrow, the 1 M-lead bench's `leads` and `lead_stages`, ZSTD 3: `mql_at` 3.51 MB with
/// a dictionary, 2.90 MB plain, in half the time; `stage_entered_at` 3.82 → 3.00 MB; none
/// of these columns larger plain). Every other column keeps dictionary encoding, which is
/// what the low-cardinality ones (stages, channels, countries, owners, run ids) want.
///
/// The event times stay PLAIN although DELTA_BINARY_PACKED would be smaller and cheaper to
/// write (the 1 M-lead bench: `leads` 77.1 → 74.3 MB, `created_at` 3.89 → 3.16 MB, the
/// replay's CPU about 3 % less): Spark's vectorized reader before 3.3 (AWS Glue 3.0, older
/// Databricks and Synapse runtimes), Iceberg's vectorized Arrow reader before mid-2025 and
/// StarRocks refuse a column so encoded ("Unsupported encoding: DELTA_BINARY_PACKED"), and
/// these tables are for whatever reader a team has.
const UNIQUE_COLUMNS: [&str; 21] = [
    "lead_id",
    "email_hash",
    "response_id",
    "created_at",
    "updated_at",
    "last_intent_at",
    "submitted_at",
    // A lead's funnel dates (`leads`), and the stage history made of them (`lead_stages`,
    // `lead_stage_transitions`).
    "mql_at",
    "sal_at",
    "sal_rejected_at",
    "sql_at",
    "opportunity_at",
    "customer_at",
    "first_contacted_at",
    "stage_entered_at",
    "changed_at",
    "became_warm_at",
    "became_mql_at",
    "became_sal_at",
    "became_sql_at",
    "became_customer_at",
];

/// Columns of keyed hashes (64 hex digits of HMAC-SHA-256 per value). Their bytes repeat
/// nothing for ZSTD's match finder to use; all it can gain is the entropy coding of 16
/// symbols, which every level does alike. Level 3's search for matches is then pure cost:
/// on the 1 M leads of the spend-heavy bench, `email_hash` is 44 % of the file and most of
/// its compression time, and level 1 writes it about three times as fast and a few percent
/// smaller (33.9 against 35.2 MB). So these columns are compressed at level 1, the rest at
/// [`ZSTD_LEVEL`].
const HASH_COLUMNS: [&str; 2] = ["email_hash", "respondent_hash"];

/// The ZSTD level of every column but [`HASH_COLUMNS`].
const ZSTD_LEVEL: i32 = 3;

/// ZSTD at `level`.
fn zstd(level: i32) -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(level).expect("a valid zstd level"))
}

/// The Parquet settings every table uses: ZSTD (level 1 for [`HASH_COLUMNS`], else
/// [`ZSTD_LEVEL`]), bounded row groups, statistics, dictionaries for all but
/// [`UNIQUE_COLUMNS`].
pub fn writer_properties() -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(zstd(ZSTD_LEVEL))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(concat!("funnelhouse ", env!("CARGO_PKG_VERSION")).to_string());
    let builder = HASH_COLUMNS.iter().fold(builder, |b, column| {
        b.set_column_compression(ColumnPath::from(*column), zstd(1))
    });
    UNIQUE_COLUMNS
        .iter()
        .fold(builder, |b, column| {
            b.set_column_dictionary_enabled(ColumnPath::from(*column), false)
        })
        .build()
}

/// A Parquet file being written to the store. Encoding and compression run on a task of
/// their own, fed through a short queue, so a source decodes its next pages while the
/// previous batch is compressed; memory holds at most the queue and one row group.
pub struct ParquetFile {
    path: Path,
    rows: u64,
    queue: Option<tokio::sync::mpsc::Sender<Message>>,
    /// The encoding task; it ends with the bytes it wrote.
    encoder: Option<tokio::task::JoinHandle<Result<u64>>>,
}

/// A written file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedFile {
    /// Where it was written.
    pub path: Path,
    /// Its rows.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl ClosedFile {
    /// The file as staged for table `table`, to be published as `target`.
    pub fn staged(&self, table: &str, target: &str) -> super::commit::StagedFile {
        super::commit::StagedFile {
            table: table.to_string(),
            staged: self.path.to_string(),
            target: target.to_string(),
            rows: self.rows,
            bytes: self.bytes,
        }
    }
}

/// What the encoding task is sent.
enum Message {
    Batch(RecordBatch),
    /// Complete the file. A queue closed without it (the run failed) abandons the upload
    /// instead, so no half-written file appears.
    Finish,
}

/// Batches waiting to be encoded.
const QUEUED_BATCHES: usize = 2;

impl std::fmt::Debug for ParquetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFile")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ParquetFile {
    /// Start a file at `path` with `schema`.
    pub fn create(store: &Arc<dyn ObjectStore>, path: Path, schema: SchemaRef) -> Result<Self> {
        let mut sink = BufWriter::with_capacity(Arc::clone(store), path.clone(), UPLOAD_PART_BYTES)
            .with_max_concurrency(UPLOAD_PARTS_IN_FLIGHT);
        let mut columns = ColumnsWriter::try_new(schema, writer_properties())
            .map_err(|e| Error::encode(path.to_string(), e))?;
        let (queue, mut received) = tokio::sync::mpsc::channel(QUEUED_BATCHES);
        let at = path.to_string();
        let encoder = tokio::spawn(async move {
            let encoded = |e| Error::encode(at.clone(), e);
            let mut written = 0u64;
            while let Some(message) = received.recv().await {
                let finished = match message {
                    Message::Batch(batch) => {
                        columns.write(&batch).map_err(encoded)?;
                        if columns.memory_size() > ROW_GROUP_BYTES {
                            columns.flush().map_err(encoded)?;
                        }
                        false
                    }
                    Message::Finish => {
                        columns.finish().map_err(encoded)?;
                        true
                    }
                };
                let bytes = columns.take_bytes();
                if !bytes.is_empty() {
                    sink.write_all(&bytes)
                        .await
                        .map_err(|e| Error::encode(at.clone(), e))?;
                    written += bytes.len() as u64;
                }
                if finished {
                    sink.shutdown()
                        .await
                        .map_err(|e| Error::encode(at.clone(), e))?;
                    return Ok(written);
                }
            }
            Ok(written)
        });
        Ok(ParquetFile {
            path,
            rows: 0,
            queue: Some(queue),
            encoder: Some(encoder),
        })
    }

    /// Append a batch.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.send(Message::Batch(batch.clone())).await
    }

    async fn send(&mut self, message: Message) -> Result<()> {
        let sent = match &self.queue {
            Some(queue) => queue.send(message).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The encoder stopped early: its error says why.
        self.queue = None;
        Err(self.stopped_encoder().await.err().unwrap_or_else(|| {
            Error::encode(self.path.to_string(), "the Parquet encoder stopped early")
        }))
    }

    async fn stopped_encoder(&mut self) -> Result<u64> {
        // Awaited in place (not taken) so that dropping this file mid-wait still aborts it.
        let Some(handle) = self.encoder.as_mut() else {
            return Ok(0);
        };
        let joined = handle.await;
        self.encoder = None;
        joined.map_err(|e| Error::encode(self.path.to_string(), e))?
    }

    /// Finish the file: its path, rows and size (the bytes written, so no request asks the
    /// store for it).
    pub async fn close(mut self) -> Result<ClosedFile> {
        self.send(Message::Finish).await?;
        self.queue = None;
        let bytes = self.stopped_encoder().await?;
        Ok(ClosedFile {
            path: self.path.clone(),
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for ParquetFile {
    /// A run stopped mid-pull drops its files where they stand: the encoder must not go on
    /// to upload a staged file after the stop has discarded the run's staging area.
    fn drop(&mut self) {
        if let Some(handle) = self.encoder.take() {
            handle.abort();
        }
    }
}

/// Write `batches` as one Parquet file at `path`; returns it closed (its rows and size).
pub async fn write_batches(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<ClosedFile> {
    let mut file = ParquetFile::create(store, path.clone(), schema)?;
    for batch in batches {
        file.write(batch).await?;
    }
    file.close().await
}

/// The bytes of the object at `path`, in one request.
async fn get_whole(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Bytes> {
    store
        .get(path)
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?
        .bytes()
        .await
        .map_err(|e| Error::storage(path.to_string(), e))
}

/// Read a whole Parquet object back into batches (small tables, tests).
pub async fn read_parquet_rows(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Vec<RecordBatch>> {
    let bytes = get_whole(store, path).await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| Error::encode(path.to_string(), e))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::encode(path.to_string(), e))
}

/// The reader's view of an object: byte ranges fetched from the store on demand. (parquet's
/// own `ParquetObjectReader` is deprecated in favour of implementing this trait.)
#[derive(Debug, Clone)]
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

fn parquet_error(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.store
            .get_range(&self.path, range)
            .map_err(parquet_error)
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(parquet_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_metadata_options(options.map(|o| o.metadata_options().clone()))
                .with_prefetch_hint(Some(FOOTER_PREFETCH_BYTES))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A Parquet object whose footer has been read: its row count is known, and its rows can
/// be streamed without reading the footer again. For a table read twice in a step (counted,
/// then streamed), this is one look at the object, not two.
#[derive(Debug)]
pub struct ParquetObject {
    reader: ObjectReader,
    metadata: ArrowReaderMetadata,
}

impl ParquetObject {
    /// The object at `path` (its size from `head`, then its footer); `None` when it does not
    /// exist.
    pub async fn open(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<Self>> {
        match store.head(path).await {
            Ok(meta) => Self::open_sized(store, path, meta.size).await.map(Some),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(path.to_string(), e)),
        }
    }

    /// The object at `path` of `size` bytes (from a listing or `head`): its footer read in
    /// one request for any footer up to [`FOOTER_PREFETCH_BYTES`].
    pub async fn open_sized(store: &Arc<dyn ObjectStore>, path: &Path, size: u64) -> Result<Self> {
        let mut reader = ObjectReader {
            store: Arc::clone(store),
            path: path.clone(),
            size,
        };
        let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(|e| Error::encode(path.to_string(), e))?;
        Ok(ParquetObject { reader, metadata })
    }

    /// Its rows, as its footer counts them.
    pub fn rows(&self) -> u64 {
        // A count is never negative in a file we can read.
        u64::try_from(self.metadata.metadata().file_metadata().num_rows()).unwrap_or(0)
    }

    /// Its rows in batches of at most `READ_BATCH_ROWS`, decoding only `columns` when given
    /// (see [`for_reading`]): its row groups fetched [`ROW_GROUPS_FETCHED_AHEAD`] at a time,
    /// in order, while the batches of the earlier ones are decoded.
    pub fn stream(self, columns: Option<&[&str]>) -> BoxStream<'static, Result<RecordBatch>> {
        let ParquetObject { reader, metadata } = self;
        let name = reader.path.to_string();
        let projection = projection(metadata.parquet_schema(), columns);
        let groups = metadata.metadata().num_row_groups();
        let fetch_name = name.clone();
        let fetched = futures::stream::iter(0..groups)
            .map(move |group| {
                let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(
                    reader.clone(),
                    metadata.clone(),
                )
                .with_row_groups(vec![group])
                .with_batch_size(READ_BATCH_ROWS)
                .with_projection(projection.clone());
                let name = fetch_name.clone();
                Fetch {
                    task: tokio::spawn(async move {
                        let mut groups = builder.build().map_err(|e| Error::encode(&name, e))?;
                        groups
                            .next_row_group()
                            .await
                            .map_err(|e| Error::encode(&name, e))
                    }),
                    name: fetch_name.clone(),
                }
            })
            .buffered(ROW_GROUPS_FETCHED_AHEAD);
        let batches = fetched
            .map(move |group| match group {
                Ok(Some(group)) => {
                    let name = name.clone();
                    futures::stream::iter(
                        group.map(move |b| b.map_err(|e| Error::encode(&name, e))),
                    )
                    .boxed()
                }
                Ok(None) => futures::stream::empty().boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        read_ahead(batches.boxed())
    }
}

/// Objects at most this large are read back with one request for the whole object; larger
/// ones by ranges, their footer first, then the column chunks asked for. A table of many
/// small files (730 spend day files a year, each tens of KB) took four requests a file the
/// ranged way (its size, the footer's length, the footer, the chunks): on object storage,
/// where each is a round trip, the metrics step spent its time waiting on them.
const WHOLE_READ_BYTES: u64 = 1 << 20;

/// The rows of the object at `path` in batches of at most `READ_BATCH_ROWS`, decoding only
/// `columns` when given (see [`for_reading`]); an empty stream when `optional` and the
/// object does not exist. A small object (up to [`WHOLE_READ_BYTES`]) is fetched whole in
/// one request and decoded from memory; the answer for a larger one is dropped unread and
/// the object streamed by ranges. (A caller that knows the size, from a listing, asks
/// [`stream_parquet_sized`] and spares that request.)
pub async fn stream_parquet_file(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    columns: Option<&[&str]>,
    optional: bool,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) if optional => {
            return Ok(futures::stream::empty().boxed());
        }
        Err(e) => return Err(Error::storage(path.to_string(), e)),
    };
    let size = got.meta.size;
    if size > WHOLE_READ_BYTES {
        drop(got);
        return stream_parquet_sized(store, path, size, columns).await;
    }
    let bytes = got
        .bytes()
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    decode_whole(path, bytes, columns)
}

/// The rows of the object at `path` of `size` bytes (from a listing), as
/// [`stream_parquet_file`] reads them: a small object whole in one request, a larger one
/// straight by ranges.
pub async fn stream_parquet_sized(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    columns: Option<&[&str]>,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    if size > WHOLE_READ_BYTES {
        return Ok(ParquetObject::open_sized(store, path, size)
            .await?
            .stream(columns));
    }
    decode_whole(path, get_whole(store, path).await?, columns)
}

/// The batches of a whole object held in memory, decoded ahead of their reader.
fn decode_whole(
    path: &Path,
    bytes: Bytes,
    columns: Option<&[&str]>,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let name = path.to_string();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| Error::encode(&name, e))?;
    let reader = for_reading(builder, columns)
        .build()
        .map_err(|e| Error::encode(&name, e))?;
    Ok(read_ahead(
        futures::stream::iter(reader.map(move |batch| batch.map_err(|e| Error::encode(&name, e))))
            .boxed(),
    ))
}

/// A reader (from memory or by ranges) of batches of at most [`READ_BATCH_ROWS`] rows and
/// of the leaves of `columns` only (all when `None`; names the file lacks are skipped: the
/// reader of the batches reports what it misses).
fn for_reading<T>(
    builder: ArrowReaderBuilder<T>,
    columns: Option<&[&str]>,
) -> ArrowReaderBuilder<T> {
    let projection = projection(builder.parquet_schema(), columns);
    builder
        .with_batch_size(READ_BATCH_ROWS)
        .with_projection(projection)
}

/// The leaves of `columns` in `schema` (all when `None`; names it lacks are skipped).
fn projection(schema: &SchemaDescriptor, columns: Option<&[&str]>) -> ProjectionMask {
    match columns {
        Some(names) => ProjectionMask::columns(schema, names.iter().copied()),
        None => ProjectionMask::all(),
    }
}

/// Row groups of a large object fetched ahead of the one being decoded, each by a task of
/// its own. On object storage every row group is a round trip of tens of milliseconds
/// whatever its size, so one after another the 1 M leads file's 61 row groups kept the
/// metrics step waiting on the network about five seconds. A fetched row group holds its
/// projected column chunks, compressed (a row group is at most `ROW_GROUP_BYTES` in the
/// writer's memory): these few bound what waits.
const ROW_GROUPS_FETCHED_AHEAD: usize = 4;

/// The footer bytes asked for at once when a large object's metadata is read: one request
/// for the footer and its length together, not two, for any footer up to this size.
const FOOTER_PREFETCH_BYTES: usize = 64 << 10;

/// A row group being fetched by a task of its own ([`ParquetObject::stream`]); dropping it
/// (a reader that stopped early) aborts the fetch.
struct Fetch {
    task: tokio::task::JoinHandle<Result<Option<ParquetRecordBatchReader>>>,
    /// The object, for the error of a fetch that panicked.
    name: String,
}

impl std::future::Future for Fetch {
    type Output = Result<Option<ParquetRecordBatchReader>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fetch = &mut *self;
        std::pin::Pin::new(&mut fetch.task)
            .poll(cx)
            .map(|joined| joined.unwrap_or_else(|e| Err(Error::encode(&fetch.name, e))))
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Batches decoded ahead of their reader, by a task of their own: decompressing and
/// decoding the next batches overlaps with whatever the reader does with this one (the
/// metrics classify leads on one core while another decodes). At most
/// [`READ_AHEAD_BATCHES`] wait; dropping the stream stops the task.
fn read_ahead(
    mut batches: BoxStream<'static, Result<RecordBatch>>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let (ahead, received) = tokio::sync::mpsc::channel(READ_AHEAD_BATCHES);
    tokio::spawn(async move {
        while let Some(batch) = batches.next().await {
            if ahead.send(batch).await.is_err() {
                break;
            }
        }
    });
    futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|batch| (batch, received))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray};
    use futures::TryStreamExt;
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// Unique ids and event times are written plain, repeated values with a dictionary; all
    /// read back.
    #[tokio::test]
    async fn ids_are_plain_and_repeated_strings_have_a_dictionary() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let ids: Vec<String> = (0..1_000).map(|i| format!("lead-{i}")).collect();
        let channels: Vec<&str> = (0..1_000)
            .map(|i| ["paid_search", "organic"][i % 2])
            .collect();
        // A funnel date: about half the leads have one, each its own instant.
        let mql_at: Vec<Option<i64>> = (0..1_000_i64)
            .map(|i| (i % 2 == 0).then_some(1_767_225_600_000_000 + i * 7_919_000))
            .collect();
        let batch = RecordBatch::try_from_iter([
            ("lead_id", Arc::new(StringArray::from(ids)) as ArrayRef),
            ("channel", Arc::new(StringArray::from(channels)) as ArrayRef),
            (
                "mql_at",
                Arc::new(arrow::array::TimestampMicrosecondArray::from(mql_at).with_timezone("UTC"))
                    as ArrayRef,
            ),
        ])
        .unwrap();
        let path = Path::from("t/f.parquet");
        write_batches(&store, &path, batch.schema(), std::slice::from_ref(&batch))
            .await
            .unwrap();
        assert_eq!(read_parquet_rows(&store, &path).await.unwrap(), vec![batch]);

        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let reader = SerializedFileReader::new(bytes).unwrap();
        let group = reader.metadata().row_group(0);
        let encodings = |i: usize| group.column(i).encodings().collect::<Vec<_>>();
        let dictionary = |e: &[Encoding]| {
            e.contains(&Encoding::RLE_DICTIONARY) || e.contains(&Encoding::PLAIN_DICTIONARY)
        };
        assert!(!dictionary(&encodings(0)), "lead_id: {:?}", encodings(0));
        assert!(dictionary(&encodings(1)), "channel: {:?}", encodings(1));
        assert!(!dictionary(&encodings(2)), "mql_at: {:?}", encodings(2));
    }

    /// Keyed hashes are compressed at level 1: smaller than level 3 makes them (their bytes
    /// repeat nothing, so level 3's match search buys nothing), and they read back whole.
    #[tokio::test]
    async fn hash_columns_are_smaller_at_their_own_level_and_read_back() {
        let hasher = crate::normalize::PersonalDataHasher::new(b"test-key");
        let hashes: Vec<String> = (0..50_000)
            .map(|i| hasher.hash(&format!("person{i}@example.com")))
            .collect();
        let batch = RecordBatch::try_from_iter([(
            "email_hash",
            Arc::new(StringArray::from(hashes)) as ArrayRef,
        )])
        .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("t/hashes.parquet");
        write_batches(&store, &path, batch.schema(), std::slice::from_ref(&batch))
            .await
            .unwrap();
        let read = read_parquet_rows(&store, &path).await.unwrap();
        let read = arrow::compute::concat_batches(&batch.schema(), &read).unwrap();
        assert_eq!(read, batch);

        // The file as our settings write it, and as they would with level 3 for it too.
        let size = |properties: WriterProperties| encoded(&batch, properties).len();
        let ours = size(writer_properties());
        let level_3 = size(
            writer_properties()
                .into_builder()
                .set_column_compression(ColumnPath::from("email_hash"), zstd(ZSTD_LEVEL))
                .build(),
        );
        assert!(
            ours < level_3,
            "level 1: {ours} bytes, level 3: {level_3} bytes"
        );
    }

    /// Numbers that do not compress, from `seed` (a xorshift).
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Wide rows end a row group by its size, long before `ROW_GROUP_ROWS`; every row reads
    /// back in order.
    #[tokio::test]
    async fn a_row_group_of_wide_rows_ends_at_its_byte_budget() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        // Rows of ~420 bytes that do not compress (a xorshift's hex), ~2.5 budgets of them
        // compressed, in far fewer than ROW_GROUP_ROWS rows.
        let mut noise = xorshift(0x9E37_79B9_7F4A_7C15);
        let batch_count = (5 * ROW_GROUP_BYTES / 2).div_ceil(4_000 * 420);
        let batches: Vec<RecordBatch> = (0..batch_count)
            .map(|b| {
                let ids: Vec<String> = (0..4_000)
                    .map(|i| {
                        let tail: String = (0..25).map(|_| format!("{:016x}", noise())).collect();
                        format!("lead-{b}-{i}-{tail}")
                    })
                    .collect();
                RecordBatch::try_from_iter([(
                    "lead_id",
                    Arc::new(StringArray::from(ids)) as ArrayRef,
                )])
                .unwrap()
            })
            .collect();
        let path = Path::from("t/wide.parquet");
        let rows = write_batches(&store, &path, batches[0].schema(), &batches)
            .await
            .unwrap()
            .rows;
        let total = 4_000 * batch_count as u64;
        assert_eq!(rows, total);
        let schema = batches[0].schema();
        let concat = |b: &[RecordBatch]| arrow::compute::concat_batches(&schema, b).unwrap();
        let read = read_parquet_rows(&store, &path).await.unwrap();
        assert_eq!(concat(&read), concat(&batches));

        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let reader = SerializedFileReader::new(bytes).unwrap();
        let groups = reader.metadata().row_groups();
        assert!(groups.len() >= 2, "{} row groups", groups.len());
        for group in groups {
            assert!(group.num_rows() < ROW_GROUP_ROWS as i64);
        }
        assert_eq!(
            groups.iter().map(|g| g.num_rows()).sum::<i64>(),
            total as i64
        );
    }

    /// A closed file knows its size without asking the store. A small file is fetched whole
    /// and a large one read by ranges; either way (and whether its size is known, or its
    /// footer was read first for its count) the columns asked for come back, every row in
    /// order, and a missing optional file is no rows.
    #[tokio::test]
    async fn small_files_are_read_whole_large_ones_by_ranges_with_the_same_rows_and_size() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let mut noise = xorshift(0x2545_F491_4F6C_DD1D);
        let mut table = |rows: usize| {
            let ids: Vec<String> = (0..rows).map(|i| format!("{i}-{:016x}", noise())).collect();
            let scores: Vec<i64> = (0..rows as i64).collect();
            RecordBatch::try_from_iter([
                ("lead_id", Arc::new(StringArray::from(ids)) as ArrayRef),
                (
                    "score",
                    Arc::new(arrow::array::Int64Array::from(scores)) as ArrayRef,
                ),
            ])
            .unwrap()
        };
        for (name, rows) in [("small", 1_000), ("large", 120_000)] {
            let batch = table(rows);
            let path = Path::from(format!("t/{name}.parquet"));
            let mut file = ParquetFile::create(&store, path.clone(), batch.schema()).unwrap();
            file.write(&batch).await.unwrap();
            let closed = file.close().await.unwrap();
            let size = store.head(&path).await.unwrap().size;
            let expected = ClosedFile {
                path: path.clone(),
                rows: rows as u64,
                bytes: size,
            };
            assert_eq!(closed, expected, "the size written is the object's");
            assert_eq!(
                size > WHOLE_READ_BYTES,
                name == "large",
                "{name}: {size} bytes"
            );
            let read: Vec<RecordBatch> =
                stream_parquet_file(&store, &path, Some(&["lead_id"]), false)
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
            assert!(read.iter().all(|b| b.num_rows() <= READ_BATCH_ROWS));
            let ids = batch.project(&[0]).unwrap();
            let read = arrow::compute::concat_batches(&ids.schema(), &read).unwrap();
            assert_eq!(read, ids, "{name}");

            // The same rows when the size is known (a listing's), and from an object whose
            // footer was read first for its count.
            let sized: Vec<RecordBatch> =
                stream_parquet_sized(&store, &path, size, Some(&["lead_id"]))
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
            let sized = arrow::compute::concat_batches(&ids.schema(), &sized).unwrap();
            assert_eq!(sized, ids, "{name}, sized");
            let object = ParquetObject::open(&store, &path).await.unwrap().unwrap();
            assert_eq!(object.rows(), rows as u64, "{name}");
            let opened: Vec<RecordBatch> = object.stream(None).try_collect().await.unwrap();
            let opened = arrow::compute::concat_batches(&batch.schema(), &opened).unwrap();
            assert_eq!(opened, batch, "{name}, opened");
        }
        let missing = Path::from("t/missing.parquet");
        assert!(
            ParquetObject::open(&store, &missing)
                .await
                .unwrap()
                .is_none()
        );
        let none: Vec<RecordBatch> = stream_parquet_file(&store, &missing, None, true)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(none.is_empty());
        assert!(
            stream_parquet_file(&store, &missing, None, false)
                .await
                .is_err()
        );
    }

    /// `batch` as parquet's own writer writes it with `properties`.
    fn encoded(batch: &RecordBatch, properties: WriterProperties) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
                .unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    /// A large object of many row groups, written by parquet's own writer with small ones.
    async fn many_row_groups(store: &Arc<dyn ObjectStore>, path: &Path) -> RecordBatch {
        let mut noise = xorshift(0xD1B5_4A32_D192_ED03);
        let rows = 60_000;
        let ids: Vec<String> = (0..rows).map(|i| format!("{i}-{:016x}", noise())).collect();
        let scores: Vec<i64> = (0..rows as i64).collect();
        let batch = RecordBatch::try_from_iter([
            ("lead_id", Arc::new(StringArray::from(ids)) as ArrayRef),
            (
                "score",
                Arc::new(arrow::array::Int64Array::from(scores)) as ArrayRef,
            ),
        ])
        .unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(5_000))
            .set_dictionary_enabled(false)
            .build();
        let bytes = encoded(&batch, properties);
        assert!(
            bytes.len() as u64 > WHOLE_READ_BYTES,
            "{} bytes",
            bytes.len()
        );
        store.put(path, bytes.into()).await.unwrap();
        batch
    }

    /// The row groups of a large object, fetched several at a time, come back in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn row_groups_fetched_ahead_come_back_in_order() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("t/groups.parquet");
        let batch = many_row_groups(&store, &path).await;
        for columns in [None, Some(&["score"][..])] {
            let read: Vec<RecordBatch> = stream_parquet_file(&store, &path, columns, false)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let expected = match columns {
                None => batch.clone(),
                Some(_) => batch.project(&[1]).unwrap(),
            };
            let read = arrow::compute::concat_batches(&expected.schema(), &read).unwrap();
            assert_eq!(read, expected, "{columns:?}");
        }
        // Twelve row groups: more than are fetched at once.
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let groups = SerializedFileReader::new(bytes)
            .unwrap()
            .metadata()
            .num_row_groups();
        assert_eq!(groups, 12);
        assert!(groups > ROW_GROUPS_FETCHED_AHEAD + READ_AHEAD_BATCHES);
    }

    /// A row group whose fetch fails (the object gone after its footer was read) ends the
    /// stream with an error naming the object, not a panic or a short table.
    #[tokio::test]
    async fn a_row_group_that_cannot_be_fetched_is_an_error_naming_the_object() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("t/vanishing.parquet");
        many_row_groups(&store, &path).await;
        // On this (current-thread) runtime no fetch starts before the stream is polled.
        let batches = stream_parquet_file(&store, &path, None, false)
            .await
            .unwrap();
        store.delete(&path).await.unwrap();
        let read: Result<Vec<RecordBatch>> = batches.try_collect().await;
        let error = read.unwrap_err().to_string();
        assert!(error.contains("t/vanishing.parquet"), "{error}");
    }
}
