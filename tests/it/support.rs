//! Shared helpers: the sandbox with a pinned date, job files in temp dirs, the environment
//! a job sees, and DuckDB (from the test virtualenv) as the independent reader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use funnelhouse::config::{JobConfig, parse_job};
use funnelhouse::pipeline::RunOptions;
use funnelhouse::sandbox::{RunningSandbox, SandboxOptions};
use serde_json::Value;

/// The date the sandbox data ends at (the day before), pinned so totals never drift.
pub(crate) fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date")
}

/// A run clock on `today()`.
pub(crate) fn run_options() -> RunOptions {
    RunOptions {
        now: Utc.from_utc_datetime(&today().and_hms_opt(4, 0, 0).expect("valid time")),
        ..RunOptions::default()
    }
}

/// The run clock `minutes` after `run_options()`'s (today, 04:00).
pub(crate) fn at(minutes: i64) -> RunOptions {
    let mut options = run_options();
    options.now += chrono::Duration::minutes(minutes);
    options
}

/// A job named `name` writing into `dir/w`: the header, then `body` (TOML), saved as
/// `dir/<name>.toml` and parsed against `env`. Returns the job and its warehouse folder.
pub(crate) fn job_in(
    dir: &Path,
    name: &str,
    body: &str,
    env: &HashMap<String, String>,
) -> (JobConfig, PathBuf) {
    let warehouse = dir.join("w");
    let text = format!(
        "name = \"{name}\"\nwarehouse = {:?}\nhash_key = \"${{FUNNELHOUSE_HASH_KEY}}\"\n{body}",
        warehouse.display().to_string()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &text).expect("the job file is written");
    let lookup = |name: &str| env.get(name).cloned();
    let job = parse_job(&path, &text, &lookup).unwrap_or_else(|d| panic!("{d:?}\n{text}"));
    (job, warehouse)
}

/// Run `job` in-process to completion; the test fails if it takes over two minutes.
pub(crate) async fn run_within(
    job: &JobConfig,
    env: &HashMap<String, String>,
    options: RunOptions,
) -> funnelhouse::pipeline::RunReport {
    let lookup = |name: &str| env.get(name).cloned();
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        funnelhouse::pipeline::run_job(job, &lookup, options),
    )
    .await
    .expect("the run ends within two minutes")
    .expect("the run completes")
}

/// Start a sandbox with the pinned date.
pub(crate) async fn sandbox(scale: usize, malformed_every: usize) -> RunningSandbox {
    funnelhouse::sandbox::start(SandboxOptions {
        seed: 7,
        scale,
        today: today(),
        malformed_every,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts on 127.0.0.1")
}

/// The variables a job needs to reach `sandbox`.
pub(crate) fn env_for(sandbox: &RunningSandbox) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = funnelhouse::sandbox::job_env(&sandbox.base_url())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.insert("FUNNELHOUSE_HASH_KEY".into(), "test-hash-key".into());
    env
}

/// `jobs/<name>` of the repository.
pub(crate) fn repo_job(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("jobs")
        .join(name)
}

/// The demo job with its warehouse moved into `warehouse`.
pub(crate) fn demo_job_into(warehouse: &Path, env: &HashMap<String, String>) -> JobConfig {
    let path = repo_job("demo.toml");
    let text = std::fs::read_to_string(&path).expect("jobs/demo.toml is readable");
    let text = text.replace(
        "warehouse = \"./warehouse\"",
        &format!("warehouse = {:?}", warehouse.display().to_string()),
    );
    let lookup = |name: &str| env.get(name).cloned();
    parse_job(&path, &text, &lookup).unwrap_or_else(|d| panic!("demo job is valid: {d:?}"))
}

/// The Python of the test virtualenv that has DuckDB (made by the README's test command).
pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FUNNELHOUSE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "DuckDB's Python package is needed: run `./scripts/test` (it creates .venv), or set FUNNELHOUSE_TEST_PYTHON"
    );
    venv
}

const DUCKDB_QUERY: &str = r#"
import duckdb, json, sys
# No progress bar: DuckDB draws one on stdout once a query runs past 2 s; stdout is our JSON.
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
rows = con.execute(sys.argv[1]).fetchall()
print(json.dumps([list(r) for r in rows], default=str))
"#;

/// Run SQL in DuckDB; each row as a JSON array.
pub(crate) fn duckdb(sql: &str) -> Vec<Vec<Value>> {
    let out = Command::new(python())
        .args(["-c", DUCKDB_QUERY, sql])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "duckdb failed on {sql}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("duckdb helper prints JSON")
}

/// A single integer from DuckDB.
pub(crate) fn duckdb_count(sql: &str) -> i64 {
    let rows = duckdb(sql);
    rows[0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{sql} returned {rows:?}"))
}

/// `read_parquet` over every file of a table.
pub(crate) fn table(warehouse: &Path, name: &str) -> String {
    format!(
        "read_parquet('{}/{name}/**/*.parquet', hive_partitioning = true, union_by_name = true)",
        warehouse.display()
    )
}

/// Column name → DuckDB type of a table.
pub(crate) fn column_types(warehouse: &Path, name: &str) -> HashMap<String, String> {
    duckdb(&format!(
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {})",
        table(warehouse, name)
    ))
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap_or_default().to_string(),
            r[1].as_str().unwrap_or_default().to_string(),
        )
    })
    .collect()
}

/// Copy the files `jobs/*.toml` refer to by relative path (FX rates…) into `dir`, so a
/// job file written there resolves them as it does in `jobs/`.
pub(crate) fn copy_job_assets(dir: &Path) {
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    for entry in std::fs::read_dir(&jobs)
        .expect("jobs/ is readable")
        .flatten()
    {
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|e| e != "toml") {
            std::fs::copy(&path, dir.join(entry.file_name())).expect("job asset copied");
        }
    }
}

/// The S3 test server's bucket (`./scripts/test` starts the server and sets
/// `FUNNELHOUSE_TEST_S3_BUCKET` and `AWS_*`) and a folder name no other test run uses,
/// `<label> <nanoseconds>` (labels with spaces or unicode test keys written as they are).
pub(crate) fn s3_bucket_and_folder(label: &str) -> (String, String) {
    let bucket = std::env::var("FUNNELHOUSE_TEST_S3_BUCKET").expect(
        "the S3 tests need the server ./scripts/test starts (it sets FUNNELHOUSE_TEST_S3_BUCKET and AWS_*)",
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (bucket, format!("{label} {nanos}"))
}
