//! Aggregates whose groups grow with the data — days × channels × campaigns for
//! `funnel_daily`, months × campaigns for `cpsql_monthly` — folded within a memory budget.
//! The map folding them holds at most a budget of groups: when it is full, its groups are
//! sorted in the table's order and set aside on local disk as a run (Arrow IPC in TMPDIR,
//! [`Spill`]), and the map starts again empty. At the end the runs and what is left in
//! memory are merged, a group's values combined across them ([`GroupKind::merge`], earlier
//! runs first), into the table's order chunk by chunk. Past [`MAX_RUNS`] runs they are
//! merged into one, so the merge holds one batch per run whatever the input size.
//!
//! Runs keep the interned channel and campaign ids, sorted by the names' byte order as the
//! interner ranks them when the run is written. A name seen later only falls somewhere
//! between those names, so every run is also sorted under the final ranks, and the runs
//! merge by comparing ranks, never a string.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::intern::FastMap;
use crate::error::{Error, Result};
use crate::spill::{Segment, Spill, SpillError};

/// Runs set aside before they are merged into one: the final merge reads a batch of each.
pub(super) const MAX_RUNS: usize = 16;

/// Groups per batch of a run, and per chunk the merge hands out.
pub(super) const CHUNK_ROWS: usize = 4096;

/// A group's place in its table: a day or month, then up to two ranks (a null before any
/// name, names by their rank in byte order).
pub(super) type SortKey = (i32, u32, u32);

/// A group and its folded value.
pub(super) type Group<G> = (<G as GroupKind>::Key, <G as GroupKind>::Value);

/// What one aggregate's groups are: their key, the values folded into them, how they sort
/// and how a run stores them.
pub(super) trait GroupKind {
    /// The table the groups make, named in errors.
    const TABLE: &'static str;
    /// A group's key, with names as interned ids.
    type Key: Copy + Eq + Hash + Debug;
    /// What is folded into a group.
    type Value: Default + Debug;
    /// Groups held in memory unless a budget is given.
    const DEFAULT_BUDGET: usize;

    /// The key's place in the table under the names' `ranks` (`Interner::ranks`).
    fn sort_key(key: &Self::Key, ranks: &[u32]) -> SortKey;
    /// Fold `later` (from a later run) into `value`.
    fn merge(value: &mut Self::Value, later: Self::Value);
    /// A run's columns.
    fn fields() -> Vec<Field>;
    /// Groups as a run's columns, in [`GroupKind::fields`]' order.
    fn columns(groups: &[(Self::Key, Self::Value)]) -> Vec<ArrayRef>;
    /// A run's batch read back, `None` when its columns are not of that layout.
    fn groups(batch: &RecordBatch) -> Option<Vec<(Self::Key, Self::Value)>>;
}

/// The groups folded so far: a map of at most `budget` groups, and the runs set aside.
#[derive(Debug)]
pub(super) struct BoundedGroups<G: GroupKind> {
    budget: usize,
    groups: FastMap<G::Key, G::Value>,
    spill: Spill,
    /// Each run's batches, in order.
    runs: Vec<Vec<Segment>>,
    schema: SchemaRef,
}

impl<G: GroupKind> Default for BoundedGroups<G> {
    fn default() -> Self {
        BoundedGroups::new(G::DEFAULT_BUDGET)
    }
}

impl<G: GroupKind> BoundedGroups<G> {
    /// Hold at most `budget` groups (at least one) in memory.
    pub(super) fn new(budget: usize) -> Self {
        BoundedGroups {
            budget: budget.max(1),
            groups: FastMap::default(),
            spill: Spill::default(),
            runs: Vec::new(),
            schema: Arc::new(Schema::new(G::fields())),
        }
    }

    /// The value of `key`'s group, to fold into. Call [`BoundedGroups::bound`] after the
    /// groups of a record are folded.
    pub(super) fn get(&mut self, key: G::Key) -> &mut G::Value {
        self.groups.entry(key).or_default()
    }

    /// Set the groups aside when the map holds its budget. `ranks` gives the names' current
    /// ranks, asked for only then.
    pub(super) fn bound(&mut self, ranks: impl FnOnce() -> Vec<u32>) -> Result<()> {
        if self.groups.len() >= self.budget {
            self.set_aside(&ranks()).map_err(spill_error::<G>)?;
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
        let mut sorted: Vec<Group<G>> = self.groups.drain().collect();
        sorted.sort_unstable_by_key(|(g, _)| G::sort_key(g, ranks));
        let schema = Arc::clone(&self.schema);
        let batches = sorted
            .chunks(CHUNK_ROWS)
            .map(|chunk| run_batch::<G>(&schema, chunk));
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
        let mut merge = Merge::<G>::new(std::mem::take(&mut self.spill), runs, Vec::new(), ranks)?;
        let schema = Arc::clone(&self.schema);
        let batches = std::iter::from_fn(|| {
            merge
                .next_chunk(CHUNK_ROWS)
                .transpose()
                .map(|chunk| run_batch::<G>(&schema, &chunk?))
        });
        let segments = self.spill.write_run_from(&schema, batches)?;
        self.runs.push(segments);
        // The merged runs' temporary files go with `merge`.
        Ok(())
    }

    /// Every group, in the table's order under the names' final `ranks`.
    pub(super) fn finish(mut self, ranks: Vec<u32>) -> Result<SortedGroups<G>> {
        let mut rest: Vec<Group<G>> = self.groups.drain().collect();
        drop(self.groups);
        rest.sort_unstable_by_key(|(g, _)| G::sort_key(g, &ranks));
        let merge = Merge::new(self.spill, self.runs, rest, &ranks).map_err(spill_error::<G>)?;
        Ok(SortedGroups { merge })
    }
}

/// Every group in the table's order, handed out a chunk at a time.
#[derive(Debug)]
pub(super) struct SortedGroups<G: GroupKind> {
    merge: Merge<G>,
}

impl<G: GroupKind> SortedGroups<G> {
    /// The next groups, up to `rows` of them; `None` after the last.
    pub(super) fn next_chunk(&mut self, rows: usize) -> Result<Option<Vec<Group<G>>>> {
        self.merge.next_chunk(rows).map_err(spill_error::<G>)
    }
}

fn spill_error<G: GroupKind>(e: SpillError) -> Error {
    e.into_error(format!(
        "{}: setting groups aside in the temporary directory (TMPDIR)",
        G::TABLE
    ))
}

/// A chunk of sorted groups as a batch of a run.
fn run_batch<G: GroupKind>(
    schema: &SchemaRef,
    groups: &[Group<G>],
) -> std::result::Result<RecordBatch, SpillError> {
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        G::columns(groups),
    )?)
}

/// One sorted input of a merge: a run read a batch at a time, or the groups left in memory.
#[derive(Debug)]
struct Source<G: GroupKind> {
    segments: std::vec::IntoIter<Segment>,
    rows: std::vec::IntoIter<Group<G>>,
    /// The group the merge's heap holds this source's key for.
    head: Option<Group<G>>,
}

impl<G: GroupKind> Source<G> {
    fn next(&mut self, spill: &mut Spill) -> std::result::Result<Option<Group<G>>, SpillError> {
        loop {
            if let Some(row) = self.rows.next() {
                return Ok(Some(row));
            }
            let Some(segment) = self.segments.next() else {
                return Ok(None);
            };
            let batch = spill.read(segment)?;
            let groups = G::groups(&batch).ok_or_else(|| {
                ArrowError::SchemaError(format!("a {} run batch of another layout", G::TABLE))
            })?;
            self.rows = groups.into_iter();
        }
    }
}

/// A k-way merge of sorted sources, combining the values of a group found in several.
#[derive(Debug)]
struct Merge<G: GroupKind> {
    spill: Spill,
    sources: Vec<Source<G>>,
    /// Each source's next key, smallest first; of equal keys, the earlier source first.
    heap: BinaryHeap<Reverse<(SortKey, usize)>>,
    ranks: Vec<u32>,
}

impl<G: GroupKind> Merge<G> {
    fn new(
        spill: Spill,
        runs: Vec<Vec<Segment>>,
        rest: Vec<Group<G>>,
        ranks: &[u32],
    ) -> std::result::Result<Self, SpillError> {
        let mut sources: Vec<Source<G>> = runs
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
            self.heap
                .push(Reverse((G::sort_key(group, &self.ranks), i)));
        }
        Ok(())
    }

    /// Take source `i`'s head (its key just left the heap) and load its next.
    fn take(&mut self, i: usize) -> std::result::Result<Group<G>, SpillError> {
        let head = self.sources[i]
            .head
            .take()
            .ok_or_else(|| ArrowError::IpcError("a merged run ended early".into()))?;
        self.refill(i)?;
        Ok(head)
    }

    fn next_group(&mut self) -> std::result::Result<Option<Group<G>>, SpillError> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let (group, mut value) = self.take(i)?;
        // Equal keys are the same group (ranks are distinct): combine it across the
        // sources, which the heap hands out in run order.
        while let Some(&Reverse((next, j))) = self.heap.peek() {
            if next != key {
                break;
            }
            self.heap.pop();
            let (_, later) = self.take(j)?;
            G::merge(&mut value, later);
        }
        Ok(Some((group, value)))
    }

    fn next_chunk(
        &mut self,
        rows: usize,
    ) -> std::result::Result<Option<Vec<Group<G>>>, SpillError> {
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
