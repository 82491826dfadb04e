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
        response_id: format!("r{id}"),
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
        b.push(r);
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
        group_by: vec![EnpsDimension::Department],
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
