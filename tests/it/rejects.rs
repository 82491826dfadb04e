//! Malformed records go to `_rejects` with their reason; the rest of their page is written
//! and the run's accounting adds up.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_rejected_and_the_rest_written() {
    let sandbox = sandbox(400, 37).await;
    let totals = sandbox.data.totals();
    assert!(
        totals.contacts_malformed > 0
            && totals.spend_rows_malformed > 0
            && totals.survey_responses_malformed > 0
    );
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
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
    let leads_malformed = totals.contacts_malformed + totals.salesforce_leads_malformed;
    assert_eq!(
        leads as usize,
        totals.contacts + totals.salesforce_leads - leads_malformed
    );
    let spend = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        spend as usize,
        totals.spend_rows - totals.spend_rows_malformed
    );
    let responses = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source_system = 'typeform'",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(
        responses as usize,
        totals.survey_responses - totals.survey_responses_malformed
    );

    let rejects = duckdb(&format!(
        "SELECT dataset, count(*), min(reason), min(source) FROM {} GROUP BY 1 ORDER BY 1",
        table(&warehouse, "_rejects")
    ));
    let by_dataset: std::collections::HashMap<String, (i64, String)> = rejects
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                (r[1].as_i64().unwrap(), r[2].as_str().unwrap().to_string()),
            )
        })
        .collect();
    assert_eq!(by_dataset["leads"].0 as usize, leads_malformed);
    assert!(
        by_dataset["leads"].1.contains("not-a-date"),
        "{:?}",
        by_dataset["leads"]
    );
    assert_eq!(by_dataset["spend"].0 as usize, totals.spend_rows_malformed);
    assert!(
        by_dataset["spend"].1.contains("12x5"),
        "{:?}",
        by_dataset["spend"]
    );
    assert_eq!(
        by_dataset["survey_responses"].0 as usize,
        totals.survey_responses_malformed + totals.surveymonkey.malformed
    );
    let off_scale = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source = 'pulse' AND reason LIKE '%outside the 0-10 scale%'",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(off_scale as usize, totals.survey_responses_malformed);

    // The raw record is kept for inspection, with the e-mail hashed.
    let records = duckdb(&format!(
        "SELECT record, location FROM {} WHERE dataset = 'leads'",
        table(&warehouse, "_rejects")
    ));
    for r in &records {
        let record = r[0].as_str().unwrap();
        assert!(
            record.contains("not-a-date") && record.contains("hmac:"),
            "{record}"
        );
        assert!(!record.contains('@'), "no raw e-mail in {record}");
        let location = r[1].as_str().unwrap();
        assert!(
            location.starts_with("contacts page ") || location.starts_with("query batch "),
            "{location}"
        );
    }

    // read = written + rejected, per dataset.
    let runs = duckdb(&format!(
        "SELECT leads_read - leads_written - leads_rejected, spend_read - spend_written - spend_rejected, \
         survey_responses_read - survey_responses_written - survey_responses_rejected, leads_rejected FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs[0][0].as_i64(), Some(0));
    assert_eq!(runs[0][1].as_i64(), Some(0));
    assert_eq!(runs[0][2].as_i64(), Some(0));
    assert_eq!(runs[0][3].as_i64(), Some(leads_malformed as i64));
}
