//! `funnel_daily`'s groups within a memory budget. Their number grows with days × channels ×
//! campaigns (a year of ~6,000 campaigns is over a million groups), so the map folding them
//! holds at most a budget of groups: when it is full, its groups are sorted in the table's
//! order and set aside on local disk as a run (Arrow IPC in TMPDIR, [`Spill`]), and the map
//! starts again empty. At the end the runs and what is left in memory are merged, a group's
//! counts summed across them, into the table's order chunk by chunk. Past [`MAX_RUNS`] runs
//! they are merged into one, so the merge holds one batch per run whatever the input size.
//!
//! Runs keep the interned channel and campaign ids, sorted by the names' byte order as the
//! interner ranks them when the run is written. A name seen later only falls somewhere
//! between those names, so every run is also sorted under the final ranks, and the runs
//! merge by comparing ranks, never a string.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int32Array, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, UInt32Type};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::intern::FastMap;
use crate::error::{Error, Result};
use crate::spill::{Segment, Spill, SpillError};

/// Leads entering each stage of the path that day, in path order.
pub(super) type Counts = [i64; 6];

/// The interned id that stands for a null channel or campaign.
pub(super) const NULL: u32 = u32::MAX;

/// Groups the map holds before they are set aside: with the map's spare slots and the
/// sorted copy written out, about 15 MB, small next to a batch of leads being staged.
pub(super) const DEFAULT_BUDGET: usize = 100_000;

/// Runs set aside before they are merged into one: the final merge reads a batch of each.
pub(super) const MAX_RUNS: usize = 16;

/// Groups per batch of a run, and per chunk the merge hands out.
pub(super) const CHUNK_ROWS: usize = 4096;

/// A `funnel_daily` group: day, channel id, campaign id ([`NULL`] for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DayGroup {
    /// Days since the epoch.
    pub day: i32,
    /// Interned channel id.
    pub channel: u32,
    /// Interned campaign id.
    pub campaign: u32,
}

impl std::hash::Hash for DayGroup {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Two words, each mixed once by `FastHasher` (a derived hash writes three).
        state.write_u64((u64::from(self.day as u32) << 32) | u64::from(self.channel));
        state.write_u32(self.campaign);
    }
}

/// A group's place in the table: day, then channel, then campaign, a null before any name
/// and names by rank (`ranks[id]`, their place in byte order).
type SortKey = (i32, u32, u32);

fn sort_key(group: &DayGroup, ranks: &[u32]) -> SortKey {
    let rank = |id: u32| {
        if id == NULL {
            0
        } else {
            ranks[id as usize] + 1
        }
    };
    (group.day, rank(group.channel), rank(group.campaign))
}

/// The groups folded so far: a map of at most `budget` groups, and the runs set aside.
#[derive(Debug)]
pub(super) struct DailyGroups {
    budget: usize,
    groups: FastMap<DayGroup, Counts>,
    spill: Spill,
    /// Each run's batches, in order.
    runs: Vec<Vec<Segment>>,
    schema: SchemaRef,
}

impl Default for DailyGroups {
    fn default() -> Self {
        DailyGroups::new(DEFAULT_BUDGET)
    }
}

impl DailyGroups {
    /// Hold at most `budget` groups (at least one) in memory.
    pub(super) fn new(budget: usize) -> Self {
        let counts = (0..6).map(|i| Field::new(format!("n{i}"), DataType::Int64, false));
        let fields = [
            Field::new("day", DataType::Int32, false),
            Field::new("channel", DataType::UInt32, false),
            Field::new("campaign", DataType::UInt32, false),
        ]
        .into_iter()
        .chain(counts);
        DailyGroups {
            budget: budget.max(1),
            groups: FastMap::default(),
            spill: Spill::default(),
            runs: Vec::new(),
            schema: Arc::new(Schema::new(fields.collect::<Vec<_>>())),
        }
    }

    /// Count a lead entering stage `stage` (its index in the path) in `group`. `ranks` gives
    /// the names' current ranks (`Interner::ranks`), asked for
    /// only when the map is full and its groups are set aside.
    pub(super) fn add(
        &mut self,
        group: DayGroup,
        stage: usize,
        ranks: impl FnOnce() -> Vec<u32>,
    ) -> Result<()> {
        self.groups.entry(group).or_default()[stage] += 1;
        if self.groups.len() >= self.budget {
            self.set_aside(&ranks()).map_err(spill_error)?;
        }
        Ok(())
    }

    /// Runs on disk now.
    #[cfg(test)]
    pub(super) fn runs(&self) -> usize {
        self.runs.len()
    }

    fn set_aside(&mut self, ranks: &[u32]) -> std::result::Result<(), SpillError> {
        // `drain` keeps the map's slots for the next groups.
        let mut sorted: Vec<(DayGroup, Counts)> = self.groups.drain().collect();
        sorted.sort_unstable_by_key(|(g, _)| sort_key(g, ranks));
        let schema = Arc::clone(&self.schema);
        let batches = sorted
            .chunks(CHUNK_ROWS)
            .map(|chunk| run_batch(&schema, chunk));
        let segments = self.spill.write_run_from(&schema, batches)?;
        self.runs.push(segments);
        if self.runs.len() >= MAX_RUNS {
            self.merge_runs(ranks)?;
        }
        Ok(())
    }

    /// Merge every run into one (the map is empty when this runs).
    fn merge_runs(&mut self, ranks: &[u32]) -> std::result::Result<(), SpillError> {
        let runs = std::mem::take(&mut self.runs);
        let mut merge = Merge::new(std::mem::take(&mut self.spill), runs, Vec::new(), ranks)?;
        let schema = Arc::clone(&self.schema);
        let batches = std::iter::from_fn(|| {
            merge
                .next_chunk(CHUNK_ROWS)
                .transpose()
                .map(|chunk| run_batch(&schema, &chunk?))
        });
        let segments = self.spill.write_run_from(&schema, batches)?;
        self.runs.push(segments);
        // The merged runs' temporary files go with `merge`.
        Ok(())
    }

    /// Every group, in the table's order under the names' final `ranks`.
    pub(super) fn finish(mut self, ranks: Vec<u32>) -> Result<SortedGroups> {
        let mut rest: Vec<(DayGroup, Counts)> = self.groups.drain().collect();
        drop(self.groups);
        rest.sort_unstable_by_key(|(g, _)| sort_key(g, &ranks));
        let merge = Merge::new(self.spill, self.runs, rest, &ranks).map_err(spill_error)?;
        Ok(SortedGroups { merge })
    }
}

/// Every `funnel_daily` group in the table's order, handed out a chunk at a time.
#[derive(Debug)]
pub(super) struct SortedGroups {
    merge: Merge,
}

impl SortedGroups {
    /// The next groups, up to `rows` of them; `None` after the last.
    pub(super) fn next_chunk(&mut self, rows: usize) -> Result<Option<Vec<(DayGroup, Counts)>>> {
        self.merge.next_chunk(rows).map_err(spill_error)
    }
}

fn spill_error(e: SpillError) -> Error {
    e.into_error("funnel_daily: setting groups aside in the temporary directory (TMPDIR)")
}

/// A chunk of sorted groups as a batch of a run.
fn run_batch(
    schema: &SchemaRef,
    groups: &[(DayGroup, Counts)],
) -> std::result::Result<RecordBatch, SpillError> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(groups.iter().map(|(g, _)| g.day).collect::<Int32Array>()),
        Arc::new(
            groups
                .iter()
                .map(|(g, _)| g.channel)
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            groups
                .iter()
                .map(|(g, _)| g.campaign)
                .collect::<UInt32Array>(),
        ),
    ];
    for i in 0..6 {
        columns.push(Arc::new(
            groups.iter().map(|(_, c)| c[i]).collect::<Int64Array>(),
        ));
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// A batch of a run read back as groups.
fn run_groups(batch: &RecordBatch) -> std::result::Result<Vec<(DayGroup, Counts)>, SpillError> {
    let wrong = || ArrowError::SchemaError("a funnel_daily run batch of another layout".into());
    let days = batch
        .column(0)
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(wrong)?;
    let channels = batch
        .column(1)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(wrong)?;
    let campaigns = batch
        .column(2)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(wrong)?;
    let counts = (3..9)
        .map(|i| {
            batch
                .column(i)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(wrong)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            let group = DayGroup {
                day: days.value(row),
                channel: channels.value(row),
                campaign: campaigns.value(row),
            };
            (group, std::array::from_fn(|i| counts[i].value(row)))
        })
        .collect())
}

/// One sorted input of a merge: a run read a batch at a time, or the groups left in memory.
#[derive(Debug)]
struct Source {
    segments: std::vec::IntoIter<Segment>,
    rows: std::vec::IntoIter<(DayGroup, Counts)>,
    /// The group the merge's heap holds this source's key for.
    head: Option<(DayGroup, Counts)>,
}

impl Source {
    fn next(
        &mut self,
        spill: &mut Spill,
    ) -> std::result::Result<Option<(DayGroup, Counts)>, SpillError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            let Some(segment) = self.segments.next() else {
                return Ok(None);
            };
            self.rows = run_groups(&spill.read(segment)?)?.into_iter();
        }
    }
}

/// A k-way merge of sorted sources, summing the counts of a group found in several.
#[derive(Debug)]
struct Merge {
    spill: Spill,
    sources: Vec<Source>,
    /// Each source's next key, smallest first.
    heap: BinaryHeap<Reverse<(SortKey, usize)>>,
    ranks: Vec<u32>,
}

impl Merge {
    fn new(
        spill: Spill,
        runs: Vec<Vec<Segment>>,
        rest: Vec<(DayGroup, Counts)>,
        ranks: &[u32],
    ) -> std::result::Result<Self, SpillError> {
        let mut sources: Vec<Source> = runs
            .into_iter()
            .map(|segments| Source {
                segments: segments.into_iter(),
                rows: Vec::new().into_iter(),
                head: None,
            })
            .collect();
        sources.push(Source {
            segments: Vec::new().into_iter(),
            rows: rest.into_iter(),
            head: None,
        });
        let mut merge = Merge {
            spill,
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            ranks: ranks.to_vec(),
        };
        for i in 0..merge.sources.len() {
            merge.refill(i)?;
        }
        Ok(merge)
    }

    /// Load source `i`'s next group as its head and put its key on the heap.
    fn refill(&mut self, i: usize) -> std::result::Result<(), SpillError> {
        let source = &mut self.sources[i];
        source.head = source.next(&mut self.spill)?;
        if let Some((group, _)) = &source.head {
            self.heap.push(Reverse((sort_key(group, &self.ranks), i)));
        }
        Ok(())
    }

    /// Take source `i`'s head (its key just left the heap) and load its next.
    fn take(&mut self, i: usize) -> std::result::Result<(DayGroup, Counts), SpillError> {
        let head = self.sources[i]
            .head
            .take()
            .ok_or_else(|| ArrowError::IpcError("a merged run ended early".into()))?;
        self.refill(i)?;
        Ok(head)
    }

    fn next_group(&mut self) -> std::result::Result<Option<(DayGroup, Counts)>, SpillError> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let (group, mut counts) = self.take(i)?;
        // Equal keys are the same group (ranks are distinct): sum it across the sources.
        while let Some(&Reverse((next, j))) = self.heap.peek() {
            if next != key {
                break;
            }
            self.heap.pop();
            let (_, more) = self.take(j)?;
            for (count, add) in counts.iter_mut().zip(more) {
                *count += add;
            }
        }
        Ok(Some((group, counts)))
    }

    fn next_chunk(
        &mut self,
        rows: usize,
    ) -> std::result::Result<Option<Vec<(DayGroup, Counts)>>, SpillError> {
        let mut chunk = Vec::with_capacity(rows.min(CHUNK_ROWS));
        while chunk.len() < rows {
            match self.next_group()? {
                Some(group) => chunk.push(group),
                None => break,
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }
}
