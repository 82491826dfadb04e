//! What an operator reads: the end-of-run summary, `funnelhouse runs` (recent `_runs` rows
//! and current watermarks), and per-source progress while a run pulls.

pub mod progress;
pub mod runs;
pub mod summary;
