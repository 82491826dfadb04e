//! kill -9 at three points of a run — while pulling, after staging (before the commit
//! record), and halfway through publishing — each time after a committed run: the previous
//! tables stay intact and readable by DuckDB, and the next run (once the killed run's lock
//! lease has run out) completes with the same contents and no duplicates. Then three more
//! kills at fixed delays after start, wherever the run is.

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
    let job = write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "lock_lease_secs = 1",
        &[],
    );
    let job_arg = job.display().to_string();
    let out = run_binary(&env, &["run", &job_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = all_contents(&warehouse);
    assert_eq!(committed[0].len(), totals.contacts);

    for point in ["pull", "write", "publish"] {
        kill9(spawn_paused(&env, &job, point));
        if point == "publish" {
            assert!(
                !walk(&warehouse.join("_commits")).is_empty(),
                "killed mid-publish: the commit record is there to roll forward"
            );
        }
        assert_eq!(
            all_contents(&warehouse),
            committed,
            "killed during {point}: tables changed"
        );
        std::thread::sleep(Duration::from_millis(1200));
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
    }
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
        std::thread::sleep(Duration::from_millis(1200));
        let out = run_binary(&env, &["run", &job_arg]);
        assert!(
            out.status.success(),
            "run after a kill {delay_ms} ms in: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(all_contents(&warehouse), committed);
        assert_clean(&warehouse);
    }
    // Four committed runs plus the recoveries; killed runs left no `_runs` row.
    assert_eq!(assert_runs_add_up(&warehouse).len(), 4 + 3 + completed);
}
