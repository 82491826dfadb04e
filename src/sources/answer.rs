//! Does a 200 answer belong to the request it came back for? A cache, a load balancer or
//! the vendor itself may hand back an answer meant for another request — the previous page
//! again, or the last page of the previous date chunk — with a 200 and a well-formed body.
//! Taken at face value, it ends a date chunk early or repeats a page in place of the next
//! one, and whole days of data go missing with no error. Every paged vendor therefore says
//! what in an answer ties it to its request (the dates of its rows, the cursor it advanced
//! from, the object its records are of) and [`checked`] turns a mismatch into a retry verdict
//! of the shared HTTP loop: the answer is asked for again, never landed and never used. On
//! replay the same check runs over each recorded page ([`super::pages::Pages`] classifies a
//! replayed body as a 200), so a recording with pages out of place is an error.

use std::sync::Mutex;

use chrono::NaiveDate;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::SourceContext;
use crate::http::Verdict;

/// A vendor's classification of responses (what the shared HTTP loop calls).
pub type Classify<'a> = dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync + 'a;

/// `classify`, except that a 2xx answer `belongs` finds is not this request's answer is
/// retried (it is counted as a retry and never landed). `belongs` sees the raw body and
/// should pass what it cannot parse: the source's own parsing reports a broken body.
pub fn checked<'a>(
    ctx: &'a SourceContext,
    endpoint: &'a str,
    classify: &'a Classify<'a>,
    belongs: impl Fn(&[u8]) -> Result<(), String> + Sync + 'a,
) -> impl Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync + 'a {
    move |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
        if status.is_success()
            && let Err(why) = belongs(body)
        {
            tracing::warn!(source = %ctx.source_name, endpoint, %why,
                "an answer is not this request's (a repeated or stale page); asking again");
            return Verdict::Retry(None);
        }
        classify(status, headers, body)
    }
}

/// `Err` when `days` (`YYYY-MM-DD…`; longer timestamps are cut to their date) has days but
/// none inside `from..=to`: such rows are another date range's, the answer another
/// request's. One odd date among rows of the range is a bad record, not a stale answer: it
/// is left to normalization, which rejects or keeps it with a reason.
pub fn days_within<'d>(
    days: impl IntoIterator<Item = &'d str>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), String> {
    let (first, last) = (from.to_string(), to.to_string());
    let mut outside = None;
    for day in days {
        let day = day.get(..10).unwrap_or(day);
        if day < first.as_str() || day > last.as_str() {
            outside.get_or_insert_with(|| day.to_string());
        } else {
            return Ok(());
        }
    }
    match outside {
        Some(day) => Err(format!(
            "its rows are dated outside the requested {from}..{to} (e.g. {day})"
        )),
        None => Ok(()),
    }
}

/// `Err` when the answer to a request sent with cursor `sent` points on to that same cursor:
/// it is the page before again (the answer to "after X" cannot end at X).
pub fn cursor_advanced(sent: Option<&str>, next: Option<&str>) -> Result<(), String> {
    match (sent, next) {
        (Some(sent), Some(next)) if sent == next => Err(
            "its next cursor is the one this request was sent with: the previous page again"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// Remembers the last answer a source used, for answers that carry nothing naming their
/// request (LinkedIn's analytics elements name campaigns, not the account; an empty page
/// names nothing at all). An answer that is byte for byte the previous, different request's
/// is that answer served again: one with rows is never accepted; an empty one is asked for
/// once more and believed when it comes back the same (two requests may both have nothing).
#[derive(Debug, Default)]
pub struct LastAnswer {
    state: Mutex<LastState>,
}

#[derive(Debug, Default)]
struct LastState {
    /// The request key and body hash of the last answer used.
    last: Option<(String, u64)>,
    /// An empty answer already asked for again once: request key and body hash.
    doubted: Option<(String, u64)>,
}

/// How answers are hashed. Every spend page is (a year of a large Google Ads account is tens
/// of MB), where SipHash took a third of a percent of a spend-heavy run; aHash reads them
/// several times faster. Fixed seeds: the hashes are only compared within the run.
const ANSWER_HASH: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// A 64-bit hash of a whole answer.
fn hash_of(body: &[u8]) -> u64 {
    ANSWER_HASH.hash_one(body)
}

impl LastAnswer {
    /// `Err` when `body`, the answer to the request `request` (any key naming it), repeats
    /// the previous, different request's answer; `has_data` tells an answer with rows from
    /// an empty one.
    pub fn check(&self, request: &str, body: &[u8], has_data: bool) -> Result<(), String> {
        let hash = hash_of(body);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let repeated =
            matches!(&state.last, Some((previous, h)) if *h == hash && previous != request);
        if !repeated {
            return Ok(());
        }
        if has_data {
            return Err(
                "it is byte for byte the answer to the previous, different request".to_string(),
            );
        }
        let asked_again = Some((request.to_string(), hash));
        if state.doubted == asked_again {
            return Ok(());
        }
        state.doubted = asked_again;
        Err(
            "it is empty and byte for byte the answer to the previous, different request; asking once more"
                .to_string(),
        )
    }

    /// Remember `body` as the answer to `request` (once it was accepted and used).
    pub fn accepted(&self, request: &str, body: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.last = Some((request.to_string(), hash_of(body)));
        state.doubted = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn rows_of_another_date_range_do_not_belong() {
        let (from, to) = (d("2026-10-01"), d("2026-10-31"));
        assert!(days_within(["2026-10-01", "2026-10-31T00:00:00Z"], from, to).is_ok());
        let err = days_within(["2026-09-29", "2026-09-30"], from, to).unwrap_err();
        assert!(err.contains("2026-09-29"), "{err}");
        // One odd date among the range's rows is a bad record, for normalization.
        assert!(days_within(["2026-10-05", "9999-01-01"], from, to).is_ok());
        assert!(days_within([], from, to).is_ok());
    }

    #[test]
    fn a_cursor_that_does_not_advance_is_the_previous_page() {
        assert!(cursor_advanced(None, Some("a")).is_ok());
        assert!(cursor_advanced(Some("a"), Some("b")).is_ok());
        assert!(cursor_advanced(Some("a"), None).is_ok());
        assert!(cursor_advanced(Some("a"), Some("a")).is_err());
    }

    #[test]
    fn the_same_answer_to_another_request_is_stale() {
        let last = LastAnswer::default();
        assert!(last.check("a", b"{\"rows\":[1]}", true).is_ok());
        last.accepted("a", b"{\"rows\":[1]}");
        // The same request may be answered the same again (a retry), an empty answer too.
        assert!(last.check("a", b"{\"rows\":[1]}", true).is_ok());
        assert!(last.check("b", b"{\"rows\":[]}", false).is_ok());
        assert!(last.check("b", b"{\"rows\":[1]}", true).is_err());
        assert!(last.check("b", b"{\"rows\":[1]}", true).is_err());
        assert!(last.check("b", b"{\"rows\":[2]}", true).is_ok());
        // An empty answer the same as the previous request's: asked once more, then believed.
        last.accepted("b", b"{\"rows\":[]}");
        assert!(last.check("c", b"{\"rows\":[]}", false).is_err());
        assert!(last.check("c", b"{\"rows\":[]}", false).is_ok());
    }
}
