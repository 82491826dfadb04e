//! The connector contract: what a connector writes its rows and rejects into. A connector
//! only decodes and pushes; the sink behind [`RowSink`] decides everything about storage
//! (merge keys, de-duplication, partitions, batches, files). The warehouse implements it
//! (`sink::DatasetOutput`); tests use [`MemorySink`].

use std::future::Future;

use chrono::NaiveDate;
use serde_json::Value;

use crate::error::Result;
use crate::normalize::{CostRow, IntentSignalRow, LeadRow, SpendRow, SurveyResponseRow};

/// Where a connector puts the rows of one dataset.
pub trait RowSink<R> {
    /// Add one decoded row (the sink may write a batch out, hence async).
    fn push(&mut self, row: R) -> impl Future<Output = Result<()>> + Send;

    /// Add a page's decoded rows, in order, as [`Self::push`] of each would.
    fn push_all(&mut self, rows: Vec<R>) -> impl Future<Output = Result<()>> + Send;

    /// A record that could not be decoded, redacted, with why; the pull goes on.
    fn reject(&mut self, location: &str, record: &Value, reason: String);

    /// This pull is incremental (changes since a watermark): merge into the table the last
    /// run left instead of replacing it.
    fn merge_with_previous(&mut self);

    /// This pull covers `day` even if no row lands in it: a day-partitioned sink replaces
    /// that day's file with an empty one.
    fn cover_day(&mut self, day: NaiveDate);

    /// The job the rows belong to (for errors that name it).
    fn job(&self) -> &str;
}

/// One sink per dataset a connector may fill; the one a source's kind fills is asked for
/// by [`super::pull`].
pub trait Outputs {
    /// `leads` (CRMs).
    type Leads: RowSink<LeadRow> + Send;
    /// `spend` (ad platforms).
    type Spend: RowSink<SpendRow> + Send;
    /// `survey_responses` (survey tools).
    type Surveys: RowSink<SurveyResponseRow> + Send;
    /// `costs` (cost files).
    type Costs: RowSink<CostRow> + Send;
    /// `intent_signals` (intent files).
    type Intent: RowSink<IntentSignalRow> + Send;

    /// The `leads` sink.
    fn leads(&mut self) -> &mut Self::Leads;
    /// The `spend` sink.
    fn spend(&mut self) -> &mut Self::Spend;
    /// The `survey_responses` sink.
    fn surveys(&mut self) -> &mut Self::Surveys;
    /// The `costs` sink.
    fn costs(&mut self) -> &mut Self::Costs;
    /// The `intent_signals` sink.
    fn intent(&mut self) -> &mut Self::Intent;
}

/// An in-memory sink: keeps every row and reject as pushed, for testing a connector
/// without a warehouse.
#[derive(Debug)]
pub struct MemorySink<R> {
    /// Rows, in push order.
    pub rows: Vec<R>,
    /// `(location, record, reason)` of each reject, in order.
    pub rejects: Vec<(String, Value, String)>,
    /// Whether the connector asked to merge into the previous table.
    pub merged: bool,
    /// Days the connector said it covers.
    pub covered: Vec<NaiveDate>,
    job: String,
}

impl<R> MemorySink<R> {
    /// An empty sink for job `job`.
    pub fn new(job: &str) -> Self {
        MemorySink {
            rows: Vec::new(),
            rejects: Vec::new(),
            merged: false,
            covered: Vec::new(),
            job: job.to_string(),
        }
    }
}

impl<R: Send> RowSink<R> for MemorySink<R> {
    async fn push(&mut self, row: R) -> Result<()> {
        self.rows.push(row);
        Ok(())
    }

    async fn push_all(&mut self, rows: Vec<R>) -> Result<()> {
        self.rows.extend(rows);
        Ok(())
    }

    fn reject(&mut self, location: &str, record: &Value, reason: String) {
        self.rejects
            .push((location.to_string(), record.clone(), reason));
    }

    fn merge_with_previous(&mut self) {
        self.merged = true;
    }

    fn cover_day(&mut self, day: NaiveDate) {
        self.covered.push(day);
    }

    fn job(&self) -> &str {
        &self.job
    }
}
