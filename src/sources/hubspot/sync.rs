//! How HubSpot contacts are fetched: the list endpoint (full sync, and the archived sweep),
//! the search endpoint (incremental, ascending on `lastmodifieddate`, restarted below the
//! 10,000-result ceiling from the last date seen; more than 10,000 contacts sharing one
//! date are read by ascending numeric `hs_object_id`, restarted after the largest id seen,
//! before the search goes on past that date), and the rate limits — the per-source limiter
//! before each request, a burst 429 retried after the window, a daily 429 ending the pull
//! early with what was pulled kept.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::HubspotConfig;
use super::contact::PropertyIndex;
use super::page::{ContactsDecoded, Reached, Skim, decode_page, not_a_page, skim_page};
use crate::config::Secret;
use crate::error::Result;
use crate::http::{Verdict, body_excerpt, default_verdict, retry_after};
use crate::json::{Checked, SkimProof};
use crate::normalize::LeadRow;
use crate::ratelimit::RateLimiter;
use crate::sources::RowSink;
use crate::sources::decoded_once::DecodedOnce;
use crate::sources::{SourceContext, answer, join_url, not_json};

/// Results one search query can page through; past it HubSpot answers 400.
pub const SEARCH_CEILING: u64 = 10_000;

/// Pages decoded ahead of the one being written: enough to keep both cores busy, few
/// enough that memory holds a handful of pages, not the pull. Pages are written in order,
/// so one page whose decoding thread was preempted (they run below the workers, see
/// `crate::background`) held up the rest: with four ahead, a HubSpot-only 1 M replay kept
/// 1.76–1.78 of the 2 cores busy in its pull (the process's CPU time sampled every 20 ms),
/// with eight 1.80–1.82, its pull shorter in 9 of 11 interleaved pairs; the whole
/// spend-heavy replay 1.82–1.86 against 1.87–1.89 cores in 7 of 7 pairs, its peak memory
/// unchanged. Sixteen and 32 kept more cores busy (1.86, 1.90) but spent as much more CPU,
/// the pages' rows colder by the time they are written.
const DECODE_AHEAD: usize = 8;

/// A page handed to a decoding thread, with where it came from (for rejects and errors).
type InFlight = VecDeque<(
    String,
    JoinHandle<std::result::Result<ContactsDecoded, String>>,
)>;

/// The property every contact's `id` is: unique, numeric, sortable in a search.
const OBJECT_ID: &str = "hs_object_id";

/// How a fetch went.
enum Fetched {
    /// The page's body.
    Page(Bytes),
    /// The day's requests are spent (HubSpot's `DAILY` 429 or the source's own budget).
    DailyLimit(String),
}

/// How one search query ended.
enum QueryEnd {
    /// Its cursor ended: every contact it matches was read.
    Done,
    /// It neared the ceiling with more to read; how far it got.
    Ceiling(Reached),
    /// The day's requests are spent.
    DailyLimit(String),
}

/// What a pull loop saw.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Newest `lastmodifieddate` of a record read, epoch ms.
    pub(super) newest_ms: Option<i64>,
    /// Set when the daily limit ended the loop early: why.
    pub(super) stopped: Option<String>,
}

/// One pull's connection to HubSpot.
pub(super) struct Session<'a> {
    pub(super) cfg: &'a HubspotConfig,
    pub(super) base_url: &'a str,
    pub(super) token: &'a Secret,
    pub(super) ctx: &'a SourceContext,
    pub(super) limiter: RateLimiter,
    /// The job's property names resolved to columns (cloned for each decoding thread).
    pub(super) index: PropertyIndex,
}

impl Session<'_> {
    /// Send `request`; `belongs` tells whether a 200 answer is this request's (see
    /// `sources/answer.rs`), else it is asked for again.
    async fn fetch(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        belongs: &(dyn Fn(&[u8]) -> std::result::Result<(), String> + Sync),
    ) -> Result<Fetched> {
        // Held until the answer is in: the request counts in the window until then.
        let _grant = if self.ctx.pages.is_replay() {
            None
        } else {
            match self.limiter.acquire().await {
                Ok(grant) => Some(grant),
                Err(spent) => {
                    return Ok(Fetched::DailyLimit(format!(
                        "this source's daily_budget of {} requests is spent",
                        spent.budget
                    )));
                }
            }
        };
        let daily: Mutex<Option<String>> = Mutex::new(None);
        let classify = |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
            verdict(status, headers, body, &daily)
        };
        let classify = answer::checked(self.ctx, endpoint, &classify, belongs);
        match self
            .ctx
            .pages
            .fetch_classified(endpoint, request, &classify)
            .await
        {
            Ok(body) => Ok(Fetched::Page(body)),
            Err(e) => match daily.lock().ok().and_then(|mut d| d.take()) {
                Some(message) => Ok(Fetched::DailyLimit(message)),
                None => Err(e),
            },
        }
    }

    /// Check that every kept custom property exists as a contact property of the portal
    /// (`GET /crm/v3/properties/contacts`, one request): HubSpot answers an unknown
    /// property with `null`, so a misspelt name would otherwise be a column that is never
    /// set. The answer is not landed with the pages: it is metadata, not contacts.
    pub(super) async fn check_custom_properties(&self, job: &str) -> Result<()> {
        let ctx = self.ctx;
        let url = join_url(self.base_url, "crm/v3/properties/contacts");
        let _grant = self.limiter.acquire().await.map_err(|spent| {
            ctx.protocol(
                &url,
                format!(
                    "this source's daily_budget of {} requests is spent before the custom properties could be checked",
                    spent.budget
                ),
            )
        })?;
        let daily: Mutex<Option<String>> = Mutex::new(None);
        let classify = |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
            verdict(status, headers, body, &daily)
        };
        let request = ctx.http.inner().get(&url).bearer_auth(self.token.expose());
        let response = ctx.http.send_classified(request, &classify).await?;
        let body: Value = crate::json::from_slice(&response.body)
            .map_err(|e| not_json(&e, &response.body))
            .map_err(|m| ctx.protocol(&url, m))?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| ctx.protocol(&url, "no `results` array of properties"))?;
        let existing: Vec<(String, String)> = results
            .iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?;
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("string");
                Some((name.to_string(), kind.to_string()))
            })
            .collect();
        crate::sources::custom::verify(
            job,
            &ctx.source_name,
            "HubSpot contact property",
            "GET /crm/v3/properties/contacts",
            &self.cfg.custom_properties,
            &existing,
        )
    }

    /// Every page of the contacts list (`archived=true`: the archived ones) into `out`.
    pub(super) async fn list(
        &self,
        archived: bool,
        out: &mut impl RowSink<LeadRow>,
    ) -> Result<Progress> {
        let ctx = self.ctx;
        let url = join_url(self.base_url, "crm/v3/objects/contacts");
        let endpoint = if archived {
            "hubspot/contacts_archived"
        } else {
            "hubspot/contacts"
        };
        let properties = self
            .cfg
            .properties
            .requested(&self.cfg.custom_properties)
            .join(",");
        let mut progress = Progress::default();
        let mut after: Option<String> = None;
        let mut page = 0u64;
        let mut in_flight = InFlight::new();
        loop {
            page += 1;
            let mut request_url =
                reqwest::Url::parse(&url).map_err(|e| ctx.protocol(&url, e.to_string()))?;
            request_url
                .query_pairs_mut()
                .append_pair("limit", &self.cfg.page_size.to_string())
                .append_pair("properties", &properties)
                .append_pair("archived", if archived { "true" } else { "false" });
            if let Some(cursor) = &after {
                // The cursor is opaque and may already be percent-encoded: append it verbatim.
                let query = format!("{}&after={cursor}", request_url.query().unwrap_or(""));
                request_url.set_query(Some(&query));
            }
            let request = ctx
                .http
                .inner()
                .get(request_url)
                .bearer_auth(self.token.expose());
            let sent = after.clone();
            // The check reads the cursor too, and checks the nesting: kept, so the page is
            // not skimmed again for the cursor, nor scanned again before it is decoded.
            let cursors = DecodedOnce::default();
            let ours = |body: &[u8]| {
                // Only what this body showed is kept (see `Checked::after_skim`).
                cursors.clear();
                if let Some(skim) = list_page_belongs(body, archived, sent.as_deref())? {
                    cursors.keep(body, skim);
                }
                Ok(())
            };
            let fetch = self.fetch(endpoint, request, &ours);
            // The oldest decoded page is written while this request is answered: the cursor
            // allows one request in flight, and writing rows need not wait for it.
            let fetched = if in_flight.len() >= DECODE_AHEAD {
                let (fetched, written) = tokio::join!(
                    fetch,
                    self.write_oldest(&url, &mut in_flight, &mut progress, out)
                );
                written?;
                fetched?
            } else {
                fetch.await?
            };
            let body = match fetched {
                Fetched::Page(body) => body,
                Fetched::DailyLimit(message) => {
                    progress.stopped = Some(message);
                    break;
                }
            };
            let location = format!(
                "{} page {page}",
                if archived {
                    "archived contacts"
                } else {
                    "contacts"
                }
            );
            // Only the cursor is read here; the contacts decode on another thread while
            // the next pages are fetched.
            let skim = match cursors.take(&body) {
                Some(skim) => skim,
                None => self.peek(&url, &body)?,
            };
            (after, _) = skim.cursor;
            in_flight.push_back((location, self.decode_on_a_thread(body, skim.proof)));
            if after.is_none() {
                break;
            }
        }
        while !in_flight.is_empty() {
            self.write_oldest(&url, &mut in_flight, &mut progress, out)
                .await?;
        }
        Ok(progress)
    }

    /// Contacts modified at or after `from_ms`, ascending, into `out`. A query that reaches
    /// the ceiling is started again from the last `lastmodifieddate` it returned (`GTE`:
    /// contacts sharing that value are read again and merged by id, none is skipped). When
    /// that value is the query's own lower bound, more contacts share it than one query can
    /// page through: they are read by id ([`Session::search_tie`]) and the search goes on
    /// after that instant.
    pub(super) async fn search(
        &self,
        from_ms: i64,
        out: &mut impl RowSink<LeadRow>,
    ) -> Result<Progress> {
        let url = join_url(self.base_url, "crm/v3/objects/contacts/search");
        let modified = self.cfg.properties.updated_at.as_str();
        let mut progress = Progress::default();
        let mut pages = 0u64;
        let mut from = from_ms;
        loop {
            let filters =
                json!([{"propertyName": modified, "operator": "GTE", "value": from.to_string()}]);
            let reached = match self
                .query(&url, filters, modified, &mut pages, &mut progress, out)
                .await?
            {
                QueryEnd::Done => return Ok(progress),
                QueryEnd::DailyLimit(message) => {
                    progress.stopped = Some(message);
                    return Ok(progress);
                }
                QueryEnd::Ceiling(reached) => reached,
            };
            match reached.modified_ms {
                Some(last) if last > from => {
                    tracing::debug!(source = %self.ctx.source_name, from_ms = last, "search reached its 10,000-result ceiling; restarting from the last lastmodifieddate seen");
                    from = last;
                }
                Some(last) if last == from => {
                    tracing::debug!(source = %self.ctx.source_name, at_ms = last, "more contacts share one lastmodifieddate than a search can page through; reading them by id");
                    if let Some(message) = self
                        .search_tie(&url, last, &mut pages, &mut progress, out)
                        .await?
                    {
                        progress.stopped = Some(message);
                        return Ok(progress);
                    }
                    // `GT last`: the tie is read whole.
                    from = last + 1;
                }
                other => {
                    let newest = other.map_or_else(|| "none".to_string(), |ms| ms.to_string());
                    return Err(self.ctx.protocol(
                        &url,
                        format!(
                            "a search for {modified} >= {from} reached the {SEARCH_CEILING}-result ceiling, but the newest {modified} it returned is {newest}: it cannot be resumed"
                        ),
                    ));
                }
            }
        }
    }

    /// Every contact whose `lastmodifieddate` is `at_ms`, by ascending `hs_object_id`; a
    /// query that reaches the ceiling is started again after the largest id it returned.
    /// `Some(why)` when the daily limit ended it early.
    async fn search_tie(
        &self,
        url: &str,
        at_ms: i64,
        pages: &mut u64,
        progress: &mut Progress,
        out: &mut impl RowSink<LeadRow>,
    ) -> Result<Option<String>> {
        let modified = self.cfg.properties.updated_at.as_str();
        let mut above: Option<u64> = None;
        loop {
            let mut filters = vec![
                json!({"propertyName": modified, "operator": "EQ", "value": at_ms.to_string()}),
            ];
            if let Some(id) = above {
                filters.push(
                    json!({"propertyName": OBJECT_ID, "operator": "GT", "value": id.to_string()}),
                );
            }
            let reached = match self
                .query(url, json!(filters), OBJECT_ID, pages, progress, out)
                .await?
            {
                QueryEnd::Done => return Ok(None),
                QueryEnd::DailyLimit(message) => return Ok(Some(message)),
                QueryEnd::Ceiling(reached) => reached,
            };
            match reached.id {
                Some(id) if above.is_none_or(|above| id > above) => above = Some(id),
                other => {
                    let text = |id: Option<u64>| {
                        id.map_or_else(|| "none".to_string(), |id| id.to_string())
                    };
                    return Err(self.ctx.protocol(
                        url,
                        format!(
                            "a search for {modified} = {at_ms} with {OBJECT_ID} > {} reached the {SEARCH_CEILING}-result ceiling, but the largest numeric id it returned is {}: it cannot be resumed",
                            text(above),
                            text(other),
                        ),
                    ));
                }
            }
        }
    }

    /// One search query (`filters` ANDed, ascending on `sort_by`) into `out`, page after
    /// page, until its cursor ends or it nears the ceiling with more to read.
    async fn query(
        &self,
        url: &str,
        filters: Value,
        sort_by: &str,
        pages: &mut u64,
        progress: &mut Progress,
        out: &mut impl RowSink<LeadRow>,
    ) -> Result<QueryEnd> {
        let limit = u64::from(self.cfg.search_page_size);
        let properties = self.cfg.properties.requested(&self.cfg.custom_properties);
        let mut reached = Reached::default();
        let mut after: Option<String> = None;
        loop {
            *pages += 1;
            let mut body = json!({
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort_by, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": limit,
            });
            if let Some(after) = &after {
                body["after"] = json!(after);
            }
            let request = self
                .ctx
                .http
                .inner()
                .post(url)
                .bearer_auth(self.token.expose())
                .json(&body);
            let sent: u64 = after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
            let cursors = DecodedOnce::default();
            let ours = |body: &[u8]| {
                cursors.clear();
                if let Some(skim) = search_page_belongs(body, sent, limit)? {
                    cursors.keep(body, skim);
                }
                Ok(())
            };
            let response = match self
                .fetch("hubspot/contacts_search", request, &ours)
                .await?
            {
                Fetched::Page(body) => body,
                Fetched::DailyLimit(message) => return Ok(QueryEnd::DailyLimit(message)),
            };
            let location = format!("contacts search page {pages}");
            // Follow the cursor even after a short or empty page; stop only without one.
            let skim = match cursors.take(&response) {
                Some(skim) => skim,
                None => self.peek(url, &response)?,
            };
            let total;
            (after, total) = skim.cursor;
            // A restart needs this page's newest date and largest id: decode it first.
            let mut one = InFlight::new();
            one.push_back((location, self.decode_on_a_thread(response, skim.proof)));
            let page = self.write_oldest(url, &mut one, progress, out).await?;
            reached.modified_ms = reached.modified_ms.max(page.modified_ms);
            reached.id = reached.id.max(page.id);
            let Some(next) = &after else {
                return Ok(QueryEnd::Done);
            };
            let offset: u64 = next.parse().map_err(|_| {
                self.ctx
                    .protocol(url, format!("search cursor `{next}` is not an offset"))
            })?;
            // Near the ceiling, and the query matches more than it can page through:
            // start a new query rather than ask for a page HubSpot refuses.
            if offset + limit > SEARCH_CEILING && total.is_none_or(|t| t > SEARCH_CEILING) {
                return Ok(QueryEnd::Ceiling(reached));
            }
        }
    }

    /// A page's cursor and total, and the proof that the skim reading them checked its
    /// nesting.
    fn peek(&self, url: &str, body: &[u8]) -> Result<Skim> {
        skim_page(body, None).map_err(|e| self.ctx.protocol(url, not_json(&e, body)))
    }

    /// Decode a page body on a blocking thread; `skimmed` spares it a second scan of its
    /// nesting when it is the proof of the skim of this very body.
    fn decode_on_a_thread(
        &self,
        body: Bytes,
        skimmed: SkimProof,
    ) -> JoinHandle<std::result::Result<ContactsDecoded, String>> {
        // Cheap: the resolved names are shared, only the member-order cache is per page.
        let mut index = self.index.clone();
        let hasher = self.ctx.hasher.clone();
        crate::background::spawn(move || {
            let checked = Checked::after_skim(&body, skimmed).map_err(|e| not_a_page(&e, &body))?;
            decode_page(&checked, &mut index, &hasher)
        })
    }

    /// Wait for the oldest page in flight and push its rows and rejects, in page order;
    /// returns how far the page reached (newest `lastmodifieddate`, largest id).
    async fn write_oldest(
        &self,
        url: &str,
        in_flight: &mut InFlight,
        progress: &mut Progress,
        out: &mut impl RowSink<LeadRow>,
    ) -> Result<Reached> {
        let Some((location, handle)) = in_flight.pop_front() else {
            return Ok(Reached::default());
        };
        let decoded = handle
            .await
            .map_err(|e| {
                self.ctx
                    .protocol(url, format!("{location}: decoding stopped: {e}"))
            })?
            .map_err(|message| self.ctx.protocol(url, format!("{location}: {message}")))?;
        let reached = decoded.write(out, &location).await?;
        progress.newest_ms = progress.newest_ms.max(reached.modified_ms);
        Ok(reached)
    }
}

/// Is this list page the one asked for: contacts of the list asked for (the live and the
/// archived list share one path, so the last live page served again would end the archived
/// sweep with no archived contact), and a cursor that moved on from `sent`?
fn list_page_belongs(
    body: &[u8],
    archived: bool,
    sent: Option<&str>,
) -> std::result::Result<Option<Skim>, String> {
    let Ok(skim) = skim_page(body, Some(archived)) else {
        return Ok(None);
    };
    if let Some(other) = skim.other_archived {
        return Err(format!(
            "it lists contacts with archived={other} for a request with archived={archived}"
        ));
    }
    answer::cursor_advanced(sent, skim.cursor.0.as_deref())?;
    Ok(Some(skim))
}

/// Is this search page the one asked for? Search cursors are offsets: the answer to a
/// request at offset `sent` points on to an offset after it and at most `limit` further
/// (the previous page again points to `sent`; a page of another query, e.g. the last page
/// of the query before a restart, points far beyond).
fn search_page_belongs(
    body: &[u8],
    sent: u64,
    limit: u64,
) -> std::result::Result<Option<Skim>, String> {
    let Ok(skim) = skim_page(body, None) else {
        return Ok(None);
    };
    match skim.cursor.0.as_deref().map(str::parse::<u64>) {
        Some(Ok(next)) if next <= sent || next > sent + limit => Err(format!(
            "its next offset {next} does not follow the requested offset {sent} (page size {limit})"
        )),
        _ => Ok(Some(skim)),
    }
}

/// HubSpot's classification: burst-policy 429s wait for the window (its length from
/// `X-HubSpot-RateLimit-Interval-Milliseconds`), a `DAILY` 429 is recorded in `daily` and
/// not retried, other 4xx (400 validation, 401 authentication, 403 scopes) are fatal, 5xx
/// retried.
fn verdict(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    daily: &Mutex<Option<String>>,
) -> Verdict {
    // A page is accepted as is: only an error body is worth parsing for its message.
    if status.is_success() {
        return Verdict::Accept;
    }
    let parsed: Value = crate::json::from_slice(body).unwrap_or(Value::Null);
    let message = parsed
        .get("message")
        .and_then(Value::as_str)
        // Redacted here: a daily-limit message also reaches the log and `_runs.warnings`.
        .map_or_else(|| body_excerpt(body), crate::normalize::redact_text);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let policy = parsed
            .get("policyName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if policy.eq_ignore_ascii_case("DAILY") {
            if let Ok(mut d) = daily.lock() {
                *d = Some(message.clone());
            }
            return Verdict::Fatal(format!("HTTP 429 daily limit: {message}"));
        }
        let window = headers
            .get("x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        return Verdict::RateLimited(
            retry_after(headers)
                .or(window)
                .or(Some(Duration::from_secs(10))),
        );
    }
    if status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT {
        let category = parsed
            .get("category")
            .and_then(Value::as_str)
            .unwrap_or("error");
        return Verdict::Fatal(format!("HTTP {}: {category}: {message}", status.as_u16()));
    }
    default_verdict(status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn burst_429_waits_for_the_window_daily_429_stops_4xx_is_fatal() {
        let fixture = |name: &str| {
            std::fs::read(format!(
                "{}/tests/fixtures/hubspot/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let daily = Mutex::new(None);
        let h = headers(&[("x-hubspot-ratelimit-interval-milliseconds", "10000")]);
        assert_eq!(
            verdict(
                StatusCode::TOO_MANY_REQUESTS,
                &h,
                &fixture("rate_limit_secondly.json"),
                &daily
            ),
            Verdict::RateLimited(Some(Duration::from_secs(10)))
        );
        assert!(daily.lock().unwrap().is_none());
        let v = verdict(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            &fixture("rate_limit_daily.json"),
            &daily,
        );
        assert!(matches!(v, Verdict::Fatal(m) if m.contains("daily")));
        assert!(
            daily
                .lock()
                .unwrap()
                .as_deref()
                .unwrap()
                .contains("daily limit")
        );
        let daily = Mutex::new(None);
        for (status, name) in [
            (StatusCode::UNAUTHORIZED, "error_401.json"),
            (StatusCode::BAD_REQUEST, "error_400_ceiling.json"),
        ] {
            let v = verdict(status, &HeaderMap::new(), &fixture(name), &daily);
            assert!(
                matches!(&v, Verdict::Fatal(m) if m.contains(&status.as_u16().to_string())),
                "{v:?}"
            );
        }
        assert_eq!(
            verdict(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"", &daily),
            Verdict::Retry(None)
        );
    }

    #[test]
    fn list_and_search_pages_of_other_requests_are_not_accepted() {
        let live = br#"{"results":[{"id":"1","archived":false}],"paging":{"next":{"after":"20"}}}"#;
        assert!(list_page_belongs(live, false, Some("10")).is_ok());
        // The live list's page for the archived sweep, or the page before again.
        assert!(list_page_belongs(live, true, None).is_err());
        assert!(list_page_belongs(live, false, Some("20")).is_err());
        let search =
            |after: &str| format!(r#"{{"results":[],"paging":{{"next":{{"after":"{after}"}}}}}}"#);
        assert!(search_page_belongs(search("200").as_bytes(), 0, 200).is_ok());
        assert!(search_page_belongs(search("400").as_bytes(), 200, 200).is_ok());
        assert!(search_page_belongs(search("200").as_bytes(), 200, 200).is_err());
        assert!(search_page_belongs(search("9800").as_bytes(), 0, 200).is_err());
        assert!(search_page_belongs(br#"{"results":[]}"#, 200, 200).is_ok());
    }
}
