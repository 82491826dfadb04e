//! The metric sections of a job file: defaults, and every mistake reported with its line and
//! key path (also inside `[[stages.rules]]` arrays).

use std::path::Path;

use crate::config::parse_job;
use crate::metrics::config::{EnpsPeriod, EnpsScale, Stage, default_stage_rules};

const HEAD: &str = r#"name = "j"
warehouse = "./w"
hash_key = "k"
[[sources]]
name = "hubspot"
kind = "hubspot"
token = "t"
"#;

fn diagnostics(text: &str) -> Vec<(usize, String, String)> {
    let env = |_: &str| None;
    match parse_job(Path::new("j.toml"), text, &env) {
        Ok(_) => vec![],
        Err(list) => list
            .into_iter()
            .map(|d| (d.line, d.key_path, d.message))
            .collect(),
    }
}

#[test]
fn sections_default_when_absent() {
    let env = |_: &str| None;
    let job = parse_job(Path::new("j.toml"), HEAD, &env).unwrap();
    assert_eq!(job.stages.rules, default_stage_rules());
    assert_eq!(job.metrics.sal.target, 0.90);
    assert_eq!(job.metrics.sal.sla_hours, [24, 48]);
    assert_eq!(job.metrics.enps.anonymity_threshold, 5);
    assert_eq!(job.metrics.enps.scale, EnpsScale::ZeroToTen);
    assert_eq!(job.metrics.enps.period, EnpsPeriod::Month);
    assert!(job.fx.rates.is_empty() && job.fx.rates_file.is_none());
    assert_eq!(job.stages.rules.last().map(|r| r.stage), Some(Stage::Lead));
}

#[test]
fn every_mistake_with_line_and_key_path() {
    let text = format!(
        "{HEAD}{}",
        r#"
[[stages.rules]]
stage = "sql"
when = { sett = ["sql_at"] }

[[stages.rules]]
stage = "qualified"

[metrics.enps]
scale = "0-5"
"#
    );
    let got = diagnostics(&text);
    let keys: Vec<_> = got.iter().map(|d| (d.0, d.1.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (17, "metrics.enps.scale"),
            (11, "stages.rules[0].when.sett"),
            (14, "stages.rules[1].stage"),
        ],
        "{got:#?}"
    );
    assert!(got[1].2.contains("unknown key `sett`"), "{got:#?}");

    // Semantic checks, once the shapes are right.
    let text = format!(
        "{HEAD}{}",
        r#"
[metrics.sal]
target = 1.5
sla_hours = [48, 24]
[metrics.enps]
anonymity_threshold = 0
[fx]
rates = [{ date = "2026-11-01", currency = "USD", rate = "0.9" }, { date = "2026-13-01", currency = "usd", rate = "-1" }]
"#
    );
    let got = diagnostics(&text);
    let keys: Vec<_> = got.iter().map(|d| (d.0, d.1.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (10, "metrics.sal.target"),
            (11, "metrics.sal.sla_hours"),
            (13, "metrics.enps.anonymity_threshold"),
            (15, "fx.rates[1]"),
        ],
        "{got:#?}"
    );
}

#[test]
fn a_local_rates_file_is_checked_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rates.csv"),
        "date,currency,rate\n2026-01-01,USD,0.9\n2026-02-01,USD,abc\n",
    )
    .unwrap();
    let text = format!("{HEAD}\n[fx]\nrates_file = \"rates.csv\"\n");
    let env = |_: &str| None;
    let err = parse_job(&dir.path().join("j.toml"), &text, &env).unwrap_err();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert_eq!(err[0].key_path, "fx.rates_file");
    assert!(err[0].message.contains("rates.csv: line 3"), "{err:#?}");

    let text = format!("{HEAD}\n[fx]\nrates_file = \"missing.csv\"\n");
    let err = parse_job(&dir.path().join("j.toml"), &text, &env).unwrap_err();
    assert!(
        err[0].message.ends_with("missing.csv does not exist"),
        "{err:#?}"
    );
}
