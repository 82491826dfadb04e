//! The CRM connectors against their sandbox twins: HubSpot full then incremental (search,
//! archived sweep), the 10,000-result search ceiling (and more contacts than that sharing
//! one `lastmodifieddate`), rate limits (burst and daily), and Salesforce's expired session,
//! invalid query locator and spent request allocation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use funnelhouse::normalize::Dataset;
use funnelhouse::pipeline::RunReport;
use funnelhouse::sandbox::{
    HubspotLimits, HubspotRedate, Mutation, RunningSandbox, SalesforceFaults,
};

use crate::support::*;

const HUBSPOT: &str = r#"
[[sources]]
name = "hubspot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = "${HUBSPOT_TOKEN}"
page_size = 100
"#;

const SALESFORCE: &str = r#"
[[sources]]
name = "salesforce"
kind = "salesforce"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/salesforce"
client_id = "${SALESFORCE_CLIENT_ID}"
client_secret = "${SALESFORCE_CLIENT_SECRET}"
refresh_token = "${SALESFORCE_REFRESH_TOKEN}"
batch_size = 200
[sources.fields]
vendor_score = "Lead_Score__c"
"#;

fn leads_read(report: &RunReport) -> u64 {
    report.datasets.get(&Dataset::Leads).map_or(0, |c| c.read)
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn state(warehouse: &Path, source: &str) -> serde_json::Value {
    let path = warehouse.join(format!("_state/crm/{source}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_incremental_updates_in_place_and_marks_deletions() {
    let sandbox = sandbox(600, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(dir.path(), "crm", &format!("{HUBSPOT}{SALESFORCE}"), &env);
    let all = totals.contacts + totals.salesforce_leads;

    let first = run_within(&job, &env, at(0)).await;
    assert!(first.succeeded(), "{first:#?}");
    assert_eq!(leads_read(&first) as usize, all);
    let leads = table(&warehouse, "leads");
    assert_eq!(
        duckdb_count(&format!("SELECT count(*) FROM {leads}")) as usize,
        all
    );
    assert!(state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"].is_string());
    assert!(state(&warehouse, "salesforce")["streams"]["Lead"]["watermark"].is_string());

    let changed = sandbox.data.mutate(Mutation {
        updates: 7,
        removals: 3,
    });
    let second = run_within(&job, &env, at(60)).await;
    assert!(second.succeeded(), "{second:#?}");
    // Only what changed (and the look-back's overlap) is pulled again.
    let reread = leads_read(&second) as usize;
    assert!(
        (20..=60).contains(&reread),
        "the second run read {reread} records of {all}"
    );

    assert_eq!(
        duckdb_count(&format!("SELECT count(*) FROM {leads}")) as usize,
        all,
        "updated in place, deletions kept as rows"
    );
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(DISTINCT (source_system, lead_id)) FROM {leads}"
        )) as usize,
        all,
        "one row per lead"
    );
    let deleted = duckdb(&format!(
        "SELECT source_system, lead_id FROM {leads} WHERE is_deleted ORDER BY 1, 2"
    ));
    let mut expected: Vec<(String, String)> = changed
        .hubspot_archived
        .iter()
        .map(|id| ("hubspot".to_string(), id.clone()))
        .chain(
            changed
                .salesforce_deleted
                .iter()
                .map(|id| ("salesforce".to_string(), id.clone())),
        )
        .collect();
    expected.sort();
    let deleted: Vec<(String, String)> = deleted
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(deleted, expected);

    // Updated records carry the new modification time and values.
    let modified = chrono::DateTime::parse_from_rfc3339(&changed.modified_at).unwrap();
    let fresh = duckdb_count(&format!(
        "SELECT count(*) FROM {leads} WHERE lead_status_raw = 'IN_PROGRESS' \
         AND epoch_ms(updated_at) = {} AND source_system = 'hubspot' AND lead_id IN ({})",
        modified.timestamp_millis(),
        quoted(&changed.hubspot_updated)
    ));
    assert_eq!(fresh, 7);
    let fresh = duckdb_count(&format!(
        "SELECT count(*) FROM {leads} WHERE epoch_ms(updated_at) = {} \
         AND source_system = 'salesforce' AND NOT is_deleted AND lead_id IN ({})",
        modified.timestamp_millis(),
        quoted(&changed.salesforce_updated)
    ));
    assert_eq!(fresh, 7);
    // The watermarks moved to the mutation's time.
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"],
        changed.modified_at
    );
    assert_eq!(
        state(&warehouse, "salesforce")["streams"]["Lead"]["watermark"],
        modified.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );

    // A third run with nothing new changes nothing.
    let third = run_within(&job, &env, at(120)).await;
    assert!(third.succeeded());
    assert_eq!(
        duckdb_count(&format!("SELECT count(*) FROM {leads}")) as usize,
        all
    );
}

/// Assert the `leads` table holds `scale` rows, one per lead id; the table for DuckDB.
fn each_contact_once(warehouse: &Path, scale: usize) -> String {
    let leads = table(warehouse, "leads");
    assert_eq!(
        duckdb_count(&format!("SELECT count(*) FROM {leads}")) as usize,
        scale
    );
    assert_eq!(
        duckdb_count(&format!("SELECT count(DISTINCT lead_id) FROM {leads}")) as usize,
        scale
    );
    leads
}

/// One HubSpot run whose watermark is far in the past, so its incremental search must
/// return every contact (searches of 200, a generous client limit); its report and warehouse.
async fn search_everything(sandbox: &RunningSandbox, dir: &Path) -> (RunReport, PathBuf) {
    let env = env_for(sandbox);
    let sources = format!(
        "{HUBSPOT}search_page_size = 200\n[sources.rate_limit]\nrequests_per_window = 1000\n"
    );
    let (job, warehouse) = job_in(dir, "crm", &sources, &env);
    let lookup = |name: &str| env.get(name).cloned();
    let store = funnelhouse::pipeline::open_warehouse(&job, &lookup)
        .unwrap()
        .store;
    let mut old = funnelhouse::state::SourceState::default();
    old.set_watermark("contacts", "2000-01-01T00:00:00.000Z".into());
    funnelhouse::state::save(&store, "crm", "hubspot", &old)
        .await
        .unwrap();
    (run_within(&job, &env, at(0)).await, warehouse)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_past_the_ceiling_loses_no_contact_and_keeps_ties() {
    let scale = funnelhouse::sandbox::SEARCH_CEILING + 50;
    let sandbox = sandbox(scale, 0).await;
    // 100 contacts share one modification time, the newest: sorted ascending they sit at
    // positions 9,950..10,050, across the ceiling.
    let tied = sandbox.data.mutate(Mutation {
        updates: 100,
        removals: 0,
    });
    let dir = tempfile::tempdir().unwrap();
    let (report, warehouse) = search_everything(&sandbox, dir.path()).await;
    assert!(report.succeeded(), "{report:#?}");
    let requests = report.sources[0].requests;
    assert!(
        (50..=80).contains(&requests),
        "{requests} requests for {scale} contacts"
    );
    let leads = each_contact_once(&warehouse, scale);
    let modified = chrono::DateTime::parse_from_rfc3339(&tied.modified_at).unwrap();
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE epoch_ms(updated_at) = {} AND lead_id IN ({})",
            modified.timestamp_millis(),
            quoted(&tied.hubspot_updated)
        )),
        100,
        "every contact sharing the timestamp is kept"
    );
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"],
        tied.modified_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_contacts_than_the_ceiling_sharing_one_date_are_read_by_id() {
    // The bug this pins: a restart from the last `lastmodifieddate` made no progress when
    // more than 10,000 contacts shared it, and the incremental run failed every time.
    let ceiling = funnelhouse::sandbox::SEARCH_CEILING;
    let scale = ceiling + 300;
    let sandbox = sandbox(scale, 0).await;
    // 10,100 contacts share one modification time, the newest (a bulk import); 200 keep
    // their older ones. Ids run from 101 to about 31,000, across digit counts.
    let tied = sandbox.data.mutate(Mutation {
        updates: ceiling + 100,
        removals: 0,
    });
    assert_eq!(tied.hubspot_updated.len(), ceiling + 100);
    let dir = tempfile::tempdir().unwrap();
    let (report, warehouse) = search_everything(&sandbox, dir.path()).await;
    assert!(report.succeeded(), "{report:#?}");
    // Search pages hold 200 contacts, or 100 when the sandbox serves a short one; whether a
    // page is short depends only on its offset, so every query that reaches the ceiling
    // reads the same P pages, 50 ≤ P ≤ 99 (it stops once the next offset passes 9,800):
    //   1. `GTE` the old watermark: 200 older contacts then the tie, ceiling: P pages;
    //   2. `GTE` the tied time (the last date seen), ceiling with no progress: P pages;
    //   3. the tie by id: `EQ` the tied time, ceiling: P pages;
    //   4. the tie `hs_object_id GT` the largest id read: the last 100 or 200 (offsets are
    //      sums of 100s and 200s, so 3 stopped at 9,900 or 10,000), to the end: 1 to 3 pages
    //      (a short page, and an empty one after a short last page);
    //   5. `GT` the tied time: 1 empty page;
    //   6. the archived sweep: 1 page.
    // 3 × 50 + 1 + 1 + 1 = 153 to 3 × 99 + 3 + 1 + 1 = 302.
    let source = &report.sources[0];
    assert_eq!(source.retries, 0);
    assert!(
        (153..=302).contains(&source.requests),
        "{} requests for {scale} contacts",
        source.requests
    );
    let leads = each_contact_once(&warehouse, scale);
    // Ten thousand ids are too many for a command line: DuckDB reads them from a file.
    let ids = dir.path().join("tied_ids.csv");
    std::fs::write(&ids, tied.hubspot_updated.join("\n")).unwrap();
    let modified = chrono::DateTime::parse_from_rfc3339(&tied.modified_at).unwrap();
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE epoch_ms(updated_at) = {} AND lead_id IN \
             (SELECT id FROM read_csv('{}', header = false, columns = {{'id': 'VARCHAR'}}))",
            modified.timestamp_millis(),
            ids.display()
        )) as usize,
        ceiling + 100,
        "every contact sharing the timestamp is kept, with it"
    );
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"],
        tied.modified_at
    );
}

/// An incremental HubSpot run asks for what changed, not for a fixed look-back before the
/// watermark: one search request when nothing did (issue 22), and still every contact
/// modified shortly before the last run began that the search index held back until after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_incremental_runs_search_what_changed_and_what_the_index_held_back() {
    let sandbox = sandbox(600, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let body = format!("{HUBSPOT}sweep_archived = false\n");
    let (job, warehouse) = job_in(dir.path(), "crm", &body, &env);
    let leads = table(&warehouse, "leads");
    let first = run_within(&job, &env, at(0)).await;
    assert!(first.succeeded(), "{first:#?}");
    // (requests, contacts read); a short search page may still carry a cursor (as HubSpot's
    // do), so a run that reads a few contacts may ask a second time.
    let hubspot = |report: &RunReport| (report.sources[0].requests, leads_read(report));
    let requests = |report: &RunReport| report.sources[0].requests;
    let updated_at = |id: &str| {
        duckdb(&format!(
            "SELECT strftime(updated_at, '%H:%M') FROM {leads} WHERE lead_id = '{id}'"
        ))
    };
    let redate = |index: usize, hh_mm: &str| {
        sandbox
            .data
            .redate_hubspot(&HubspotRedate {
                index,
                modified_at: format!("{}T{hh_mm}:00.000Z", today()),
            })
            .unwrap()
    };

    // Nothing changed since a run long after the last modification: one empty search page.
    let second = run_within(&job, &env, at(30)).await;
    assert!(second.succeeded(), "{second:#?}");
    assert_eq!(hubspot(&second), (1, 0));

    // A contact modified two minutes before the next run (04:58; it begins at 05:00) is read,
    // and becomes the watermark.
    let early = redate(3, "04:58");
    let third = run_within(&job, &env, at(60)).await;
    assert!(third.succeeded(), "{third:#?}");
    assert_eq!(leads_read(&third), 1);
    assert!(requests(&third) <= 2, "{third:#?}");
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"],
        "2026-11-20T04:58:00.000Z"
    );
    assert_eq!(updated_at(&early), [[serde_json::json!("04:58")]]);

    // One modified at 04:55, before the watermark, reaches the index only after that run
    // (the sandbox serves it from now on, as a lagging index would): the next run reads it,
    // with the 04:58 one again, as both are within the look-back of 05:00 (10 minutes).
    let late = redate(5, "04:55");
    let fourth = run_within(&job, &env, at(120)).await;
    assert!(fourth.succeeded(), "{fourth:#?}");
    assert_eq!(leads_read(&fourth), 2);
    assert!(requests(&fourth) <= 2, "{fourth:#?}");
    assert_eq!(updated_at(&late), [[serde_json::json!("04:55")]]);

    // That run began an hour after the watermark: the next one reads only what is newer.
    let fifth = run_within(&job, &env, at(180)).await;
    assert!(fifth.succeeded(), "{fifth:#?}");
    assert_eq!(hubspot(&fifth), (1, 0));
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts_read_before"]["watermark"],
        "2026-11-20T06:50:00.000Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_limit_commits_what_was_pulled_and_the_next_run_resumes() {
    let sandbox = sandbox(500, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let sources = format!("{HUBSPOT}search_page_size = 50\n");
    let (job, warehouse) = job_in(dir.path(), "crm", &sources, &env);
    assert!(run_within(&job, &env, at(0)).await.succeeded());

    // 150 contacts change at one instant; the day's quota allows one more request.
    let tied = sandbox.data.mutate(Mutation {
        updates: 150,
        removals: 0,
    });
    sandbox.data.set_hubspot_limits(HubspotLimits {
        daily: 1,
        ..HubspotLimits::default()
    });
    let cut = run_within(&job, &env, at(60)).await;
    assert!(
        cut.succeeded(),
        "the daily limit is not a failure: {cut:#?}"
    );
    assert_eq!(cut.sources[0].retries, 0, "a daily 429 is not retried");
    // The run's record says the source stopped early, not only the log.
    let warnings = duckdb(&format!(
        "SELECT warnings FROM {} WHERE run_id = '{}'",
        table(&warehouse, "_runs"),
        cut.run_id
    ));
    let warning = warnings[0][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with("hubspot: stopped early by the daily request limit"),
        "{warnings:?}"
    );
    let leads = table(&warehouse, "leads");
    let updated = |warehouse: &Path| {
        let _ = warehouse;
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE lead_status_raw = 'IN_PROGRESS' AND lead_id IN ({})",
            quoted(&tied.hubspot_updated)
        ))
    };
    let partial = updated(&warehouse);
    assert!(
        partial > 0 && partial < 150,
        "{partial} of 150 pulled before the limit"
    );
    assert_eq!(
        state(&warehouse, "hubspot")["streams"]["contacts"]["watermark"],
        tied.modified_at,
        "the watermark is the last record pulled"
    );
    assert_eq!(duckdb_count(&format!("SELECT count(*) FROM {leads}")), 500);

    // The limit resets; the next run picks up the rest of the tie from the watermark.
    sandbox.data.set_hubspot_limits(HubspotLimits::default());
    assert!(run_within(&job, &env, at(120)).await.succeeded());
    assert_eq!(updated(&warehouse), 150);
    assert_eq!(
        duckdb_count(&format!("SELECT count(DISTINCT lead_id) FROM {leads}")),
        500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_burst_limit_is_respected_and_refusals_are_never_repeated() {
    let sandbox = sandbox(300, 0).await;
    sandbox.data.set_hubspot_limits(HubspotLimits {
        burst: 5,
        interval_ms: 1_000,
        daily: 1_000_000,
    });
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    // 300 contacts in pages of 20 plus the archived sweep: 16 requests at 5 per second.
    let sources = HUBSPOT.replace("page_size = 100", "page_size = 20")
        + "[sources.rate_limit]\nrequests_per_window = 5\nwindow_ms = 1000\n";
    let (job, warehouse) = job_in(dir.path(), "crm", &sources, &env);
    let started = Instant::now();
    let report = run_within(&job, &env, at(0)).await;
    let elapsed = started.elapsed();
    assert!(report.succeeded(), "{report:#?}");
    let source = &report.sources[0];
    assert_eq!(source.requests - source.retries, 16);
    assert!(
        elapsed >= Duration::from_millis(2_900) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );
    let (refused, repeated) = sandbox.data.hubspot_refusals();
    assert_eq!(repeated, 0, "no request refused twice");
    // The limiter counts a request until a window after its answer, so the vendor's count
    // (taken on arrival, before the answer) never sees it and the next one together.
    assert_eq!(refused, 0, "a matching limiter is never refused");

    // A client that ignores the limit is refused, waits for the window, and is accepted.
    let dir2 = tempfile::tempdir().unwrap();
    let loose = HUBSPOT.replace("page_size = 100", "page_size = 20")
        + "[sources.rate_limit]\nrequests_per_window = 1000\n";
    let (job2, warehouse2) = job_in(dir2.path(), "crm", &loose, &env);
    let report = run_within(&job2, &env, at(0)).await;
    assert!(report.succeeded(), "{report:#?}");
    let (refused_after, repeated) = sandbox.data.hubspot_refusals();
    assert!(refused_after > refused, "the burst limit was hit");
    assert_eq!(repeated, 0, "no request refused twice");
    for w in [&warehouse, &warehouse2] {
        assert_eq!(
            duckdb_count(&format!("SELECT count(*) FROM {}", table(w, "leads"))),
            300
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_expired_session_is_refreshed_once() {
    let sandbox = sandbox(1000, 0).await;
    let totals = sandbox.data.totals();
    sandbox.data.set_salesforce_faults(SalesforceFaults {
        expire_session_after: 2,
        ..SalesforceFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(dir.path(), "crm", SALESFORCE, &env);
    let report = run_within(&job, &env, at(0)).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(sandbox.data.salesforce_sessions_issued(), 2, "one refresh");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(DISTINCT lead_id) FROM {}",
            table(&warehouse, "leads")
        )) as usize,
        totals.salesforce_leads
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_invalid_query_locator_restarts_from_the_watermark() {
    let sandbox = sandbox(1000, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(dir.path(), "crm", SALESFORCE, &env);
    assert!(run_within(&job, &env, at(0)).await.succeeded());

    // 450 leads change: the incremental query needs three batches of 200.
    let changed = sandbox.data.mutate(Mutation {
        updates: 450,
        removals: 0,
    });
    sandbox.data.set_salesforce_faults(SalesforceFaults {
        invalidate_locator_at: 1,
        ..SalesforceFaults::default()
    });
    let report = run_within(&job, &env, at(60)).await;
    assert!(report.succeeded(), "{report:#?}");
    let leads = table(&warehouse, "leads");
    assert_eq!(
        duckdb_count(&format!("SELECT count(*) FROM {leads}")) as usize,
        totals.salesforce_leads
    );
    let modified = chrono::DateTime::parse_from_rfc3339(&changed.modified_at).unwrap();
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE epoch_ms(updated_at) = {}",
            modified.timestamp_millis()
        )),
        450
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_request_limit_fails_the_source_others_commit_exit_code_1() {
    let sandbox = sandbox(1000, 0).await;
    let totals = sandbox.data.totals();
    sandbox.data.set_salesforce_faults(SalesforceFaults {
        api_allocation: 2,
        ..SalesforceFaults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (_, warehouse) = job_in(dir.path(), "crm", &format!("{HUBSPOT}{SALESFORCE}"), &env);
    let path = dir.path().join("crm.toml");
    let binary = env!("CARGO_BIN_EXE_funnelhouse");
    let child_env = env.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .arg("run")
            .arg(&path)
            .env_clear()
            .envs(child_env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("REQUEST_LIMIT_EXCEEDED"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains(funnelhouse::sandbox::SALESFORCE_CLIENT_SECRET));
    let leads = table(&warehouse, "leads");
    let by_source = duckdb(&format!(
        "SELECT source_system, count(*) FROM {leads} GROUP BY 1"
    ));
    assert_eq!(
        by_source,
        vec![vec![
            serde_json::json!("hubspot"),
            serde_json::json!(totals.contacts)
        ]],
        "HubSpot committed, Salesforce nothing"
    );
    let runs = duckdb(&format!(
        "SELECT status, error FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs[0][0], "partial");
    assert!(
        runs[0][1]
            .as_str()
            .unwrap()
            .contains("REQUEST_LIMIT_EXCEEDED")
    );
}

/// Replays the hand-written pages under `tests/fixtures/<vendor>/replay` (design §9 layout).
async fn replay_fixtures(vendor: &str, sources: &str) -> (RunReport, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = [
        ("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9"),
        ("FUNNELHOUSE_HASH_KEY", "test-hash-key"),
        ("HUBSPOT_TOKEN", "unused"),
        ("SALESFORCE_CLIENT_ID", "unused"),
        ("SALESFORCE_CLIENT_SECRET", "unused"),
        ("SALESFORCE_REFRESH_TOKEN", "unused"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (job, warehouse) = job_in(dir.path(), "crm", sources, &env);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(vendor)
        .join("replay");
    let mut options = at(0);
    options.replay = Some(funnelhouse::pipeline::Replay::directory(&root).unwrap());
    (run_within(&job, &env, options).await, warehouse, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_vendor_pages_replay_into_leads() {
    // HubSpot: an incremental search whose first page is short yet has a next cursor, then
    // the archived sweep.
    let (report, warehouse, _dir) = replay_fixtures("hubspot", HUBSPOT).await;
    assert!(report.succeeded(), "{report:#?}");
    let rows = duckdb(&format!(
        "SELECT lead_id, is_deleted, lead_status_raw, vendor_score FROM {} ORDER BY lead_id",
        table(&warehouse, "leads")
    ));
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["151", "152", "160", "171"],
        "the short page did not end the pull"
    );
    assert_eq!(rows[3][1], true, "archived → is_deleted");
    assert!(rows[0][2].is_null(), "\"\" is null");
    assert_eq!(rows[1][3], 80);

    let (report, warehouse, _dir) = replay_fixtures("salesforce", SALESFORCE).await;
    assert!(report.succeeded(), "{report:#?}");
    let rows = duckdb(&format!(
        "SELECT lead_id, is_deleted, lifecycle_stage_raw, vendor_score, owner_id FROM {} ORDER BY lead_id",
        table(&warehouse, "leads")
    ));
    assert_eq!(rows.len(), 4);
    let deleted: Vec<&str> = rows
        .iter()
        .filter(|r| r[1] == true)
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["00Q5g00000AbCdQRST"]);
    assert!(rows.iter().any(|r| r[2] == "converted"));
    assert!(
        rows.iter().any(|r| r[4] == "00G5g00000QueueAAA"),
        "queue owners kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_contacts_join_leads_with_their_account_name() {
    let sandbox = sandbox(400, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let sources = SALESFORCE.replace(
        "batch_size = 200\n",
        "batch_size = 200\nobjects = [\"Lead\", \"Contact\"]\n",
    );
    let (job, warehouse) = job_in(dir.path(), "crm", &sources, &env);
    let report = run_within(&job, &env, at(0)).await;
    assert!(report.succeeded(), "{report:#?}");
    let leads = table(&warehouse, "leads");
    let by_prefix = duckdb(&format!(
        "SELECT left(lead_id, 3), count(*), count(company) FROM {leads} GROUP BY 1 ORDER BY 1"
    ));
    let converted = duckdb_count(&format!(
        "SELECT count(*) FROM {leads} WHERE lifecycle_stage_raw = 'converted'"
    ));
    assert!(converted > 0);
    assert_eq!(by_prefix.len(), 2, "{by_prefix:?}");
    assert_eq!(by_prefix[0][0], "003");
    assert_eq!(
        by_prefix[0][1], converted,
        "every converted lead is a contact"
    );
    assert!(
        by_prefix[0][2].as_i64().unwrap() > 0,
        "Account.Name feeds company"
    );
    assert_eq!(by_prefix[1][0], "00Q");
    assert_eq!(by_prefix[1][1], totals.salesforce_leads as i64);
    let streams = &state(&warehouse, "salesforce")["streams"];
    assert!(
        streams["Lead"]["watermark"].is_string() && streams["Contact"]["watermark"].is_string()
    );
}
