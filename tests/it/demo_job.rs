//! The demo job against the sandbox, read back with DuckDB: counts equal the sandbox's
//! totals, no duplicates, canonical column types, personal data only as hashes. And
//! `funnelhouse demo` as a new user meets it: the binary alone, started in an empty folder,
//! showing deletions and where rejected records went; job files whose relative paths all
//! resolve against their own folder; file errors that say which file and what is wrong.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_job_writes_tables_duckdb_reads() {
    let sandbox = sandbox(1500, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("ware house ü");
    let env = env_for(&sandbox);
    let job = demo_job_into(&warehouse, &env);
    let lookup = |name: &str| env.get(name).cloned();

    let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("run completes");
    assert!(report.succeeded(), "{report:#?}");

    let leads = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(leads as usize, totals.contacts + totals.salesforce_leads);
    let distinct = duckdb_count(&format!(
        "SELECT count(DISTINCT (source_system, lead_id)) FROM {}",
        table(&warehouse, "leads")
    ));
    assert_eq!(distinct, leads, "one row per lead");

    let spend = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(spend as usize, totals.spend_rows);
    let spend_keys = duckdb_count(&format!(
        "SELECT count(DISTINCT (date, platform, account_id, campaign_id)) FROM {}",
        table(&warehouse, "spend")
    ));
    assert_eq!(spend_keys, spend, "one row per day and campaign");
    let currencies = duckdb(&format!(
        "SELECT DISTINCT currency FROM {} ORDER BY 1",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        currencies,
        vec![
            vec![serde_json::json!("EUR")],
            vec![serde_json::json!("GBP")],
            vec![serde_json::json!("USD")]
        ]
    );
    let platforms = duckdb(&format!(
        "SELECT DISTINCT platform FROM {} ORDER BY 1",
        table(&warehouse, "spend")
    ));
    assert_eq!(
        platforms,
        vec![
            vec![serde_json::json!("google_ads")],
            vec![serde_json::json!("linkedin_ads")],
            vec![serde_json::json!("meta_ads")]
        ]
    );
    assert!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "costs")
        )) > 0,
        "the demo's costs file is loaded"
    );

    // Typeform here; SurveyMonkey has its own test (tests/it/surveys.rs).
    let responses = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source_system = 'typeform'",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(responses as usize, totals.survey_responses);
    let scored = duckdb_count(&format!(
        "SELECT count(score) FROM {} WHERE source_system = 'typeform'",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(scored as usize, totals.survey_scored);
    let distribution = duckdb(&format!(
        "SELECT score, count(*) FROM {} WHERE score IS NOT NULL AND source_system = 'typeform' GROUP BY 1 ORDER BY 1",
        table(&warehouse, "survey_responses")
    ));
    for row in distribution {
        let score = row[0].as_i64().unwrap() as usize;
        assert_eq!(
            row[1].as_i64().unwrap() as usize,
            totals.enps_distribution[score],
            "score {score}"
        );
    }

    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "_rejects")
        )),
        0
    );
    let runs = duckdb(&format!(
        "SELECT status, leads_read, leads_written, leads_rejected, spend_written, survey_responses_written FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0][0], "succeeded");
    assert_eq!(runs[0][1].as_i64(), Some(leads));
    assert_eq!(runs[0][2].as_i64(), Some(leads));

    let lead_types = column_types(&warehouse, "leads");
    assert_eq!(lead_types["created_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(lead_types["_ingested_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(lead_types["vendor_score"], "BIGINT");
    assert_eq!(lead_types["is_deleted"], "BOOLEAN");
    let spend_types = column_types(&warehouse, "spend");
    assert_eq!(spend_types["spend"], "DECIMAL(18,6)");
    assert_eq!(spend_types["date"], "DATE");
    assert_eq!(
        column_types(&warehouse, "survey_responses")["submitted_at"],
        "TIMESTAMP WITH TIME ZONE"
    );

    // Spend is exact: the micros the sandbox served sum to the same decimal.
    let stages = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE mql_at IS NOT NULL), count(*) FILTER (WHERE email_hash IS NOT NULL) FROM {}",
        table(&warehouse, "leads")
    ));
    assert!(stages[0][0].as_i64().unwrap() > 0, "some leads reached MQL");
    assert!(
        stages[0][1].as_i64().unwrap() > 0,
        "e-mails are kept as hashes"
    );

    // Personal data never reaches the warehouse in the clear.
    let mut haystack = Vec::new();
    for entry in walk(&warehouse) {
        haystack.extend(std::fs::read(&entry).unwrap());
    }
    let text = String::from_utf8_lossy(&haystack);
    for email in totals.contact_emails.iter().take(200) {
        assert!(!text.contains(email.as_str()), "raw e-mail {email} written");
    }
    for id in &totals.survey_raw_identifiers {
        assert!(
            !text.contains(id.as_str()),
            "raw respondent id {id} written"
        );
    }

    // A rerun replaces files: still one row per lead.
    let again = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("second run");
    assert!(again.succeeded());
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "leads")
        )),
        leads
    );
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "spend")
        )),
        spend
    );
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "_runs")
        )),
        2
    );
    assert!(
        !warehouse.join("_staging/demo").exists() || walk(&warehouse.join("_staging")).is_empty(),
        "staging is cleaned up"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `funnelhouse demo ARGS` run to the end in `cwd`, with nothing but `PATH` (the test
/// virtualenv's `bin` first, so the `python3` the demo's hints name has DuckDB) and a
/// `FUNNELHOUSE_LOG` of `warn` in its environment.
pub(crate) fn run_demo_in(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    let venv_bin = python().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .arg("demo")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", path)
        .env("FUNNELHOUSE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while child.try_wait().expect("wait works").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("funnelhouse demo {args:?} ran longer than 180 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_runs_from_an_empty_folder_and_shows_deletions_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_demo_in(dir.path(), &["--scale", "600"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The binary alone: no job, costs or FX file beside it; it writes ./warehouse only.
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["warehouse"], "{stdout}");
    let warehouse = dir.path().join("warehouse");
    assert!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "costs")
        )) > 0,
        "the built-in costs file is loaded"
    );

    // Deletions: an archived HubSpot contact and a deleted Salesforce lead are rows with
    // is_deleted, and left out of the metrics.
    let deleted = duckdb(&format!(
        "SELECT source_system, count(*) FROM {} WHERE is_deleted GROUP BY 1 ORDER BY 1",
        table(&warehouse, "leads")
    ));
    assert_eq!(
        deleted,
        vec![
            vec![serde_json::json!("hubspot"), serde_json::json!(1)],
            vec![serde_json::json!("salesforce"), serde_json::json!(1)],
        ]
    );
    let live = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE NOT is_deleted",
        table(&warehouse, "leads")
    ));
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "lead_stages")
        )),
        live
    );
    let rejected = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "_rejects")
    ));
    assert!(rejected > 0, "the demo sandbox serves malformed records");

    // The raw pages, as the README shows them: `<source>/<kind>/<stream>`, and DuckDB's
    // read_json opens the zstd pages as they are.
    let listed = duckdb_count(&format!(
        "SELECT sum(len(results)) FROM read_json('{}/_raw/demo/*/hubspot/hubspot/contacts/*.json.zst')",
        warehouse.display()
    ));
    let written = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source_system = 'hubspot'",
        table(&warehouse, "leads")
    ));
    let hubspot_rejects = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source = 'hubspot'",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(
        listed + 1,
        written + hubspot_rejects,
        "every HubSpot record read is in the landed list pages but the archived one"
    );

    // The closing hint: no duckdb CLI assumed; deletions and _rejects named; and every
    // command it prints runs as printed.
    assert!(!stdout.contains("duckdb -c"), "{stdout}");
    assert!(
        stdout.contains("1 archived HubSpot contact(s) and 1 deleted Salesforce lead(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("is_deleted"), "{stdout}");
    assert!(
        stdout.contains(&format!("rejected: {rejected} record(s)"))
            && stdout.contains("warehouse/_rejects/"),
        "{stdout}"
    );
    let commands: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("python3 -c "))
        .collect();
    // Leads per channel, ICP by industry, CPSQL, deletions, rejects.
    assert_eq!(commands.len(), 5, "{stdout}");
    for command in commands {
        let ran = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    python().parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .unwrap();
        assert!(
            ran.status.success() && !ran.stdout.is_empty(),
            "{command}: {}",
            text(&ran.stderr)
        );
    }
    let shown = text(
        &std::process::Command::new("sh")
            .args([
                "-c",
                stdout
                    .lines()
                    .find(|l| l.contains("WHERE is_deleted"))
                    .unwrap(),
            ])
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    python().parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        shown.contains("hubspot") && shown.contains("salesforce"),
        "{shown}"
    );
}

#[test]
fn every_relative_path_in_a_job_file_is_relative_to_the_file() {
    // The job and its files in one folder, run from another by a relative path.
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(repo_job("demo.toml"), jobs.join("demo.toml")).unwrap();

    // Without its files: each error names the file and says it is missing, not invalid.
    let missing = run_demo_in(&elsewhere, &["--job", "../jobs/nope.toml"]);
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("../jobs/nope.toml") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid"), "{stderr}");
    let no_fx = run_demo_in(
        &elsewhere,
        &["--job", "../jobs/demo.toml", "--scale", "200"],
    );
    let stderr = text(&no_fx.stderr);
    assert_eq!(no_fx.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} does not exist",
            jobs.join("fx-rates.csv").display()
        )),
        "{stderr}"
    );
    std::fs::copy(repo_job("fx-rates.csv"), jobs.join("fx-rates.csv")).unwrap();
    let no_costs = run_demo_in(
        &elsewhere,
        &["--job", "../jobs/demo.toml", "--scale", "200"],
    );
    let output = format!("{}{}", text(&no_costs.stdout), text(&no_costs.stderr));
    assert_eq!(no_costs.status.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "costs file {} does not exist",
            jobs.join("demo-costs.csv").display()
        )),
        "{output}"
    );

    // With them: the costs file, the FX rates and the warehouse all next to the job file.
    copy_job_assets(&jobs);
    let out = run_demo_in(
        &elsewhere,
        &["--job", "../jobs/demo.toml", "--scale", "200"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing is written where the command ran"
    );
    let warehouse = jobs.join("warehouse");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {}",
            table(&warehouse, "costs")
        )),
        18,
        "every row of demo-costs.csv"
    );
    // Rates from fx-rates.csv (GBP is only there): no GBP spend left unconverted.
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE currency = 'GBP' AND spend_reporting IS NULL",
            table(&warehouse, "spend")
        )),
        0
    );
}
