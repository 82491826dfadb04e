//! The metrics step of a fan-out (`funnelhouse metrics JOB`, a job with `[fan_in]` and no
//! sources): the pull jobs (one per portal or account, `compute_metrics = false`) publish
//! their input tables into one warehouse; this step computes every metric table once over
//! the union of their files, as its own run with its own lock, commit and `_runs` row.
//!
//! **What it reads.** A [`Snapshot`]: the input files committed when its read starts,
//! taken so that no pull job is caught halfway through publishing. A pull publishes by
//! writing a commit record, renaming its files one by one, then removing the record; the
//! snapshot lists the files, checks that no covered job has a commit record, and lists them
//! again — equal listings with no record in between mean every covered job's files are
//! all from before or all from after any of its commits (a publish that straddled the
//! listings would have had its record present at the check). A record left by a killed
//! pull (its lock is free) is rolled forward under that job's lock first; a live publish
//! is waited for.
//!
//! **When a pull commits while it reads.** Plain Parquet files are replaced in place, so
//! after computing, the step lists the files again: if any changed (or reading failed while
//! they changed), its staged tables are discarded and it starts over from the newer state,
//! up to [`ATTEMPTS`] times. Its tables therefore match, for every pull job, the state
//! before or after that job's commit — never a mix. Pulls never wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use super::metrics::{Inputs, stage_metrics_over};
use super::report::{RunReport, new_run_id};
use super::snapshot::{Snapshot, Version, input_file_job};
use crate::config::{EnvLookup, JobConfig};
use crate::error::{Error, Result};
use crate::lock::JobLock;
use crate::metrics::METRIC_TABLES;
use crate::normalize::{BatchStamp, RunRow, RunsBuilder, TableRows, runs_schema};
use crate::sink::layout::{
    RUNS_TABLE, commit_record_job, commits_root, metric_file as metric_path, metric_file_owner,
};
use crate::sink::{
    PendingCommit, Warehouse, discard_abandoned_staging, discard_staging, publish, roll_forward,
    runs_path, write_batches,
};

/// How many times the step starts over when pulls keep publishing while it reads.
pub const ATTEMPTS: usize = 3;

/// How often to look again while a covered job is publishing.
const POLL: Duration = Duration::from_millis(200);

/// List the warehouse as the metrics job `me` sees it: every input table (each top-level
/// folder that is neither internal `_…` nor a metric table), kept to the covered jobs'
/// files, and the metric files of `me` and of those jobs.
async fn list(store: &Arc<dyn ObjectStore>, me: &str, named: &[String]) -> Result<Snapshot> {
    let root = store
        .list_with_delimiter(None)
        .await
        .map_err(|e| Error::storage("/", e))?;
    let mut inputs: BTreeMap<String, BTreeMap<String, Version>> = BTreeMap::new();
    let mut jobs = BTreeSet::new();
    for folder in &root.common_prefixes {
        let Some(table) = folder.filename() else {
            continue;
        };
        if table.starts_with('_') || METRIC_TABLES.contains(&table) {
            continue;
        }
        let listed: Vec<_> = store
            .list(Some(folder))
            .try_collect()
            .await
            .map_err(|e| Error::storage(folder.to_string(), e))?;
        for meta in listed {
            let Some(job) = meta.location.filename().and_then(input_file_job) else {
                continue;
            };
            let covered = if named.is_empty() {
                job != me
            } else {
                named.iter().any(|n| n == job)
            };
            if !covered {
                continue;
            }
            jobs.insert(job.to_string());
            inputs.entry(table.to_string()).or_default().insert(
                meta.location.to_string(),
                Version {
                    e_tag: meta.e_tag,
                    size: meta.size,
                    last_modified: meta.last_modified,
                },
            );
        }
    }
    if !named.is_empty() {
        jobs = named.iter().cloned().collect();
    }
    let mut metric_files = BTreeMap::new();
    for table in METRIC_TABLES {
        for job in jobs.iter().map(String::as_str).chain([me]) {
            let path = metric_path(table, job);
            match store.head(&path).await {
                Ok(meta) => {
                    metric_files.insert(
                        path.to_string(),
                        Version {
                            e_tag: meta.e_tag,
                            size: meta.size,
                            last_modified: meta.last_modified,
                        },
                    );
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(path.to_string(), e)),
            }
        }
    }
    Ok(Snapshot {
        inputs,
        metric_files,
        me: me.to_string(),
        jobs,
    })
}

/// The covered jobs that have a commit record (are publishing, or died publishing).
async fn publishing(store: &Arc<dyn ObjectStore>, snapshot: &Snapshot) -> Result<BTreeSet<String>> {
    let prefix = commits_root();
    let records: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    Ok(records
        .iter()
        .filter_map(|meta| commit_record_job(&meta.location))
        .map(str::to_string)
        .filter(|job| *job != snapshot.me && snapshot.jobs.contains(job))
        .collect())
}

/// Take a consistent snapshot (see the module docs), waiting at most `patience` for
/// publishes in flight.
async fn take_snapshot(
    store: &Arc<dyn ObjectStore>,
    job: &JobConfig,
    named: &[String],
    run_id: &str,
    patience: Duration,
) -> Result<Snapshot> {
    let started = Instant::now();
    let mut waited = false;
    loop {
        let first = list(store, &job.name, named).await?;
        let pending = publishing(store, &first).await?;
        if pending.is_empty() {
            let second = list(store, &job.name, named).await?;
            if second == first {
                return Ok(second);
            }
            continue;
        }
        let mut live = Vec::new();
        for other in &pending {
            // A record whose job's lock is free was left by a killed run: finish it under
            // that lock, as the job's next run would. A held lock means it is publishing now.
            match JobLock::acquire(store, other, run_id, patience).await {
                Ok(lock) => {
                    let rolled = roll_forward(store, other).await;
                    let released = lock.release().await;
                    let rolled = rolled?;
                    released?;
                    tracing::warn!(job = %other, rolled, "rolled forward a pull job's interrupted publish before reading its tables");
                }
                Err(Error::Locked { .. }) => live.push(other.clone()),
                Err(e) => return Err(e),
            }
        }
        if !live.is_empty() {
            if started.elapsed() > patience {
                return Err(Error::Run {
                    job: job.name.clone(),
                    message: format!(
                        "pull job(s) {} kept publishing for over {} s; nothing was written, run the metrics step again",
                        live.join(", "),
                        patience.as_secs()
                    ),
                });
            }
            if !waited {
                tracing::info!(jobs = ?live, "waiting for pull jobs to finish publishing");
                waited = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Every covered job's newest succeeded run started within `window` of `now`; else an
/// error naming the stale ones.
async fn check_fresh(
    store: &Arc<dyn ObjectStore>,
    job: &JobConfig,
    jobs: &BTreeSet<String>,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<()> {
    let since = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let mut stale = Vec::new();
    if jobs.is_empty() {
        stale.push("no pull job has files in the warehouse yet".to_string());
    }
    for other in jobs {
        let runs = crate::ops::runs::recent_runs(store, other, 50).await?;
        let last = runs
            .iter()
            .find(|r| r.status == "succeeded")
            .and_then(|r| r.started_at);
        match last {
            Some(at) if at >= since => {}
            Some(at) => stale.push(format!(
                "`{other}` last succeeded at {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            None => stale.push(format!("`{other}` has no succeeded run")),
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(Error::Run {
        job: job.name.clone(),
        message: format!(
            "inputs are not fresh (--fresh-within {} h): {}; nothing was written",
            window.as_secs() / 3600,
            stale.join("; ")
        ),
    })
}

/// Options of one metrics step.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Fail unless every covered job has a succeeded run that started within this long
    /// before `now` (the freshness check of a metrics step scheduled after the pulls).
    pub fresh_within: Option<Duration>,
}

/// Run the metrics step of the `[fan_in]` job `job`: lock, snapshot, compute, verify,
/// commit, and a `_runs` row.
pub async fn run_metrics_step(
    job: &JobConfig,
    env: EnvLookup<'_>,
    now: DateTime<Utc>,
    warehouse: &Warehouse,
    started: Instant,
    options: &MetricsOptions,
) -> Result<RunReport> {
    let Some(fan_in) = &job.fan_in else {
        return Err(Error::config(
            &job.path,
            format!(
                "job `{}` has no [fan_in] table: `funnelhouse metrics` runs a metrics job (see \"Past one machine\" in the README); run a pull job with `funnelhouse run`",
                job.name
            ),
        ));
    };
    let store = &warehouse.store;
    let run_id = new_run_id(now);
    let lease = Duration::from_secs(job.lock_lease_secs);
    let lock = JobLock::acquire(store, &job.name, &run_id, lease).await?;
    let outcome = async {
        roll_forward(store, &job.name).await?;
        discard_abandoned_staging(store, &job.name).await?;
        step_locked(
            job,
            env,
            now,
            warehouse,
            started,
            options,
            &fan_in.jobs,
            run_id,
        )
        .await
    }
    .await;
    let released = lock.release().await;
    let report = outcome?;
    released?;
    Ok(report)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the step's pieces"
)]
async fn step_locked(
    job: &JobConfig,
    env: EnvLookup<'_>,
    now: DateTime<Utc>,
    warehouse: &Warehouse,
    started: Instant,
    options: &MetricsOptions,
    named: &[String],
    run_id: String,
) -> Result<RunReport> {
    let store = &warehouse.store;
    let stamp = BatchStamp {
        run_id: run_id.clone(),
        ingested_at_micros: now.timestamp_micros(),
    };
    let patience = Duration::from_secs(job.lock_lease_secs);
    let mut attempt = 0;
    // What the inputs give cause to say (e.g. an eNPS dimension null everywhere), from the
    // attempt that is kept.
    let mut input_warnings = Vec::new();
    let fx = super::metrics::load_rates(job, env).await?;
    let (snapshot, metric_files) = loop {
        attempt += 1;
        input_warnings.clear();
        let snapshot = take_snapshot(store, job, named, &run_id, patience).await?;
        if attempt == 1 {
            if let Some(window) = options.fresh_within {
                check_fresh(store, job, snapshot.jobs(), now, window).await?;
            }
            for missing in named.iter().filter(|n| {
                !snapshot
                    .inputs
                    .values()
                    .flat_map(BTreeMap::keys)
                    .any(|p| p.rsplit('/').next().and_then(input_file_job) == Some(n.as_str()))
            }) {
                tracing::warn!(job = %missing, "a job named in fan_in.jobs has no input files in the warehouse");
            }
        }
        tracing::info!(attempt, jobs = ?snapshot.jobs(), files = snapshot.input_files(), "metrics step reading a snapshot of the pull jobs' tables");
        let computed = stage_metrics_over(
            job,
            &fx,
            store,
            &stamp,
            now,
            &[],
            Inputs::Snapshot(&snapshot),
            &mut input_warnings,
        )
        .await;
        let changed = list(store, &job.name, named).await? != snapshot;
        match computed {
            Ok(files) if !changed => break (snapshot, files),
            Err(e) if !changed => {
                discard_staging(store, &job.name, &run_id).await.ok();
                return Err(e);
            }
            _ => {
                discard_staging(store, &job.name, &run_id).await?;
                if attempt >= ATTEMPTS {
                    return Err(Error::Run {
                        job: job.name.clone(),
                        message: format!(
                            "pull jobs published into the input tables during each of {ATTEMPTS} attempts; nothing was written, run the metrics step again once they are done"
                        ),
                    });
                }
                tracing::info!(
                    attempt,
                    "a pull job published while the metrics step read; starting over from the newer state"
                );
            }
        }
    };

    let legacy: Vec<String> = snapshot
        .legacy_files()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut warnings = input_warnings;
    if !legacy.is_empty() {
        let owners: BTreeSet<&str> = legacy
            .iter()
            .filter_map(|p| metric_file_owner(p.rsplit('/').next()?))
            .collect();
        let warning = format!(
            "removed the per-job metric tables of {} (the metric tables are this job's now; set compute_metrics = false in those jobs)",
            owners.into_iter().collect::<Vec<_>>().join(", ")
        );
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    crate::pause::point("write").await;
    let commit = PendingCommit {
        job: job.name.clone(),
        run_id: run_id.clone(),
        files: metric_files,
        deletes: legacy,
        table_format: job.table_format,
        txn_version: None,
    };
    if let Err(e) = publish(store, &commit).await {
        discard_staging(store, &job.name, &run_id).await.ok();
        return Err(e);
    }
    let mut files = commit.files;

    let run_row = RunRow {
        warnings: (!warnings.is_empty()).then(|| warnings.join("; ")),
        ..RunRow::without_rows(&run_id, &job.name, "succeeded", now.timestamp_micros())
    };
    let mut runs = RunsBuilder::new(1);
    runs.push(&run_row);
    let runs_target = runs_path(&job.name, &run_id);
    let written = write_batches(store, &runs_target, runs_schema(), &[runs.finish(&stamp)]).await?;
    files.push(written.staged(RUNS_TABLE, runs_target.as_ref()));
    let report = RunReport {
        job: job.name.clone(),
        run_id,
        status: "succeeded",
        datasets: BTreeMap::new(),
        sources: Vec::new(),
        files,
        elapsed: started.elapsed(),
        warehouse: warehouse.describe(),
    };
    tracing::info!(jobs = ?snapshot.jobs(), elapsed_ms = report.elapsed.as_millis() as u64, "metrics step committed");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use object_store::path::Path;

    async fn put(store: &Arc<dyn ObjectStore>, path: &str, body: &'static [u8]) {
        store
            .put(&Path::from(path), PutPayload::from_static(body))
            .await
            .unwrap();
    }

    fn problems(text: &str) -> Vec<String> {
        let env = |_: &str| Some("x".to_string());
        match crate::config::parse_job(std::path::Path::new("j.toml"), text, &env) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .into_iter()
                .map(|d| format!("{}: {}", d.key_path, d.message))
                .collect(),
        }
    }

    #[test]
    fn a_fan_in_job_needs_no_sources_or_hash_key_and_names_other_jobs() {
        let head = "name = \"company\"\nwarehouse = \"memory://\"\n";
        assert_eq!(
            problems(&format!("{head}[fan_in]\njobs = [\"crm\", \"ads\"]\n")),
            Vec::<String>::new()
        );
        let p = problems(&format!(
            "{head}compute_metrics = false\n[fan_in]\njobs = [\"company\", \"a.b\", \"crm\", \"crm\"]\n"
        ));
        assert!(p.iter().any(|m| m.starts_with("compute_metrics:")), "{p:?}");
        assert!(
            p.iter()
                .any(|m| m.starts_with("fan_in.jobs[0]:") && m.contains("this job")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.starts_with("fan_in.jobs[1]:")), "{p:?}");
        assert!(
            p.iter()
                .any(|m| m.starts_with("fan_in.jobs[3]:") && m.contains("twice")),
            "{p:?}"
        );
        let with_source = format!(
            "{head}[fan_in]\n\n[[sources]]\nname = \"c\"\nkind = \"costs\"\nurl = \"c.csv\"\n"
        );
        assert!(
            problems(&with_source)
                .iter()
                .any(|m| m.starts_with("sources:"))
        );
        // A pull job still needs its hash key and a source.
        let p = problems(head);
        assert!(p.iter().any(|m| m.contains("hash_key")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("sources:")), "{p:?}");
    }

    #[test]
    fn input_file_names_give_their_job() {
        assert_eq!(input_file_job("crm.hubspot.parquet"), Some("crm"));
        assert_eq!(input_file_job("crm.parquet"), None);
        assert_eq!(input_file_job("a.b.c.parquet"), None);
        assert_eq!(input_file_job("crm.hubspot.json"), None);
    }

    #[tokio::test]
    async fn the_listing_covers_input_tables_of_the_covered_jobs_only() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        put(&store, "leads/crm.hubspot.parquet", b"1").await;
        put(&store, "spend/date=2026-11-01/ads.google_ads.parquet", b"1").await;
        put(
            &store,
            "spend/date=2026-11-01/test.google_ads.parquet",
            b"1",
        )
        .await;
        put(&store, "cpsql_monthly/crm.parquet", b"old per-job figures").await;
        put(&store, "cpsql_monthly/company.parquet", b"1").await;
        put(&store, "_runs/crm.r1.parquet", b"1").await;

        let all = list(&store, "company", &[]).await.unwrap();
        assert_eq!(all.jobs().len(), 3, "{:?}", all.jobs());
        assert_eq!(all.input_files(), 3);
        let named = list(&store, "company", &["crm".into(), "ads".into()])
            .await
            .unwrap();
        assert_eq!(named.input_files(), 2);
        assert_eq!(
            named.files("spend").keys().collect::<Vec<_>>(),
            ["spend/date=2026-11-01/ads.google_ads.parquet"]
        );
        // Its own file is its history; the pull job's old file is removed by the commit.
        assert_eq!(
            named.history("cpsql_monthly"),
            [Path::from("cpsql_monthly/company.parquet")]
        );
        assert_eq!(
            named.legacy_files(),
            [Path::from("cpsql_monthly/crm.parquet")]
        );
    }

    #[tokio::test]
    async fn before_its_first_commit_the_history_is_the_pull_jobs_per_job_files() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        put(&store, "leads/crm.hubspot.parquet", b"1").await;
        put(&store, "lead_stages/crm.parquet", b"1").await;
        let snapshot = list(&store, "company", &[]).await.unwrap();
        assert_eq!(
            snapshot.history("lead_stages"),
            [Path::from("lead_stages/crm.parquet")]
        );
        assert!(snapshot.history("lead_stage_transitions").is_empty());
    }
}
