//! Names of a Delta table's objects. A run's file for `<table>/[<partition>/]<stem>.parquet`
//! is written once, as `<stem>.<run_id>.delta.parquet` beside it, and never changed: a
//! version of the log names files that must keep their bytes. The plain `<stem>.parquet`
//! stays the working copy the next run merges with and the metrics read (their listings
//! take only `<job>.<source>.parquet` names, so these never count twice). Files whose name
//! already holds the run id (`_runs`, `_rejects`) are written once anyway and are their own
//! Delta file.

/// The suffix of every data file the Delta log owns (and vacuum may delete).
pub const DATA_SUFFIX: &str = ".delta.parquet";

/// The table folder a warehouse object belongs to: its first path segment.
pub(super) fn table_of(target: &str) -> &str {
    target.split('/').next().unwrap_or(target)
}

/// The Delta data file of a published `target` (a warehouse path) for run `run_id`.
pub fn data_file(target: &str, run_id: &str) -> String {
    if target.contains(run_id) {
        return target.to_string();
    }
    let stem = target.strip_suffix(".parquet").unwrap_or(target);
    format!("{stem}.{run_id}{DATA_SUFFIX}")
}

/// The published name a Delta data file stands for (`a/x.RUN.delta.parquet` → `a/x.parquet`);
/// a file that is its own Delta file (and a compacted one) stands for itself.
pub fn logical_target(path: &str) -> String {
    let Some(stem) = path.strip_suffix(DATA_SUFFIX) else {
        return path.to_string();
    };
    match stem.rsplit_once('.') {
        Some((logical, _run)) => format!("{logical}.parquet"),
        None => path.to_string(),
    }
}

/// A path relative to its table's folder (`spend/date=…/f` → `date=…/f`).
pub(super) fn in_table<'a>(table: &str, path: &'a str) -> &'a str {
    path.strip_prefix(table)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(path)
}

/// The `txn` application id of the files of `stem` in a job's commit: the job and source
/// (`<job>.<source>`), or the job alone for its metric tables, `_runs` and `_rejects`.
pub(super) fn app_id(job: &str, target: &str, run_id: &str) -> String {
    let name = target.rsplit('/').next().unwrap_or(target);
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    match stem.strip_prefix(job).and_then(|r| r.strip_prefix('.')) {
        Some(source) if !source.is_empty() && !source.contains(run_id) => {
            format!("funnelhouse:{job}.{source}")
        }
        _ => format!("funnelhouse:{job}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_file_maps_to_an_immutable_name_and_back() {
        let target = "spend/date=2026-11-21/demo.google.parquet";
        let file = data_file(target, "20261202T124840Z-abc123");
        assert_eq!(
            file,
            "spend/date=2026-11-21/demo.google.20261202T124840Z-abc123.delta.parquet"
        );
        assert_eq!(logical_target(&file), target);
        assert_eq!(
            data_file("_runs/demo.R1.parquet", "R1"),
            "_runs/demo.R1.parquet"
        );
        assert_eq!(
            logical_target("_runs/demo.R1.parquet"),
            "_runs/demo.R1.parquet"
        );
        assert_eq!(
            in_table("spend", &file),
            "date=2026-11-21/demo.google.20261202T124840Z-abc123.delta.parquet"
        );
    }

    #[test]
    fn app_ids_name_the_job_and_source() {
        assert_eq!(
            app_id("demo", "leads/demo.hubspot.parquet", "R1"),
            "funnelhouse:demo.hubspot"
        );
        assert_eq!(
            app_id("demo", "funnel_daily/demo.parquet", "R1"),
            "funnelhouse:demo"
        );
        assert_eq!(
            app_id("demo", "_runs/demo.R1.parquet", "R1"),
            "funnelhouse:demo"
        );
    }
}
