//! Streaming: the same leads and responses split over many small batches give exactly the
//! tables one batch gives — `priority_rank` ties across batch boundaries included — on a
//! first run and on a second run that reads the first one's `lead_stages` and transitions.
//! And a second pass that does not see what the first saw is an error, not a wrong table.
//!
//! Leads (score = web visits; `won` leads are customers, so not ranked), split 3 per batch:
//! - batch 1: a50 (A, 50), a70 (A, 70), gone (deleted: left out)
//! - batch 2: a50b (A, 50), a90 (A, 90, customer), b10 (B, 10)
//! - batch 3: a40 (A, 40), none20 (no owner, 20), none30 (no owner, 30)
//! - batch 4: b10b (B, 10), mql (B, 5, an MQL with a SAL date)
//!
//! Ranks: A — a70 1, a50 and a50b 2 (a tie across batches 1 and 2), a40 4; B — b10 and b10b
//! 1 (a tie across batches 2 and 4), mql 3; no owner — none30 1, none20 2.

use arrow::array::{Array, AsArray};
use arrow::compute::concat_batches;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use super::{stamp, t};
use crate::metrics::config::{MetricsConfig, StagesConfig};
use crate::metrics::cpsql::Cpsql;
use crate::metrics::stages::PreviousStages;
use crate::metrics::{
    Accumulator, Inputs, LeadRows, MetricTable, Settings, compute, compute_in_partitions,
};
use crate::normalize::{LeadRow, LeadsBuilder, TableRows};

fn stages_config() -> StagesConfig {
    toml::from_str(
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
        name = "accepted"
        stage = "sal"
        when = { set = ["sal_at"] }
        [[rules]]
        name = "mql"
        stage = "mql"
        when = { set = ["mql_at"] }
        [[rules]]
        stage = "lead"
        "#,
    )
    .unwrap()
}

fn row(id: &str, owner: Option<&str>, visits: i64) -> LeadRow {
    LeadRow {
        source_system: "hubspot".into(),
        lead_id: id.into(),
        email_hash: None,
        email_domain: None,
        company: None,
        job_title: None,
        country: None,
        owner_id: owner.map(Into::into),
        channel: Some(
            if visits % 20 == 0 {
                "paid_search"
            } else {
                "organic_search"
            }
            .into(),
        ),
        campaign_id: (visits >= 50).then(|| "C1".into()),
        lifecycle_stage_raw: None,
        lead_status_raw: None,
        vendor_score: None,
        demo_requested: None,
        content_downloads: None,
        web_visits: Some(visits),
        email_engagements: None,
        budget_confirmed: None,
        authority: None,
        need_confirmed: None,
        timeline_confirmed: None,
        created_at: Some(t("2026-09-01T09:00:00Z") + visits * 3_600_000_000),
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
        industry: None,
        employee_count: None,
        annual_revenue: None,
        annual_revenue_currency: None,
        custom: Vec::new(),
        is_deleted: false,
    }
}

/// The leads of the first run as one batch, in the order of the module doc.
fn leads(second_run: bool) -> RecordBatch {
    batch_of(lead_rows(second_run))
}

fn batch_of(rows: Vec<LeadRow>) -> RecordBatch {
    let mut b = LeadsBuilder::new(rows.len());
    for r in rows {
        b.push(&r);
    }
    b.finish(&stamp("pull"))
}

/// The rows of [`leads`].
fn lead_rows(second_run: bool) -> Vec<LeadRow> {
    let won = |mut r: LeadRow| {
        r.lifecycle_stage_raw = Some("customer".into());
        r.customer_at = Some(t("2026-10-20T00:00:00Z"));
        r
    };
    let mut mql = row("mql", Some("B"), 5);
    mql.mql_at = Some(t("2026-10-01T00:00:00Z"));
    mql.sal_at = Some(t("2026-10-01T05:00:00Z"));
    mql.first_contacted_at = Some(t("2026-10-01T06:00:00Z"));
    let mut gone = row("gone", Some("A"), 99);
    gone.is_deleted = true;
    let mut a40 = row("a40", Some("A"), 40);
    if second_run {
        // Moves on between the runs: a transition, and a new rank order for A.
        a40.mql_at = Some(t("2026-10-05T00:00:00Z"));
        a40.web_visits = Some(80);
    }
    vec![
        row("a50", Some("A"), 50),
        row("a70", Some("A"), 70),
        gone,
        row("a50b", Some("A"), 50),
        won(row("a90", Some("A"), 90)),
        row("b10", Some("B"), 10),
        a40,
        row("none20", None, 20),
        row("none30", None, 30),
        row("b10b", Some("B"), 10),
        mql,
    ]
}

fn split(batch: &RecordBatch, size: usize) -> Vec<RecordBatch> {
    (0..batch.num_rows())
        .step_by(size)
        .map(|offset| batch.slice(offset, size.min(batch.num_rows() - offset)))
        .collect()
}

/// Every table as one batch, so different batchings compare equal when the rows do.
fn whole(tables: Vec<MetricTable>) -> Vec<(&'static str, RecordBatch)> {
    tables
        .into_iter()
        .map(|t| (t.table, concat_batches(&t.schema, &t.batches).unwrap()))
        .collect()
}

fn run(
    cfg: &StagesConfig,
    metrics: &MetricsConfig,
    inputs: Inputs<'_>,
    now: &str,
) -> Vec<(&'static str, RecordBatch)> {
    let settings = settings(cfg, metrics, now);
    whole(compute(inputs, Cpsql::default(), settings, &stamp(now)).unwrap())
}

fn table<'a>(tables: &'a [(&str, RecordBatch)], name: &str) -> &'a RecordBatch {
    &tables.iter().find(|(n, _)| *n == name).unwrap().1
}

fn ranks(tables: &[(&str, RecordBatch)]) -> Vec<(String, Option<i64>)> {
    let b = table(tables, "lead_stages");
    let ids = b.column_by_name("lead_id").unwrap().as_string::<i32>();
    let ranks = b
        .column_by_name("priority_rank")
        .unwrap()
        .as_primitive::<Int64Type>();
    (0..b.num_rows())
        .map(|i| {
            (
                ids.value(i).to_string(),
                ranks.is_valid(i).then(|| ranks.value(i)),
            )
        })
        .collect()
}

#[test]
fn many_small_batches_equal_one_batch_across_two_runs() {
    let cfg = stages_config();
    let metrics = MetricsConfig::default();
    let survey = super::enps::survey();
    let (run1, run2) = ("2026-11-01T04:00:00Z", "2026-11-02T04:00:00Z");

    let one = leads(false);
    let first = run(
        &cfg,
        &metrics,
        Inputs {
            leads: std::slice::from_ref(&one),
            previous_stages: &[],
            previous_transitions: &[],
            survey_responses: std::slice::from_ref(&survey),
        },
        run1,
    );
    for size in [1, 2, 3, 5] {
        let streamed = run(
            &cfg,
            &metrics,
            Inputs {
                leads: &split(&one, size),
                previous_stages: &[],
                previous_transitions: &[],
                survey_responses: &split(&survey, size),
            },
            run1,
        );
        assert_eq!(streamed, first, "batches of {size}");
    }
    let some = |rank| Some(rank);
    let expected = [
        ("a50", some(2)),
        ("a70", some(1)),
        ("a50b", some(2)),
        ("a90", None),
        ("b10", some(1)),
        ("a40", some(4)),
        ("none20", some(2)),
        ("none30", some(1)),
        ("b10b", some(1)),
        ("mql", some(3)),
    ]
    .map(|(id, rank)| (id.to_string(), rank));
    assert_eq!(ranks(&first), expected);
    assert_eq!(table(&first, "lead_stage_transitions").num_rows(), 10);
    assert_eq!(table(&first, "enps_responses").num_rows(), 26);

    // The second run reads the first's lead_stages and transitions, themselves split.
    let previous_stages = table(&first, "lead_stages").clone();
    let previous_transitions = table(&first, "lead_stage_transitions").clone();
    let two = leads(true);
    let second = run(
        &cfg,
        &metrics,
        Inputs {
            leads: std::slice::from_ref(&two),
            previous_stages: std::slice::from_ref(&previous_stages),
            previous_transitions: std::slice::from_ref(&previous_transitions),
            survey_responses: std::slice::from_ref(&survey),
        },
        run2,
    );
    let streamed = run(
        &cfg,
        &metrics,
        Inputs {
            leads: &split(&two, 3),
            previous_stages: &split(&previous_stages, 4),
            previous_transitions: &split(&previous_transitions, 4),
            survey_responses: &split(&survey, 7),
        },
        run2,
    );
    assert_eq!(streamed, second);
    // a40 (now 80 visits, an MQL) ranks first in A; the rest of A moves down one.
    let a: Vec<_> = ranks(&second)
        .into_iter()
        .filter(|(id, _)| id.starts_with('a'))
        .collect();
    assert_eq!(
        a,
        [
            ("a50", some(3)),
            ("a70", some(2)),
            ("a50b", some(3)),
            ("a90", None),
            ("a40", some(1)),
        ]
        .map(|(id, rank)| (id.to_string(), rank))
    );
    // The earlier 10 transitions, then a40's move from lead to MQL.
    let transitions = table(&second, "lead_stage_transitions");
    assert_eq!(transitions.num_rows(), 11);
    let last = transitions.slice(10, 1);
    let text = |name: &str| {
        let c = last.column_by_name(name).unwrap().as_string::<i32>();
        c.is_valid(0).then(|| c.value(0).to_string())
    };
    assert_eq!(
        (text("lead_id"), text("from_stage"), text("to_stage")),
        (Some("a40".into()), Some("lead".into()), Some("mql".into()))
    );
}

/// The leads of [`leads`] 600 times over as one batch (6,600 leads), the copies' ids suffixed
/// `-0` to `-599`.
fn six_hundred_copies(second_run: bool) -> RecordBatch {
    let rows = (0..600).flat_map(|copy| {
        lead_rows(second_run).into_iter().map(move |mut r| {
            r.lead_id = format!("{}-{copy}", r.lead_id).into();
            r
        })
    });
    batch_of(rows.collect())
}

/// A batch large enough for `Stager::stage_batch` to split across two threads gives the
/// tables that batches too small to split give, on a first and a second run: the rows of the
/// module doc, 600 times over (6,600 leads; ranks tie across the halves).
#[test]
fn a_batch_staged_by_two_threads_equals_small_batches() {
    let cfg = stages_config();
    let metrics = MetricsConfig::default();
    let (run1, run2) = ("2026-11-01T04:00:00Z", "2026-11-02T04:00:00Z");
    let one = six_hundred_copies(false);
    assert_eq!(one.num_rows(), 6_600);
    let first = |leads: &[RecordBatch]| {
        let inputs = Inputs {
            leads,
            previous_stages: &[],
            previous_transitions: &[],
            survey_responses: &[],
        };
        run(&cfg, &metrics, inputs, run1)
    };
    let big = first(std::slice::from_ref(&one));
    assert_eq!(big, first(&split(&one, 1_000)));
    assert_eq!(
        table(&big, "lead_stages").num_rows(),
        6_000,
        "deleted leads left out"
    );
    assert_eq!(table(&big, "lead_stage_transitions").num_rows(), 6_000);

    let previous_stages = table(&big, "lead_stages").clone();
    let previous_transitions = table(&big, "lead_stage_transitions").clone();
    let two = six_hundred_copies(true);
    let second = |leads: &[RecordBatch]| {
        run(
            &cfg,
            &metrics,
            Inputs {
                leads,
                previous_stages: std::slice::from_ref(&previous_stages),
                previous_transitions: std::slice::from_ref(&previous_transitions),
                survey_responses: &[],
            },
            run2,
        )
    };
    let big = second(std::slice::from_ref(&two));
    assert_eq!(big, second(&split(&two, 1_000)));
    // Every copy of a40 moves from lead to MQL.
    assert_eq!(table(&big, "lead_stage_transitions").num_rows(), 6_600);
}

#[test]
fn a_second_pass_over_rows_the_first_did_not_stage_is_an_error() {
    let cfg = stages_config();
    let metrics = MetricsConfig::default();
    let settings = settings(&cfg, &metrics, "2026-11-01T04:00:00Z");
    let previous = std::sync::Arc::new(PreviousStages::new());
    let batches = split(&leads(false), 3);
    // Pass 1 over `fed`; pass 2 over the rows a full pass 1 staged.
    let pass2 = |fed: &[RecordBatch]| -> crate::Result<()> {
        let staged = |fed: &[RecordBatch]| {
            let mut pass1 =
                Accumulator::new(settings, std::sync::Arc::clone(&previous), Cpsql::default());
            let rows = fed
                .iter()
                .map(|b| pass1.add_leads(b, &stamp("r")).map(|(rows, _)| rows))
                .collect::<crate::Result<Vec<_>>>();
            (pass1, rows)
        };
        let (pass1, _) = staged(fed);
        let (_, all_rows) = staged(&batches);
        let (mut pass2, _): (LeadRows<'_>, _) = pass1.finish(&stamp("r"))?;
        for rows in &all_rows? {
            let ranked = pass2.rank(rows)?;
            assert_eq!(ranked.num_rows(), rows.num_rows());
        }
        pass2.finish(&stamp("r")).map(|_| ())
    };
    assert!(pass2(&batches).is_ok());
    // Pass 1 missed a batch: pass 2 meets an owner's score pass 1 never counted.
    let missing_rank = pass2(&batches[..3]).unwrap_err().to_string();
    assert!(
        missing_rank.contains("not seen by the first pass"),
        "{missing_rank}"
    );
    // Pass 1 missed a closed lead and one tied with a later lead: every rank pass 2 looks
    // up is there, but the counts differ.
    let closed_only = [
        batches[0].clone(),
        batches[1].slice(0, 1),
        batches[2].clone(),
        batches[3].clone(),
    ];
    let miscount = pass2(&closed_only).unwrap_err().to_string();
    assert!(miscount.contains("saw different rows"), "{miscount}");
}

#[test]
fn stepping_a_batch_behind_folds_every_lead_once_in_order() {
    let cfg = stages_config();
    let metrics = MetricsConfig::default();
    let settings = settings(&cfg, &metrics, "2026-11-01T04:00:00Z");
    let previous = std::sync::Arc::new(PreviousStages::new());
    let batches = split(&leads(false), 3);
    let accumulator =
        || Accumulator::new(settings, std::sync::Arc::clone(&previous), Cpsql::default());
    // One batch at a time, classified and folded in step.
    let mut in_step = accumulator();
    let expected = batches
        .iter()
        .map(|b| in_step.add_leads(b, &stamp("r")).unwrap())
        .collect::<Vec<_>>();
    // A step behind: each step folds the batch the step before classified and hands it
    // back. `last` says whether the closing step (no next batch) is taken.
    let stepped = |last: bool| {
        let mut pass1 = accumulator();
        let nexts = batches.iter().map(Some).chain(last.then_some(None));
        let out = nexts
            .filter_map(|next| pass1.step(next, &stamp("r")).unwrap())
            .collect::<Vec<_>>();
        (pass1, out)
    };
    let (pass1, staged) = stepped(true);
    assert_eq!(staged, expected, "the same rows, batch for batch, in order");
    let rank_all = |pass1: Accumulator<'_>| -> crate::Result<()> {
        let (mut pass2, _) = pass1.finish(&stamp("r"))?;
        for (rows, _) in &expected {
            pass2.rank(rows)?;
        }
        pass2.finish(&stamp("r")).map(|_| ())
    };
    rank_all(pass1).unwrap();
    // Without the closing step the last batch is classified but never folded: pass 2,
    // which ranks every staged row, finds pass 1 saw fewer.
    let (unclosed, staged) = stepped(false);
    assert_eq!(staged.len(), batches.len() - 1);
    let missed = rank_all(unclosed).unwrap_err().to_string();
    assert!(
        missed.contains("saw different rows") || missed.contains("not seen by the first pass"),
        "{missed}"
    );
}

/// The settings of these tests: `cfg`'s stages, `metrics`, EUR, run at `now`.
fn settings<'a>(cfg: &'a StagesConfig, metrics: &'a MetricsConfig, now: &str) -> Settings<'a> {
    Settings {
        stages: cfg,
        metrics,
        reporting_currency: "EUR",
        now_micros: t(now),
    }
}

/// Rows in a canonical order (every column, in turn), for tables whose row order depends on
/// how the leads were taken.
fn sorted(batch: &RecordBatch) -> RecordBatch {
    use arrow::row::{RowConverter, SortField};
    let fields = batch
        .schema()
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let rows = RowConverter::new(fields)
        .unwrap()
        .convert_columns(batch.columns())
        .unwrap();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
    arrow::compute::take_record_batch(batch, &arrow::array::UInt32Array::from(order)).unwrap()
}

/// A second run whose pass 1 takes the leads a hash partition at a time (as it does when the
/// previous `lead_stages` is too large to hold) gives the tables of one taken whole: the
/// aggregates exactly, `lead_stages` and the transitions as the same rows in another order.
/// The rows of the module doc 600 times over, in batches of 1,000, the previous rows in
/// batches of 700; 2, 5 and 16 partitions.
#[test]
fn a_second_run_in_hash_partitions_equals_one_taken_whole() {
    let cfg = stages_config();
    let metrics = MetricsConfig::default();
    let survey = super::enps::survey();
    let (run1, run2) = ("2026-11-01T04:00:00Z", "2026-11-02T04:00:00Z");
    let one = six_hundred_copies(false);
    let first = run(
        &cfg,
        &metrics,
        Inputs {
            leads: std::slice::from_ref(&one),
            previous_stages: &[],
            previous_transitions: &[],
            survey_responses: &[],
        },
        run1,
    );
    let previous_stages = split(table(&first, "lead_stages"), 700);
    let previous_transitions = split(table(&first, "lead_stage_transitions"), 700);
    let two = split(&six_hundred_copies(true), 1_000);
    let settings = settings(&cfg, &metrics, run2);
    let second = |count: usize| {
        let inputs = Inputs {
            leads: &two,
            previous_stages: &previous_stages,
            previous_transitions: &previous_transitions,
            survey_responses: std::slice::from_ref(&survey),
        };
        let tables =
            compute_in_partitions(inputs, &[], Cpsql::default(), settings, &stamp(run2), count)
                .unwrap();
        whole(tables)
            .into_iter()
            .map(|(name, batch)| match name {
                "lead_stages" | "lead_stage_transitions" => (name, sorted(&batch)),
                _ => (name, batch),
            })
            .collect::<Vec<_>>()
    };
    let taken_whole = second(1);
    // a40's 600 copies move from lead to MQL: 6,000 earlier transitions and 600 new.
    assert_eq!(
        table(&taken_whole, "lead_stage_transitions").num_rows(),
        6_600
    );
    assert_eq!(table(&taken_whole, "lead_stages").num_rows(), 6_000);
    for count in [2, 5, 16] {
        assert_eq!(second(count), taken_whole, "{count} partitions");
    }
}
