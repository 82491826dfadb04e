//! `table_format = "delta"`: every table is a Delta table that readers other than ours —
//! the Python `deltalake` package, Polars' `scan_delta` and DuckDB's `delta` extension —
//! read with the same rows as the Parquet format gives; a run commits each table once (with
//! its run id and a `txn` per job and source), a rerun leaves the same contents at a new
//! version, a look-back window replaces exactly its day partitions; `kill -9` at every pause
//! point leaves every table readable at a consistent version; maintenance keeps contents.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use funnelhouse::sink::{Warehouse, WarehouseUrl};
use futures::TryStreamExt;
use serde_json::Value;

use crate::harness::*;
use crate::support::*;

/// Per Delta table of `argv[2]`: rows per reader compared with the Parquet warehouse
/// `argv[1]` (rows only in one side, lineage columns left out), its history, the row count of
/// version 0, and the actions of its latest commit. Prints JSON.
const READ_DELTA: &str = r#"
import json, os, sys
import duckdb, polars as pl
from deltalake import DeltaTable

parquet_root, delta_root = sys.argv[1], sys.argv[2]
LINEAGE = {"_run_id", "_ingested_at", "run_id"}
# No progress bar: DuckDB draws one on stdout once a query runs past 2 s; stdout is our JSON.
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")

def diff(name, sql_a, sql_b, cols):
    sel = ", ".join(f'"{c}"::VARCHAR' for c in cols)
    extra = con.sql(f"SELECT count(*) FROM (SELECT {sel} FROM {sql_a} EXCEPT ALL SELECT {sel} FROM {sql_b})").fetchone()[0]
    missing = con.sql(f"SELECT count(*) FROM (SELECT {sel} FROM {sql_b} EXCEPT ALL SELECT {sel} FROM {sql_a})").fetchone()[0]
    rows = con.sql(f"SELECT count(*) FROM {sql_a}").fetchone()[0]
    return [rows, extra, missing]

def log_actions(path, version):
    actions = []
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        for line in f:
            if line.strip():
                actions.append(json.loads(line))
    return actions

out = {}
for table in sorted(os.listdir(delta_root)):
    path = os.path.join(delta_root, table)
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        continue
    dt = DeltaTable(path)
    entry = {"version": dt.version()}
    d = dt.to_pyarrow_table()
    p = pl.scan_delta(path).collect().to_arrow()
    con.register("d", d)
    con.register("p", p)
    entry["history"] = [
        {"operation": h.get("operation"), "runId": h.get("runId"), "job": h.get("job")}
        for h in dt.history()
    ]
    entry["v0_rows"] = DeltaTable(path, version=0).to_pyarrow_table().num_rows
    latest = log_actions(path, dt.version())
    entry["latest"] = {
        "txn": [a["txn"] for a in latest if "txn" in a],
        "adds": sorted(a["add"]["path"] for a in latest if "add" in a),
        "removes": sorted(a["remove"]["path"] for a in latest if "remove" in a),
        "commitInfo": [a["commitInfo"] for a in latest if "commitInfo" in a],
    }
    pq_dir = os.path.join(parquet_root, table)
    if os.path.isdir(pq_dir):
        parquet = f"read_parquet('{pq_dir}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
        cols = [c for c in con.sql(f"SELECT * FROM {parquet} LIMIT 0").columns if c not in LINEAGE]
        entry["deltalake"] = diff(table, "d", parquet, cols)
        entry["polars"] = diff(table, "p", parquet, cols)
    else:
        entry["deltalake"] = [d.num_rows, 0, 0]
        entry["polars"] = [p.num_rows, 0, 0]
    con.unregister("d")
    con.unregister("p")
    out[table] = entry
print(json.dumps(out, default=str))
# Skip interpreter teardown: native reader threads still running then can abort the
# process ("terminate called without an active exception") after the answer is printed.
sys.stdout.flush()
os._exit(0)
"#;

/// The same comparison through DuckDB's `delta` extension (`delta_scan`): DuckDB 1.4.4 with
/// the `duckdb-ext-delta` package, installed beside the main virtualenv (`scripts/test`).
const DUCKDB_DELTA: &str = r#"
import glob, json, os, sys
import duckdb
parquet_root, delta_root, ext_root = sys.argv[1], sys.argv[2], sys.argv[3]
LINEAGE = {"_run_id", "_ingested_at", "run_id"}
# No progress bar: DuckDB draws one on stdout once a query runs past 2 s; stdout is our JSON.
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
# The package ships the extension file only: load it from where pip put it.
con.execute(f"LOAD '{glob.glob(os.path.join(ext_root, 'duckdb_ext/extensions/*/*/delta.duckdb_extension'))[0]}'")
out = {"version": duckdb.__version__}
for table in sorted(os.listdir(delta_root)):
    path = os.path.join(delta_root, table)
    pq_dir = os.path.join(parquet_root, table)
    if not os.path.isdir(os.path.join(path, "_delta_log")) or not os.path.isdir(pq_dir):
        continue
    delta = f"delta_scan('{path}')"
    parquet = f"read_parquet('{pq_dir}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
    cols = [c for c in con.sql(f"SELECT * FROM {parquet} LIMIT 0").columns if c not in LINEAGE]
    sel = ", ".join(f'"{c}"::VARCHAR' for c in cols)
    extra = con.sql(f"SELECT count(*) FROM (SELECT {sel} FROM {delta} EXCEPT ALL SELECT {sel} FROM {parquet})").fetchone()[0]
    missing = con.sql(f"SELECT count(*) FROM (SELECT {sel} FROM {parquet} EXCEPT ALL SELECT {sel} FROM {delta})").fetchone()[0]
    rows = con.sql(f"SELECT count(*) FROM {delta}").fetchone()[0]
    out[table] = [rows, extra, missing]
print(json.dumps(out))
# Skip interpreter teardown: native reader threads still running then can abort the
# process ("terminate called without an active exception") after the answer is printed.
sys.stdout.flush()
os._exit(0)
"#;

/// Every canonical table as `deltalake` reads it, lineage columns left out, sorted.
const DELTA_CONTENTS: &str = r#"
import json, os, sys
import duckdb
from deltalake import DeltaTable
root = sys.argv[1]
# No progress bar: DuckDB draws one on stdout once a query runs past 2 s; stdout is our JSON.
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
out = []
for table in sys.argv[2:]:
    t = DeltaTable(os.path.join(root, table)).to_pyarrow_table()
    con.register("t", t)
    rows = con.sql("SELECT COLUMNS(* EXCLUDE (_run_id, _ingested_at))::VARCHAR FROM t ORDER BY ALL").fetchall()
    out.append([list(r) for r in rows])
    con.unregister("t")
print(json.dumps(out, default=str))
# Skip interpreter teardown: native reader threads still running then can abort the
# process ("terminate called without an active exception") after the answer is printed.
sys.stdout.flush()
os._exit(0)
"#;

fn python_json(program: &str, python: &Path, args: &[&str], extra_path: Option<&Path>) -> Value {
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-c", program]).args(args);
    if let Some(dir) = extra_path {
        cmd.env("PYTHONPATH", dir);
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// The canonical tables of a Delta warehouse, through `deltalake`.
fn delta_contents(warehouse: &Path) -> Value {
    let root = warehouse.display().to_string();
    let mut args = vec![root.as_str()];
    args.extend(TABLES);
    python_json(DELTA_CONTENTS, &python(), &args, None)
}

/// The demo job in `dir` writing Delta tables into `warehouse`, with `delta` as its
/// `[delta]` section.
fn delta_job(dir: &Path, warehouse: &Path, delta: &str) -> PathBuf {
    let job = write_job(
        dir,
        &warehouse.display().to_string(),
        "table_format = \"delta\"",
        &[],
    );
    let mut text = std::fs::read_to_string(&job).unwrap();
    text.push_str(&format!("\n[delta]\n{delta}\n"));
    std::fs::write(&job, text).unwrap();
    job
}

fn run_ok(env: &HashMap<String, String>, args: &[&str]) -> String {
    let out = run_binary(env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The folder of DuckDB 1.4.4 and its `delta` extension that `scripts/test` installs.
fn duckdb_delta_dir() -> PathBuf {
    let dir = python()
        .parent()
        .and_then(Path::parent)
        .map(|venv| venv.join("duckdb-delta"))
        .expect("the test python lives in a virtualenv");
    assert!(
        dir.exists(),
        "DuckDB's delta extension is needed: run `./scripts/test` (it installs it into .venv/duckdb-delta)"
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_hold_the_parquet_formats_rows_for_every_reader_one_commit_per_run() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let (pq_dir, dl_dir) = (dir.path().join("p"), dir.path().join("d"));
    std::fs::create_dir_all(&pq_dir).unwrap();
    std::fs::create_dir_all(&dl_dir).unwrap();
    // No space in the path: Polars 2.1 percent-encodes a local table root and then fails to
    // find the files.
    let (pq_warehouse, dl_warehouse) = (pq_dir.join("w"), dl_dir.join("w"));
    let pq_job = write_job(&pq_dir, &pq_warehouse.display().to_string(), "", &[]);
    let dl_job = delta_job(&dl_dir, &dl_warehouse, "maintain_after_run = false");
    // Both formats run twice on the same clock, so that rows holding the run's time (a stage
    // entered when a CRM has no date for it) compare too.
    let lookup = |name: &str| env.get(name).cloned();
    let run = |job: PathBuf| {
        let job = load(&job, &env);
        async move {
            let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
                .await
                .unwrap();
            assert!(report.succeeded(), "{report:#?}");
        }
    };
    run(pq_job.clone()).await;
    run(dl_job.clone()).await;
    let first = delta_contents(&dl_warehouse);
    // A rerun: the same contents at a new version.
    run(pq_job.clone()).await;
    run(dl_job.clone()).await;
    assert_eq!(
        delta_contents(&dl_warehouse),
        first,
        "a rerun changed the contents"
    );

    let read = python_json(
        READ_DELTA,
        &python(),
        &[
            &pq_warehouse.display().to_string(),
            &dl_warehouse.display().to_string(),
        ],
        None,
    );
    let tables = read.as_object().unwrap();
    // Every table the Parquet format writes is a Delta table.
    let mut expected: Vec<String> = std::fs::read_dir(&pq_warehouse)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            walk(&pq_warehouse.join(name))
                .iter()
                .any(|p| p.extension().is_some_and(|x| x == "parquet"))
                && !name.starts_with("_raw")
        })
        .collect();
    expected.sort();
    let got: Vec<&String> = tables.keys().collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>());

    let runs = duckdb(&format!(
        "SELECT run_id FROM read_parquet('{}/_runs/demo.*.parquet') ORDER BY run_id",
        dl_warehouse.display()
    ));
    assert_eq!(runs.len(), 2, "two runs recorded");
    // Both runs start in the same second of the fixed clock: the later is the one `_runs`'s
    // second version names.
    let last_run = tables["_runs"]["latest"]["commitInfo"][0]["runId"]
        .as_str()
        .unwrap();
    assert!(
        runs.iter().any(|r| r[0] == last_run),
        "{last_run}: {runs:?}"
    );
    for (name, t) in tables {
        for reader in ["deltalake", "polars"] {
            let [rows, extra, missing] = [0, 1, 2].map(|i| t[reader][i].as_i64().unwrap());
            if name == "_runs" {
                continue; // its rows are the runs themselves (ids, times, timings)
            }
            assert!(
                rows > 0 || name == "_rejects",
                "{name}: {reader} read no rows"
            );
            assert_eq!(
                (extra, missing),
                (0, 0),
                "{name}: {reader} rows differ from the Parquet format's ({rows} rows)"
            );
        }
        // One commit per run that wrote the table: create, then the rerun's (maintenance is
        // off here); the tables every run rewrites have both.
        let history = t["history"].as_array().unwrap();
        let version = t["version"].as_i64().unwrap();
        assert_eq!(history.len() as i64, version + 1, "{name}: {history:?}");
        if ["_runs", "leads", "spend"].contains(&name.as_str()) {
            assert_eq!(version, 1, "{name}: {history:?}");
        }
        let info = &t["latest"]["commitInfo"][0];
        if version == 1 {
            assert_eq!(info["runId"], last_run, "{name}: commitInfo names the run");
        }
        assert_eq!(info["job"], "demo");
        let txn = t["latest"]["txn"].as_array().unwrap();
        assert!(!txn.is_empty(), "{name}: a txn per job and source");
        for id in txn {
            assert!(
                id["appId"]
                    .as_str()
                    .unwrap()
                    .starts_with("funnelhouse:demo"),
                "{name}: {id}"
            );
            assert_eq!(
                id["version"],
                version + 1,
                "{name}: the job's commit counter"
            );
        }
        // The earlier version still reads (time travel), with the same rows for inputs.
        if name != "_runs" && name != "_rejects" {
            assert_eq!(t["v0_rows"], t["deltalake"][0], "{name}: version 0");
        }
    }
    assert_eq!(tables["_runs"]["deltalake"][0], 2, "_runs: one row per run");

    // The look-back window replaced exactly its day partitions: every removed spend file is
    // a day the commit added a file for, and no other day was touched.
    let spend = &tables["spend"]["latest"];
    let days = |key: &str| -> std::collections::BTreeSet<String> {
        spend[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().split('/').next().unwrap().to_string())
            .collect()
    };
    assert!(!days("adds").is_empty());
    assert_eq!(
        days("removes"),
        days("adds"),
        "spend replaced exactly its window"
    );
    assert_eq!(
        spend["removes"].as_array().unwrap().len(),
        spend["adds"].as_array().unwrap().len()
    );
    // A merged current-state table replaced the file it rewrote.
    let leads = &tables["leads"]["latest"];
    assert_eq!(leads["removes"].as_array().unwrap().len(), 1, "{leads}");
    assert_eq!(leads["adds"].as_array().unwrap().len(), 1, "{leads}");

    // DuckDB's own delta extension reads the same rows.
    let duck = python_json(
        DUCKDB_DELTA,
        &python(),
        &[
            &pq_warehouse.display().to_string(),
            &dl_warehouse.display().to_string(),
            &duckdb_delta_dir().display().to_string(),
        ],
        Some(&duckdb_delta_dir()),
    );
    for (name, counts) in duck.as_object().unwrap() {
        if name == "version" || name == "_runs" {
            continue;
        }
        assert_eq!(
            counts[1], 0,
            "{name}: delta_scan has rows the Parquet format lacks"
        );
        assert_eq!(counts[2], 0, "{name}: delta_scan misses rows");
    }
}

/// Per Delta table: its version, the run id of each commit (oldest first), its operations,
/// its row count, and its active data files. Prints JSON.
const HISTORY: &str = r#"
import json, os, sys
from deltalake import DeltaTable
root = sys.argv[1]
out = {}
for table in sorted(os.listdir(root)):
    path = os.path.join(root, table)
    if not os.path.isdir(os.path.join(path, "_delta_log")):
        continue
    dt = DeltaTable(path)
    history = list(reversed(dt.history()))
    out[table] = {
        "version": dt.version(),
        "runs": [h.get("runId") for h in history if h.get("runId")],
        "operations": [h.get("operation") for h in history],
        "rows": dt.to_pyarrow_table().num_rows,
        "files": sorted(dt.file_uris()),
    }
print(json.dumps(out))
# Skip interpreter teardown: native reader threads still running then can abort the
# process ("terminate called without an active exception") after the answer is printed.
sys.stdout.flush()
os._exit(0)
"#;

fn history(warehouse: &Path) -> serde_json::Map<String, Value> {
    python_json(
        HISTORY,
        &python(),
        &[&warehouse.display().to_string()],
        None,
    )
    .as_object()
    .unwrap()
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_delta_runs_leave_every_table_readable_and_each_run_commits_a_table_once() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let job = delta_job(dir.path(), &warehouse, "maintain_after_run = false");
    let job_arg = job.display().to_string();
    run_ok(&env, &["run", &job_arg]);
    let committed = delta_contents(&warehouse);
    let tables: Vec<String> = history(&warehouse).keys().cloned().collect();

    // `delta`: the first table's Delta commit is made, the others not yet.
    for point in ["pull", "write", "publish", "delta"] {
        kill9(spawn_paused(&env, &job, point));
        // Every table opens, each at its old or its new version: the same rows either way.
        let after_kill = history(&warehouse);
        assert_eq!(
            after_kill.keys().cloned().collect::<Vec<_>>(),
            tables,
            "killed during {point}"
        );
        assert_eq!(
            delta_contents(&warehouse),
            committed,
            "killed during {point}: contents changed"
        );
        run_ok(&env, &["run", &job_arg]);
        assert_eq!(
            delta_contents(&warehouse),
            committed,
            "after the kill during {point}"
        );
        assert_clean(&warehouse);
    }
    // Each run committed each table at most once (a rolled-forward commit is applied once),
    // and every table holds the runs that committed: the first, the rolled-forward ones
    // (killed during publish and delta) and the four recoveries.
    let recorded: std::collections::BTreeSet<String> = duckdb(&format!(
        "SELECT run_id FROM read_parquet('{}/_runs/demo.*.parquet')",
        warehouse.display()
    ))
    .into_iter()
    .map(|r| r[0].as_str().unwrap().to_string())
    .collect();
    assert_eq!(recorded.len(), 7, "{recorded:?}");
    for (name, t) in history(&warehouse) {
        let runs: Vec<&str> = t["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&str> = runs.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            runs.len(),
            "{name}: a run committed twice: {runs:?}"
        );
        if ["_runs", "leads", "spend"].contains(&name.as_str()) {
            assert_eq!(
                runs.len(),
                7,
                "{name}: one commit per committed run: {runs:?}"
            );
        }
        assert!(
            distinct.iter().all(|r| recorded.contains(*r)),
            "{name}: a commit of an unrecorded run: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_compacts_and_vacuums_without_changing_contents() {
    let sandbox = sandbox(200, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    // Every demo source: three ad platforms share each day of `spend`, two CRMs `leads`.
    let job = dir.path().join("job.toml");
    let text = std::fs::read_to_string(repo_job("demo.toml"))
        .unwrap()
        .replace(
            "warehouse = \"./warehouse\"",
            &format!(
                "warehouse = {:?}\ntable_format = \"delta\"",
                warehouse.display().to_string()
            ),
        );
    std::fs::write(
        &job,
        format!(
            "{text}\n[delta]\nmaintain_after_run = false\nvacuum_retention_hours = 0\ncompact_below_bytes = 1048576\n"
        ),
    )
    .unwrap();
    copy_job_assets(dir.path());
    let job_arg = job.display().to_string();
    for _ in 0..3 {
        run_ok(&env, &["run", &job_arg]);
    }
    let before = delta_contents(&warehouse);
    let tables_before = history(&warehouse);
    let data_files = |w: &Path| {
        walk(w)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".delta.parquet"))
            .count()
    };
    let files_before = data_files(&warehouse);

    let out = run_ok(&env, &["maintain", &job_arg]);
    assert!(
        out.contains("_runs: 3 small files compacted into 1"),
        "{out}"
    );

    assert_eq!(
        delta_contents(&warehouse),
        before,
        "maintenance changed contents"
    );
    let tables = history(&warehouse);
    for (name, t) in &tables {
        assert_eq!(
            t["rows"], tables_before[name]["rows"],
            "{name}: rows changed"
        );
    }
    let operations = |table: &str| -> Vec<String> {
        tables[table]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.as_str().map(str::to_string))
            .collect()
    };
    // `_runs` (a file per run, never replaced) is compacted; `leads` (its files replaced by
    // every run) has the replaced ones vacuumed. Both are Delta commits.
    let runs = &tables["_runs"];
    assert_eq!(runs["files"].as_array().unwrap().len(), 1, "{runs}");
    let ops = operations("_runs");
    assert_eq!(ops.last().map(String::as_str), Some("OPTIMIZE"), "{ops:?}");
    let ops = operations("leads");
    assert_eq!(
        ops.last().map(String::as_str),
        Some("VACUUM END"),
        "{ops:?}"
    );
    assert_eq!(tables["leads"]["files"].as_array().unwrap().len(), 1);
    // The replaced files of the earlier runs are gone; every file a table now names is there.
    let vacuumed = |table: &str| -> usize {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{table}: ")))
            .unwrap_or_else(|| panic!("no line for {table}: {out}"));
        line.rsplit(", ")
            .next()
            .and_then(|part| part.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    // Three runs: the two earlier runs' files of each CRM (and each re-pulled spend day).
    assert_eq!(vacuumed("leads"), 4, "{out}");
    assert!(vacuumed("spend") > 0, "{out}");
    // (The files compaction merged away go at the next vacuum: the version before the
    // compaction was current after this one's cutoff.)
    assert!(files_before > 0);
    for (name, t) in &tables {
        for uri in t["files"].as_array().unwrap() {
            let path = uri.as_str().unwrap().trim_start_matches("file://");
            assert!(
                Path::new(path).exists(),
                "{name}: {path} vacuumed while named"
            );
        }
    }
    // The pipeline's own files stay: the working copies and every run's `_runs` row.
    assert!(warehouse.join("leads/demo.hubspot.parquet").exists());
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM read_parquet('{}/_runs/demo.*.parquet')",
            warehouse.display()
        )),
        3
    );
    // Each day of `spend` is one file now, merged from three sources' files.
    let days = tables["spend"]["files"].as_array().unwrap().len();
    let folders = std::fs::read_dir(warehouse.join("spend"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("date="))
        .count();
    assert_eq!(days, folders, "one compacted file per day");
    // The next run re-pulls its look-back window source by source: each compacted day is
    // rewritten without the re-pulled source's rows, in the same commit, so the contents stay.
    run_ok(&env, &["run", &job_arg]);
    let now = delta_contents(&warehouse);
    for (i, table) in TABLES.iter().enumerate() {
        let (a, b) = (now[i].as_array().unwrap(), before[i].as_array().unwrap());
        let extra: Vec<_> = a.iter().filter(|r| !b.contains(r)).take(3).collect();
        let missing: Vec<_> = b.iter().filter(|r| !a.contains(r)).take(3).collect();
        assert!(
            extra.is_empty() && missing.is_empty() && a.len() == b.len(),
            "{table}: {} rows, {} before; extra {extra:?}; missing {missing:?}",
            a.len(),
            b.len()
        );
    }
    let after = history(&warehouse);
    assert_eq!(
        after["spend"]["operations"].as_array().unwrap().last(),
        Some(&Value::from("WRITE"))
    );
    assert_eq!(after["spend"]["rows"], tables["spend"]["rows"]);
}

/// Rows and version of a table of an S3 warehouse, through `deltalake`.
const S3_READ: &str = r#"
import json, os, sys, urllib.parse
from deltalake import DeltaTable
uri = "s3://" + urllib.parse.quote(sys.argv[1])
options = {
    "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT"],
    "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
    "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
    "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    "AWS_ALLOW_HTTP": "true",
}
dt = DeltaTable(uri, storage_options=options)
print(json.dumps({"version": dt.version(), "rows": dt.to_pyarrow_table().num_rows}))
# Skip interpreter teardown: native reader threads still running then can abort the
# process ("terminate called without an active exception") after the answer is printed.
sys.stdout.flush()
os._exit(0)
"#;

/// Two runs of the Delta demo job into `warehouse`: every table at version 1 with the run's
/// `leads` rows; returns the `leads` row count the log's files hold.
async fn two_delta_runs(warehouse: &Warehouse, what: &str) -> usize {
    let sandbox = sandbox(150, 0).await;
    let totals = sandbox.data.totals();
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let mut job = demo_job_into(dir.path(), &env);
    job.table_format = funnelhouse::sink::delta::TableFormat::Delta;
    job.delta.maintain_after_run = false;
    let lookup = |name: &str| env.get(name).cloned();
    for round in 0..2 {
        let report = funnelhouse::pipeline::run_job_in(
            &job,
            &lookup,
            run_options(),
            warehouse,
            std::time::Instant::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: run {round}: {e}"));
        assert!(report.succeeded(), "{what}: {report:#?}");
    }
    let store = &warehouse.store;
    for table in ["leads", "spend", "_runs", "funnel_daily"] {
        let (version, files) = funnelhouse::sink::delta::current_files(store, table)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: {table} has no Delta log"));
        assert_eq!(version, 1, "{what}: {table}: one commit per run");
        assert!(!files.is_empty(), "{what}: {table}");
    }
    // The log's `leads` files hold the rows of the working copies, which are what the
    // Parquet format publishes.
    let count = |files: Vec<String>| async move {
        let mut rows = 0;
        for file in files {
            let path = object_store::path::Path::from(file);
            let batches = funnelhouse::sink::read_parquet_rows(store, &path)
                .await
                .unwrap();
            rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        rows
    };
    let (_, files) = funnelhouse::sink::delta::current_files(store, "leads")
        .await
        .unwrap()
        .unwrap();
    let working: Vec<String> = store
        .list(Some(&object_store::path::Path::from("leads")))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.ends_with(".parquet") && !p.ends_with(".delta.parquet"))
        .collect();
    assert_eq!(working.len(), 2, "{what}: {working:?}");
    let rows = count(files).await;
    assert!(rows >= totals.contacts, "{what}: {rows} leads");
    assert_eq!(
        rows,
        count(working).await,
        "{what}: leads rows in the log's files"
    );
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_work_in_memory_and_on_s3() {
    two_delta_runs(
        &Warehouse::open(WarehouseUrl::parse("memory://").unwrap()).unwrap(),
        "memory://",
    )
    .await;

    let (bucket, unique) = crate::support::s3_bucket_and_folder("delta");
    let unique = format!("{unique} ü");
    let prefix = format!("{bucket}/{unique}/ware house");
    let warehouse =
        Warehouse::open(WarehouseUrl::parse(&format!("s3://{prefix}")).unwrap()).unwrap();
    let rows = two_delta_runs(&warehouse, "s3").await;
    // A reader that is not ours finds the same table on the S3 server.
    let read = python_json(S3_READ, &python(), &[&format!("{prefix}/leads")], None);
    assert_eq!(read["version"], 1);
    assert_eq!(read["rows"], rows);
}
