//! Third-party intent end to end: a Bombora-style CSV next to the job file lands in
//! `intent_signals` (bad lines in `_rejects` with their line numbers, `_runs` counting
//! them), and the metrics step joins it to the sandbox's HubSpot leads by e-mail domain: a
//! lead sales rejected before the signal's day is recycled, with the signal's day as its
//! `last_intent_at` and the signal's score as its `third_party_intent_score`.

use std::collections::HashMap;
use std::path::Path;

use funnelhouse::config::{JobConfig, parse_job};
use funnelhouse::pipeline::run_job;
use serde_json::{Value, json};

use crate::support::*;

fn job(dir: &Path, warehouse: &Path, intent: bool, env: &HashMap<String, String>) -> JobConfig {
    let mut text = format!(
        "name = \"intenttest\"\nwarehouse = {:?}\nhash_key = \"${{FUNNELHOUSE_HASH_KEY}}\"\n\
         \n[[sources]]\nname = \"hubspot\"\nkind = \"hubspot\"\n\
         base_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/hubspot\"\ntoken = \"${{HUBSPOT_TOKEN}}\"\n",
        warehouse.display().to_string()
    );
    if intent {
        // A relative path: resolved against the job file's folder.
        text.push_str(
            "\n[[sources]]\nname = \"bombora\"\nkind = \"intent\"\nurl = \"surge.csv\"\n",
        );
    }
    let lookup = |name: &str| env.get(name).cloned();
    parse_job(&dir.join("intent-test.toml"), &text, &lookup)
        .unwrap_or_else(|d| panic!("test job is valid: {d:?}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_intent_recycles_a_rejected_lead_by_its_domain() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("wh");
    let lookup = |name: &str| env.get(name).cloned();

    // Run 1, leads only: find a domain whose leads sales rejected before today.
    let report = run_job(
        &job(dir.path(), &warehouse, false, &env),
        &lookup,
        run_options(),
    )
    .await
    .expect("run completes");
    assert!(report.succeeded(), "{report:#?}");
    let dead = duckdb(&format!(
        "SELECT l.email_domain FROM {} s JOIN {} l USING (source_system, lead_id)
         WHERE s.stage = 'disqualified' AND s.stage_reason = 'rejected_by_sales'
           AND l.sal_rejected_at < TIMESTAMPTZ '2026-11-20 00:00:00+00'
           AND l.email_domain IS NOT NULL
         ORDER BY 1 LIMIT 1",
        table(&warehouse, "lead_stages"),
        table(&warehouse, "leads")
    ));
    let domain = dead[0][0]
        .as_str()
        .expect("a rejected lead has a domain")
        .to_string();

    // The export: the domain surging today (score 64, as `https://www.` website), one bad
    // line (score 130) and one domain no lead has.
    std::fs::write(
        dir.path().join("surge.csv"),
        format!(
            "Domain,Company Name,Topic Name,Composite Score,Date\n\
             https://www.{domain}/,Them,Data Warehousing,64,2026-11-20\n\
             {domain},Them,ETL,130,2026-11-20\n\
             nobody.example,Nobody,ETL,90,2026-11-19\n"
        ),
    )
    .unwrap();
    let report = run_job(
        &job(dir.path(), &warehouse, true, &env),
        &lookup,
        run_options(),
    )
    .await
    .expect("run completes");
    assert!(report.succeeded(), "{report:#?}");

    let signals = duckdb(&format!(
        "SELECT provider, domain, email_hash, CAST(date AS VARCHAR), topic, score
         FROM {} ORDER BY domain",
        table(&warehouse, "intent_signals")
    ));
    assert_eq!(
        signals,
        vec![
            vec![
                json!("bombora"),
                json!(domain),
                Value::Null,
                json!("2026-11-20"),
                json!("Data Warehousing"),
                json!(64.0)
            ],
            vec![
                json!("bombora"),
                json!("nobody.example"),
                Value::Null,
                json!("2026-11-19"),
                json!("ETL"),
                json!(90.0)
            ],
        ]
    );
    let types = column_types(&warehouse, "intent_signals");
    assert_eq!(types["date"], "DATE");
    assert_eq!(types["score"], "DOUBLE");
    let rejects = duckdb(&format!(
        "SELECT dataset, location, reason FROM {}",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0][0], "intent_signals");
    assert!(
        rejects[0][1].as_str().unwrap().ends_with("surge.csv:3"),
        "{rejects:?}"
    );
    assert!(rejects[0][2].as_str().unwrap().contains("outside 0-100"));
    let runs = duckdb(&format!(
        "SELECT intent_signals_read, intent_signals_written, intent_signals_rejected
         FROM {} ORDER BY finished_at DESC LIMIT 1",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs, vec![vec![json!(3), json!(2), json!(1)]]);

    // Every lead of the domain: its score is the signal's (age 0: 64 × 0.5^0); those
    // rejected before today are recycled, dated by the signal's day.
    let staged = duckdb(&format!(
        "SELECT s.stage, s.third_party_intent_score, CAST(s.last_intent_at AS VARCHAR),
                l.sal_rejected_at < TIMESTAMPTZ '2026-11-20 00:00:00+00' AND l.sql_at IS NULL
         FROM {} s JOIN {} l USING (source_system, lead_id)
         WHERE l.email_domain = '{domain}'",
        table(&warehouse, "lead_stages"),
        table(&warehouse, "leads")
    ));
    assert!(!staged.is_empty());
    let mut recycled = 0;
    for row in &staged {
        assert_eq!(row[1], json!(64.0), "{row:?}");
        if row[3] == json!(true) && row[0] == json!("recycled") {
            recycled += 1;
            assert_eq!(row[2], json!("2026-11-20 00:00:00+00"), "{row:?}");
        }
    }
    assert!(recycled >= 1, "{staged:?}");
    // No other lead has third-party intent.
    let others = duckdb_count(&format!(
        "SELECT count(*) FROM {} s JOIN {} l USING (source_system, lead_id)
         WHERE s.third_party_intent_score IS NOT NULL AND l.email_domain <> '{domain}'",
        table(&warehouse, "lead_stages"),
        table(&warehouse, "leads")
    ));
    assert_eq!(others, 0);
}
