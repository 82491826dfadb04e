//! The metric tables of design §5, each a pure function from canonical batches (and its
//! job settings) to output batches: lead stages and transitions, the funnel, CPSQL, SAL
//! acceptance and eNPS, plus currency conversion. `compute` runs them all; `stage` reads
//! the current input tables of a run and stages the outputs for its commit.

pub mod arrays;
pub mod config;
pub mod cpsql;
pub mod enps;
pub mod funnel;
pub mod fx;
mod run;
pub mod sal;
pub mod stages;

pub use config::{FxConfig, MetricsConfig, Stage, StagesConfig};
pub use fx::FxRates;
pub use run::{METRIC_TABLES, stage_metrics};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::normalize::BatchStamp;

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

/// Compute every metric table. `spend` is the CPSQL accumulator with the spend and costs
/// already folded in (they are streamed file by file).
pub fn compute(
    inputs: Inputs<'_>,
    mut spend: cpsql::Cpsql,
    settings: Settings<'_>,
    stamp: &BatchStamp,
) -> Result<Vec<MetricTable>> {
    let now = settings.now_micros;
    let previous = stages::previous_stages(inputs.previous_stages)?;
    let leads = stages::leads_from_batches(inputs.leads)?;
    let (lead_stages, transitions) = stages::compute(leads, settings.stages, &previous, now);

    let transitions_schema = stages::transitions_schema();
    let mut all_transitions = inputs
        .previous_transitions
        .iter()
        .map(|b| stages::conform(b, &transitions_schema, "lead_stage_transitions"))
        .collect::<Result<Vec<_>>>()?;
    all_transitions.push(stages::transitions_batch(&transitions, stamp)?);

    spend.add_leads(&lead_stages);
    let responses = enps::responses(inputs.survey_responses, &settings.metrics.enps)?;
    let enps_rows = enps::aggregate(&responses, &settings.metrics.enps);

    let one = |table, schema, batch| MetricTable {
        table,
        schema,
        batches: vec![batch],
    };
    Ok(vec![
        one(
            "lead_stages",
            stages::lead_stages_schema(),
            stages::lead_stages_batch(&lead_stages, stamp)?,
        ),
        MetricTable {
            table: "lead_stage_transitions",
            schema: transitions_schema,
            batches: all_transitions,
        },
        one(
            "funnel_daily",
            funnel::daily_schema(),
            funnel::daily_batch(&lead_stages, stamp)?,
        ),
        one(
            "funnel_cohort_monthly",
            funnel::cohort_schema(),
            funnel::cohort_batch(&lead_stages, stamp)?,
        ),
        one(
            "cpsql_monthly",
            cpsql::schema(),
            spend.finish(settings.reporting_currency, stamp)?,
        ),
        one(
            "sal_acceptance_monthly",
            sal::schema(),
            sal::batch(&lead_stages, &settings.metrics.sal, now, stamp)?,
        ),
        one(
            "enps_responses",
            enps::responses_schema(),
            enps::responses_batch(&responses, &settings.metrics.enps, stamp)?,
        ),
        one(
            "enps",
            enps::schema(),
            enps::batch(&enps_rows, &settings.metrics.enps, stamp)?,
        ),
    ])
}

#[cfg(test)]
mod tests;
