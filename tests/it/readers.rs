//! Every table of the demo warehouse opens in every reader an analyst starts with — DuckDB,
//! pyarrow (`dataset` with Hive partitioning and `parquet.read_table`), pandas and Polars —
//! with the same row count, and `spend`'s `date` comes from its `date=` folders, never also
//! from inside the files (pyarrow and pandas refuse a column that is in both).

use crate::demo_job::run_demo_in;
use crate::support::python;

/// For each table folder: the row count of each reader, `spend`'s date types, and every
/// spend file whose own schema has `date`. Prints JSON.
const READERS: &str = r#"
import json, os, sys
import duckdb, pandas as pd, polars as pl, pyarrow as pa
import pyarrow.dataset as ds, pyarrow.parquet as pq

# DuckDB draws a progress bar on stdout once a query runs past 2 s; stdout is our JSON.
duck = duckdb.connect()
duck.execute("SET enable_progress_bar = false")

root = sys.argv[1]
out = {"counts": {}, "date_types": {}, "files_with_date": []}
for table in sorted(os.listdir(root)):
    path = os.path.join(root, table)
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet")]
    if not files:
        continue  # _raw, _state, _locks: not tables
    glob = f"{path}/**/*.parquet"
    out["counts"][table] = {
        "duckdb": duck.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()[0],
        "pyarrow.dataset": ds.dataset(path, format="parquet", partitioning="hive").count_rows(),
        "pyarrow.parquet.read_table": pq.read_table(path).num_rows,
        "pandas.read_parquet": len(pd.read_parquet(path)),
        "polars.read_parquet": pl.read_parquet(glob, hive_partitioning=True).height,
        "polars.scan_parquet": pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item(),
        "files": sum(pq.ParquetFile(f).metadata.num_rows for f in files),
    }
    out["files_with_date"] += [f for f in files if table == "spend" and "date" in pq.read_schema(f).names]
spend = os.path.join(root, "spend")
typed = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
out["date_types"] = {
    "duckdb": duck.sql(f"SELECT typeof(date) FROM read_parquet('{spend}/**/*.parquet', hive_partitioning = true) LIMIT 1").fetchone()[0],
    "polars": str(pl.scan_parquet(f"{spend}/**/*.parquet", hive_partitioning=True).collect_schema()["date"]),
    "pyarrow.dataset (typed hive)": str(ds.dataset(spend, format="parquet", partitioning=typed).schema.field("date").type),
    "pandas": str(pd.read_parquet(spend)["date"].dtype),
}
print(json.dumps(out))
"#;

#[test]
fn every_reader_opens_every_table_of_the_demo_warehouse_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_demo_in(dir.path(), &["--scale", "600"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let warehouse = dir.path().join("warehouse");
    let read = std::process::Command::new(python())
        .args(["-c", READERS, warehouse.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "a reader failed:\n{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let counts = got["counts"].as_object().unwrap();
    let mut tables: Vec<&str> = counts.keys().map(String::as_str).collect();
    tables.sort_unstable();
    assert_eq!(
        tables,
        [
            "_rejects",
            "_runs",
            "costs",
            "cpsql_monthly",
            "enps",
            "enps_responses",
            "funnel_cohort_monthly",
            "funnel_daily",
            "intent_signals",
            "lead_stage_transitions",
            "lead_stages",
            "leads",
            "sal_acceptance_monthly",
            "spend",
            "survey_responses",
        ]
    );
    for (table, by_reader) in counts {
        let by_reader = by_reader.as_object().unwrap();
        let rows = &by_reader["files"];
        assert!(rows.as_u64().unwrap() > 0, "{table} is empty");
        for (reader, count) in by_reader {
            assert_eq!(
                count, rows,
                "{table}: {reader} read {count}, the files hold {rows}"
            );
        }
    }
    assert_eq!(
        got["files_with_date"],
        serde_json::json!([]),
        "spend's date lives in its folders only"
    );
    assert_eq!(
        got["date_types"],
        serde_json::json!({
            "duckdb": "DATE",
            "polars": "Date",
            "pyarrow.dataset (typed hive)": "date32[day]",
            "pandas": "category",
        })
    );
}
