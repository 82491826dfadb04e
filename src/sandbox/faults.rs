//! Fault injection for the sandbox: a profile of what goes wrong and how often — a share of
//! 500/502/503 answers, 429 storms with `Retry-After`, connection resets, bodies cut off
//! mid-stream, responses slower than the client's timeout, and a page served twice — applied
//! by a middleware in front of every vendor route. Malformed records are part of the data
//! ([`super::SandboxOptions::malformed_every`]), so a faulty run and a clean one serve the same
//! records.
//!
//! Which request gets which fault is a pure function of the profile's seed and the request's
//! sequence number, and the counts of every fault injected are kept, so a test can check that
//! its faults really happened.
//!
//! A profile is written as `key=value` pairs separated by commas, e.g.
//! `errors=0.1,storm=40x3,resets=0.05,truncate=0.05,slow=0.03,slow_ms=1500,repeat=0.05`;
//! `chaos` names a preset with all of them.
//!
//! Two hostile-body faults aim at one vendor (the first segment of its routes, e.g.
//! `hubspot`), every successful answer of it, and may be given more than once:
//! `deep=VENDOR` answers 200 with a page holding 100 e-mail addresses and nested 20,000
//! levels deep; `cut=VENDOR` answers 200 with the first half of the real page as the whole
//! body (its `Content-Length` matching, so no transport error reveals the cut).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What goes wrong, and how often (shares are per request, 0.0–1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultProfile {
    /// Seed of the per-request choices.
    pub seed: u64,
    /// Share of requests answered 500, 502 or 503 (in turn).
    pub errors: f64,
    /// Every `storm_every`-th request starts a storm of `storm_len` consecutive 429 answers
    /// with `Retry-After: 1` (0 = no storms).
    pub storm_every: u64,
    /// Length of a 429 storm.
    pub storm_len: u64,
    /// Share of requests whose connection is dropped before any response.
    pub resets: f64,
    /// Share of responses whose body is cut off halfway.
    pub truncate: f64,
    /// Share of responses delayed by `slow_ms` (set it beyond the client's timeout).
    pub slow: f64,
    /// Delay of a slow response.
    pub slow_ms: u64,
    /// Share of successful pages served a second time in place of the next page (the client
    /// then sees the same page twice, as when a vendor's cursor steps back).
    pub repeat: f64,
    /// Vendors whose successful answers are replaced by a deeply nested page.
    pub deep: Vec<String>,
    /// Vendors whose successful answers are cut in half, delivered as complete 200s.
    pub cut: Vec<String>,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            seed: 1,
            errors: 0.0,
            storm_every: 0,
            storm_len: 0,
            resets: 0.0,
            truncate: 0.0,
            slow: 0.0,
            slow_ms: 0,
            repeat: 0.0,
            deep: Vec::new(),
            cut: Vec::new(),
        }
    }
}

impl FaultProfile {
    /// Every fault at once, each often enough to happen in a small run.
    pub fn chaos() -> Self {
        FaultProfile {
            seed: 1,
            errors: 0.08,
            storm_every: 25,
            storm_len: 3,
            resets: 0.04,
            truncate: 0.04,
            slow: 0.03,
            slow_ms: 2_500,
            repeat: 0.05,
            deep: Vec::new(),
            cut: Vec::new(),
        }
    }

    /// Does this profile inject anything?
    pub fn is_active(&self) -> bool {
        self.errors > 0.0
            || (self.storm_every > 0 && self.storm_len > 0)
            || self.resets > 0.0
            || self.truncate > 0.0
            || (self.slow > 0.0 && self.slow_ms > 0)
            || self.repeat > 0.0
            || !self.deep.is_empty()
            || !self.cut.is_empty()
    }

    /// Parse `chaos`, `none`, or `key=value,…` (keys: seed, errors, storm=EVERYxLEN, resets,
    /// truncate, slow, slow_ms, repeat); `chaos,errors=0.2` starts from the preset.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut profile = FaultProfile::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "chaos" {
                profile = FaultProfile::chaos();
                continue;
            }
            if item == "none" {
                profile = FaultProfile::default();
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("fault `{item}` is not key=value"))?;
            let share = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| format!("fault `{key}` needs a share between 0 and 1"))
            };
            let int = || -> Result<u64, String> {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("fault `{key}` needs a whole number"))
            };
            match key {
                "seed" => profile.seed = int()?,
                "errors" => profile.errors = share()?,
                "resets" => profile.resets = share()?,
                "truncate" => profile.truncate = share()?,
                "slow" => profile.slow = share()?,
                "slow_ms" => profile.slow_ms = int()?,
                "repeat" => profile.repeat = share()?,
                "deep" => profile.deep.push(value.to_string()),
                "cut" => profile.cut.push(value.to_string()),
                "storm" => {
                    let (every, len) = value
                        .split_once('x')
                        .ok_or("fault `storm` is EVERYxLEN, e.g. 40x3")?;
                    profile.storm_every = every.parse().map_err(|_| "storm: bad EVERY")?;
                    profile.storm_len = len.parse().map_err(|_| "storm: bad LEN")?;
                }
                other => {
                    return Err(format!(
                        "unknown fault `{other}`; use errors, storm, resets, truncate, slow, slow_ms, repeat, deep, cut, seed or chaos"
                    ));
                }
            }
        }
        Ok(profile)
    }
}

/// How many of each fault were injected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FaultCounts {
    /// 500/502/503 answers.
    pub errors: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Dropped connections.
    pub resets: u64,
    /// Bodies cut off.
    pub truncated: u64,
    /// Slow responses.
    pub slow: u64,
    /// Pages served twice.
    pub repeated: u64,
    /// Hostile bodies served (`deep` and `cut`).
    pub hostile: u64,
}

/// A profile in force plus its bookkeeping; shared by the middleware.
#[derive(Debug)]
pub struct Faults {
    profile: FaultProfile,
    sequence: AtomicU64,
    storm_left: AtomicU64,
    counts: Mutex<FaultCounts>,
    /// The last page served per route, to serve it again.
    last_page: Mutex<HashMap<String, (Bytes, Option<header::HeaderValue>)>>,
}

impl Faults {
    /// Faults following `profile`.
    pub fn new(profile: FaultProfile) -> Arc<Self> {
        Arc::new(Faults {
            profile,
            sequence: AtomicU64::new(0),
            storm_left: AtomicU64::new(0),
            counts: Mutex::new(FaultCounts::default()),
            last_page: Mutex::new(HashMap::new()),
        })
    }

    /// The profile in force.
    pub fn profile(&self) -> &FaultProfile {
        &self.profile
    }

    /// What was injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut FaultCounts)) {
        if let Ok(mut c) = self.counts.lock() {
            f(&mut c);
        }
    }

    /// A uniform draw in [0, 1) for request `n` and fault `salt`.
    fn draw(&self, n: u64, salt: u64) -> f64 {
        let mut x = self
            .profile
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(n.wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(salt.wrapping_mul(0x94D0_49BB_1331_11EB));
        x ^= x >> 31;
        x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        x ^= x >> 27;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Fault {
    None,
    Error(StatusCode),
    RateLimited,
    Reset,
    Truncate,
    Slow,
    Repeat,
}

fn choose(faults: &Faults, n: u64) -> Fault {
    let p = &faults.profile;
    if p.storm_every > 0 && p.storm_len > 0 {
        if n > 0 && n.is_multiple_of(p.storm_every) {
            faults.storm_left.store(p.storm_len, Ordering::SeqCst);
        }
        let left = faults.storm_left.load(Ordering::SeqCst);
        if left > 0 {
            faults.storm_left.store(left - 1, Ordering::SeqCst);
            return Fault::RateLimited;
        }
    }
    if faults.draw(n, 1) < p.errors {
        let statuses = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
        ];
        return Fault::Error(statuses[(n % 3) as usize]);
    }
    if faults.draw(n, 2) < p.resets {
        return Fault::Reset;
    }
    if faults.draw(n, 3) < p.truncate {
        return Fault::Truncate;
    }
    if p.slow_ms > 0 && faults.draw(n, 4) < p.slow {
        return Fault::Slow;
    }
    if faults.draw(n, 5) < p.repeat {
        return Fault::Repeat;
    }
    Fault::None
}

/// A body that yields `head` and then fails, so the server drops the connection mid-body.
fn broken_body(head: Bytes) -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(head),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        )),
    ];
    Body::from_stream(futures::stream::iter(chunks))
}

/// A 200 page nested [`DEEP_LEVELS`] levels deep, holding 100 e-mail addresses before the
/// nesting starts (so a parser or a raw landing meets them first).
fn deep_page() -> Bytes {
    const DEEP_LEVELS: usize = 20_000;
    let contacts: Vec<String> = (1..=100)
        .map(|i| format!(r#"{{"id":"{i}","properties":{{"email":"jane.doe{i}@corp.example"}}}}"#))
        .collect();
    let mut body = format!(r#"{{"results":[{}],"paging":"#, contacts.join(","));
    body.push_str(&"[".repeat(DEEP_LEVELS));
    body.push_str(&"]".repeat(DEEP_LEVELS));
    body.push('}');
    Bytes::from(body)
}

/// Is a `deep` (`Some(true)`) or `cut` (`Some(false)`) fault aimed at `route`'s vendor?
fn hostile_fault(profile: &FaultProfile, route: &str) -> Option<bool> {
    let vendor = route
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if profile.deep.iter().any(|v| v == vendor) {
        Some(true)
    } else {
        profile.cut.iter().any(|v| v == vendor).then_some(false)
    }
}

/// The successful answer replaced by a hostile body.
async fn hostile(faults: &Faults, deep: bool, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = if deep {
        deep_page()
    } else {
        bytes.slice(..bytes.len() / 2)
    };
    faults.count(|c| c.hostile += 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The middleware: injects the profile's faults in front of the vendor routes.
pub(super) async fn inject(
    State(faults): State<Arc<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    let n = faults.sequence.fetch_add(1, Ordering::SeqCst);
    let route = request.uri().path().to_string();
    if let Some(deep) = hostile_fault(&faults.profile, &route) {
        return hostile(&faults, deep, request, next).await;
    }
    match choose(&faults, n) {
        Fault::None => {}
        Fault::Error(status) => {
            faults.count(|c| c.errors += 1);
            return (
                status,
                axum::Json(json!({"error": "sandbox_fault", "message": "injected server error"})),
            )
                .into_response();
        }
        Fault::RateLimited => {
            faults.count(|c| c.rate_limited += 1);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                axum::Json(json!({"error": "rate_limited", "message": "injected 429 storm"})),
            )
                .into_response();
        }
        Fault::Reset => {
            faults.count(|c| c.resets += 1);
            return Response::new(broken_body(Bytes::new()));
        }
        Fault::Slow => {
            faults.count(|c| c.slow += 1);
            tokio::time::sleep(Duration::from_millis(faults.profile.slow_ms)).await;
        }
        Fault::Truncate => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            faults.count(|c| c.truncated += 1);
            let mut parts = parts;
            parts.headers.remove(header::CONTENT_LENGTH);
            let head = bytes.slice(..bytes.len() / 2);
            return Response::from_parts(parts, broken_body(head));
        }
        Fault::Repeat => {
            let previous = faults
                .last_page
                .lock()
                .ok()
                .and_then(|mut l| l.remove(&route));
            if let Some((body, content_type)) = previous {
                faults.count(|c| c.repeated += 1);
                let mut response = Response::new(Body::from(body));
                if let Some(ct) = content_type {
                    response.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                return response;
            }
        }
    }
    let response = next.run(request).await;
    if faults.profile.repeat <= 0.0 || !response.status().is_success() {
        return response;
    }
    // Keep this page so a later request on the same route can be answered with it again.
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(mut last) = faults.last_page.lock() {
        last.insert(
            route,
            (
                bytes.clone(),
                parts.headers.get(header::CONTENT_TYPE).cloned(),
            ),
        );
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles() {
        assert_eq!(FaultProfile::parse("chaos").unwrap(), FaultProfile::chaos());
        let p =
            FaultProfile::parse("errors=0.2,storm=10x4,repeat=0.1,slow=0.5,slow_ms=900").unwrap();
        assert_eq!(
            (p.errors, p.storm_every, p.storm_len, p.repeat),
            (0.2, 10, 4, 0.1)
        );
        assert_eq!((p.slow, p.slow_ms), (0.5, 900));
        assert!(FaultProfile::parse("errors=2").is_err());
        assert!(FaultProfile::parse("bogus=1").is_err());
        assert!(!FaultProfile::parse("none").unwrap().is_active());
        let p = FaultProfile::parse("deep=hubspot,deep=typeform,cut=surveymonkey").unwrap();
        assert_eq!((p.deep.len(), p.cut.len()), (2, 1));
        assert_eq!(hostile_fault(&p, "/typeform/forms/x/responses"), Some(true));
        assert_eq!(hostile_fault(&p, "/surveymonkey/v3/surveys"), Some(false));
        assert_eq!(hostile_fault(&p, "/meta/v21.0/act_1/insights"), None);
    }

    #[test]
    fn draws_are_deterministic_and_follow_the_share() {
        let faults = Faults::new(FaultProfile {
            errors: 0.25,
            ..FaultProfile::default()
        });
        let hits = (0..4000).filter(|&n| faults.draw(n, 1) < 0.25).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert_eq!(faults.draw(7, 1), faults.draw(7, 1));
    }
}
