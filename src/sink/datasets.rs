//! How each dataset is staged: its table key (a repeated page keeps one row), whether an
//! incremental pull merges into the previous file, its partitions, and the amount in the
//! reporting currency spend and costs files carry (added as each batch is built, at the run's
//! rates, so those files are written once). A connector only
//! pushes rows ([`crate::sources::RowSink`]); the choice per dataset is made here.

use std::sync::Arc;

use super::layout::day_partition;
use super::output::{DatasetOutput, OutputSummary, OutputTarget};
use crate::config::SourceConfig;
use crate::error::Result;
use crate::metrics::fx::{
    add_costs_reporting, add_spend_reporting, costs_reporting_schema, spend_reporting_schema,
};
use crate::normalize::{
    CostsBuilder, Dataset, IntentSignalsBuilder, LeadsBuilder, SpendBuilder, SpendRow,
    SurveyResponsesBuilder, costs_schema, intent_signals_schema, leads_schema, spend_schema,
    survey_responses_schema,
};
use crate::sources::{Outputs, ResolvedSecrets, SourceContext};

/// Pull one source into its dataset's staged output.
pub async fn stage_source(
    source: &SourceConfig,
    resolved: &ResolvedSecrets,
    ctx: &SourceContext,
    target: OutputTarget,
) -> Result<OutputSummary> {
    let mut outputs = SourceOutputs::new(target, source.dataset());
    source.pull(resolved, ctx, &mut outputs).await?;
    let mut summary = outputs.finish().await?;
    // The source's own warnings first, then what normalization counted.
    let mut warnings = ctx.take_warnings();
    warnings.append(&mut summary.warnings);
    summary.warnings = warnings;
    if summary.dataset == Dataset::Spend && summary.duplicates > 0 {
        // A day's campaign comes once per pull: a second copy means an answer came twice.
        // Every answer is checked to belong to its request (`answer.rs`), so this should not
        // happen; kept once, but never silently, as a missing chunk may hide behind it.
        let warning = format!(
            "{} spend rows came more than once for the same day and campaign and were kept once: a vendor answer was served twice; compare the spend table with the vendor",
            summary.duplicates
        );
        tracing::warn!(source = %ctx.source_name, duplicates = summary.duplicates, "{warning}");
        summary.warnings.push(warning);
    }
    Ok(summary)
}

/// The staged outputs of one source: the one of its dataset, made up front, and any other
/// made when asked for (a source fills one dataset, so none is).
struct SourceOutputs {
    target: OutputTarget,
    dataset: Dataset,
    leads: Option<DatasetOutput<LeadsBuilder>>,
    spend: Option<DatasetOutput<SpendBuilder>>,
    surveys: Option<DatasetOutput<SurveyResponsesBuilder>>,
    costs: Option<DatasetOutput<CostsBuilder>>,
    intent: Option<DatasetOutput<IntentSignalsBuilder>>,
}

impl SourceOutputs {
    fn new(target: OutputTarget, dataset: Dataset) -> Self {
        SourceOutputs {
            target,
            dataset,
            leads: None,
            spend: None,
            surveys: None,
            costs: None,
            intent: None,
        }
    }

    /// The summary of the source's dataset (an empty one if the source pushed nothing).
    async fn finish(self) -> Result<OutputSummary> {
        let SourceOutputs {
            target,
            dataset,
            leads,
            spend,
            surveys,
            costs,
            intent,
        } = self;
        match dataset {
            Dataset::Leads => leads.unwrap_or_else(|| leads_output(target)).finish().await,
            Dataset::Spend => spend.unwrap_or_else(|| spend_output(target)).finish().await,
            Dataset::SurveyResponses => {
                let out = surveys.unwrap_or_else(|| survey_output(target));
                out.finish().await
            }
            Dataset::Costs => costs.unwrap_or_else(|| costs_output(target)).finish().await,
            Dataset::IntentSignals => {
                let out = intent.unwrap_or_else(|| intent_output(target));
                out.finish().await
            }
        }
    }
}

impl Outputs for SourceOutputs {
    type Leads = DatasetOutput<LeadsBuilder>;
    type Spend = DatasetOutput<SpendBuilder>;
    type Surveys = DatasetOutput<SurveyResponsesBuilder>;
    type Costs = DatasetOutput<CostsBuilder>;
    type Intent = DatasetOutput<IntentSignalsBuilder>;

    fn leads(&mut self) -> &mut Self::Leads {
        let target = &self.target;
        self.leads
            .get_or_insert_with(|| leads_output(target.clone()))
    }

    fn spend(&mut self) -> &mut Self::Spend {
        let target = &self.target;
        self.spend
            .get_or_insert_with(|| spend_output(target.clone()))
    }

    fn surveys(&mut self) -> &mut Self::Surveys {
        let target = &self.target;
        self.surveys
            .get_or_insert_with(|| survey_output(target.clone()))
    }

    fn costs(&mut self) -> &mut Self::Costs {
        let target = &self.target;
        self.costs
            .get_or_insert_with(|| costs_output(target.clone()))
    }

    fn intent(&mut self) -> &mut Self::Intent {
        let target = &self.target;
        self.intent
            .get_or_insert_with(|| intent_output(target.clone()))
    }
}

/// A CRM's output: current state keyed by lead id (a repeated page keeps one row; an
/// incremental pull merges into the previous file).
fn leads_output(target: OutputTarget) -> DatasetOutput<LeadsBuilder> {
    DatasetOutput::<LeadsBuilder>::new(target, Dataset::Leads, leads_schema(), |_| None)
        .with_key(|row| row.lead_id.as_str().into())
        .with_merge_key("lead_id", |row| row.lead_id.as_str().into())
}

/// A cost file's output: replaced whole by every pull, with `amount_reporting` (at the rate
/// of the month's first day).
fn costs_output(target: OutputTarget) -> DatasetOutput<CostsBuilder> {
    let fx = Arc::clone(&target.fx);
    DatasetOutput::<CostsBuilder>::new(target, Dataset::Costs, costs_schema(), |_| None)
        .with_reporting(
            fx,
            costs_reporting_schema(&costs_schema()),
            add_costs_reporting,
        )
}

/// An intent file's output: replaced whole by every pull.
fn intent_output(target: OutputTarget) -> DatasetOutput<IntentSignalsBuilder> {
    DatasetOutput::<IntentSignalsBuilder>::new(
        target,
        Dataset::IntentSignals,
        intent_signals_schema(),
        |_| None,
    )
}

/// A survey tool's output: one row per response id, merged like leads.
fn survey_output(target: OutputTarget) -> DatasetOutput<SurveyResponsesBuilder> {
    DatasetOutput::<SurveyResponsesBuilder>::new(
        target,
        Dataset::SurveyResponses,
        survey_responses_schema(),
        |_| None,
    )
    .with_key(|row| row.response_id.as_str().into())
    .with_merge_key("response_id", |row| row.response_id.as_str().into())
}

/// A spend source's output: Hive-partitioned by day, each day's file replaced whole, with
/// `spend_reporting` (at the day's rate).
fn spend_output(target: OutputTarget) -> DatasetOutput<SpendBuilder> {
    let fx = Arc::clone(&target.fx);
    DatasetOutput::<SpendBuilder>::new(target, Dataset::Spend, spend_schema(), spend_partition)
        .with_reporting(
            fx,
            spend_reporting_schema(&spend_schema()),
            add_spend_reporting,
        )
        // A repeated page must not repeat a day's campaign row.
        .with_key(|row| spend_key(row).into())
}

/// `date|platform|account_id|campaign_id`, a spend row's key: put together without `fmt`,
/// since every row of a year of spend asks for it.
fn spend_key(row: &SpendRow) -> String {
    let mut date = itoa::Buffer::new();
    let parts = [
        date.format(row.date),
        &row.platform,
        &row.account_id,
        &row.campaign_id,
    ];
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            key.push('|');
        }
        key.push_str(part);
    }
    key
}

/// `date=YYYY-MM-DD`, the Hive partition of a spend row.
pub fn spend_partition(row: &SpendRow) -> Option<String> {
    let date = crate::days::checked_from_epoch_days(row.date)?;
    Some(day_partition(date))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key put together by hand is the one `format!` gives, for days before and after
    /// the epoch and parts holding the separator.
    #[test]
    fn a_spend_key_is_its_parts_joined_by_bars() {
        for (date, campaign) in [(20_000, "c1"), (0, ""), (-719_162, "a|b"), (i32::MAX, "ß")] {
            let row = SpendRow {
                date,
                platform: "meta_ads".into(),
                account_id: "act_101".into(),
                campaign_id: campaign.into(),
                campaign_name: None,
                channel: None,
                currency: "EUR".into(),
                spend: 1,
                impressions: 2,
                clicks: 3,
            };
            assert_eq!(
                spend_key(&row),
                format!("{date}|meta_ads|act_101|{campaign}")
            );
        }
    }
}
