//! Vendor connectors, one module per source kind. Each turns its vendor's pages into
//! canonical rows and rejects; the shared HTTP client does retries and counting; the sink
//! behind [`RowSink`] does all storage. The rest of this comment is the guide to writing
//! one.
//!
//! # Writing a source
//!
//! **What it takes.** A new CRM (or any vendor filling an existing dataset) is two new
//! files, each registered by one line — and, because Rust finds a file only through its
//! `mod` line, one `mod` line each:
//! 1. `src/sources/<vendor>.rs` — the config struct (`#[derive(Deserialize,
//!    schemars::JsonSchema)] #[serde(deny_unknown_fields)]`, a doc comment on every field,
//!    named defaults, a pure `check`), the `pull` function, and `impl SourceKind` (kind
//!    name, dataset, secrets, URL keys, whether it can backfill a date range, how `pull`
//!    is called with its credentials); registered by one line in the `registry!` list of
//!    [`registry`] (`Vendor(super::vendor::VendorConfig)`: with the full path no `use`
//!    there needs extending) and declared by `pub mod <vendor>;` in this file;
//! 2. `src/sandbox/<vendor>.rs` — its sandbox twin (below), for the tests; registered by one
//!    line in the `TWINS` list of `sandbox/server.rs` (`super::<vendor>::TWIN,`) and
//!    declared by `mod <vendor>;` in `sandbox/mod.rs`.
//!
//! That is the honest count: two new files and four one-line edits, in
//! `sources/registry.rs`, `sources/mod.rs`, `sandbox/server.rs` and `sandbox/mod.rs`. The
//! connector and its twin are registered apart because the pipeline does not depend on the
//! sandbox. The loader, the job-file schema, the kind names in messages, secret resolution
//! and the pull dispatch all come from the registry line; the twin's routes (its admin
//! routes too), the environment the sandbox hands a job (`sandbox::job_env`, so the demo's
//! and the tests' tokens) and the prefixes the not-found answer lists all come from the
//! twin's line. Besides code, expect a README section for the job-file keys and a job in
//! `jobs/` or a test in `tests/it/` using it. A source filling a *new* dataset also needs
//! its canonical table in `normalize/` and its staging choice in `sink/datasets.rs`.
//!
//! **Pages.** Fetch every page through `ctx.pages` ([`pages::Pages`]): live, it sends the
//! request through the shared client (retries, backoff, `Retry-After`, counting) and lands
//! the body under `_raw/`; in a replay it hands back the recorded body instead, so the same
//! loop re-applies a fixed rule without the network. Give each endpoint a fixed name
//! (`hubspot/contacts`). A body that carries a secret (Meta's `next` links) goes through
//! `fetch_scrubbed`. Check that an answer belongs to its request ([`answer`]): a vendor or
//! proxy that serves the wrong page must fail the pull, not fill the table.
//!
//! **Credentials.** A vendor with OAuth takes its bearer token from an
//! [`oauth::OAuthToken`]: a fixed access token, or the refresh-token grant obtained at the
//! first request and refreshed once after a 401 (`fetch` sends a page that way). Declare
//! the keys with `oauth::declared_secrets`, check them with `oauth::check_credentials`;
//! a vendor whose token endpoint needs its own advice passes its verdict
//! (`with_token_verdict`, as Salesforce does), and one whose answer names the instance to
//! call reads `granted(..).instance_url`.
//!
//! **Verdicts.** How a response is judged is the vendor's business: pass a
//! `fn(StatusCode, &HeaderMap, &[u8]) -> Verdict` to `fetch_classified` returning
//! `Accept`, `Retry`, `RateLimited` or `Fatal` (with a message saying what to do), and
//! fall back to [`crate::http::default_verdict`] for the rest. Never retry inside the
//! connector: the shared loop owns attempts, so the run report counts them.
//!
//! **Decoding.** Decode a page straight into the dataset's row type (`LeadRow`,
//! `SpendRow`, …) with [`SourceContext::decode_json`] (off the task for large pages), into a
//! [`DecodedPage`]: the rows, the rejects with their reason, and whatever paging needs
//! next; then [`DecodedPage::write`] pushes both into the sink. A record that cannot be
//! decoded is a reject, never an error: the pull goes on. A page that is not the expected
//! shape at all is an error ([`SourceContext::protocol`]).
//!
//! **Lead fields.** The `leads` columns a CRM can map, with their reading rules and docs,
//! are declared once and shared, in `lead_fields.rs`. A new CRM declares its default
//! mapping in its own file with `crm_fields!` (one `key = "Field"` per column it can map;
//! a key that is no declared column does not compile), which gives it its job-file mapping
//! table and the per-column `field` lookup; from those come the properties to request or
//! the SELECT list. It hands `LeadValues::read` a closure giving each column's value and
//! field name, applies its own quirks, then calls `LeadValues::into_row`. A new column is
//! one entry in `lead_fields.rs` (plus a key in each CRM that can fill it).
//!
//! **The sink.** A connector receives `&mut impl RowSink<Row>` and only pushes rows and
//! rejects; it asks for a merge (`merge_with_previous`) when it pulled changes since a
//! watermark, and a day-windowed source says which days it covers (`cover_day`). Keys,
//! de-duplication, partitions, batches and files are the sink's choice, per dataset
//! (`sink/datasets.rs`). So a connector is tested without a warehouse: [`MemorySink`]
//! keeps what was pushed (see the HubSpot sandbox test).
//!
//! **Watermarks.** Read the last committed position with `ctx.previous.watermark(stream)`
//! and move it with [`SourceContext::advance`]; it is saved only if the run commits, and
//! never past the run's clock. Move it to what was *read* (the newest modification seen),
//! not to "now", and start the next query a little before it when the vendor's index lags.
//! A pull cut short (a daily limit) keeps what it read, says so with
//! [`SourceContext::warn`], and leaves the watermark where the next run should resume.
//!
//! **Redaction.** No personal value reaches a table, a log or an error in clear: e-mails
//! and respondent ids go through `ctx.hasher`; a rejected record is kept with those
//! replaced (see `hubspot::contact::redact`); protocol errors are redacted by
//! [`SourceContext::protocol`]; credentials are [`crate::config::Secret`]s, resolved per
//! run and never printed.
//!
//! **The sandbox twin.** `src/sandbox/<vendor>.rs` (a folder once it grows, like
//! `sandbox/hubspot/`) imitates the vendor on 127.0.0.1 with its real request and response
//! shapes, its paging, its errors and rate-limit answers. It declares itself in one
//! `pub(crate) const TWIN: Twin` (`sandbox/twin.rs`): the path prefixes it serves (the first
//! is the base URL a job names, `${FUNNELHOUSE_SANDBOX_URL}/<vendor>`), a `routes()` with
//! its routes and its own `/_admin/…` controls, the variables a job needs with the values it
//! accepts (the tokens are constants of its module), and the terse 429 it answers when
//! armed through `/_admin/rate_limits`, if any. It serves from the shared deterministic
//! world (`sandbox/data.rs`: contacts, spend, the survey, and the totals a test asserts
//! against); what only it needs — a request counter, records of its own drawn from the seed
//! and scale — is a type of its module implementing `TwinState`, made from the data on
//! first use by `data.twin_state::<S>()` (see SurveyMonkey's). One thing stays shared and
//! is edited only when a CRM twin wants it: the simulated edits between runs
//! (`/_admin/crm/mutate`, in `sandbox/crm.rs`, today HubSpot's and Salesforce's). The twin
//! should read requests with its own code, not the client's (a parser shared by both hides
//! the bugs both would share).
//!
//! **Fixtures.** Hand-written vendor pages for the odd cases the twin does not produce
//! live in `tests/fixtures/<vendor>/`; `replay/` there holds pages in the recorded-pages
//! layout, replayed by the integration tests.

pub mod answer;
pub mod costs;
pub mod custom;
mod decoded_once;
pub mod file;
pub mod google_ads;
pub mod hubspot;
pub mod intent;
mod kind;
mod lead_fields;
mod lenient;
pub mod linkedin_ads;
pub mod meta_ads;
pub mod oauth;
pub mod pages;
pub mod registry;
mod rows;
pub mod salesforce;
pub mod spend_window;
pub mod survey;
pub mod surveymonkey;
pub mod typeform;

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::Value;

use crate::config::{EnvLookup, JobConfig, Secret, SourceConfig, Template};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::normalize::PersonalDataHasher;
use crate::state::SourceState;
pub use kind::{ReadKind, SourceKind};
use pages::Pages;
pub use rows::{MemorySink, Outputs, RowSink};

/// A source's base URL and credentials, resolved from the environment for this run only.
#[derive(Debug)]
pub struct ResolvedSecrets {
    /// The vendor base URL.
    pub base_url: String,
    secrets: HashMap<&'static str, Secret>,
}

impl ResolvedSecrets {
    /// Resolve the source's base URL and every credential it declares.
    pub fn resolve(job: &JobConfig, source: &SourceConfig, env: EnvLookup<'_>) -> Result<Self> {
        let resolve = |key: &str, t: &Template| {
            t.resolve(env).map_err(|var| {
                Error::config(
                    &job.path,
                    format!(
                        "source `{}`: {key}: environment variable `{var}` is not set",
                        source.name()
                    ),
                )
            })
        };
        let mut secrets = HashMap::new();
        for (key, template) in source.secrets() {
            secrets.insert(key, Secret::new(resolve(key, template)?));
        }
        let mut base_url = resolve("base_url", source.base_url())?;
        if source.url_is_path() {
            // A costs or intent `url` may be a path: relative to the job file, like every path in it.
            base_url = crate::config::resolve_job_path(&job.path, &base_url);
        }
        Ok(ResolvedSecrets { base_url, secrets })
    }

    /// The credential declared under `key`.
    pub fn secret(&self, key: &str) -> &Secret {
        &self.secrets[key]
    }

    /// The credential declared under `key`, when the source declared it (optional ones).
    pub fn optional_secret(&self, key: &str) -> Option<&Secret> {
        self.secrets.get(key)
    }
}

/// What a source needs from the run.
#[derive(Debug)]
pub struct SourceContext {
    /// The source's name in the job file.
    pub source_name: String,
    /// Its HTTP client, to build requests (sending goes through `pages`).
    pub http: HttpClient,
    /// Where pages come from: live HTTP (landed raw) or a replay.
    pub pages: Pages,
    /// Keyed hasher for personal identifiers.
    pub hasher: PersonalDataHasher,
    /// The run's "today" (UTC), for date windows.
    pub today: NaiveDate,
    /// The state the last committed run left.
    pub previous: SourceState,
    /// A backfill's inclusive date range, replacing the source's own window.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// The job's reporting currency: the currency of CRM amounts whose source names none.
    pub reporting_currency: String,
    /// Opens the `s3://` files a source reads whole (costs, intent) with the run's store
    /// settings; `None` in a context built without a run, which then cannot read them.
    pub objects: Option<std::sync::Arc<dyn file::ObjectOpener>>,
    /// The run's clock: no watermark moves past it (see [`SourceContext::advance`]).
    clock: chrono::DateTime<chrono::Utc>,
    next: std::sync::Mutex<SourceState>,
    /// Warnings for `_runs` (see [`SourceContext::warn`]).
    warnings: std::sync::Mutex<Vec<String>>,
}

impl SourceContext {
    /// A context starting from `previous` state.
    pub fn new(
        source_name: &str,
        http: HttpClient,
        pages: Pages,
        hasher: PersonalDataHasher,
        today: NaiveDate,
        previous: SourceState,
    ) -> Self {
        SourceContext {
            source_name: source_name.to_string(),
            http,
            pages,
            hasher,
            today,
            window: None,
            reporting_currency: "EUR".to_string(),
            objects: None,
            // The end of `today` until the run sets its clock (`with_clock`).
            clock: today
                .and_hms_opt(23, 59, 59)
                .map_or_else(chrono::Utc::now, |t| t.and_utc()),
            next: std::sync::Mutex::new(previous.clone()),
            warnings: std::sync::Mutex::new(Vec::new()),
            previous,
        }
    }

    /// A context for a test: a live client with default settings, the hash key `k`.
    #[cfg(test)]
    pub(crate) fn for_test(source_name: &str, today: NaiveDate, previous: SourceState) -> Self {
        let http = HttpClient::new(source_name, &crate::http::HttpSettings::default())
            .expect("a client with default settings");
        SourceContext::new(
            source_name,
            http.clone(),
            Pages::live(source_name, http, None),
            PersonalDataHasher::new(b"k"),
            today,
            previous,
        )
    }

    /// Pull exactly `from ..= to` (a backfill) instead of the source's own window.
    pub fn with_window(mut self, window: Option<(NaiveDate, NaiveDate)>) -> Self {
        self.window = window;
        self
    }

    /// The job's reporting currency (`EUR` until set).
    pub fn with_reporting_currency(mut self, currency: &str) -> Self {
        self.reporting_currency = currency.to_string();
        self
    }

    /// How the run opens object-store URLs (`s3://…`) of the files a source reads whole.
    pub fn with_objects(mut self, opener: std::sync::Arc<dyn file::ObjectOpener>) -> Self {
        self.objects = Some(opener);
        self
    }

    /// The run's clock (`RunOptions::now`): watermarks never move past it.
    pub fn with_clock(mut self, now: chrono::DateTime<chrono::Utc>) -> Self {
        self.clock = now;
        self
    }

    /// The run's clock: set when the run starts, before any request (a replay's is the
    /// recorded run's).
    pub fn clock(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock
    }

    /// Move `stream`'s watermark to `watermark`; it is saved only if the run commits. Every
    /// source's watermarks pass here, so none moves past the run's clock: one record dated
    /// in the future (a vendor bug, a typo, year 9999) would otherwise make every later
    /// incremental run ask only for changes after that date and silently find nothing. The
    /// record itself is kept and flagged by normalization (`_runs.warnings`).
    pub fn advance(&self, stream: &str, watermark: String) {
        let watermark = match crate::state::clamp_watermark(&watermark, self.clock) {
            Some(clock) => {
                tracing::info!(source = %self.source_name, stream, newest = %watermark, watermark = %clock,
                    "the newest record read is dated after the run's clock: the watermark stops at the clock");
                clock
            }
            None => watermark,
        };
        if let Ok(mut next) = self.next.lock() {
            next.set_watermark(stream, watermark);
        }
    }

    /// Something the run's record should carry (`_runs.warnings`) besides the log: the
    /// pull succeeded, but not as a normal one.
    pub fn warn(&self, message: impl Into<String>) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.into());
    }

    /// The warnings so far, for the run's record (taken once, after the pull).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The state to save after the commit.
    pub fn next_state(&self) -> SourceState {
        self.next
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Parse a response body as JSON, or explain which URL sent what (on a blocking thread
    /// when the body is large, see [`SourceContext::off_task`]).
    pub async fn parse_json(&self, url: &str, body: &bytes::Bytes) -> Result<Value> {
        self.off_task(url, body, |body| {
            crate::json::from_slice::<Value>(body).map_err(|e| not_json(&e, body))
        })
        .await
    }

    /// Parse a page into sonic-rs's tree and decode it with `decode`, both off the task
    /// when the page is large. A data page is read once and dropped, so the tree that is
    /// cheapest to build wins: sonic-rs's is about ten times faster to build than a
    /// `serde_json::Value` (no per-member `String` and map node). `decode`'s `Err` is a
    /// protocol error about the page. `skimmed` is the proof of the skim that judged the
    /// answer, when one did: that pass checked the nesting, so the bytes are not scanned for
    /// it again (a proof of other bytes is ignored and the body scanned).
    pub async fn decode_json<T: Send + 'static>(
        &self,
        url: &str,
        body: &bytes::Bytes,
        skimmed: Option<crate::json::SkimProof>,
        decode: impl FnOnce(sonic_rs::Value) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let shared = body.clone();
        self.off_task(url, body, move |body| {
            let parsed = match skimmed {
                Some(proof) => crate::json::Checked::after_skim(&shared, proof)
                    .and_then(|checked| crate::json::sonic_from_checked(&checked)),
                None => crate::json::sonic_from_slice::<sonic_rs::Value>(body),
            };
            match parsed {
                Ok(value) => decode(value),
                Err(e) => Err(not_json(&e, body)),
            }
        })
        .await
    }

    /// Run `work` over `body` on a blocking thread when the body is large, so the run's
    /// other sources (polled on the same task) go on meanwhile; a small body is not worth
    /// the hand-off. `work`'s `Err` is a protocol error about `url`.
    async fn off_task<T: Send + 'static>(
        &self,
        url: &str,
        body: &bytes::Bytes,
        work: impl FnOnce(&[u8]) -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        const OFF_THREAD_BYTES: usize = 64 * 1024;
        let done = if body.len() >= OFF_THREAD_BYTES {
            let owned = body.clone();
            crate::background::spawn(move || work(&owned))
                .await
                .unwrap_or_else(|e| Err(format!("decoding stopped: {e}")))
        } else {
            work(body)
        };
        done.map_err(|message| self.protocol(url, message))
    }

    /// A protocol error for this source; e-mails and personal values in the message are
    /// redacted (it often quotes the page).
    pub fn protocol(&self, url: &str, message: impl Into<String>) -> Error {
        Error::Protocol {
            source_name: self.source_name.clone(),
            url: url.to_string(),
            message: crate::normalize::redact_text(&message.into()),
        }
    }
}

/// A record of a page parsed by [`SourceContext::decode_json`] as the `serde_json::Value`
/// the rejects table keeps (only rejected records pay for the copy).
pub fn to_serde_json(record: &sonic_rs::Value) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// Why a body is not JSON (from [`crate::json`], so never quoting it), with its start,
/// redacted.
pub(crate) fn not_json(error: &dyn std::fmt::Display, body: &[u8]) -> String {
    format!(
        "body is not JSON ({error}): {}",
        crate::http::body_excerpt(body)
    )
}

/// A page decoded off the source's task: its rows and its rejected records (redacted, with
/// the reason) in page order, plus what the source's paging needs (`next`).
#[derive(Debug)]
pub struct DecodedPage<R, N> {
    /// Rows, in page order.
    pub rows: Vec<R>,
    /// Rejected records, redacted, with why.
    pub rejects: Vec<(Value, String)>,
    /// Whatever the source reads next from the page (cursor, newest date, counts).
    pub next: N,
}

impl<R, N> DecodedPage<R, N> {
    /// Push the rows, then record the rejects, into `out`; hands back `next`.
    pub async fn write(self, out: &mut impl RowSink<R>, location: &str) -> Result<N> {
        out.push_all(self.rows).await?;
        for (record, reason) in self.rejects {
            out.reject(location, &record, reason);
        }
        Ok(self.next)
    }
}

/// Join a base URL and a path without doubling or dropping the `/`.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn joins_urls() {
        assert_eq!(
            super::join_url("http://h/hubspot/", "/crm/v3"),
            "http://h/hubspot/crm/v3"
        );
        assert_eq!(super::join_url("http://h", "x"), "http://h/x");
    }
}
