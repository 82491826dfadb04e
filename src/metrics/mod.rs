//! The metric tables of design §5: lead stages and transitions, the funnel, CPSQL, SAL
//! acceptance and eNPS, plus currency conversion. Each is computed streaming, one input
//! batch at a time, so memory follows the batch size rather than the table size:
//!
//! - pass 1 (`Accumulator`) stages every lead once and folds it into the funnel, CPSQL, SAL
//!   and per-owner score counts; each batch of leads comes back as its `lead_stages` rows,
//!   `priority_rank` still null, and this run's `lead_stage_transitions` rows;
//!   `funnel_daily`, whose groups grow with days × channels × campaigns, is held within a
//!   budget and comes out batch by batch too. Beside it, `Surveys` folds survey responses
//!   into eNPS counts (their `enps_responses` rows come out batch by batch);
//! - pass 2 (`LeadRows`) goes over pass 1's `lead_stages` rows again (the caller sets them
//!   aside, on disk in the pipeline), fills in `priority_rank` from the owners' score counts
//!   and finds the SAL medians. The leads are read and classified once.
//!
//! `compute` runs both passes over batches in memory (tests); the pipeline's metrics step
//! (`crate::pipeline::metrics`) runs them over the warehouse's files. Nothing here does I/O:
//! the runs of groups of `funnel_daily` and `cpsql_monthly` (`bounded_groups`) are set aside in
//! temporary files through `crate::spill`.

pub mod arrays;
mod bounded_groups;
mod conditions;
pub mod config;
pub mod cpsql;
mod daily_groups;
pub mod dates;
pub mod enps;
pub mod funnel;
pub mod fx;
pub mod intent;
mod intern;
pub mod lead;
pub mod money;
pub mod partitions;
pub mod sal;
pub mod stages;

pub use config::{FxConfig, MetricsConfig, Stage, StagesConfig};
pub use fx::FxRates;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::normalize::BatchStamp;

/// Every table the metrics step writes, in the order it lists their staged files.
pub const METRIC_TABLES: [&str; 8] = [
    "lead_stages",
    "lead_stage_transitions",
    "funnel_daily",
    "funnel_cohort_monthly",
    "cpsql_monthly",
    "sal_acceptance_monthly",
    "enps_responses",
    "enps",
];

/// The canonical inputs the lead and survey metrics read.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The current `leads` table.
    pub leads: &'a [RecordBatch],
    /// The job's `lead_stages` as the previous run wrote it (empty on the first run).
    pub previous_stages: &'a [RecordBatch],
    /// The job's `lead_stage_transitions` so far.
    pub previous_transitions: &'a [RecordBatch],
    /// The current `survey_responses` table.
    pub survey_responses: &'a [RecordBatch],
}

/// The job settings the metrics use.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// `[stages]`.
    pub stages: &'a StagesConfig,
    /// `[metrics]`.
    pub metrics: &'a MetricsConfig,
    /// The reporting currency.
    pub reporting_currency: &'a str,
    /// The run's clock, µs since the epoch (UTC).
    pub now_micros: i64,
}

/// One computed metric table.
#[derive(Debug, Clone)]
pub struct MetricTable {
    /// The table (folder) name.
    pub table: &'static str,
    /// Its schema.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

/// A metric table produced batch by batch (one whose size grows with the inputs): write
/// each batch as it comes.
pub struct MetricStream {
    /// The table (folder) name.
    pub table: &'static str,
    /// Its schema.
    pub schema: SchemaRef,
    /// Its rows, in order.
    pub batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
}

impl std::fmt::Debug for MetricStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricStream")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl MetricStream {
    /// Every batch, in memory.
    pub fn collect(self) -> Result<MetricTable> {
        Ok(MetricTable {
            table: self.table,
            schema: self.schema,
            batches: self.batches.collect::<Result<_>>()?,
        })
    }
}

/// The aggregate tables pass 1 ends with.
#[derive(Debug)]
pub struct Aggregates {
    /// The small one, whole: `funnel_cohort_monthly`.
    pub tables: Vec<MetricTable>,
    /// The ones that come out batch by batch: `cpsql_monthly`, `funnel_daily`.
    pub streams: Vec<MetricStream>,
}

/// Pass 1 over the leads: every lead aggregate folded one batch at a time. Feed it all
/// `leads` batches ([`Accumulator::step`]), then `finish` it for the aggregate tables and
/// the second pass. (The surveys' side of pass 1 is [`Surveys`].)
#[derive(Debug)]
pub struct Accumulator<'a> {
    settings: Settings<'a>,
    stager: stages::Stager<'a>,
    leads: LeadAggregates,
    /// The batch the last [`Accumulator::step`] classified, for the next to fold in.
    classified: Option<Staged>,
}

/// What pass 1 folds every staged lead into, apart from the classification that stages it
/// (so the two can run on two threads: [`Accumulator::step`]).
#[derive(Debug)]
struct LeadAggregates {
    /// Leads folded, for the second pass to check it saw the same.
    leads: u64,
    funnel: funnel::Funnel,
    cpsql: cpsql::Cpsql,
    sal: sal::Sal,
    owners: stages::OwnerScores,
    /// The row each staged lead is read back into, its buffers reused.
    row: stages::LeadStage,
}

impl LeadAggregates {
    /// Fold in pass 1's `lead_stages` rows of a batch, in their order.
    fn fold(&mut self, staged: &RecordBatch) -> Result<()> {
        let columns = stages::StagedColumns::new(staged)?;
        for i in 0..staged.num_rows() {
            columns.fill(i, &mut self.row)?;
            let row = &self.row;
            self.leads += 1;
            self.funnel.add(row)?;
            self.cpsql.add_lead(row)?;
            self.sal.add(row);
            self.owners.add(row);
        }
        Ok(())
    }
}

/// A batch of leads classified: its `lead_stages` rows with `priority_rank` null and its
/// `lead_stage_transitions` rows (empty when none changed stage).
pub type Staged = (RecordBatch, RecordBatch);

/// Classify a batch of the current `leads` table (not yet folded into the aggregates).
fn classify(
    stager: &mut stages::Stager<'_>,
    batch: &RecordBatch,
    stamp: &BatchStamp,
) -> Result<Staged> {
    let parts = stager.stage_batch(
        batch,
        |rows| {
            (
                stages::LeadStagesBuilder::new(rows),
                stages::TransitionsBuilder::new(0),
            )
        },
        |(stages, transitions), row, change| {
            stages.push_ranked(row, None);
            if let Some(change) = change {
                transitions.push_change(row, change);
            }
            Ok(())
        },
    )?;
    let (mut rows, mut changes) = (Vec::new(), Vec::new());
    for (mut stages, mut transitions) in parts {
        rows.push(stages.finish(stamp)?);
        changes.push(transitions.finish(stamp)?);
    }
    Ok((
        one_batch("lead_stages", rows)?,
        one_batch("lead_stage_transitions", changes)?,
    ))
}

/// `batches` of `table` (at least one, all of one schema) as one batch.
fn one_batch(table: &str, mut batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    if batches.len() == 1 {
        return Ok(batches.remove(0));
    }
    let schema = batches[0].schema();
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| crate::Error::encode(table, e))
}

impl<'a> Accumulator<'a> {
    /// Start pass 1. `spend` is the CPSQL accumulator with the spend and costs already
    /// folded in (they are streamed file by file); `previous` is the previous run's
    /// `lead_stages` (empty on the first run).
    pub fn new(
        settings: Settings<'a>,
        previous: std::sync::Arc<stages::PreviousStages>,
        spend: cpsql::Cpsql,
    ) -> Self {
        Accumulator {
            settings,
            stager: stages::Stager::new(settings.stages, previous, settings.now_micros),
            leads: LeadAggregates {
                leads: 0,
                funnel: funnel::Funnel::default(),
                cpsql: spend,
                sal: sal::Sal::new(&settings.metrics.sal, settings.now_micros),
                owners: stages::OwnerScores::default(),
                row: stages::LeadStage::new(lead::Lead::default()),
            },
            classified: None,
        }
    }

    /// Classify the leads that follow against `previous` instead: pass 1 taken a hash
    /// partition of the leads at a time (`partitions`).
    pub fn set_previous(&mut self, previous: std::sync::Arc<stages::PreviousStages>) {
        self.stager.set_previous(previous);
    }

    /// Join third-party intent to every lead of both passes (`kind = "intent"` sources).
    pub fn with_intent(mut self, intent: &'a intent::IntentIndex) -> Self {
        self.stager.set_intent(Some(intent));
        self
    }

    /// Fold in a batch of the current `leads` table: its `lead_stages` rows with
    /// `priority_rank` null (for the second pass, [`LeadRows::rank`]) and its leads'
    /// `lead_stage_transitions` rows (empty when none changed stage). In step, for tests to
    /// compare [`Accumulator::step`] with.
    #[cfg(test)]
    pub(crate) fn add_leads(&mut self, batch: &RecordBatch, stamp: &BatchStamp) -> Result<Staged> {
        let staged = classify(&mut self.stager, batch, stamp)?;
        self.leads.fold(&staged.0)?;
        Ok(staged)
    }

    /// Pass 1 over a stream of `leads` batches, a step behind: classify `next` on a thread
    /// of its own while this one folds in the batch the step before classified; returns
    /// that batch's rows (as `add_leads` would have), now folded, to set aside and write.
    /// Classification is most of pass 1 (and itself splits a large batch over two threads);
    /// folding every lead into the aggregates is the rest, and in step with it one thread
    /// folded while the other waited. Rows are folded in the order they come. Feed the
    /// stream, then one step with no `next` to fold the last batch.
    pub fn step(
        &mut self,
        next: Option<&RecordBatch>,
        stamp: &BatchStamp,
    ) -> Result<Option<Staged>> {
        let folding = self.classified.take();
        let Accumulator { stager, leads, .. } = self;
        let classified = std::thread::scope(|scope| {
            let classifying = next.map(|batch| scope.spawn(|| classify(stager, batch, stamp)));
            let folded = folding
                .as_ref()
                .map_or(Ok(()), |(rows, _)| leads.fold(rows));
            let classified = classifying
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .transpose();
            folded.and(classified)
        })?;
        self.classified = classified;
        Ok(folding)
    }

    /// End pass 1: the aggregate tables (`cpsql_monthly` and `funnel_daily` as streams,
    /// `funnel_cohort_monthly`) and the second pass over the leads.
    pub fn finish(self, stamp: &BatchStamp) -> Result<(LeadRows<'a>, Aggregates)> {
        let Accumulator {
            settings,
            leads:
                LeadAggregates {
                    leads,
                    funnel,
                    cpsql,
                    sal,
                    owners,
                    ..
                },
            ..
        } = self;
        let tables = vec![MetricTable {
            table: "funnel_cohort_monthly",
            schema: funnel::cohort_schema(),
            batches: vec![funnel.cohort_batch(stamp)?],
        }];
        let streams = vec![
            MetricStream {
                table: "cpsql_monthly",
                schema: cpsql::schema(),
                batches: Box::new(cpsql.into_batches(settings.reporting_currency, stamp)?),
            },
            MetricStream {
                table: "funnel_daily",
                schema: funnel::daily_schema(),
                batches: Box::new(funnel.into_daily(stamp)?),
            },
        ];
        let rows = LeadRows {
            settings,
            ranks: owners.ranks(),
            sal: sal.medians(),
            expected: leads,
            seen: 0,
        };
        Ok((rows, Aggregates { tables, streams }))
    }
}

/// The survey side of pass 1: `survey_responses` batches fold into eNPS counts, each
/// coming back as its `enps_responses` rows, and `finish` gives the `enps` table. Nothing
/// here touches the leads, so the pipeline runs it beside them, on a core of its own.
#[derive(Debug)]
pub struct Surveys {
    cfg: config::EnpsConfig,
    enps: enps::Enps,
}

impl Surveys {
    /// No responses yet, for the job's `[metrics.enps]`.
    pub fn new(cfg: &config::EnpsConfig) -> Self {
        Surveys {
            cfg: cfg.clone(),
            enps: enps::Enps::new(cfg),
        }
    }

    /// Fold in a batch of the current `survey_responses` table; returns its
    /// `enps_responses` rows.
    pub fn add_responses(
        &mut self,
        batch: &RecordBatch,
        stamp: &BatchStamp,
    ) -> Result<RecordBatch> {
        let responses = enps::responses(std::slice::from_ref(batch), &self.cfg)?;
        for r in &responses {
            self.enps.add(r);
        }
        enps::responses_batch(&responses, &self.cfg, stamp)
    }

    /// What `_runs.warnings` should say about the responses so far: configured eNPS
    /// dimensions no response of a survey has a group for.
    pub fn warnings(&self) -> Vec<String> {
        self.enps.empty_dimensions()
    }

    /// The `enps` table.
    pub fn finish(self, stamp: &BatchStamp) -> Result<MetricTable> {
        Ok(MetricTable {
            table: "enps",
            schema: enps::schema(),
            batches: vec![enps::batch(&self.enps.rows(&self.cfg), &self.cfg, stamp)?],
        })
    }
}

/// Pass 2 over the `lead_stages` batches pass 1 returned, in any order: each ranked with
/// the owner counts of pass 1, and at the end `sal_acceptance_monthly` with its medians.
#[derive(Debug)]
pub struct LeadRows<'a> {
    settings: Settings<'a>,
    ranks: stages::OwnerRanks,
    sal: sal::SalMedians,
    /// Leads pass 1 staged.
    expected: u64,
    seen: u64,
}

impl LeadRows<'_> {
    /// A `lead_stages` batch of pass 1 with its `priority_rank` filled in.
    pub fn rank(&mut self, unranked: &RecordBatch) -> Result<RecordBatch> {
        self.seen += unranked.num_rows() as u64;
        self.sal.add_batch(unranked)?;
        self.ranks.rank_batch(unranked)
    }

    /// End pass 2: `sal_acceptance_monthly`; an error when it did not see the rows pass 1
    /// staged.
    pub fn finish(self, stamp: &BatchStamp) -> Result<MetricTable> {
        if self.seen == self.expected {
            return Ok(MetricTable {
                table: "sal_acceptance_monthly",
                schema: sal::schema(),
                batches: vec![self.sal.batch(&self.settings.metrics.sal, stamp)?],
            });
        }
        Err(crate::Error::encode(
            "lead_stages",
            format!(
                "the first pass over `leads` staged {} leads, the second ranked {}: the passes \
                 saw different rows",
                self.expected, self.seen
            ),
        ))
    }
}

/// Compute every metric table from batches in memory: both passes, as `stage_metrics` runs
/// them over files. `spend` is the CPSQL accumulator with the spend and costs already
/// folded in. The tables come in `METRIC_TABLES` order.
pub fn compute(
    inputs: Inputs<'_>,
    spend: cpsql::Cpsql,
    settings: Settings<'_>,
    stamp: &BatchStamp,
) -> Result<Vec<MetricTable>> {
    compute_with_intent(inputs, &[], spend, settings, stamp)
}

/// [`compute`] with the job's `intent_signals` batches joined to the leads.
pub fn compute_with_intent(
    inputs: Inputs<'_>,
    intent_signals: &[RecordBatch],
    spend: cpsql::Cpsql,
    settings: Settings<'_>,
    stamp: &BatchStamp,
) -> Result<Vec<MetricTable>> {
    let previous_rows = inputs
        .previous_stages
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum();
    let count = partitions::partitions_for(previous_rows, partitions::PREVIOUS_HELD);
    compute_in_partitions(inputs, intent_signals, spend, settings, stamp, count)
}

/// [`compute_with_intent`] with pass 1 over `count` hash partitions of the leads (1: none),
/// as `stage_metrics` goes when the previous `lead_stages` is too large to hold.
pub fn compute_in_partitions(
    inputs: Inputs<'_>,
    intent_signals: &[RecordBatch],
    spend: cpsql::Cpsql,
    settings: Settings<'_>,
    stamp: &BatchStamp,
    count: usize,
) -> Result<Vec<MetricTable>> {
    let previous = if count == 1 {
        stages::previous_stages(inputs.previous_stages)?
    } else {
        stages::PreviousStages::new()
    };
    let intent = intent::index(intent_signals, &settings.stages.intent, settings.now_micros)?;
    let transitions_schema = stages::transitions_schema();
    let mut transitions = inputs
        .previous_transitions
        .iter()
        .map(|b| stages::conform(b, &transitions_schema, "lead_stage_transitions"))
        .collect::<Result<Vec<_>>>()?;
    let mut pass1 =
        Accumulator::new(settings, std::sync::Arc::new(previous), spend).with_intent(&intent);
    let mut unranked = Vec::with_capacity(inputs.leads.len());
    // As `stage_metrics` goes: each batch classified while the one before is folded in.
    let mut add = |pass1: &mut Accumulator<'_>, next: Option<&RecordBatch>| -> Result<()> {
        if let Some((stages, changes)) = pass1.step(next, stamp)? {
            unranked.push(stages);
            transitions.push(changes);
        }
        Ok(())
    };
    if count == 1 {
        for batch in inputs.leads {
            add(&mut pass1, Some(batch))?;
        }
    } else {
        let mut split = partitions::Partitioner::new(count);
        for batch in inputs.previous_stages {
            split.add_previous(batch)?;
        }
        for batch in inputs.leads {
            split.add_leads(batch)?;
        }
        let mut split = split.finish()?;
        while let Some(batch) = split.next_leads(&mut pass1)? {
            add(&mut pass1, Some(&batch))?;
        }
    }
    add(&mut pass1, None)?;
    let mut surveys = Surveys::new(&settings.metrics.enps);
    let enps_responses = inputs
        .survey_responses
        .iter()
        .map(|b| surveys.add_responses(b, stamp))
        .collect::<Result<Vec<_>>>()?;
    let (mut pass2, aggregates) = pass1.finish(stamp)?;
    let lead_stages = unranked
        .iter()
        .map(|b| pass2.rank(b))
        .collect::<Result<Vec<_>>>()?;
    let sal = pass2.finish(stamp)?;

    let mut tables = aggregates.tables;
    tables.push(surveys.finish(stamp)?);
    for stream in aggregates.streams {
        tables.push(stream.collect()?);
    }
    tables.push(sal);
    tables.push(MetricTable {
        table: "lead_stages",
        schema: stages::lead_stages_schema(),
        batches: lead_stages,
    });
    tables.push(MetricTable {
        table: "lead_stage_transitions",
        schema: transitions_schema,
        batches: transitions,
    });
    tables.push(MetricTable {
        table: "enps_responses",
        schema: enps::responses_schema(),
        batches: enps_responses,
    });
    tables.sort_by_key(|t| METRIC_TABLES.iter().position(|name| *name == t.table));
    Ok(tables)
}

#[cfg(test)]
mod tests;
