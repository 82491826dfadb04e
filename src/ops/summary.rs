//! The table printed at the end of every run: per dataset read, written, rejected and the
//! requests and retries of its sources; a total row with exactly the `_runs` row's numbers;
//! each source's outcome; what was published.

use std::fmt::Write as _;

use crate::pipeline::RunReport;

/// The summary of `report` as printed by `run`, `demo` and the daemon's runs.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} of job `{}`: {} in {:.2} s",
        report.run_id,
        report.job,
        report.status,
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>9} {:>9} {:>8} {:>9}",
        "dataset", "read", "written", "rejected", "requests", "retries", "elapsed"
    );
    for (dataset, c) in &report.datasets {
        let _ = writeln!(
            out,
            "{:<18} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8.2}s",
            dataset.table(),
            c.read,
            c.written,
            c.rejected,
            c.requests,
            c.retries,
            c.elapsed.as_secs_f64()
        );
    }
    let total = |f: fn(&crate::pipeline::DatasetCounts) -> u64| -> u64 {
        report.datasets.values().map(f).sum()
    };
    // Requests and retries of every source, failed ones included, as `_runs` counts them.
    let requests: u64 = report.sources.iter().map(|s| s.requests).sum();
    let retries: u64 = report.sources.iter().map(|s| s.retries).sum();
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8.2}s",
        "total",
        total(|c| c.read),
        total(|c| c.written),
        total(|c| c.rejected),
        requests,
        retries,
        report.elapsed.as_secs_f64()
    );
    for s in &report.sources {
        let outcome = s.error.as_deref().unwrap_or("ok");
        let _ = writeln!(
            out,
            "source {:<16} {:<11} requests {:>5} retries {:>3} bytes {:>10} {:>7.2}s  {}",
            s.name,
            s.kind,
            s.requests,
            s.retries,
            s.bytes,
            s.elapsed.as_secs_f64(),
            outcome
        );
    }
    // What each table received: the demo's tour of what was written.
    let mut tables: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for f in &report.files {
        let entry = tables.entry(f.table.as_str()).or_default();
        entry.0 += f.rows;
        entry.1 += 1;
        entry.2 += f.bytes;
    }
    let _ = writeln!(
        out,
        "{:<26} {:>10} {:>6} {:>12}",
        "table", "rows", "files", "bytes"
    );
    for (table, (rows, files, bytes)) in &tables {
        let _ = writeln!(out, "{table:<26} {rows:>10} {files:>6} {bytes:>12}");
    }
    let bytes: u64 = report.files.iter().map(|f| f.bytes).sum();
    let peak = crate::pipeline::peak_rss_bytes()
        .map(|b| format!("; peak memory {:.0} MiB", b as f64 / 1_048_576.0))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "published {} file(s), {} bytes, into {}{peak}",
        report.files.len(),
        bytes,
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
        assert_eq!(total, ["total", "10", "8", "2", "4", "1", "1.50s"]);
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["leads", "10", "8", "2", "3", "1", "1.20s"])
        );
        assert!(text.contains("partial in 1.50 s"));
        assert!(text.contains("HTTP 401"));
    }
}
