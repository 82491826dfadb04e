//! One run of a job: open the warehouse, finish any interrupted publish, pull every source
//! (concurrently) into staged files, publish what succeeded in one commit, and write the
//! `_rejects` and `_runs` rows. Returns a `RunReport`.
//!
//! This module holds the run's options and entry points and sequences the phases; each phase
//! lives in its own module: `pull` (one source, live or replayed), `metrics` (the metric
//! tables over the current inputs), `commit` (the bookkeeping files, an aborted run),
//! `fanin` (a `[fan_in]` job's metrics step) and `report` (what a run reports). Storage
//! details (raw landing, recorded state and clock, staged files) are the sink's.

mod commit;
pub mod fanin;
pub mod metrics;
mod pull;
mod report;
mod snapshot;

pub use report::{DatasetCounts, RunReport, SourceReport};

pub(crate) use report::new_run_id;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::ObjectStore;
use tracing::Instrument;

use commit::{abort_run, stage_rejects, stage_run_row};
use pull::{PullRun, Pulled, Pulls, gather, replay_clock};

use crate::config::{EnvLookup, JobConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::lock::JobLock;
use crate::normalize::{BatchStamp, Dataset, PersonalDataHasher, RunRow, hash_key_is_demo};
use crate::sink::{
    PendingCommit, Warehouse, WarehouseUrl, discard_staging, prune_raw, publish, roll_forward,
};

/// Options of one run that do not come from the job file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's clock ("now"); tests pin it.
    pub now: DateTime<Utc>,
    /// Replay recorded pages instead of calling the vendors.
    pub replay: Option<Replay>,
    /// Record every page exactly as received (plain `.json`, not scrubbed) into this
    /// location instead of landing it under `_raw/` — `funnelhouse sandbox --record`.
    pub record: Option<Replay>,
    /// Run only these sources (names in the job file); empty runs every source. The others'
    /// tables and watermarks are left as they are; metrics still read every current table.
    pub sources: Vec<String>,
    /// Start the pulled sources from no watermark (a full pull) instead of the stored one;
    /// the new watermark is saved when the run commits. Ignored by a replay.
    pub full_refresh: bool,
    /// Asks the run to stop (SIGTERM/SIGINT, the scheduler's shutdown): before its commit
    /// record it stops pulling, publishes nothing and records itself as `aborted`.
    pub cancel: crate::cancel::Cancel,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            now: Utc::now(),
            replay: None,
            record: None,
            sources: Vec::new(),
            full_refresh: false,
            cancel: crate::cancel::Cancel::new(),
        }
    }
}

/// `Err` with what to type instead when a name in `names` is not a source of `job`.
pub fn check_source_names(job: &JobConfig, names: &[String]) -> std::result::Result<(), String> {
    let known: Vec<&str> = job.sources.iter().map(|s| s.name()).collect();
    for name in names {
        if known.contains(&name.as_str()) {
            continue;
        }
        let hint = closest(name, &known)
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "--source `{name}`: job `{}` has no source of that name{hint}; its sources are {}",
            job.name,
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// The candidate nearest to `name` by edit distance, if it is near enough to be a typo.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = (diagonal + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(above + 1);
                diagonal = above;
            }
        }
        row[b.len()]
    }
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Recorded pages in the design §9 layout: `<root>/<source>/<endpoint>/page-NNNNNN.json[.zst]`.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The store holding the recording (a local directory or the warehouse).
    pub store: Arc<dyn ObjectStore>,
    /// The root folder inside that store (`""` for the store's root).
    pub root: String,
    /// The same store when it is a local directory: its pages are then read with one
    /// blocking call each (see [`ReplaySource`](crate::sources::pages::ReplaySource)).
    pub local: Option<Arc<object_store::local::LocalFileSystem>>,
}

impl Replay {
    /// Replay a local directory.
    pub fn directory(dir: &std::path::Path) -> Result<Self> {
        let fs = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| Error::storage(dir.display().to_string(), e))?,
        );
        Ok(Replay {
            store: Arc::clone(&fs) as Arc<dyn ObjectStore>,
            root: String::new(),
            local: Some(fs),
        })
    }

    /// Replay the pages under `root` in `store` (a warehouse's landed `_raw/` pages).
    pub fn in_store(store: Arc<dyn ObjectStore>, root: String) -> Self {
        Replay {
            store,
            root,
            local: None,
        }
    }

    fn source_prefix(&self, source: &str) -> String {
        if self.root.is_empty() {
            source.to_string()
        } else {
            format!("{}/{source}", self.root)
        }
    }
}

/// Run `job` once, resolving `${VAR}`s through `env`.
pub async fn run_job(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
) -> Result<RunReport> {
    let started = Instant::now();
    let warehouse = open_warehouse(job, env)?;
    run_job_in(job, env, options, &warehouse, started).await
}

/// Open the job's warehouse.
pub fn open_warehouse(job: &JobConfig, env: EnvLookup<'_>) -> Result<Warehouse> {
    let url = job.warehouse.resolve(env).map_err(|var| {
        Error::config(
            &job.path,
            format!("warehouse: environment variable `{var}` is not set"),
        )
    })?;
    let url = crate::config::resolve_job_path(&job.path, &url);
    Warehouse::open(WarehouseUrl::parse(&url).map_err(|e| Error::config(&job.path, e))?)
}

/// An inclusive date range to re-pull (`funnelhouse backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
}

/// Run `job` against an already open warehouse.
pub async fn run_job_in(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
    warehouse: &Warehouse,
    started: Instant,
) -> Result<RunReport> {
    run_job_with(job, env, options, warehouse, started, None).await
}

/// Backfill `range`: re-pull it for every source that supports it and rebuild exactly the
/// partitions in the range (a day the vendor now has no rows for loses its file); other
/// sources are not run, and watermarks stay where they are.
pub async fn backfill_job(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
    range: Backfill,
) -> Result<RunReport> {
    let started = Instant::now();
    let warehouse = open_warehouse(job, env)?;
    run_job_with(job, env, options, &warehouse, started, Some(range)).await
}

async fn run_job_with(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
    warehouse: &Warehouse,
    started: Instant,
    backfill: Option<Backfill>,
) -> Result<RunReport> {
    // Instrumented rather than entered: an entered guard held across awaits would tag other
    // tasks' events with this run when the scheduler runs several jobs at once.
    let span = tracing::info_span!("run", job = %job.name, run_id = tracing::field::Empty);
    run_in_span(job, env, options, warehouse, started, backfill, &span)
        .instrument(span.clone())
        .await
}

#[allow(clippy::too_many_arguments, reason = "one call site; the run's pieces")]
async fn run_in_span(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
    warehouse: &Warehouse,
    started: Instant,
    backfill: Option<Backfill>,
    span: &tracing::Span,
) -> Result<RunReport> {
    // A `[fan_in]` job pulls nothing: `run` (and the daemon) run its metrics step.
    if job.fan_in.is_some() {
        if backfill.is_some() || options.replay.is_some() || !options.sources.is_empty() {
            return Err(Error::Run {
                job: job.name.clone(),
                message: "a [fan_in] job pulls nothing: backfill, replay and --source apply to its pull jobs".into(),
            });
        }
        let step = fanin::MetricsOptions::default();
        return fanin::run_metrics_step(job, env, options.now, warehouse, started, &step).await;
    }
    check_source_names(job, &options.sources).map_err(|message| Error::Run {
        job: job.name.clone(),
        message,
    })?;
    if let Some(range) = backfill {
        if range.from > range.to {
            return Err(Error::Run {
                job: job.name.clone(),
                message: format!("backfill range {} .. {} is empty", range.from, range.to),
            });
        }
        if !job.sources.iter().any(SourceConfig::supports_backfill) {
            return Err(Error::Run {
                job: job.name.clone(),
                message: "no source of this job can re-pull a date range (google_ads can)".into(),
            });
        }
    }
    let store = &warehouse.store;
    let hash_key = job.hash_key.resolve(env).map_err(|var| {
        Error::config(
            &job.path,
            format!("hash_key: environment variable `{var}` is not set"),
        )
    })?;
    if hash_key_is_demo(&hash_key) {
        tracing::warn!(job = %job.name, "hash_key is the documented demo key: fine for the sandbox, never for real personal data");
    }
    let hasher = PersonalDataHasher::new(hash_key.as_bytes());

    // Nothing is written before the job's lock is ours: a second run stops here untouched.
    let run_id = new_run_id(options.now);
    let lease = std::time::Duration::from_secs(job.lock_lease_secs);
    let lock = JobLock::acquire(store, &job.name, &run_id, lease).await?;
    let outcome = run_locked(
        job, env, options, warehouse, started, &hasher, run_id, backfill, span,
    )
    .await;
    let released = lock.release().await;
    let report = outcome?;
    released?;
    Ok(report)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the run's pieces, not a config"
)]
async fn run_locked(
    job: &JobConfig,
    env: EnvLookup<'_>,
    options: RunOptions,
    warehouse: &Warehouse,
    started: Instant,
    hasher: &PersonalDataHasher,
    run_id: String,
    backfill: Option<Backfill>,
    span: &tracing::Span,
) -> Result<RunReport> {
    let store = &warehouse.store;
    let rolled = roll_forward(store, &job.name).await?;
    if rolled > 0 {
        tracing::info!(job = %job.name, rolled, "finished interrupted publishes");
    }
    let abandoned = crate::sink::discard_abandoned_staging(store, &job.name).await?;
    if abandoned > 0 {
        tracing::info!(job = %job.name, abandoned, "removed files staged by runs that died before their commit");
    }
    // Raw pages of runs that never committed, and temporary files of cut-short writes. Not
    // data: a failure to remove them is worth a warning, not the run.
    let reprocessed = options
        .replay
        .as_ref()
        .and_then(|r| crate::sink::layout::raw_run_of(&r.root, &job.name).map(str::to_string));
    match crate::sink::sweep_leftovers(warehouse, &job.name, reprocessed.as_deref()).await {
        Ok(swept) if swept != crate::sink::Swept::default() => {
            tracing::info!(job = %job.name, raw_runs = swept.raw_runs, temporary = swept.temporary,
                "removed what killed runs left: raw pages of runs that never committed, temporary files");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(job = %job.name, error = %e, "could not remove what killed runs left")
        }
    }

    let stamp = BatchStamp {
        run_id: run_id.clone(),
        ingested_at_micros: options.now.timestamp_micros(),
    };
    span.record("run_id", run_id.as_str());
    // A backfill runs only the sources that can re-pull a date range; `--source` only those
    // named.
    let sources: Vec<&SourceConfig> = job
        .sources
        .iter()
        .filter(|s| backfill.is_none() || s.supports_backfill())
        .filter(|s| options.sources.is_empty() || options.sources.iter().any(|n| n == s.name()))
        .collect();
    tracing::info!(sources = sources.len(), warehouse = %warehouse.describe(), backfill = ?backfill,
        full_refresh = options.full_refresh, "run started");

    // The exchange rates first: the spend and costs outputs write `*_reporting` as they
    // stage, and the metrics step converts at the same rates.
    let fx = match options.cancel.or_stop(metrics::load_rates(job, env)).await {
        Ok(fx) => Arc::new(fx?),
        Err(stop) => return abort_run(warehouse, job, &stamp, options.now, started, stop).await,
    };

    let run = PullRun {
        job: Arc::new(job.clone()),
        hasher: hasher.clone(),
        store: Arc::clone(store),
        stamp: stamp.clone(),
        options: options.clone(),
        window: backfill.map(|b| (b.from, b.to)),
        fx: Arc::clone(&fx),
    };
    let mut pulls = Pulls::spawn(&run, &sources, env);
    // A stop aborts every pull where it stands: no request is sent after it.
    let outcomes = match options.cancel.or_stop(pulls.join()).await {
        Ok(outcomes) => outcomes,
        Err(stop) => {
            pulls.stop().await;
            return abort_run(warehouse, job, &stamp, options.now, started, stop).await;
        }
    };

    let Pulled {
        datasets,
        reports,
        mut files,
        rejects,
        next_states,
        deletes,
        mut warnings,
        unconverted,
    } = gather(job, store, &options, backfill, &sources, outcomes).await?;
    if !unconverted.is_empty() {
        tracing::warn!(currencies = ?unconverted, reporting = %fx.reporting(),
            "no FX rate for some amounts: their *_reporting is null and cpsql_monthly marks them incomplete");
    }

    let failed: Vec<&SourceReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    let status = match failed.len() {
        0 => "succeeded",
        n if n == reports.len() => "failed",
        _ => "partial",
    };

    // Metrics over the current input tables, staged to publish in the same commit.
    // A replay computes metrics as of the recorded run (days in stage, SLA ages).
    let metrics_now = match &options.replay {
        Some(replay) => replay_clock(replay, &sources, options.now).await?,
        None => options.now,
    };
    let metrics =
        metrics::stage_metrics_warning(job, &fx, store, &stamp, metrics_now, &files, &mut warnings);
    match options.cancel.or_stop(metrics).await {
        Err(stop) => return abort_run(warehouse, job, &stamp, options.now, started, stop).await,
        Ok(Ok(metric_files)) => files.extend(metric_files),
        Ok(Err(e)) => {
            discard_staging(store, &job.name, &run_id).await.ok();
            return Err(e);
        }
    }

    // The rejects file is part of the commit: it appears with the rows it accounts for.
    files.push(stage_rejects(store, &job.name, &stamp, rejects).await?);

    let error = (!failed.is_empty()).then(|| {
        failed
            .iter()
            .map(|r| format!("{}: {}", r.name, r.error.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let count = |d: Dataset| datasets.get(&d).cloned().unwrap_or_default();
    let (leads, spend, surveys) = (
        count(Dataset::Leads),
        count(Dataset::Spend),
        count(Dataset::SurveyResponses),
    );
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let run_row = RunRow {
        run_id: run_id.clone(),
        job: job.name.clone(),
        status: status.to_string(),
        started_at: Some(options.now.timestamp_micros()),
        finished_at: Some(Utc::now().timestamp_micros()),
        error,
        warnings: (!warnings.is_empty()).then(|| warnings.join("; ")),
        leads_read: as_i64(leads.read),
        leads_written: as_i64(leads.written),
        leads_rejected: as_i64(leads.rejected),
        spend_read: as_i64(spend.read),
        spend_written: as_i64(spend.written),
        spend_rejected: as_i64(spend.rejected),
        survey_responses_read: as_i64(surveys.read),
        survey_responses_written: as_i64(surveys.written),
        survey_responses_rejected: as_i64(surveys.rejected),
        costs_read: as_i64(count(Dataset::Costs).read),
        costs_written: as_i64(count(Dataset::Costs).written),
        costs_rejected: as_i64(count(Dataset::Costs).rejected),
        intent_signals_read: as_i64(count(Dataset::IntentSignals).read),
        intent_signals_written: as_i64(count(Dataset::IntentSignals).written),
        intent_signals_rejected: as_i64(count(Dataset::IntentSignals).rejected),
        requests: as_i64(reports.iter().map(|r| r.requests).sum()),
        retries: as_i64(reports.iter().map(|r| r.retries).sum()),
        bytes_received: as_i64(reports.iter().map(|r| r.bytes).sum()),
    };
    files.push(stage_run_row(store, &job.name, &stamp, run_row).await?);

    // The last moment a stop can take effect: past the commit record the run publishes.
    if let Err(stop) = options.cancel.or_stop(crate::pause::point("write")).await {
        return abort_run(warehouse, job, &stamp, options.now, started, stop).await;
    }
    let commit = PendingCommit {
        job: job.name.clone(),
        run_id: run_id.clone(),
        files,
        deletes,
        table_format: job.table_format,
        txn_version: None,
    };
    if let Err(e) = publish(store, &commit).await {
        discard_staging(store, &job.name, &run_id).await.ok();
        return Err(e);
    }
    let files = commit.files;
    // Compaction and vacuum of the Delta tables this run committed.
    if job.table_format == crate::sink::delta::TableFormat::Delta && job.delta.maintain_after_run {
        let tables = crate::sink::delta::tables_of(&files);
        if let Err(e) = crate::sink::delta::maintain(store, &tables, &job.delta, Utc::now()).await {
            // The run's data is committed; maintenance is tried again after the next run.
            tracing::warn!(error = %e, "Delta maintenance failed");
        }
    }

    // Watermarks move only now that the data they cover is published; a replay re-applies
    // rules to old pages and never moves them.
    if options.replay.is_none() && backfill.is_none() {
        for (source, state) in &next_states {
            crate::state::save(store, &job.name, source, state).await?;
        }
        if job.raw_retention_days > 0 {
            let pruned = prune_raw(store, &job.name, options.now, job.raw_retention_days).await?;
            if pruned > 0 {
                tracing::info!(pruned, "removed raw pages past their retention");
            }
        }
    }

    // The run is committed and its `_runs` row written: the report shows those numbers.
    crate::report::after_run(store, job, &run_id).await;

    let report = RunReport {
        job: job.name.clone(),
        run_id,
        status,
        datasets,
        sources: reports,
        files,
        elapsed: started.elapsed(),
        warehouse: warehouse.describe(),
    };
    tracing::info!(
        status,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "run finished"
    );
    Ok(report)
}

/// Peak resident memory of this process (Linux `VmHWM`), for run summaries and benchmarks.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_typo_of_a_source_name_finds_it_and_a_stranger_finds_nothing() {
        let names = ["hubspot", "google_ads", "pulse"];
        assert_eq!(closest("hubspott", &names), Some("hubspot"));
        assert_eq!(closest("Google-Ads", &names), Some("google_ads"));
        assert_eq!(closest("puls", &names), Some("pulse"));
        assert_eq!(closest("salesforce", &names), None);
    }
}
