//! The report page: one self-contained HTML document (inline CSS and SVG, no script, no web
//! font, no link to fetch), built with maud so every value is escaped. Light and dark follow
//! the reader's system setting; print drops the backgrounds and keeps sections whole.
//!
//! The headline figures carry `data-metric` / `data-value` attributes (exact values, as in
//! the tables) so a test or a script can find them.

use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::charts::{self, Bars, Caption, Lines};
use super::data::{CpsqlRow, EnpsRow, FunnelMonth, Micros, ReportData, SalMonth};
use crate::error::Result;

const CSS: &str = include_str!("report.css");

const STAGES: [&str; 6] = ["Leads", "Warm", "MQL", "SAL", "SQL", "Customer"];

/// The whole page. `generated_at` is when it was built.
pub fn render(data: &ReportData, generated_at: DateTime<Utc>) -> Result<String> {
    let title = format!("funnelhouse report — {}", data.job);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="generator" content="funnelhouse";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "Run report: " code { (data.job) } }
                    p.meta {
                        @if let Some(run) = &data.run {
                            "Run " code { (run.run_id) } " "
                            span class={ "status status-" (run.status) } { (run.status) }
                            @if let Some(t) = run.started_at { " · started " (local_time(data, t)) }
                        } @else {
                            "No run recorded."
                        }
                        " · amounts in " (data.currency) " · times in " (data.timezone.name())
                        " · built " (local_time(data, generated_at))
                    }
                    @if let Some(id) = &data.metrics_run_id {
                        p.meta { "Metric tables as committed by run " code { (id) } "; months are calendar months (UTC), as in the tables." }
                    }
                }
                main {
                    (health(data))
                    (funnel(data)?)
                    (cpsql(data)?)
                    (sal(data)?)
                    (enps(data)?)
                }
                footer { p.meta { "Written by funnelhouse from the tables in the warehouse; every number here is in them." } }
            }
        }
    };
    Ok(page.into_string())
}

fn local_time(data: &ReportData, t: DateTime<Utc>) -> String {
    t.with_timezone(&data.timezone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn month_label(m: NaiveDate) -> String {
    m.format("%b %Y").to_string()
}

/// `1234567` → `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Money rounded to cents with the currency: `1,234.56 EUR`.
fn money(micros: Micros, currency: &str) -> String {
    let cents = (micros + micros.signum() * 5_000) / 10_000;
    let whole = i64::try_from(cents / 100).unwrap_or(i64::MAX);
    format!("{}.{:02} {currency}", thousands(whole), (cents % 100).abs())
}

/// Exact decimal text of micros, as DuckDB prints a `DECIMAL(18, 6)`: `123.456789`.
pub fn exact(micros: Micros) -> String {
    crate::normalize::bounds::money_text(micros)
}

fn pct(rate: Option<f64>) -> String {
    rate.map_or("—".into(), |r| format!("{:.1} %", r * 100.0))
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn empty(what: &str) -> Markup {
    html! { p.empty { (what) } }
}

fn chart(svg: String) -> Markup {
    html! { figure.chart { (PreEscaped(svg)) } }
}

fn health(data: &ReportData) -> Markup {
    html! {
        section #health aria-labelledby="health-h" {
            h2 #health-h { "Run health" }
            @if let Some(run) = &data.run {
                @let duration = run.started_at.zip(run.finished_at)
                    .map(|(s, f)| format!("{:.1} s", (f - s).num_milliseconds() as f64 / 1000.0));
                dl.facts {
                    div { dt { "Status" } dd { span class={ "status status-" (run.status) } { (run.status) } } }
                    div { dt { "Duration" } dd { (duration.unwrap_or_else(|| "—".into())) } }
                    div { dt { "Requests" } dd { (thousands(run.requests)) } }
                    div { dt { "Retries" } dd { (thousands(run.retries)) } }
                    div { dt { "Rejected" } dd { (thousands(data.rejects.total as i64)) } }
                }
                h3 { "Sources" }
                @if data.sources.is_empty() {
                    (empty("The job file lists no sources."))
                } @else {
                    ul.sources {
                        @for s in &data.sources {
                            @match &s.error {
                                None => li { span.ok { "✓ committed" } " " code { (s.name) } },
                                Some(e) => li { span.bad { "✗ failed" } " " code { (s.name) } ": " (e) },
                            }
                        }
                    }
                }
                h3 { "Rows" }
                table {
                    caption.visually-hidden { "Rows read, written and rejected per dataset in this run" }
                    thead { tr { th scope="col" { "Dataset" } th.num scope="col" { "Read" } th.num scope="col" { "Written" } th.num scope="col" { "Rejected" } } }
                    tbody {
                        @for (dataset, (read, written, rejected)) in &run.datasets {
                            tr { th scope="row" { (dataset) } td.num { (thousands(*read)) } td.num { (thousands(*written)) } td.num { (thousands(*rejected)) } }
                        }
                    }
                }
                @if !run.warnings.is_empty() {
                    h3 { "Warnings" }
                    ul.warnings { @for w in &run.warnings { li { (w) } } }
                }
                h3 { "Top reject reasons" }
                @if data.rejects.top.is_empty() {
                    (empty("No record was rejected in this run."))
                } @else {
                    table {
                        caption.visually-hidden { "The most frequent reasons records were rejected" }
                        thead { tr { th scope="col" { "Dataset" } th scope="col" { "Reason" } th.num scope="col" { "Records" } } }
                        tbody {
                            @for (dataset, reason, n) in &data.rejects.top {
                                tr { td { (dataset) } td { (reason) } td.num { (thousands(*n as i64)) } }
                            }
                        }
                    }
                }
            } @else {
                (empty("No `_runs` row for this run: it did not commit, or its row was removed."))
            }
        }
    }
}

fn funnel(data: &ReportData) -> Result<Markup> {
    let months = &data.funnel;
    let mut totals = [0_i64; 6];
    for m in months {
        for (t, n) in totals.iter_mut().zip(m.reached) {
            *t += n;
        }
    }
    let figure = if months.is_empty() || totals[0] == 0 {
        None
    } else {
        let range = format!(
            "{} to {}",
            month_label(months[0].month),
            month_label(months[months.len() - 1].month)
        );
        Some(charts::bar_chart(&Bars {
            caption: Caption {
                id: "funnel-chart".into(),
                title: format!("Funnel of the leads created {range}"),
                desc: format!(
                    "Of {} leads created {range}: {}.",
                    thousands(totals[0]),
                    STAGES
                        .iter()
                        .zip(totals)
                        .skip(1)
                        .map(|(s, n)| format!("{} reached {s}", thousands(n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: STAGES.iter().map(|s| s.to_string()).collect(),
            values: totals.iter().map(|n| Some(*n as f64)).collect(),
            muted: vec![false; 6],
            value_labels: totals
                .iter()
                .enumerate()
                .map(|(i, n)| match i {
                    0 => thousands(*n),
                    _ => format!("{} ({})", thousands(*n), pct(share(*n, totals[i - 1]))),
                })
                .collect(),
            target: None,
            y_range: None,
            y_format: |v| thousands(v.round() as i64),
        })?)
    };
    Ok(html! {
        section #funnel aria-labelledby="funnel-h" {
            h2 #funnel-h { "Funnel" }
            @if let Some(svg) = figure {
                p { "Leads created in each month and how many have reached each stage so far; in brackets the share of the previous stage that reached it." }
                (chart(svg))
                (funnel_table(months))
            } @else {
                (empty("No leads with a creation date yet: the funnel appears once a CRM source has committed leads."))
            }
        }
    })
}

fn funnel_table(months: &[FunnelMonth]) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Funnel by creation month with stage-to-stage conversion" }
            thead { tr {
                th scope="col" { "Created" }
                @for s in STAGES { th.num scope="col" { (s) } }
            } }
            tbody {
                @for m in months.iter().rev() {
                    tr {
                        th scope="row" { (month_label(m.month)) }
                        @for (i, n) in m.reached.iter().enumerate() {
                            td.num {
                                (thousands(*n))
                                @if i > 0 { br; small { (pct(share(*n, m.reached[i - 1]))) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Why a CPSQL row's figure is missing or not final, if it is.
fn cpsql_note(row: &CpsqlRow, current: Option<NaiveDate>) -> Option<String> {
    let mut notes = Vec::new();
    if current.is_some_and(|c| row.month >= c) {
        notes.push("month in progress".to_string());
    }
    if !row.complete {
        notes.push(format!(
            "incomplete: no FX rate for {}",
            row.missing_currencies.as_deref().unwrap_or("some amounts")
        ));
    }
    if row.cpsql.is_none() && row.complete {
        notes.push(if row.sqls == 0 && row.spend > 0 {
            "no SQLs".to_string()
        } else {
            "no spend data".to_string()
        });
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn is_final(row: &CpsqlRow, current: Option<NaiveDate>) -> bool {
    row.complete && current.is_none_or(|c| row.month < c)
}

fn cpsql(data: &ReportData) -> Result<Markup> {
    let cur = &data.currency;
    let rows = &data.cpsql;
    let headline = rows.iter().rev().find(|r| is_final(r, data.current_month));
    let money_axis: fn(f64) -> String = |v| thousands(v.round() as i64);
    let figure = if rows.iter().any(|r| r.cpsql.is_some()) {
        Some(charts::bar_chart(&Bars {
            caption: Caption {
                id: "cpsql-chart".into(),
                title: format!("Cost per SQL by month ({cur})"),
                desc: format!(
                    "Total spend divided by SQLs, {}; faded bars are months in progress or with amounts that could not be converted.",
                    rows.iter()
                        .map(|r| format!(
                            "{}: {}",
                            month_label(r.month),
                            r.cpsql.map_or("none".into(), |c| money(c, cur))
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: rows.iter().map(|r| month_label(r.month)).collect(),
            values: rows
                .iter()
                .map(|r| r.cpsql.map(|c| c as f64 / 1e6))
                .collect(),
            muted: rows
                .iter()
                .map(|r| !is_final(r, data.current_month))
                .collect(),
            value_labels: rows
                .iter()
                .map(|r| match (r.cpsql, cpsql_note(r, data.current_month)) {
                    (Some(c), None) => thousands((c / 1_000_000) as i64),
                    (Some(c), Some(_)) => format!("{}*", thousands((c / 1_000_000) as i64)),
                    // The reason is in the table; a long note would not fit under a bar.
                    (None, _) => "—".into(),
                })
                .collect(),
            target: None,
            y_range: None,
            y_format: money_axis,
        })?)
    } else {
        None
    };
    // The chart shows the channels with a cost per SQL; the table lists every channel.
    let charted: Vec<&CpsqlRow> = data
        .cpsql_channels
        .iter()
        .filter(|r| r.cpsql.is_some_and(|c| c > 0))
        .collect();
    let channel_figure = if !charted.is_empty() {
        let month = data
            .cpsql_channel_month
            .map(month_label)
            .unwrap_or_default();
        Some(charts::bar_chart(&Bars {
            caption: Caption {
                id: "cpsql-channel-chart".into(),
                title: format!("Cost per SQL by channel, {month} ({cur})"),
                desc: format!(
                    "{month}: {}.",
                    charted
                        .iter()
                        .map(|r| format!(
                            "{} {}",
                            r.channel.as_deref().unwrap_or("unknown"),
                            r.cpsql.map_or("none".into(), |c| money(c, cur))
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: charted
                .iter()
                .map(|r| r.channel.clone().unwrap_or_else(|| "unknown".into()))
                .collect(),
            values: charted
                .iter()
                .map(|r| r.cpsql.map(|c| c as f64 / 1e6))
                .collect(),
            muted: charted.iter().map(|r| !r.complete).collect(),
            value_labels: charted
                .iter()
                .map(|r| {
                    r.cpsql
                        .map_or("—".into(), |c| thousands((c / 1_000_000) as i64))
                })
                .collect(),
            target: None,
            y_range: None,
            y_format: money_axis,
        })?)
    } else {
        None
    };
    Ok(html! {
        section #cpsql aria-labelledby="cpsql-h" {
            h2 #cpsql-h { "Cost per SQL" }
            @if rows.is_empty() {
                (empty("No spend, costs or SQLs yet: CPSQL appears once spend sources and a CRM have committed."))
            } @else {
                @if let Some(h) = headline {
                    p.headline {
                        "Latest complete month, " (month_label(h.month)) ": "
                        strong data-metric="cpsql" data-month=(h.month.format("%Y-%m")) data-value=(h.cpsql.map(exact).unwrap_or_default()) {
                            (h.cpsql.map_or("—".into(), |c| money(c, cur)))
                        }
                        " per SQL (" (money(h.spend, cur)) " over " (thousands(h.sqls)) " SQLs)"
                    }
                }
                @if let Some(svg) = figure { (chart(svg)) }
                table {
                    caption.visually-hidden { "Spend, SQLs and cost per SQL by month" }
                    thead { tr { th scope="col" { "Month" } th.num scope="col" { "Spend" } th.num scope="col" { "SQLs" } th.num scope="col" { "CPSQL" } th scope="col" { "Note" } } }
                    tbody {
                        @for r in rows.iter().rev() {
                            tr {
                                th scope="row" { (month_label(r.month)) }
                                td.num { (money(r.spend, cur)) }
                                td.num { (thousands(r.sqls)) }
                                td.num { (r.cpsql.map_or("—".into(), |c| money(c, cur))) }
                                td { (cpsql_note(r, data.current_month).unwrap_or_default()) }
                            }
                        }
                    }
                }
                h3 { "By channel"
                    @if let Some(m) = data.cpsql_channel_month { ", " (month_label(m)) } }
                @if data.cpsql_channels.is_empty() {
                    (empty("No complete month with channel figures yet."))
                } @else {
                    @if let Some(svg) = channel_figure { (chart(svg)) }
                    table {
                        caption.visually-hidden { "Spend, SQLs and cost per SQL by channel" }
                        thead { tr { th scope="col" { "Channel" } th.num scope="col" { "Spend" } th.num scope="col" { "SQLs" } th.num scope="col" { "CPSQL" } } }
                        tbody {
                            @for r in &data.cpsql_channels {
                                tr {
                                    th scope="row" { (r.channel.as_deref().unwrap_or("unknown")) }
                                    td.num { (money(r.spend, cur)) }
                                    td.num { (thousands(r.sqls)) }
                                    td.num { (r.cpsql.map_or("—".into(), |c| money(c, cur))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn sal(data: &ReportData) -> Result<Markup> {
    let months: &[SalMonth] = &data.sal;
    let target = months.last().map_or(0.9, |m| m.target);
    let figure = if months.iter().any(|m| m.acceptance_rate.is_some()) {
        Some(charts::bar_chart(&Bars {
            caption: Caption {
                id: "sal-chart".into(),
                title: format!("SAL acceptance rate by month, target {}", pct(Some(target))),
                desc: format!(
                    "Share of leads handed to sales that sales accepted: {}.",
                    months
                        .iter()
                        .map(|m| format!("{} {}", month_label(m.month), pct(m.acceptance_rate)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: months.iter().map(|m| month_label(m.month)).collect(),
            values: months
                .iter()
                .map(|m| m.acceptance_rate.map(|r| r * 100.0))
                .collect(),
            muted: months
                .iter()
                .map(|m| data.current_month.is_some_and(|c| m.month >= c))
                .collect(),
            value_labels: months.iter().map(|m| pct(m.acceptance_rate)).collect(),
            target: Some((target * 100.0, format!("target {}", pct(Some(target))))),
            y_range: Some((0.0, 110.0)),
            y_format: |v| format!("{v:.0} %"),
        })?)
    } else {
        None
    };
    Ok(html! {
        section #sal aria-labelledby="sal-h" {
            h2 #sal-h { "SAL acceptance and contact SLA" }
            @if months.is_empty() {
                (empty("No lead has been handed to sales yet (no MQL dates)."))
            } @else {
                p { "Leads handed to sales (their MQL month) and how sales answered; the rate is accepted ÷ (accepted + rejected). The SLA counts accepted leads by how soon they were first contacted." }
                @if let Some(svg) = figure { (chart(svg)) }
                table {
                    caption.visually-hidden { "SAL acceptance and contact SLA by month" }
                    thead { tr {
                        th scope="col" { "Month" } th.num scope="col" { "Handed off" } th.num scope="col" { "Accepted" }
                        th.num scope="col" { "Rejected" } th.num scope="col" { "Pending" } th.num scope="col" { "Rate" }
                        th.num scope="col" { "Median h to accept" }
                        th.num scope="col" { "≤ " (months[0].sla_hours.0) " h" } th.num scope="col" { "≤ " (months[0].sla_hours.1) " h" }
                        th.num scope="col" { "Breached" } th.num scope="col" { "Open" }
                    } }
                    tbody {
                        @for m in months.iter().rev() {
                            tr {
                                th scope="row" { (month_label(m.month)) }
                                td.num { (thousands(m.handed_off)) }
                                td.num { (thousands(m.accepted)) }
                                td.num { (thousands(m.rejected)) }
                                td.num { (thousands(m.pending)) }
                                td.num class=(match m.acceptance_rate { Some(r) if r >= m.target => "ok", Some(_) => "bad", None => "" }) {
                                    (pct(m.acceptance_rate))
                                }
                                td.num { (m.median_hours.map_or("—".into(), |h| format!("{h:.1}"))) }
                                td.num { (thousands(m.within_first)) br; small { (pct(share(m.within_first, m.accepted))) } }
                                td.num { (thousands(m.within_second)) br; small { (pct(share(m.within_second, m.accepted))) } }
                                td.num { (thousands(m.breached)) }
                                td.num { (thousands(m.open)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn enps_value(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:+.1}"))
}

fn enps(data: &ReportData) -> Result<Markup> {
    let mut surveys: Vec<&str> = data.enps.iter().map(|r| r.survey_id.as_str()).collect();
    surveys.dedup();
    let mut blocks = Vec::new();
    for survey in surveys {
        blocks.push(enps_survey(data, survey)?);
    }
    Ok(html! {
        section #enps aria-labelledby="enps-h" {
            h2 #enps-h { "eNPS" }
            @if blocks.is_empty() {
                (empty("No survey responses yet: eNPS appears once a survey source has committed responses."))
            } @else {
                p { "% promoters (9–10) − % detractors, from −100 to +100. Groups with too few respondents are suppressed to keep answers anonymous: their numbers are never shown." }
                @for b in blocks { (b) }
            }
        }
    })
}

fn enps_survey(data: &ReportData, survey: &str) -> Result<Markup> {
    let rows: Vec<&EnpsRow> = data.enps.iter().filter(|r| r.survey_id == survey).collect();
    let overall: Vec<&EnpsRow> = rows
        .iter()
        .copied()
        .filter(|r| r.dimension == "overall")
        .collect();
    let headline = overall
        .iter()
        .rev()
        .find(|r| !r.suppressed && r.enps.is_some());
    let id = |what: &str| format!("enps-{what}-{}", slug(survey));
    let trend = if overall.iter().any(|r| r.enps.is_some()) {
        Some(charts::line_chart(&Lines {
            caption: Caption {
                id: id("trend"),
                title: format!("eNPS by period, survey {survey}"),
                desc: format!(
                    "Overall eNPS per period: {}.",
                    overall
                        .iter()
                        .map(|r| format!(
                            "{} {}",
                            r.period,
                            if r.suppressed {
                                "suppressed".into()
                            } else {
                                enps_value(r.enps)
                            }
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: overall.iter().map(|r| r.period.clone()).collect(),
            series: vec![("overall".into(), overall.iter().map(|r| r.enps).collect())],
            y_range: (-100.0, 100.0),
            y_format: |v| format!("{v:+.0}"),
        })?)
    } else {
        None
    };
    // Groups of the latest period that has any.
    let latest = rows
        .iter()
        .filter(|r| r.dimension != "overall")
        .map(|r| r.period_start)
        .max();
    let groups: Vec<&EnpsRow> = rows
        .iter()
        .copied()
        .filter(|r| r.dimension != "overall" && Some(r.period_start) == latest)
        .collect();
    let mut dimensions: Vec<&str> = groups.iter().map(|r| r.dimension.as_str()).collect();
    dimensions.dedup();
    let mut group_charts = Vec::new();
    for dim in &dimensions {
        let of_dim: Vec<&&EnpsRow> = groups.iter().filter(|r| r.dimension == *dim).collect();
        if !of_dim.iter().any(|r| r.enps.is_some()) {
            continue;
        }
        let period = of_dim.first().map(|r| r.period.clone()).unwrap_or_default();
        let name = |r: &EnpsRow| r.group.clone().unwrap_or_else(|| "(none)".into());
        group_charts.push(charts::bar_chart(&Bars {
            caption: Caption {
                id: id(&format!("by-{dim}")),
                title: format!("eNPS by {dim}, {period}, survey {survey}"),
                desc: format!(
                    "eNPS per {dim} in {period}: {}.",
                    of_dim
                        .iter()
                        .map(|r| format!(
                            "{} {}",
                            name(r),
                            if r.suppressed {
                                "suppressed".into()
                            } else {
                                enps_value(r.enps)
                            }
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            labels: of_dim.iter().map(|r| name(r)).collect(),
            values: of_dim.iter().map(|r| r.enps).collect(),
            muted: vec![false; of_dim.len()],
            value_labels: of_dim
                .iter()
                .map(|r| {
                    if r.suppressed {
                        "suppressed".into()
                    } else {
                        enps_value(r.enps)
                    }
                })
                .collect(),
            target: None,
            y_range: Some((-100.0, 110.0)),
            y_format: |v| format!("{v:+.0}"),
        })?);
    }
    Ok(html! {
        h3 { "Survey " code { (survey) } }
        @if let Some(h) = headline {
            p.headline {
                "Latest period, " (h.period) ": eNPS "
                strong data-metric="enps" data-survey=(survey) data-period=(h.period) data-value=(h.enps.map(|v| v.to_string()).unwrap_or_default()) {
                    (enps_value(h.enps))
                }
                " from " (h.respondents.map(thousands).unwrap_or_default()) " respondents"
            }
        }
        @if let Some(svg) = trend { (chart(svg)) }
        table {
            caption.visually-hidden { "eNPS by period for survey " (survey) }
            thead { tr { th scope="col" { "Period" } th.num scope="col" { "Respondents" } th.num scope="col" { "Promoters" } th.num scope="col" { "Passives" } th.num scope="col" { "Detractors" } th.num scope="col" { "eNPS" } } }
            tbody { @for r in overall.iter().rev() { (enps_row(&r.period, r)) } }
        }
        @if !groups.is_empty() {
            h4 { "By group, " (groups[0].period) }
            @for svg in group_charts { (chart(svg)) }
            table {
                caption.visually-hidden { "eNPS by group for survey " (survey) }
                thead { tr { th scope="col" { "Group" } th.num scope="col" { "Respondents" } th.num scope="col" { "Promoters" } th.num scope="col" { "Passives" } th.num scope="col" { "Detractors" } th.num scope="col" { "eNPS" } } }
                tbody {
                    @for r in &groups {
                        (enps_row(&format!("{}: {}", r.dimension, r.group.as_deref().unwrap_or("(none)")), r))
                    }
                }
            }
        }
    })
}

/// A table row of an eNPS group or period; a suppressed one says so and shows no number.
fn enps_row(label: &str, r: &EnpsRow) -> Markup {
    html! {
        tr {
            th scope="row" { (label) }
            @if r.suppressed {
                td.suppressed colspan="5" data-suppressed="true" { "suppressed — too few respondents to report" }
            } @else {
                td.num { (r.respondents.map(thousands).unwrap_or_default()) }
                @for p in r.pct { td.num { (p.map_or("—".into(), |p| format!("{p:.1} %"))) } }
                td.num { strong { (enps_value(r.enps)) } }
            }
        }
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::data::{Rejects, RunHealth};
    use super::*;

    fn day(y: i32, m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, 1).expect("date")
    }

    #[test]
    fn money_and_counts_read_as_people_write_them() {
        assert_eq!(money(1_234_567_890_000, "EUR"), "1,234,567.89 EUR");
        assert_eq!(money(5_000, "EUR"), "0.01 EUR");
        assert_eq!(exact(123_456_789), "123.456789");
        assert_eq!(exact(-1_500_000), "-1.500000");
        assert_eq!(thousands(-1234), "-1,234");
    }

    #[test]
    fn every_section_has_an_empty_state_and_no_chart_without_data() {
        let data = ReportData {
            job: "j".into(),
            currency: "EUR".into(),
            ..ReportData::default()
        };
        let page = render(&data, Utc::now()).expect("rendered");
        assert!(!page.contains("<svg"), "no chart without data");
        assert_eq!(page.matches("class=\"empty\"").count(), 5, "{page}");
        assert!(page.starts_with("<!DOCTYPE html>"));
        for banned in ["<script", "<link", "@import", "url(", "src="] {
            assert!(!page.contains(banned), "{banned} in a self-contained page");
        }
    }

    #[test]
    fn suppressed_groups_show_as_suppressed_and_values_are_escaped() {
        let row = |group: &str, suppressed: bool, enps: Option<f64>| EnpsRow {
            survey_id: "s<1>".into(),
            period: "2026-10".into(),
            period_start: day(2026, 10),
            dimension: if group.is_empty() { "overall" } else { "team" }.into(),
            group: (!group.is_empty()).then(|| group.to_string()),
            respondents: enps.map(|_| 12),
            pct: [enps.map(|_| 50.0), enps.map(|_| 25.0), enps.map(|_| 25.0)],
            enps,
            suppressed,
        };
        let data = ReportData {
            job: "j".into(),
            currency: "EUR".into(),
            run: Some(RunHealth {
                run_id: "r".into(),
                status: "succeeded".into(),
                ..RunHealth::default()
            }),
            rejects: Rejects {
                total: 1,
                top: vec![("leads".into(), "bad <email>".into(), 1)],
            },
            enps: vec![
                row("", false, Some(25.0)),
                row("alpha", false, Some(25.0)),
                row("tiny", true, None),
            ],
            ..ReportData::default()
        };
        let page = render(&data, Utc::now()).expect("rendered");
        assert!(page.contains("data-metric=\"enps\""));
        assert!(page.contains("data-value=\"25\""));
        assert!(page.contains("team: tiny"));
        assert!(page.contains("data-suppressed=\"true\""));
        assert!(page.contains("s&lt;1&gt;") && !page.contains("s<1>"));
        assert!(page.contains("bad &lt;email&gt;"));
    }

    #[test]
    fn the_cpsql_headline_is_the_latest_finished_complete_month() {
        let row = |m: u32, cpsql: Option<Micros>, complete: bool| CpsqlRow {
            month: day(2026, m),
            channel: None,
            spend: 1_000_000_000,
            sqls: 10,
            cpsql,
            complete,
            missing_currencies: (!complete).then(|| "JPY".to_string()),
        };
        let data = ReportData {
            job: "j".into(),
            currency: "EUR".into(),
            current_month: Some(day(2026, 11)),
            cpsql: vec![
                row(8, Some(100_000_000), true),
                row(9, Some(90_000_000), true),
                row(10, None, false),
                row(11, Some(50_000_000), true),
            ],
            ..ReportData::default()
        };
        let page = render(&data, Utc::now()).expect("rendered");
        assert!(
            page.contains("data-month=\"2026-09\" data-value=\"90.000000\""),
            "{page}"
        );
        assert!(page.contains("month in progress"));
        assert!(page.contains("incomplete: no FX rate for JPY"));
    }
}
