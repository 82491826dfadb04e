//! The shared HTTP client every source pulls through: rustls, connect and request timeouts,
//! retries with exponential backoff and full jitter on 429 / 5xx / connection errors
//! (honouring `Retry-After`), a bounded number of attempts, per-source request counts, and
//! URLs redacted (no query string, no credentials) wherever they reach an error or a log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Per-source HTTP settings (`[sources.http]` in a job file).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Seconds for a whole request, body included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per request, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First backoff in milliseconds; doubles per retry, with full jitter.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest single wait in seconds (backoff or `Retry-After`); a longer `Retry-After`
    /// fails the request rather than stall the run.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Seconds to wait after a rate-limit answer that names no wait of its own (no
    /// `Retry-After`, no vendor header): a vendor's window, not a backoff step.
    #[serde(default = "default_rate_limit_wait_secs")]
    pub rate_limit_wait_secs: u64,
}

fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_timeout_secs() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    5
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_secs() -> u64 {
    120
}
/// A minute: the window most vendors count in (SurveyMonkey's minute limit, Google's and
/// LinkedIn's per-minute quotas, Salesforce's token endpoint).
fn default_rate_limit_wait_secs() -> u64 {
    60
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout_secs: default_connect_timeout_secs(),
            timeout_secs: default_timeout_secs(),
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_secs: default_max_backoff_secs(),
            rate_limit_wait_secs: default_rate_limit_wait_secs(),
        }
    }
}

impl HttpSettings {
    /// `(key, problem)` pairs for out-of-range values.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.max_attempts == 0 || self.max_attempts > 20 {
            problems.push(("http", "max_attempts must be between 1 and 20".to_string()));
        }
        if self.rate_limit_wait_secs == 0 {
            problems.push((
                "http",
                "rate_limit_wait_secs must be at least 1".to_string(),
            ));
        }
        if self.timeout_secs == 0 || self.connect_timeout_secs == 0 {
            problems.push(("http", "timeouts must be at least 1 second".to_string()));
        }
        problems
    }
}

/// Counters for one source, shared with the run report and the progress display.
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: AtomicU64,
    pages: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
    /// Tasks of this source now waiting on a rate limit (see [`HttpStats::rate_limit_wait`]).
    rate_waiters: AtomicU64,
    /// Why the latest wait began ([`RateWait`] as a number).
    rate_wait_kind: AtomicU8,
    /// When the latest wait ends, Unix milliseconds; 0 while it lasts until an answer comes.
    rate_wait_until_ms: AtomicU64,
    /// Milliseconds spent in finished waits.
    rate_waited_ms: AtomicU64,
}

/// Why a source is waiting rather than sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateWait {
    /// The job's own `rate_limit` window for the source is full.
    Window,
    /// The vendor said the source is sending too fast (HTTP 429, or its own throttling
    /// error) and the request is retried after the wait it asked for.
    Vendor,
}

impl RateWait {
    /// A short name for logs: `rate_limit` or `vendor_rate_limit`.
    pub fn as_str(self) -> &'static str {
        match self {
            RateWait::Window => "rate_limit",
            RateWait::Vendor => "vendor_rate_limit",
        }
    }
}

/// A wait on a rate limit in progress, as the progress display shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Why.
    pub why: RateWait,
    /// How long it still lasts, when known.
    pub remaining: Option<Duration>,
}

/// Marks a source as waiting on a rate limit until dropped.
#[derive(Debug)]
#[must_use = "the source counts as waiting until the guard is dropped"]
pub struct RateWaitGuard<'a> {
    stats: &'a HttpStats,
    started: std::time::Instant,
}

impl Drop for RateWaitGuard<'_> {
    fn drop(&mut self) {
        self.stats.rate_waited_ms.fetch_add(
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.stats.rate_waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl HttpStats {
    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Responses accepted (pages received), for progress.
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }
    /// Requests that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// Response body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Say that a task of this source waits on a rate limit (for `wait`, when known) until
    /// the returned guard is dropped; the progress display shows it meanwhile.
    pub fn rate_limit_wait(&self, why: RateWait, wait: Option<Duration>) -> RateWaitGuard<'_> {
        let until = wait.map_or(0, |w| unix_ms(std::time::SystemTime::now() + w));
        self.rate_wait_kind.store(why as u8, Ordering::Relaxed);
        self.rate_wait_until_ms.store(until, Ordering::Relaxed);
        self.rate_waiters.fetch_add(1, Ordering::Relaxed);
        RateWaitGuard {
            stats: self,
            started: std::time::Instant::now(),
        }
    }

    /// The wait on a rate limit going on now, if any.
    pub fn rate_limited(&self) -> Option<RateLimited> {
        if self.rate_waiters.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let why = if self.rate_wait_kind.load(Ordering::Relaxed) == RateWait::Vendor as u8 {
            RateWait::Vendor
        } else {
            RateWait::Window
        };
        let until = self.rate_wait_until_ms.load(Ordering::Relaxed);
        let remaining = (until > 0).then(|| {
            Duration::from_millis(until.saturating_sub(unix_ms(std::time::SystemTime::now())))
        });
        Some(RateLimited { why, remaining })
    }

    /// Time spent in finished waits on rate limits.
    pub fn rate_limit_waited(&self) -> Duration {
        Duration::from_millis(self.rate_waited_ms.load(Ordering::Relaxed))
    }
}

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Use it.
    Accept,
    /// Try again, after this long if the server said so.
    Retry(Option<Duration>),
    /// The vendor's rate limit: wait as long as it said, or, when it said nothing, the
    /// source's `rate_limit_wait_secs` — never a short backoff that would spend every
    /// attempt inside the same window.
    RateLimited(Option<Duration>),
    /// Give up with this explanation (no secrets in it).
    Fatal(String),
}

/// The default classification: 2xx accepted; 429 rate-limited (waiting `Retry-After` or
/// the rate-limit window); 408 and 5xx retried (after `Retry-After` when present);
/// anything else fatal with the vendor's message.
pub fn default_verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        Verdict::Accept
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::RateLimited(retry_after(headers))
    } else if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Verdict::Retry(retry_after(headers))
    } else {
        Verdict::Fatal(format!("HTTP {}: {}", status.as_u16(), body_excerpt(body)))
    }
}

/// `Retry-After` as seconds (the form vendors send; an HTTP date is also accepted).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .ok()?;
    Some(wait)
}

/// The first 300 characters of a body, on one line, for error messages, with e-mail-like
/// tokens and the values of personal keys (respondent ids) redacted: a body that is not
/// JSON cannot be scrubbed as a tree, and an error travels to logs and `_runs`. Only the
/// body's first few KiB are read: an excerpt of a megabyte page costs no more than of a
/// short one.
pub fn body_excerpt(body: &[u8]) -> String {
    const SHOWN: usize = 300;
    let mut read = &body[..body.len().min(SHOWN * 16)];
    if read.len() < body.len() {
        // The window may end inside an e-mail address, before its `@`: drop its last word.
        let keep = read
            .iter()
            .rposition(|b| b.is_ascii_whitespace() || b"\",;<>()[]{}".contains(b))
            .map_or(0, |p| p + 1);
        read = &read[..keep];
    }
    let text = crate::normalize::redact_text(&String::from_utf8_lossy(read));
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None if read.len() < body.len() => format!("{one_line}…"),
        None => one_line,
    }
}

/// `scheme://host[:port]/path` of a URL: no query string (tokens hide there), no user info.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// A response body that was accepted.
#[derive(Debug)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// One source's HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    source_name: String,
    client: reqwest::Client,
    settings: HttpSettings,
    stats: Arc<HttpStats>,
}

impl HttpClient {
    /// A client for the source named `source_name`.
    pub fn new(source_name: &str, settings: &HttpSettings) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.timeout_secs))
            .user_agent(concat!("funnelhouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                let e = e.without_url();
                Error::Http {
                    source_name: source_name.to_string(),
                    url: String::new(),
                    message: format!("cannot build the HTTP client: {e}"),
                    status: None,
                    source: Some(Box::new(e)),
                }
            })?;
        Ok(HttpClient {
            source_name: source_name.to_string(),
            client,
            settings: settings.clone(),
            stats: Arc::new(HttpStats::default()),
        })
    }

    /// The underlying client, to start building a request.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// This source's counters.
    pub fn stats(&self) -> Arc<HttpStats> {
        Arc::clone(&self.stats)
    }

    /// Send with the default classification.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse> {
        self.send_classified(request, &default_verdict).await
    }

    /// Send `request`, retrying as `classify` says, until it is accepted, is fatal, or the
    /// attempts run out.
    pub async fn send_classified(
        &self,
        request: reqwest::RequestBuilder,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
    ) -> Result<HttpResponse> {
        let request = request.build().map_err(|e| {
            let e = e.without_url();
            self.error_caused_by("", e.to_string(), None, Some(Box::new(e)))
        })?;
        let url = redact_url(request.url());
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let this_try = request
                .try_clone()
                .ok_or_else(|| self.error(&url, "request body cannot be retried".into(), None))?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            // Accepted and fatal responses return here; anything else is a failed attempt.
            let (message, server_wait, status): (String, Option<Duration>, Option<StatusCode>) =
                match self.client.execute(this_try).await {
                    Ok(response) => {
                        let status = response.status();
                        let headers = response.headers().clone();
                        match response.bytes().await {
                            Ok(body) => {
                                self.stats
                                    .bytes
                                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                                match classify(status, &headers, &body) {
                                    Verdict::Accept => {
                                        self.stats.pages.fetch_add(1, Ordering::Relaxed);
                                        return Ok(HttpResponse {
                                            status,
                                            headers,
                                            body,
                                        });
                                    }
                                    Verdict::Fatal(message) => {
                                        return Err(self.error(&url, message, Some(status)));
                                    }
                                    // A 2xx retried is a data page that is not this
                                    // request's answer: its body is records, never quoted.
                                    Verdict::Retry(wait) if status.is_success() => (
                                        format!(
                                            "HTTP {}: the answer is not this request's (a repeated or stale page)",
                                            status.as_u16()
                                        ),
                                        wait,
                                        Some(status),
                                    ),
                                    Verdict::Retry(wait) => (
                                        format!(
                                            "HTTP {}: {}",
                                            status.as_u16(),
                                            body_excerpt(&body)
                                        ),
                                        wait,
                                        Some(status),
                                    ),
                                    Verdict::RateLimited(wait) => (
                                        format!(
                                            "HTTP {} (rate limited): {}",
                                            status.as_u16(),
                                            body_excerpt(&body)
                                        ),
                                        Some(wait.unwrap_or_else(|| self.rate_limit_wait())),
                                        Some(status),
                                    ),
                                }
                            }
                            Err(e) => (
                                format!("body cut off: {}", e.without_url()),
                                None,
                                Some(status),
                            ),
                        }
                    }
                    Err(e) => (describe_transport_error(&e), None, None),
                };
            if attempt >= self.settings.max_attempts {
                return Err(self.error(
                    &url,
                    format!("gave up after {attempt} attempts; last: {message}"),
                    status,
                ));
            }
            let max_wait = Duration::from_secs(self.settings.max_backoff_secs);
            let wait = match server_wait {
                Some(wait) if wait > max_wait => {
                    return Err(self.error(
                        &url,
                        format!(
                            "rate limited for {}s, longer than max_backoff_secs ({}); last: {message}",
                            wait.as_secs(),
                            self.settings.max_backoff_secs
                        ),
                        status,
                    ));
                }
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            tracing::warn!(source = %self.source_name, %url, attempt, wait_ms = wait.as_millis() as u64, %message, "retrying request");
            // A 429, or another 4xx the vendor's classifier retries (Meta's throttling codes
            // come as 400), is the vendor's rate limit: the progress display says so.
            let throttled = status.is_some_and(|s| {
                s == StatusCode::TOO_MANY_REQUESTS
                    || (s.is_client_error() && s != StatusCode::REQUEST_TIMEOUT)
            });
            let _waiting =
                throttled.then(|| self.stats.rate_limit_wait(RateWait::Vendor, Some(wait)));
            tokio::time::sleep(wait).await;
        }
    }

    /// The wait after a rate limit that named none: the source's window, within the
    /// longest wait allowed.
    fn rate_limit_wait(&self) -> Duration {
        Duration::from_secs(
            self.settings
                .rate_limit_wait_secs
                .clamp(1, self.settings.max_backoff_secs.max(1)),
        )
    }

    /// Full-jitter exponential backoff for the given attempt (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.initial_backoff_ms.max(1);
        let cap_ms = self.settings.max_backoff_secs.saturating_mul(1000).max(1);
        let exp = base
            .saturating_mul(1u64 << (attempt - 1).min(20))
            .min(cap_ms);
        Duration::from_millis(jitter(exp))
    }

    fn error(&self, url: &str, message: String, status: Option<StatusCode>) -> Error {
        self.error_caused_by(url, message, status, None)
    }

    fn error_caused_by(
        &self,
        url: &str,
        message: String,
        status: Option<StatusCode>,
        source: Option<crate::error::Cause>,
    ) -> Error {
        Error::Http {
            source_name: self.source_name.clone(),
            url: url.to_string(),
            // A vendor's own message may name a person (`contact jane@… exists`).
            message: crate::normalize::redact_text(&message),
            status: status.map(|s| s.as_u16()),
            source,
        }
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    // `without_url` keeps token-bearing query strings out of the message.
    let mut message = format!("{kind}: {}", clone_without_url(e));
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    message
}

fn clone_without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), &redact_url(url)),
        None => text,
    }
}

/// A uniformly random value in `0..=max` (full jitter), from a cheap process-local generator.
fn jitter(max: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 finalizer
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z % (max + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_line_and_cut_at_300_characters() {
        assert_eq!(
            body_excerpt(b"  <html>\n  <b>Bad\tgateway</b> "),
            "<html> <b>Bad gateway</b>"
        );
        let long = "é".repeat(400);
        assert_eq!(
            body_excerpt(long.as_bytes()),
            format!("{}…", "é".repeat(300))
        );
        // A huge body is read only as far as its excerpt needs.
        let mut huge = b"{\"message\": \"quota\"}".to_vec();
        huge.resize(1_000_000, b' ');
        assert_eq!(body_excerpt(&huge), "{\"message\": \"quota\"}…");
        assert_eq!(body_excerpt(b"\xff ok"), "\u{fffd} ok");
    }

    #[test]
    fn excerpts_never_quote_emails_or_respondent_ids() {
        let body = br#"{"results":[{"respondent_id":"R-1001","answers":[{"email":"jane.doe@corp.example"}]},{"note":"ask bob@corp.example"#;
        let excerpt = body_excerpt(body);
        for leak in ["R-1001", "jane", "bob"] {
            assert!(!excerpt.contains(leak), "{excerpt}");
        }
        // An address cut by the excerpt's window is not shown in part either.
        let mut long = vec![b' '; 300 * 16 - 4];
        long.extend_from_slice(b"jane.doe@corp.example");
        assert!(
            !body_excerpt(&long).contains("jane"),
            "{}",
            body_excerpt(&long)
        );
    }

    #[test]
    fn redaction_drops_query_and_credentials() {
        let url = reqwest::Url::parse(
            "https://user:pw@graph.example.com:8443/v1/x?access_token=SECRET&a=1",
        )
        .unwrap();
        assert_eq!(redact_url(&url), "https://graph.example.com:8443/v1/x");
    }

    #[test]
    fn verdicts_follow_status_and_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            default_verdict(StatusCode::OK, &headers, b""),
            Verdict::Accept
        );
        assert_eq!(
            default_verdict(StatusCode::BAD_GATEWAY, &headers, b""),
            Verdict::Retry(None)
        );
        assert_eq!(
            default_verdict(StatusCode::TOO_MANY_REQUESTS, &headers, b""),
            Verdict::RateLimited(None)
        );
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            default_verdict(StatusCode::TOO_MANY_REQUESTS, &headers, b""),
            Verdict::RateLimited(Some(Duration::from_secs(3)))
        );
        assert!(matches!(
            default_verdict(StatusCode::UNAUTHORIZED, &headers, b"{\"message\":\"bad token\"}"),
            Verdict::Fatal(m) if m.contains("401") && m.contains("bad token")
        ));
    }

    #[test]
    fn a_rate_limit_wait_shows_until_it_ends_and_is_added_up() {
        let stats = HttpStats::default();
        assert_eq!(stats.rate_limited(), None);
        {
            let _window = stats.rate_limit_wait(RateWait::Window, None);
            assert_eq!(
                stats.rate_limited(),
                Some(RateLimited {
                    why: RateWait::Window,
                    remaining: None
                })
            );
            let _vendor = stats.rate_limit_wait(RateWait::Vendor, Some(Duration::from_secs(30)));
            let now = stats.rate_limited().expect("waiting");
            assert_eq!(now.why, RateWait::Vendor);
            let left = now.remaining.expect("a known end");
            assert!(left > Duration::from_secs(28) && left <= Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(stats.rate_limited(), None);
        assert!(stats.rate_limit_waited() >= Duration::from_millis(40));
    }

    /// Serves `answers` (raw HTTP responses) one connection each on 127.0.0.1.
    async fn serve(answers: Vec<&'static str>) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    /// What the source's progress shows half a second into a request whose first answer
    /// is `first` (retried after one second), and the response in the end.
    async fn seen_while_retrying(first: &'static str) -> Option<RateLimited> {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let addr = serve(vec![first, ok]).await;
        let client = HttpClient::new("t", &HttpSettings::default()).expect("client");
        let stats = client.stats();
        let send = client.send(client.inner().get(format!("http://{addr}/x")));
        let watch = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            stats.rate_limited()
        };
        let (response, seen) = tokio::join!(send, watch);
        assert_eq!(response.expect("retried to success").status, StatusCode::OK);
        assert_eq!(stats.rate_limited(), None, "no longer waiting");
        seen
    }

    #[tokio::test]
    async fn a_429_wait_shows_as_the_vendors_rate_limit_and_a_503_wait_does_not() {
        let seen = seen_while_retrying(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("the 429 wait is visible");
        assert_eq!(seen.why, RateWait::Vendor);
        assert!(
            seen.remaining
                .is_some_and(|r| r <= Duration::from_millis(600)),
            "{seen:?}"
        );
        let seen = seen_while_retrying(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(seen, None, "an outage is not a rate limit");
    }

    #[test]
    fn jitter_stays_in_range() {
        for max in [0, 1, 10, 1000] {
            for _ in 0..100 {
                assert!(jitter(max) <= max);
            }
        }
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_keeps_the_http_librarys_error_as_its_cause() {
        let client = HttpClient::new("t", &HttpSettings::default()).expect("client");
        let err = client
            .send(client.inner().get("http://[not a host/x"))
            .await
            .expect_err("an unparsable URL cannot be sent");
        assert_eq!(client.stats().requests(), 0, "nothing was sent");
        let cause = std::error::Error::source(&err).expect("the cause is kept");
        assert!(
            cause.downcast_ref::<reqwest::Error>().is_some(),
            "{cause:?}"
        );
    }
}
