//! eNPS: groups of exactly 4 and 5, complementary suppression, the 1–10 scale, +100 and
//! −100, a period without responses, week and quarter periods.
//!
//! October (month period), department:
//! - People 4 responses [10, 10, 0, 0] → suppressed (4 < 5)
//! - Engineering 5 [9, 9, 9, 7, 3] → 3 promoters, 1 passive, 1 detractor, eNPS 40 — but
//!   People is the only suppressed department, so Engineering (next smallest) is too
//! - Sales 6 [10, 9, 8, 7, 6, 5] → 2 / 2 / 2, eNPS 0, shown
//! - overall 15: 7 promoters, 3 passives, 5 detractors → eNPS 100 × (7 − 5) / 15 = 13.33…
//!
//! Location: Engineering's five in Tallinn (exactly 5, nothing else suppressed: shown, 40),
//! the others in Berlin (10). Team: T1 3, T2 3 (two suppressed: no extra), T3 9.
//! November: no responses. December: team A five 10s (+100), team B five 0s (−100).

use super::{stamp, t};
use crate::metrics::config::{EnpsConfig, EnpsDimension, EnpsPeriod, EnpsScale};
use crate::metrics::enps::{
    Bucket, EnpsRow, aggregate, batch, bucket, period_label, period_start, responses,
};
use crate::normalize::{SurveyResponseRow, SurveyResponsesBuilder, TableRows};

fn response(
    id: usize,
    at: &str,
    score: Option<i64>,
    dept: &str,
    team: &str,
    location: &str,
) -> SurveyResponseRow {
    SurveyResponseRow {
        source_system: "typeform".into(),
        survey_id: "pulse".into(),
        response_id: format!("r{id}").into(),
        respondent_hash: Some(format!("h{id}")),
        submitted_at: Some(t(at)),
        question_ref: "enps".into(),
        score,
        response_status: Some("completed".into()),
        department: Some(dept.into()),
        team: Some(team.into()),
        location: Some(location.into()),
        extra_scores: None,
        kept_text: None,
        groups: None,
    }
}

pub(super) fn survey() -> arrow::record_batch::RecordBatch {
    let mut rows = Vec::new();
    let oct = "2026-10-10T10:00:00Z";
    let mut id = 0;
    let mut add = |at: &str, score, dept: &str, team: &str, loc: &str| {
        id += 1;
        rows.push(response(id, at, score, dept, team, loc));
    };
    for (i, s) in [10, 10, 0, 0].into_iter().enumerate() {
        add(
            oct,
            Some(s),
            "People",
            if i < 3 { "T1" } else { "T2" },
            "Berlin",
        );
    }
    for (i, s) in [9, 9, 9, 7, 3].into_iter().enumerate() {
        add(
            oct,
            Some(s),
            "Engineering",
            if i < 2 { "T2" } else { "T3" },
            "Tallinn",
        );
    }
    for s in [10, 9, 8, 7, 6, 5] {
        add(oct, Some(s), "Sales", "T3", "Berlin");
    }
    // Unanswered: listed in enps_responses, counted nowhere.
    add(oct, None, "Sales", "T3", "Berlin");
    let dec = "2026-12-03T10:00:00Z";
    for _ in 0..5 {
        add(dec, Some(10), "Sales", "A", "Berlin");
    }
    for _ in 0..5 {
        add(dec, Some(0), "Sales", "B", "Berlin");
    }
    let mut b = SurveyResponsesBuilder::new(rows.len());
    for r in rows {
        b.push(&r);
    }
    b.finish(&stamp("r"))
}

fn find<'a>(rows: &'a [EnpsRow], period: &str, dim: &str, group: Option<&str>) -> &'a EnpsRow {
    rows.iter()
        .find(|r| {
            period_label(r.period_start, EnpsPeriod::Month) == period
                && r.dimension == dim
                && r.group.as_deref() == group
        })
        .unwrap_or_else(|| panic!("no row {period} {dim} {group:?}"))
}

/// (respondents, promoters, passives, detractors, eNPS) as shown, or `None` when suppressed.
fn shown(r: &EnpsRow) -> Option<(i64, i64, i64, i64, f64)> {
    (!r.suppressed).then(|| {
        let c = r.counts;
        (
            c.respondents,
            c.promoters,
            c.passives,
            c.detractors,
            c.enps().unwrap_or(f64::NAN),
        )
    })
}

#[test]
fn anonymity_threshold_and_complementary_suppression() {
    let cfg = EnpsConfig::default();
    let all = responses(&[survey()], &cfg).unwrap();
    assert_eq!(all.len(), 26);
    let rows = aggregate(&all, &cfg);

    assert!(find(&rows, "2026-10", "department", Some("People")).suppressed);
    assert!(
        find(&rows, "2026-10", "department", Some("Engineering")).suppressed,
        "complementary: the only other way to learn People's answers"
    );
    assert_eq!(
        shown(find(&rows, "2026-10", "department", Some("Sales"))),
        Some((6, 2, 2, 2, 0.0))
    );
    assert_eq!(
        shown(find(&rows, "2026-10", "overall", None)),
        Some((15, 7, 3, 5, 100.0 * 2.0 / 15.0))
    );

    // Exactly five, nothing else suppressed: shown.
    assert_eq!(
        shown(find(&rows, "2026-10", "location", Some("Tallinn"))),
        Some((5, 3, 1, 1, 40.0))
    );
    assert_eq!(
        shown(find(&rows, "2026-10", "location", Some("Berlin"))),
        Some((10, 4, 2, 4, 0.0))
    );
    // Two small teams suppressed already: no extra suppression of the large one.
    assert!(find(&rows, "2026-10", "team", Some("T1")).suppressed);
    assert!(find(&rows, "2026-10", "team", Some("T2")).suppressed);
    assert_eq!(
        shown(find(&rows, "2026-10", "team", Some("T3"))),
        Some((9, 3, 3, 3, 0.0))
    );

    // A period with no responses: an overall row, nobody to show.
    let nov = find(&rows, "2026-11", "overall", None);
    assert!(nov.suppressed);
    assert_eq!(nov.counts.respondents, 0);
    assert_eq!(
        rows.iter()
            .filter(|r| period_label(r.period_start, EnpsPeriod::Month) == "2026-11")
            .count(),
        1
    );

    // All promoters and all detractors.
    assert_eq!(
        shown(find(&rows, "2026-12", "team", Some("A"))),
        Some((5, 5, 0, 0, 100.0))
    );
    assert_eq!(
        shown(find(&rows, "2026-12", "team", Some("B"))),
        Some((5, 0, 0, 5, -100.0))
    );

    // In the table, suppressed rows carry no numbers at all.
    let b = batch(&rows, &cfg, &stamp("r")).unwrap();
    let suppressed = b
        .column_by_name("suppressed")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BooleanArray>()
        .unwrap()
        .clone();
    for name in [
        "respondents",
        "promoters",
        "detractors",
        "pct_promoters",
        "enps",
    ] {
        let column = b.column_by_name(name).unwrap();
        for i in 0..b.num_rows() {
            if suppressed.value(i) {
                assert!(arrow::array::Array::is_null(column, i), "{name} row {i}");
            }
        }
    }
}

#[test]
fn one_to_ten_scale_and_buckets() {
    assert_eq!(bucket(0, EnpsScale::ZeroToTen), Some(Bucket::Detractor));
    assert_eq!(bucket(0, EnpsScale::OneToTen), None, "0 is outside 1–10");
    assert_eq!(bucket(1, EnpsScale::OneToTen), Some(Bucket::Detractor));
    assert_eq!(bucket(6, EnpsScale::OneToTen), Some(Bucket::Detractor));
    assert_eq!(bucket(7, EnpsScale::OneToTen), Some(Bucket::Passive));
    assert_eq!(bucket(8, EnpsScale::ZeroToTen), Some(Bucket::Passive));
    assert_eq!(bucket(9, EnpsScale::OneToTen), Some(Bucket::Promoter));
    assert_eq!(bucket(11, EnpsScale::ZeroToTen), None);

    // On 1–10 People's two 0s are not scored: People has 2 scored respondents.
    let cfg = EnpsConfig {
        scale: EnpsScale::OneToTen,
        group_by: vec![EnpsDimension::department()],
        ..EnpsConfig::default()
    };
    let rows = aggregate(&responses(&[survey()], &cfg).unwrap(), &cfg);
    assert_eq!(
        find(&rows, "2026-10", "department", Some("People"))
            .counts
            .respondents,
        2
    );
    assert_eq!(
        shown(find(&rows, "2026-10", "overall", None)),
        Some((13, 7, 3, 3, 100.0 * 4.0 / 13.0))
    );
}

#[test]
fn question_filter_and_periods() {
    let cfg = EnpsConfig {
        question_ref: Some("other".into()),
        ..EnpsConfig::default()
    };
    assert!(responses(&[survey()], &cfg).unwrap().is_empty());

    let day = super::d("2026-11-20");
    assert_eq!(period_start(day, EnpsPeriod::Week), super::d("2026-11-16"));
    assert_eq!(
        period_label(period_start(day, EnpsPeriod::Week), EnpsPeriod::Week),
        "2026-W47"
    );
    assert_eq!(
        period_start(day, EnpsPeriod::Quarter),
        super::d("2026-10-01")
    );
    assert_eq!(
        period_label(super::d("2026-10-01"), EnpsPeriod::Quarter),
        "2026-Q4"
    );
    // ISO weeks cross the year: Friday 1 Jan 2027 is in 2026's week 53.
    let new_year = period_start(super::d("2027-01-01"), EnpsPeriod::Week);
    assert_eq!(new_year, super::d("2026-12-28"));
    assert_eq!(period_label(new_year, EnpsPeriod::Week), "2026-W53");

    // Quarterly: October and December fall in one period.
    let cfg = EnpsConfig {
        period: EnpsPeriod::Quarter,
        group_by: vec![],
        ..EnpsConfig::default()
    };
    let rows = aggregate(&responses(&[survey()], &cfg).unwrap(), &cfg);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].counts.respondents, 25);
}

/// Team asked as a question on both tools, and `tenure` (a dimension with no column of its
/// own), all in November (month period), threshold 5:
///
/// Typeform form `f` (team from the multiple-choice field `which_team`, tenure from the
/// dropdown `tenure`):
/// - Platform 5 [10, 9, 9, 7, 3] → 3 / 1 / 1, eNPS 40: exactly the threshold, shown (two
///   other teams are suppressed, so no complementary suppression)
/// - Data 4 [9, 8, 7, 6] → suppressed (just below); Mobile 1 [10] → suppressed
/// - Frontend 6 [10, 10, 8, 8, 6, 5] → 2 / 2 / 2, eNPS 0
/// - overall 16: 7 promoters, 5 passives, 4 detractors → 100 × 3 / 16 = 18.75
/// - tenure: Platform's five `< 1 year` (eNPS 40), the other eleven `1-2 years`
///   (4 promoters, 4 passives, 3 detractors → 100 × 1 / 11 = 9.09…)
///
/// SurveyMonkey survey `s` (team from the single-choice question `qt`, by choice id):
/// - North America Sales 7 [10, 10, 10, 7, 7, 6, 6] → 3 / 2 / 2, 100 × 1 / 7 = 14.28…
/// - EMEA Sales 5 [9, 9, 9, 9, 0] → eNPS 60, but SDR 4 [9, 9, 9, 9] is the only suppressed
///   team, so EMEA Sales (the next smallest) is suppressed too
///
/// Nothing gives a location, and SurveyMonkey no tenure: `_runs.warnings` says so.
#[test]
fn enps_by_team_asked_as_a_question_on_both_tools() {
    use crate::metrics::enps::Enps;
    use crate::normalize::PersonalDataHasher;
    use crate::sources::{surveymonkey, typeform};
    use serde_json::json;

    let hasher = PersonalDataHasher::new(b"k");
    let mut rows = Vec::new();

    let tf: typeform::TypeformConfig = toml::from_str(
        r#"name = "pulse"
token = "t"
form_ids = ["f"]
group_questions = { team = "which_team", tenure = "tenure" }"#,
    )
    .unwrap();
    let teams: [(&str, &[i64]); 4] = [
        ("Platform", &[10, 9, 9, 7, 3]),
        ("Data", &[9, 8, 7, 6]),
        ("Mobile", &[10]),
        ("Frontend", &[10, 10, 8, 8, 6, 5]),
    ];
    for (team, scores) in teams {
        for score in scores {
            let tenure = if team == "Platform" {
                "< 1 year"
            } else {
                "1-2 years"
            };
            let item = json!({
                "token": format!("f{}", rows.len()),
                "submitted_at": "2026-11-05T10:00:00Z",
                "answers": [
                    {"field": {"id": "a", "type": "opinion_scale", "ref": "enps"}, "type": "number", "number": score},
                    {"field": {"id": "b", "type": "multiple_choice", "ref": "which_team"}, "type": "choice", "choice": {"id": "c1", "label": team}},
                    {"field": {"id": "c", "type": "dropdown", "ref": "tenure"}, "type": "choice", "choice": {"label": tenure}}
                ]
            });
            let item = sonic_rs::to_value(&item).unwrap();
            rows.push(typeform::decode_response(&item, "f", &tf, &hasher).unwrap());
        }
    }

    let sm: surveymonkey::SurveyMonkeyConfig = toml::from_str(
        r#"name = "sm"
token = "t"
survey_ids = ["s"]
enps_question_id = "q1"
group_questions = { team = "qt" }"#,
    )
    .unwrap();
    let scale: Vec<_> = (0..=10)
        .map(|s| json!({"id": format!("q1-{s}"), "text": s.to_string(), "position": s + 1}))
        .collect();
    let details = json!({"pages": [{"questions": [
        {"id": "q1", "answers": {"choices": scale}},
        {"id": "qt", "family": "single_choice", "answers": {"choices": [
            {"id": "t1", "text": "EMEA Sales", "position": 1},
            {"id": "t2", "text": "North America Sales", "position": 2},
            {"id": "t3", "text": "SDR", "position": 3}
        ]}}
    ]}]});
    let choices = surveymonkey::catalogue(&details);
    let teams: [(&str, &[i64]); 3] = [
        ("t2", &[10, 10, 10, 7, 7, 6, 6]),
        ("t1", &[9, 9, 9, 9, 0]),
        ("t3", &[9, 9, 9, 9]),
    ];
    for (choice, scores) in teams {
        for score in scores {
            let response = json!({
                "id": format!("s{}", rows.len()), "response_status": "completed",
                "date_modified": "2026-11-06T09:00:00+00:00",
                "pages": [{"questions": [
                    {"id": "q1", "answers": [{"choice_id": format!("q1-{score}")}]},
                    {"id": "qt", "answers": [{"choice_id": choice}]}
                ]}]
            });
            let response = sonic_rs::to_value(&response).unwrap();
            rows.push(
                surveymonkey::decode_response(&response, "s", &sm, &choices, &hasher).unwrap(),
            );
        }
    }
    assert_eq!(rows[0].team.as_deref(), Some("Platform"));
    assert_eq!(rows[0].groups.as_deref(), Some(r#"{"tenure":"< 1 year"}"#));
    assert_eq!(rows[16].team.as_deref(), Some("North America Sales"));
    assert_eq!(rows[16].groups, None);

    let mut b = SurveyResponsesBuilder::new(rows.len());
    for r in rows {
        b.push(&r);
    }
    let cfg: EnpsConfig = toml::from_str(r#"group_by = ["team", "tenure", "location"]"#).unwrap();
    let all = responses(&[b.finish(&stamp("r"))], &cfg).unwrap();
    assert_eq!(all.len(), 32);
    let mut enps = Enps::new(&cfg);
    for r in &all {
        enps.add(r);
    }
    let warnings = enps.empty_dimensions();
    let rows = enps.rows(&cfg);
    let nov = "2026-11";
    let per = |survey: &str, dim: &str, group: Option<&str>| {
        rows.iter()
            .find(|r| r.survey_id == survey && r.dimension == dim && r.group.as_deref() == group)
            .unwrap_or_else(|| panic!("no row {survey} {dim} {group:?}"))
    };
    assert_eq!(
        shown(find(&rows, nov, "team", Some("Platform"))),
        Some((5, 3, 1, 1, 40.0)),
        "exactly the threshold: shown"
    );
    assert!(per("f", "team", Some("Data")).suppressed, "4: just below");
    assert_eq!(per("f", "team", Some("Data")).counts.respondents, 4);
    assert!(per("f", "team", Some("Mobile")).suppressed);
    assert_eq!(
        shown(per("f", "team", Some("Frontend"))),
        Some((6, 2, 2, 2, 0.0))
    );
    assert_eq!(shown(per("f", "overall", None)), Some((16, 7, 5, 4, 18.75)));
    assert_eq!(
        shown(per("f", "tenure", Some("< 1 year"))),
        Some((5, 3, 1, 1, 40.0))
    );
    assert_eq!(
        shown(per("f", "tenure", Some("1-2 years"))),
        Some((11, 4, 4, 3, 100.0 / 11.0))
    );
    assert_eq!(
        shown(per("s", "team", Some("North America Sales"))),
        Some((7, 3, 2, 2, 100.0 / 7.0))
    );
    assert!(per("s", "team", Some("SDR")).suppressed, "4: just below");
    let emea = per("s", "team", Some("EMEA Sales"));
    assert!(emea.suppressed, "complementary: SDR is the only small team");
    assert_eq!(emea.counts.respondents, 5);
    // All-null dimensions: one null group, and said so.
    assert_eq!(per("f", "location", None).counts.respondents, 16);
    assert_eq!(per("s", "tenure", None).counts.respondents, 16);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].starts_with("enps: survey f: dimension `location` is null in all 16 responses"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("enps: survey s: dimension `tenure` is null in all 16 responses"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].starts_with("enps: survey s: dimension `location` is null in all 16 responses"),
        "{warnings:?}"
    );
}
