//! The demo job against the sandbox, read back with DuckDB: counts equal the sandbox's
//! totals, no duplicates, canonical column types, personal data only as hashes.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_job_writes_tables_duckdb_reads() {
    let sandbox = sandbox(1500, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("ware house ü");
    let env = env_for(&sandbox);
    let job = demo_job_into(&warehouse, &env);
    let lookup = |name: &str| env.get(name).cloned();

    let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("run completes");
    assert!(report.succeeded(), "{report:#?}");

    let leads = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(leads as usize, totals.contacts + totals.salesforce_leads);
    let distinct = duckdb_count(&format!(
        "SELECT count(DISTINCT (source_system, lead_id)) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(distinct, leads, "one row per lead");

    let spend = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(spend as usize, totals.spend_rows);
    let spend_keys = duckdb_count(&format!(
        "SELECT count(DISTINCT (date, platform, account_id, campaign_id)) FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(spend_keys, spend, "one row per day and campaign");
    let currencies = duckdb(&format!(
        "SELECT DISTINCT currency FROM {} ORDER BY 1",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        currencies,
        vec![
            vec![serde_json::json!("EUR")],
            vec![serde_json::json!("GBP")],
            vec![serde_json::json!("USD")]
        ]
    );
    let platforms = duckdb(&format!(
        "SELECT DISTINCT platform FROM {} ORDER BY 1",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        platforms,
        vec![
            vec![serde_json::json!("google_ads")],
            vec![serde_json::json!("linkedin_ads")],
            vec![serde_json::json!("meta_ads")]
        ]
    );
    assert!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "costs")
        )) > 0,
        "the demo's costs file is loaded"
    );

    // Typeform here; SurveyMonkey has its own test (tests/it/surveys.rs).
    let responses = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source_system = 'typeform'",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(responses as usize, totals.survey_responses);
    let scored = duckdb_count(&format!(
        "SELECT count(score) FROM {} WHERE source_system = 'typeform'",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(scored as usize, totals.survey_scored);
    let distribution = duckdb(&format!(
        "SELECT score, count(*) FROM {} WHERE score IS NOT NULL AND source_system = 'typeform' GROUP BY 1 ORDER BY 1",
        table(&warehouse, "survey_responses")
    ));
    for row in distribution {
        let score = row[0].as_i64().unwrap() as usize;
        assert_eq!(
            row[1].as_i64().unwrap() as usize,
            totals.enps_distribution[score],
            "score {score}"
        );
    }

    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "_rejects")
        )),
        0
    );
    let runs = duckdb(&format!(
        "SELECT status, leads_read, leads_written, leads_rejected, spend_written, survey_responses_written FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0][0], "succeeded");
    assert_eq!(runs[0][1].as_i64(), Some(leads));
    assert_eq!(runs[0][2].as_i64(), Some(leads));

    let lead_types = column_types(&warehouse, "leads");
    assert_eq!(lead_types["created_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(lead_types["_ingested_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(lead_types["vendor_score"], "BIGINT");
    assert_eq!(lead_types["is_deleted"], "BOOLEAN");
    let spend_types = column_types(&warehouse, "spend");
    assert_eq!(spend_types["spend"], "DECIMAL(18,6)");
    assert_eq!(spend_types["date"], "DATE");
    assert_eq!(
        column_types(&warehouse, "survey_responses")["submitted_at"],
        "TIMESTAMP WITH TIME ZONE"
    );

    // Spend is exact: the micros the sandbox served sum to the same decimal.
    let stages = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE mql_at IS NOT NULL), count(*) FILTER (WHERE email_hash IS NOT NULL) FROM {}",
        table(&warehouse, "leads")
    ));
    assert!(stages[0][0].as_i64().unwrap() > 0, "some leads reached MQL");
    assert!(
        stages[0][1].as_i64().unwrap() > 0,
        "e-mails are kept as hashes"
    );

    // Personal data never reaches the warehouse in the clear.
    let mut haystack = Vec::new();
    for entry in walk(&warehouse) {
        haystack.extend(std::fs::read(&entry).unwrap());
    }
    let text = String::from_utf8_lossy(&haystack);
    for email in totals.contact_emails.iter().take(200) {
        assert!(!text.contains(email.as_str()), "raw e-mail {email} written");
    }
    for id in &totals.survey_raw_identifiers {
        assert!(
            !text.contains(id.as_str()),
            "raw respondent id {id} written"
        );
    }

    // A rerun replaces files: still one row per lead.
    let again = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("second run");
    assert!(again.succeeded());
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "leads")
        )),
        leads
    );
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "spend")
        )),
        spend
    );
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "_runs")
        )),
        2
    );
    assert!(
        !warehouse.join("_staging/demo").exists() || walk(&warehouse.join("_staging")).is_empty(),
        "staging is cleaned up"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
