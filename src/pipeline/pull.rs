//! The pull phase: one source pulled live (landing its raw pages when asked) or replayed from
//! recorded pages on the recorded clock, into staged files; and what a pull says about the
//! table it replaces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::ObjectStore;
use tracing::Instrument;

use super::{Backfill, DatasetCounts, Replay, RunOptions, SourceReport};
use crate::config::{EnvLookup, JobConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpStats};
use crate::metrics::fx::FxRates;
use crate::normalize::{BatchStamp, Dataset, PersonalDataHasher};
use crate::sink::{
    OutputSummary, OutputTarget, RecordedClock, Rejects, StagedFile, emptied_partitions,
    load_recorded_clock, load_recorded_state, published_rows, record_clock, record_state,
};
use crate::sources::pages::{Pages, RawLanding, ReplaySource};
use crate::sources::{ResolvedSecrets, SourceContext};
use crate::state::SourceState;

/// What one source's pull came to: its staged output, HTTP counters, next state, time.
pub(super) type PullOutcome = (
    Result<OutputSummary>,
    Option<Arc<HttpStats>>,
    Option<SourceState>,
    std::time::Duration,
);

/// The run's pulls, one task each. Joined inside the run's own task they took turns on one
/// thread (the one driving the run), so four sources decoding, checking and buffering rows
/// used little more than one core; as tasks of their own they run on every worker.
/// Dropping it aborts the pulls still running.
pub(super) struct Pulls {
    job: String,
    tasks: Vec<(String, Option<tokio::task::JoinHandle<PullOutcome>>)>,
}

/// What a pull task shares of the run: the job, the run's pieces, owned.
#[derive(Clone)]
pub(super) struct PullRun {
    pub job: Arc<JobConfig>,
    pub hasher: PersonalDataHasher,
    pub store: Arc<dyn ObjectStore>,
    pub stamp: BatchStamp,
    pub options: RunOptions,
    pub window: Option<(NaiveDate, NaiveDate)>,
    pub fx: Arc<FxRates>,
}

impl Pulls {
    /// Start pulling `sources`, each in a task of its own (with its span); the credentials
    /// are resolved from `env` here, before the task starts.
    pub(super) fn spawn(run: &PullRun, sources: &[&SourceConfig], env: EnvLookup<'_>) -> Self {
        let tasks = sources
            .iter()
            .map(|source| {
                let span =
                    tracing::info_span!("source", source = %source.name(), kind = source.kind());
                let secrets = ResolvedSecrets::resolve(&run.job, source, env);
                let name = source.name().to_string();
                let (source, run) = ((*source).clone(), run.clone());
                let pull = async move { pull_source(&run, &source, secrets).await };
                (name, Some(tokio::spawn(pull.instrument(span))))
            })
            .collect();
        Pulls {
            job: run.job.name.clone(),
            tasks,
        }
    }

    /// Every pull's outcome, in the order the sources were given. A pull that panicked is
    /// that source's error; the run goes on with the others.
    pub(super) async fn join(&mut self) -> Vec<PullOutcome> {
        let mut outcomes = Vec::with_capacity(self.tasks.len());
        for (name, task) in &mut self.tasks {
            let Some(handle) = task.as_mut() else {
                continue;
            };
            let outcome = handle.await;
            *task = None;
            outcomes.push(outcome.unwrap_or_else(|e| {
                let error = Error::Run {
                    job: self.job.clone(),
                    message: format!("source `{name}`: its pull stopped: {e}"),
                };
                (Err(error), None, None, std::time::Duration::ZERO)
            }));
        }
        outcomes
    }

    /// Abort the pulls still running and wait until each has stopped, so nothing is
    /// written after this returns.
    pub(super) async fn stop(mut self) {
        for (_, task) in &mut self.tasks {
            if let Some(handle) = task.take() {
                handle.abort();
                handle.await.ok();
            }
        }
    }
}

impl Drop for Pulls {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            if let Some(handle) = task {
                handle.abort();
            }
        }
    }
}

/// How sources open the `s3://` files they read whole: with the warehouse's S3 builder, so
/// a costs or intent file and the warehouse honour the same environment.
#[derive(Debug)]
struct S3Objects;

impl crate::sources::file::ObjectOpener for S3Objects {
    fn open(
        &self,
        url: &str,
    ) -> std::result::Result<(Arc<dyn ObjectStore>, object_store::path::Path), crate::error::Detail>
    {
        crate::sink::open_s3_object(url)
    }
}

async fn pull_source(
    run: &PullRun,
    source: &SourceConfig,
    secrets: Result<ResolvedSecrets>,
) -> PullOutcome {
    let PullRun {
        job,
        hasher,
        store,
        stamp,
        options,
        window,
        fx,
    } = run;
    let window = *window;
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
                            local: replay.local.clone(),
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
                        prefix: crate::sink::layout::raw_source_root(
                            &job.name,
                            &stamp.run_id,
                            source.name(),
                        ),
                        hasher: hasher.clone(),
                        verbatim: false,
                    }),
                };
                if let Some(landing) = &landing {
                    record_state(&landing.store, &landing.prefix, &previous).await?;
                    let clock = RecordedClock {
                        now: options.now,
                        window,
                    };
                    record_clock(&landing.store, &landing.prefix, &clock).await?;
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
            .with_reporting_currency(&job.reporting_currency)
            .with_objects(Arc::new(S3Objects)),
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
        fx: Arc::clone(fx),
    };
    let result = async {
        let resolved = secrets?;
        crate::sink::stage_source(source, &resolved, &ctx, target).await
    }
    .await;
    let next = result.is_ok().then(|| ctx.next_state());
    let pages = ctx.pages.per_endpoint().await;
    tracing::info!(source = %source.name(), %pages, "pages per endpoint");
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
    let table = summary.dataset.table();
    let path = crate::sink::table_file(table, None, &job.name, &summary.source);
    let Some(held) = published_rows(store, &path).await? else {
        return Ok(None);
    };
    let now = summary.written;
    Ok(((now as f64) < ratio * held as f64).then(|| {
        format!(
            "{}: a full pull returned {now} {table} rows, but the table held {held} (below shrink_warn_ratio {ratio}); check the source (filters, permissions, vendor outage) before trusting it",
            summary.source
        )
    }))
}

/// The clock the replayed run's metrics use: the latest recorded clock of the sources
/// replayed, or this run's own when none was recorded.
pub(super) async fn replay_clock(
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

/// What the pulls of a run came to, gathered for the metrics step and the commit.
pub(super) struct Pulled {
    /// Per-dataset counts of the sources that succeeded.
    pub(super) datasets: BTreeMap<Dataset, DatasetCounts>,
    /// Every source's outcome, in the job's order.
    pub(super) reports: Vec<SourceReport>,
    /// The staged table files to publish.
    pub(super) files: Vec<StagedFile>,
    /// The records sent to `_rejects`.
    pub(super) rejects: Vec<Rejects>,
    /// The watermarks to save once the commit is published, by source.
    pub(super) next_states: Vec<(String, SourceState)>,
    /// Published files to remove in the commit (day partitions the vendor has no rows for).
    pub(super) deletes: Vec<String>,
    /// What `_runs.warnings` should say.
    pub(super) warnings: Vec<String>,
    /// Currencies of the staged spend and costs rows that had no FX rate.
    pub(super) unconverted: BTreeSet<String>,
}

/// Gather the pulls' outcomes: count them per dataset, report each source, warn when a full
/// pull shrank its table, and sort the staged files into those to publish and the emptied
/// day partitions to delete.
pub(super) async fn gather(
    job: &JobConfig,
    store: &Arc<dyn ObjectStore>,
    options: &RunOptions,
    backfill: Option<Backfill>,
    sources: &[&SourceConfig],
    outcomes: Vec<PullOutcome>,
) -> Result<Pulled> {
    let mut datasets: BTreeMap<Dataset, DatasetCounts> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut files = Vec::new();
    let mut rejects: Vec<Rejects> = Vec::new();
    let mut next_states = Vec::new();
    let mut deletes = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut unconverted = BTreeSet::new();
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
                counts.rejected += summary.rejects.len();
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
                        emptied_partitions(
                            store,
                            &job.name,
                            source.name(),
                            (range.from, range.to),
                            &staged,
                        )
                        .await?,
                    );
                }
                files.extend(staged);
                rejects.push(summary.rejects);
                unconverted.extend(summary.unconverted);
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
    Ok(Pulled {
        datasets,
        reports,
        files,
        rejects,
        next_states,
        deletes,
        warnings,
        unconverted,
    })
}
