//! Where every object lives under the warehouse root. Names are deterministic per table,
//! partition, job and source, so a rerun replaces files and never duplicates rows.

use object_store::path::Path;

/// The file one source of one job writes into a table (or one of its partitions):
/// `<table>/[<partition>/]<job>.<source>.parquet`.
pub fn table_file(table: &str, partition: Option<&str>, job: &str, source: &str) -> Path {
    match partition {
        Some(p) => Path::from(format!("{table}/{p}/{job}.{source}.parquet")),
        None => Path::from(format!("{table}/{job}.{source}.parquet")),
    }
}

/// Where a run stages a file before the commit publishes it.
pub fn staging_path(job: &str, run_id: &str, final_path: &Path) -> Path {
    Path::from(format!("_staging/{job}/{run_id}/{final_path}"))
}

/// The rejects of one run.
pub fn rejects_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("_rejects/{job}.{run_id}.parquet"))
}

/// The `_runs` row of one run.
pub fn runs_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("_runs/{job}.{run_id}.parquet"))
}

/// The commit record of one run.
pub fn commit_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("_commits/{job}/{run_id}.json"))
}

/// The folder of a job's pending commit records.
pub fn commits_prefix(job: &str) -> Path {
    Path::from(format!("_commits/{job}"))
}
