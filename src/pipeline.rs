//! One run of a job: open the warehouse, finish any interrupted publish, pull every source
//! (concurrently) into staged files, publish what succeeded in one commit, and write the
//! `_rejects` and `_runs` rows. Returns a `RunReport`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::ObjectStore;
use tracing::Instrument;

use crate::config::{EnvLookup, JobConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpStats};
use crate::lock::JobLock;
use crate::normalize::{
    BatchStamp, Dataset, PersonalDataHasher, RejectRow, RejectsBuilder, RunRow, RunsBuilder,
    TableRows, hash_key_is_demo, rejects_schema, runs_schema,
};
use crate::sink::{
    OutputSummary, OutputTarget, PendingCommit, StagedFile, Warehouse, WarehouseUrl,
    discard_staging, publish, rejects_path, roll_forward, runs_path, write_batches,
};
use crate::sources::pages::{Pages, RawLanding, ReplaySource};
use crate::sources::{self, ResolvedSecrets, SourceContext};
use crate::state::SourceState;

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
}

impl Replay {
    /// Replay a local directory.
    pub fn directory(dir: &std::path::Path) -> Result<Self> {
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::storage(dir.display().to_string(), e))?;
        Ok(Replay {
            store: Arc::new(fs),
            root: String::new(),
        })
    }

    fn source_prefix(&self, source: &str) -> String {
        if self.root.is_empty() {
            source.to_string()
        } else {
            format!("{}/{source}", self.root)
        }
    }
}

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

/// Can this source re-pull a date range? (Its table is partitioned by day.)
pub fn supports_backfill(source: &SourceConfig) -> bool {
    matches!(source, SourceConfig::GoogleAds(_))
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
        let step = crate::metrics::fanin::MetricsOptions::default();
        return crate::metrics::fanin::run_metrics_step(
            job,
            env,
            options.now,
            warehouse,
            started,
            &step,
        )
        .await;
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
        if !job.sources.iter().any(supports_backfill) {
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
    let reprocessed = options.replay.as_ref().and_then(|r| {
        r.root
            .strip_prefix(&format!("_raw/{}/", job.name))
            .map(str::to_string)
    });
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
        .filter(|s| backfill.is_none() || supports_backfill(s))
        .filter(|s| options.sources.is_empty() || options.sources.iter().any(|n| n == s.name()))
        .collect();
    tracing::info!(sources = sources.len(), warehouse = %warehouse.describe(), backfill = ?backfill,
        full_refresh = options.full_refresh, "run started");

    let window = backfill.map(|b| (b.from, b.to));
    let pulls = sources.iter().map(|source| {
        let span = tracing::info_span!("source", source = %source.name(), kind = source.kind());
        pull_source(job, source, env, hasher, store, &stamp, &options, window).instrument(span)
    });
    // A stop drops every pull where it stands: no request is sent after it.
    let outcomes = match options
        .cancel
        .or_stop(futures::future::join_all(pulls))
        .await
    {
        Ok(outcomes) => outcomes,
        Err(stop) => return abort_run(warehouse, job, &stamp, options.now, started, stop).await,
    };

    let mut datasets: BTreeMap<Dataset, DatasetCounts> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut files = Vec::new();
    let mut rejects: Vec<RejectRow> = Vec::new();
    let mut next_states = Vec::new();
    let mut deletes = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    for (source, (outcome, stats, next_state, elapsed)) in sources.iter().zip(outcomes) {
        let mut report = SourceReport {
            name: source.name().to_string(),
            kind: source.kind(),
            error: None,
            requests: stats.as_ref().map_or(0, |s| s.requests()),
            retries: stats.as_ref().map_or(0, |s| s.retries()),
            bytes: stats.as_ref().map_or(0, |s| s.bytes()),
            elapsed,
        };
        match outcome {
            Ok(summary) => {
                let counts = datasets.entry(summary.dataset).or_default();
                counts.read += summary.read;
                counts.written += summary.written;
                counts.rejected += summary.rejects.len() as u64;
                counts.requests += report.requests;
                counts.retries += report.retries;
                counts.elapsed = counts.elapsed.max(elapsed);
                tracing::info!(source = %summary.source, read = summary.read, written = summary.written,
                    rejected = summary.rejects.len(), carried = summary.carried, duplicates = summary.duplicates,
                    requests = report.requests, retries = report.retries, "source pulled");
                let full_pull = !summary.incremental
                    && backfill.is_none()
                    && options.replay.is_none()
                    && job.shrink_warn_ratio > 0.0
                    && summary.dataset != Dataset::Spend;
                for warning in &summary.warnings {
                    warnings.push(format!("{}: {warning}", summary.source));
                }
                if full_pull
                    && let Some(warning) =
                        shrink_warning(store, job, &summary, job.shrink_warn_ratio).await?
                {
                    tracing::warn!(source = %summary.source, "{warning}");
                    warnings.push(warning);
                }
                // A day the vendor now has no rows for: its old file is deleted rather than
                // replaced by an empty one.
                let (emptied, staged): (Vec<StagedFile>, Vec<StagedFile>) = summary
                    .files
                    .into_iter()
                    .partition(|f| f.rows == 0 && f.target.contains("/date="));
                deletes.extend(emptied.into_iter().map(|f| f.target));
                if let Some(range) = backfill {
                    deletes.extend(
                        emptied_partitions(store, job, source.name(), range, &staged).await?,
                    );
                }
                files.extend(staged);
                rejects.extend(summary.rejects);
                if let Some(state) = next_state {
                    next_states.push((source.name().to_string(), state));
                }
            }
            Err(e) => {
                tracing::error!(source = %source.name(), error = %e, "source failed; its data is not committed");
                report.error = Some(e.to_string());
            }
        }
        reports.push(report);
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
    let metrics = crate::metrics::stage_metrics_warning(
        job,
        env,
        store,
        &stamp,
        metrics_now,
        &mut files,
        &mut warnings,
    );
    match options.cancel.or_stop(metrics).await {
        Err(stop) => return abort_run(warehouse, job, &stamp, options.now, started, stop).await,
        Ok(Ok(metric_files)) => files.extend(metric_files),
        Ok(Err(e)) => {
            discard_staging(store, &job.name, &run_id).await.ok();
            return Err(e);
        }
    }

    // The rejects file is part of the commit: it appears with the rows it accounts for.
    let rejects_target = rejects_path(&job.name, &run_id);
    let rejects_staged = crate::sink::staging_path(&job.name, &run_id, &rejects_target);
    let rejects_rows = rejects.len() as u64;
    let mut builder = RejectsBuilder::new(rejects.len());
    for row in rejects {
        builder.push(row);
    }
    let batch = builder.finish(&stamp);
    write_batches(store, &rejects_staged, rejects_schema(), &[batch]).await?;
    files.push(
        staged_file(
            store,
            "_rejects",
            rejects_staged.to_string(),
            rejects_target.to_string(),
            rejects_rows,
        )
        .await?,
    );

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
    let mut runs = RunsBuilder::new(1);
    runs.push(run_row);
    // Staged and published with the rest: a run that committed is in `_runs`, also when it is
    // killed after its commit record and the next start rolls it forward.
    let runs_target = runs_path(&job.name, &run_id);
    let runs_staged = crate::sink::staging_path(&job.name, &run_id, &runs_target);
    write_batches(store, &runs_staged, runs_schema(), &[runs.finish(&stamp)]).await?;
    files.push(
        staged_file(
            store,
            "_runs",
            runs_staged.to_string(),
            runs_target.to_string(),
            1,
        )
        .await?,
    );

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
    // --- Delta hook: compaction and vacuum of the tables this run committed. ---
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

/// A run asked to stop before its commit record: nothing of it is published. What it staged
/// and the pages it landed are removed (the pages first: a kill in between leaves a raw folder
/// without a `_runs` row, which the next start removes), then a `_runs` row records it as
/// `aborted` with the reason. The caller releases the lock.
async fn abort_run(
    warehouse: &Warehouse,
    job: &JobConfig,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    started: Instant,
    stop: crate::cancel::Stop,
) -> Result<RunReport> {
    let store = &warehouse.store;
    let run_id = &stamp.run_id;
    tracing::warn!(
        reason = stop.describe(),
        "run stopped before its commit: nothing is published"
    );
    crate::sink::remove_prefix(
        warehouse,
        &object_store::path::Path::from(format!("_raw/{}/{run_id}", job.name)),
    )
    .await?;
    discard_staging(store, &job.name, run_id).await?;
    let row = RunRow {
        error: Some(format!(
            "stopped by {} before its commit; nothing was published",
            stop.describe()
        )),
        ..RunRow::without_rows(run_id, &job.name, "aborted", now.timestamp_micros())
    };
    let mut runs = RunsBuilder::new(1);
    runs.push(row);
    let target = runs_path(&job.name, run_id);
    write_batches(store, &target, runs_schema(), &[runs.finish(stamp)]).await?;
    let file = staged_file(store, "_runs", target.to_string(), target.to_string(), 1).await?;
    Ok(RunReport {
        job: job.name.clone(),
        run_id: run_id.clone(),
        status: "aborted",
        datasets: BTreeMap::new(),
        sources: Vec::new(),
        files: vec![file],
        elapsed: started.elapsed(),
        warehouse: warehouse.describe(),
    })
}

async fn staged_file(
    store: &Arc<dyn ObjectStore>,
    table: &str,
    staged: String,
    target: String,
    rows: u64,
) -> Result<StagedFile> {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::from(staged.as_str());
    let bytes = store
        .head(&path)
        .await
        .map_err(|e| Error::storage(staged.clone(), e))?
        .size;
    Ok(StagedFile {
        table: table.to_string(),
        staged,
        target,
        rows,
        bytes,
    })
}

type PullOutcome = (
    Result<OutputSummary>,
    Option<Arc<HttpStats>>,
    Option<SourceState>,
    std::time::Duration,
);

#[allow(
    clippy::too_many_arguments,
    reason = "borrows the run's pieces; one call site"
)]
async fn pull_source(
    job: &JobConfig,
    source: &SourceConfig,
    env: EnvLookup<'_>,
    hasher: &PersonalDataHasher,
    store: &Arc<dyn ObjectStore>,
    stamp: &BatchStamp,
    options: &RunOptions,
    window: Option<(NaiveDate, NaiveDate)>,
) -> PullOutcome {
    tracing::info!("pulling");
    let pull_started = Instant::now();
    let http = match HttpClient::new(source.name(), source.http()) {
        Ok(h) => h,
        Err(e) => return (Err(e), None, None, pull_started.elapsed()),
    };
    let stats = http.stats();
    let records = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _progress = crate::ops::progress::track(
        source.name(),
        crate::ops::progress::SourceCounters {
            http: Arc::clone(&stats),
            records: Arc::clone(&records),
        },
    );
    let (mut now, mut window) = (options.now, window);
    let started = async {
        // A replay starts from the state the recorded run started from, so it merges or
        // replaces exactly as that run did…
        let (pages, previous) = match &options.replay {
            Some(replay) => {
                let prefix = replay.source_prefix(source.name());
                let previous = load_recorded_state(&replay.store, &prefix).await?;
                // …and on the recorded run's clock and window, so a replay on a later day
                // pulls (and covers) exactly the days that run did.
                if let Some(clock) = load_recorded_clock(&replay.store, &prefix).await? {
                    now = clock.now;
                    window = clock.window;
                }
                (
                    Pages::replay(
                        source.name(),
                        ReplaySource {
                            store: Arc::clone(&replay.store),
                            prefix,
                        },
                    ),
                    previous,
                )
            }
            None => {
                // A full refresh starts as if the source had never committed: a full pull
                // that replaces its table, and a watermark written afresh on commit.
                let previous = if options.full_refresh {
                    SourceState::default()
                } else {
                    crate::state::load(store, &job.name, source.name()).await?
                };
                let landing = match &options.record {
                    Some(record) => Some(RawLanding {
                        store: Arc::clone(&record.store),
                        prefix: record.source_prefix(source.name()),
                        hasher: hasher.clone(),
                        verbatim: true,
                    }),
                    None => (job.raw_retention_days > 0).then(|| RawLanding {
                        store: Arc::clone(store),
                        prefix: format!("_raw/{}/{}/{}", job.name, stamp.run_id, source.name()),
                        hasher: hasher.clone(),
                        verbatim: false,
                    }),
                };
                if let Some(landing) = &landing {
                    record_state(landing, &previous).await?;
                    let clock = RecordedClock {
                        now: options.now,
                        window,
                    };
                    record_clock(landing, &clock).await?;
                }
                (Pages::live(source.name(), http.clone(), landing), previous)
            }
        };
        Ok::<_, Error>(
            SourceContext::new(
                source.name(),
                http,
                pages,
                hasher.clone(),
                now.date_naive(),
                previous,
            )
            .with_clock(now)
            .with_window(window)
            .with_reporting_currency(&job.reporting_currency),
        )
    }
    .await;
    let ctx = match started {
        Ok(ctx) => ctx,
        Err(e) => return (Err(e), Some(stats), None, pull_started.elapsed()),
    };
    let target = OutputTarget {
        store: Arc::clone(store),
        job: job.name.clone(),
        source: source.name().to_string(),
        stamp: stamp.clone(),
        batch_rows: job.batch_rows,
        clock_micros: now.timestamp_micros(),
        records,
    };
    let result = async {
        let resolved = ResolvedSecrets::resolve(job, source, env)?;
        sources::pull(source, &resolved, &ctx, target).await
    }
    .await;
    let next = result.is_ok().then(|| ctx.next_state());
    (result, Some(stats), next, pull_started.elapsed())
}

/// A warning when a full pull wrote fewer than `ratio` × the rows the source's (unpartitioned)
/// table file held before this run.
async fn shrink_warning(
    store: &Arc<dyn ObjectStore>,
    job: &JobConfig,
    summary: &OutputSummary,
    ratio: f64,
) -> Result<Option<String>> {
    use object_store::ObjectStoreExt;
    use parquet::file::reader::FileReader;
    let table = summary.dataset.table();
    let path = crate::sink::table_file(table, None, &job.name, &summary.source);
    let bytes = match store.get(&path).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| Error::storage(path.to_string(), e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage(path.to_string(), e)),
    };
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes)
        .map_err(|e| Error::encode(path.to_string(), e))?;
    let held = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let now = summary.written;
    Ok(((now as f64) < ratio * held as f64).then(|| {
        format!(
            "{}: a full pull returned {now} {table} rows, but the table held {held} (below shrink_warn_ratio {ratio}); check the source (filters, permissions, vendor outage) before trusting it",
            summary.source
        )
    }))
}

/// The day partitions of `source`'s table inside `range` that exist in the warehouse but
/// that the backfill produced no file for: the vendor has no rows for those days any more.
async fn emptied_partitions(
    store: &Arc<dyn ObjectStore>,
    job: &JobConfig,
    source: &str,
    range: Backfill,
    staged: &[StagedFile],
) -> Result<Vec<String>> {
    let table = Dataset::Spend.table();
    let root = object_store::path::Path::from(table);
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let mut emptied = Vec::new();
    for partition in listing.common_prefixes {
        let Some(day) = partition
            .filename()
            .and_then(|f| f.strip_prefix("date="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        if day < range.from || day > range.to {
            continue;
        }
        let file = crate::sink::table_file(table, Some(&format!("date={day}")), &job.name, source);
        let target = file.to_string();
        if staged.iter().any(|f| f.target == target) {
            continue;
        }
        use object_store::ObjectStoreExt;
        if store.head(&file).await.is_ok() {
            emptied.push(target);
        }
    }
    Ok(emptied)
}

/// A landed run keeps the state it started from beside its pages, for faithful replays.
async fn record_state(landing: &RawLanding, state: &SourceState) -> Result<()> {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::from(format!("{}/_state.json", landing.prefix));
    let body = serde_json::to_vec_pretty(state).map_err(|e| Error::storage(path.to_string(), e))?;
    landing
        .store
        .put(&path, object_store::PutPayload::from(body))
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    Ok(())
}

/// The clock and window a landed run pulled with, kept beside its `_state.json` as
/// `_clock.json`: a replay on a later day uses them rather than its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RecordedClock {
    /// The recorded run's "now".
    now: DateTime<Utc>,
    /// A backfill's range, when the recorded run was one.
    window: Option<(NaiveDate, NaiveDate)>,
}

async fn record_clock(landing: &RawLanding, clock: &RecordedClock) -> Result<()> {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::from(format!("{}/_clock.json", landing.prefix));
    let body = serde_json::to_vec_pretty(clock).map_err(|e| Error::storage(path.to_string(), e))?;
    landing
        .store
        .put(&path, object_store::PutPayload::from(body))
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    Ok(())
}

/// The recorded clock of one source's pages; `None` for recordings made before clocks were
/// kept (and hand-written ones): those replay on the current clock.
async fn load_recorded_clock(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> Result<Option<RecordedClock>> {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::from(format!("{prefix}/_clock.json"));
    match store.get(&path).await {
        Ok(got) => {
            let bytes = got
                .bytes()
                .await
                .map_err(|e| Error::storage(path.to_string(), e))?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::storage(path.to_string(), e))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::storage(path.to_string(), e)),
    }
}

/// The clock the replayed run's metrics use: the latest recorded clock of the sources
/// replayed, or this run's own when none was recorded.
async fn replay_clock(
    replay: &Replay,
    sources: &[&SourceConfig],
    own: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let mut latest: Option<DateTime<Utc>> = None;
    for source in sources {
        let prefix = replay.source_prefix(source.name());
        if let Some(clock) = load_recorded_clock(&replay.store, &prefix).await? {
            latest = latest.max(Some(clock.now));
        }
    }
    Ok(latest.unwrap_or(own))
}

async fn load_recorded_state(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<SourceState> {
    use object_store::ObjectStoreExt;
    let path = object_store::path::Path::from(format!("{prefix}/_state.json"));
    match store.get(&path).await {
        Ok(got) => {
            let bytes = got
                .bytes()
                .await
                .map_err(|e| Error::storage(path.to_string(), e))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::storage(path.to_string(), e))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(SourceState::default()),
        Err(e) => Err(Error::storage(path.to_string(), e)),
    }
}

/// Delete landed runs (`_raw/<job>/<run_id>/`) older than `keep_days`; returns how many.
async fn prune_raw(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    now: DateTime<Utc>,
    keep_days: u32,
) -> Result<usize> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let root = object_store::path::Path::from(format!("_raw/{job}"));
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let cutoff = now - chrono::Duration::days(i64::from(keep_days));
    let mut pruned = 0;
    for run in listing.common_prefixes {
        let Some(run_id) = run.filename() else {
            continue;
        };
        let started = run_id
            .get(..16)
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%SZ").ok());
        if started.is_none_or(|t| t.and_utc() >= cutoff) {
            continue;
        }
        let objects: Vec<_> = store
            .list(Some(&run))
            .try_collect()
            .await
            .map_err(|e| Error::storage(run.to_string(), e))?;
        for meta in objects {
            store
                .delete(&meta.location)
                .await
                .map_err(|e| Error::storage(meta.location.to_string(), e))?;
        }
        pruned += 1;
    }
    Ok(pruned)
}

/// `YYYYMMDDTHHMMSSZ-xxxxxx`: sortable by start time, unique even for runs started in the
/// same second (process id, wall-clock nanoseconds and a counter feed the suffix).
pub(crate) fn new_run_id(now: DateTime<Utc>) -> String {
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
