//! The `funnelhouse schedule` loop: fires every job at its next cron time, never starts a
//! job while its previous run is still going (that fire is skipped and logged), runs
//! different jobs side by side up to a limit, and on shutdown stops firing, gives the runs
//! in flight a grace period, then aborts the rest. Aborting first asks each run to stop (see
//! `cancel`): one before its commit record publishes nothing, records itself in `_runs` as
//! `aborted` and releases its lock; one already publishing finishes. A run that has not
//! stopped within `stop_window` is dropped (its lock is removed in the background and, if the
//! process exits first, taken over by the next start on this host: its holder is gone).
//!
//! Which runs are going is tracked here, in-process, so no overlap holds whatever lock
//! the warehouse offers.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::clock::Clock;
use super::fire::FireSchedule;
use super::metrics::{Metrics, RunOutcome};
use crate::cancel::{Cancel, Stop};
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::pipeline::{RunOptions, RunReport};

/// Starts one run of a job; the daemon owns when and whether.
pub trait JobRunner: Send + Sync + std::fmt::Debug {
    /// One run of `job`, fired for `scheduled_for`; it stops early when `cancel` asks.
    fn run(
        &self,
        job: Arc<JobConfig>,
        scheduled_for: DateTime<Utc>,
        cancel: Cancel,
    ) -> BoxFuture<'static, Result<RunReport>>;
}

/// Runs the real pipeline with the process environment (secrets are read per run, so a
/// rotated token is picked up without a restart).
#[derive(Debug, Clone, Copy, Default)]
pub struct PipelineRunner;

impl JobRunner for PipelineRunner {
    fn run(
        &self,
        job: Arc<JobConfig>,
        _scheduled_for: DateTime<Utc>,
        cancel: Cancel,
    ) -> BoxFuture<'static, Result<RunReport>> {
        Box::pin(async move {
            let options = RunOptions {
                cancel,
                ..RunOptions::default()
            };
            crate::pipeline::run_job(&job, &crate::config::process_env, options).await
        })
    }
}

/// A job and when it fires.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    /// The job.
    pub job: Arc<JobConfig>,
    /// Its cron schedule in its time zone.
    pub schedule: FireSchedule,
}

impl ScheduledJob {
    /// A job that has a `schedule`; a configuration error otherwise.
    pub fn new(job: JobConfig) -> Result<Self> {
        let Some(expr) = job.schedule.as_deref() else {
            return Err(Error::config(
                &job.path,
                "schedule: `funnelhouse schedule` needs a `schedule = \"min hour day month weekday\"` in the job file",
            ));
        };
        let schedule = FireSchedule::new(expr, job.timezone)
            .map_err(|e| Error::config(&job.path, format!("schedule: {e}")))?;
        Ok(ScheduledJob {
            job: Arc::new(job),
            schedule,
        })
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Runs of different jobs allowed at once; a fire beyond it waits for a slot.
    pub max_concurrent: usize,
    /// How long runs in flight may take to finish after shutdown is asked for.
    pub grace: Duration,
    /// After the grace period, how long runs asked to stop get to record themselves and
    /// release their lock before they are dropped.
    pub stop_window: Duration,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            max_concurrent: 2,
            grace: Duration::from_secs(300),
            stop_window: Duration::from_secs(15),
        }
    }
}

/// What the daemon did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSummary {
    /// Runs started.
    pub started: u64,
    /// Fires skipped because the job's previous run was still going.
    pub skipped: u64,
    /// Runs that finished (with a report or an error).
    pub finished: u64,
    /// Runs aborted at shutdown.
    pub aborted: u64,
}

/// The cron daemon.
#[derive(Debug)]
pub struct Daemon {
    jobs: Vec<ScheduledJob>,
    clock: Arc<dyn Clock>,
    runner: Arc<dyn JobRunner>,
    metrics: Metrics,
    options: DaemonOptions,
}

type Joined = std::result::Result<(tokio::task::Id, Result<RunReport>), tokio::task::JoinError>;

impl Daemon {
    /// A daemon over `jobs`; their names must be unique (runs are tracked by name).
    pub fn new(
        jobs: Vec<ScheduledJob>,
        clock: Arc<dyn Clock>,
        runner: Arc<dyn JobRunner>,
        metrics: Metrics,
        options: DaemonOptions,
    ) -> Result<Self> {
        let mut seen = HashSet::new();
        for j in &jobs {
            if !seen.insert(j.job.name.as_str()) {
                return Err(Error::config(
                    &j.job.path,
                    format!(
                        "name: job `{}` is given twice; each scheduled job needs its own name",
                        j.job.name
                    ),
                ));
            }
            metrics.register(&j.job.name);
        }
        Ok(Daemon {
            jobs,
            clock,
            runner,
            metrics,
            options: DaemonOptions {
                max_concurrent: options.max_concurrent.max(1),
                ..options
            },
        })
    }

    /// Fire jobs until `shutdown` resolves, then wind down as described in the module doc.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> DaemonSummary {
        self.run_until(shutdown, futures::future::pending()).await
    }

    /// As `run`; `force` resolving during the grace period aborts the runs at once (a second
    /// Ctrl-C from an operator who will not wait).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
        force: impl Future<Output = ()>,
    ) -> DaemonSummary {
        let mut state = LoopState {
            running: HashSet::new(),
            task_job: HashMap::new(),
            cancels: HashMap::new(),
            runs: JoinSet::new(),
            permits: Arc::new(Semaphore::new(self.options.max_concurrent)),
            summary: DaemonSummary::default(),
        };
        let start = self.clock.now();
        let mut next: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(self.jobs.len());
        for j in &self.jobs {
            let upcoming = j.schedule.upcoming(start, 3);
            let shown: Vec<String> = upcoming
                .iter()
                .map(|t| {
                    t.with_timezone(&j.schedule.timezone())
                        .format("%Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                })
                .collect();
            tracing::info!(job = %j.job.name, schedule = j.schedule.expr(), timezone = %j.schedule.timezone(),
                next = %shown.join(", "), "scheduled");
            if upcoming.is_empty() {
                tracing::warn!(job = %j.job.name, schedule = j.schedule.expr(), "the schedule never fires again");
            }
            next.push(upcoming.first().copied());
            self.metrics
                .set_next_fire(&j.job.name, upcoming.first().copied());
        }
        tracing::info!(
            jobs = self.jobs.len(),
            max_concurrent = self.options.max_concurrent,
            grace_secs = self.options.grace.as_secs(),
            "scheduler started"
        );

        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let due = next.iter().flatten().min().copied();
            let sleep: BoxFuture<'static, ()> = match due {
                Some(at) => self.clock.sleep_until(at),
                None => Box::pin(futures::future::pending()),
            };
            tokio::select! {
                // Shutdown first: a due fire must never starve the signal.
                biased;
                () = &mut shutdown => break,
                Some(joined) = state.runs.join_next_with_id(), if !state.runs.is_empty() => {
                    self.finished(&mut state, joined);
                }
                () = sleep => {
                    let now = self.clock.now();
                    for (i, slot) in next.iter_mut().enumerate() {
                        let Some(at) = *slot else { continue };
                        if at > now {
                            continue;
                        }
                        self.fire(&mut state, i, at);
                        // From `now` when late (a suspended host): missed fires are not
                        // replayed one after another, the next one is simply the next.
                        *slot = self.jobs[i].schedule.next_after(at.max(now));
                        self.metrics.set_next_fire(&self.jobs[i].job.name, *slot);
                        if let Some(n) = *slot {
                            tracing::debug!(job = %self.jobs[i].job.name, next = %n, "next fire");
                        }
                    }
                }
            }
        }

        self.metrics.set_stopping();
        tracing::info!(
            running = state.runs.len(),
            grace_secs = self.options.grace.as_secs(),
            "stopping: no new runs; waiting for the runs in flight"
        );
        let deadline = tokio::time::Instant::now() + self.options.grace;
        let mut force = std::pin::pin!(force);
        while !state.runs.is_empty() {
            let joined = tokio::select! {
                biased;
                () = &mut force => Err("asked again to stop"),
                joined = tokio::time::timeout_at(deadline, state.runs.join_next_with_id()) => {
                    joined.map_err(|_| "grace period over")
                }
            };
            match joined {
                Ok(Some(joined)) => self.finished(&mut state, joined),
                Ok(None) => break,
                Err(why) => {
                    tracing::warn!(
                        running = state.runs.len(),
                        "{why}: asking the runs still going to stop"
                    );
                    for cancel in state.cancels.values() {
                        cancel.stop(Stop::Shutdown);
                    }
                    let dropped_at = tokio::time::Instant::now() + self.options.stop_window;
                    while let Ok(Some(joined)) =
                        tokio::time::timeout_at(dropped_at, state.runs.join_next_with_id()).await
                    {
                        self.finished(&mut state, joined);
                    }
                    if !state.runs.is_empty() {
                        tracing::warn!(
                            running = state.runs.len(),
                            stop_window_secs = self.options.stop_window.as_secs(),
                            "runs did not stop in time: dropping them"
                        );
                    }
                    state.runs.abort_all();
                    while let Some(joined) = state.runs.join_next_with_id().await {
                        self.finished(&mut state, joined);
                    }
                }
            }
        }
        tracing::info!(
            started = state.summary.started,
            skipped = state.summary.skipped,
            finished = state.summary.finished,
            aborted = state.summary.aborted,
            "scheduler stopped"
        );
        state.summary
    }

    fn fire(&self, state: &mut LoopState, index: usize, scheduled_for: DateTime<Utc>) {
        let job = &self.jobs[index].job;
        if state.running.contains(&index) {
            tracing::warn!(job = %job.name, scheduled_for = %scheduled_for,
                "previous run still going: this fire is skipped");
            state.summary.skipped += 1;
            self.metrics.record_outcome(&job.name, RunOutcome::Skipped);
            return;
        }
        tracing::info!(job = %job.name, scheduled_for = %scheduled_for, "firing");
        state.running.insert(index);
        state.summary.started += 1;
        self.metrics.set_running(&job.name, true);
        let permits = Arc::clone(&state.permits);
        let cancel = Cancel::new();
        let run = self
            .runner
            .run(Arc::clone(job), scheduled_for, cancel.clone());
        let name = job.name.clone();
        let handle = state.runs.spawn(async move {
            let _permit = match Arc::clone(&permits).try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    tracing::info!(job = %name, "all run slots busy: waiting for one");
                    // The semaphore is never closed, so this cannot fail.
                    permits
                        .acquire_owned()
                        .await
                        .map_err(|source| Error::RunSlotsClosed {
                            job: name.clone(),
                            source,
                        })?
                }
            };
            run.await
        });
        state.task_job.insert(handle.id(), index);
        state.cancels.insert(handle.id(), cancel);
    }

    fn finished(&self, state: &mut LoopState, joined: Joined) {
        let (id, outcome) = match joined {
            Ok((id, result)) => (id, Ok(result)),
            Err(e) => (e.id(), Err(e)),
        };
        state.cancels.remove(&id);
        let Some(index) = state.task_job.remove(&id) else {
            return;
        };
        state.running.remove(&index);
        let job = &self.jobs[index].job.name;
        self.metrics.set_running(job, false);
        match outcome {
            Ok(Ok(report)) if report.status == "aborted" => {
                state.summary.aborted += 1;
                tracing::warn!(job = %job, run_id = %report.run_id, "run stopped at shutdown before its commit: nothing published, recorded in _runs as aborted, lock released");
                self.metrics.record_outcome(job, RunOutcome::Aborted);
            }
            Ok(Ok(report)) => {
                state.summary.finished += 1;
                let written: u64 = report.datasets.values().map(|c| c.written).sum();
                let rejected: u64 = report.datasets.values().map(|c| c.rejected).sum();
                tracing::info!(job = %job, run_id = %report.run_id, status = report.status, written, rejected,
                    elapsed_ms = report.elapsed.as_millis() as u64, "scheduled run finished");
                self.metrics.record_report(&report, self.clock.now());
            }
            Ok(Err(e)) => {
                state.summary.finished += 1;
                tracing::error!(job = %job, error = %e, "scheduled run failed before it could record itself");
                self.metrics.record_outcome(job, RunOutcome::Error);
            }
            Err(e) if e.is_cancelled() => {
                state.summary.aborted += 1;
                tracing::warn!(job = %job, "run aborted at shutdown; it committed nothing (an interrupted publish is finished by the next start)");
                self.metrics.record_outcome(job, RunOutcome::Aborted);
            }
            Err(e) => {
                state.summary.finished += 1;
                tracing::error!(job = %job, error = %e, "scheduled run panicked");
                self.metrics.record_outcome(job, RunOutcome::Error);
            }
        }
    }
}

struct LoopState {
    running: HashSet<usize>,
    task_job: HashMap<tokio::task::Id, usize>,
    cancels: HashMap<tokio::task::Id, Cancel>,
    runs: JoinSet<Result<RunReport>>,
    permits: Arc<Semaphore>,
    summary: DaemonSummary,
}
