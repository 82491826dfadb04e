//! The warehouse: the object store built from the job's URL, ZSTD Parquet writing, the table
//! layout, staged outputs per dataset, and the commit that publishes a run's files.

mod commit;
mod datasets;
pub mod delta;
mod document;
pub mod layout;
mod output;
mod parquet;
mod parquet_columns;
mod partition;
mod raw;
mod recover;
mod rejects;
mod seen;
mod staged;
mod store;

pub use commit::{
    PendingCommit, StagedFile, discard_abandoned_staging, discard_staging, publish, roll_forward,
};
pub use datasets::{spend_partition, stage_source};
pub use document::{Unreadable, read_json, write_json};
pub use layout::{day_partition, rejects_path, runs_path, staging_path, table_file};
pub use output::{DatasetOutput, OutputSummary, OutputTarget, PartitionFn};
pub use parquet::{
    ClosedFile, ParquetFile, ParquetObject, read_parquet_rows, stream_parquet_file,
    stream_parquet_sized, write_batches, writer_properties,
};
pub use partition::{file_batch, file_schema, partition_values, with_partition_columns};
pub use raw::{
    RecordedClock, load_recorded_clock, load_recorded_state, prune_raw, record_clock, record_state,
};
pub use recover::{Swept, remove_prefix, sweep_leftovers};
pub use rejects::Rejects;
pub use staged::{emptied_partitions, published_rows};
pub use store::{Warehouse, WarehouseUrl, open_s3_object};
