//! Where every object lives under the warehouse root, and how a name found there is read
//! back. The one place that spells the warehouse's folders and file names: every other
//! module builds and parses paths through these functions. Names are deterministic per
//! table, partition, job and source, so a rerun replaces files and never duplicates rows.
//!
//! ```text
//! <table>/[<partition>/]<job>.<source>.parquet   a source's rows of a table
//! <metric table>/<job>.parquet                   a job's figures of a metric table
//! _state/<job>/<source>.json                     a source's committed watermarks
//! _locks/<job>.json                              the job's lock
//! _raw/<job>/<run_id>/<source>/…                 the pages a run landed (`_state.json`,
//!                                                `_clock.json` beside them)
//! _staging/<job>/<run_id>/<final path>           files staged before the commit
//! _commits/<job>/<run_id>.json                   the commit record while publishing
//! _rejects/<job>.<run_id>.parquet                a run's rejected records
//! _runs/<job>.<run_id>.parquet                   a run's `_runs` row
//! ```
//!
//! Job, source and run names contain no dots, which is what makes `<job>.<…>.parquet`
//! parseable: a job named `a` never claims job `a.b`'s files.

use chrono::NaiveDate;
use object_store::path::Path;

/// The folder of committed watermarks.
pub const STATE_DIR: &str = "_state";
/// The folder of job locks.
pub const LOCKS_DIR: &str = "_locks";
/// The folder of landed raw pages.
pub const RAW_DIR: &str = "_raw";
/// The folder of staged files.
pub const STAGING_DIR: &str = "_staging";
/// The folder of commit records.
pub const COMMITS_DIR: &str = "_commits";
/// The `_rejects` table (folder and `StagedFile::table`).
pub const REJECTS_TABLE: &str = "_rejects";
/// The `_runs` table (folder and `StagedFile::table`).
pub const RUNS_TABLE: &str = "_runs";

/// The file one source of one job writes into a table (or one of its partitions):
/// `<table>/[<partition>/]<job>.<source>.parquet`.
pub fn table_file(table: &str, partition: Option<&str>, job: &str, source: &str) -> Path {
    match partition {
        Some(p) => Path::from(format!("{table}/{p}/{job}.{source}.parquet")),
        None => Path::from(format!("{table}/{job}.{source}.parquet")),
    }
}

/// `date=YYYY-MM-DD`: the Hive partition folder of one day of a day-partitioned table.
/// Spend asks this of every row, so a year of four digits (chrono's `{:04}` form) is written
/// digit by digit instead of through `fmt`; any other year as chrono writes it.
pub fn day_partition(day: NaiveDate) -> String {
    use chrono::Datelike;
    let year = day.year();
    if !(0..=9999).contains(&year) {
        return format!("date={day}");
    }
    let mut out = String::with_capacity(15);
    out.push_str("date=");
    let digits = |out: &mut String, n: u32, width: u32| {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
    };
    digits(&mut out, year.unsigned_abs(), 4);
    out.push('-');
    digits(&mut out, day.month(), 2);
    out.push('-');
    digits(&mut out, day.day(), 2);
    out
}

/// The day a partition folder's name `date=YYYY-MM-DD` holds; `None` for any other name.
pub fn partition_day(folder: &str) -> Option<NaiveDate> {
    let day = folder.strip_prefix("date=")?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// The job and source of a table file's name `<job>.<source>.parquet`; `None` for any
/// other name (a metric file `<job>.parquet`, a name with more dots).
pub fn table_file_owner(name: &str) -> Option<(&str, &str)> {
    let stem = name.strip_suffix(".parquet")?;
    let (job, source) = stem.split_once('.')?;
    (!job.is_empty() && !source.is_empty() && !source.contains('.')).then_some((job, source))
}

/// Is `name` a table file (`<job>.<source>.parquet`) of `job`?
pub fn is_table_file_of(name: &str, job: &str) -> bool {
    table_file_owner(name).is_some_and(|(owner, _)| owner == job)
}

/// The final path of a metric table's file: `<table>/<job>.parquet`.
pub fn metric_file(table: &str, job: &str) -> Path {
    Path::from(format!("{table}/{job}.parquet"))
}

/// The job of a metric file's name `<job>.parquet`; `None` for any other name.
pub fn metric_file_owner(name: &str) -> Option<&str> {
    name.strip_suffix(".parquet")
        .filter(|job| !job.is_empty() && !job.contains('.'))
}

/// `_state/<job>/<source>.json`: the committed state of one source.
pub fn state_path(job: &str, source: &str) -> Path {
    Path::from(format!("{STATE_DIR}/{job}/{source}.json"))
}

/// `_state/<job>`: the folder of a job's state files.
pub fn state_prefix(job: &str) -> Path {
    Path::from(format!("{STATE_DIR}/{job}"))
}

/// The source a state file is named after (`<source>.json` → `source`).
pub fn state_file_source(path: &Path) -> Option<&str> {
    path.filename()?.strip_suffix(".json")
}

/// `_locks/<job>.json`.
pub fn lock_path(job: &str) -> Path {
    Path::from(format!("{LOCKS_DIR}/{job}.json"))
}

/// The job a lock object is named after (`_locks/<job>.json` → `job`).
pub fn lock_job(path: &Path) -> Option<&str> {
    path.filename()?.strip_suffix(".json")
}

/// `_raw/<job>`: the folder of every run the job landed.
pub fn raw_prefix(job: &str) -> Path {
    Path::from(format!("{RAW_DIR}/{job}"))
}

/// `_raw/<job>/<run_id>`: the pages one run landed (as a replay root).
pub fn raw_run_root(job: &str, run_id: &str) -> String {
    format!("{RAW_DIR}/{job}/{run_id}")
}

/// `_raw/<job>/<run_id>/<source>`: the pages one source of one run landed.
pub fn raw_source_root(job: &str, run_id: &str, source: &str) -> String {
    format!("{RAW_DIR}/{job}/{run_id}/{source}")
}

/// The run a replay root of `job` names (`_raw/<job>/<run_id>` → `run_id`); `None` for a
/// root elsewhere (a recording outside the warehouse).
pub fn raw_run_of<'a>(root: &'a str, job: &str) -> Option<&'a str> {
    root.strip_prefix(RAW_DIR)?
        .strip_prefix('/')?
        .strip_prefix(job)?
        .strip_prefix('/')
}

/// The source state recorded beside a source's landed pages (`<source root>/_state.json`).
pub fn recorded_state_path(source_root: &str) -> Path {
    Path::from(format!("{source_root}/_state.json"))
}

/// The clock and window recorded beside a source's landed pages
/// (`<source root>/_clock.json`).
pub fn recorded_clock_path(source_root: &str) -> Path {
    Path::from(format!("{source_root}/_clock.json"))
}

/// Where a run stages a file before the commit publishes it.
pub fn staging_path(job: &str, run_id: &str, final_path: &Path) -> Path {
    Path::from(format!("{STAGING_DIR}/{job}/{run_id}/{final_path}"))
}

/// `_staging/<job>/<run_id>`: everything one run staged.
pub fn staging_run_prefix(job: &str, run_id: &str) -> Path {
    Path::from(format!("{STAGING_DIR}/{job}/{run_id}"))
}

/// `_staging/<job>`: everything every run of the job staged.
pub fn staging_prefix(job: &str) -> Path {
    Path::from(format!("{STAGING_DIR}/{job}"))
}

/// The rejects of one run.
pub fn rejects_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("{REJECTS_TABLE}/{job}.{run_id}.parquet"))
}

/// The `_runs` row of one run.
pub fn runs_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("{RUNS_TABLE}/{job}.{run_id}.parquet"))
}

/// The `_runs` folder, every job's rows.
pub fn runs_prefix() -> Path {
    Path::from(RUNS_TABLE)
}

/// The run id of `job`'s `_runs` file named `name` (`<job>.<run_id>.parquet`); `None` for
/// another job's file (job `a` does not claim `a.b.r1.parquet`, whose run id would hold a
/// dot).
pub fn runs_file_run_id<'a>(name: &'a str, job: &str) -> Option<&'a str> {
    name.strip_prefix(job)?
        .strip_prefix('.')?
        .strip_suffix(".parquet")
        .filter(|run_id| !run_id.is_empty() && !run_id.contains('.'))
}

/// The commit record of one run.
pub fn commit_path(job: &str, run_id: &str) -> Path {
    Path::from(format!("{COMMITS_DIR}/{job}/{run_id}.json"))
}

/// The folder of a job's pending commit records.
pub fn commits_prefix(job: &str) -> Path {
    Path::from(format!("{COMMITS_DIR}/{job}"))
}

/// The folder of every job's pending commit records.
pub fn commits_root() -> Path {
    Path::from(COMMITS_DIR)
}

/// The job a commit record belongs to (`_commits/<job>/<run_id>.json` → `job`).
pub fn commit_record_job(path: &Path) -> Option<&str> {
    let mut parts = path.as_ref().split('/');
    (parts.next()? == COMMITS_DIR).then_some(())?;
    parts.next().filter(|job| !job.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_files_name_their_job_and_source() {
        let path = table_file("spend", Some("date=2026-11-01"), "ads", "google_ads");
        assert_eq!(
            path.as_ref(),
            "spend/date=2026-11-01/ads.google_ads.parquet"
        );
        let name = path.filename().unwrap();
        assert_eq!(table_file_owner(name), Some(("ads", "google_ads")));
        assert!(is_table_file_of(name, "ads"));
        assert!(!is_table_file_of(name, "ad"));
        assert_eq!(table_file_owner("crm.parquet"), None);
        assert_eq!(table_file_owner("a.b.c.parquet"), None);
        assert_eq!(table_file_owner(".x.parquet"), None);
    }

    #[test]
    fn metric_files_name_their_job() {
        let path = metric_file("cpsql_monthly", "company");
        assert_eq!(path.as_ref(), "cpsql_monthly/company.parquet");
        assert_eq!(metric_file_owner(path.filename().unwrap()), Some("company"));
        assert_eq!(metric_file_owner("crm.hubspot.parquet"), None);
    }

    #[test]
    fn runs_files_belong_to_their_job_only() {
        let path = runs_path("a", "20261125T030000Z-000002");
        let name = path.filename().unwrap();
        assert_eq!(runs_file_run_id(name, "a"), Some("20261125T030000Z-000002"));
        assert_eq!(runs_file_run_id(name, "a-b"), None);
        assert_eq!(runs_file_run_id("a.b.r1.parquet", "a"), None);
        assert_eq!(runs_file_run_id("a..parquet", "a"), None);
    }

    #[test]
    fn raw_roots_and_commit_records_parse_back() {
        let root = raw_run_root("j", "r1");
        assert_eq!(root, "_raw/j/r1");
        assert_eq!(raw_run_of(&root, "j"), Some("r1"));
        assert_eq!(raw_run_of(&root, "k"), None);
        assert_eq!(raw_run_of("recorded/j/r1", "j"), None);
        assert_eq!(
            recorded_state_path(&raw_source_root("j", "r1", "hs")).as_ref(),
            "_raw/j/r1/hs/_state.json"
        );
        assert_eq!(commit_record_job(&commit_path("j", "r1")), Some("j"));
        assert_eq!(commit_record_job(&Path::from("_runs/j.r1.parquet")), None);
        assert_eq!(
            state_file_source(&state_path("j", "hubspot")),
            Some("hubspot")
        );
        assert_eq!(lock_job(&lock_path("j")), Some("j"));
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(day_partition(day), "date=2026-11-21");
        assert_eq!(partition_day(&day_partition(day)), Some(day));
        assert_eq!(partition_day("date=soon"), None);
    }

    /// The partition written digit by digit is the one chrono's `Display` writes, for every
    /// day of ten years, the ends of the four-digit years, and years outside them.
    #[test]
    fn a_day_partition_is_chrono_s_own_form() {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let days = (0..3_700).map(|n| start + chrono::Days::new(n));
        let edges = [
            (0, 1, 1),
            (9, 2, 3),
            (999, 12, 31),
            (1000, 1, 1),
            (9999, 12, 31),
        ]
        .into_iter()
        .chain([(10_000, 1, 1), (-1, 6, 15), (-44, 3, 15), (262_000, 7, 4)])
        .map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap());
        for day in days.chain(edges) {
            assert_eq!(day_partition(day), format!("date={day}"), "{day:?}");
        }
    }
}
