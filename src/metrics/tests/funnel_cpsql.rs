//! Funnel and CPSQL on a small hand-built data set: five leads over August–October 2026,
//! spend in EUR, USD (with a rate that changes) and GBP (no rate), non-ad costs with and
//! without a channel, September without SQLs, November empty, a lead without a campaign,
//! and a late update that moves a lead into SQL.
//!
//! Leads (all HubSpot, default rules):
//! - L1 paid_search / C1: created 08-05, MQL 08-10, SAL 08-11, SQL 08-20 → sql
//! - L2 paid_search / C1: created 08-07, MQL 09-02 → mql
//! - L3 organic_search / no campaign: created 08-15, MQL 08-16, SAL 08-17 → sal
//! - L4 paid_search / C2: created 10-01, MQL 10-03, SAL 10-04, SQL 10-10, customer 10-30
//! - L5 organic_search / no campaign: created 10-20 → lead
//!
//! Spend: C1 (paid_search, EUR) 100.00 on 08-10 and 50.00 on 09-05; C2 (paid_search, USD)
//! 200.00 on 10-02; C3 (display, GBP) 10.00 on 10-03. Rates: USD 0.9 from 08-01, 0.8 from
//! 10-01; no GBP. Costs: August salaries 1000.00 EUR (no channel), August events 200.00 USD
//! for organic_search, December tools 30.00 EUR.

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::{d, lead, money, stamp, t};
use crate::metrics::config::{CpsqlConfig, StagesConfig};
use crate::metrics::cpsql::Cpsql;
use crate::metrics::funnel::{cohorts, daily};
use crate::metrics::fx::FxRates;
use crate::metrics::lead::Lead;
use crate::metrics::stages::{LeadStage, PreviousStages, compute};
use crate::normalize::{SpendBuilder, SpendRow, TableRows};

fn leads() -> Vec<Lead> {
    let mk = |id: &str, channel: &str, campaign: Option<&str>, created: &str| Lead {
        channel: Some(channel.into()),
        campaign_id: campaign.map(str::to_string),
        created_at: Some(t(&format!("2026-{created}T09:00:00Z"))),
        ..lead(id)
    };
    let at = |s: &str| Some(t(&format!("2026-{s}T12:00:00Z")));
    vec![
        Lead {
            mql_at: at("08-10"),
            sal_at: at("08-11"),
            sql_at: at("08-20"),
            ..mk("L1", "paid_search", Some("C1"), "08-05")
        },
        Lead {
            mql_at: at("09-02"),
            ..mk("L2", "paid_search", Some("C1"), "08-07")
        },
        Lead {
            mql_at: at("08-16"),
            sal_at: at("08-17"),
            ..mk("L3", "organic_search", None, "08-15")
        },
        Lead {
            mql_at: at("10-03"),
            sal_at: at("10-04"),
            sql_at: at("10-10"),
            customer_at: at("10-30"),
            ..mk("L4", "paid_search", Some("C2"), "10-01")
        },
        mk("L5", "organic_search", None, "10-20"),
    ]
}

fn stages_of(leads: Vec<Lead>) -> Vec<LeadStage> {
    let now = t("2026-12-15T04:00:00Z");
    compute(leads, &StagesConfig::default(), &PreviousStages::new(), now).0
}

fn spend() -> RecordBatch {
    let row =
        |date: &str, account: &str, campaign: &str, channel: &str, cur: &str, amount| SpendRow {
            date: d(date),
            platform: "google_ads".into(),
            account_id: account.into(),
            campaign_id: campaign.into(),
            campaign_name: None,
            channel: Some(channel.into()),
            currency: cur.into(),
            spend: money(amount),
            impressions: 0,
            clicks: 0,
        };
    let mut b = SpendBuilder::new(4);
    b.push(&row(
        "2026-08-10",
        "eur",
        "C1",
        "paid_search",
        "EUR",
        "100.00",
    ));
    b.push(&row(
        "2026-09-05",
        "eur",
        "C1",
        "paid_search",
        "EUR",
        "50.00",
    ));
    b.push(&row(
        "2026-10-02",
        "usd",
        "C2",
        "paid_search",
        "USD",
        "200.00",
    ));
    b.push(&row("2026-10-03", "gbp", "C3", "display", "GBP", "10.00"));
    b.finish(&stamp("r"))
}

/// `costs` as the costs source writes it: month, category, channel, currency, amount.
fn costs() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("month", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("currency", DataType::Utf8, false),
        Field::new("amount", DataType::Decimal128(18, 6), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["2026-08", "2026-08", "2026-12"])),
        Arc::new(StringArray::from(vec!["salaries", "events", "tools"])),
        Arc::new(StringArray::from(vec![None, Some("organic_search"), None])),
        Arc::new(StringArray::from(vec!["EUR", "USD", "EUR"])),
        Arc::new(
            Decimal128Array::from(vec![money("1000"), money("200"), money("30")])
                .with_precision_and_scale(18, 6)
                .unwrap(),
        ),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn fx() -> FxRates {
    let mut fx = FxRates::new("EUR");
    fx.add_text(
        "date,currency,rate\n2026-08-01,USD,0.9\n2026-10-01,USD,0.8\n",
        "test",
    )
    .unwrap();
    fx
}

/// One `cpsql_monthly` row as text, for readable comparisons.
type Row = (
    String,         // month
    String,         // level
    Option<String>, // channel
    Option<String>, // campaign
    String,         // spend
    [i64; 4],       // leads, mqls, sals, sqls
    [Option<String>; 4],
    bool,
    Option<String>,
);

fn cpsql_rows(stages: &[LeadStage]) -> Vec<Row> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Decimal128Type, DecimalType, Int64Type};
    let fx = fx();
    let mut acc = Cpsql::default();
    acc.add_spend(&spend(), &fx, &CpsqlConfig::default())
        .unwrap();
    acc.add_costs(&costs(), &fx).unwrap();
    acc.add_leads(stages).unwrap();
    let b = acc.finish("EUR", &stamp("r")).unwrap();
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    let s = |n: &str, i| {
        let a = col(n);
        let a = a.as_string::<i32>();
        (!a.is_null(i)).then(|| a.value(i).to_string())
    };
    let m = |n: &str, i| {
        let a = col(n);
        let a = a.as_primitive::<Decimal128Type>();
        (!a.is_null(i)).then(|| Decimal128Type::format_decimal(a.value(i), 18, 6))
    };
    let n = |name: &str, i| col(name).as_primitive::<Int64Type>().value(i);
    (0..b.num_rows())
        .map(|i| {
            (
                crate::metrics::dates::from_epoch_days(
                    col("month").as_primitive::<Date32Type>().value(i),
                )
                .format("%Y-%m")
                .to_string(),
                s("level", i).unwrap(),
                s("channel", i),
                s("campaign_id", i),
                m("spend", i).unwrap(),
                [n("leads", i), n("mqls", i), n("sals", i), n("sqls", i)],
                [
                    m("cost_per_lead", i),
                    m("cost_per_mql", i),
                    m("cost_per_sal", i),
                    m("cpsql", i),
                ],
                col("complete").as_boolean().value(i),
                s("missing_currencies", i),
            )
        })
        .collect()
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per column compared"
)]
fn row(
    month: &str,
    level: &str,
    channel: Option<&str>,
    campaign: Option<&str>,
    spend: &str,
    counts: [i64; 4],
    per: [Option<&str>; 4],
    missing: Option<&str>,
) -> Row {
    (
        month.into(),
        level.into(),
        channel.map(Into::into),
        campaign.map(Into::into),
        spend.into(),
        counts,
        per.map(|p| p.map(Into::into)),
        missing.is_none(),
        missing.map(Into::into),
    )
}

#[test]
fn cpsql_by_month_and_level() {
    let got = cpsql_rows(&stages_of(leads()));
    let n = None;
    let expected = vec![
        // August: 100.00 ad + 1000.00 salaries + 200 USD × 0.9 events = 1280.00.
        row(
            "2026-08",
            "total",
            n,
            n,
            "1280.000000",
            [3, 2, 2, 1],
            [
                Some("426.666667"),
                Some("640.000000"),
                Some("640.000000"),
                Some("1280.000000"),
            ],
            n,
        ),
        // Non-ad costs with a channel count at that channel.
        row(
            "2026-08",
            "channel",
            Some("organic_search"),
            n,
            "180.000000",
            [1, 1, 1, 0],
            [
                Some("180.000000"),
                Some("180.000000"),
                Some("180.000000"),
                n,
            ],
            n,
        ),
        row(
            "2026-08",
            "channel",
            Some("paid_search"),
            n,
            "100.000000",
            [2, 1, 1, 1],
            [
                Some("50.000000"),
                Some("100.000000"),
                Some("100.000000"),
                Some("100.000000"),
            ],
            n,
        ),
        // L3 has no campaign: it counts at total and channel, not here.
        row(
            "2026-08",
            "campaign",
            Some("paid_search"),
            Some("C1"),
            "100.000000",
            [2, 1, 1, 1],
            [
                Some("50.000000"),
                Some("100.000000"),
                Some("100.000000"),
                Some("100.000000"),
            ],
            n,
        ),
        // September: no SQLs → cpsql null, the spend kept.
        row(
            "2026-09",
            "total",
            n,
            n,
            "50.000000",
            [0, 1, 0, 0],
            [n, Some("50.000000"), n, n],
            n,
        ),
        row(
            "2026-09",
            "channel",
            Some("paid_search"),
            n,
            "50.000000",
            [0, 1, 0, 0],
            [n, Some("50.000000"), n, n],
            n,
        ),
        row(
            "2026-09",
            "campaign",
            Some("paid_search"),
            Some("C1"),
            "50.000000",
            [0, 1, 0, 0],
            [n, Some("50.000000"), n, n],
            n,
        ),
        // October: 200 USD × 0.8 = 160.00 converts; 10 GBP has no rate → incomplete, the
        // cost-per figures null rather than too low.
        row(
            "2026-10",
            "total",
            n,
            n,
            "160.000000",
            [2, 1, 1, 1],
            [n, n, n, n],
            Some("GBP"),
        ),
        row(
            "2026-10",
            "channel",
            Some("display"),
            n,
            "0.000000",
            [0, 0, 0, 0],
            [n, n, n, n],
            Some("GBP"),
        ),
        row(
            "2026-10",
            "channel",
            Some("organic_search"),
            n,
            "0.000000",
            [1, 0, 0, 0],
            [Some("0.000000"), n, n, n],
            n,
        ),
        row(
            "2026-10",
            "channel",
            Some("paid_search"),
            n,
            "160.000000",
            [1, 1, 1, 1],
            [
                Some("160.000000"),
                Some("160.000000"),
                Some("160.000000"),
                Some("160.000000"),
            ],
            n,
        ),
        row(
            "2026-10",
            "campaign",
            Some("paid_search"),
            Some("C2"),
            "160.000000",
            [1, 1, 1, 1],
            [
                Some("160.000000"),
                Some("160.000000"),
                Some("160.000000"),
                Some("160.000000"),
            ],
            n,
        ),
        row(
            "2026-10",
            "campaign",
            Some("display"),
            Some("C3"),
            "0.000000",
            [0, 0, 0, 0],
            [n, n, n, n],
            Some("GBP"),
        ),
        // November: nothing at all, still a row.
        row(
            "2026-11",
            "total",
            n,
            n,
            "0.000000",
            [0, 0, 0, 0],
            [n, n, n, n],
            n,
        ),
        // December: only a non-ad cost.
        row(
            "2026-12",
            "total",
            n,
            n,
            "30.000000",
            [0, 0, 0, 0],
            [n, n, n, n],
            n,
        ),
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
}

#[test]
fn late_update_moves_a_lead_into_sql() {
    // The CRM later records L2 as SQL on 09-25: September now has one SQL at 50.00.
    let mut updated = leads();
    updated[1].sal_at = Some(t("2026-09-20T12:00:00Z"));
    updated[1].sql_at = Some(t("2026-09-25T12:00:00Z"));
    let got = cpsql_rows(&stages_of(updated));
    let september: Vec<_> = got.iter().filter(|r| r.0 == "2026-09").collect();
    let n = None;
    assert_eq!(
        september[0],
        &row(
            "2026-09",
            "total",
            n,
            n,
            "50.000000",
            [0, 1, 1, 1],
            [n, Some("50.000000"), Some("50.000000"), Some("50.000000")],
            n
        )
    );
}

#[test]
fn channel_map_joins_spend_to_lead_channels() {
    let fx = fx();
    let cfg: CpsqlConfig = toml::from_str("channel_map = { paid_search = \"search\" }").unwrap();
    let mut acc = Cpsql::default();
    acc.add_spend(&spend(), &fx, &cfg).unwrap();
    let b = acc.finish("EUR", &stamp("r")).unwrap();
    let channels =
        arrow::compute::cast(b.column_by_name("channel").unwrap(), &DataType::Utf8).unwrap();
    let channels = channels
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .iter()
        .flatten()
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        channels.contains("search") && !channels.contains("paid_search"),
        "{channels:?}"
    );
}

#[test]
fn funnel_daily_and_cohorts() {
    let stages = stages_of(leads());
    let daily = daily(&stages).unwrap();
    let key = |day: &str, ch: &str, camp: Option<&str>| {
        (d(day), Some(ch.to_string()), camp.map(str::to_string))
    };
    // new_leads, new_warm, new_mqls, new_sals, new_sqls, new_customers
    assert_eq!(
        daily[&key("2026-08-05", "paid_search", Some("C1"))],
        [1, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        daily[&key("2026-08-10", "paid_search", Some("C1"))],
        [0, 0, 1, 0, 0, 0]
    );
    assert_eq!(
        daily[&key("2026-08-15", "organic_search", None)],
        [1, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        daily[&key("2026-10-30", "paid_search", Some("C2"))],
        [0, 0, 0, 0, 0, 1]
    );
    let total: [i64; 6] = daily.values().fold([0; 6], |mut acc, v| {
        for i in 0..6 {
            acc[i] += v[i];
        }
        acc
    });
    assert_eq!(total, [5, 0, 4, 3, 2, 1]);

    let cohorts = cohorts(&stages).unwrap();
    let c = |month: &str, ch: &str| cohorts[&(d(month), Some(ch.to_string()))].reached;
    // leads, warm, mql, sal, sql, customer reached so far
    assert_eq!(c("2026-08-01", "paid_search"), [2, 2, 2, 1, 1, 0]);
    assert_eq!(c("2026-08-01", "organic_search"), [1, 1, 1, 1, 0, 0]);
    assert_eq!(c("2026-10-01", "paid_search"), [1, 1, 1, 1, 1, 1]);
    assert_eq!(c("2026-10-01", "organic_search"), [1, 0, 0, 0, 0, 0]);
    assert_eq!(cohorts.len(), 4);

    // Rates: August paid_search lead→MQL 2/2, MQL→SAL 1/2, SAL→SQL 1/1, SQL→customer 0/1.
    let batch = crate::metrics::funnel::cohort_batch(&stages, &stamp("r")).unwrap();
    let rate = |name: &str, row: usize| {
        let a = batch
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap()
            .clone();
        arrow::array::Array::is_valid(&a, row).then(|| a.value(row))
    };
    // Rows are ordered by (month, channel): Aug organic, Aug paid, Oct organic, Oct paid.
    assert_eq!(rate("lead_to_mql_rate", 1), Some(1.0));
    assert_eq!(rate("mql_to_sal_rate", 1), Some(0.5));
    assert_eq!(rate("sal_to_sql_rate", 1), Some(1.0));
    assert_eq!(rate("sql_to_customer_rate", 1), Some(0.0));
    assert_eq!(rate("sql_to_customer_rate", 0), None, "no SQLs: no rate");
    assert_eq!(rate("lead_to_mql_rate", 2), Some(0.0));
    assert_eq!(rate("mql_to_sal_rate", 2), None);
}

#[test]
fn spend_reporting_column_is_added_after_spend() {
    let (b, missing) = crate::metrics::fx::add_spend_reporting(&spend(), &fx()).unwrap();
    let names: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let at = names.iter().position(|n| n == "spend").unwrap();
    assert_eq!(names[at + 1], "spend_reporting");
    let conv = b
        .column_by_name("spend_reporting")
        .unwrap()
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap()
        .iter()
        .collect::<Vec<_>>();
    assert_eq!(
        conv,
        vec![
            Some(money("100")),
            Some(money("50")),
            Some(money("160")),
            None
        ]
    );
    assert_eq!(
        missing.into_iter().collect::<Vec<_>>(),
        vec!["GBP".to_string()]
    );
    // Enriching again replaces the column instead of adding a second one.
    let (again, _) = crate::metrics::fx::add_spend_reporting(&b, &fx()).unwrap();
    assert_eq!(again.num_columns(), b.num_columns());
}

#[test]
fn costs_from_another_writer_date_months_and_other_scales() {
    // A costs file with `month` as a DATE and amounts as DECIMAL(10,2): 1234.56 EUR.
    let schema = Arc::new(Schema::new(vec![
        Field::new("month", DataType::Date32, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("amount", DataType::Decimal128(10, 2), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(arrow::array::Date32Array::from(vec![d("2026-08-14")])),
        Arc::new(StringArray::from(vec!["tools"])),
        Arc::new(StringArray::from(vec!["EUR"])),
        Arc::new(
            Decimal128Array::from(vec![123_456_i128])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
    ];
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    let mut acc = Cpsql::default();
    acc.add_costs(&batch, &fx()).unwrap();
    let b = acc.finish("EUR", &stamp("r")).unwrap();
    let other = b
        .column_by_name("other_costs")
        .unwrap()
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap()
        .value(0);
    assert_eq!(other, money("1234.56"));
    let month = b
        .column_by_name("month")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Date32Array>()
        .unwrap()
        .value(0);
    assert_eq!(
        month,
        d("2026-08-01"),
        "a date anywhere in the month is that month"
    );
}

#[test]
fn costs_gain_amount_reporting_at_the_months_rate() {
    let (b, missing) = crate::metrics::fx::add_costs_reporting(&costs(), &fx()).unwrap();
    let names: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "month",
            "category",
            "channel",
            "currency",
            "amount",
            "amount_reporting"
        ]
    );
    let conv = b
        .column_by_name("amount_reporting")
        .unwrap()
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap()
        .iter()
        .collect::<Vec<_>>();
    // 200 USD in August at 0.9 (the rate of 1 August).
    assert_eq!(
        conv,
        vec![Some(money("1000")), Some(money("180")), Some(money("30"))]
    );
    assert!(missing.is_empty());
}

#[test]
fn months_without_any_spend_data_have_no_cost_per_figures() {
    // Leads only (say, older than the spend look-back): spend 0, but unknown, so null.
    let mut acc = Cpsql::default();
    acc.add_leads(&stages_of(leads())).unwrap();
    let b = acc.finish("EUR", &stamp("r")).unwrap();
    for name in ["cost_per_lead", "cost_per_mql", "cost_per_sal", "cpsql"] {
        let column = b.column_by_name(name).unwrap();
        assert_eq!(column.null_count(), b.num_rows(), "{name}");
    }
    // August total: 3 leads, spend 0.
    let leads = b
        .column_by_name("leads")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(leads, 3);
}

/// More campaign rows than one batch holds come as several batches in the table's order
/// across their boundaries: 2 months × 5,000 campaigns (10,000 campaign rows, plus a total
/// and a channel row a month) in batches of at most `CHUNK_ROWS`, every campaign's spend
/// where it belongs. Campaign `c` spent c + 9 EUR in September and c + 10 in October.
#[test]
fn cpsql_rows_past_one_batch_come_in_order_a_batch_at_a_time() {
    use crate::metrics::cpsql::CHUNK_ROWS;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Date32Type;
    let mut b = SpendBuilder::new(10_000);
    for (day, month) in [("2026-09-03", 9), ("2026-10-03", 10)] {
        for c in 0..5_000 {
            b.push(&SpendRow {
                date: d(day),
                platform: "google_ads".into(),
                account_id: "a".into(),
                campaign_id: format!("C{c:05}").into(),
                campaign_name: None,
                channel: Some("paid_search".into()),
                currency: "EUR".into(),
                spend: money(&format!("{}.00", c + month)),
                impressions: 0,
                clicks: 0,
            });
        }
    }
    let mut acc = Cpsql::default();
    acc.add_spend(&b.finish(&stamp("r")), &fx(), &CpsqlConfig::default())
        .unwrap();
    let batches: Vec<RecordBatch> = acc
        .into_batches("EUR", &stamp("r"))
        .unwrap()
        .collect::<crate::Result<_>>()
        .unwrap();
    assert_eq!(batches.len(), 10_004_usize.div_ceil(CHUNK_ROWS));
    assert!(batches.iter().all(|b| b.num_rows() <= CHUNK_ROWS));
    let mut rows = Vec::new();
    for b in &batches {
        let month = b
            .column_by_name("month")
            .unwrap()
            .as_primitive::<Date32Type>();
        let level = b.column_by_name("level").unwrap().as_string::<i32>();
        let campaign = b.column_by_name("campaign_id").unwrap().as_string::<i32>();
        let spend = b
            .column_by_name("spend")
            .unwrap()
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        for i in 0..b.num_rows() {
            rows.push((
                month.value(i),
                level.value(i).to_string(),
                campaign.is_valid(i).then(|| campaign.value(i).to_string()),
                spend.value(i),
            ));
        }
    }
    assert_eq!(rows.len(), 10_004);
    // The table's order: month, then the total, the channels and the campaigns by name.
    let rank = |level: &str| {
        ["total", "channel", "campaign"]
            .iter()
            .position(|l| *l == level)
    };
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| (a.0, rank(&a.1), &a.2).cmp(&(b.0, rank(&b.1), &b.2)));
    assert!(
        rows == sorted,
        "in (month, level, name) order across the batches"
    );
    // September's total is 9 + 10 + … + 5,008 = 5,000 × 9 + 4,999 × 5,000 / 2.
    let (september, october) = (d("2026-09-01"), d("2026-10-01"));
    let total = rows
        .iter()
        .find(|r| r.0 == september && r.1 == "total")
        .unwrap();
    assert_eq!(total.3, money(&(5_000 * 9 + 4_999 * 5_000 / 2).to_string()));
    let c4999 = rows
        .iter()
        .find(|r| r.0 == october && r.2.as_deref() == Some("C04999"))
        .unwrap();
    assert_eq!((c4999.1.as_str(), c4999.3), ("campaign", money("5009.00")));
}

/// Rows set aside on disk within a budget and merged back give the table the accumulator
/// gives holding every row: sums across runs, currencies without a rate gathered from
/// several runs (GBP and JPY, in different months), the first channel a campaign was seen
/// with (C-campaigns first spend without one), an empty month filled, and campaign names
/// that first arrive after runs were written (in reverse name order). Budgets of 1 to 40
/// rows; at 1 and 2 there are more runs than `MAX_RUNS`, so runs are merged on the way too.
#[test]
fn cpsql_rows_set_aside_within_a_budget_equal_the_rows_held_whole() {
    let mut b = SpendBuilder::new(0);
    for (day, currency) in [
        ("2026-08-20", "EUR"),
        ("2026-10-21", "GBP"),
        ("2026-11-22", "JPY"),
    ] {
        for c in (0..30).rev() {
            for channel in [None, Some("display"), Some("paid_search")] {
                b.push(&SpendRow {
                    date: d(day),
                    platform: "meta_ads".into(),
                    account_id: "m".into(),
                    campaign_id: format!("M{c:02}").into(),
                    campaign_name: None,
                    channel: channel.filter(|_| c % 3 != 0).map(Into::into),
                    currency: if c % 5 == 0 { currency } else { "EUR" }.into(),
                    spend: money(&format!("{c}.25")),
                    impressions: 0,
                    clicks: 0,
                });
            }
        }
    }
    let more = b.finish(&stamp("r"));
    let fold = |mut acc: Cpsql| {
        let fx = fx();
        acc.add_spend(&spend(), &fx, &CpsqlConfig::default())
            .unwrap();
        acc.add_leads(&stages_of(leads())).unwrap();
        acc.add_spend(&more, &fx, &CpsqlConfig::default()).unwrap();
        acc.add_costs(&costs(), &fx).unwrap();
        let runs = acc.runs();
        (acc.finish("EUR", &stamp("r")).unwrap(), runs)
    };
    let (whole, runs) = fold(Cpsql::default());
    assert_eq!(runs, 0);
    // Four months (August to November), three of them with 30 M-campaigns each.
    assert!(whole.num_rows() > 3 * 30 + 4, "{}", whole.num_rows());
    let missing = whole
        .column_by_name("missing_currencies")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let missing: std::collections::BTreeSet<_> = missing.iter().flatten().collect();
    assert_eq!(missing, ["GBP", "JPY"].into());
    for budget in [1, 2, 7, 40] {
        let (set_aside, runs) = fold(Cpsql::with_budget(budget));
        assert!(runs > 0, "budget {budget} set nothing aside");
        assert_eq!(set_aside, whole, "budget {budget}");
    }
}
