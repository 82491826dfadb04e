//! Pass 1 over the leads a hash partition at a time, for a job whose previous `lead_stages`
//! is too large to hold. Classifying a lead needs what the previous run wrote for it
//! ([`PreviousStages`], about 50 bytes a lead), and held whole that grows with the job's
//! leads: ten million leads held 670 MB. Past [`PREVIOUS_HELD`] previous rows, the previous
//! rows and the current leads are both split by one hash of (source_system, lead_id) into
//! as many partitions as keep each partition's previous rows under that count, and set aside
//! on local disk (`spill`); pass 1 then takes the partitions one after another, holding one
//! partition's previous state. A lead and its previous row always share a partition, and
//! every aggregate of pass 1 sums over leads, so no table changes but for the order its
//! `lead_stages` and transition rows come in.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::Accumulator;
use super::arrays::{get_str, str_col};
use super::stages::{PreviousStages, PreviousStagesBuilder};
use crate::error::{Error, Result};
use crate::spill::{RunWriter, Segment, Spill, SpillError};

/// Previous `lead_stages` rows pass 1 holds at once: about 50 MB of state.
pub const PREVIOUS_HELD: u64 = 1_000_000;

/// What a failure to set the partitions aside was doing.
const CONTEXT: &str = "leads and previous lead_stages split into partitions for the metrics' \
                       first pass (a temporary file in TMPDIR)";

/// How many partitions keep each under `held` of `previous_rows` previous rows (a hash
/// spreads them evenly; 1 means pass 1 needs none).
pub fn partitions_for(previous_rows: u64, held: u64) -> usize {
    usize::try_from(previous_rows.div_ceil(held.max(1)))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Splits the previous rows and the current leads into partitions on local disk.
#[derive(Debug)]
pub struct Partitioner {
    hasher: RandomState,
    count: usize,
    spill: Spill,
    previous: Side,
    leads: Side,
}

/// One input's partitions: the runs being written (one per partition, for the schema of the
/// batches coming in now) and the batches already set aside.
#[derive(Debug)]
struct Side {
    table: &'static str,
    schema: Option<SchemaRef>,
    writers: Vec<Option<RunWriter>>,
    segments: Vec<Vec<Segment>>,
    rows: Vec<u64>,
}

impl Side {
    fn new(table: &'static str, count: usize) -> Self {
        Side {
            table,
            schema: None,
            writers: (0..count).map(|_| None).collect(),
            segments: vec![Vec::new(); count],
            rows: vec![0; count],
        }
    }

    /// Close the runs being written into `spill`.
    fn close(&mut self, spill: &mut Spill) -> std::result::Result<(), SpillError> {
        for (writer, segments) in self.writers.iter_mut().zip(&mut self.segments) {
            if let Some(run) = writer.take() {
                segments.extend(spill.add_run(run)?);
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        spill: &mut Spill,
        batch: &RecordBatch,
        partition: impl Fn(&str, &str) -> usize,
    ) -> Result<()> {
        let system = str_col(batch, "source_system", self.table)?;
        let id = str_col(batch, "lead_id", self.table)?;
        let mut rows = vec![Vec::new(); self.writers.len()];
        for i in 0..batch.num_rows() {
            // A row without a key is left out by whoever reads it; partition 0 keeps it.
            let p = match (get_str(system, i), get_str(id, i)) {
                (Some(system), Some(id)) => partition(system, id),
                _ => 0,
            };
            rows[p]
                .push(u32::try_from(i).map_err(|_| Error::encode(self.table, "batch too large"))?);
        }
        let spilled = |e: SpillError| e.into_error(CONTEXT);
        if self.schema.as_ref() != Some(&batch.schema()) {
            // An IPC run holds one schema; files of older versions may differ.
            self.close(spill).map_err(spilled)?;
            self.schema = Some(batch.schema());
        }
        for (p, rows) in rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| Error::encode(self.table, e))?;
            let writer = match &mut self.writers[p] {
                Some(writer) => writer,
                empty => empty.insert(RunWriter::new(&batch.schema()).map_err(spilled)?),
            };
            writer.write(&part).map_err(spilled)?;
            self.rows[p] += part.num_rows() as u64;
        }
        Ok(())
    }
}

impl Partitioner {
    /// Split into `count` partitions.
    pub fn new(count: usize) -> Self {
        Partitioner {
            hasher: RandomState::new(),
            count: count.max(1),
            spill: Spill::default(),
            previous: Side::new("lead_stages", count.max(1)),
            leads: Side::new("leads", count.max(1)),
        }
    }

    fn partition_fn(&self) -> impl Fn(&str, &str) -> usize + use<> {
        let (hasher, count) = (self.hasher.clone(), self.count as u64);
        move |system, id| {
            // The hash's top bits scaled to the count: no division per row.
            let h = hasher.hash_one((system, id)) >> 32;
            ((h * count) >> 32) as usize
        }
    }

    /// Set aside a batch of the previous run's `lead_stages` (its `PREVIOUS_COLUMNS`).
    pub fn add_previous(&mut self, batch: &RecordBatch) -> Result<()> {
        let partition = self.partition_fn();
        self.previous.add(&mut self.spill, batch, partition)
    }

    /// Set aside a batch of the current `leads` (the columns `stages::lead_columns` gives).
    pub fn add_leads(&mut self, batch: &RecordBatch) -> Result<()> {
        let partition = self.partition_fn();
        self.leads.add(&mut self.spill, batch, partition)
    }

    /// Close the partitions for reading.
    pub fn finish(mut self) -> Result<Partitioned> {
        let spilled = |e: SpillError| e.into_error(CONTEXT);
        self.previous.close(&mut self.spill).map_err(spilled)?;
        self.leads.close(&mut self.spill).map_err(spilled)?;
        Ok(Partitioned {
            spill: self.spill,
            previous: self.previous,
            leads: self.leads,
            at: (0, 0),
        })
    }
}

/// The partitions set aside, read back one at a time.
#[derive(Debug)]
pub struct Partitioned {
    spill: Spill,
    previous: Side,
    leads: Side,
    /// The partition being read and how many of its batches were.
    at: (usize, usize),
}

impl Partitioned {
    /// The next batch of leads, partition after partition; on entering a partition, `pass1`
    /// is set to classify against that partition's previous state (and to none after the
    /// last, so the state is let go).
    pub fn next_leads(&mut self, pass1: &mut Accumulator<'_>) -> Result<Option<RecordBatch>> {
        let spilled = |e: SpillError| e.into_error(CONTEXT);
        loop {
            let (p, i) = self.at;
            if p == self.leads.segments.len() {
                return Ok(None);
            }
            if i == 0 && !self.leads.segments[p].is_empty() {
                pass1.set_previous(self.previous(p)?);
            }
            if let Some(&segment) = self.leads.segments[p].get(i) {
                self.at.1 += 1;
                return self.spill.read(segment).map(Some).map_err(spilled);
            }
            self.at = (p + 1, 0);
            if self.at.0 == self.leads.segments.len() {
                pass1.set_previous(Arc::new(PreviousStages::new()));
            }
        }
    }

    /// Partition `p`'s previous state, built from its rows.
    fn previous(&mut self, p: usize) -> Result<Arc<PreviousStages>> {
        let held = usize::try_from(self.previous.rows[p]).unwrap_or(usize::MAX);
        let mut builder = PreviousStagesBuilder::with_capacity(held);
        for &segment in &self.previous.segments[p] {
            let batch = self
                .spill
                .read(segment)
                .map_err(|e| e.into_error(CONTEXT))?;
            builder.add_batch(&batch)?;
        }
        Ok(Arc::new(builder.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_keep_each_under_the_held_count() {
        assert_eq!(partitions_for(0, 1_000), 1);
        assert_eq!(partitions_for(999, 1_000), 1);
        assert_eq!(partitions_for(1_000, 1_000), 1);
        assert_eq!(partitions_for(1_001, 1_000), 2);
        assert_eq!(partitions_for(9_950_000, 1_000_000), 10);
        assert_eq!(partitions_for(5, 0), 5);
    }
}
