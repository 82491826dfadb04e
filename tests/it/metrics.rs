//! The metric tables of the demo job against the sandbox, read back with DuckDB and checked
//! against figures DuckDB computes itself from the canonical tables: eNPS overall from
//! `survey_responses`, funnel and SAL totals from `leads` and `lead_stages`, CPSQL spend from
//! `spend.spend_reporting`, which in turn is checked against the demo's FX rates.

use serde_json::Value;

use crate::support::*;

const METRIC_TABLES: [&str; 8] = [
    "lead_stages",
    "lead_stage_transitions",
    "funnel_daily",
    "funnel_cohort_monthly",
    "cpsql_monthly",
    "sal_acceptance_monthly",
    "enps_responses",
    "enps",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_job_writes_every_metric_table() {
    let sandbox = sandbox(1500, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("metrics wh");
    let env = env_for(&sandbox);
    let mut job = demo_job_into(&warehouse, &env);
    // This test writes its own hand-made costs file in place of the demo's costs source.
    job.sources.retain(|s| s.kind() != "costs");
    let lookup = |name: &str| env.get(name).cloned();
    // Non-ad costs as another writer (the costs source) leaves them: CPSQL reads the table
    // when it exists. 1000.50 EUR salaries, 200 USD events for paid_search in October.
    std::fs::create_dir_all(warehouse.join("costs")).unwrap();
    duckdb(&format!(
        "COPY (SELECT * FROM (VALUES
            (DATE '2026-10-01', 'salaries', NULL::VARCHAR, 'EUR', 1000.50::DECIMAL(18,6)),
            (DATE '2026-10-01', 'events', 'paid_search', 'USD', 200::DECIMAL(18,6)))
          t(month, category, channel, currency, amount))
         TO '{}/costs/demo.costs.parquet' (FORMAT parquet, COMPRESSION zstd)",
        warehouse.display()
    ));
    let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("run completes");
    assert!(report.succeeded(), "{report:#?}");
    let q = |sql: &str| duckdb(sql);
    let count = |sql: &str| duckdb_count(sql);
    let t = |name: &str| table(&warehouse, name);

    // Every metric table is in the report and readable, with rows.
    for name in METRIC_TABLES {
        let reported: u64 = report
            .files
            .iter()
            .filter(|f| f.table == name)
            .map(|f| f.rows)
            .sum();
        let read = count(&format!("SELECT count(*) FROM {}", t(name)));
        assert!(read > 0, "{name} has rows");
        assert_eq!(read as u64, reported, "{name}: report and file agree");
        let types = column_types(&warehouse, name);
        assert_eq!(types["_ingested_at"], "TIMESTAMP WITH TIME ZONE", "{name}");
    }
    let stage_types = column_types(&warehouse, "lead_stages");
    assert_eq!(stage_types["became_mql_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(stage_types["priority_rank"], "BIGINT");
    assert_eq!(
        column_types(&warehouse, "cpsql_monthly")["cpsql"],
        "DECIMAL(18,6)"
    );
    assert_eq!(
        column_types(&warehouse, "spend")["spend_reporting"],
        "DECIMAL(18,6)"
    );
    assert_eq!(column_types(&warehouse, "enps")["period_start"], "DATE");

    // lead_stages: one row per non-deleted lead; every stage is one of ours.
    let live = count(&format!(
        "SELECT count(*) FROM {} WHERE NOT is_deleted",
        t("leads")
    ));
    assert_eq!(
        count(&format!(
            "SELECT count(DISTINCT (source_system, lead_id)) FROM {}",
            t("lead_stages")
        )),
        live
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE stage NOT IN ('lead','warm','mql','sal','sql','customer','disqualified','recycled')",
            t("lead_stages")
        )),
        0
    );
    // The demo's stricter SQL rule: every SQL has budget, need and authority confirmed.
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} s JOIN {} l USING (source_system, lead_id)
             WHERE s.stage = 'sql' AND NOT (l.budget_confirmed AND l.need_confirmed
               AND l.authority IN ('decision_maker','influencer'))",
            t("lead_stages"),
            t("leads")
        )),
        0
    );
    // Recycled leads showed intent after their rejection.
    assert!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE stage = 'recycled' AND last_intent_at > sal_rejected_at",
            t("lead_stages")
        )) > 0
    );
    // First run: one transition (from nothing) per lead.
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE from_stage IS NULL",
            t("lead_stage_transitions")
        )),
        live
    );

    // Funnel totals agree with the leads and their stage dates.
    let funnel = q(&format!(
        "SELECT sum(new_leads), sum(new_mqls), sum(new_sqls) FROM {}",
        t("funnel_daily")
    ));
    let expected = q(&format!(
        "SELECT count(created_at), count(became_mql_at), count(became_sql_at) FROM {}",
        t("lead_stages")
    ));
    assert_eq!(
        funnel[0].iter().map(num).collect::<Vec<_>>(),
        expected[0].iter().map(num).collect::<Vec<_>>()
    );
    assert_eq!(
        count(&format!(
            "SELECT sum(leads) FROM {}",
            t("funnel_cohort_monthly")
        )),
        count(&format!(
            "SELECT count(*) FROM {} WHERE NOT is_deleted AND created_at IS NOT NULL",
            t("leads")
        ))
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE reached_sql > reached_sal OR reached_sal > reached_mql OR reached_mql > leads",
            t("funnel_cohort_monthly")
        )),
        0,
        "cohorts narrow down the funnel"
    );

    // spend_reporting: EUR as is, GBP and USD at the demo's rates (file, then the inline 1 Nov
    // USD rate).
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE spend_reporting IS DISTINCT FROM
               CASE currency WHEN 'EUR' THEN spend
                 WHEN 'GBP' THEN round(spend * 1.1700, 6)
                 ELSE round(spend * CASE WHEN date >= DATE '2026-11-01' THEN 0.8650
                                         WHEN date >= DATE '2026-10-01' THEN 0.8710
                                         WHEN date >= DATE '2026-07-01' THEN 0.8620
                                         ELSE 0.9010 END, 6) END",
            t("spend")
        )),
        0
    );
    // CPSQL: the total rows hold all converted spend and every SQL, and are complete.
    let cpsql = q(&format!(
        "SELECT sum(ad_spend)::VARCHAR, sum(sqls), bool_and(complete) FROM {} WHERE level = 'total'",
        t("cpsql_monthly")
    ));
    let spend_total = q(&format!(
        "SELECT sum(spend_reporting)::VARCHAR FROM {}",
        t("spend")
    ));
    assert_eq!(cpsql[0][0], spend_total[0][0]);
    assert_eq!(num(&cpsql[0][1]), expected[0][2].as_i64().unwrap());
    assert_eq!(cpsql[0][2], Value::Bool(true));
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE sqls = 0 AND cpsql IS NOT NULL",
            t("cpsql_monthly")
        )),
        0,
        "zero SQLs → cpsql null"
    );
    // Non-ad costs: at the total level, and at their channel (200 USD × 0.8710 = 174.20 EUR).
    let october = q(&format!(
        "SELECT level, coalesce(channel, ''), other_costs::VARCHAR FROM {}
         WHERE month = DATE '2026-10-01' AND other_costs > 0 ORDER BY 1, 2",
        t("cpsql_monthly")
    ));
    assert_eq!(
        october,
        vec![
            vec![
                Value::from("channel"),
                Value::from("paid_search"),
                Value::from("174.200000")
            ],
            vec![
                Value::from("total"),
                Value::from(""),
                Value::from("1174.700000")
            ],
        ]
    );
    // Months before the spend look-back have leads but no spend data: no cost-per figures.
    assert!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE level = 'total' AND ad_spend = 0 AND other_costs = 0 AND leads > 0",
            t("cpsql_monthly")
        )) > 0
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE level = 'total' AND ad_spend = 0 AND other_costs = 0
               AND (cost_per_lead IS NOT NULL OR cpsql IS NOT NULL)",
            t("cpsql_monthly")
        )),
        0
    );
    // Paid-search campaign rows join spend and leads on the campaign id.
    assert!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE level = 'campaign' AND ad_spend > 0 AND leads > 0",
            t("cpsql_monthly")
        )) > 0
    );

    // SAL: every hand-off is accepted, rejected or pending; rates match the counts.
    let sal = q(&format!(
        "SELECT sum(handed_off), sum(accepted + rejected + pending),
                count(*) FILTER (WHERE abs(acceptance_rate - accepted / (accepted + rejected)) > 1e-12),
                count(*) FILTER (WHERE meets_target <> (acceptance_rate >= 0.90)),
                count(*) FILTER (WHERE sla_contacted_within_24h > sla_contacted_within_48h
                                    OR sla_contacted_within_48h + sla_breached + sla_open <> accepted)
         FROM {} WHERE level = 'total'",
        t("sal_acceptance_monthly")
    ));
    let handed = count(&format!(
        "SELECT count(became_mql_at) FROM {}",
        t("lead_stages")
    ));
    assert_eq!(num(&sal[0][0]), handed);
    assert_eq!(num(&sal[0][1]), handed);
    assert_eq!(num(&sal[0][2]), 0);
    assert_eq!(num(&sal[0][3]), 0);
    assert_eq!(num(&sal[0][4]), 0);

    // eNPS: every response listed; overall per month equals DuckDB's own computation.
    assert_eq!(
        count(&format!("SELECT count(*) FROM {}", t("enps_responses"))),
        count(&format!("SELECT count(*) FROM {}", t("survey_responses")))
    );
    let mismatches = q(&format!(
        "WITH mine AS (
           SELECT survey_id, strftime(submitted_at AT TIME ZONE 'UTC', '%Y-%m') AS period,
                  count(score) AS n,
                  100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6))
                    / count(score) AS enps
           FROM {} WHERE score IS NOT NULL GROUP BY ALL)
         SELECT m.period, m.n, m.enps, e.respondents, e.enps
         FROM mine m JOIN {} e ON e.survey_id = m.survey_id AND e.period = m.period
                              AND e.dimension = 'overall'
         WHERE e.suppressed = (m.n >= 5) OR abs(coalesce(e.enps, 0) - CASE WHEN m.n >= 5 THEN m.enps ELSE 0 END) > 1e-9",
        t("survey_responses"),
        t("enps")
    ));
    assert!(mismatches.is_empty(), "{mismatches:?}");
    assert!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE dimension = 'overall' AND NOT suppressed",
            t("enps")
        )) > 0
    );
    // No group under the threshold is shown; no dimension has exactly one suppressed group.
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE NOT suppressed AND respondents < 5",
            t("enps")
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM (SELECT survey_id, period, dimension,
                count(*) FILTER (WHERE suppressed) AS s, count(*) AS n
              FROM {} WHERE dimension <> 'overall' GROUP BY ALL) WHERE s = 1 AND n > 1",
            t("enps")
        )),
        0
    );
    assert!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE suppressed AND group_value IN ('People', 'Tallinn')",
            t("enps")
        )) > 0,
        "the sandbox's small groups are suppressed"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE suppressed AND (respondents IS NOT NULL OR enps IS NOT NULL)",
            t("enps")
        )),
        0
    );

    // A second run the next day over unchanged data: no new transitions, the first-observed
    // dates stay those of the first run.
    let mut later = run_options();
    later.now += chrono::Duration::days(1);
    let second_now = later.now;
    let again = funnelhouse::pipeline::run_job(&job, &lookup, later)
        .await
        .expect("second run");
    assert!(again.succeeded());
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {}",
            t("lead_stage_transitions")
        )),
        live
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {} WHERE became_warm_at >= TIMESTAMPTZ '{}'",
            t("lead_stages"),
            second_now.to_rfc3339()
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT count(DISTINCT _run_id) FROM {}",
            t("lead_stages")
        )),
        1,
        "one file per metric table, replaced by each run"
    );
}

fn num(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or_default(),
        Value::String(s) => s.parse::<f64>().map(|f| f as i64).unwrap_or_default(),
        other => panic!("not a number: {other}"),
    }
}
