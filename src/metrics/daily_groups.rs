//! `funnel_daily`'s groups — day × channel × campaign, leads entering each path stage — as
//! [`BoundedGroups`] hold them: a year of ~6,000 campaigns is over a million groups.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int32Array, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, UInt32Type};
use arrow::record_batch::RecordBatch;

use super::bounded_groups::{BoundedGroups, GroupKind, SortKey};

/// Leads entering each stage of the path that day, in path order.
pub(super) type Counts = [i64; 6];

/// The interned id that stands for a null channel or campaign.
pub(super) const NULL: u32 = u32::MAX;

/// Groups the map holds before they are set aside: with the map's spare slots and the
/// sorted copy written out, about 15 MB, small next to a batch of leads being staged.
pub(super) const DEFAULT_BUDGET: usize = 100_000;

/// `funnel_daily`'s groups within a budget.
pub(super) type DailyGroups = BoundedGroups<DayGroup>;

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

/// A name's place in the table: a null before any name, names by rank.
pub(super) fn rank_or_null(id: u32, ranks: &[u32]) -> u32 {
    if id == NULL {
        0
    } else {
        ranks[id as usize] + 1
    }
}

impl GroupKind for DayGroup {
    const TABLE: &'static str = "funnel_daily";
    type Key = DayGroup;
    type Value = Counts;
    const DEFAULT_BUDGET: usize = DEFAULT_BUDGET;

    /// Day, then channel, then campaign.
    fn sort_key(group: &DayGroup, ranks: &[u32]) -> SortKey {
        (
            group.day,
            rank_or_null(group.channel, ranks),
            rank_or_null(group.campaign, ranks),
        )
    }

    fn merge(counts: &mut Counts, later: Counts) {
        for (count, add) in counts.iter_mut().zip(later) {
            *count += add;
        }
    }

    fn fields() -> Vec<Field> {
        let counts = (0..6).map(|i| Field::new(format!("n{i}"), DataType::Int64, false));
        [
            Field::new("day", DataType::Int32, false),
            Field::new("channel", DataType::UInt32, false),
            Field::new("campaign", DataType::UInt32, false),
        ]
        .into_iter()
        .chain(counts)
        .collect()
    }

    fn columns(groups: &[(DayGroup, Counts)]) -> Vec<ArrayRef> {
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
        columns
    }

    fn groups(batch: &RecordBatch) -> Option<Vec<(DayGroup, Counts)>> {
        (batch.num_columns() == 9).then_some(())?;
        let days = batch.column(0).as_primitive_opt::<Int32Type>()?;
        let channels = batch.column(1).as_primitive_opt::<UInt32Type>()?;
        let campaigns = batch.column(2).as_primitive_opt::<UInt32Type>()?;
        let counts = (3..9)
            .map(|i| batch.column(i).as_primitive_opt::<Int64Type>())
            .collect::<Option<Vec<_>>>()?;
        Some(
            (0..batch.num_rows())
                .map(|row| {
                    let group = DayGroup {
                        day: days.value(row),
                        channel: channels.value(row),
                        campaign: campaigns.value(row),
                    };
                    (group, std::array::from_fn(|i| counts[i].value(row)))
                })
                .collect(),
        )
    }
}
