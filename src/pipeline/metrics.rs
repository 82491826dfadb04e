//! The metrics step of a run: after the sources are pulled and before the commit, read the
//! **current** state of the input tables — for each of the job's files, the replacement this
//! run staged if there is one, else the published file — compute every metric table and
//! stage it as `<table>/<job>.parquet`, so it publishes in the same commit as its inputs.
//! The step only reads its inputs: `spend_reporting` / `amount_reporting` are written by the
//! spend and costs outputs as they stage their files, at the rates [`load_rates`] loaded
//! before the pulls, and CPSQL converts every amount at those same rates.
//!
//! A `[fan_in]` job runs the same step over a [`Snapshot`] of other
//! jobs' published files instead ([`Inputs::Snapshot`]); a pull job with
//! `compute_metrics = false` has no metrics step.
//!
//! Every input is streamed batch by batch and every large output (`lead_stages`,
//! `lead_stage_transitions`, `enps_responses`, `funnel_daily`) is written as it is produced,
//! so memory holds batches and bounded aggregates, never a whole table: the leads are read
//! and classified once, and their `lead_stages` rows wait in a temporary file for the ranks
//! only the whole table gives (see `crate::metrics::Accumulator` and
//! `crate::metrics::LeadRows`). The surveys' side (`enps_responses`, `enps`) needs nothing
//! from the leads and runs on a task of its own beside them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

use super::snapshot::{InputFile, Snapshot};
use crate::config::{EnvLookup, JobConfig};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpSettings};
use crate::metrics::config::IntentDecayConfig;
use crate::metrics::cpsql::Cpsql;
use crate::metrics::fx::FxRates;
use crate::metrics::intent::{IntentIndex, SIGNAL_COLUMNS};
use crate::metrics::partitions::{self, Partitioner};
use crate::metrics::stages::{PREVIOUS_COLUMNS, PreviousStages, PreviousStagesBuilder};
use crate::metrics::{
    Accumulator, METRIC_TABLES, MetricStream, MetricTable, Settings, Surveys, enps, stages,
};
use crate::normalize::BatchStamp;
use crate::sink::layout::{is_table_file_of, metric_file as metric_path};
use crate::sink::{
    ParquetFile, ParquetObject, StagedFile, staging_path, stream_parquet_file,
    stream_parquet_sized, with_partition_columns,
};
use crate::spill::{RunWriter, Spill, SpillError};

/// Bytes of an input table's files opened at once ahead of the one being read, which sets
/// how many are open (see [`files_opened_ahead`]). Opening a file is a read of the store
/// (the whole object when small, else its footer and its first row groups), a round trip
/// that costs more wall time than folding in a day file's few hundred rows: one file after
/// another left a core idle locally, and on object storage, where a round trip is tens of
/// milliseconds, sixteen at a time kept the 1 M spend-heavy run's metrics step waiting two
/// seconds on 730 spend day files. Each opened file decodes at most `READ_AHEAD_BATCHES`
/// batches ahead (`sink::parquet`), so memory holds the open files' bytes and batches, not
/// the table.
const OPENED_AHEAD_BYTES: u64 = 16 << 20;

/// Fewest and most files opened ahead, whatever their size: files of more than 4 MiB are
/// opened four at a time (each fetching its row groups ahead as well), and sixty-four of
/// spend's day files are about a megabyte. (Locally, sixteen day files ahead took the 1 M
/// replay's metrics step from 4.4 to 4.0 s against four: median of six interleaved runs.)
const FEWEST_FILES_OPENED_AHEAD: usize = 4;
const MOST_FILES_OPENED_AHEAD: usize = 64;

/// How many of `files` to open at once: as many of the largest as fit in
/// [`OPENED_AHEAD_BYTES`], within the fewest and the most.
fn files_opened_ahead(files: &BTreeMap<String, InputFile>) -> usize {
    let largest = files.values().map(|f| f.bytes).max().unwrap_or(0).max(1);
    usize::try_from(OPENED_AHEAD_BYTES / largest)
        .unwrap_or(usize::MAX)
        .clamp(FEWEST_FILES_OPENED_AHEAD, MOST_FILES_OPENED_AHEAD)
}

/// The batches of every file of `files` (final path → the file), file by file in order,
/// each with where it was read, [`files_opened_ahead`] files opened ahead.
fn opened_ahead<'a>(
    store: &'a Arc<dyn ObjectStore>,
    files: BTreeMap<String, InputFile>,
    columns: &'a [&'a str],
) -> impl futures::Stream<Item = Result<(String, BoxStream<'static, Result<RecordBatch>>)>> + 'a {
    let ahead = files_opened_ahead(&files);
    futures::stream::iter(files.into_values())
        .map(move |file| async move {
            let path = Path::from(file.location.as_str());
            let batches = stream_parquet_sized(store, &path, file.bytes, Some(columns)).await?;
            Ok((file.location, batches))
        })
        .buffered(ahead)
}

/// Which input files the metrics step reads.
#[derive(Debug, Clone, Copy)]
pub enum Inputs<'a> {
    /// A job's own run: its published files, with the replacements this run staged.
    Job,
    /// The metrics step of a `[fan_in]` job: exactly the files of the snapshot.
    Snapshot(&'a Snapshot),
}

/// The current files of an input table: final path → the file to read now.
async fn current_files(
    store: &Arc<dyn ObjectStore>,
    table: &str,
    job: &str,
    staged: &[StagedFile],
    inputs: Inputs<'_>,
) -> Result<BTreeMap<String, InputFile>> {
    if let Inputs::Snapshot(snapshot) = inputs {
        return Ok(snapshot.files(table));
    }
    let prefix = Path::from(table);
    let listed: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    let ours = |name: &str| is_table_file_of(name, job);
    let mut files = BTreeMap::new();
    for meta in listed {
        if meta.location.filename().is_some_and(ours) {
            let file = InputFile {
                location: meta.location.to_string(),
                bytes: meta.size,
            };
            files.insert(meta.location.to_string(), file);
        }
    }
    for file in staged.iter().filter(|f| f.table == table) {
        let input = InputFile {
            location: file.staged.clone(),
            bytes: file.bytes,
        };
        files.insert(file.target.clone(), input);
    }
    Ok(files)
}

/// A metric table being written to its staging path.
struct MetricFile {
    table: &'static str,
    target: Path,
    file: ParquetFile,
}

impl MetricFile {
    fn create(
        store: &Arc<dyn ObjectStore>,
        job: &str,
        stamp: &BatchStamp,
        table: &'static str,
        schema: SchemaRef,
    ) -> Result<Self> {
        let target = metric_path(table, job);
        let path = staging_path(job, &stamp.run_id, &target);
        Ok(MetricFile {
            table,
            target,
            file: ParquetFile::create(store, path, schema)?,
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.file.write(batch).await
    }

    async fn close(self) -> Result<StagedFile> {
        let closed = self.file.close().await?;
        tracing::info!(
            table = self.table,
            rows = closed.rows,
            "metric table staged"
        );
        Ok(closed.staged(self.table, self.target.as_ref()))
    }
}

/// Stage a small table computed in memory.
async fn stage_table(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    stamp: &BatchStamp,
    table: MetricTable,
) -> Result<StagedFile> {
    let stream = MetricStream {
        table: table.table,
        schema: table.schema,
        batches: Box::new(table.batches.into_iter().map(Ok)),
    };
    stage_stream(store, job, stamp, stream).await
}

/// Stage a table computed batch by batch, writing each batch as it comes.
async fn stage_stream(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    stamp: &BatchStamp,
    stream: MetricStream,
) -> Result<StagedFile> {
    let mut file = MetricFile::create(store, job, stamp, stream.table, stream.schema)?;
    for batch in stream.batches {
        file.write(&batch?).await?;
    }
    file.close().await
}

/// The job's exchange rates: the `[fx]` rates file (a path relative to the job file, or an
/// http(s) URL fetched through the shared HTTP client) first, then inline rates over it.
pub async fn load_rates(job: &JobConfig, env: EnvLookup<'_>) -> Result<FxRates> {
    let rates_file = match &job.fx.rates_file {
        Some(t) => Some(t.resolve(env).map_err(|var| {
            Error::config(
                &job.path,
                format!("fx.rates_file: environment variable `{var}` is not set"),
            )
        })?),
        None => None,
    };
    let mut fx = FxRates::new(&job.reporting_currency);
    if let Some(location) = rates_file.as_deref() {
        let text = if location.starts_with("http://") || location.starts_with("https://") {
            let shown = location.split('?').next().unwrap_or(location).to_string();
            let failed = |e: Error| Error::config(&job.path, format!("fx.rates_file {shown}: {e}"));
            let client = HttpClient::new("fx", &HttpSettings::default()).map_err(failed)?;
            let response = client
                .send(client.inner().get(location))
                .await
                .map_err(failed)?;
            String::from_utf8_lossy(&response.body).into_owned()
        } else {
            let path = crate::config::resolve_job_path(&job.path, location);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::config(
                    &job.path,
                    format!("fx.rates_file: {path} {}", crate::config::file_problem(&e)),
                )
            })?
        };
        fx.add_text(&text, "fx.rates_file")
            .map_err(|e| Error::config(&job.path, e))?;
    }
    fx.add_inline(&job.fx.rates)
        .map_err(|e| Error::config(&job.path, e))?;
    Ok(fx)
}

/// Compute and stage every metric table for this run at the rates `fx`; `files` are the
/// run's staged source files, read in place of the published files they replace. Returns the
/// staged metric files.
pub async fn stage_metrics(
    job: &JobConfig,
    fx: &FxRates,
    store: &Arc<dyn ObjectStore>,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    files: &[StagedFile],
) -> Result<Vec<StagedFile>> {
    let mut warnings = Vec::new();
    stage_metrics_warning(job, fx, store, stamp, now, files, &mut warnings).await
}

/// [`stage_metrics`], adding what `_runs.warnings` should say about the inputs to `warnings`
/// (an eNPS dimension null in every response of a survey).
pub async fn stage_metrics_warning(
    job: &JobConfig,
    fx: &FxRates,
    store: &Arc<dyn ObjectStore>,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    files: &[StagedFile],
    warnings: &mut Vec<String>,
) -> Result<Vec<StagedFile>> {
    stage_metrics_over(job, fx, store, stamp, now, files, Inputs::Job, warnings).await
}

/// What a failure to set `lead_stages` rows aside between the passes was doing.
const SPILL_CONTEXT: &str = "lead_stages rows set aside between the metrics' passes (a \
                             temporary file in TMPDIR)";

/// Pass 1's `lead_stages` rows written to their temporary file by a thread of their own, so
/// that encoding them does not hold up the classification. A thread, not a task of the
/// blocking pool: it waits for rows the whole pass, and the pool is bounded (`main.rs`) on
/// the understanding that its tasks never wait on others.
struct SetAside {
    rows: tokio::sync::mpsc::Sender<RecordBatch>,
    written: tokio::sync::oneshot::Receiver<std::result::Result<RunWriter, SpillError>>,
}

impl SetAside {
    fn start(schema: &arrow::datatypes::Schema) -> Result<Self> {
        let mut run = RunWriter::new(schema).map_err(|e| e.into_error(SPILL_CONTEXT))?;
        let (rows, mut received) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let (done, written) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("lead-stages-set-aside".into())
            .spawn(move || {
                let writing = || {
                    while let Some(batch) = received.blocking_recv() {
                        run.write(&batch)?;
                    }
                    Ok(run)
                };
                // Nobody waits for it when the step failed and dropped its end.
                let _ = done.send(writing());
            })
            .map_err(|e| Error::io(SPILL_CONTEXT, e))?;
        Ok(SetAside { rows, written })
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if self.rows.send(batch).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: its error says why.
        Err(match Self::result(&mut self.written).await {
            Err(e) => e,
            Ok(_) => Error::encode(SPILL_CONTEXT, "the writer stopped early"),
        })
    }

    async fn finish(mut self) -> Result<RunWriter> {
        drop(self.rows);
        Self::result(&mut self.written).await
    }

    async fn result(
        written: &mut tokio::sync::oneshot::Receiver<std::result::Result<RunWriter, SpillError>>,
    ) -> Result<RunWriter> {
        match written.await {
            Ok(written) => written.map_err(|e| e.into_error(SPILL_CONTEXT)),
            Err(_) => Err(Error::encode(
                SPILL_CONTEXT,
                "the writer stopped without an answer (it panicked)",
            )),
        }
    }
}

/// Where pass 1 puts each batch's rows once folded in: the `lead_stages` rows set aside for
/// pass 2, the transitions written.
struct PassOne {
    unranked: SetAside,
    transitions: MetricFile,
}

impl PassOne {
    /// Classify `next` (none: the leads have ended) while the batch before is folded in,
    /// then set that batch's rows aside and write its transitions.
    async fn step(
        &mut self,
        pass1: &mut Accumulator<'_>,
        next: Option<&RecordBatch>,
        stamp: &BatchStamp,
    ) -> Result<()> {
        if let Some((rows, changes)) = pass1.step(next, stamp)? {
            self.unranked.write(rows).await?;
            self.transitions.write(&changes).await?;
        }
        Ok(())
    }
}

/// The spend columns CPSQL reads (`date` from the folder, or from an old file holding it).
const SPEND_COLUMNS: [&str; 5] = ["date", "campaign_id", "channel", "currency", "spend"];

/// The costs columns CPSQL reads.
const COSTS_COLUMNS: [&str; 4] = ["month", "channel", "currency", "amount"];

/// [`stage_metrics_warning`] over `inputs`: a job's own files, or a fan-in's snapshot.
#[allow(
    clippy::too_many_arguments,
    reason = "the run's context, passed through unchanged"
)]
pub async fn stage_metrics_over(
    job: &JobConfig,
    fx: &FxRates,
    store: &Arc<dyn ObjectStore>,
    stamp: &BatchStamp,
    now: DateTime<Utc>,
    files: &[StagedFile],
    inputs: Inputs<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<StagedFile>> {
    // A pull job of a fan-out stops at its staged tables; the fan-in computes the metrics.
    if !job.compute_metrics {
        return Ok(Vec::new());
    }

    // Every input table's current files, listed at once: on object storage a listing is a
    // round trip, and each waited for the table before it to be read.
    let current = |table| current_files(store, table, &job.name, files, inputs);
    let (survey_files, spend_files, costs_files, signal_files, leads_files) = futures::try_join!(
        current("survey_responses"),
        current("spend"),
        current("costs"),
        current("intent_signals"),
        current("leads"),
    )?;

    // The surveys' side of pass 1 needs nothing from the leads: it runs on a task of its own
    // from here to the end of pass 2, on the core the spend files' reads leave idle.
    let surveys = Beside {
        what: "enps_responses",
        task: tokio::spawn(stage_surveys(
            Arc::clone(store),
            job.name.clone(),
            stamp.clone(),
            survey_files,
            job.metrics.enps.clone(),
        )),
    };

    let settings = Settings {
        stages: &job.stages,
        metrics: &job.metrics,
        reporting_currency: &job.reporting_currency,
        now_micros: now.timestamp_micros(),
    };
    // What pass 1 starts from, read at once, each part needing nothing of the others: the
    // money, the previous run's stages, the intent signals. On object storage each is
    // round trips (730 spend day files a year; the previous `lead_stages`' footer and row
    // groups), and each waited for the one before.
    let (cpsql, previous, intent) = futures::try_join!(
        read_money(store, fx, job, spend_files, costs_files),
        read_previous(store, &job.name, inputs),
        read_signals(store, &job.stages.intent, settings.now_micros, signal_files),
    )?;
    let Previous {
        unread: previous_files,
        rows: previous_rows,
        partitions,
        held: previous,
    } = previous;
    let mut staged = Vec::with_capacity(METRIC_TABLES.len());

    // This run's transitions come out of pass 1, after the earlier ones.
    let transitions_schema = stages::transitions_schema();
    let mut transitions = MetricFile::create(
        store,
        &job.name,
        stamp,
        "lead_stage_transitions",
        Arc::clone(&transitions_schema),
    )?;
    let names: Vec<&str> = transitions_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    for earlier in history(&job.name, "lead_stage_transitions", inputs) {
        let mut batches = stream_parquet_file(store, &earlier, Some(&names), true).await?;
        while let Some(batch) = batches.try_next().await? {
            let conformed = stages::conform(&batch, &transitions_schema, "lead_stage_transitions")?;
            transitions.write(&conformed).await?;
        }
    }

    // Pass 1: the aggregates, the transitions, and the `lead_stages` rows set aside on local
    // disk until pass 2 can rank them; enps_responses written as the responses are read.
    let unranked = SetAside::start(&stages::lead_stages_schema())?;
    let lead_columns = stages::lead_columns(!intent.is_empty());
    let mut pass1 = Accumulator::new(settings, previous, cpsql).with_intent(&intent);
    // Each step classifies a batch while the one before is folded in (`Accumulator::step`).
    let mut one = PassOne {
        unranked,
        transitions,
    };
    if partitions == 1 {
        for file in leads_files.values() {
            let path = Path::from(file.location.as_str());
            let mut batches =
                stream_parquet_sized(store, &path, file.bytes, Some(lead_columns)).await?;
            while let Some(batch) = batches.try_next().await? {
                one.step(&mut pass1, Some(&batch), stamp).await?;
            }
        }
    } else {
        tracing::info!(
            previous_rows,
            partitions,
            "the previous lead_stages is too large to hold: the leads are classified a hash \
             partition at a time"
        );
        let mut split = Partitioner::new(partitions);
        for file in previous_files {
            let mut batches = file.stream(Some(&PREVIOUS_COLUMNS));
            while let Some(batch) = batches.try_next().await? {
                split.add_previous(&batch)?;
            }
        }
        for file in leads_files.values() {
            let path = Path::from(file.location.as_str());
            let mut batches =
                stream_parquet_sized(store, &path, file.bytes, Some(lead_columns)).await?;
            while let Some(batch) = batches.try_next().await? {
                split.add_leads(&batch)?;
            }
        }
        let mut split = split.finish()?;
        while let Some(batch) = split.next_leads(&mut pass1)? {
            one.step(&mut pass1, Some(&batch), stamp).await?;
        }
    }
    // The last batch classified is folded in.
    one.step(&mut pass1, None, stamp).await?;
    let PassOne {
        unranked,
        transitions,
    } = one;
    let (mut pass2, aggregates) = pass1.finish(stamp)?;
    for table in aggregates.tables {
        staged.push(stage_table(store, &job.name, stamp, table).await?);
    }
    for stream in aggregates.streams {
        staged.push(stage_stream(store, &job.name, stamp, stream).await?);
    }

    // Pass 2: pass 1's lead_stages rows ranked, and the SAL medians.
    let mut lead_stages = MetricFile::create(
        store,
        &job.name,
        stamp,
        "lead_stages",
        stages::lead_stages_schema(),
    )?;
    let spilled = |e: SpillError| e.into_error(SPILL_CONTEXT);
    let mut spill = Spill::default();
    for segment in spill.add_run(unranked.finish().await?).map_err(spilled)? {
        let rows = spill.read(segment).map_err(spilled)?;
        lead_stages.write(&pass2.rank(&rows)?).await?;
    }
    let sal = pass2.finish(stamp)?;
    staged.push(lead_stages.close().await?);
    staged.push(transitions.close().await?);
    staged.push(stage_table(store, &job.name, stamp, sal).await?);
    let (surveys_staged, survey_warnings) = surveys.finish().await?;
    staged.extend(surveys_staged);
    for warning in survey_warnings {
        tracing::warn!("{warning}");
        warnings.push(warning);
    }

    // The staged files in the order the tables are listed.
    staged.sort_by_key(|f| METRIC_TABLES.iter().position(|t| *t == f.table));
    Ok(staged)
}

/// A task of the metrics step (`what` it writes), stopped when dropped: a step that fails
/// part-way leaves nothing of its own still running and staging files behind it.
struct Beside<T> {
    what: &'static str,
    task: tokio::task::JoinHandle<Result<T>>,
}

impl<T> Beside<T> {
    /// Its result; an error naming what it wrote when it panicked or was stopped.
    async fn finish(mut self) -> Result<T> {
        let what = self.what;
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(Error::encode(what, format!("the task stopped: {e}"))))
    }
}

impl<T> Drop for Beside<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The surveys' side of the metrics step: every current `survey_responses` file (`files`)
/// folded into eNPS counts, `enps_responses` written as it goes, then `enps`. Returns both
/// staged files and what `_runs.warnings` should say (an eNPS dimension null in every
/// response of a survey).
async fn stage_surveys(
    store: Arc<dyn ObjectStore>,
    job: String,
    stamp: BatchStamp,
    files: BTreeMap<String, InputFile>,
    cfg: crate::metrics::config::EnpsConfig,
) -> Result<(Vec<StagedFile>, Vec<String>)> {
    let mut surveys = Surveys::new(&cfg);
    let mut responses = MetricFile::create(
        &store,
        &job,
        &stamp,
        "enps_responses",
        enps::responses_schema(),
    )?;
    for file in files.values() {
        let path = Path::from(file.location.as_str());
        let mut batches =
            stream_parquet_sized(&store, &path, file.bytes, Some(&enps::RESPONSE_COLUMNS)).await?;
        while let Some(batch) = batches.try_next().await? {
            responses
                .write(&surveys.add_responses(&batch, &stamp)?)
                .await?;
        }
    }
    let warnings = surveys.warnings();
    let staged = vec![
        responses.close().await?,
        stage_table(&store, &job, &stamp, surveys.finish(&stamp)?).await?,
    ];
    Ok((staged, warnings))
}

/// CPSQL's money: every current spend and costs file folded in, each amount converted at
/// `fx`'s rates. The `*_reporting` columns are the sources' (added as they staged their
/// files): nothing here rewrites a file.
async fn read_money(
    store: &Arc<dyn ObjectStore>,
    fx: &FxRates,
    job: &JobConfig,
    spend_files: BTreeMap<String, InputFile>,
    costs_files: BTreeMap<String, InputFile>,
) -> Result<Cpsql> {
    let mut cpsql = Cpsql::default();
    // `date` is the file's `date=` folder (Hive), not one of its columns: it is put back
    // for the day's rate.
    let spend_table = crate::normalize::spend_schema();
    let mut spend = opened_ahead(store, spend_files, &SPEND_COLUMNS);
    while let Some((location, mut batches)) = spend.try_next().await? {
        while let Some(batch) = batches.try_next().await? {
            let batch = with_partition_columns(&batch, &location, &spend_table)?;
            cpsql.add_spend(&batch, fx, &job.metrics.cpsql)?;
        }
    }
    // Costs (written by the costs source when the job has one): at the rate of the month's
    // first day.
    let mut costs = opened_ahead(store, costs_files, &COSTS_COLUMNS);
    while let Some((_, mut batches)) = costs.try_next().await? {
        while let Some(batch) = batches.try_next().await? {
            cpsql.add_costs(&batch, fx)?;
        }
        crate::pause::point("read").await;
    }
    Ok(cpsql)
}

/// The previous run's state of every lead (its `lead_stages`), as [`read_previous`] leaves
/// it for pass 1.
struct Previous {
    /// The files still to read: all of them when pass 1 goes a hash partition at a time,
    /// else none. (Each file's footer was read once, for its count; its rows follow.)
    unread: Vec<ParquetObject>,
    /// The rows of every file.
    rows: u64,
    /// The hash partitions pass 1 goes through ([`partitions::partitions_for`]).
    partitions: usize,
    /// The state, when held whole (one partition); else empty.
    held: Arc<PreviousStages>,
}

/// The previous run's state of every lead: held whole when small enough, else left to pass
/// 1 a hash partition of the leads at a time.
async fn read_previous(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    inputs: Inputs<'_>,
) -> Result<Previous> {
    let mut files: Vec<ParquetObject> = futures::future::try_join_all(
        history(job, "lead_stages", inputs)
            .iter()
            .map(|path| ParquetObject::open(store, path)),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();
    let rows: u64 = files.iter().map(ParquetObject::rows).sum();
    let partitions = partitions::partitions_for(rows, partitions::PREVIOUS_HELD);
    let mut previous = PreviousStagesBuilder::new();
    if partitions == 1 {
        previous = PreviousStagesBuilder::with_capacity(usize::try_from(rows).unwrap_or(0));
        for file in std::mem::take(&mut files) {
            let mut batches = file.stream(Some(&PREVIOUS_COLUMNS));
            while let Some(batch) = batches.try_next().await? {
                previous.add_batch(&batch)?;
            }
        }
    }
    Ok(Previous {
        unread: files,
        rows,
        partitions,
        held: Arc::new(previous.finish()),
    })
}

/// Third-party intent (written by the job's `intent` sources): the look-back window's
/// signals, indexed by domain and e-mail hash, joined to every lead of both passes.
async fn read_signals(
    store: &Arc<dyn ObjectStore>,
    cfg: &IntentDecayConfig,
    now_micros: i64,
    signal_files: BTreeMap<String, InputFile>,
) -> Result<IntentIndex> {
    let mut intent = IntentIndex::new(cfg, now_micros);
    let mut signals = opened_ahead(store, signal_files, &SIGNAL_COLUMNS);
    while let Some((_, mut batches)) = signals.try_next().await? {
        while let Some(batch) = batches.try_next().await? {
            intent.add_batch(&batch)?;
        }
    }
    Ok(intent)
}

/// The earlier files of a metric table the step carries forward (`lead_stages` for stage
/// history, `lead_stage_transitions` to append to): the job's own file, or what the
/// snapshot says (see [`Snapshot::history`]). Missing files read as empty.
fn history(job: &str, table: &str, inputs: Inputs<'_>) -> Vec<Path> {
    match inputs {
        Inputs::Job => vec![metric_path(table, job)],
        Inputs::Snapshot(snapshot) => snapshot.history(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> BTreeMap<String, InputFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| {
                let location = format!("spend/date={i}/job.parquet");
                (location.clone(), InputFile { location, bytes })
            })
            .collect()
    }

    /// Day files of a few KB are opened sixty-four at a time; larger files as many as fit in
    /// 16 MiB, never fewer than four.
    #[test]
    fn files_are_opened_ahead_as_many_as_their_bytes_allow() {
        assert_eq!(files_opened_ahead(&files(&[18_395; 730])), 64);
        assert_eq!(files_opened_ahead(&files(&[])), 64);
        // One large file among small ones sets the count.
        assert_eq!(files_opened_ahead(&files(&[30_000, 1 << 20, 500])), 16);
        assert_eq!(files_opened_ahead(&files(&[(1 << 20) + 1])), 15);
        assert_eq!(files_opened_ahead(&files(&[256 << 10])), 64);
        assert_eq!(files_opened_ahead(&files(&[(256 << 10) + 1])), 63);
        assert_eq!(files_opened_ahead(&files(&[100 << 20])), 4);
    }
}
