//! What the daemon tells Kubernetes and alerting: `/healthz` and a Prometheus text
//! `/metrics` (runs by status, last success per job, rows written and rejected, requests,
//! retries, whether a run is going, the next fire time), served on the `--listen` address.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::pipeline::RunReport;

/// How a scheduled run ended, as counted in `funnelhouse_runs_total{status}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunOutcome {
    /// Every source committed.
    Succeeded,
    /// Some sources failed; the others committed.
    Partial,
    /// Every source failed (the `_runs` row still records it).
    Failed,
    /// The run ended with an error before it could record itself (warehouse, config).
    Error,
    /// Not started: the previous run of the job was still going.
    Skipped,
    /// Aborted at shutdown after the grace period; nothing was committed by it.
    Aborted,
}

impl RunOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
            RunOutcome::Error => "error",
            RunOutcome::Skipped => "skipped",
            RunOutcome::Aborted => "aborted",
        }
    }

    /// The outcome of a run that returned a report.
    pub fn of_report(report: &RunReport) -> Self {
        match report.status {
            "succeeded" => RunOutcome::Succeeded,
            "partial" => RunOutcome::Partial,
            "aborted" => RunOutcome::Aborted,
            _ => RunOutcome::Failed,
        }
    }
}

#[derive(Debug, Default)]
struct JobMetrics {
    runs: BTreeMap<RunOutcome, u64>,
    last_success: Option<DateTime<Utc>>,
    last_duration_secs: Option<f64>,
    running: bool,
    next_fire: Option<DateTime<Utc>>,
    /// dataset → (written, rejected)
    rows: BTreeMap<String, (u64, u64)>,
    /// source → (requests, retries)
    http: BTreeMap<String, (u64, u64)>,
}

/// The daemon's counters, shared between the scheduler loop and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    jobs: Arc<Mutex<BTreeMap<String, JobMetrics>>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Metrics {
    fn with_job(&self, job: &str, f: impl FnOnce(&mut JobMetrics)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        f(jobs.entry(job.to_string()).or_default());
    }

    /// Register a job so its series exist (at zero) before its first run.
    pub fn register(&self, job: &str) {
        self.with_job(job, |_| {});
    }

    /// The job's next fire time.
    pub fn set_next_fire(&self, job: &str, at: Option<DateTime<Utc>>) {
        self.with_job(job, |m| m.next_fire = at);
    }

    /// A run of `job` started (or finished).
    pub fn set_running(&self, job: &str, running: bool) {
        self.with_job(job, |m| m.running = running);
    }

    /// Count a run that did not produce a report.
    pub fn record_outcome(&self, job: &str, outcome: RunOutcome) {
        self.with_job(job, |m| *m.runs.entry(outcome).or_default() += 1);
    }

    /// Count a finished run and add its rows and requests.
    pub fn record_report(&self, report: &RunReport, finished_at: DateTime<Utc>) {
        let outcome = RunOutcome::of_report(report);
        self.with_job(&report.job, |m| {
            *m.runs.entry(outcome).or_default() += 1;
            if outcome == RunOutcome::Succeeded {
                m.last_success = Some(finished_at);
            }
            m.last_duration_secs = Some(report.elapsed.as_secs_f64());
            for (dataset, counts) in &report.datasets {
                let entry = m.rows.entry(dataset.table().to_string()).or_default();
                entry.0 += counts.written;
                entry.1 += counts.rejected;
            }
            for source in &report.sources {
                let entry = m.http.entry(source.name.clone()).or_default();
                entry.0 += source.requests;
                entry.1 += source.retries;
            }
        });
    }

    /// The daemon stopped taking runs (health turns to 503 so no new traffic is sent).
    pub fn set_stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let statuses = [
            RunOutcome::Succeeded,
            RunOutcome::Partial,
            RunOutcome::Failed,
            RunOutcome::Error,
            RunOutcome::Skipped,
            RunOutcome::Aborted,
        ];
        family(
            "funnelhouse_runs_total",
            "counter",
            "Scheduled runs by how they ended.",
            jobs.iter()
                .flat_map(|(job, m)| {
                    statuses.iter().map(move |s| {
                        (
                            format!("job=\"{}\",status=\"{}\"", escape(job), s.as_str()),
                            m.runs.get(s).copied().unwrap_or(0) as f64,
                        )
                    })
                })
                .collect(),
        );
        family(
            "funnelhouse_last_success_timestamp_seconds",
            "gauge",
            "Unix time the job last finished a run in which every source committed.",
            jobs.iter()
                .filter_map(|(job, m)| {
                    m.last_success.map(|t| {
                        (
                            format!("job=\"{}\"", escape(job)),
                            t.timestamp_millis() as f64 / 1000.0,
                        )
                    })
                })
                .collect(),
        );
        family(
            "funnelhouse_last_run_duration_seconds",
            "gauge",
            "Wall time of the job's last finished run.",
            jobs.iter()
                .filter_map(|(job, m)| {
                    m.last_duration_secs
                        .map(|d| (format!("job=\"{}\"", escape(job)), d))
                })
                .collect(),
        );
        family(
            "funnelhouse_run_in_progress",
            "gauge",
            "1 while a run of the job is going.",
            jobs.iter()
                .map(|(job, m)| {
                    (
                        format!("job=\"{}\"", escape(job)),
                        f64::from(u8::from(m.running)),
                    )
                })
                .collect(),
        );
        family(
            "funnelhouse_next_fire_timestamp_seconds",
            "gauge",
            "Unix time of the job's next scheduled run.",
            jobs.iter()
                .filter_map(|(job, m)| {
                    m.next_fire
                        .map(|t| (format!("job=\"{}\"", escape(job)), t.timestamp() as f64))
                })
                .collect(),
        );
        let per_dataset = |pick: fn(&(u64, u64)) -> u64| {
            jobs.iter()
                .flat_map(|(job, m)| {
                    m.rows.iter().map(move |(dataset, counts)| {
                        (
                            format!("job=\"{}\",dataset=\"{}\"", escape(job), escape(dataset)),
                            pick(counts) as f64,
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        family(
            "funnelhouse_rows_written_total",
            "counter",
            "Rows written to each dataset by scheduled runs.",
            per_dataset(|c| c.0),
        );
        family(
            "funnelhouse_rows_rejected_total",
            "counter",
            "Records sent to _rejects for each dataset by scheduled runs.",
            per_dataset(|c| c.1),
        );
        let per_source = |pick: fn(&(u64, u64)) -> u64| {
            jobs.iter()
                .flat_map(|(job, m)| {
                    m.http.iter().map(move |(source, counts)| {
                        (
                            format!("job=\"{}\",source=\"{}\"", escape(job), escape(source)),
                            pick(counts) as f64,
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        family(
            "funnelhouse_requests_total",
            "counter",
            "HTTP requests sent to each source, retries included.",
            per_source(|c| c.0),
        );
        family(
            "funnelhouse_retries_total",
            "counter",
            "HTTP requests that were retries.",
            per_source(|c| c.1),
        );
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serve `/healthz` and `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) -> Result<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    axum::serve(listener, app)
        .await
        .map_err(|e| Error::io(format!("serving metrics on {addr}"), e))
}

async fn healthz(State(metrics): State<Metrics>) -> impl IntoResponse {
    if metrics.is_stopping() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_zeroed_series_for_registered_jobs_and_escapes_labels() {
        let m = Metrics::default();
        m.register("nightly \"a\"");
        m.record_outcome("nightly \"a\"", RunOutcome::Skipped);
        m.set_running("nightly \"a\"", true);
        let text = m.render();
        assert!(
            text.contains("funnelhouse_runs_total{job=\"nightly \\\"a\\\"\",status=\"skipped\"} 1")
        );
        assert!(
            text.contains(
                "funnelhouse_runs_total{job=\"nightly \\\"a\\\"\",status=\"succeeded\"} 0"
            )
        );
        assert!(text.contains("funnelhouse_run_in_progress{job=\"nightly \\\"a\\\"\"} 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
