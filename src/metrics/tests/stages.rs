//! Stage rules, scoring, ranking, became-dates and transitions.

use super::{lead, stamp, t};
use crate::metrics::config::{Stage, StagesConfig};
use crate::metrics::dates::MICROS_PER_DAY;
use crate::metrics::lead::Lead;
use crate::metrics::stages::{
    PreviousStage, PreviousStages, classify, compute, lead_stages_batch, previous_stages, score,
};

fn stage_of(l: &Lead) -> (Stage, String) {
    stage_with(l, None)
}

fn stage_with(l: &Lead, previous: Option<&PreviousStage>) -> (Stage, String) {
    let cfg = StagesConfig::default();
    let (s, _, _) = score(l, &cfg.scoring, previous);
    classify(l, &cfg, s, previous)
}

fn is(stage: Stage, reason: &str) -> (Stage, String) {
    (stage, reason.to_string())
}

#[test]
fn default_rules_every_path() {
    let mut l = lead("customer-by-stage");
    l.lifecycle_stage_raw = Some("customer".into());
    assert_eq!(stage_of(&l), is(Stage::Customer, "customer"));

    let mut l = lead("customer-by-date");
    l.customer_at = Some(t("2026-10-01T00:00:00Z"));
    l.sal_rejected_at = Some(t("2026-09-01T00:00:00Z"));
    assert_eq!(
        stage_of(&l),
        is(Stage::Customer, "customer"),
        "customer wins"
    );

    // Rejected by sales, then new intent after the rejection: recycled.
    let mut l = lead("recycled");
    l.mql_at = Some(t("2026-09-01T00:00:00Z"));
    l.sal_rejected_at = Some(t("2026-09-02T00:00:00Z"));
    l.last_intent_at = Some(t("2026-10-05T00:00:00Z"));
    l.lead_status_raw = Some("OPEN".into());
    assert_eq!(stage_of(&l), is(Stage::Recycled, "recycled_new_intent"));

    // Moved on since: an SQL date puts it in SQL, not recycled.
    let moved_on = Lead {
        sql_at: Some(t("2026-10-20T00:00:00Z")),
        ..l.clone()
    };
    assert_eq!(stage_of(&moved_on), is(Stage::Sql, "sql_stage"));

    // Intent before the rejection is not new: disqualified.
    l.last_intent_at = Some(t("2026-09-01T12:00:00Z"));
    l.lifecycle_stage_raw = Some("other".into());
    assert_eq!(stage_of(&l), is(Stage::Disqualified, "rejected_by_sales"));

    let mut l = lead("unqualified");
    l.lead_status_raw = Some("UNQUALIFIED".into());
    assert_eq!(stage_of(&l), is(Stage::Disqualified, "disqualified_status"));
    l.lead_status_raw = Some("bad_timing".into());
    assert_eq!(
        stage_of(&l),
        is(Stage::Disqualified, "disqualified_status"),
        "raw values match case-insensitively"
    );

    // Disqualified by status (no date) in an earlier run, new intent after that run saw it.
    let previous = PreviousStage {
        stage: Stage::Disqualified,
        entered_at: Some(t("2026-10-01T04:00:00Z")),
        became: [None; 5],
    };
    l.lead_status_raw = Some("OPEN".into());
    l.last_intent_at = Some(t("2026-10-03T00:00:00Z"));
    assert_eq!(
        stage_with(&l, Some(&previous)),
        is(Stage::Recycled, "recycled_new_intent")
    );
    l.last_intent_at = Some(t("2026-09-30T00:00:00Z"));
    assert_ne!(stage_with(&l, Some(&previous)).0, Stage::Recycled);

    let mut l = lead("sql-by-date");
    l.sql_at = Some(t("2026-10-01T00:00:00Z"));
    assert_eq!(stage_of(&l), is(Stage::Sql, "sql_stage"));
    let mut l = lead("sql-by-opportunity");
    l.lifecycle_stage_raw = Some("opportunity".into());
    assert_eq!(stage_of(&l), is(Stage::Sql, "sql_stage"));

    let mut l = lead("sal");
    l.sal_at = Some(t("2026-10-01T00:00:00Z"));
    assert_eq!(stage_of(&l), is(Stage::Sal, "sales_accepted"));
    let mut l = lead("salesforce-sal");
    l.source_system = "salesforce".into();
    l.lead_status_raw = Some("Working - Contacted".into());
    assert_eq!(stage_of(&l), is(Stage::Sal, "sales_accepted"));
    l.lead_status_raw = Some("Closed - Converted".into());
    assert_eq!(stage_of(&l), is(Stage::Sql, "sql_stage"));
    l.lead_status_raw = Some("Closed - Not Converted".into());
    assert_eq!(stage_of(&l), is(Stage::Disqualified, "disqualified_status"));

    let mut l = lead("mql");
    l.lifecycle_stage_raw = Some("marketingqualifiedlead".into());
    assert_eq!(stage_of(&l), is(Stage::Mql, "mql_stage"));

    // Warm needs 3 web visits (or a download, a demo request, 3 e-mail engagements).
    let mut l = lead("warm");
    l.web_visits = Some(3);
    assert_eq!(stage_of(&l), is(Stage::Warm, "engaged"));
    l.web_visits = Some(2);
    assert_eq!(stage_of(&l), is(Stage::Lead, "any_contact"));
    l.content_downloads = Some(1);
    assert_eq!(stage_of(&l), is(Stage::Warm, "engaged"));
}

#[test]
fn custom_sql_criteria_budget_authority_need() {
    let cfg: StagesConfig = toml::from_str(
        r#"
        [[rules]]
        name = "sql_bant"
        stage = "sql"
        when = { set = ["sal_at"], budget_confirmed = true, need_confirmed = true, authority = ["decision_maker", "influencer"] }
        [[rules]]
        name = "accepted"
        stage = "sal"
        when = { set = ["sal_at"] }
        [[rules]]
        stage = "lead"
        "#,
    )
    .unwrap();
    let mut l = lead("bant");
    l.sal_at = Some(t("2026-10-01T00:00:00Z"));
    l.sql_at = Some(t("2026-10-05T00:00:00Z"));
    l.budget_confirmed = Some(true);
    l.need_confirmed = Some(true);
    l.authority = Some("influencer".into());
    let missing_need = Lead {
        lead_id: "no-need".into(),
        need_confirmed: None,
        ..l.clone()
    };
    let no_authority = Lead {
        lead_id: "no-authority".into(),
        authority: Some("none".into()),
        ..l.clone()
    };
    let plain = lead("plain");
    let now = t("2026-10-10T00:00:00Z");
    let (rows, _) = compute(
        vec![l, missing_need, no_authority, plain],
        &cfg,
        &PreviousStages::new(),
        now,
    );
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.stage, r.stage_reason.as_str(), r.became(Stage::Sql)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Stage::Sql, "sql_bant", Some(t("2026-10-05T00:00:00Z"))),
            // The CRM says SQL but the job's criteria do not: no SQL date either.
            (Stage::Sal, "accepted", None),
            (Stage::Sal, "accepted", None),
            // An unnamed rule is named by its stage and position.
            (Stage::Lead, "lead#3", None),
        ]
    );
}

#[test]
fn no_rule_matched_is_a_lead() {
    let cfg: StagesConfig = toml::from_str(
        r#"
        [[rules]]
        stage = "mql"
        when = { min_vendor_score = 50 }
        "#,
    )
    .unwrap();
    let mut l = lead("x");
    l.vendor_score = Some(49);
    assert_eq!(
        classify(&l, &cfg, 0, None),
        is(Stage::Lead, "no_rule_matched")
    );
    l.vendor_score = Some(50);
    assert_eq!(classify(&l, &cfg, 0, None), is(Stage::Mql, "mql#1"));
}

#[test]
fn default_scoring_with_caps() {
    let cfg = StagesConfig::default();
    let mut l = lead("scored");
    l.job_title = Some("VP Sales".into()); // senior_title 20
    l.authority = Some("decision_maker".into()); // 10
    l.country = Some("DE".into()); // 10 → fit 40 (cap 40)
    l.demo_requested = Some(true); // 25
    l.content_downloads = Some(5); // 5 × 5 = 25, rule cap 20
    l.web_visits = Some(30); // 30, rule cap 10
    l.email_engagements = Some(4); // 4
    // intent 25 + 20 + 10 + 4 = 59 (cap 60); score 40 + 59 = 99.
    assert_eq!(score(&l, &cfg.scoring, None), (99, 40, 59));

    let mut small = cfg.scoring.clone();
    small.fit_cap = 30;
    small.intent_cap = 50;
    assert_eq!(score(&l, &small, None), (80, 30, 50));

    // Nothing known: 0.
    assert_eq!(score(&lead("blank"), &cfg.scoring, None), (0, 0, 0));

    // A score threshold in a rule sees the computed score.
    let rules: StagesConfig = toml::from_str(
        r#"
        [[rules]]
        name = "hot"
        stage = "mql"
        when = { min_score = 99 }
        [[rules]]
        stage = "lead"
        "#,
    )
    .unwrap();
    assert_eq!(classify(&l, &rules, 99, None), is(Stage::Mql, "hot"));
    assert_eq!(classify(&l, &rules, 98, None), is(Stage::Lead, "lead#2"));
}

#[test]
fn priority_rank_within_owner_ties_share_a_rank() {
    // Score = web visits (one intent rule, no caps in the way).
    let cfg: StagesConfig = toml::from_str(
        r#"
        [scoring]
        fit_cap = 0
        intent_cap = 1000
        [[scoring.rules]]
        kind = "intent"
        points = 1
        per = "web_visits"
        [[rules]]
        name = "won"
        stage = "customer"
        when = { lifecycle_stage_raw = ["customer"] }
        [[rules]]
        stage = "lead"
        "#,
    )
    .unwrap();
    let mk = |id: &str, owner: Option<&str>, visits: i64, customer: bool| Lead {
        owner_id: owner.map(str::to_string),
        web_visits: Some(visits),
        lifecycle_stage_raw: customer.then(|| "customer".to_string()),
        ..lead(id)
    };
    let leads = vec![
        mk("a50", Some("A"), 50, false),
        mk("a70", Some("A"), 70, false),
        mk("a50b", Some("A"), 50, false),
        mk("a90-customer", Some("A"), 90, true),
        mk("a40", Some("A"), 40, false),
        mk("b10", Some("B"), 10, false),
        mk("none20", None, 20, false),
        mk("none30", None, 30, false),
    ];
    let (rows, _) = compute(leads, &cfg, &PreviousStages::new(), 0);
    let ranks: Vec<_> = rows
        .iter()
        .map(|r| (r.lead.lead_id.as_str(), r.score, r.priority_rank))
        .collect();
    assert_eq!(
        ranks,
        vec![
            ("a50", 50, Some(2)),
            ("a70", 70, Some(1)),
            ("a50b", 50, Some(2)),
            ("a90-customer", 90, None),
            ("a40", 40, Some(4)),
            ("b10", 10, Some(1)),
            ("none20", 20, Some(2)),
            ("none30", 30, Some(1)),
        ]
    );
}

#[test]
fn became_dates_and_transitions_across_runs() {
    let cfg = StagesConfig::default();
    let run1 = t("2026-10-01T04:00:00Z");
    let run2 = t("2026-10-04T04:00:00Z");
    let created = t("2026-09-20T10:00:00Z");
    let mut x = lead("x");
    x.created_at = Some(created);
    x.web_visits = Some(5);
    let mut y = lead("y");
    y.created_at = Some(created);
    y.email_engagements = Some(3);
    let mut z = lead("z");
    z.created_at = Some(created);
    z.mql_at = Some(t("2026-09-25T00:00:00Z"));

    let (first, transitions1) = compute(
        vec![x.clone(), y.clone(), z.clone()],
        &cfg,
        &PreviousStages::new(),
        run1,
    );
    // The CRM has no warm date: the first run that saw the lead warm is its date.
    assert_eq!(first[0].stage, Stage::Warm);
    assert_eq!(first[0].became(Stage::Warm), Some(run1));
    assert_eq!(first[0].stage_entered_at, run1);
    assert_eq!(first[2].became(Stage::Mql), Some(t("2026-09-25T00:00:00Z")));
    assert_eq!(first[2].days_in_stage, 6, "25 Sep 00:00 → 1 Oct 04:00");
    assert_eq!(
        transitions1
            .iter()
            .map(|t| (t.lead_id.as_str(), t.from_stage, t.to_stage, t.changed_at))
            .collect::<Vec<_>>(),
        vec![
            ("x", None, Stage::Warm, run1),
            ("y", None, Stage::Warm, run1),
            ("z", None, Stage::Mql, t("2026-09-25T00:00:00Z")),
        ]
    );

    // The previous state goes through the table and back, as between two real runs.
    let batch = lead_stages_batch(&first, &stamp("r1")).unwrap();
    let previous = previous_stages(&[batch]).unwrap();

    // Late update: x becomes an MQL in the CRM without a stage date; y is unchanged.
    x.lifecycle_stage_raw = Some("marketingqualifiedlead".into());
    let (second, transitions2) = compute(vec![x, y, z], &cfg, &previous, run2);
    assert_eq!(second[0].stage, Stage::Mql);
    assert_eq!(second[0].became(Stage::Warm), Some(run1), "kept");
    assert_eq!(second[0].became(Stage::Mql), Some(run2));
    assert_eq!(second[0].days_in_stage, 0);
    assert_eq!(second[1].stage_entered_at, run1, "still warm since run 1");
    assert_eq!(second[1].days_in_stage, (run2 - run1) / MICROS_PER_DAY);
    assert_eq!(
        transitions2
            .iter()
            .map(|t| (t.lead_id.as_str(), t.from_stage, t.to_stage, t.changed_at))
            .collect::<Vec<_>>(),
        vec![("x", Some(Stage::Warm), Stage::Mql, run2)]
    );
}

#[test]
fn deleted_leads_are_left_out() {
    use crate::normalize::{LeadRow, LeadsBuilder, TableRows};
    let row = |id: &str, deleted| LeadRow {
        source_system: "hubspot".into(),
        lead_id: id.into(),
        email_hash: None,
        email_domain: None,
        company: None,
        job_title: None,
        country: None,
        owner_id: None,
        channel: Some("paid_search".into()),
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
        created_at: Some(t("2026-10-01T00:00:00Z")),
        updated_at: None,
        mql_at: None,
        sal_at: None,
        sal_rejected_at: None,
        rejection_reason: None,
        sql_at: None,
        opportunity_at: None,
        customer_at: None,
        first_contacted_at: None,
        last_intent_at: Some(t("2026-10-02T00:00:00Z")),
        industry: None,
        employee_count: None,
        annual_revenue: None,
        annual_revenue_currency: None,
        custom: Vec::new(),
        is_deleted: deleted,
    };
    let mut b = LeadsBuilder::new(2);
    b.push(&row("kept", false));
    b.push(&row("gone", true));
    let leads = crate::metrics::stages::leads_from_batches(&[b.finish(&stamp("r"))]).unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].lead_id, "kept");
    assert_eq!(leads[0].channel.as_deref(), Some("paid_search"));
    assert_eq!(leads[0].last_intent_at, Some(t("2026-10-02T00:00:00Z")));
}

#[test]
fn job_title_words_match_ignoring_case_in_any_script() {
    let cfg: StagesConfig = toml::from_str(
        r#"
        [[rules]]
        name = "boss"
        stage = "mql"
        when = { job_title_contains = ["führer", "Head of", ""] }
        [[rules]]
        stage = "lead"
        "#,
    )
    .unwrap();
    let title = |t: &str| {
        let mut l = lead(t);
        l.job_title = Some(t.into());
        classify(&l, &cfg, 0, None).0
    };
    assert_eq!(title("Geschäftsführer"), Stage::Mql);
    assert_eq!(title("GESCHÄFTSFÜHRER"), Stage::Mql, "Unicode case");
    assert_eq!(title("head OF Sales"), Stage::Mql, "ASCII case");
    assert_eq!(title("Headof Sales"), Stage::Lead);
    assert_eq!(title("CEO"), Stage::Lead, "an empty word matches nothing");
    assert_eq!(title(""), Stage::Lead);
}

#[test]
fn previous_stages_round_trip_every_date_and_keep_the_last_entry() {
    use crate::metrics::stages::PreviousStagesBuilder;
    let stages = [Stage::Lead, Stage::Mql, Stage::Recycled, Stage::Customer];
    // Every combination of present dates, on 10,000 leads in two systems.
    let state = |k: usize| PreviousStage {
        stage: stages[k % stages.len()],
        entered_at: (k & 1 != 0).then_some(k as i64 * 1_000),
        became: std::array::from_fn(|i| (k & (2 << i) != 0).then_some(-(k as i64) - i as i64)),
    };
    let system = |k: usize| {
        if k.is_multiple_of(3) {
            "salesforce"
        } else {
            "hubspot"
        }
    };
    let mut b = PreviousStagesBuilder::new();
    for k in 0..10_000 {
        b.insert(system(k), &format!("lead-{k}"), &state(k))
            .unwrap();
    }
    // A lead listed twice: the later entry counts.
    b.insert("hubspot", "lead-1", &state(62)).unwrap();
    let previous = b.finish();
    assert_eq!(previous.len(), 10_000);
    for k in (0..10_000).filter(|k| *k != 1) {
        assert_eq!(
            previous.get(system(k), &format!("lead-{k}")),
            Some(state(k)),
            "{k}"
        );
    }
    assert_eq!(previous.get("hubspot", "lead-1"), Some(state(62)));
    assert_eq!(previous.get("salesforce", "lead-1"), None, "another system");
    assert_eq!(previous.get("hubspot", "lead-10000"), None);
    assert_eq!(PreviousStages::new().get("hubspot", "lead-1"), None);
}
