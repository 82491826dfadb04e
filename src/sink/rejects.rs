//! A pull's rejected records, held within a bound: the newest in memory, the rest set aside
//! on local disk as `_rejects` batches ([`crate::spill`]). Rejects are few on a clean vendor,
//! but a vendor that sends a malformed record in every two hundred sends fifty thousand of
//! them in ten million contacts, each with its whole record as text: held to the end of the
//! run, they were the one thing in a run's memory that still grew with its size.

use arrow::record_batch::RecordBatch;

use crate::normalize::{BatchStamp, RejectRow, RejectsBuilder, TableRows};
use crate::spill::{Segment, Spill, SpillError};

/// Rejects held in memory before they are set aside as one batch (about a MB of records).
const HELD: usize = 1024;

/// See the module documentation. Rows keep the order they were rejected in.
#[derive(Debug, Default)]
pub struct Rejects {
    held: Vec<RejectRow>,
    spill: Spill,
    set_aside: Vec<Segment>,
    count: u64,
    /// The first failure to set rejects aside: reported when they are read back, so a
    /// connector's `reject` stays infallible and nothing is lost silently.
    failed: Option<SpillError>,
}

impl Rejects {
    /// How many records were rejected.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Keep `row`, setting the held ones aside once there are [`HELD`] of them.
    pub(super) fn push(&mut self, row: RejectRow, stamp: &BatchStamp) {
        self.count += 1;
        self.held.push(row);
        if self.held.len() >= HELD && self.failed.is_none() {
            let batch = batch_of(std::mem::take(&mut self.held), stamp);
            match self.spill.write_run(&[batch]) {
                Ok(segments) => self.set_aside.extend(segments),
                Err(e) => self.failed = Some(e),
            }
        }
    }

    /// Every rejected record as `_rejects` batches, in the order they were rejected.
    pub fn into_batches(
        self,
        stamp: &BatchStamp,
    ) -> impl Iterator<Item = Result<RecordBatch, SpillError>> {
        let Rejects {
            held,
            mut spill,
            set_aside,
            failed,
            ..
        } = self;
        let last = (!held.is_empty()).then(|| Ok(batch_of(held, stamp)));
        failed
            .map(Err)
            .into_iter()
            .chain(
                set_aside
                    .into_iter()
                    .map(move |segment| spill.read(segment)),
            )
            .chain(last)
    }
}

fn batch_of(rows: Vec<RejectRow>, stamp: &BatchStamp) -> RecordBatch {
    let mut builder = RejectsBuilder::new(rows.len());
    for row in &rows {
        builder.push(row);
    }
    builder.finish(stamp)
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::*;

    fn row(n: usize) -> RejectRow {
        RejectRow {
            dataset: "leads".into(),
            source: "hubspot".into(),
            location: format!("contacts page {n}"),
            record: format!("{{\"id\":{n}}}"),
            reason: "not a JSON object".into(),
        }
    }

    #[test]
    fn past_the_bound_rejects_are_set_aside_and_come_back_in_order() {
        let stamp = BatchStamp {
            run_id: "r1".into(),
            ingested_at_micros: 1_796_083_200_000_000,
        };
        let mut rejects = Rejects::default();
        let n = HELD * 2 + 5;
        for i in 0..n {
            rejects.push(row(i), &stamp);
        }
        assert_eq!(rejects.len(), n as u64);
        assert!(rejects.held.len() < HELD, "held {}", rejects.held.len());
        assert_eq!(rejects.set_aside.len(), 2);
        let batches: Vec<RecordBatch> = rejects.into_batches(&stamp).map(Result::unwrap).collect();
        let locations: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("location").unwrap().as_string::<i32>();
                column
                    .iter()
                    .map(|v| v.unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<String> = (0..n).map(|i| format!("contacts page {i}")).collect();
        assert_eq!(locations, expected);
    }

    #[test]
    fn no_rejects_give_no_batch() {
        let stamp = BatchStamp {
            run_id: "r1".into(),
            ingested_at_micros: 0,
        };
        assert!(Rejects::default().is_empty());
        assert_eq!(Rejects::default().into_batches(&stamp).count(), 0);
    }
}
