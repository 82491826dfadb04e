//! Firmographic and custom-property conditions (issue 19): an ICP fit rule at and just
//! outside its bounds, stage rules on a custom property, and the `custom` column read back
//! from Arrow. Expected values are worked out by hand in each test.

use super::{lead, stamp, t};
use crate::metrics::config::{Stage, StagesConfig};
use crate::metrics::lead::Lead;
use crate::metrics::stages::{LeadColumns, classify, leads_from_batches, score};
use crate::normalize::{CustomValue, LeadRow, LeadsBuilder, TableRows};

fn stages(toml_text: &str) -> StagesConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
}

fn company(id: &str, industry: Option<&str>, employees: Option<i64>) -> Lead {
    Lead {
        industry: industry.map(str::to_string),
        employee_count: employees,
        ..lead(id)
    }
}

fn with_custom(id: &str, entries: &[(&str, CustomValue)]) -> Lead {
    Lead {
        custom: entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..lead(id)
    }
}

#[test]
fn icp_fit_software_with_50_to_500_employees_at_and_just_outside_the_bounds() {
    let cfg = stages(
        r#"
[scoring]
fit_cap = 40
intent_cap = 60
[[scoring.rules]]
name = "icp_software_50_500"
kind = "fit"
points = 30
when = { industry = ["COMPUTER_SOFTWARE", "Technology"], min_employee_count = 50, max_employee_count = 500 }
"#,
    );
    let fit = |l: &Lead| score(l, &cfg.scoring, None).1;
    let software = Some("COMPUTER_SOFTWARE");
    // 49 and 501 are just outside, 50 and 500 on the bounds (inclusive).
    assert_eq!(fit(&company("49", software, Some(49))), 0);
    assert_eq!(fit(&company("50", software, Some(50))), 30);
    assert_eq!(fit(&company("500", software, Some(500))), 30);
    assert_eq!(fit(&company("501", software, Some(501))), 0);
    // Industry matches ignoring case; Salesforce's picklist name is in the list too.
    assert_eq!(fit(&company("sf", Some("technology"), Some(120))), 30);
    assert_eq!(fit(&company("retail", Some("RETAIL"), Some(120))), 0);
    // Unknown size or industry never meets the condition.
    assert_eq!(fit(&company("no-size", software, None)), 0);
    assert_eq!(fit(&company("no-industry", None, Some(120))), 0);
}

#[test]
fn default_fit_scoring_counts_company_size() {
    // Defaults: `company_size` gives 10 fit points for 50–5,000 employees.
    let cfg = StagesConfig::default();
    let fit = |n: Option<i64>| score(&company("c", None, n), &cfg.scoring, None).1;
    assert_eq!(
        [
            fit(Some(49)),
            fit(Some(50)),
            fit(Some(5_000)),
            fit(Some(5_001)),
            fit(None)
        ],
        [0, 10, 10, 0, 0]
    );
    // A senior title (20) + decision authority (10) + size (10) + country (10) = 50,
    // capped at fit_cap 40.
    let full = Lead {
        job_title: Some("VP Sales".into()),
        authority: Some("decision_maker".into()),
        country: Some("DE".into()),
        employee_count: Some(200),
        ..lead("full")
    };
    assert_eq!(score(&full, &cfg.scoring, None), (40, 40, 0));
}

#[test]
fn annual_revenue_bounds_are_exact_and_can_pair_with_a_currency() {
    let cfg = stages(
        r#"
[[scoring.rules]]
kind = "fit"
points = 15
when = { min_annual_revenue = "1000000", max_annual_revenue = 50000000.5, annual_revenue_currency = ["EUR"] }
"#,
    );
    let fit = |micros: Option<i128>, currency: &str| {
        let l = Lead {
            annual_revenue: micros,
            annual_revenue_currency: Some(currency.into()),
            ..lead("r")
        };
        score(&l, &cfg.scoring, None).1
    };
    // 999,999.999999 is one micro below the bound; 1,000,000 on it.
    assert_eq!(fit(Some(999_999_999_999), "EUR"), 0);
    assert_eq!(fit(Some(1_000_000_000_000), "EUR"), 15);
    assert_eq!(fit(Some(50_000_000_500_000), "EUR"), 15);
    assert_eq!(fit(Some(50_000_000_500_001), "EUR"), 0);
    assert_eq!(fit(Some(2_000_000_000_000), "USD"), 0, "other currency");
    assert_eq!(fit(None, "EUR"), 0);
}

#[test]
fn a_stage_rule_on_a_custom_property_makes_an_sql() {
    let cfg = stages(
        r#"
[[rules]]
name = "icp_tier_a"
stage = "sql"
when = { custom = { icp_tier = ["A"] } }

[[rules]]
name = "big_trial"
stage = "mql"
when = { custom = { seats = { min = 50 }, trial_started_at = { set = true }, is_partner = false } }

[[rules]]
name = "no_tier"
stage = "warm"
when = { custom = { icp_tier = { set = false } } }

[[rules]]
name = "rest"
stage = "lead"
"#,
    );
    let stage = |l: &Lead| {
        let (s, _, _) = score(l, &cfg.scoring, None);
        classify(l, &cfg, s, None)
    };
    let is = |s: Stage, r: &str| (s, r.to_string());
    let tier = |v: &str| ("icp_tier", CustomValue::Str(v.into()));
    let trial = (
        "trial_started_at",
        CustomValue::Timestamp(t("2026-11-01T00:00:00Z")),
    );
    let partner = |b: bool| ("is_partner", CustomValue::Bool(b));
    let seats = |n: f64| ("seats", CustomValue::Number(n));

    assert_eq!(
        stage(&with_custom("a", &[tier("A")])),
        is(Stage::Sql, "icp_tier_a")
    );
    assert_eq!(
        stage(&with_custom("a-lower", &[tier(" a ")])),
        is(Stage::Sql, "icp_tier_a"),
        "text compares ignoring case and spaces"
    );
    // Tier B: not an SQL; 50 seats on a trial, not a partner: MQL.
    let b = [tier("B"), seats(50.0), trial.clone(), partner(false)];
    assert_eq!(stage(&with_custom("b50", &b)), is(Stage::Mql, "big_trial"));
    // 49 seats is just below the threshold.
    let b49 = [tier("B"), seats(49.0), trial.clone(), partner(false)];
    assert_eq!(stage(&with_custom("b49", &b49)), is(Stage::Lead, "rest"));
    // No trial date (unset): not `set = true`.
    let no_trial = [tier("B"), seats(80.0), partner(false)];
    assert_eq!(
        stage(&with_custom("no-trial", &no_trial)),
        is(Stage::Lead, "rest")
    );
    // A partner, or an unknown partner flag, is not `is_partner = false`.
    let p = [tier("B"), seats(80.0), trial.clone(), partner(true)];
    assert_eq!(stage(&with_custom("partner", &p)), is(Stage::Lead, "rest"));
    let unknown = [tier("B"), seats(80.0), trial];
    assert_eq!(
        stage(&with_custom("unknown", &unknown)),
        is(Stage::Lead, "rest")
    );
    // No tier at all: `set = false`.
    assert_eq!(stage(&with_custom("none", &[])), is(Stage::Warm, "no_tier"));
    // A number given where text is kept does not match (the types differ).
    let typed = [("icp_tier", CustomValue::Number(1.0))];
    assert_eq!(
        stage(&with_custom("typed", &typed)),
        is(Stage::Lead, "rest")
    );
}

#[test]
fn a_misshapen_custom_test_says_what_is_expected() {
    let e = toml::from_str::<StagesConfig>(
        "[[rules]]\nstage = \"sql\"\nwhen = { custom = { seats = { minimum = 5 } } }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("a table of `set`, `min`, `max`, `one_of`"),
        "{e}"
    );
}

#[test]
fn the_custom_column_round_trips_through_arrow_to_the_rules() {
    let row = LeadRow {
        source_system: "salesforce".into(),
        lead_id: "00Q1".into(),
        email_hash: None,
        email_domain: None,
        company: None,
        job_title: None,
        country: None,
        owner_id: None,
        channel: None,
        campaign_id: None,
        lifecycle_stage_raw: None,
        lead_status_raw: None,
        vendor_score: None,
        demo_requested: None,
        content_downloads: None,
        web_visits: None,
        email_engagements: None,
        budget_confirmed: None,
        authority: None,
        need_confirmed: None,
        timeline_confirmed: None,
        created_at: None,
        updated_at: None,
        mql_at: None,
        sal_at: None,
        sal_rejected_at: None,
        rejection_reason: None,
        sql_at: None,
        opportunity_at: None,
        customer_at: None,
        first_contacted_at: None,
        last_intent_at: None,
        industry: Some("Technology".into()),
        employee_count: Some(120),
        annual_revenue: Some(12_500_000_000_000),
        annual_revenue_currency: Some("USD".into()),
        custom: vec![
            ("icp_tier".into(), CustomValue::Str("A".into())),
            ("is_partner".into(), CustomValue::Bool(true)),
            ("seats".into(), CustomValue::Number(12.5)),
            (
                "trial".into(),
                CustomValue::Timestamp(t("2026-11-01T10:00:00Z")),
            ),
        ],
        is_deleted: false,
    };
    let empty = LeadRow {
        lead_id: "00Q2".into(),
        custom: Vec::new(),
        industry: None,
        ..row.clone()
    };
    let mut b = LeadsBuilder::new(3);
    b.push(&row);
    b.push(&empty);
    b.push(&row);
    let batch = b.finish(&stamp("r"));
    // One reused lead, as the stager fills it: each row's entries replace the last's.
    let columns = LeadColumns::new(&batch).unwrap();
    let mut reused = Lead::default();
    for (i, expected) in [&row.custom, &Vec::new(), &row.custom]
        .into_iter()
        .enumerate()
    {
        assert!(columns.fill(i, &mut reused));
        assert_eq!(&reused.custom, expected, "row {i}");
    }
    let leads = leads_from_batches(&[batch]).unwrap();
    assert_eq!(leads[0].custom, row.custom);
    assert_eq!(leads[0].industry.as_deref(), Some("Technology"));
    assert_eq!(leads[0].employee_count, Some(120));
    assert_eq!(leads[0].annual_revenue, Some(12_500_000_000_000));
    assert_eq!(leads[0].annual_revenue_currency.as_deref(), Some("USD"));
    assert!(leads[1].custom.is_empty() && leads[1].industry.is_none());
    assert_eq!(
        leads[0].custom_value("seats"),
        Some(&CustomValue::Number(12.5))
    );
}
