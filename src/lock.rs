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
//!
//! A lease only has to outlive a holder that cannot say it is gone. A holder on this host
//! can be checked: the record names the host, the kernel boot, the pid namespace, the user
//! and the process's start time, and a lock whose holder is provably dead (no such process,
//! or a process with that pid that started at another time — a reused pid) is taken over at
//! once, whatever its lease says. A holder elsewhere (another host, another container's pid
//! namespace, a record without that identity) is judged by its lease alone.

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
pub use crate::sink::layout::lock_path;
use crate::sink::{Unreadable, read_json};

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
    /// Who the holder's process is on its host, so that host can tell it is gone; absent in
    /// locks written by older versions (those wait for their lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessIdentity>,
}

/// A process beyond its pid: pids are reused and repeat across containers, so a dead holder
/// is only recognized when all of this matches a process that no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// `/proc/sys/kernel/random/boot_id`: changes with every boot of the kernel.
    pub boot_id: String,
    /// `/proc/self/ns/pid` (e.g. `pid:[4026531836]`): pids mean the same only inside it.
    pub pid_namespace: String,
    /// The user the holder ran as (another user's processes may be hidden from `/proc`).
    pub uid: u32,
    /// Start time of the process in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start_ticks: u64,
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
    released: bool,
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
            process: ProcessIdentity::current(),
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
            released: false,
        })
    }

    /// The record this lock was taken with.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// Stop renewing and remove the lock, if it is still ours.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
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

/// A lock dropped without [`JobLock::release`] (its run's future was dropped, e.g. aborted
/// by the scheduler) stops renewing at once — a renewer left running would hold the lock for
/// as long as the process lives — and is removed in the background if still ours.
impl Drop for JobLock {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, path, run_id) = (
            Arc::clone(&self.store),
            self.path.clone(),
            self.record.run_id.clone(),
        );
        runtime.spawn(async move {
            if let Ok(Some((current, _))) = read(&store, &path).await
                && current.run_id == run_id
            {
                store.delete(&path).await.ok();
                tracing::info!(run_id, "released the job lock of a run that was dropped");
            }
        });
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

/// Who holds the lock of `job`, as the lock object says; `None` when no run holds it.
pub async fn holder(store: &dyn ObjectStore, job: &str) -> Result<Option<LockRecord>> {
    Ok(read_json(store, &lock_path(job), UNREADABLE)
        .await?
        .map(|(record, _)| record))
}

const UNREADABLE: Unreadable<'static> = Unreadable {
    what: "job lock",
    advice: "if no run of this job is active, delete it",
};

/// The lock's record and version, `None` when there is no lock.
async fn read(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<(LockRecord, UpdateVersion)>> {
    Ok(read_json(store.as_ref(), path, UNREADABLE)
        .await?
        .map(|(record, meta)| {
            let version = UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            };
            (record, version)
        }))
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
        if !holder_is_dead(&current) {
            return Err(Error::Locked {
                job: ours.job.clone(),
                holder: current.describe(),
            });
        }
        tracing::warn!(job = %ours.job, stale = %current.describe(), "taking over the job lock of a process on this host that no longer exists (its run was killed)");
    } else {
        tracing::warn!(job = %ours.job, stale = %current.describe(), "taking over a job lock whose lease ran out (its run was probably killed)");
    }
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
                job: crate::sink::layout::lock_job(path)
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

impl ProcessIdentity {
    /// This process, or `None` where `/proc` does not tell (not Linux).
    pub fn current() -> Option<Self> {
        Some(ProcessIdentity {
            boot_id: boot_id()?,
            pid_namespace: pid_namespace()?,
            uid: current_uid()?,
            start_ticks: process_start(std::process::id())?.0,
        })
    }
}

/// Is the holder of `record` provably gone? Only when it ran on this host, in this boot,
/// in this pid namespace, as this user, and its pid now names no process, a zombie, or a
/// process that started at another time (the pid was reused). Anything else is unknown and
/// left to the lease.
fn holder_is_dead(record: &LockRecord) -> bool {
    let Some(held) = &record.process else {
        return false;
    };
    let Some(here) = ProcessIdentity::current() else {
        return false;
    };
    if record.host != host_name()
        || held.boot_id != here.boot_id
        || held.pid_namespace != here.pid_namespace
        || held.uid != here.uid
    {
        return false;
    }
    match process_start(record.pid) {
        None => true,
        // A zombie (killed, not yet reaped) is dead too.
        Some((_, 'Z' | 'X' | 'x')) => true,
        Some((ticks, _)) => ticks != held.start_ticks,
    }
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Start time (clock ticks after boot) and state letter of process `pid`, `None` when there
/// is no such process. The command name (field 2) may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn process_start(pid: u32) -> Option<(u64, char)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<(u64, char)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4..=21 lie between the state (3) and the start time (22).
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
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
            process: None,
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

    /// A lock record of `pid` on this host as `acquire` writes it, with a lease of an hour.
    fn held_by(pid: u32, start_ticks: u64) -> LockRecord {
        let mut process = ProcessIdentity::current().expect("Linux /proc");
        process.start_ticks = start_ticks;
        LockRecord {
            job: "j".into(),
            run_id: format!("pid-{pid}"),
            host: host_name(),
            pid,
            acquired_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
            process: Some(process),
        }
    }

    #[tokio::test]
    async fn a_dead_holder_on_this_host_is_taken_over_at_once() {
        // A process that has exited (and been reaped): its pid names nothing now.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("reaped");
        let (own_start, _) = process_start(std::process::id()).expect("our own stat");
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lease = Duration::from_secs(60);

        put(&store, &lock_path("j"), &held_by(gone, 1), PutMode::Create)
            .await
            .unwrap();
        let lock = JobLock::acquire(&store, "j", "r2", lease)
            .await
            .expect("dead holder's lock taken over despite its hour of lease");
        lock.release().await.unwrap();

        // Our pid but another start time: the pid was reused, the holder is gone.
        put(
            &store,
            &lock_path("j"),
            &held_by(std::process::id(), own_start + 1),
            PutMode::Create,
        )
        .await
        .unwrap();
        let lock = JobLock::acquire(&store, "j", "r3", lease)
            .await
            .expect("reused pid's lock taken over");
        lock.release().await.unwrap();

        // A live holder (this very process), or one on another host, keeps its lease.
        let live = held_by(std::process::id(), own_start);
        let mut elsewhere = held_by(gone, 1);
        elsewhere.host = "another-host".into();
        let mut other_namespace = held_by(gone, 1);
        if let Some(p) = other_namespace.process.as_mut() {
            p.pid_namespace = "pid:[1]".into();
        }
        let mut old_format = held_by(gone, 1);
        old_format.process = None;
        for holder in [live, elsewhere, other_namespace, old_format] {
            store.delete(&lock_path("j")).await.ok();
            put(&store, &lock_path("j"), &holder, PutMode::Create)
                .await
                .unwrap();
            let err = JobLock::acquire(&store, "j", "r4", lease)
                .await
                .expect_err("holder not provably dead: refused");
            assert!(matches!(err, Error::Locked { .. }), "{holder:?}: {err}");
        }
    }

    #[tokio::test]
    async fn a_dropped_lock_stops_renewing_and_is_removed() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lock = JobLock::acquire(&store, "j", "r1", Duration::from_millis(300))
            .await
            .unwrap();
        drop(lock);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.head(&lock_path("j")).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "lock never removed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (fun (house) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_stat(stat), Some((987_654, 'S')));
        let (ticks, state) = process_start(std::process::id()).expect("our own stat");
        assert!(ticks > 0);
        assert!(matches!(state, 'R' | 'S' | 'D'), "{state}");
    }
}
