//! The spend connectors (Google Ads, Meta, LinkedIn) and the costs file against the
//! sandbox: counts and exact per-currency totals equal what the sandbox serves (totalled
//! here, independently of the pipeline), quota errors and throttles wait as told, Meta's
//! code 1 splits ranges without changing the result, bad tokens and retired versions fail
//! cleanly, restated days are replaced whole, bad costs lines land in `_rejects`, and costs
//! and intent files on S3 are read with the warehouse's S3 settings, keys as written.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use funnelhouse::config::{JobConfig, parse_job};
use funnelhouse::pipeline::{RunReport, run_job};
use funnelhouse::sandbox::RunningSandbox;

use crate::support::*;

const GOOGLE: &str = r#"
[[sources]]
name = "google"
kind = "google_ads"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/google_ads"
customer_ids = ["1112223334", "5556667778"]
developer_token = "${GOOGLE_ADS_DEVELOPER_TOKEN}"
refresh_token = "${GOOGLE_ADS_REFRESH_TOKEN}"
client_id = "${GOOGLE_ADS_CLIENT_ID}"
client_secret = "${GOOGLE_ADS_CLIENT_SECRET}"
token_url = "${FUNNELHOUSE_SANDBOX_URL}/google_oauth/token"
"#;

const META: &str = r#"
[[sources]]
name = "meta"
kind = "meta_ads"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/meta"
account_ids = ["act_101000000000001", "101000000000002"]
access_token = "${META_ACCESS_TOKEN}"
page_size = 40
"#;

const LINKEDIN: &str = r#"
[[sources]]
name = "linkedin"
kind = "linkedin_ads"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/linkedin"
account_ids = ["508123456", "508654321"]
access_token = "${LINKEDIN_ACCESS_TOKEN}"
"#;

/// Fast retries so fault tests stay short; waits the vendor asks for are not shortened.
const FAST_HTTP: &str = "initial_backoff_ms = 10\nmax_attempts = 3\n";

fn with_fast_http(sources: &str) -> String {
    sources.replace(
        "\n[[sources]]",
        &format!("\n[[sources]]\n[sources.http]\n{FAST_HTTP}"),
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/costs")
        .join(name)
}

fn costs_source(file: &str) -> String {
    costs_source_at(fixture(file))
}

fn costs_source_at(path: PathBuf) -> String {
    format!(
        "\n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = {:?}\n",
        path.display().to_string()
    )
}

fn job(warehouse: &Path, sources: &str, env: &HashMap<String, String>) -> JobConfig {
    // `[sources.http]` must follow its source's keys: move each one to the end of its table.
    let mut text = format!(
        "name = \"spendtest\"\nwarehouse = {:?}\nhash_key = \"${{FUNNELHOUSE_HASH_KEY}}\"\n",
        warehouse.display().to_string()
    );
    for block in sources
        .split("\n[[sources]]")
        .filter(|b| !b.trim().is_empty())
    {
        let (http, keys): (Vec<&str>, Vec<&str>) = block.lines().partition(|l| {
            l.starts_with("[sources.http]")
                || l.starts_with("initial_backoff_ms")
                || l.starts_with("max_attempts")
        });
        text.push_str("\n[[sources]]\n");
        text.push_str(&keys.join("\n"));
        text.push('\n');
        if !http.is_empty() {
            text.push_str(&http.join("\n"));
            text.push('\n');
        }
    }
    let lookup = |name: &str| env.get(name).cloned();
    parse_job(Path::new("spend-test.toml"), &text, &lookup)
        .unwrap_or_else(|d| panic!("test job is valid: {d:?}\n{text}"))
}

async fn run(job: &JobConfig, env: &HashMap<String, String>) -> RunReport {
    let lookup = |name: &str| env.get(name).cloned();
    run_job(job, &lookup, run_options())
        .await
        .expect("run completes")
}

fn source<'a>(report: &'a RunReport, name: &str) -> &'a funnelhouse::pipeline::SourceReport {
    report
        .sources
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no source {name}"))
}

/// `micros` as DuckDB prints a DECIMAL(38,6).
fn decimal(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// `(platform, currency) → (rows, exact total)` of what the sandbox serves now.
fn expected_by_currency(sandbox: &RunningSandbox) -> BTreeMap<(String, String), (i64, String)> {
    let mut sums: BTreeMap<(String, String), (i64, i128)> = BTreeMap::new();
    for fact in sandbox
        .data
        .spend_facts()
        .into_iter()
        .filter(|f| !f.malformed)
    {
        let entry = sums
            .entry((fact.platform.to_string(), fact.currency.clone()))
            .or_default();
        entry.0 += 1;
        entry.1 += i128::from(fact.cost_micros);
    }
    sums.into_iter()
        .map(|(k, (n, micros))| (k, (n, decimal(micros))))
        .collect()
}

fn actual_by_currency(warehouse: &Path) -> BTreeMap<(String, String), (i64, String)> {
    duckdb(&format!(
        "SELECT platform, currency, count(*), CAST(sum(spend) AS VARCHAR) FROM {} GROUP BY 1, 2",
        table(warehouse, "spend")
    ))
    .into_iter()
    .map(|r| {
        (
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            ),
            (r[2].as_i64().unwrap(), r[3].as_str().unwrap().to_string()),
        )
    })
    .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_and_costs_match_the_sandbox_exactly() {
    let sandbox = sandbox(600, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let sources = format!(
        "{GOOGLE}{META}{LINKEDIN}{}",
        costs_source_at(repo_job("demo-costs.csv"))
    );
    let report = run(&job(&warehouse, &sources, &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");

    let expected = expected_by_currency(&sandbox);
    let currencies: Vec<&str> = expected.keys().map(|(_, c)| c.as_str()).collect();
    for c in ["EUR", "USD", "GBP"] {
        assert!(currencies.contains(&c), "sandbox serves {c}");
    }
    assert_eq!(actual_by_currency(&warehouse), expected);
    let (rows, keys) = {
        let r = duckdb(&format!(
            "SELECT count(*), count(DISTINCT (date, platform, account_id, campaign_id)) FROM {}",
            table(&warehouse, "spend")
        ));
        (r[0][0].as_i64().unwrap(), r[0][1].as_i64().unwrap())
    };
    assert_eq!(
        rows, keys,
        "one row per (date, platform, account, campaign)"
    );
    let clicks: i64 = sandbox.data.spend_facts().iter().map(|f| f.clicks).sum();
    assert_eq!(
        duckdb_count(&format!(
            "SELECT CAST(sum(clicks) AS BIGINT) FROM {}",
            table(&warehouse, "spend")
        )),
        clicks
    );
    // Hive partitions by day, one file per day and source.
    assert!(
        warehouse
            .join("spend/date=2026-11-19/spendtest.meta.parquet")
            .exists()
    );
    assert!(
        warehouse
            .join("spend/date=2026-11-19/spendtest.linkedin.parquet")
            .exists()
    );

    // Costs: what DuckDB reads from the CSV itself, per currency.
    let csv = repo_job("demo-costs.csv").display().to_string();
    let from_csv = duckdb(&format!(
        "SELECT currency, count(*), CAST(sum(amount) AS VARCHAR) FROM read_csv('{csv}', header = true, \
         types = {{'amount': 'DECIMAL(18,6)'}}) GROUP BY 1 ORDER BY 1"
    ));
    let written = duckdb(&format!(
        "SELECT currency, count(*), CAST(sum(amount) AS VARCHAR) FROM {} GROUP BY 1 ORDER BY 1",
        table(&warehouse, "costs")
    ));
    assert_eq!(written, from_csv);
    let types = column_types(&warehouse, "costs");
    assert_eq!(types["month"], "DATE");
    assert_eq!(types["amount"], "DECIMAL(18,6)");
    assert_eq!(types["channel"], "VARCHAR");

    // Meta's next links carry the token: followed, but never landed unredacted.
    let mut landed = 0;
    for path in walk(&warehouse.join("_raw")) {
        let bytes = std::fs::read(&path).unwrap();
        let text = match zstd::decode_all(&bytes[..]) {
            Ok(plain) => String::from_utf8_lossy(&plain).into_owned(),
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        assert!(
            !text.contains(funnelhouse::sandbox::META_ACCESS_TOKEN),
            "{}",
            path.display()
        );
        assert!(
            !text.contains(funnelhouse::sandbox::GOOGLE_ADS_ACCESS_TOKEN),
            "{}",
            path.display()
        );
        if text.contains("access_token=REDACTED") {
            landed += 1;
        }
    }
    assert!(
        landed > 0,
        "Meta pages with next links were landed (redacted)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_search_and_search_stream_agree() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("stream"), dir.path().join("search"));
    let search = GOOGLE.replace(
        "name = \"google\"",
        "name = \"google\"\nmethod = \"search\"\nchunk_days = 20",
    );
    assert!(run(&job(&a, GOOGLE, &env), &env).await.succeeded());
    let report = run(&job(&b, &search, &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(actual_by_currency(&a), actual_by_currency(&b));
    let only_google: BTreeMap<_, _> = expected_by_currency(&sandbox)
        .into_iter()
        .filter(|((p, _), _)| p == "google_ads")
        .collect();
    assert_eq!(actual_by_currency(&b), only_google);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_quota_error_is_retried_after_its_retry_delay() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    sandbox.data.control().google_quota_errors(1, "1.5s");
    let started = Instant::now();
    let report = run(
        &job(&dir.path().join("w"), &with_fast_http(GOOGLE), &env),
        &env,
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "waited the retryDelay"
    );
    assert_eq!(source(&report, "google").retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_code_1_splits_the_range_with_the_same_result() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    sandbox.data.control().meta_max_range_days(0);
    let unsplit = run(&job(&whole, META, &env), &env).await;
    assert!(unsplit.succeeded(), "{unsplit:#?}");
    sandbox.data.control().meta_max_range_days(4);
    let report = run(&job(&split, META, &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        source(&report, "meta").requests > source(&unsplit, "meta").requests,
        "the split run asked for smaller ranges"
    );
    let cols = "date, platform, account_id, campaign_id, campaign_name, channel, currency, spend, impressions, clicks";
    let rows = |w: &Path| duckdb_count(&format!("SELECT count(*) FROM {}", table(w, "spend")));
    assert_eq!(rows(&whole), rows(&split));
    for (x, y) in [(&whole, &split), (&split, &whole)] {
        assert_eq!(
            duckdb_count(&format!(
                "SELECT count(*) FROM (SELECT {cols} FROM {} EXCEPT ALL SELECT {cols} FROM {})",
                table(x, "spend"),
                table(y, "spend")
            )),
            0
        );
    }
}

/// A Meta account whose date ranges hold more rows than a range may keep waiting for its
/// last page (`HELD_ROWS`, 20,000: 1,000 campaigns, each spending on about 4 days in 5,
/// hold about 24,500 rows in 31 days) is pulled in smaller ranges, with the same rows as a
/// pull whose ranges never held that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_range_too_large_to_hold_is_pulled_in_halves_with_the_same_result() {
    let sandbox = funnelhouse::sandbox::start(funnelhouse::sandbox::SandboxOptions {
        seed: 7,
        scale: 300,
        today: today(),
        spend: funnelhouse::sandbox::SpendShape {
            meta_campaigns: Some(1_000),
            meta_accounts: Some(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let meta = |chunk_days: u32| {
        format!(
            "\n[[sources]]\nname = \"meta\"\nkind = \"meta_ads\"\nbase_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/meta\"\naccount_ids = [\"act_101000000000001\"]\naccess_token = \"${{META_ACCESS_TOKEN}}\"\npage_size = 500\nchunk_days = {chunk_days}\n"
        )
    };
    let (large, small) = (dir.path().join("large"), dir.path().join("small"));
    // 8-day ranges hold at most 8,000 rows: never split.
    let unsplit = run(&job(&small, &meta(8), &env), &env).await;
    assert!(unsplit.succeeded(), "{unsplit:#?}");
    let split = run(&job(&large, &meta(31), &env), &env).await;
    assert!(split.succeeded(), "{split:#?}");
    let rows = |w: &Path| duckdb_count(&format!("SELECT count(*) FROM {}", table(w, "spend")));
    assert!(rows(&large) > 60_000, "{} rows", rows(&large));
    // The first 31-day range was given up after 41 pages of 500 rows and pulled in halves.
    assert!(
        source(&split, "meta").requests > source(&unsplit, "meta").requests + 20,
        "{} requests split, {} unsplit",
        source(&split, "meta").requests,
        source(&unsplit, "meta").requests
    );
    let cols = "date, platform, account_id, campaign_id, campaign_name, channel, currency, spend, impressions, clicks";
    for (x, y) in [(&large, &small), (&small, &large)] {
        assert_eq!(
            duckdb_count(&format!(
                "SELECT count(*) FROM (SELECT {cols} FROM {} EXCEPT ALL SELECT {cols} FROM {})",
                table(x, "spend"),
                table(y, "spend")
            )),
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_throttle_waits_the_time_to_regain_access() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    // 0.02 minutes = 1.2 s, in X-Business-Use-Case-Usage.
    sandbox.data.control().meta_throttles(1, 0.02);
    let started = Instant::now();
    let report = run(
        &job(&dir.path().join("w"), &with_fast_http(META), &env),
        &env,
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "waited as told"
    );
    assert_eq!(source(&report, "meta").retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_fail_cleanly_without_retries() {
    let sandbox = sandbox(200, 0).await;
    let mut env = env_for(&sandbox);
    env.insert("META_ACCESS_TOKEN".into(), "expired-meta-token".into());
    env.insert(
        "LINKEDIN_ACCESS_TOKEN".into(),
        "expired-linkedin-token".into(),
    );
    let google = GOOGLE
        .replace(
            "refresh_token = \"${GOOGLE_ADS_REFRESH_TOKEN}\"\n",
            "access_token = \"expired-google-token\"\n",
        )
        .replace("client_id = \"${GOOGLE_ADS_CLIENT_ID}\"\n", "")
        .replace("client_secret = \"${GOOGLE_ADS_CLIENT_SECRET}\"\n", "");
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let sources = with_fast_http(&format!("{google}{META}{LINKEDIN}"));
    let report = run(&job(&warehouse, &sources, &env), &env).await;
    assert_eq!(report.status, "failed");
    for (name, needle) in [("google", "401"), ("meta", "190"), ("linkedin", "401")] {
        let s = source(&report, name);
        let error = s.error.as_deref().unwrap_or_default();
        assert!(error.contains(needle), "{name}: {error}");
        assert!(
            !error.contains("expired-"),
            "{name} leaks its token: {error}"
        );
        assert_eq!((s.requests, s.retries), (1, 0), "{name} is not retried");
    }
    assert!(!warehouse.join("spend").exists(), "nothing committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkedin_daily_limit_fails_with_the_reset_time() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    sandbox.data.control().linkedin_daily_limit(true);
    let dir = tempfile::tempdir().unwrap();
    let report = run(
        &job(&dir.path().join("w"), &with_fast_http(LINKEDIN), &env),
        &env,
    )
    .await;
    assert_eq!(report.status, "failed");
    let s = source(&report, "linkedin");
    let error = s.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("resets at") && error.contains("T00:00:00"),
        "{error}"
    );
    assert_eq!(s.requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_api_versions_fail_with_a_clear_error() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let sources = with_fast_http(&format!(
        "{}{}{}",
        GOOGLE.replace(
            "name = \"google\"",
            "name = \"google\"\napi_version = \"v12\""
        ),
        META.replace(
            "name = \"meta\"",
            "name = \"meta\"\napi_version = \"v12.0\""
        ),
        LINKEDIN.replace(
            "name = \"linkedin\"",
            "name = \"linkedin\"\napi_version = \"202301\""
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let report = run(&job(&dir.path().join("w"), &sources, &env), &env).await;
    assert_eq!(report.status, "failed");
    for (name, needle) in [
        ("google", "api_version"),
        ("meta", "2635"),
        ("linkedin", "NONEXISTENT_VERSION"),
    ] {
        let s = source(&report, name);
        let error = s.error.as_deref().unwrap_or_default();
        assert!(error.contains(needle), "{name}: {error}");
        assert_eq!(s.retries, 0, "{name}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restated_day_is_replaced_and_older_days_are_untouched() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let job = job(&warehouse, &format!("{GOOGLE}{META}{LINKEDIN}"), &env);
    let first = run(&job, &env).await;
    assert!(first.succeeded(), "{first:#?}");
    let before = expected_by_currency(&sandbox);

    // The vendors restate yesterday between runs (through the sandbox's admin endpoint).
    let restated = reqwest::Client::new()
        .post(format!("{}/_admin/restate", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert!(restated.status().is_success());
    let after = expected_by_currency(&sandbox);
    assert_ne!(before, after);

    let second = run(&job, &env).await;
    assert!(second.succeeded(), "{second:#?}");
    let spend = table(&warehouse, "spend");
    assert_eq!(
        actual_by_currency(&warehouse),
        after,
        "new values, nothing doubled"
    );
    let r = duckdb(&format!(
        "SELECT count(*), count(DISTINCT (date, platform, account_id, campaign_id)) FROM {spend}"
    ));
    assert_eq!(r[0][0], r[0][1], "one row per key");
    let yesterday: i128 = sandbox
        .data
        .spend_facts()
        .iter()
        .filter(|f| f.date == "2026-11-19")
        .map(|f| i128::from(f.cost_micros))
        .sum();
    let got = duckdb(&format!(
        "SELECT CAST(sum(spend) AS VARCHAR) FROM {spend} WHERE date = DATE '2026-11-19'"
    ));
    assert_eq!(got[0][0].as_str().unwrap(), decimal(yesterday));
    // The look-back (7 days) was re-pulled by the second run; older days kept the first's files.
    let runs = duckdb(&format!(
        "SELECT date >= DATE '2026-11-13', list(DISTINCT _run_id) FROM {spend} GROUP BY 1 ORDER BY 1"
    ));
    assert_eq!(runs[0][1], serde_json::json!([first.run_id]));
    assert_eq!(runs[1][1], serde_json::json!([second.run_id]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_costs_line_is_rejected_with_its_line_number() {
    let env: HashMap<String, String> =
        [("FUNNELHOUSE_HASH_KEY".to_string(), "k".to_string())].into();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let report = run(
        &job(&warehouse, &costs_source("with_bad_line.csv"), &env),
        &env,
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(costs_rows(&warehouse), with_bad_line_rows());
    let rejects = duckdb(&format!(
        "SELECT dataset, source, location, reason, record FROM {}",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0][0], "costs");
    assert!(
        rejects[0][2]
            .as_str()
            .unwrap()
            .ends_with("with_bad_line.csv:4"),
        "{:?}",
        rejects[0]
    );
    assert!(
        rejects[0][3].as_str().unwrap().contains("amount"),
        "{:?}",
        rejects[0]
    );
    assert!(rejects[0][4].as_str().unwrap().contains("12x5"));
    let runs = duckdb(&format!(
        "SELECT costs_read, costs_written, costs_rejected FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(
        runs,
        vec![vec![
            serde_json::json!(5),
            serde_json::json!(4),
            serde_json::json!(1)
        ]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_login_customer_id_names_the_manager() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let through = |manager: &str| {
        with_fast_http(&GOOGLE.replace(
            "name = \"google\"",
            &format!("name = \"google\"\nlogin_customer_id = \"{manager}\""),
        ))
    };
    let report = run(
        &job(
            &dir.path().join("a"),
            &through(funnelhouse::sandbox::GOOGLE_ADS_MANAGER_ID),
            &env,
        ),
        &env,
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    let report = run(
        &job(&dir.path().join("b"), &through("1234567890"), &env),
        &env,
    )
    .await;
    let s = source(&report, "google");
    let error = s.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("USER_PERMISSION_DENIED") && error.contains("login_customer_id"),
        "{error}"
    );
    assert_eq!(s.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_meta_pull_replays_identically_from_its_landed_pages() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let (live, replayed) = (dir.path().join("live"), dir.path().join("replayed"));
    sandbox.data.control().meta_max_range_days(6);
    let job_live = job(&live, META, &env);
    let report = run(&job_live, &env).await;
    assert!(report.succeeded(), "{report:#?}");
    let served = sandbox.data.requests_served();

    let recording = live.join("_raw/spendtest").join(&report.run_id);
    let lookup = |name: &str| env.get(name).cloned();
    let options = funnelhouse::pipeline::RunOptions {
        replay: Some(funnelhouse::pipeline::Replay::directory(&recording).unwrap()),
        ..run_options()
    };
    let again = run_job(&job(&replayed, META, &env), &lookup, options)
        .await
        .expect("replay completes");
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(
        sandbox.data.requests_served(),
        served,
        "a replay sends nothing"
    );
    assert_eq!(actual_by_currency(&replayed), actual_by_currency(&live));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costs_file_over_http_loads_and_is_landed_raw() {
    let body = with_bad_line();
    let app = axum::Router::new().route(
        "/exports/costs.csv",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let env: HashMap<String, String> =
        [("FUNNELHOUSE_HASH_KEY".to_string(), "k".to_string())].into();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let sources = format!(
        "\n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = \"http://{addr}/exports/costs.csv?signature=SECRET\"\n"
    );
    let report = run(&job(&warehouse, &sources, &env), &env).await;
    server.abort();
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "costs")
        )),
        4
    );
    let location = duckdb(&format!(
        "SELECT location FROM {}",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(
        location,
        vec![vec![serde_json::json!(format!(
            "http://{addr}/exports/costs.csv:4"
        ))]],
        "the line is named, the signed query string is not"
    );
    let landed = walk(&warehouse.join("_raw"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("costs/file/page-000001"))
        .count();
    assert_eq!(landed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_linkedin_token_is_refreshed_once() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let linkedin = LINKEDIN.replace(
        "access_token = \"${LINKEDIN_ACCESS_TOKEN}\"",
        "access_token = \"expired-linkedin-token\"\nrefresh_token = \"${LINKEDIN_REFRESH_TOKEN}\"\n\
         client_id = \"${LINKEDIN_CLIENT_ID}\"\nclient_secret = \"${LINKEDIN_CLIENT_SECRET}\"\n\
         token_url = \"${FUNNELHOUSE_SANDBOX_URL}/linkedin/oauth/v2/accessToken\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let report = run(&job(&warehouse, &linkedin, &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");
    let only_linkedin: BTreeMap<_, _> = expected_by_currency(&sandbox)
        .into_iter()
        .filter(|((p, _), _)| p == "linkedin_ads")
        .collect();
    assert_eq!(actual_by_currency(&warehouse), only_linkedin);
    // A revoked refresh token fails cleanly (invalid grant), without retries.
    let mut env = env;
    env.insert("LINKEDIN_REFRESH_TOKEN".into(), "revoked".into());
    let report = run(&job(&dir.path().join("b"), &linkedin, &env), &env).await;
    let s = source(&report, "linkedin");
    let error = s.error.as_deref().unwrap_or_default();
    assert!(error.contains("token refresh failed"), "{error}");
    assert!(!error.contains("revoked"), "{error}");
    assert_eq!((s.requests, s.retries), (2, 0), "{error}");
}

/// A fresh folder on the S3 test server (`./scripts/test` starts it): its `s3://` URL and
/// the bucket's store, to put files there.
fn s3_folder() -> (
    String,
    String,
    std::sync::Arc<dyn object_store::ObjectStore>,
) {
    use funnelhouse::sink::{Warehouse, WarehouseUrl};
    let (bucket, folder) = crate::support::s3_bucket_and_folder("files");
    let store = Warehouse::open(WarehouseUrl::parse(&format!("s3://{bucket}")).unwrap())
        .unwrap()
        .store;
    (format!("s3://{bucket}/{folder}"), folder, store)
}

async fn put_s3(store: &dyn object_store::ObjectStore, key: &str, body: &str) {
    use object_store::ObjectStoreExt;
    store
        .put(
            &object_store::path::Path::parse(key).unwrap(),
            object_store::PutPayload::from(body.to_string()),
        )
        .await
        .unwrap();
}

fn s3_costs_and_intent(costs_url: &str, intent_url: &str) -> String {
    format!(
        "\n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = {costs_url:?}\n\
         \n[[sources]]\nname = \"bombora\"\nkind = \"intent\"\nurl = {intent_url:?}\n"
    )
}

/// The costs fixture with one bad line (line 4).
fn with_bad_line() -> String {
    std::fs::read_to_string(fixture("with_bad_line.csv")).unwrap()
}

/// The rows `with_bad_line.csv` loads as, by hand (its line 4 is rejected).
fn with_bad_line_rows() -> Vec<Vec<serde_json::Value>> {
    [
        serde_json::json!(["2026-10", "Salaries", null, "EUR", "42000.000000"]),
        serde_json::json!(["2026-10", "Tools", null, "USD", "99.990000"]),
        serde_json::json!([
            "2026-11",
            "Agency, social",
            "paid_social",
            "GBP",
            "1500.255000"
        ]),
        serde_json::json!(["2026-11", "Salaries", null, "EUR", "42000.000000"]),
    ]
    .into_iter()
    .map(|v| v.as_array().unwrap().clone())
    .collect()
}

fn costs_rows(warehouse: &Path) -> Vec<Vec<serde_json::Value>> {
    duckdb(&format!(
        "SELECT strftime(month, '%Y-%m'), category, channel, currency, CAST(amount AS VARCHAR) FROM {} ORDER BY 1, 2",
        table(warehouse, "costs")
    ))
}

/// Costs and intent files on S3 (keys with a space and unicode) load through the store the
/// run opens for its warehouse: the key is the URL's path as written, `%XX` escapes
/// decoded, so the literal and the escaped spelling name the same object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_and_intent_files_on_s3_load_with_spaces_in_their_keys() {
    let (url, folder, store) = s3_folder();
    put_s3(&*store, &format!("{folder}/costs q1.csv"), &with_bad_line()).await;
    put_s3(
        &*store,
        &format!("{folder}/surge ü.csv"),
        "Domain,Topic Name,Composite Score,Date\nacme.com,ETL,82,2026-11-19\n",
    )
    .await;
    let env: HashMap<String, String> =
        [("FUNNELHOUSE_HASH_KEY".to_string(), "k".to_string())].into();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    // The costs key as written, the intent key percent-escaped (as a browser would copy it).
    let escaped_folder = folder.replace(' ', "%20");
    let bucket_url = url.trim_end_matches(&folder);
    let sources = s3_costs_and_intent(
        &format!("{url}/costs q1.csv"),
        &format!("{bucket_url}{escaped_folder}/surge%20%C3%BC.csv"),
    );
    let report = run(&job(&warehouse, &sources, &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(costs_rows(&warehouse), with_bad_line_rows());
    let location = duckdb(&format!(
        "SELECT location FROM {} WHERE dataset = 'costs'",
        table(&warehouse, "_rejects")
    ));
    let shown = format!("{url}/costs q1.csv:4").replace(' ', "%20");
    assert_eq!(location, vec![vec![serde_json::json!(shown)]]);
    let signals = duckdb(&format!(
        "SELECT provider, domain, CAST(date AS VARCHAR), topic, score FROM {}",
        table(&warehouse, "intent_signals")
    ));
    assert_eq!(
        signals,
        vec![vec![
            serde_json::json!("bombora"),
            serde_json::json!("acme.com"),
            serde_json::json!("2026-11-19"),
            serde_json::json!("ETL"),
            serde_json::json!(82.0)
        ]]
    );
}

/// A costs object that is not there fails its source with the source and the URL named, and
/// the table the last run published stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_costs_object_on_s3_fails_naming_source_and_url_and_keeps_the_table() {
    let (url, folder, store) = s3_folder();
    put_s3(&*store, &format!("{folder}/costs q1.csv"), &with_bad_line()).await;
    let env: HashMap<String, String> =
        [("FUNNELHOUSE_HASH_KEY".to_string(), "k".to_string())].into();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let costs = |key: &str| {
        format!("\n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = \"{url}/{key}\"\n")
    };
    let report = run(&job(&warehouse, &costs("costs q1.csv"), &env), &env).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(costs_rows(&warehouse), with_bad_line_rows());

    let report = run(&job(&warehouse, &costs("costs q2.csv"), &env), &env).await;
    assert!(!report.succeeded(), "{report:#?}");
    let error = source(&report, "costs").error.clone().unwrap_or_default();
    // The URL as URLs are shown (`_rejects.location` alike): user info and query string
    // dropped, the path escaped.
    let shown = format!("{url}/costs q2.csv").replace(' ', "%20");
    assert_eq!(
        error,
        format!("source `costs`: costs file {shown} does not exist"),
    );
    assert_eq!(costs_rows(&warehouse), with_bad_line_rows());
}
