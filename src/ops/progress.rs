//! Per-source progress while a run pulls: pages, records, bytes and rate, and whether the
//! source is waiting on a rate limit (its own `rate_limit` window, or the vendor's 429) —
//! a pull that has slowed to the limit says so instead of looking stuck. On a terminal
//! each source gets an indicatif line that redraws in place (log lines are printed above the
//! bars, never through them); anywhere else — a pod, a systemd journal, a test — a plain
//! `progress` log line every few seconds, so a long pull still shows it is moving.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::Instrument;

use crate::http::{HttpStats, RateWait};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// indicatif bars on stderr (an interactive terminal).
    Bars,
    /// A `progress` log line per source every [`line_interval`].
    Lines,
    /// Nothing beyond the start and end lines.
    Off,
}

/// Default period of the plain progress lines.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);
/// Sets another period of the plain progress lines, in seconds.
pub const LINE_INTERVAL_ENV: &str = "FUNNELHOUSE_PROGRESS_SECS";

/// Period of the plain progress lines: `FUNNELHOUSE_PROGRESS_SECS` (a positive number of
/// seconds) or [`LINE_INTERVAL`].
pub fn line_interval() -> Duration {
    std::env::var(LINE_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(LINE_INTERVAL, Duration::from_secs_f64)
}
/// Redraw period of the bars.
const BAR_INTERVAL: Duration = Duration::from_millis(200);

static MODE: OnceLock<ProgressMode> = OnceLock::new();
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Choose the mode once, at start-up (the binary does; library users get `Lines`).
pub fn init(mode: ProgressMode) {
    MODE.set(mode).ok();
}

/// The mode in force.
pub fn mode() -> ProgressMode {
    MODE.get().copied().unwrap_or(ProgressMode::Lines)
}

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A `tracing` writer for stderr that hides the bars while a log line is printed, so
/// lines and bars never interleave on the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if mode() == ProgressMode::Bars {
            bars().suspend(|| std::io::stderr().write(buf))
        } else {
            std::io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// The live counters of one source's pull.
#[derive(Debug, Clone)]
pub struct SourceCounters {
    /// The HTTP client's counters (pages accepted, requests, bytes).
    pub http: Arc<HttpStats>,
    /// Records decoded so far (rows and rejects).
    pub records: Arc<AtomicU64>,
}

/// Shows a source's progress until dropped.
#[derive(Debug)]
pub struct ProgressGuard {
    ticker: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
    counters: SourceCounters,
    started: Instant,
}

/// Start showing `source`'s progress in the current mode; the lines carry the current span.
pub fn track(source: &str, counters: SourceCounters) -> ProgressGuard {
    let started = Instant::now();
    let mode = mode();
    let bar = (mode == ProgressMode::Bars).then(|| {
        let bar = bars().add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<14} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(source.to_string());
        bar
    });
    let ticker = match mode {
        ProgressMode::Off => None,
        ProgressMode::Bars => {
            let (bar, counters) = (bar.clone(), counters.clone());
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(BAR_INTERVAL);
                loop {
                    tick.tick().await;
                    if let Some(bar) = &bar {
                        bar.set_message(describe(&counters, started.elapsed()));
                        bar.tick();
                    }
                }
            }))
        }
        ProgressMode::Lines => {
            let counters = counters.clone();
            Some(tokio::spawn(
                async move {
                    let mut tick = tokio::time::interval(line_interval());
                    tick.tick().await; // the first tick is immediate: nothing to say yet
                    loop {
                        tick.tick().await;
                        let (pages, records, bytes) = snapshot(&counters);
                        let waiting = counters.http.rate_limited();
                        tracing::info!(
                            pages,
                            records,
                            bytes,
                            records_per_sec = rate(records, started.elapsed()),
                            // Only while waiting: `rate_limit` (the job's window is full) or
                            // `vendor_rate_limit` (a 429), and for how much longer.
                            waiting = waiting.map(|w| w.why.as_str()),
                            wait_secs_left =
                                waiting.and_then(|w| w.remaining).map(|r| r.as_secs_f64()),
                            rate_limited_secs = counters.http.rate_limit_waited().as_secs_f64(),
                            "progress"
                        );
                    }
                }
                .instrument(tracing::Span::current()),
            ))
        }
    };
    ProgressGuard {
        ticker,
        bar,
        counters,
        started,
    }
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(describe(&self.counters, self.started.elapsed()));
        }
    }
}

fn snapshot(c: &SourceCounters) -> (u64, u64, u64) {
    (
        c.http.pages(),
        c.records.load(Ordering::Relaxed),
        c.http.bytes(),
    )
}

fn rate(records: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (records as f64 / secs).round() as u64
    } else {
        0
    }
}

/// `12 pages, 1200 records, 340/s, 1.2 MiB` — what a bar shows — and, while the source
/// waits on a rate limit, `— waiting on the vendor's rate limit (HTTP 429), 8 s left`.
fn describe(c: &SourceCounters, elapsed: Duration) -> String {
    let (pages, records, bytes) = snapshot(c);
    let mut text = format!(
        "{pages} pages, {records} records, {}/s, {}",
        rate(records, elapsed),
        indicatif::HumanBytes(bytes)
    );
    if let Some(waiting) = c.http.rate_limited() {
        text.push_str(match waiting.why {
            RateWait::Window => " — waiting on this source's rate_limit",
            RateWait::Vendor => " — waiting on the vendor's rate limit (HTTP 429)",
        });
        if let Some(left) = waiting.remaining {
            text.push_str(&format!(", {} left", super::format::duration(left)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_pages_records_rate_and_bytes() {
        let counters = SourceCounters {
            http: Arc::new(HttpStats::default()),
            records: Arc::new(AtomicU64::new(1500)),
        };
        assert_eq!(
            describe(&counters, Duration::from_secs(3)),
            "0 pages, 1500 records, 500/s, 0 B"
        );
        assert_eq!(rate(10, Duration::ZERO), 0);
    }

    #[test]
    fn a_source_waiting_on_a_rate_limit_says_so() {
        let counters = SourceCounters {
            http: Arc::new(HttpStats::default()),
            records: Arc::new(AtomicU64::new(0)),
        };
        {
            let _wait = counters
                .http
                .rate_limit_wait(RateWait::Vendor, Some(Duration::from_secs(12)));
            let text = describe(&counters, Duration::from_secs(1));
            assert!(
                text.starts_with("0 pages, 0 records, 0/s, 0 B — waiting on the vendor's rate limit (HTTP 429), 1"),
                "{text}"
            );
            assert!(text.ends_with(" s left"), "{text}");
        }
        {
            let _wait = counters.http.rate_limit_wait(RateWait::Window, None);
            assert_eq!(
                describe(&counters, Duration::from_secs(1)),
                "0 pages, 0 records, 0/s, 0 B — waiting on this source's rate_limit"
            );
        }
        assert_eq!(
            describe(&counters, Duration::from_secs(1)),
            "0 pages, 0 records, 0/s, 0 B"
        );
    }
}
