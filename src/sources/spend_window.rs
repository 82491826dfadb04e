//! The date window every spend source pulls: the first run reaches back `initial_days`;
//! later runs start at the committed watermark but always re-pull the last `lookback_days`
//! (ad platforms restate recent days). Every day of the window is written whole — days
//! without rows get an empty partition file — so a re-pull replaces each (account, day) of
//! the source exactly and days outside the window stay untouched.

use chrono::{Duration, NaiveDate};

use super::SourceContext;
use crate::error::Result;
use crate::normalize::SpendRow;
use crate::sources::RowSink;

/// The watermark stream of every spend source: the last day pulled (`YYYY-MM-DD`).
pub const SPEND_STREAM: &str = "spend";

/// Longest look-back or initial window a job may ask for (Meta keeps 37 months).
pub const MAX_WINDOW_DAYS: u32 = 1_130;

/// `initial_days`, `lookback_days` and `chunk_days` of one spend source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    /// Days before today the first run pulls.
    pub initial_days: u32,
    /// Days before today every incremental run re-pulls.
    pub lookback_days: u32,
    /// Days per request (vendors cap what one request may cover).
    pub chunk_days: u32,
}

impl WindowSettings {
    /// `(key, problem)` pairs for out-of-range values.
    pub fn check(&self, max_chunk_days: u32) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.initial_days == 0 || self.initial_days > MAX_WINDOW_DAYS {
            problems.push((
                "initial_days",
                format!("must be between 1 and {MAX_WINDOW_DAYS}"),
            ));
        }
        if self.lookback_days > MAX_WINDOW_DAYS {
            problems.push((
                "lookback_days",
                format!("must be between 0 and {MAX_WINDOW_DAYS}"),
            ));
        }
        if self.chunk_days == 0 || self.chunk_days > max_chunk_days {
            problems.push((
                "chunk_days",
                format!("must be between 1 and {max_chunk_days}"),
            ));
        }
        problems
    }
}

/// The inclusive day range one run pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First day.
    pub from: NaiveDate,
    /// Last day (today: vendors report the partial day).
    pub to: NaiveDate,
}

impl Window {
    /// The window for this run: a backfill's range when there is one; else
    /// `today - initial_days ..= today` without a watermark,
    /// else from the day after the watermark or `today - lookback_days`, whichever is
    /// earlier, to today.
    pub fn for_run(settings: &WindowSettings, ctx: &SourceContext) -> Window {
        // A backfill names its range and replaces the source's own window.
        if let Some((from, to)) = ctx.window {
            return Window { from, to };
        }
        let to = ctx.today;
        let initial = to - Duration::days(i64::from(settings.initial_days));
        let watermark = ctx
            .previous
            .watermark(SPEND_STREAM)
            .and_then(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok());
        let from = match watermark {
            None => initial,
            Some(last) => {
                let lookback = to - Duration::days(i64::from(settings.lookback_days));
                (last + Duration::days(1)).min(lookback)
            }
        };
        Window {
            from: from.min(to),
            to,
        }
    }

    /// Consecutive inclusive sub-ranges of at most `days` days.
    pub fn chunks(&self, days: u32) -> Vec<(NaiveDate, NaiveDate)> {
        let step = Duration::days(i64::from(days.max(1)));
        let mut out = Vec::new();
        let mut start = self.from;
        while start <= self.to {
            let end = (start + step - Duration::days(1)).min(self.to);
            out.push((start, end));
            start = end + Duration::days(1);
        }
        out
    }

    /// Every day of the window.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }

    /// Make every day of the window a partition of `out` (empty days become empty files,
    /// replacing what an earlier run wrote for them), and move the watermark to `to`.
    pub fn cover(&self, ctx: &SourceContext, out: &mut impl RowSink<SpendRow>) -> Result<()> {
        for day in self.days() {
            out.cover_day(day);
        }
        ctx.advance(SPEND_STREAM, self.to.to_string());
        Ok(())
    }
}

/// Split an inclusive range in two halves (for vendors that ask for less data per call);
/// `None` for a single day.
pub fn halve(
    from: NaiveDate,
    to: NaiveDate,
) -> Option<((NaiveDate, NaiveDate), (NaiveDate, NaiveDate))> {
    let days = (to - from).num_days();
    if days < 1 {
        return None;
    }
    let mid = from + Duration::days(days / 2);
    Some(((from, mid), (mid + Duration::days(1), to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ctx(today: &str, watermark: Option<&str>) -> SourceContext {
        let mut previous = crate::state::SourceState::default();
        if let Some(w) = watermark {
            previous.set_watermark(SPEND_STREAM, w.to_string());
        }
        SourceContext::for_test("s", d(today), previous)
    }

    #[test]
    fn first_run_reaches_back_then_runs_re_pull_the_look_back() {
        let settings = WindowSettings {
            initial_days: 90,
            lookback_days: 7,
            chunk_days: 31,
        };
        let first = Window::for_run(&settings, &ctx("2026-11-20", None));
        assert_eq!((first.from, first.to), (d("2026-08-22"), d("2026-11-20")));
        // Ran yesterday: the last 7 days again.
        let next = Window::for_run(&settings, &ctx("2026-11-21", Some("2026-11-20")));
        assert_eq!((next.from, next.to), (d("2026-11-14"), d("2026-11-21")));
        // Last ran three weeks ago: catch up from the day after.
        let late = Window::for_run(&settings, &ctx("2026-11-21", Some("2026-10-31")));
        assert_eq!(late.from, d("2026-11-01"));
        // No look-back: only what is new (today is re-read, it was partial).
        let none = WindowSettings {
            lookback_days: 0,
            ..settings
        };
        let w = Window::for_run(&none, &ctx("2026-11-21", Some("2026-11-21")));
        assert_eq!((w.from, w.to), (d("2026-11-21"), d("2026-11-21")));
    }

    #[test]
    fn chunks_cover_the_window_without_overlap() {
        let w = Window {
            from: d("2026-10-01"),
            to: d("2026-10-10"),
        };
        assert_eq!(
            w.chunks(4),
            vec![
                (d("2026-10-01"), d("2026-10-04")),
                (d("2026-10-05"), d("2026-10-08")),
                (d("2026-10-09"), d("2026-10-10")),
            ]
        );
        assert_eq!(w.days().count(), 10);
    }

    #[test]
    fn halves_split_ranges_down_to_a_day() {
        assert_eq!(
            halve(d("2026-10-01"), d("2026-10-04")),
            Some((
                (d("2026-10-01"), d("2026-10-02")),
                (d("2026-10-03"), d("2026-10-04"))
            ))
        );
        assert_eq!(
            halve(d("2026-10-01"), d("2026-10-02")),
            Some((
                (d("2026-10-01"), d("2026-10-01")),
                (d("2026-10-02"), d("2026-10-02"))
            ))
        );
        assert_eq!(halve(d("2026-10-01"), d("2026-10-01")), None);
    }
}
