//! The per-job lock: one object, `_locks/<job>.json`, held by the run that is writing the
//! job's tables. It is taken with a conditional put (`PutMode::Create`), so of two runs
//! starting at once exactly one wins, on every store we support (local files, memory, S3).
//! The lock is a lease: it names its holder and an expiry, the holder renews it while it
//! runs, and a lock whose lease has run out (its run was killed) is taken over. Takeover is a
//! conditional update on the stale object's version where the store supports it (memory, S3);
//! on a local filesystem it is delete-then-create after re-checking the stale object, which
//! leaves a window only between two runs that both found the same expired lease.
//!
//! The wall clock (not a run's pinned "now") decides expiry, so leases compare across hosts
//! with synchronized clocks.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// `_locks/<job>.json`.
pub fn lock_path(job: &str) -> Path {
    Path::from(format!("_locks/{job}.json"))
}

/// What the lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The job.
    pub job: String,
    /// The run holding it.
    pub run_id: String,
    /// Host name of the holder (for the operator).
    pub host: String,
    /// Process id of the holder (for the operator).
    pub pid: u32,
    /// When the lock was taken.
    pub acquired_at: DateTime<Utc>,
    /// When the lease runs out unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl LockRecord {
    fn describe(&self) -> String {
        format!(
            "run {} (host {}, pid {}) holds it since {}, lease until {}",
            self.run_id,
            self.host,
            self.pid,
            self.acquired_at.to_rfc3339(),
            self.expires_at.to_rfc3339()
        )
    }
}

/// A held lock; renewed in the background until [`JobLock::release`].
#[derive(Debug)]
pub struct JobLock {
    store: Arc<dyn ObjectStore>,
    path: Path,
    record: LockRecord,
    version: Arc<Mutex<UpdateVersion>>,
    renewer: JoinHandle<()>,
}

impl JobLock {
    /// Take the lock of `job` for `run_id` with a lease of `lease`, or fail with
    /// [`Error::Locked`] naming the holder — writing nothing in that case.
    pub async fn acquire(
        store: &Arc<dyn ObjectStore>,
        job: &str,
        run_id: &str,
        lease: Duration,
    ) -> Result<JobLock> {
        let path = lock_path(job);
        let now = Utc::now();
        let record = LockRecord {
            job: job.to_string(),
            run_id: run_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            acquired_at: now,
            expires_at: now + lease_delta(lease),
        };
        let put = match put(store, &path, &record, PutMode::Create).await {
            Ok(put) => put,
            Err(object_store::Error::AlreadyExists { .. }) => {
                take_over_if_expired(store, &path, &record).await?
            }
            Err(e) => return Err(Error::storage(path.to_string(), e)),
        };
        tracing::debug!(job, run_id, expires_at = %record.expires_at, "job lock taken");
        let version = Arc::new(Mutex::new(UpdateVersion::from(put)));
        let renewer = tokio::spawn(renew_loop(
            Arc::clone(store),
            path.clone(),
            record.clone(),
            Arc::clone(&version),
            lease,
        ));
        Ok(JobLock {
            store: Arc::clone(store),
            path,
            record,
            version,
            renewer,
        })
    }

    /// The record this lock was taken with.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// Stop renewing and remove the lock, if it is still ours.
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        // Wait out a renewal in flight, and keep the renewer's state locked meanwhile.
        let _held = self.version.lock().await;
        match read(&self.store, &self.path).await? {
            Some((current, _)) if current.run_id == self.record.run_id => {
                match self.store.delete(&self.path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(Error::storage(self.path.to_string(), e)),
                }
            }
            Some((current, _)) => {
                tracing::warn!(holder = %current.run_id, "the job lock was taken over while this run held it (its lease ran out); leaving it to the new holder");
                Ok(())
            }
            None => Ok(()),
        }
    }
}

async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    record: &LockRecord,
    mode: PutMode,
) -> object_store::Result<PutResult> {
    let body = serde_json::to_vec_pretty(record).unwrap_or_default();
    store
        .put_opts(
            path,
            PutPayload::from(body),
            PutOptions {
                mode,
                ..PutOptions::default()
            },
        )
        .await
}

/// The lock's record and version, `None` when there is no lock.
async fn read(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<(LockRecord, UpdateVersion)>> {
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage(path.to_string(), e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got
        .bytes()
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    let record = serde_json::from_slice(&bytes).map_err(|e| {
        Error::storage(
            path.to_string(),
            format!("unreadable job lock ({e}); if no run of this job is active, delete it"),
        )
    })?;
    Ok(Some((record, version)))
}

async fn take_over_if_expired(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    ours: &LockRecord,
) -> Result<PutResult> {
    let Some((current, version)) = read(store, path).await? else {
        // Released between our put and our read: try once more.
        return put(store, path, ours, PutMode::Create)
            .await
            .map_err(|e| lost_race(path, e));
    };
    if current.expires_at > Utc::now() {
        return Err(Error::Locked {
            job: ours.job.clone(),
            holder: current.describe(),
        });
    }
    tracing::warn!(job = %ours.job, stale = %current.describe(), "taking over a job lock whose lease ran out (its run was probably killed)");
    match put(store, path, ours, PutMode::Update(version.clone())).await {
        Ok(put) => Ok(put),
        Err(object_store::Error::NotImplemented { .. }) => {
            // Local filesystem: no conditional update. Re-check that the stale lock is still
            // the one we judged, then replace it through a conditional create.
            match read(store, path).await? {
                Some((again, _)) if again == current => {
                    match store.delete(path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(Error::storage(path.to_string(), e)),
                    }
                    put(store, path, ours, PutMode::Create)
                        .await
                        .map_err(|e| lost_race(path, e))
                }
                Some((again, _)) => Err(Error::Locked {
                    job: ours.job.clone(),
                    holder: again.describe(),
                }),
                None => put(store, path, ours, PutMode::Create)
                    .await
                    .map_err(|e| lost_race(path, e)),
            }
        }
        Err(e) => Err(lost_race(path, e)),
    }
}

fn lost_race(path: &Path, e: object_store::Error) -> Error {
    match e {
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            Error::Locked {
                job: path
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .unwrap_or_default()
                    .to_string(),
                holder: "another run took it at the same moment".to_string(),
            }
        }
        e => Error::storage(path.to_string(), e),
    }
}

/// Renew the lease every third of its length, so a live run never loses it.
async fn renew_loop(
    store: Arc<dyn ObjectStore>,
    path: Path,
    mut record: LockRecord,
    version: Arc<Mutex<UpdateVersion>>,
    lease: Duration,
) {
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let mut held = version.lock().await;
        record.expires_at = Utc::now() + lease_delta(lease);
        let renewed = match put(&store, &path, &record, PutMode::Update(held.clone())).await {
            Err(object_store::Error::NotImplemented { .. }) => match read(&store, &path).await {
                Ok(Some((current, _))) if current.run_id == record.run_id => {
                    put(&store, &path, &record, PutMode::Overwrite).await
                }
                _ => {
                    tracing::error!(path = %path, "lost the job lock (its lease ran out and another run took it); this run goes on, but runs may now overlap");
                    return;
                }
            },
            other => other,
        };
        match renewed {
            Ok(put) => *held = UpdateVersion::from(put),
            Err(e) => {
                tracing::error!(path = %path, error = %e, "could not renew the job lock; runs may overlap once the lease runs out");
                return;
            }
        }
    }
}

fn lease_delta(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn second_holder_is_refused_until_release() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lease = Duration::from_secs(60);
        let first = JobLock::acquire(&store, "j", "r1", lease).await.unwrap();
        let err = JobLock::acquire(&store, "j", "r2", lease)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Locked { holder, .. } if holder.contains("r1")),
            "{err}"
        );
        first.release().await.unwrap();
        let second = JobLock::acquire(&store, "j", "r2", lease).await.unwrap();
        second.release().await.unwrap();
        assert!(store.head(&lock_path("j")).await.is_err(), "released");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let stale = LockRecord {
            job: "j".into(),
            run_id: "killed".into(),
            host: "h".into(),
            pid: 1,
            acquired_at: Utc::now() - chrono::Duration::hours(2),
            expires_at: Utc::now() - chrono::Duration::hours(1),
        };
        put(&store, &lock_path("j"), &stale, PutMode::Create)
            .await
            .unwrap();
        let lock = JobLock::acquire(&store, "j", "r2", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lock.record().run_id, "r2");
        let (now_held, _) = read(&store, &lock_path("j")).await.unwrap().unwrap();
        assert_eq!(now_held.run_id, "r2");
        lock.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_live_holder_keeps_its_lease_renewed() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lease = Duration::from_millis(600);
        let lock = JobLock::acquire(&store, "j", "r1", lease).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let err = JobLock::acquire(&store, "j", "r2", lease)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        lock.release().await.unwrap();
    }
}
