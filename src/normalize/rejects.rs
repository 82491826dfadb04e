//! The `_rejects` table (records that could not be normalized, with the reason) and the
//! `_runs` table (one row per run with its accounting).

use super::columns::canonical_table;

canonical_table! {
    /// A record that could not be normalized. Personal fields in `record` are hashed first.
    RejectRow, RejectsBuilder, rejects_schema {
        /// The dataset it was meant for.
        dataset: Str,
        /// The source name in the job file.
        source: Str,
        /// Where in the pull it came from (endpoint and page number).
        location: Str,
        /// The raw record as JSON, personal identifiers replaced by their keyed hash.
        record: Str,
        /// Why it was rejected.
        reason: Str,
    }
}

canonical_table! {
    /// One run of a job and its accounting.
    RunRow, RunsBuilder, runs_schema {
        run_id: Str,
        job: Str,
        /// `succeeded`, `partial` (some sources failed; the others committed), `failed`, or
        /// `aborted` (stopped by a signal or the scheduler before its commit; nothing published).
        status: Str,
        started_at: OptTs,
        finished_at: OptTs,
        /// Which sources failed and why; null when all succeeded.
        error: OptStr,
        /// Warnings an operator should see (a full pull far smaller than the table); null
        /// when none.
        warnings: OptStr,
        leads_read: I64,
        leads_written: I64,
        leads_rejected: I64,
        spend_read: I64,
        spend_written: I64,
        spend_rejected: I64,
        survey_responses_read: I64,
        survey_responses_written: I64,
        survey_responses_rejected: I64,
        costs_read: I64,
        costs_written: I64,
        costs_rejected: I64,
        intent_signals_read: I64,
        intent_signals_written: I64,
        intent_signals_rejected: I64,
        requests: I64,
        retries: I64,
        bytes_received: I64,
    }
}

impl RunRow {
    /// The row of a run that moved no data (a metrics step, a run stopped before its
    /// commit): every count zero, no error or warning yet.
    pub fn without_rows(run_id: &str, job: &str, status: &str, started_at: i64) -> Self {
        RunRow {
            run_id: run_id.to_string(),
            job: job.to_string(),
            status: status.to_string(),
            started_at: Some(started_at),
            finished_at: Some(chrono::Utc::now().timestamp_micros()),
            error: None,
            warnings: None,
            leads_read: 0,
            leads_written: 0,
            leads_rejected: 0,
            spend_read: 0,
            spend_written: 0,
            spend_rejected: 0,
            survey_responses_read: 0,
            survey_responses_written: 0,
            survey_responses_rejected: 0,
            costs_read: 0,
            costs_written: 0,
            costs_rejected: 0,
            intent_signals_read: 0,
            intent_signals_written: 0,
            intent_signals_rejected: 0,
            requests: 0,
            retries: 0,
            bytes_received: 0,
        }
    }
}
