//! kill -9 at three points of a run — while pulling, after staging (before the commit
//! record), and halfway through publishing — each time after a committed run: the previous
//! tables stay intact and readable by DuckDB, and the next run, started at once (the killed
//! holder's process is gone, so its lock is taken over without waiting out the lease),
//! completes with the same contents and no duplicates, records a run it rolled forward in
//! `_runs`, and removes what the killed run left. Then three more kills at fixed delays after
//! start, wherever the run is. SIGTERM and SIGINT stop a run cleanly, by hand and from the
//! scheduler.

use std::time::Duration;

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_leave_tables_intact_and_the_next_run_recovers() {
    let sandbox = sandbox(300, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env = env_for(&sandbox);
    // The default lease (a minute): every rerun below starts at once after the kill.
    let job = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let job_arg = job.display().to_string();
    let out = run_binary(&env, &["run", &job_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = all_contents(&warehouse);
    assert_eq!(committed[0].len(), totals.contacts);

    let mut rolled_forward = None;
    for point in ["pull", "write", "publish"] {
        kill9(spawn_paused(&env, &job, point));
        if point == "publish" {
            let records = walk(&warehouse.join("_commits"));
            assert!(
                !records.is_empty(),
                "killed mid-publish: the commit record is there to roll forward"
            );
            rolled_forward = records[0]
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
        }
        assert_eq!(
            all_contents(&warehouse),
            committed,
            "killed during {point}: tables changed"
        );
        // What a kill in the middle of a local write leaves (object_store writes `name#N`,
        // then renames): the next start removes it.
        plant_temporary_files(&warehouse);
        let out = run_binary(&env, &["run", &job_arg]);
        assert!(
            out.status.success(),
            "run after a kill during {point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            all_contents(&warehouse),
            committed,
            "after the kill during {point}"
        );
        let leads = duckdb(&format!(
            "SELECT count(*), count(DISTINCT lead_id) FROM {}",
            table(&warehouse, "leads")
        ));
        assert_eq!(leads[0][0], leads[0][1], "no duplicate leads");
        assert_clean(&warehouse);
        assert_no_leftovers(&warehouse);
    }
    // The run killed mid-publish was finished by the next start, and recorded.
    let rolled_forward = rolled_forward.expect("a commit record was found");
    let runs = assert_runs_add_up(&warehouse);
    assert!(
        runs.iter()
            .any(|(id, status, _)| *id == rolled_forward && status == "succeeded"),
        "the rolled-forward run {rolled_forward} has no _runs row: {runs:?}"
    );
    // Then kills at fixed delays after start, wherever the run happens to be.
    let mut completed = 0;
    for delay_ms in [60, 180, 400] {
        let mut child = binary(&env)
            .args(["run", &job_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().ok();
        if child.wait().unwrap().success() {
            completed += 1;
        }
        assert_eq!(
            all_contents(&warehouse),
            committed,
            "killed {delay_ms} ms in: tables changed"
        );
        let out = run_binary(&env, &["run", &job_arg]);
        assert!(
            out.status.success(),
            "run after a kill {delay_ms} ms in: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(all_contents(&warehouse), committed);
        assert_clean(&warehouse);
        assert_no_leftovers(&warehouse);
    }
    // Four committed runs, the one rolled forward, the recoveries, and any killed run that
    // had written its commit record (rolled forward too); the others left no `_runs` row.
    let recorded = assert_runs_add_up(&warehouse).len();
    assert!(
        (4 + 1 + 3 + completed..=4 + 1 + 3 + 3).contains(&recorded),
        "{recorded} _runs rows"
    );
}

/// Temporary files as a kill in the middle of a local write leaves them, in the job's raw,
/// state and staging folders.
fn plant_temporary_files(warehouse: &std::path::Path) {
    let raw_run = std::fs::read_dir(warehouse.join("_raw/demo"))
        .expect("raw pages landed")
        .flatten()
        .next()
        .expect("a landed run")
        .path();
    for path in [
        raw_run.join("hubspot/contacts/page-000999.json.zst#1"),
        warehouse.join("_state/demo/hubspot.json#1"),
        warehouse.join("_staging/demo/20260101T000000Z-dead00/leads/demo.hubspot.parquet#1"),
    ] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"cut short").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_a_run_cleanly_and_the_next_run_proceeds_at_once() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env = env_for(&sandbox);
    let job = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let job_arg = job.display().to_string();
    let out = run_binary(&env, &["run", &job_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = all_contents(&warehouse);
    // Everything but the `_runs` rows and the lock: what a stopped run must leave untouched.
    let published = || {
        snapshot(&warehouse)
            .into_iter()
            .filter(|(p, _)| {
                !p.starts_with(warehouse.join("_runs")) && !p.starts_with(warehouse.join("_locks"))
            })
            .collect::<Vec<_>>()
    };

    for (point, signal, code) in [("pull", "TERM", 143), ("write", "INT", 130)] {
        let before = published();
        let (mut child, log) = spawn_paused_logged(&env, &["run", &job_arg], point);
        let lock: serde_json::Value =
            serde_json::from_slice(&std::fs::read(warehouse.join("_locks/demo.json")).unwrap())
                .unwrap();
        let run_id = lock["run_id"].as_str().unwrap().to_string();
        let status = signal_and_wait(&mut child, signal);
        let log = log
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        assert_eq!(
            status.code(),
            Some(code),
            "SIG{signal} during {point}: {log}"
        );
        assert!(
            log.contains(&format!("SIG{signal}")) && log.contains("stop requested"),
            "the signal is logged: {log}"
        );
        assert!(
            !warehouse.join("_locks/demo.json").exists(),
            "SIG{signal}: lock released"
        );
        assert!(
            !warehouse.join("_raw/demo").join(&run_id).exists(),
            "SIG{signal}: the stopped run's pages are removed"
        );
        assert_eq!(
            published(),
            before,
            "SIG{signal}: nothing published or left"
        );
        assert_clean(&warehouse);
        let runs = assert_runs_add_up(&warehouse);
        let row = runs
            .iter()
            .find(|(id, _, _)| *id == run_id)
            .unwrap_or_else(|| panic!("no _runs row for the stopped run: {runs:?}"));
        assert_eq!(row.1, "aborted");
        assert!(
            row.2
                .as_deref()
                .is_some_and(|e| e.contains(&format!("SIG{signal}"))),
            "{row:?}"
        );

        let out = run_binary(&env, &["run", &job_arg]);
        assert!(
            out.status.success(),
            "the next run after SIG{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(all_contents(&warehouse), committed);
        assert_no_leftovers(&warehouse);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_scheduler_stops_after_its_grace_period_records_itself_and_releases_the_lock() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env = env_for(&sandbox);
    // Fires every second; later fires are skipped while the first run is going.
    let job = write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "",
        &[("schedule = \"0 3 * * *\"", "schedule = \"* * * * * *\"")],
    );
    let job_arg = job.display().to_string();
    let (mut child, log) =
        spawn_paused_logged(&env, &["schedule", &job_arg, "--grace-secs", "1"], "pull");
    let status = signal_and_wait(&mut child, "TERM");
    let log = log
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    assert_eq!(status.code(), Some(1), "a run had to be aborted: {log}");
    assert!(
        !warehouse.join("_locks/demo.json").exists(),
        "the aborted run released its lock: {log}"
    );
    assert_clean(&warehouse);
    let runs = assert_runs_add_up(&warehouse);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "aborted");
    assert!(
        walk(&warehouse.join("leads")).is_empty(),
        "nothing published"
    );

    let out = run_binary(&env, &["run", &job_arg]);
    assert!(
        out.status.success(),
        "a run right after the scheduler's stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_leftovers(&warehouse);
}
