//! A Parquet file encoded in memory with its columns split over two threads: the bytes of
//! each finished row group are taken out for the caller to upload.
//!
//! `ArrowWriter` encodes and compresses one column after another on the thread that calls
//! it. A file written while the other core has nothing to do (the `lead_stages` rows ranked
//! at the end of the metrics step, 995,000 rows × 27 columns at 1 M leads) was then one
//! core's work. Here a batch's leaf columns are shared by the calling thread and one scoped
//! thread, each claiming the next column, costliest first, and so is closing them (the last
//! page, the dictionary); the column writers are Parquet's own
//! (`ArrowRowGroupWriterFactory`), the row groups are cut where `ArrowWriter` cuts them, so
//! the file is the one `ArrowWriter` writes, byte for byte.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::errors::Result;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

/// Rows a batch (or a row group, when its columns close) needs before its columns are split
/// over two threads: below it, starting a thread costs about what the half saves (a day of
/// spend is a few hundred rows).
const SPLIT_ROWS: usize = 4_096;

/// A Parquet file being encoded into memory.
pub(super) struct ColumnsWriter {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Rows per row group (`WriterProperties::max_row_group_row_count`).
    max_rows: usize,
    /// The row group in the making: a writer per leaf column, and its rows so far.
    open: Option<(Vec<ArrowColumnWriter>, usize)>,
    /// Row groups written.
    row_groups: usize,
    /// What encoding a batch cost each leaf column lately, in nanoseconds: the order in which
    /// the next batch's columns are claimed. (Neither a column's bytes nor its type say it
    /// well: a dictionary column of short codes costs a hash per value, more than a plain
    /// column of timestamps twice its size.)
    costs: Vec<u64>,
}

impl ColumnsWriter {
    /// A file of `schema` written with `properties`.
    pub(super) fn try_new(schema: SchemaRef, properties: WriterProperties) -> Result<Self> {
        let max_rows = properties
            .max_row_group_row_count()
            .unwrap_or(usize::MAX)
            .max(1);
        // `ArrowWriter` sets the file up as it writes it (the Arrow schema in the footer,
        // the Parquet schema it converts to), then hands over its parts.
        let (file, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))?
            .into_serialized_writer()?;
        Ok(ColumnsWriter {
            file,
            factory,
            schema,
            max_rows,
            open: None,
            row_groups: 0,
            costs: Vec::new(),
        })
    }

    /// Encode `batch`, starting a new row group wherever the current one is full.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let (writers, rows) = match &mut self.open {
                Some(open) => open,
                open @ None => {
                    open.insert((self.factory.create_column_writers(self.row_groups)?, 0))
                }
            };
            let take = rest.num_rows().min(self.max_rows - *rows);
            encode(writers, &self.schema, &rest.slice(0, take), &mut self.costs)?;
            *rows += take;
            let full = *rows >= self.max_rows;
            rest = rest.slice(take, rest.num_rows() - take);
            if full {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Memory the row group in the making holds (`ArrowWriter::memory_size`).
    pub(super) fn memory_size(&self) -> usize {
        self.open.as_ref().map_or(0, |(writers, _)| {
            writers.iter().map(ArrowColumnWriter::memory_size).sum()
        })
    }

    /// Close the row group in the making, if any, into the file.
    pub(super) fn flush(&mut self) -> Result<()> {
        let Some((writers, rows)) = self.open.take() else {
            return Ok(());
        };
        // Closing compresses what each writer still buffers.
        let costs: Option<Vec<u64>> =
            (rows >= SPLIT_ROWS).then(|| writers.iter().map(|w| w.memory_size() as u64).collect());
        let chunks = on_two_threads(writers, costs.as_deref(), ArrowColumnWriter::close)?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.row_groups += 1;
        Ok(())
    }

    /// The file's bytes written since the last call (the whole row groups closed since).
    pub(super) fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(self.file.inner_mut())
    }

    /// Close the last row group and write the footer; [`ColumnsWriter::take_bytes`] then
    /// gives the rest of the file.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.flush()?;
        self.file.finish()?;
        Ok(())
    }
}

/// Encode `batch` (at most the rows left in the row group) into `writers`, claimed in the
/// order of `costs`, and each column's time then folded into them.
fn encode(
    writers: &mut [ArrowColumnWriter],
    schema: &SchemaRef,
    batch: &RecordBatch,
    costs: &mut Vec<u64>,
) -> Result<()> {
    let mut leaves = Vec::with_capacity(writers.len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        leaves.extend(compute_leaves(field, column)?);
    }
    costs.resize(leaves.len(), 0);
    let split = (batch.num_rows() >= SPLIT_ROWS).then_some(costs.as_slice());
    let pairs: Vec<_> = writers.iter_mut().zip(&leaves).collect();
    let took = on_two_threads(pairs, split, |(writer, leaf)| {
        let started = Instant::now();
        writer.write(leaf)?;
        Ok(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    })?;
    // Smoothed, so one page's compression landing in this batch does not swing the split.
    for (cost, took) in costs.iter_mut().zip(took) {
        *cost = if *cost == 0 {
            took
        } else {
            (*cost * 3 + took) / 4
        };
    }
    Ok(())
}

/// The items in the order both threads claim them: the costliest first, so that what is
/// left when one thread runs out of work is small.
fn costliest_first(costs: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(costs[i]));
    order
}

/// `work` on every item, the results in the items' order (an error: the first one in that
/// order): on this thread alone, or when `costs` are given, by this thread and a scoped one,
/// each claiming the next item, costliest first, until none is left.
///
/// The items were first shared out by cost, half to each thread. Both halves cost about the
/// same, but the scoped thread, started when both cores were busy, began a while after this
/// one: in a 1 M spend-heavy replay the thread beside started 1.5 ms late on average over
/// 400 batches, and this thread, a runtime worker, then waited for it 2.9 ms per batch
/// (1.16 s in all, against 1.95 s of its own work). Claimed one by one, the items a late
/// thread does not reach are done here, and what is left to wait for is the item it is on.
fn on_two_threads<T: Send, R: Send>(
    items: Vec<T>,
    costs: Option<&[u64]>,
    work: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // Nothing measured yet (every cost 0) also runs everything here: no thread for nothing.
    let order = match costs {
        Some(costs)
            if items.len() >= 2 && costs.len() == items.len() && costs.iter().any(|&c| c > 0) =>
        {
            costliest_first(costs)
        }
        _ => return items.into_iter().map(&work).collect(),
    };
    // Mutexes, not `OnceLock`s, for the results too: a result need only be `Send`, and a
    // `OnceLock` shared between threads asks it to be `Sync` as well.
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let done: Vec<Mutex<Option<Result<R>>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let claim = || {
        while let Some(&at) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            // Each slot is claimed once (the counter hands each position out once), so
            // neither lock is ever contended: a poisoned one is only a panic elsewhere,
            // which the scope passes on.
            let item = slots[at]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(item) = item {
                *done[at].lock().unwrap_or_else(PoisonError::into_inner) = Some(work(item));
            }
        }
    };
    std::thread::scope(|scope| {
        let beside = scope.spawn(claim);
        claim();
        beside
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
    done.into_iter()
        .map(|result| {
            result
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every item was claimed")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::test_support::pseudo_random;

    /// A batch of `rows` rows with a repeated string, a unique string, a nullable number
    /// and a list (two leaf levels), from `seed`.
    fn batch(schema: &SchemaRef, rows: usize, seed: u64) -> RecordBatch {
        let mut next = pseudo_random(seed);
        let stages = ["lead", "mql", "sal", "sql", "customer"];
        let stage: StringArray = (0..rows).map(|_| Some(stages[next() % 5])).collect();
        let id: StringArray = (0..rows)
            .map(|i| Some(format!("lead-{seed}-{i}")))
            .collect();
        let score: Int64Array = (0..rows)
            .map(|_| {
                let v = next();
                (!v.is_multiple_of(7)).then_some((v % 1000) as i64)
            })
            .collect();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for _ in 0..rows {
            for _ in 0..next() % 3 {
                tags.values().append_value(stages[next() % 5]);
            }
            tags.append(!next().is_multiple_of(11));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(stage),
            Arc::new(id),
            Arc::new(score),
            Arc::new(tags.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).expect("a valid batch")
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("stage", DataType::Utf8, false),
            Field::new("lead_id", DataType::Utf8, false),
            Field::new("score", DataType::Int64, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]))
    }

    /// Small row groups, so that batches straddle them.
    fn properties() -> WriterProperties {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(10_000))
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build()
    }

    /// The same batches through `ArrowWriter` and through `ColumnsWriter`, flushed early
    /// where the pipeline flushes (`flush_at` bytes held), bytes taken as the pipeline takes
    /// them.
    fn both(batches: &[RecordBatch], flush_at: usize) -> (Vec<u8>, Vec<u8>) {
        let mut arrow = ArrowWriter::try_new(Vec::new(), schema(), Some(properties())).unwrap();
        let mut ours = ColumnsWriter::try_new(schema(), properties()).unwrap();
        let mut written = Vec::new();
        for batch in batches {
            arrow.write(batch).unwrap();
            if arrow.memory_size() > flush_at {
                arrow.flush().unwrap();
            }
            ours.write(batch).unwrap();
            if ours.memory_size() > flush_at {
                ours.flush().unwrap();
            }
            written.extend(ours.take_bytes());
        }
        ours.finish().unwrap();
        written.extend(ours.take_bytes());
        (arrow.into_inner().unwrap(), written)
    }

    #[test]
    fn the_file_is_the_one_arrow_writer_writes_byte_for_byte() {
        let schema = schema();
        // Batches below and above the split, and one larger than a row group.
        let sizes = [3, 4_095, 4_096, 9_000, 25_000, 1, 6_000];
        let batches: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| batch(&schema, rows, i as u64 + 1))
            .collect();
        for flush_at in [usize::MAX, 64 << 10] {
            let (arrow, ours) = both(&batches, flush_at);
            assert!(arrow == ours, "files differ (flush at {flush_at} bytes)");
            let read = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(ours))
                .unwrap()
                .build()
                .unwrap()
                .collect::<std::result::Result<Vec<_>, _>>()
                .unwrap();
            let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(rows, sizes.iter().sum::<usize>());
            let back = arrow::compute::concat_batches(&schema, &read).unwrap();
            let sent = arrow::compute::concat_batches(&schema, &batches).unwrap();
            assert_eq!(back, sent);
        }
    }

    #[test]
    fn an_empty_file_is_arrow_writers_empty_file() {
        let (arrow, ours) = both(&[], usize::MAX);
        assert!(arrow == ours);
    }

    #[test]
    fn the_costliest_items_are_claimed_first() {
        assert_eq!(costliest_first(&[10, 90, 10, 30, 10]), [1, 3, 0, 2, 4]);
        assert_eq!(costliest_first(&[]), Vec::<usize>::new());
    }

    #[test]
    fn a_late_thread_beside_leaves_its_share_to_this_one() {
        // The thread beside is slow on whatever it claims (as one started late on a busy
        // machine is): this thread, not waiting for it, does every other item.
        let here = std::thread::current().id();
        let costs = [3; 12];
        let items: Vec<usize> = (0..12).collect();
        let done = on_two_threads(items, Some(&costs[..]), |i| {
            let on_this_thread = std::thread::current().id() == here;
            if !on_this_thread {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Ok((i, on_this_thread))
        })
        .unwrap();
        assert_eq!(
            done.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..12).collect::<Vec<_>>()
        );
        let beside = done.iter().filter(|(_, here)| !here).count();
        assert!(beside <= 1, "the thread beside did {beside} of 12 items");
    }

    #[test]
    fn two_threads_keep_the_items_order_and_the_first_error() {
        let costs = [5, 1, 1, 9, 2, 2, 7];
        for split in [None, Some(&costs[..])] {
            for count in 0..7 {
                let items: Vec<usize> = (0..count).collect();
                let split = split.map(|c| &c[..count]);
                let doubled = on_two_threads(items, split, |i| Ok(i * 2)).unwrap();
                assert_eq!(doubled, (0..count).map(|i| i * 2).collect::<Vec<_>>());
            }
            let failed = on_two_threads((0..6).collect(), split.map(|c| &c[..6]), |i: usize| {
                if i == 3 {
                    Err(parquet::errors::ParquetError::General(format!("item {i}")))
                } else {
                    Ok(i)
                }
            });
            assert!(failed.unwrap_err().to_string().contains("item 3"));
        }
    }
}
