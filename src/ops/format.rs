//! How operator output looks: tables drawn by comfy-table (columns sized to their widest
//! cell, so a long source kind or job name never shifts the columns after it), sizes in
//! binary units and durations a person reads at a glance.

use std::time::Duration;

use comfy_table::{CellAlignment, LineStyle, Table, TableStyle};

/// No vertical lines, a rule under the header: each row stays one whitespace-separated line
/// (easy to read, and to `grep`/`awk`).
const STYLE: TableStyle = TableStyle::new().header_separator(LineStyle::none().fill('─'));

/// A table with `header`; the columns named in `right` are right-aligned (numbers).
pub fn table(header: &[&str], right: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(STYLE).set_header(header.to_vec());
    for (i, name) in header.iter().enumerate() {
        if let Some(column) = table.column_mut(i) {
            // Flush left, two spaces between columns.
            column.set_padding((0, if i + 1 < header.len() { 2 } else { 0 }));
            if right.contains(name) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    table
}

/// A table as lines, without the padding comfy-table leaves at line ends, newline-ended.
pub fn render(table: &Table) -> String {
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `340 ms`, `2.5 s`, `12 s`, `4m 05s`, `1h 02m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        return format!("{secs:.1} s");
    }
    let whole = d.as_secs();
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024 + 300 * 1024), "12.3 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_millis(340)), "340 ms");
        assert_eq!(duration(Duration::from_millis(2_540)), "2.5 s");
        assert_eq!(duration(Duration::from_secs(42)), "42 s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(3_720)), "1h 02m");
    }

    /// The bug this pins: a 12-character kind (`linkedin_ads`) pushed every later column of
    /// the summary one place to the right, because widths were fixed format padding.
    #[test]
    fn columns_line_up_whatever_the_width_of_a_cell() {
        let mut t = table(&["source", "kind", "requests"], &["requests"]);
        t.add_row(vec!["ads", "linkedin_ads", "7"]);
        t.add_row(vec!["hubspot", "hubspot", "1200"]);
        let text = render(&t);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].chars().all(|c| c == '─'), "{text}");
        // The numbers end at one column, the header's with them; every kind starts at one.
        let width = |l: &str| l.chars().count();
        assert_eq!(width(lines[0]), width(lines[2]), "{text}");
        assert_eq!(width(lines[2]), width(lines[3]), "{text}");
        assert_eq!(width(lines[1]), width(lines[0]), "{text}");
        assert_eq!(
            lines[2].find("linkedin_ads"),
            lines[3].rfind("hubspot"),
            "{text}"
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["ads", "linkedin_ads", "7"]
        );
    }
}
