//! `funnelhouse backfill JOB --from --to`: re-pulls the range for the sources that support
//! it (Google Ads) and rebuilds exactly the day partitions in it — a day with no rows any
//! more loses its file, days outside keep theirs — idempotently, leaving the other tables and
//! every watermark as they were.

use funnelhouse::pipeline::{Backfill, backfill_job};

use crate::harness::*;
use crate::support::*;

fn run_ids(warehouse: &std::path::Path, table_name: &str, filter: &str) -> Vec<String> {
    duckdb(&format!(
        "SELECT DISTINCT _run_id FROM {} {filter} ORDER BY 1",
        table(warehouse, table_name)
    ))
    .into_iter()
    .map(|r| r[0].as_str().unwrap_or_default().to_string())
    .collect()
}

fn state_files(warehouse: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    snapshot(&warehouse.join("_state"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_rebuilds_exactly_the_range() {
    let sandbox = sandbox(300, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env = env_for(&sandbox);
    let job_path = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let job = load(&job_path, &env);
    let lookup = |name: &str| env.get(name).cloned();

    let first = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .unwrap();
    assert!(first.succeeded());
    let committed = all_contents(&warehouse);
    let states = state_files(&warehouse);
    assert!(!states.is_empty());

    // A day inside the range the vendor has no rows for (the sandbox's data ends yesterday).
    let spend = warehouse.join("spend");
    let emptied = spend.join("date=2026-11-20/demo.google_ads.parquet");
    std::fs::create_dir_all(emptied.parent().unwrap()).unwrap();
    std::fs::copy(
        spend.join("date=2026-11-10/demo.google_ads.parquet"),
        &emptied,
    )
    .unwrap();

    let range = Backfill {
        from: chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
    };
    for round in 0..2 {
        let report = backfill_job(&job, &lookup, run_options(), range)
            .await
            .unwrap();
        assert!(report.succeeded(), "{report:#?}");
        let pulled: Vec<&str> = report.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(pulled, ["google_ads"], "only sources that can backfill run");

        assert!(
            !emptied.exists(),
            "round {round}: an emptied day loses its file"
        );
        assert_eq!(all_contents(&warehouse), committed, "round {round}");
        assert_eq!(
            run_ids(
                &warehouse,
                "spend",
                "WHERE date BETWEEN DATE '2026-11-10' AND DATE '2026-11-19'"
            ),
            vec![report.run_id.clone()],
            "round {round}: every day in the range was rebuilt"
        );
        assert_eq!(
            run_ids(&warehouse, "spend", "WHERE date < DATE '2026-11-10'"),
            vec![first.run_id.clone()],
            "round {round}: days outside the range were not touched"
        );
        for other in ["leads", "survey_responses"] {
            assert_eq!(
                run_ids(&warehouse, other, ""),
                vec![first.run_id.clone()],
                "{other}"
            );
        }
        assert_eq!(state_files(&warehouse), states, "watermarks untouched");
    }
    assert_eq!(assert_runs_add_up(&warehouse).len(), 3);
    assert_clean(&warehouse);

    // The command line: a reversed range is a usage error; a real range commits.
    let job_arg = job_path.display().to_string();
    let out = run_binary(
        &env,
        &[
            "backfill",
            &job_arg,
            "--from",
            "2026-11-12",
            "--to",
            "2026-11-10",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run_binary(
        &env,
        &[
            "backfill",
            &job_arg,
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-05",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all_contents(&warehouse), committed);
}
