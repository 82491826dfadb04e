//! The tables printed at the end of every run: per dataset read, written, rejected and the
//! requests and retries of its sources; a total row with exactly the `_runs` row's numbers;
//! each source's outcome; what was published. Sizes and durations in human units.

use std::fmt::Write as _;

use super::format::{self, table};
use crate::pipeline::RunReport;

/// The summary of `report` as printed by `run`, `demo` and the daemon's runs.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} of job `{}`: {} in {}",
        report.run_id,
        report.job,
        report.status,
        format::duration(report.elapsed)
    );
    let numbers = [
        "read", "written", "rejected", "requests", "retries", "elapsed",
    ];
    let mut datasets = table(
        &[
            "dataset", "read", "written", "rejected", "requests", "retries", "elapsed",
        ],
        &numbers,
    );
    for (dataset, c) in &report.datasets {
        datasets.add_row(vec![
            dataset.table().to_string(),
            c.read.to_string(),
            c.written.to_string(),
            c.rejected.to_string(),
            c.requests.to_string(),
            c.retries.to_string(),
            format::duration(c.elapsed),
        ]);
    }
    let total = |f: fn(&crate::pipeline::DatasetCounts) -> u64| -> u64 {
        report.datasets.values().map(f).sum()
    };
    // Requests and retries of every source, failed ones included, as `_runs` counts them.
    let requests: u64 = report.sources.iter().map(|s| s.requests).sum();
    let retries: u64 = report.sources.iter().map(|s| s.retries).sum();
    datasets.add_row(vec![
        "total".to_string(),
        total(|c| c.read).to_string(),
        total(|c| c.written).to_string(),
        total(|c| c.rejected).to_string(),
        requests.to_string(),
        retries.to_string(),
        format::duration(report.elapsed),
    ]);
    out.push_str(&format::render(&datasets));
    out.push('\n');

    let mut sources = table(
        &[
            "source", "kind", "outcome", "requests", "retries", "received", "elapsed",
        ],
        &["requests", "retries", "received", "elapsed"],
    );
    for s in &report.sources {
        sources.add_row(vec![
            s.name.clone(),
            s.kind.to_string(),
            if s.error.is_some() { "failed" } else { "ok" }.to_string(),
            s.requests.to_string(),
            s.retries.to_string(),
            format::bytes(s.bytes),
            format::duration(s.elapsed),
        ]);
    }
    out.push_str(&format::render(&sources));
    // Errors below the table: one can be a paragraph, and would stretch every row.
    for s in &report.sources {
        if let Some(error) = &s.error {
            let _ = writeln!(out, "  {} failed: {error}", s.name);
        }
    }
    out.push('\n');

    // What each table received: the demo's tour of what was written.
    let mut tables: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for f in &report.files {
        let entry = tables.entry(f.table.as_str()).or_default();
        entry.0 += f.rows;
        entry.1 += 1;
        entry.2 += f.bytes;
    }
    let mut published = table(
        &["table", "rows", "files", "size"],
        &["rows", "files", "size"],
    );
    for (name, (rows, files, bytes)) in &tables {
        published.add_row(vec![
            name.to_string(),
            rows.to_string(),
            files.to_string(),
            format::bytes(*bytes),
        ]);
    }
    out.push_str(&format::render(&published));
    let bytes: u64 = report.files.iter().map(|f| f.bytes).sum();
    let peak = crate::pipeline::peak_rss_bytes()
        .map(|b| format!("; peak memory {}", format::bytes(b)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "published {} file(s), {}, into {}{peak}",
        report.files.len(),
        format::bytes(bytes),
        report.warehouse
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::normalize::Dataset;
    use crate::pipeline::{DatasetCounts, SourceReport};

    #[test]
    fn totals_match_the_runs_row_definition() {
        let mut datasets = BTreeMap::new();
        datasets.insert(
            Dataset::Leads,
            DatasetCounts {
                read: 10,
                written: 8,
                rejected: 2,
                requests: 3,
                retries: 1,
                elapsed: std::time::Duration::from_millis(1200),
            },
        );
        let report = RunReport {
            job: "j".into(),
            run_id: "r".into(),
            status: "partial",
            datasets,
            sources: vec![
                SourceReport {
                    name: "hs".into(),
                    kind: "hubspot",
                    error: None,
                    requests: 3,
                    retries: 1,
                    bytes: 100,
                    elapsed: std::time::Duration::from_millis(1200),
                },
                SourceReport {
                    name: "ads".into(),
                    kind: "google_ads",
                    error: Some("HTTP 401".into()),
                    requests: 1,
                    retries: 0,
                    bytes: 20,
                    elapsed: std::time::Duration::from_millis(300),
                },
            ],
            files: Vec::new(),
            elapsed: std::time::Duration::from_millis(1500),
            warehouse: "memory://".into(),
        };
        let text = render(&report);
        let total: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("total"))
            .expect("total row")
            .split_whitespace()
            .collect();
        assert_eq!(total, ["total", "10", "8", "2", "4", "1", "1.5", "s"]);
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["leads", "10", "8", "2", "3", "1", "1.2", "s"]),
            "{text}"
        );
        assert!(text.contains("partial in 1.5 s"), "{text}");
        assert!(text.contains("ads failed: HTTP 401"), "{text}");
        // Received bytes in human units, and a 10-character kind does not shift columns.
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [
                        "ads",
                        "google_ads",
                        "failed",
                        "1",
                        "0",
                        "20",
                        "B",
                        "300",
                        "ms"
                    ]),
            "{text}"
        );
    }
}
