//! Delta Lake tables (`table_format = "delta"`): every table of the warehouse also gets a
//! `_delta_log/`, written through `delta_kernel` over the warehouse's own object store. A run
//! commits each table once, from its commit record (so a roll-forward finishes it), and
//! maintenance compacts and vacuums them.

mod footer;
mod kernel;
mod maintain;
mod members;
mod names;
mod publish;
mod settings;

pub use kernel::{DeltaError, current_files};
pub use maintain::{Maintained, delta_tables, maintain};
pub use names::{DATA_SUFFIX, data_file, logical_target};
pub use publish::{ENGINE_INFO, commit_tables, keep_data_file, next_txn_version, tables_of};
pub use settings::{DeltaSettings, TableFormat};
