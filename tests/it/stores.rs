//! One suite — a whole run and a rerun, the commit protocol's roll-forward, the sweep of raw
//! pages of runs that never committed, the job lock, incremental state — on every kind of
//! warehouse: a local directory, `memory://`, and a
//! real S3-compatible server on 127.0.0.1 (s3s-fs, started by `./scripts/test`), each with
//! spaces and unicode in its path or key prefix.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use funnelhouse::Error;
use funnelhouse::lock::{JobLock, lock_path};
use funnelhouse::sink::{PendingCommit, StagedFile, Warehouse, WarehouseUrl, roll_forward};
use funnelhouse::state::{self, SourceState};

use crate::support::*;

async fn suite(warehouse: Warehouse) {
    let store = Arc::clone(&warehouse.store);
    let what = warehouse.describe();

    // A whole run, then a rerun: the same rows, nothing left over.
    let sandbox = sandbox(150, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let job = demo_job_into(dir.path(), &env);
    let lookup = |name: &str| env.get(name).cloned();
    for round in 0..2 {
        let report = funnelhouse::pipeline::run_job_in(
            &job,
            &lookup,
            run_options(),
            &warehouse,
            std::time::Instant::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: run {round}: {e}"));
        assert!(report.succeeded(), "{what}: {report:#?}");
        let leads =
            funnelhouse::sink::read_parquet_rows(&store, &Path::from("leads/demo.hubspot.parquet"))
                .await
                .unwrap();
        let rows: usize = leads.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, totals.contacts, "{what}: round {round}");
    }
    for leftover in ["_staging", "_commits", "_locks"] {
        let left: Vec<_> = store
            .list(Some(&Path::from(leftover)))
            .try_collect()
            .await
            .unwrap();
        assert!(left.is_empty(), "{what}: {leftover} left: {left:?}");
    }
    let runs: Vec<_> = store
        .list(Some(&Path::from("_runs")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(runs.len(), 2, "{what}");

    // Recovery's sweep: raw pages of a run that never committed go, those of the two
    // committed runs stay.
    let ghost =
        Path::from("_raw/demo/20260101T000000Z-dead00/hubspot/contacts/page-000001.json.zst");
    store
        .put(&ghost, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let swept = funnelhouse::sink::sweep_leftovers(&warehouse, "demo", None)
        .await
        .unwrap();
    assert_eq!(swept.raw_runs, 1, "{what}");
    assert!(
        store.head(&ghost).await.is_err(),
        "{what}: ghost raw pages left"
    );
    let landed = store
        .list_with_delimiter(Some(&Path::from("_raw/demo")))
        .await
        .unwrap()
        .common_prefixes;
    assert_eq!(
        landed.len(),
        2,
        "{what}: committed runs' pages kept: {landed:?}"
    );

    // The commit protocol: a publish killed after its record and one rename is finished by
    // roll_forward, and only the published objects remain.
    let file = |n: &str| StagedFile {
        table: "t".into(),
        staged: format!("_staging/j/r1/t/{n}.parquet"),
        target: format!("t/{n}.parquet"),
        rows: 1,
        bytes: 3,
    };
    for n in ["a", "b"] {
        store
            .put(
                &Path::from(file(n).staged.as_str()),
                PutPayload::from_static(b"new"),
            )
            .await
            .unwrap();
    }
    store
        .put(&Path::from("t/b.parquet"), PutPayload::from_static(b"old"))
        .await
        .unwrap();
    let commit = PendingCommit {
        job: "j".into(),
        run_id: "r1".into(),
        files: vec![file("a"), file("b")],
        deletes: vec![],
        table_format: Default::default(),
        txn_version: None,
    };
    store
        .put(
            &Path::from("_commits/j/r1.json"),
            PutPayload::from(serde_json::to_vec(&commit).unwrap()),
        )
        .await
        .unwrap();
    store
        .rename(
            &Path::from(file("a").staged.as_str()),
            &Path::from("t/a.parquet"),
        )
        .await
        .unwrap();
    assert_eq!(roll_forward(&store, "j").await.unwrap(), 1, "{what}");
    for n in ["a", "b"] {
        let got = store
            .get(&Path::from(format!("t/{n}.parquet")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"new", "{what}: t/{n}");
    }
    for gone in ["_commits/j", "_staging/j"] {
        let left: Vec<_> = store
            .list(Some(&Path::from(gone)))
            .try_collect()
            .await
            .unwrap();
        assert!(left.is_empty(), "{what}: {gone}: {left:?}");
    }

    // The job lock: conditional create, refusal, release, takeover of an expired lease.
    let lease = Duration::from_secs(30);
    let held = JobLock::acquire(&store, "j", "r1", lease).await.unwrap();
    let refused = JobLock::acquire(&store, "j", "r2", lease)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Locked { .. }), "{what}: {refused}");
    held.release().await.unwrap();
    let stale = serde_json::json!({
        "job": "j", "run_id": "killed", "host": "h", "pid": 1,
        "acquired_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T00:05:00Z"
    });
    store
        .put(&lock_path("j"), PutPayload::from(stale.to_string()))
        .await
        .unwrap();
    let taken = JobLock::acquire(&store, "j", "r3", lease)
        .await
        .unwrap_or_else(|e| panic!("{what}: expired lease not taken over: {e}"));
    assert!(
        JobLock::acquire(&store, "j", "r4", lease).await.is_err(),
        "{what}"
    );
    taken.release().await.unwrap();
    assert!(
        store.head(&lock_path("j")).await.is_err(),
        "{what}: released"
    );

    // State round-trips.
    let mut st = SourceState::default();
    st.set_watermark("contacts", "2026-11-19T00:00:00Z".into());
    state::save(&store, "j", "s ü", &st).await.unwrap();
    assert_eq!(state::load(&store, "j", "s ü").await.unwrap(), st, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ware house ü");
    suite(Warehouse::open(WarehouseUrl::Local(path)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_in_memory() {
    suite(Warehouse::open(WarehouseUrl::parse("memory://").unwrap()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_s3() {
    let (bucket, unique) = crate::support::s3_bucket_and_folder("run");
    let unique = format!("{unique} ü");
    let url = format!("s3://{bucket}/{unique}/ware house");
    suite(Warehouse::open(WarehouseUrl::parse(&url).unwrap()).unwrap()).await;

    // The keys carry the prefix as written — spaces and unicode, not percent-escapes.
    let bare = Warehouse::open(WarehouseUrl::parse(&format!("s3://{bucket}")).unwrap()).unwrap();
    let keys: Vec<String> = bare
        .store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let wanted = format!("{unique}/ware house/leads/demo.hubspot.parquet");
    assert!(
        keys.iter().any(|k| k == &wanted),
        "no key `{wanted}` among {keys:?}"
    );
}
