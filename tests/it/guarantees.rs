//! The run guarantees end to end: idempotent reruns, raw landing and replay (`reprocess`
//! with the vendors gone, `run --replay` of plain `.json` pages), raw retention, the job
//! lock, `_runs` accounting, and a failing source that fails the run loudly while the
//! others commit.

use std::io::Read;

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_reprocess_and_replay_leave_the_same_tables() {
    let sandbox = sandbox(400, 11).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("ware house ü");
    let mut env = env_for(&sandbox);
    let job_path = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let job = load(&job_path, &env);
    let lookup = |name: &str| env.get(name).cloned();

    let first = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("first run");
    assert!(first.succeeded(), "{first:#?}");
    let committed = all_contents(&warehouse);
    assert!(committed.iter().all(|rows| !rows.is_empty()));

    // Every response body was landed, zstd-compressed, in the §9 layout.
    let raw = warehouse.join("_raw/demo").join(&first.run_id);
    let page = raw.join("hubspot/hubspot/contacts/page-000001.json.zst");
    let body: serde_json::Value = serde_json::from_slice(
        &zstd::decode_all(std::fs::File::open(&page).unwrap_or_else(|e| {
            panic!(
                "first page landed ({e}): {:?}",
                walk(&warehouse.join("_raw"))
            )
        }))
        .unwrap(),
    )
    .unwrap();
    assert!(body["results"].as_array().is_some_and(|r| !r.is_empty()));
    for endpoint in [
        "hubspot/hubspot/contacts",
        "google_ads/google_ads/search",
        "pulse/typeform/responses",
    ] {
        let pages = walk(&raw.join(endpoint));
        assert!(
            !pages.is_empty()
                && pages
                    .iter()
                    .all(|p| p.to_string_lossy().ends_with(".json.zst")),
            "{endpoint}: {pages:?}"
        );
    }

    // A landed run from long ago is pruned by the next live run (retention 7 days). It has a
    // `_runs` file (a copy, removed again below), so it counts as committed: the raw pages of
    // runs that never committed are removed at every start, whatever their age.
    let old = warehouse.join("_raw/demo/20200101T000000Z-0000aa/hubspot/hubspot/contacts");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("page-000001.json.zst"), b"old").unwrap();
    let old_row = warehouse.join("_runs/demo.20200101T000000Z-0000aa.parquet");
    std::fs::copy(
        warehouse.join(format!("_runs/demo.{}.parquet", first.run_id)),
        &old_row,
    )
    .unwrap();

    // Idempotent: the same run again leaves the same contents (lineage columns aside).
    let second = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("second run");
    assert!(second.succeeded());
    assert_same_contents(
        &all_contents(&warehouse),
        &committed,
        "rerun changed a table",
    );
    assert!(
        walk(&warehouse.join("_raw/demo/20200101T000000Z-0000aa")).is_empty(),
        "raw pages past their retention are pruned"
    );
    std::fs::remove_file(&old_row).unwrap();
    assert!(raw.exists(), "recent landed runs are kept");
    let state_before = std::fs::read(warehouse.join("_state/demo/pulse.json")).unwrap();

    // Reprocess the first run with every vendor gone: no network, same tables.
    drop(sandbox);
    env.insert(
        "FUNNELHOUSE_SANDBOX_URL".into(),
        "http://127.0.0.1:9".into(),
    );
    let job_arg = job_path.display().to_string();
    let out = run_binary(&env, &["reprocess", &job_arg, "--run", &first.run_id]);
    assert!(
        out.status.success(),
        "reprocess failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_contents(
        &all_contents(&warehouse),
        &committed,
        "reprocess changed a table",
    );
    assert_eq!(
        std::fs::read(warehouse.join("_state/demo/pulse.json")).unwrap(),
        state_before,
        "a replay never moves watermarks"
    );

    // Replay a directory of plain `.json` pages (decompressed copies of the landed run).
    let recording = dir.path().join("recording");
    for file in walk(&raw) {
        let relative = file.strip_prefix(&raw).unwrap();
        let target = recording.join(relative.to_string_lossy().trim_end_matches(".zst"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let mut bytes = Vec::new();
        std::fs::File::open(&file)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        if file.extension().is_some_and(|e| e == "zst") {
            bytes = zstd::decode_all(&bytes[..]).unwrap();
        }
        std::fs::write(target, bytes).unwrap();
    }
    assert!(
        recording
            .join("pulse/typeform/responses/page-000001.json")
            .exists()
    );
    let out = run_binary(
        &env,
        &[
            "run",
            &job_arg,
            "--replay",
            &recording.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_contents(
        &all_contents(&warehouse),
        &committed,
        "replay changed a table",
    );

    let runs = assert_runs_add_up(&warehouse);
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|(_, status, _)| status == "succeeded"));
    assert_clean(&warehouse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_fails_the_run_and_the_others_commit() {
    let sandbox = sandbox(300, 7).await;
    let totals = sandbox.data.totals();
    // This job pulls Google Ads only of the ad platforms the sandbox serves, its whole
    // history (the harness sets `initial_days = 120`).
    let google: Vec<_> = sandbox
        .data
        .spend_facts()
        .into_iter()
        .filter(|f| f.platform == "google_ads")
        // Google omits rows whose metrics are all zero.
        .filter(|f| f.malformed || f.cost_micros != 0 || f.impressions != 0 || f.clicks != 0)
        .collect();
    let google_rows = google.len();
    let google_malformed = google.iter().filter(|f| f.malformed).count();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let mut env = env_for(&sandbox);
    env.insert("TYPEFORM_TOKEN".into(), "not-the-typeform-token".into());
    let job_path = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);

    let out = run_binary(&env, &["run", &job_path.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "a failed source means exit 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pulse"), "{stderr}");

    let runs = assert_runs_add_up(&warehouse);
    assert_eq!(runs.len(), 1);
    let (_, status, error) = &runs[0];
    assert_eq!(status, "partial");
    let error = error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("pulse:") && error.contains("401"),
        "_runs.error names the source and why: {error}"
    );
    assert!(!error.contains("hubspot") && !error.contains("google_ads"));

    // The other sources committed, every record accounted for.
    let leads = duckdb(&format!(
        "SELECT count(*), count(DISTINCT lead_id) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(
        leads[0][0].as_i64().unwrap() as usize,
        totals.contacts - totals.contacts_malformed
    );
    assert_eq!(leads[0][0], leads[0][1]);
    let counted = duckdb(&format!(
        "SELECT leads_read, leads_rejected, spend_read, spend_rejected, survey_responses_read FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(counted[0][0].as_i64().unwrap() as usize, totals.contacts);
    assert_eq!(
        counted[0][1].as_i64().unwrap() as usize,
        totals.contacts_malformed
    );
    assert_eq!(counted[0][2].as_i64().unwrap() as usize, google_rows);
    assert_eq!(counted[0][3].as_i64().unwrap() as usize, google_malformed);
    assert_eq!(counted[0][4].as_i64(), Some(0));
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "_rejects")
        )) as usize,
        totals.contacts_malformed + google_malformed
    );
    assert!(
        walk(&warehouse.join("survey_responses")).is_empty(),
        "the failed source committed nothing"
    );
    assert!(
        !warehouse.join("_state/demo/pulse.json").exists(),
        "no watermark for a failed source"
    );
    assert_clean(&warehouse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_and_a_killed_runs_lock_expires() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env = env_for(&sandbox);
    let job_path = write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "lock_lease_secs = 2",
        &[],
    );
    let job_arg = job_path.display().to_string();

    // The first run holds the lock (and keeps renewing it) while paused before its commit.
    let first = spawn_paused(&env, &job_path, "write");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // The holder keeps renewing its lock, so the lock is compared by holder, the rest byte
    // for byte.
    let lock_holder = || {
        let text = std::fs::read(warehouse.join("_locks/demo.json")).expect("lock held");
        serde_json::from_slice::<serde_json::Value>(&text).unwrap()["run_id"].clone()
    };
    let unlocked = |files: Vec<(std::path::PathBuf, Vec<u8>)>| {
        files
            .into_iter()
            .filter(|(p, _)| !p.starts_with(warehouse.join("_locks")))
            .collect::<Vec<_>>()
    };
    let holder = lock_holder();
    let before = unlocked(snapshot(&warehouse));
    let out = run_binary(&env, &["run", &job_arg]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("job `demo` is already running") && stderr.contains("lease until"),
        "clear message: {stderr}"
    );
    let after = unlocked(snapshot(&warehouse));
    let changed: Vec<_> = after
        .iter()
        .filter(|f| !before.contains(f))
        .chain(before.iter().filter(|f| !after.contains(f)))
        .map(|(p, _)| p.clone())
        .collect();
    assert!(changed.is_empty(), "the refused run touched {changed:?}");
    assert_eq!(lock_holder(), holder, "the lock still names the first run");

    // Killed while holding it: the lock stays until its lease runs out, then the next run
    // takes it over and commits.
    kill9(first);
    assert!(warehouse.join("_locks/demo.json").exists());
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let out = run_binary(&env, &["run", &job_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(assert_runs_add_up(&warehouse).len(), 1);
    assert_clean(&warehouse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pull_far_smaller_than_the_table_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let warnings = || {
        duckdb(&format!(
            "SELECT warnings FROM {} ORDER BY finished_at",
            table(&warehouse, "_runs")
        ))
        .into_iter()
        .map(|r| r[0].as_str().map(str::to_string))
        .collect::<Vec<_>>()
    };
    for (scale, runs) in [(300, 1), (260, 2), (100, 3)] {
        // Full pulls each time: without committed watermarks the CRM lists everything.
        std::fs::remove_dir_all(warehouse.join("_state")).ok();
        let sandbox = sandbox(scale, 0).await;
        let env = env_for(&sandbox);
        let job = load(
            &write_job(dir.path(), &warehouse.display().to_string(), "", &[]),
            &env,
        );
        let lookup = |name: &str| env.get(name).cloned();
        let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
            .await
            .unwrap();
        assert!(report.succeeded(), "a warning does not fail the run");
        assert_eq!(warnings().len(), runs);
    }
    let recorded = warnings();
    assert_eq!(recorded[0], None, "first pull: nothing to compare with");
    assert_eq!(recorded[1], None, "260 of 300 is above the 0.5 ratio");
    let flagged = recorded[2].as_deref().expect("100 of 260 is flagged");
    assert!(
        flagged.starts_with("hubspot:")
            && flagged.contains("returned 100 leads rows")
            && flagged.contains("held 260"),
        "{flagged}"
    );
    assert_runs_add_up(&warehouse);
}

/// Issue 15 item 8: a run reprocessed a week after it ran pulls on its own clock. Run A a
/// week before the sandbox's today, run B today (it re-pulls the last week of spend), then
/// reprocess A today: its window is A's (not today's), so B's last week of spend — days
/// with no rows in A's recording — is neither covered nor deleted, and the tables are
/// those B left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_a_run_a_week_later_leaves_the_same_tables() {
    use chrono::TimeZone;
    let sandbox = sandbox(300, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    let env = env_for(&sandbox);
    let job = load(
        &write_job(dir.path(), &warehouse.display().to_string(), "", &[]),
        &env,
    );
    let lookup = |name: &str| env.get(name).cloned();
    let at = |days_before: i64, hour: u32| funnelhouse::pipeline::RunOptions {
        now: chrono::Utc.from_utc_datetime(
            &(today() - chrono::Duration::days(days_before))
                .and_hms_opt(hour, 0, 0)
                .unwrap(),
        ),
        ..funnelhouse::pipeline::RunOptions::default()
    };
    let a = funnelhouse::pipeline::run_job(&job, &lookup, at(7, 5))
        .await
        .expect("run a week ago");
    assert!(a.succeeded(), "{a:#?}");
    let after_a = all_contents(&warehouse);
    let b = funnelhouse::pipeline::run_job(&job, &lookup, at(0, 4))
        .await
        .expect("run today");
    assert!(b.succeeded(), "{b:#?}");
    let want = all_contents(&warehouse);
    let last_week = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE date > DATE '{}'",
        table(&warehouse, "spend"),
        today() - chrono::Duration::days(7)
    ));
    assert!(last_week > 0, "run B wrote the last week's spend");

    let opened = funnelhouse::pipeline::open_warehouse(&job, &lookup).unwrap();
    let replay = funnelhouse::pipeline::Replay::in_store(
        std::sync::Arc::clone(&opened.store),
        format!("_raw/{}/{}", job.name, a.run_id),
    );
    let options = funnelhouse::pipeline::RunOptions {
        replay: Some(replay),
        ..at(0, 6)
    };
    let again = funnelhouse::pipeline::run_job_in(
        &job,
        &lookup,
        options,
        &opened,
        std::time::Instant::now(),
    )
    .await
    .expect("reprocess completes");
    assert!(again.succeeded(), "{again:#?}");
    // `spend` is day-partitioned by window: A's window is replaced, B's later days stay as B
    // left them. `leads` and `survey_responses` are A's full pulls, replacing the tables, so
    // they are exactly A's: the replay judged A's records on A's clock (a record dated after
    // it is mended the same way), not on the later day's.
    let got = all_contents(&warehouse);
    let expected: Vec<_> = TABLES
        .iter()
        .zip(after_a.iter().zip(&want))
        .map(|(table, (a, b))| if *table == "spend" { b } else { a }.clone())
        .collect();
    assert_same_contents(&got, &expected, "reprocessing a week later changed a table");
}

/// Issue 15 item 9: a recording with a page missing is an error for its source, naming the
/// source, the endpoint and the page; that source commits nothing, the others do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_with_a_missing_page_fails_its_source_by_name() {
    let sandbox = sandbox(300, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    let env = env_for(&sandbox);
    let job_path = write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "",
        &[("page_size = 100", "page_size = 50")],
    );
    let job = load(&job_path, &env);
    let lookup = |name: &str| env.get(name).cloned();
    let first = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("first run");
    assert!(first.succeeded(), "{first:#?}");
    let leads = contents(&warehouse, "leads");

    let recording = warehouse.join("_raw/demo").join(&first.run_id);
    let contacts = recording.join("hubspot/hubspot/contacts");
    assert!(contacts.join("page-000003.json.zst").exists());
    std::fs::remove_file(contacts.join("page-000002.json.zst")).unwrap();
    let out = run_binary(
        &env,
        &[
            "run",
            &job_path.display().to_string(),
            "--replay",
            &recording.display().to_string(),
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("`hubspot`")
            && said.contains("`hubspot/contacts`")
            && said.contains("no page 2"),
        "{said}"
    );
    assert_eq!(
        contents(&warehouse, "leads"),
        leads,
        "nothing half-replayed"
    );
    let runs = assert_runs_add_up(&warehouse);
    let (_, status, error) = runs.last().unwrap();
    assert_eq!(status, "partial");
    assert!(
        error.as_deref().is_some_and(|e| e.contains("no page 2")),
        "{error:?}"
    );
}
