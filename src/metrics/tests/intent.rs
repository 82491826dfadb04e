//! Third-party intent: decay at and around the half-life, the look-back window, max and
//! sum, `min_intent_score` in scoring, and a dead lead recycled by a new signal — through
//! both passes of the metrics over real `leads` and `intent_signals` batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use arrow::record_batch::RecordBatch;

use super::{d, lead, stamp, t};
use crate::metrics::config::{IntentCombine, IntentDecayConfig, MetricsConfig, StagesConfig};
use crate::metrics::cpsql::Cpsql;
use crate::metrics::intent::index;
use crate::metrics::stages::score;
use crate::metrics::{Inputs, Settings, compute_with_intent};
use crate::normalize::{IntentSignalRow, IntentSignalsBuilder, TableRows, leads_schema};

/// An `intent_signals` batch of `(domain, email_hash, date, score)`.
fn signals(rows: &[(Option<&str>, Option<&str>, &str, f64)]) -> RecordBatch {
    let mut b = IntentSignalsBuilder::new(rows.len());
    for (domain, email_hash, date, score) in rows {
        b.push(&IntentSignalRow {
            provider: "bombora".into(),
            domain: domain.map(str::to_string),
            email_hash: email_hash.map(str::to_string),
            date: d(date),
            topic: Some("Data Warehousing".into()),
            score: *score,
        });
    }
    b.finish(&stamp("r"))
}

fn decay(half_life_days: f64, lookback_days: i64, combine: IntentCombine) -> IntentDecayConfig {
    IntentDecayConfig {
        half_life_days,
        lookback_days,
        combine,
        topics: Vec::new(),
    }
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a score");
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} is not {expected}"
    );
}

#[test]
fn intent_decays_by_half_life_and_ignores_signals_past_the_lookback() {
    // Half-life 10 days, look-back 30 days, the run on 2026-11-20.
    let now = t("2026-11-20T06:00:00Z");
    let batch = signals(&[
        (Some("age0.com"), None, "2026-11-20", 80.0),
        (Some("half.com"), None, "2026-11-10", 80.0),
        (Some("eleven.com"), None, "2026-11-09", 80.0),
        (Some("twice.com"), None, "2026-10-31", 80.0),
        (Some("edge.com"), None, "2026-10-21", 80.0),
        (Some("old.com"), None, "2026-10-20", 80.0),
        (Some("two.com"), None, "2026-11-20", 50.0),
        (Some("two.com"), None, "2026-11-10", 60.0),
        (Some("both.com"), Some("h1"), "2026-11-20", 40.0),
    ]);
    let max = index(
        std::slice::from_ref(&batch),
        &decay(10.0, 30, IntentCombine::Max),
        now,
    )
    .unwrap();
    assert_eq!(max.len(), 8, "old.com (31 days) is outside the window");
    let scored = |domain: &str, hash: Option<&str>, idx: &crate::metrics::intent::IntentIndex| {
        let mut l = lead(domain);
        l.email_domain = Some(domain.into());
        l.email_hash = hash.map(str::to_string);
        idx.apply(&mut l);
        l
    };
    // 80 × 0.5^(0/10) = 80; at the half-life 40; 11 days 80 × 0.5^1.1 = 37.3213…;
    // twice the half-life 20; 30 days (the window's edge) 80 × 0.5^3 = 10.
    close(scored("age0.com", None, &max).intent_score, 80.0);
    close(scored("half.com", None, &max).intent_score, 40.0);
    close(
        scored("eleven.com", None, &max).intent_score,
        37.321_319_661_472_3,
    );
    close(scored("twice.com", None, &max).intent_score, 20.0);
    close(scored("edge.com", None, &max).intent_score, 10.0);
    let old = scored("old.com", None, &max);
    assert_eq!(
        old.intent_score, None,
        "a signal past the look-back is ignored"
    );
    assert_eq!(old.last_intent_at, None);
    assert_eq!(scored("nobody.com", None, &max).intent_score, None);
    // The newest signal's day feeds last_intent_at (00:00 UTC), unless the CRM's is later.
    assert_eq!(
        scored("half.com", None, &max).last_intent_at,
        Some(t("2026-11-10T00:00:00Z"))
    );
    let mut crm_later = lead("crm");
    crm_later.email_domain = Some("half.com".into());
    crm_later.last_intent_at = Some(t("2026-11-15T09:00:00Z"));
    max.apply(&mut crm_later);
    assert_eq!(crm_later.last_intent_at, Some(t("2026-11-15T09:00:00Z")));

    // two.com: 50 today and 60 ten days ago (= 30): max 50, sum 80. both.com's one signal,
    // keyed by domain and e-mail hash, matches its lead twice but counts once: 40.
    close(scored("two.com", None, &max).intent_score, 50.0);
    let sum = index(
        std::slice::from_ref(&batch),
        &decay(10.0, 30, IntentCombine::Sum),
        now,
    )
    .unwrap();
    close(scored("two.com", None, &sum).intent_score, 80.0);
    close(scored("both.com", Some("h1"), &sum).intent_score, 40.0);
    let mut by_hash = lead("p");
    by_hash.email_hash = Some("h1".into());
    sum.apply(&mut by_hash);
    close(by_hash.intent_score, 40.0);

    // Scoring: the default `third_party_intent` rule gives 15 intent points from 60 up.
    let cfg = StagesConfig::default();
    let mut l = scored("age0.com", None, &max);
    assert_eq!(score(&l, &cfg.scoring, None), (15, 0, 15), "80 ≥ 60");
    l = scored("half.com", None, &max);
    assert_eq!(score(&l, &cfg.scoring, None), (0, 0, 0), "40 < 60");
    let strict: StagesConfig = toml::from_str(
        r#"
[[scoring.rules]]
kind = "intent"
points = 30
when = { min_intent_score = 40 }   # an integer reads as a number too
"#,
    )
    .unwrap();
    assert_eq!(score(&l, &strict.scoring, None).0, 30, "40 ≥ 40");
    l = scored("eleven.com", None, &max);
    assert_eq!(score(&l, &strict.scoring, None).0, 0, "37.32 < 40");
}

/// A lead of [`leads`]: `(id, email_domain, lead_status_raw, sal_rejected_at)`.
type LeadSpec<'a> = (&'a str, &'a str, Option<&'a str>, Option<i64>);

/// A `leads` batch of HubSpot leads, every other column null (built from the schema,
/// whatever columns it has).
fn leads(rows: &[LeadSpec<'_>]) -> RecordBatch {
    let schema = leads_schema();
    let n = rows.len();
    let strs = |f: &dyn Fn(&LeadSpec<'_>) -> Option<String>| {
        Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            "source_system" | "_run_id" => strs(&|_| Some("hubspot".into())),
            "lead_id" => strs(&|r| Some(r.0.into())),
            "email_domain" => strs(&|r| Some(r.1.into())),
            "lead_status_raw" => strs(&|r| r.2.map(str::to_string)),
            "sal_rejected_at" => Arc::new(
                rows.iter()
                    .map(|r| r.3)
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            "created_at" | "_ingested_at" => Arc::new(
                TimestampMicrosecondArray::from(vec![t("2026-09-01T00:00:00Z"); n])
                    .with_timezone("UTC"),
            ),
            "is_deleted" => Arc::new(BooleanArray::from(vec![false; n])),
            _ => new_null_array(field.data_type(), n),
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

/// `(stage, stage_reason, last_intent_at, third_party_intent_score)` per lead of a run.
type Staged = Vec<(String, String, Option<i64>, Option<f64>)>;

fn run(
    leads: &RecordBatch,
    previous: &[RecordBatch],
    intent: &[RecordBatch],
    now: &str,
) -> (Staged, RecordBatch) {
    let cfg = StagesConfig {
        intent: decay(14.0, 90, IntentCombine::Max),
        ..StagesConfig::default()
    };
    let metrics = MetricsConfig::default();
    let settings = Settings {
        stages: &cfg,
        metrics: &metrics,
        reporting_currency: "EUR",
        now_micros: t(now),
    };
    let inputs = Inputs {
        leads: std::slice::from_ref(leads),
        previous_stages: previous,
        previous_transitions: &[],
        survey_responses: &[],
    };
    let tables =
        compute_with_intent(inputs, intent, Cpsql::default(), settings, &stamp(now)).unwrap();
    let stages = tables
        .into_iter()
        .find(|t| t.table == "lead_stages")
        .unwrap()
        .batches
        .remove(0);
    let col = |name: &str| stages.column_by_name(name).unwrap().clone();
    let (stage, reason, at, score) = (
        col("stage"),
        col("stage_reason"),
        col("last_intent_at"),
        col("third_party_intent_score"),
    );
    let text = |a: &ArrayRef, i| {
        a.as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(i)
            .to_string()
    };
    let at = at
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let score = score.as_any().downcast_ref::<Float64Array>().unwrap();
    let rows = (0..stages.num_rows())
        .map(|i| {
            (
                text(&stage, i),
                text(&reason, i),
                at.is_valid(i).then(|| at.value(i)),
                score.is_valid(i).then(|| score.value(i)),
            )
        })
        .collect();
    (rows, stages)
}

#[test]
fn dead_lead_recycled_by_new_third_party_intent() {
    // `rejected` was rejected by sales on 2026-11-01; `unqualified` has a disqualifying
    // status and no date, so the run of 2026-11-10 that first saw it dates its stage.
    let batch = leads(&[
        (
            "rejected",
            "acme.com",
            None,
            Some(t("2026-11-01T15:00:00Z")),
        ),
        ("unqualified", "globex.io", Some("UNQUALIFIED"), None),
        ("early", "initech.de", None, Some(t("2026-11-01T15:00:00Z"))),
    ]);
    let (first, stages1) = run(&batch, &[], &[], "2026-11-10T04:00:00Z");
    let dead = |reason: &str| ("disqualified".to_string(), reason.to_string(), None, None);
    assert_eq!(
        first,
        vec![
            dead("rejected_by_sales"),
            dead("disqualified_status"),
            dead("rejected_by_sales"),
        ]
    );

    // New signals: acme.com on 11-15 (after its rejection), globex.io on 11-12 (after the
    // run that saw it disqualified), initech.de on 10-30 (before its rejection: not new).
    let intent = signals(&[
        (Some("acme.com"), None, "2026-11-15", 70.0),
        (Some("globex.io"), None, "2026-11-12", 70.0),
        (Some("initech.de"), None, "2026-10-30", 90.0),
    ]);
    let (second, _) = run(
        &batch,
        std::slice::from_ref(&stages1),
        std::slice::from_ref(&intent),
        "2026-11-20T04:00:00Z",
    );
    let recycled = "recycled_new_intent".to_string();
    // Half-life 14 days on 2026-11-20: acme 5 days, 70 × 0.5^(5/14) = 54.6496…;
    // globex 8 days, 70 × 0.5^(8/14) = 47.1065…; initech 21 days, 90 × 0.5^1.5 = 31.8198….
    assert_eq!(second[0].0, "recycled");
    assert_eq!(second[0].1, recycled);
    assert_eq!(second[0].2, Some(t("2026-11-15T00:00:00Z")));
    close(second[0].3, 54.649_642_750_899_7);
    assert_eq!(second[1].0, "recycled");
    assert_eq!(second[1].2, Some(t("2026-11-12T00:00:00Z")));
    close(second[1].3, 47.106_506_742_132_47);
    assert_eq!(
        (second[2].0.as_str(), second[2].1.as_str()),
        ("disqualified", "rejected_by_sales"),
        "intent before the rejection is not new"
    );
    close(second[2].3, 90.0 * 0.5_f64.powf(1.5));
}
