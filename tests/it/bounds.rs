//! Inputs we did not write, bounded: a record dated in the future never moves a watermark
//! past the run's clock (and is kept and named in `_runs.warnings`), rate limits that say
//! little are waited out rather than retried into failure, and implausible values (negative
//! spend or counts, year 9999, a 10 MB company name) are rejected or kept and counted, per
//! column, as the README's table says.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use funnelhouse::pipeline::RunOptions;
use funnelhouse::sandbox::{HubspotRedate, Mutation};

use crate::support::*;

/// The run clock `seconds` after midnight of the sandbox's `today()` (its data ends at that
/// midnight; its mutation rounds are dated a minute apart after it).
fn clock(seconds: i64) -> RunOptions {
    RunOptions {
        now: Utc.from_utc_datetime(&today().and_hms_opt(0, 0, 0).unwrap())
            + chrono::Duration::seconds(seconds),
        ..RunOptions::default()
    }
}

/// `_runs.warnings` of the run `run_id`.
fn run_warnings(warehouse: &Path, run_id: &str) -> String {
    let rows = duckdb(&format!(
        "SELECT coalesce(warnings, '') FROM {} WHERE run_id = '{run_id}'",
        table(warehouse, "_runs")
    ));
    rows[0][0].as_str().unwrap().to_string()
}

const HUBSPOT: &str = r#"
[[sources]]
name = "hubspot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = "${HUBSPOT_TOKEN}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_dated_2099_neither_poisons_the_watermark_nor_is_lost() {
    let sandbox = sandbox(300, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(dir.path(), "bounded", HUBSPOT, &env);
    let first = run_within(&job, &env, clock(10)).await;
    assert!(first.succeeded(), "{first:#?}");

    // One contact is modified "in 2099" (a bad import); the next incremental run reads it.
    let future = sandbox
        .data
        .redate_hubspot(&HubspotRedate {
            index: 5,
            modified_at: "2099-01-01T00:00:00Z".into(),
        })
        .unwrap();
    let second = run_within(&job, &env, clock(20)).await;
    assert!(second.succeeded(), "{second:#?}");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(warehouse.join("_state/bounded/hubspot.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["streams"]["contacts"]["watermark"], "2026-11-20T00:00:20.000Z",
        "the watermark stops at the run's clock"
    );
    let warnings = run_warnings(&warehouse, &second.run_id);
    assert!(
        warnings.contains("leads.updated_at") && warnings.contains(&future),
        "the future record is named in _runs.warnings: {warnings}"
    );
    // Kept (counted as written), its impossible date set to null.
    let leads = table(&warehouse, "leads");
    let kept = duckdb(&format!(
        "SELECT updated_at IS NULL FROM {leads} WHERE lead_id = '{future}'"
    ));
    assert_eq!(kept, [[serde_json::Value::Bool(true)]]);

    // 25 contacts change after that run; the next run finds every one of them.
    let changed = sandbox.data.mutate(Mutation {
        updates: 25,
        removals: 0,
    });
    let third = run_within(&job, &env, clock(120)).await;
    assert!(third.succeeded(), "{third:#?}");
    let modified = chrono::DateTime::parse_from_rfc3339(&changed.modified_at).unwrap();
    let ids = changed
        .hubspot_updated
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE lead_id IN ({ids}) AND epoch_ms(updated_at) = {}",
            modified.timestamp_millis()
        )),
        25,
        "every update after the future-dated record was picked up"
    );
}

const RATE_LIMITED: &str = r#"
[[sources]]
name = "salesforce"
kind = "salesforce"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/salesforce"
client_id = "${SALESFORCE_CLIENT_ID}"
client_secret = "${SALESFORCE_CLIENT_SECRET}"
refresh_token = "${SALESFORCE_REFRESH_TOKEN}"
[sources.http]
HTTP

[[sources]]
name = "meta"
kind = "meta_ads"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/meta"
account_ids = ["act_101000000000001"]
access_token = "${META_ACCESS_TOKEN}"
[sources.http]
HTTP

[[sources]]
name = "surveymonkey"
kind = "surveymonkey"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/surveymonkey"
token = "${SURVEYMONKEY_TOKEN}"
survey_ids = ["318842756"]
enps_question_id = "640001001"
[sources.http]
HTTP
"#;

/// Short backoffs (four attempts span at most 20 + 40 + 80 ms) and a one-second wait for a
/// rate limit that names none: only waiting the window, not retrying, passes a 700 ms one.
const HTTP: &str = "initial_backoff_ms = 20\nmax_attempts = 4\nrate_limit_wait_secs = 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terse_429s_are_waited_out_on_every_vendor() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(
        dir.path(),
        "limited",
        &RATE_LIMITED.replace("HTTP", HTTP),
        &env,
    );
    for vendor in ["salesforce_token", "meta", "surveymonkey"] {
        assert!(sandbox.data.rate_limit(vendor, Duration::from_millis(700)));
    }
    let started = Instant::now();
    let report = run_within(&job, &env, run_options()).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
    for vendor in ["salesforce_token", "meta", "surveymonkey"] {
        assert!(
            sandbox.data.rate_limit_refusals(vendor) >= 1,
            "{vendor}'s 429 was served"
        );
    }
    for source in &report.sources {
        assert!(source.retries >= 1, "{} waited and retried", source.name);
    }
    // Everything arrived, as without the limits.
    let totals = sandbox.data.totals();
    let leads = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(leads as usize, totals.salesforce_leads);
    let responses = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(responses as usize, totals.surveymonkey.responses);
    assert!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "spend")
        )) > 0
    );
}

/// Recorded pages (design §9 layout) carrying implausible values, written into `root`.
fn implausible_recording(root: &Path) {
    let put = |path: &str, body: String| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    let contact = |id: &str, extra: serde_json::Value| {
        let mut properties = serde_json::json!({
            "createdate": "2026-10-07T08:00:00.000Z",
            "lastmodifieddate": "2026-11-19T11:30:00.250Z",
            "hs_object_id": id,
            "company": "Acme",
            "hs_analytics_num_visits": "4",
        });
        for (k, v) in extra.as_object().unwrap() {
            properties[k] = v.clone();
        }
        serde_json::json!({
            "id": id, "properties": properties, "archived": false,
            "createdAt": "2026-10-07T08:00:00.000Z", "updatedAt": "2026-11-19T11:30:00.250Z",
        })
    };
    let huge = "A".repeat(10 * 1024 * 1024);
    put(
        "hubspot/hubspot/contacts/page-000001.json",
        serde_json::json!({"results": [
            contact("201", serde_json::json!({"company": huge})),
            contact("202", serde_json::json!({"hs_analytics_num_visits": "-7"})),
            contact("203", serde_json::json!({"createdate": "9999-12-31T00:00:00.000Z"})),
            contact("204", serde_json::json!({})),
        ]})
        .to_string(),
    );
    put(
        "hubspot/hubspot/contacts_archived/page-000001.json",
        r#"{"results": []}"#.into(),
    );
    let row = |campaign: &str, date: &str, spend: &str, clicks: &str| {
        serde_json::json!({
            "account_currency": "EUR", "campaign_id": campaign, "campaign_name": "c",
            "spend": spend, "impressions": "100", "clicks": clicks,
            "date_start": date, "date_stop": date,
        })
    };
    put(
        "meta/meta_ads/insights/page-000001.json",
        serde_json::json!({"data": [
            row("1", "2026-11-18", "12.50", "3"),
            row("2", "2026-11-18", "-12.50", "3"),
            row("3", "2026-11-18", "1.00", "-4"),
            row("4", "9999-01-01", "1.00", "1"),
        ]})
        .to_string(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_values_are_rejected_or_kept_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recording");
    implausible_recording(&root);
    let costs = dir.path().join("costs.csv");
    std::fs::write(
        &costs,
        "month,category,currency,amount\n2026-10,salaries,EUR,42000.00\n2026-10,refund,EUR,-50.00\n9999-01,salaries,EUR,100.00\n",
    )
    .unwrap();
    let env: HashMap<String, String> = [
        ("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9"),
        ("FUNNELHOUSE_HASH_KEY", "test-hash-key"),
        ("HUBSPOT_TOKEN", "unused"),
        ("META_ACCESS_TOKEN", "unused"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sources = format!(
        "{HUBSPOT}\n[[sources]]\nname = \"meta\"\nkind = \"meta_ads\"\nbase_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/meta\"\naccount_ids = [\"101\"]\naccess_token = \"${{META_ACCESS_TOKEN}}\"\ninitial_days = 10\n\n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = {:?}\n",
        costs.display().to_string()
    );
    let (job, warehouse) = job_in(dir.path(), "implausible", &sources, &env);
    let mut options = run_options();
    options.replay = Some(funnelhouse::pipeline::Replay::directory(&root).unwrap());
    let report = run_within(&job, &env, options).await;
    assert!(report.succeeded(), "{report:#?}");

    // Leads: every record kept, the implausible values mended and counted.
    let leads = duckdb(&format!(
        "SELECT lead_id, length(company), web_visits, created_at IS NULL FROM {} ORDER BY lead_id",
        table(&warehouse, "leads")
    ));
    let as_text: Vec<String> = leads
        .iter()
        .map(|r| format!("{} {} {} {}", r[0], r[1], r[2], r[3]))
        .collect();
    assert_eq!(
        as_text,
        [
            "\"201\" 1000 4 false",
            "\"202\" 4 null false",
            "\"203\" 4 4 true",
            "\"204\" 4 4 false",
        ]
    );
    let warnings = run_warnings(&warehouse, &report.run_id);
    for expected in [
        "leads.company: 1 record longer than 1000 characters",
        "(ids: 201)",
        "leads.web_visits: 1 record negative",
        "(ids: 202)",
        "leads.created_at: 1 record dated more than a day after the run's clock",
        "(ids: 203)",
    ] {
        assert!(warnings.contains(expected), "`{expected}` in {warnings}");
    }

    // Spend and costs: the impossible records rejected with their reason, none lost.
    let rejects = duckdb(&format!(
        "SELECT dataset, location, reason, length(record) FROM {} ORDER BY reason",
        table(&warehouse, "_rejects")
    ));
    let reasons: Vec<String> = rejects
        .iter()
        .map(|r| format!("{} {}", r[0].as_str().unwrap(), r[2].as_str().unwrap()))
        .collect();
    assert_eq!(rejects.len(), 4, "{reasons:?}");
    for expected in [
        "spend clicks is negative (-4)",
        "spend date 9999-01-01 is after the run's day",
        "spend spend is negative (-12.500000)",
        "costs month 9999-01-01 is more than a year after the run",
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(expected)),
            "`{expected}` in {reasons:?}"
        );
    }
    assert!(rejects.iter().all(|r| r[1] == "plausibility check"));
    let spend = duckdb(&format!(
        "SELECT campaign_id, spend::VARCHAR FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        spend,
        [[serde_json::json!("1"), serde_json::json!("12.500000")]]
    );
    let costs = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE amount < 0",
        table(&warehouse, "costs")
    ));
    assert_eq!(costs, 1, "a negative cost (a credit) is kept");
    let runs = duckdb(&format!(
        "SELECT leads_read, leads_written, leads_rejected, spend_read, spend_written, spend_rejected, \
         costs_read, costs_written, costs_rejected FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(
        runs[0]
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect::<Vec<_>>(),
        [4, 4, 0, 4, 1, 3, 3, 2, 1],
        "read = written + rejected"
    );
}
