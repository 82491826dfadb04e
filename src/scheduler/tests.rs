//! The daemon driven by a manual clock: fire times across the Europe/Berlin DST changes,
//! skipped overlaps, the concurrency limit, and the grace period at shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::config::{JobConfig, parse_job};
use crate::error::Result;
use crate::pipeline::RunReport;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid RFC 3339")
        .with_timezone(&Utc)
}

fn job(name: &str, schedule: &str, timezone: &str) -> ScheduledJob {
    let text = format!(
        "name = \"{name}\"\nschedule = \"{schedule}\"\ntimezone = \"{timezone}\"\nwarehouse = \"memory://\"\nhash_key = \"k\"\n\
         [[sources]]\nname = \"hs\"\nkind = \"hubspot\"\ntoken = \"t\"\n"
    );
    let parsed: JobConfig = parse_job(std::path::Path::new("test.toml"), &text, &|_| None)
        .unwrap_or_else(|d| panic!("test job is valid: {d:?}"));
    ScheduledJob::new(parsed).expect("has a schedule")
}

/// A started run as the test sees it: which job, for when, and how to let it finish.
struct Started {
    job: String,
    scheduled_for: DateTime<Utc>,
    finish: oneshot::Sender<()>,
}

/// A runner whose runs last until the test says so (or forever, if the sender is kept), or
/// until they are asked to stop — unless `stubborn`, which ignores that.
#[derive(Debug)]
struct GatedRunner {
    started: mpsc::UnboundedSender<Started>,
    stubborn: bool,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} @ {}", self.job, self.scheduled_for)
    }
}

impl JobRunner for GatedRunner {
    fn run(
        &self,
        job: Arc<JobConfig>,
        scheduled_for: DateTime<Utc>,
        cancel: crate::cancel::Cancel,
    ) -> BoxFuture<'static, Result<RunReport>> {
        let started = self.started.clone();
        let stubborn = self.stubborn;
        Box::pin(async move {
            let (finish, finished) = oneshot::channel();
            started
                .send(Started {
                    job: job.name.clone(),
                    scheduled_for,
                    finish,
                })
                .ok();
            let stopped = if stubborn {
                finished.await.ok();
                false
            } else {
                cancel.or_stop(finished).await.is_err()
            };
            Ok(RunReport {
                job: job.name.clone(),
                run_id: format!("{}-test", scheduled_for.format("%Y%m%dT%H%M%SZ")),
                status: if stopped { "aborted" } else { "succeeded" },
                datasets: BTreeMap::new(),
                sources: Vec::new(),
                files: Vec::new(),
                elapsed: Duration::from_millis(1),
                warehouse: "memory://".into(),
            })
        })
    }
}

struct Harness {
    clock: ManualClock,
    metrics: Metrics,
    started: mpsc::UnboundedReceiver<Started>,
    stop: Option<oneshot::Sender<()>>,
    daemon: tokio::task::JoinHandle<DaemonSummary>,
}

async fn start(jobs: Vec<ScheduledJob>, at: &str, options: DaemonOptions) -> Harness {
    start_with(jobs, at, options, false).await
}

async fn start_with(
    jobs: Vec<ScheduledJob>,
    at: &str,
    options: DaemonOptions,
    stubborn: bool,
) -> Harness {
    let jobs_count = jobs.len();
    let clock = ManualClock::new(utc(at));
    let metrics = Metrics::default();
    let (tx, started) = mpsc::unbounded_channel();
    let daemon = Daemon::new(
        jobs,
        Arc::new(clock.clone()),
        Arc::new(GatedRunner {
            started: tx,
            stubborn,
        }),
        metrics.clone(),
        options,
    )
    .expect("unique job names");
    let (stop, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(daemon.run(async move {
        stopped.await.ok();
    }));
    let h = Harness {
        clock,
        metrics,
        started,
        stop: Some(stop),
        daemon,
    };
    // The daemon reads the clock when it starts; moving it before then would shift every fire.
    h.wait_for("the daemon to compute its first fires", |m| {
        m.render()
            .lines()
            .filter(|l| l.starts_with("funnelhouse_next_fire_timestamp_seconds{"))
            .count()
            == jobs_count
    })
    .await;
    h
}

impl Harness {
    async fn next_start(&mut self) -> Started {
        tokio::time::timeout(BOUND, self.started.recv())
            .await
            .expect("a run starts within the bound")
            .expect("daemon alive")
    }

    /// Let the daemon react to whatever just happened, then check nothing started.
    async fn assert_nothing_started(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(s) = self.started.try_recv() {
            panic!("unexpected run started: {s:?}");
        }
    }

    async fn wait_for(&self, what: &str, mut cond: impl FnMut(&Metrics) -> bool) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !cond(&self.metrics) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.metrics.render()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) -> DaemonSummary {
        self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(BOUND, self.daemon)
            .await
            .expect("daemon stops within the bound")
            .expect("daemon task ran")
    }
}

fn count(metrics: &Metrics, job: &str, status: &str) -> u64 {
    let needle = format!("funnelhouse_runs_total{{job=\"{job}\",status=\"{status}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&needle)
                .map(|v| v.parse::<f64>().unwrap_or(-1.0))
        })
        .unwrap_or(0.0) as u64
}

#[tokio::test]
async fn nightly_fires_once_a_night_across_both_berlin_dst_changes() {
    for (start_at, expected) in [
        (
            "2026-03-27T12:00:00Z",
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 02:30 does not exist: fires at 03:00 CEST
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ],
        ),
        (
            "2026-10-23T12:00:00Z",
            [
                "2026-10-24T00:30:00Z", // 02:30 CEST
                "2026-10-25T00:30:00Z", // the first 02:30; the repeated one (01:30Z) is not a fire
                "2026-10-26T01:30:00Z", // 02:30 CET
            ],
        ),
    ] {
        let mut h = start(
            vec![job("nightly", "30 2 * * *", "Europe/Berlin")],
            start_at,
            DaemonOptions::default(),
        )
        .await;
        let times = expected.map(utc);
        for (n, expected) in times.into_iter().enumerate() {
            // Just before: nothing; on the minute: exactly this fire.
            h.clock.set(expected - chrono::Duration::minutes(1));
            h.assert_nothing_started().await;
            h.clock.set(expected);
            let s = h.next_start().await;
            assert_eq!((s.job.as_str(), s.scheduled_for), ("nightly", expected));
            s.finish.send(()).ok();
            h.wait_for("the run to be counted", |m| {
                count(m, "nightly", "succeeded") == n as u64 + 1
            })
            .await;
            h.assert_nothing_started().await;
        }
        // The rest of the last day: no second fire.
        h.clock.set(times[2] + chrono::Duration::hours(12));
        h.assert_nothing_started().await;
        let summary = h.stop().await;
        assert_eq!(summary.started, 3);
        assert_eq!(summary.finished, 3);
    }
}

#[tokio::test]
async fn a_fire_while_the_previous_run_is_going_is_skipped_and_counted() {
    let mut h = start(
        vec![job("minutely", "* * * * *", "UTC")],
        "2026-11-25T10:00:30Z",
        DaemonOptions::default(),
    )
    .await;
    h.clock.set(utc("2026-11-25T10:01:00Z"));
    let first = h.next_start().await;
    assert_eq!(first.scheduled_for, utc("2026-11-25T10:01:00Z"));
    h.wait_for("the run to show as going", |m| {
        m.render()
            .contains("funnelhouse_run_in_progress{job=\"minutely\"} 1")
    })
    .await;

    // The next two fires find the first run still going.
    h.clock.set(utc("2026-11-25T10:02:00Z"));
    h.wait_for("one skip", |m| count(m, "minutely", "skipped") == 1)
        .await;
    h.clock.set(utc("2026-11-25T10:03:00Z"));
    h.wait_for("two skips", |m| count(m, "minutely", "skipped") == 2)
        .await;
    h.assert_nothing_started().await;

    first.finish.send(()).ok();
    h.wait_for("the first run to finish", |m| {
        count(m, "minutely", "succeeded") == 1
    })
    .await;
    h.clock.set(utc("2026-11-25T10:04:00Z"));
    let second = h.next_start().await;
    assert_eq!(second.scheduled_for, utc("2026-11-25T10:04:00Z"));
    second.finish.send(()).ok();
    h.wait_for("the second run to finish", |m| {
        count(m, "minutely", "succeeded") == 2
    })
    .await;
    let summary = h.stop().await;
    assert_eq!(
        summary,
        DaemonSummary {
            started: 2,
            skipped: 2,
            finished: 2,
            aborted: 0
        }
    );
}

#[tokio::test]
async fn different_jobs_share_the_run_slots() {
    let mut h = start(
        vec![job("a", "0 * * * *", "UTC"), job("b", "0 * * * *", "UTC")],
        "2026-11-25T09:59:00Z",
        DaemonOptions {
            max_concurrent: 1,
            grace: Duration::from_secs(5),
            ..DaemonOptions::default()
        },
    )
    .await;
    h.clock.set(utc("2026-11-25T10:00:00Z"));
    let first = h.next_start().await;
    // Both fired and count as going, but only one holds the single slot.
    h.wait_for("both jobs marked going", |m| {
        let text = m.render();
        text.contains("funnelhouse_run_in_progress{job=\"a\"} 1")
            && text.contains("funnelhouse_run_in_progress{job=\"b\"} 1")
    })
    .await;
    h.assert_nothing_started().await;
    let first_job = first.job.clone();
    first.finish.send(()).ok();
    let second = h.next_start().await;
    assert_ne!(second.job, first_job);
    second.finish.send(()).ok();
    h.wait_for("both counted", |m| {
        count(m, "a", "succeeded") == 1 && count(m, "b", "succeeded") == 1
    })
    .await;
    let summary = h.stop().await;
    assert_eq!((summary.started, summary.finished), (2, 2));
}

#[tokio::test]
async fn shutdown_lets_runs_finish_within_the_grace_period() {
    let mut h = start(
        vec![job("nightly", "0 3 * * *", "UTC")],
        "2026-11-25T02:59:00Z",
        DaemonOptions {
            max_concurrent: 2,
            grace: Duration::from_secs(5),
            ..DaemonOptions::default()
        },
    )
    .await;
    h.clock.set(utc("2026-11-25T03:00:00Z"));
    let run = h.next_start().await;
    let metrics = h.metrics.clone();
    let clock = h.clock.clone();
    let stopping = tokio::spawn(h.stop());
    // Still going after shutdown was asked for; finishing it ends the daemon cleanly.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!stopping.is_finished());
    // A fire after shutdown was asked for never starts.
    clock.set(utc("2026-11-26T03:00:00Z"));
    run.finish.send(()).ok();
    let summary = tokio::time::timeout(BOUND, stopping)
        .await
        .expect("stops within the bound")
        .expect("stop task ran");
    assert_eq!(
        summary,
        DaemonSummary {
            started: 1,
            skipped: 0,
            finished: 1,
            aborted: 0
        }
    );
    assert_eq!(count(&metrics, "nightly", "succeeded"), 1);
}

#[tokio::test]
async fn runs_still_going_after_the_grace_period_are_aborted() {
    let mut h = start(
        vec![job("slow", "0 3 * * *", "UTC")],
        "2026-11-25T02:59:00Z",
        DaemonOptions {
            max_concurrent: 2,
            grace: Duration::from_millis(200),
            ..DaemonOptions::default()
        },
    )
    .await;
    h.clock.set(utc("2026-11-25T03:00:00Z"));
    // Kept, never sent: the run would go on forever.
    let _run = h.next_start().await;
    let metrics = h.metrics.clone();
    let began = std::time::Instant::now();
    let summary = h.stop().await;
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        summary,
        DaemonSummary {
            started: 1,
            skipped: 0,
            finished: 0,
            aborted: 1
        }
    );
    assert_eq!(count(&metrics, "slow", "aborted"), 1);
    assert!(
        metrics
            .render()
            .contains("funnelhouse_run_in_progress{job=\"slow\"} 0")
    );
}

#[tokio::test]
async fn a_run_that_ignores_the_stop_request_is_dropped_after_the_stop_window() {
    let mut h = start_with(
        vec![job("stubborn", "0 3 * * *", "UTC")],
        "2026-11-25T02:59:00Z",
        DaemonOptions {
            max_concurrent: 2,
            grace: Duration::from_millis(100),
            stop_window: Duration::from_millis(300),
        },
        true,
    )
    .await;
    h.clock.set(utc("2026-11-25T03:00:00Z"));
    let _run = h.next_start().await;
    let metrics = h.metrics.clone();
    let began = std::time::Instant::now();
    let summary = tokio::time::timeout(BOUND, h.stop())
        .await
        .expect("dropped within the bound");
    assert!(
        began.elapsed() >= Duration::from_millis(400),
        "grace + stop window"
    );
    assert_eq!((summary.finished, summary.aborted), (0, 1));
    assert_eq!(count(&metrics, "stubborn", "aborted"), 1);
}

#[test]
fn a_job_without_a_schedule_or_twice_the_same_name_is_a_config_error() {
    let text = "name = \"x\"\nwarehouse = \"memory://\"\nhash_key = \"k\"\n[[sources]]\nname = \"hs\"\nkind = \"hubspot\"\ntoken = \"t\"\n";
    let parsed = parse_job(std::path::Path::new("x.toml"), text, &|_| None).expect("valid");
    assert!(ScheduledJob::new(parsed).is_err_and(|e| e.is_config()));
    let twice = Daemon::new(
        vec![job("a", "0 3 * * *", "UTC"), job("a", "0 4 * * *", "UTC")],
        Arc::new(SystemClock),
        Arc::new(PipelineRunner),
        Metrics::default(),
        DaemonOptions::default(),
    );
    assert!(twice.is_err_and(|e| e.is_config()));
}

#[tokio::test]
async fn a_second_stop_request_aborts_at_once_despite_the_grace_period() {
    let clock = ManualClock::new(utc("2026-11-25T02:59:59Z"));
    let metrics = Metrics::default();
    let (tx, mut started) = mpsc::unbounded_channel();
    let daemon = Daemon::new(
        vec![job("slow", "0 3 * * *", "UTC")],
        Arc::new(clock.clone()),
        Arc::new(GatedRunner {
            started: tx,
            stubborn: false,
        }),
        metrics.clone(),
        DaemonOptions {
            max_concurrent: 1,
            grace: Duration::from_secs(3600),
            ..DaemonOptions::default()
        },
    )
    .expect("valid");
    let (stop, stopped) = oneshot::channel::<()>();
    let (force, forced) = oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run_until(
        async move {
            stopped.await.ok();
        },
        async move {
            forced.await.ok();
        },
    ));
    // The daemon reads the clock on start; only then may the clock move.
    let deadline = tokio::time::Instant::now() + BOUND;
    while !metrics
        .render()
        .contains("funnelhouse_next_fire_timestamp_seconds{job=\"slow\"}")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "daemon never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clock.set(utc("2026-11-25T03:00:00Z"));
    let _run = tokio::time::timeout(BOUND, started.recv())
        .await
        .expect("fired")
        .expect("alive");
    stop.send(()).ok();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!running.is_finished(), "waits out the grace period");
    force.send(()).ok();
    let summary = tokio::time::timeout(BOUND, running)
        .await
        .expect("stops at once")
        .expect("ran");
    assert_eq!(summary.aborted, 1);
}
