//! The typed job model: the job header, the closed set of source kinds (re-exported from
//! the registry, `sources/registry.rs`), and the name check (cron, currency and suggestions live in `cron` and `words`).

use std::path::PathBuf;

use serde::Deserialize;

use super::Template;
pub use crate::sources::registry::{SOURCE_KINDS, SourceConfig};

/// A parsed and validated job file.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Where the job was loaded from, for messages.
    pub path: PathBuf,
    /// Unique job name; names folders in `_raw/` and `_state/` and the files it writes.
    pub name: String,
    /// Cron expression (5 or 6 fields) used by the scheduler; `run` ignores it.
    pub schedule: Option<String>,
    /// Time zone the schedule is read in.
    pub timezone: chrono_tz::Tz,
    /// Warehouse root: a path, `file://`, `memory://` or `s3://` URL (may use `${VAR}`).
    pub warehouse: Template,
    /// ISO-4217 currency that money is reported in.
    pub reporting_currency: String,
    /// Key for the HMAC-SHA256 of e-mails and respondent ids (use `${VAR}`).
    pub hash_key: Template,
    /// Rows per Arrow batch while normalizing.
    pub batch_rows: usize,
    /// Days to keep every response body under `_raw/` (0 = don't land raw pages).
    pub raw_retention_days: u32,
    /// Lease of the job lock in seconds: renewed every third while a run lives; a lock
    /// whose lease ran out (its run was killed) is taken over by the next run.
    pub lock_lease_secs: u64,
    /// A full pull returning fewer rows than this share of what the source's table held
    /// logs a warning and records it in `_runs.warnings` (0 = off).
    pub shrink_warn_ratio: f64,
    /// The sources, in file order.
    pub sources: Vec<SourceConfig>,
    /// `[stages]`: stage rules and lead scoring.
    pub stages: crate::metrics::StagesConfig,
    /// `[metrics]`: SAL, eNPS and CPSQL settings.
    pub metrics: crate::metrics::MetricsConfig,
    /// `[fx]`: exchange rates into `reporting_currency`.
    pub fx: crate::metrics::FxConfig,
    /// `false` in a pull job of a fan-out: its runs publish the pulled tables but no metric
    /// tables, which a `[fan_in]` job computes over the whole warehouse.
    pub compute_metrics: bool,
    /// `[fan_in]`: this job pulls nothing and is the metrics step over other jobs' tables
    /// (`funnelhouse metrics`).
    pub fan_in: Option<FanInConfig>,
}

/// `[fan_in]`: which jobs' input tables a metrics job reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FanInConfig {
    /// The pull jobs whose tables to read (their `name`s); empty reads every job that has
    /// input files in the warehouse.
    #[serde(default)]
    pub jobs: Vec<String>,
}

/// The top-level keys of a job file other than `[[sources]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct JobHeader {
    /// Unique job name.
    pub name: String,
    /// Cron schedule for `funnelhouse schedule`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Warehouse root URL or path.
    pub warehouse: Template,
    /// Reporting currency.
    #[serde(default = "default_reporting_currency")]
    pub reporting_currency: String,
    /// HMAC key for personal identifiers (required unless `[fan_in]`).
    #[serde(default)]
    pub hash_key: Option<Template>,
    /// Rows per Arrow batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Days to keep raw response bodies (0 = off).
    #[serde(default = "default_raw_retention_days")]
    pub raw_retention_days: u32,
    /// Stage rules and lead scoring.
    #[serde(default)]
    pub stages: crate::metrics::StagesConfig,
    /// Metric settings.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// Exchange rates.
    #[serde(default)]
    pub fx: crate::metrics::FxConfig,
    /// Job-lock lease in seconds.
    #[serde(default = "default_lock_lease_secs")]
    pub lock_lease_secs: u64,
    /// Share of the previous row count below which a full pull is suspicious.
    #[serde(default = "default_shrink_warn_ratio")]
    pub shrink_warn_ratio: f64,
    /// Whether runs compute the metric tables (off in the pull jobs of a fan-out).
    #[serde(default = "default_compute_metrics")]
    pub compute_metrics: bool,
    /// The metrics step over other jobs' tables.
    #[serde(default)]
    pub fan_in: Option<FanInConfig>,
}

fn default_compute_metrics() -> bool {
    true
}

fn default_shrink_warn_ratio() -> f64 {
    0.5
}

/// Short, because it is renewed every third of it: a retry a minute after a kill on another
/// host (a rescheduled pod) finds the lease run out; on the same host a dead holder's lock is
/// taken over at once.
fn default_lock_lease_secs() -> u64 {
    60
}

fn default_raw_retention_days() -> u32 {
    7
}

fn default_timezone() -> String {
    "UTC".to_string()
}

fn default_reporting_currency() -> String {
    "EUR".to_string()
}

fn default_batch_rows() -> usize {
    8192
}

/// Is this usable as a job or source name (it becomes part of object paths)?
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` may only contain ASCII letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}
