//! A page decoded once, by the check that it answers its request. Whether a 200 belongs
//! to its request ([`super::answer::checked`]) is read from its rows (their dates, the
//! cursor), so that check has to parse the page; [`DecodedOnce`] lets it decode the page
//! whole there and hands the result to the caller once the shared HTTP loop has accepted
//! the same body, instead of the caller parsing it a second time.

use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::SourceContext;
use super::answer::{self, Classify};
use crate::http::Verdict;

/// What the classification decoded from the last body it judged, for the caller.
#[derive(Debug)]
pub(crate) struct DecodedOnce<T> {
    kept: Mutex<Option<Kept<T>>>,
}

/// A decoded body, and which bytes it came from (their address and length).
#[derive(Debug)]
struct Kept<T> {
    at: usize,
    len: usize,
    value: T,
}

impl<T> Default for DecodedOnce<T> {
    fn default() -> Self {
        DecodedOnce {
            kept: Mutex::new(None),
        }
    }
}

impl<T: Send> DecodedOnce<T> {
    /// `classify`, checked as [`answer::checked`] checks it, with `decode` as the check: it
    /// gets each 2xx body and returns `Err(why)` when the body is not this request's answer
    /// (retried), else the decoded page, kept for [`DecodedOnce::take`]. Whatever was kept
    /// is dropped as the next response is judged, so only the last one judged is kept:
    /// the body the loop hands back.
    pub(crate) fn checked<'a>(
        &'a self,
        ctx: &'a SourceContext,
        endpoint: &'a str,
        classify: &'a Classify<'a>,
        decode: impl Fn(&[u8]) -> Result<T, String> + Sync + 'a,
    ) -> impl Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync + 'a {
        let judged = answer::checked(ctx, endpoint, classify, move |body: &[u8]| {
            self.keep(body, decode(body)?);
            Ok(())
        });
        move |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
            self.clear();
            judged(status, headers, body)
        }
    }

    /// Keep `value`, decoded from `body`, for [`DecodedOnce::take`]: for a check called
    /// with each answer it accepts by a loop that [`DecodedOnce::checked`] does not wrap.
    pub(crate) fn keep(&self, body: &[u8], value: T) {
        *self.lock() = Some(Kept {
            at: body.as_ptr() as usize,
            len: body.len(),
            value,
        });
    }

    /// Forget what was kept: a check that keeps only some bodies' values calls it first, so
    /// that what is kept always comes from the last body judged.
    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    /// What was decoded from `body` (the accepted answer) while it was judged; `None`
    /// when it was not (an error body the vendor's verdict accepts, such as Meta's code 1).
    pub(crate) fn take(&self, body: &[u8]) -> Option<T> {
        let kept = self.lock().take()?;
        (kept.at == body.as_ptr() as usize && kept.len == body.len()).then_some(kept.value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Kept<T>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SourceContext {
        SourceContext::for_test(
            "s",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
            crate::state::SourceState::default(),
        )
    }

    #[test]
    fn only_the_last_body_judged_is_handed_back() {
        let ctx = ctx();
        let once = DecodedOnce::<usize>::default();
        let classify = once.checked(&ctx, "e", &crate::http::default_verdict, |body| {
            if body == b"stale" {
                Err("stale".to_string())
            } else {
                Ok(body.len())
            }
        });
        let (ok, headers) = (StatusCode::OK, HeaderMap::new());
        let first = b"first page".to_vec();
        assert_eq!(classify(ok, &headers, &first), Verdict::Accept);
        assert_eq!(
            classify(ok, &headers, b"stale"),
            Verdict::Retry(None),
            "not this request's answer"
        );
        // A stale answer judged after it: nothing is kept, for any body.
        assert_eq!(once.take(&first), None);
        assert_eq!(classify(ok, &headers, &first), Verdict::Accept);
        // Another buffer with the same bytes is not the body judged.
        assert_eq!(once.take(&first.clone()), None);
        assert_eq!(classify(ok, &headers, &first), Verdict::Accept);
        assert_eq!(once.take(&first), Some(first.len()));
        assert_eq!(once.take(&first), None, "taken once");
        // An error status is not decoded, and drops what the previous attempt kept.
        assert_eq!(classify(ok, &headers, &first), Verdict::Accept);
        let error = classify(StatusCode::SERVICE_UNAVAILABLE, &headers, &first);
        assert_eq!(error, Verdict::Retry(None));
        assert_eq!(once.take(&first), None);
    }
}
