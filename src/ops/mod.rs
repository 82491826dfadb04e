//! What an operator reads: exit codes and error lines, the end-of-run summary, `funnelhouse runs` (recent `_runs` rows,
//! current watermarks and the job's lock), and per-source progress while a run pulls.

pub mod exit;
pub mod format;
pub mod maintain;
pub mod progress;
pub mod runs;
pub mod summary;
