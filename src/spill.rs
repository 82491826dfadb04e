//! Arrow batches set aside on local disk so that memory stays bounded, for the places whose
//! state would otherwise grow with the data: a dataset output's partitions (a year of daily
//! spend is 365 partitions per platform, none of which fills a batch before the pull ends;
//! `sink::output`), the sorted runs of groups of `funnel_daily` and `cpsql_monthly`
//! (`metrics::bounded_groups`), the `lead_stages` rows of the metrics' first pass waiting
//! for their ranks (`pipeline::metrics`), a pull's rejects past their bound
//! (`sink::rejects`), and the hash partitions of a large previous `lead_stages` and the
//! leads (`metrics::partitions`).
//! Each spill is a run: an Arrow IPC file in an anonymous temporary file (TMPDIR, gone when
//! dropped); a [`Segment`] names one batch of it, read back one at a time. A leaf: it knows
//! neither the warehouse nor the metrics, so both can use it without one depending on the
//! other.

use std::fs::File;
use std::io::BufWriter;

use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;

/// Why a spill could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The temporary file could not be created, written or read.
    #[error("temporary file: {0}")]
    Io(#[from] std::io::Error),
    /// The rows could not be encoded or decoded as Arrow IPC.
    #[error("Arrow IPC: {0}")]
    Arrow(#[from] ArrowError),
}

impl SpillError {
    /// This failure as the crate's error; `context` says what was being set aside (and
    /// names the temporary directory, `TMPDIR`, an operator can fix).
    pub fn into_error(self, context: impl Into<String>) -> crate::error::Error {
        match self {
            SpillError::Io(e) => crate::error::Error::io(context, e),
            SpillError::Arrow(e) => crate::error::Error::encode(context, e),
        }
    }
}

/// One set-aside batch: which run, which batch of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    run: usize,
    batch: usize,
}

/// The runs of one output.
#[derive(Debug, Default)]
pub struct Spill {
    runs: Vec<Run>,
}

/// A run being written one batch at a time, for batches that come from an async loop;
/// [`Spill::add_run`] closes it.
pub struct RunWriter {
    file: File,
    writer: FileWriter<BufWriter<File>>,
    written: usize,
}

impl std::fmt::Debug for RunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunWriter")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl RunWriter {
    /// A new run of batches of `schema`, in a new anonymous temporary file.
    pub fn new(schema: &Schema) -> Result<Self, SpillError> {
        let file = tempfile::tempfile()?;
        let writer = FileWriter::try_new(BufWriter::new(file.try_clone()?), schema)?;
        Ok(RunWriter {
            file,
            writer,
            written: 0,
        })
    }

    /// Append a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SpillError> {
        self.writer.write(batch)?;
        self.written += 1;
        Ok(())
    }
}

#[derive(Debug)]
struct Run {
    file: File,
    /// Opened on the first read (a run's footer says where each batch is).
    reader: Option<FileReader<std::io::BufReader<File>>>,
}

impl Spill {
    /// Write `batches` as a new run (one per stretch of batches of one schema: an IPC file
    /// has one); their segments, in order.
    pub fn write_run(&mut self, batches: &[RecordBatch]) -> Result<Vec<Segment>, SpillError> {
        let mut segments = Vec::with_capacity(batches.len());
        for same_schema in batches.chunk_by(|a, b| a.schema() == b.schema()) {
            segments.extend(self.write_one_run(same_schema)?);
        }
        Ok(segments)
    }

    fn write_one_run(&mut self, batches: &[RecordBatch]) -> Result<Vec<Segment>, SpillError> {
        let Some(first) = batches.first() else {
            return Ok(Vec::new());
        };
        self.write_run_from(&first.schema(), batches.iter().cloned().map(Ok))
    }

    /// Write the batches of `schema` that `batches` yields as a new run, taking one at a time
    /// so only one is held (they may be read from other runs); their segments, in order.
    pub fn write_run_from(
        &mut self,
        schema: &Schema,
        batches: impl Iterator<Item = Result<RecordBatch, SpillError>>,
    ) -> Result<Vec<Segment>, SpillError> {
        let mut run = RunWriter::new(schema)?;
        for batch in batches {
            run.write(&batch?)?;
        }
        self.add_run(run)
    }

    /// Close a run written batch by batch and add it; its segments, in order.
    pub fn add_run(&mut self, run: RunWriter) -> Result<Vec<Segment>, SpillError> {
        let RunWriter {
            file,
            mut writer,
            written,
        } = run;
        writer.finish()?;
        writer
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        let run = self.runs.len();
        self.runs.push(Run { file, reader: None });
        Ok((0..written).map(|batch| Segment { run, batch }).collect())
    }

    /// Read a segment back.
    pub fn read(&mut self, segment: Segment) -> Result<RecordBatch, SpillError> {
        let run = &mut self.runs[segment.run];
        let reader = match &mut run.reader {
            Some(reader) => reader,
            None => {
                let file = run.file.try_clone()?;
                run.reader.insert(FileReader::try_new_buffered(file, None)?)
            }
        };
        reader.set_index(segment.batch)?;
        match reader.next() {
            Some(batch) => Ok(batch?),
            None => Err(ArrowError::IpcError(format!(
                "spill run {} has no batch {}",
                segment.run, segment.batch
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn segments_read_back_in_any_order_across_runs() {
        let mut spill = Spill::default();
        let a = batch(&[1, 2], &["a", "b"]);
        let b = batch(&[3], &["c"]);
        let c = batch(&[4, 5, 6], &["d", "e", "f"]);
        let first = spill.write_run(&[a.clone(), b.clone()]).unwrap();
        let second = spill.write_run(std::slice::from_ref(&c)).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 1);
        assert_eq!(spill.read(second[0]).unwrap(), c);
        assert_eq!(spill.read(first[1]).unwrap(), b);
        assert_eq!(spill.read(first[0]).unwrap(), a);
        assert!(spill.write_run(&[]).unwrap().is_empty());
        // Batches of another schema (an unpartitioned file keeps its partition column) go
        // to runs of their own, in order.
        let other =
            RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![7])) as ArrayRef)])
                .unwrap();
        let mixed = spill
            .write_run(&[a.clone(), other.clone(), b.clone()])
            .unwrap();
        assert_eq!(mixed.len(), 3);
        assert_eq!(spill.read(mixed[2]).unwrap(), b);
        assert_eq!(spill.read(mixed[1]).unwrap(), other);
        assert_eq!(spill.read(mixed[0]).unwrap(), a);
    }
}
