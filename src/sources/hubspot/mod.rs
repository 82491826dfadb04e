//! HubSpot CRM v3 contacts → `leads`. The first run syncs fully through the contacts list
//! endpoint (bearer token, `limit`, `properties`, the opaque `after` cursor sent back exactly
//! as received until `paging.next` is absent); later runs search for contacts whose
//! `lastmodifieddate` is after the watermark, or within the look-back of when the last run
//! read (the search index lags behind writes), ascending, and merge them into the table by
//! id. A search cannot page past 10,000 results, so a query that gets
//! there starts again from the last `lastmodifieddate` it read; when more than 10,000
//! contacts share that instant (a bulk import), they are read by ascending numeric
//! `hs_object_id`, each query starting after the largest id read, and the search then goes
//! on after that instant. Every run sweeps the archived list, whose contacts become rows
//! with `is_deleted = true` (archiving does not move `lastmodifieddate`). Every property
//! arrives as a string or null.

mod contact;
mod page;
mod page_tokens;
mod properties;
mod sync;

pub use properties::HubspotProperties;

pub use sync::SEARCH_CEILING;

use serde::Deserialize;
use serde_json::Value;

use super::SourceContext;
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::LeadRow;
use crate::normalize::parse::opt_timestamp;
use crate::ratelimit::{RateLimitSettings, RateLimiter};
use crate::sources::RowSink;
use contact::PropertyIndex;

/// `[[sources]] kind = "hubspot"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubspotConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Private-app or OAuth access token, e.g. `"${HUBSPOT_TOKEN}"`.
    pub token: Template,
    /// Contacts per page (`limit`, at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Contacts per search page (`limit`, at most 200), for incremental runs.
    #[serde(default = "default_search_page_size")]
    pub search_page_size: u32,
    /// How far behind writes the search index may lag, in minutes: an incremental search
    /// reads again the contacts modified this long before the last run began (the
    /// watermark minus this when the last run's start is not known).
    #[serde(default = "default_lookback_minutes")]
    pub lookback_minutes: u32,
    /// Sweep the archived contacts on every run (they become `is_deleted = true` rows).
    #[serde(default = "default_true")]
    pub sweep_archived: bool,
    /// The account's request limits (burst window and daily budget).
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    /// Which HubSpot property feeds each canonical column.
    #[serde(default)]
    pub properties: HubspotProperties,
    /// ISO-4217 currency of `annualrevenue` (the portal's company currency); the job's
    /// `reporting_currency` when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Other contact properties to keep in `leads.custom`, each with its type.
    #[serde(default)]
    pub custom_properties: crate::sources::custom::CustomProperties,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_search_page_size() -> u32 {
    200
}

fn default_lookback_minutes() -> u32 {
    10
}

fn default_true() -> bool {
    true
}

fn default_base_url() -> Template {
    Template::new("https://api.hubapi.com")
}

fn default_page_size() -> u32 {
    100
}

impl HubspotConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(self.rate_limit.check());
        if self.search_page_size == 0 || self.search_page_size > 200 {
            problems.push((
                "search_page_size",
                format!(
                    "{} is out of range: HubSpot search pages hold 1 to 200 contacts",
                    self.search_page_size
                ),
            ));
        }
        if self.properties.updated_at.is_empty() {
            problems.push((
                "properties",
                "updated_at must name a property: incremental search filters on it".to_string(),
            ));
        }
        problems.extend(crate::sources::custom::check(&self.custom_properties));
        if let Some(c) = &self.currency
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            problems.push((
                "currency",
                format!("`{c}` is not an ISO-4217 code like EUR"),
            ));
        }
        if self.page_size == 0 || self.page_size > 100 {
            problems.push((
                "page_size",
                format!(
                    "{} is out of range: HubSpot pages hold 1 to 100 contacts",
                    self.page_size
                ),
            ));
        }
        problems
    }
}
/// State stream of the contacts watermark (`lastmodifieddate`, RFC 3339 with ms).
const STREAM: &str = "contacts";
/// State stream recording whether the last full sync was cut short by the daily limit.
const FULL_SYNC_STREAM: &str = "contacts_full_sync";
/// State stream of the instant before which every contact's last modification had been
/// read: the last complete run's clock minus the look-back (RFC 3339 with ms), or
/// [`READ_BEFORE_UNKNOWN`] after a run the daily limit stopped.
const READ_BEFORE_STREAM: &str = "contacts_read_before";
/// [`READ_BEFORE_STREAM`] after a run that stopped early: contacts sharing the watermark's
/// instant may be unread, so the next search starts a look-back before the watermark.
const READ_BEFORE_UNKNOWN: &str = "unknown";

/// Where an incremental search starts, epoch ms (`GTE`). A contact the last run did not read
/// was either modified after the watermark (the newest modification read), or not yet in
/// the search index when that run searched: modified at most `lookback_ms` before the run
/// began, since the index lags writes by less than that. So the search starts at the
/// earlier of the two; when nothing changed since a run long after the last modification,
/// that is one request. Without the last run's start (a state written before it was kept,
/// or a run the daily limit stopped, which can leave contacts of the watermark's own instant
/// unread), it starts the look-back before the watermark.
fn search_from(watermark_ms: i64, read_before_ms: Option<i64>, lookback_ms: i64) -> i64 {
    match read_before_ms {
        Some(read_before) => (watermark_ms + 1).min(read_before),
        None => watermark_ms - lookback_ms,
    }
}

/// A stream's RFC 3339 watermark as epoch ms.
fn watermark_ms(ctx: &SourceContext, stream: &str) -> Option<i64> {
    ctx.previous
        .watermark(stream)
        .and_then(|w| opt_timestamp(Some(&Value::String(w.to_string())), stream).ok()?)
        .map(|micros| micros.div_euclid(1_000))
}

/// Pull contacts into `out`: the full list the first time, then an incremental search from
/// the watermark; then the archived sweep. A daily rate limit ends the pull early without
/// failing it: what was pulled commits and the watermark moves to the last record read
/// (search pages ascend by modification time), so the next run resumes from there.
pub async fn pull(
    cfg: &HubspotConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut impl RowSink<LeadRow>,
) -> Result<()> {
    let session = sync::Session {
        cfg,
        base_url,
        token,
        ctx,
        limiter: RateLimiter::new(&cfg.rate_limit).reporting_to(ctx.http.stats()),
        index: PropertyIndex::new(&cfg.properties, &cfg.custom_properties)
            .with_currency(cfg.currency.as_deref().unwrap_or(&ctx.reporting_currency)),
    };
    if !cfg.custom_properties.is_empty() && !ctx.pages.is_replay() {
        session.check_custom_properties(out.job()).await?;
    }
    let started_ms = chrono::Utc::now().timestamp_millis();
    let lookback_ms = i64::from(cfg.lookback_minutes) * 60_000;
    let watermark = watermark_ms(ctx, STREAM);
    let (progress, full) = match watermark {
        Some(wm) => {
            out.merge_with_previous();
            let from = search_from(wm, watermark_ms(ctx, READ_BEFORE_STREAM), lookback_ms);
            (session.search(from, out).await?, false)
        }
        None => {
            // A full sync cut short last time left a partial table: merge into it.
            if ctx.previous.watermark(FULL_SYNC_STREAM) == Some("incomplete") {
                out.merge_with_previous();
            }
            (session.list(false, out).await?, true)
        }
    };
    let mut stopped = progress.stopped.clone();
    if stopped.is_none() && cfg.sweep_archived {
        stopped = session.list(true, out).await?.stopped;
    }
    let format_ms = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    };
    // Every contact modified a look-back before this run began was in the index when it
    // read, and was read, unless the daily limit stopped the read.
    let read_before = if progress.stopped.is_some() {
        Some(READ_BEFORE_UNKNOWN.to_string())
    } else {
        format_ms(ctx.clock().timestamp_millis() - lookback_ms)
    };
    if let Some(read_before) = read_before {
        ctx.advance(READ_BEFORE_STREAM, read_before);
    }
    if full {
        if progress.stopped.is_some() {
            ctx.advance(FULL_SYNC_STREAM, "incomplete".into());
        } else {
            ctx.advance(FULL_SYNC_STREAM, "complete".into());
            // Contacts changed during the listing may have been listed before the change.
            if let Some(w) = progress
                .newest_ms
                .map(|n| n.min(started_ms))
                .and_then(format_ms)
            {
                ctx.advance(STREAM, w);
            }
        }
    } else if let Some(w) = progress
        .newest_ms
        .filter(|n| watermark.is_some_and(|wm| *n > wm))
        .and_then(format_ms)
    {
        ctx.advance(STREAM, w);
    }
    if let Some(reason) = stopped {
        let next_midnight = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().to_rfc3339())
            .unwrap_or_default();
        tracing::warn!(source = %ctx.source_name, %reason, resets = %next_midnight,
            "HubSpot daily request limit reached: committing what was pulled; the limit resets at midnight in the account's time zone (next UTC midnight shown), and the next run resumes from the watermark");
        ctx.warn(format!(
            "stopped early by the daily request limit ({reason}); what was pulled is committed and the next run resumes from the watermark"
        ));
    }
    Ok(())
}

impl super::SourceKind for HubspotConfig {
    const KIND: &'static str = "hubspot";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Leads;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        vec![("token", &self.token)]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        HubspotConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        pull(
            self,
            &resolved.base_url,
            resolved.secret("token"),
            ctx,
            outputs.leads(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::MemorySink;
    use crate::sources::pages::Pages;

    #[test]
    fn the_search_starts_after_the_watermark_or_a_look_back_before_the_last_run() {
        let minute = 60_000;
        let lookback = 10 * minute;
        let wm = 1_000 * minute;
        // The last run began long after the newest modification: only what is newer.
        assert_eq!(search_from(wm, Some(wm + 60 * minute), lookback), wm + 1);
        // It began within the look-back of it: from a look-back before that run began.
        assert_eq!(
            search_from(wm, Some(wm - 4 * minute), lookback),
            wm - 4 * minute
        );
        assert_eq!(search_from(wm, Some(wm + 1), lookback), wm + 1);
        assert_eq!(search_from(wm, Some(wm), lookback), wm);
        // Unknown (an older state, or a run the daily limit stopped): a look-back before
        // the watermark.
        assert_eq!(search_from(wm, None, lookback), wm - lookback);
    }

    /// The connector contract: a connector runs against an in-memory sink, no warehouse.
    #[tokio::test]
    async fn a_full_sync_of_the_sandbox_lands_every_contact_in_an_in_memory_sink() {
        let opts = crate::sandbox::SandboxOptions {
            scale: 120,
            malformed_every: 7,
            ..Default::default()
        };
        let today = opts.today;
        let sandbox = crate::sandbox::start(opts).await.unwrap();
        let totals = sandbox.data.totals();
        let cfg: HubspotConfig = toml::from_str(
            "name = \"hs\"\ntoken = \"t\"\npage_size = 25\nsweep_archived = false\n",
        )
        .unwrap();
        let http = crate::http::HttpClient::new("hs", &cfg.http).unwrap();
        let ctx = SourceContext::new(
            "hs",
            http.clone(),
            Pages::live("hs", http, None),
            crate::normalize::PersonalDataHasher::new(b"k"),
            today,
            crate::state::SourceState::default(),
        );
        let token = Secret::new(crate::sandbox::HUBSPOT_TOKEN.to_string());
        let base_url = format!("{}/hubspot", sandbox.base_url());
        let mut sink = MemorySink::new("job");
        pull(&cfg, &base_url, &token, &ctx, &mut sink)
            .await
            .unwrap();
        assert!(totals.contacts_malformed > 0);
        assert_eq!(sink.rejects.len(), totals.contacts_malformed);
        assert_eq!(sink.rows.len(), totals.contacts - totals.contacts_malformed);
        assert!(!sink.merged, "a first sync replaces the table");
        assert!(ctx.next_state().watermark(STREAM).is_some());
    }
}
