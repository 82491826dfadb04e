//! What a run reports: its id, per-dataset counts, per-source outcomes and the files it
//! published.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::normalize::Dataset;
use crate::sink::StagedFile;

/// Per-dataset accounting: read = written + rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetCounts {
    /// Records received from vendors.
    pub read: u64,
    /// Rows written to the dataset's table.
    pub written: u64,
    /// Records sent to `_rejects`.
    pub rejected: u64,
    /// HTTP requests of the sources that fed it (a failed source's count only in the total).
    pub requests: u64,
    /// Retries among them.
    pub retries: u64,
    /// The longest pull among those sources (they pull concurrently).
    pub elapsed: std::time::Duration,
}

/// How one source did.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// Source kind.
    pub kind: &'static str,
    /// `None` when it succeeded; else why it failed (its data was not committed).
    pub error: Option<String>,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// How long its pull took, staging included.
    pub elapsed: std::time::Duration,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The job.
    pub job: String,
    /// The run id.
    pub run_id: String,
    /// `succeeded`, `partial`, `failed`, or `aborted` (asked to stop before its commit:
    /// nothing published).
    pub status: &'static str,
    /// Per dataset.
    pub datasets: BTreeMap<Dataset, DatasetCounts>,
    /// Per source.
    pub sources: Vec<SourceReport>,
    /// Every file the run published (tables, `_rejects`, `_runs`).
    pub files: Vec<StagedFile>,
    /// Wall time.
    pub elapsed: std::time::Duration,
    /// Where the warehouse is.
    pub warehouse: String,
}

impl RunReport {
    /// Did every source succeed?
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// `YYYYMMDDTHHMMSSZ-xxxxxx`: sortable by start time, unique even for runs started in the
/// same second (process id, wall-clock nanoseconds and a counter feed the suffix).
pub(super) fn new_run_id(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%SZ"),
        hasher.finish() & 0xff_ffff
    )
}
