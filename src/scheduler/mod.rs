//! `funnelhouse schedule`: the built-in cron daemon — fire times in each job's time zone,
//! no overlapping runs of a job, bounded concurrency, graceful shutdown, and the
//! `/healthz` + `/metrics` endpoints.

mod clock;
mod command;
mod daemon;
mod fire;
mod metrics;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{ScheduleArgs, schedule_command};
pub use daemon::{Daemon, DaemonOptions, DaemonSummary, JobRunner, PipelineRunner, ScheduledJob};
pub use fire::FireSchedule;
pub use metrics::{Metrics, RunOutcome, serve as serve_metrics};
