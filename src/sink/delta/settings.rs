//! The job-file keys of Delta tables: `table_format` (top level) and the `[delta]` section
//! (maintenance after each run and by `funnelhouse maintain`).

use serde::{Deserialize, Serialize};

/// How a job's tables are laid out in the warehouse.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TableFormat {
    /// A folder of Parquet files per table, replaced file by file (readers list files).
    #[default]
    Parquet,
    /// A Delta Lake table per table: one transactional version per table per run, history,
    /// time travel, compaction and vacuum.
    Delta,
}

/// `[delta]`: maintenance of Delta tables.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaSettings {
    /// Run compaction and vacuum on the tables a run committed, right after its commit.
    #[serde(default = "default_maintain_after_run")]
    pub maintain_after_run: bool,
    /// Data files smaller than this are compacted, per table and partition, into one file
    /// once a partition holds at least two of them (0 = never compact).
    #[serde(default = "default_compact_below_bytes")]
    pub compact_below_bytes: u64,
    /// Hours a data file no current version needs is kept for time travel before vacuum
    /// deletes it.
    #[serde(default = "default_vacuum_retention_hours")]
    pub vacuum_retention_hours: u64,
}

impl Default for DeltaSettings {
    fn default() -> Self {
        Self {
            maintain_after_run: default_maintain_after_run(),
            compact_below_bytes: default_compact_below_bytes(),
            vacuum_retention_hours: default_vacuum_retention_hours(),
        }
    }
}

fn default_maintain_after_run() -> bool {
    true
}

/// 16 MiB: a day of one account's spend is a few KiB, so a year of days compacts to a file.
fn default_compact_below_bytes() -> u64 {
    16 * 1024 * 1024
}

/// Seven days, Delta Lake's own default (`delta.deletedFileRetentionDuration`).
fn default_vacuum_retention_hours() -> u64 {
    7 * 24
}
