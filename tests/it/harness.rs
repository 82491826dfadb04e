//! Helpers for the guarantee tests: job files on disk (for the binary), the binary itself,
//! table contents without lineage columns, `_runs` accounting, and walking the warehouse.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{copy_job_assets, duckdb, repo_job, table};

/// The canonical tables a demo run fills.
pub(crate) const TABLES: [&str; 3] = ["leads", "spend", "survey_responses"];

/// `jobs/demo.toml` with its warehouse moved to `warehouse`, `header` lines added to the
/// top level, and each `(from, to)` text replacement applied; written into `dir`.
pub(crate) fn write_job(
    dir: &Path,
    warehouse: &str,
    header: &str,
    replacements: &[(&str, &str)],
) -> PathBuf {
    let mut text = only_core_sources(
        &std::fs::read_to_string(repo_job("demo.toml")).expect("demo job readable"),
    );
    text = text.replace(
        "warehouse = \"./warehouse\"",
        &format!("warehouse = {warehouse:?}\n{header}"),
    );
    for (from, to) in replacements {
        assert!(text.contains(from), "demo.toml has `{from}`");
        text = text.replace(from, to);
    }
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("job file written");
    copy_job_assets(dir);
    path
}

/// The job as the library sees it, with `env` as its environment.
pub(crate) fn load(path: &Path, env: &HashMap<String, String>) -> funnelhouse::config::JobConfig {
    let lookup = |name: &str| env.get(name).cloned();
    funnelhouse::config::load_job_with(path, &lookup).expect("job file is valid")
}

/// The `funnelhouse` binary with exactly `env` (plus PATH) as its environment.
pub(crate) fn binary(env: &HashMap<String, String>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_funnelhouse"));
    cmd.env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd
}

/// Run the binary to the end, bounded in time.
pub(crate) fn run_binary(env: &HashMap<String, String>, args: &[&str]) -> Output {
    let mut child = binary(env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait works").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("funnelhouse {args:?} ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `funnelhouse run job` paused at `point` (see `funnelhouse::pause`); returns once
/// it has reached the point.
pub(crate) fn spawn_paused(env: &HashMap<String, String>, job: &Path, point: &str) -> Child {
    let mut child = binary(env)
        .args(["run", &job.display().to_string()])
        .env(funnelhouse::pause::PAUSE_ENV, point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("funnelhouse: paused at") {
                tx.send(Ok(())).ok();
            }
            seen.push(line);
        }
        tx.send(Err(seen.join("\n"))).ok();
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => child,
        other => {
            child.kill().ok();
            panic!("run never reached pause point `{point}`: {other:?}");
        }
    }
}

/// As [`spawn_paused`] for any command line (`run JOB`, `schedule JOB …`); also returns the
/// process's whole stderr, delivered once it has exited.
pub(crate) fn spawn_paused_logged(
    env: &HashMap<String, String>,
    args: &[&str],
    point: &str,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = binary(env)
        .args(args)
        .env(funnelhouse::pause::PAUSE_ENV, point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (paused_tx, paused) = std::sync::mpsc::channel();
    let (log_tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("funnelhouse: paused at") {
                paused_tx.send(()).ok();
            }
            seen.push(line);
        }
        log_tx.send(seen.join("\n")).ok();
    });
    if paused.recv_timeout(Duration::from_secs(60)).is_err() {
        child.kill().ok();
        let seen = log.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        panic!("{args:?} never reached pause point `{point}`: {seen}");
    }
    (child, log)
}

/// Send `signal` (`TERM`, `INT`) to `child` and wait, at most 60 s, for it to exit.
pub(crate) fn signal_and_wait(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -s {signal} failed");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("still running 60 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every run id that has a file in `folder` (`_runs`, `_rejects`: `<job>.<run_id>.parquet`).
pub(crate) fn run_ids_in(warehouse: &Path, folder: &str) -> std::collections::BTreeSet<String> {
    walk(&warehouse.join(folder))
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            Some(
                name.split_once('.')?
                    .1
                    .strip_suffix(".parquet")?
                    .to_string(),
            )
        })
        .collect()
}

/// Nothing a killed run leaves stays after the next start: no temporary file (`…#1`)
/// anywhere, and no `_raw/` run folder or `_rejects` file of a run without a `_runs` row.
pub(crate) fn assert_no_leftovers(warehouse: &Path) {
    let temporary: Vec<_> = walk(warehouse)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('#'))
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
    let recorded = run_ids_in(warehouse, "_runs");
    let raw: Vec<String> = std::fs::read_dir(warehouse.join("_raw/demo"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let unrecorded: Vec<_> = raw.iter().filter(|r| !recorded.contains(*r)).collect();
    assert!(
        unrecorded.is_empty(),
        "_raw/ folders of runs that never committed: {unrecorded:?}"
    );
    let rejects = run_ids_in(warehouse, "_rejects");
    let unrecorded: Vec<_> = rejects.difference(&recorded).collect();
    assert!(
        unrecorded.is_empty(),
        "_rejects files of runs with no _runs row: {unrecorded:?}"
    );
}

/// `kill -9` and reap.
pub(crate) fn kill9(mut child: Child) {
    child.kill().expect("SIGKILL sent");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "killed run must not exit cleanly");
}

/// Every row of a table without the lineage columns (`_run_id`, `_ingested_at`), sorted:
/// what "the same table contents" means across runs.
pub(crate) fn contents(warehouse: &Path, name: &str) -> Vec<Vec<Value>> {
    duckdb(&format!(
        "SELECT COLUMNS(* EXCLUDE (_run_id, _ingested_at))::VARCHAR FROM {} ORDER BY ALL",
        table(warehouse, name)
    ))
}

/// The contents of every canonical table.
pub(crate) fn all_contents(warehouse: &Path) -> Vec<Vec<Vec<Value>>> {
    TABLES.iter().map(|t| contents(warehouse, t)).collect()
}

/// Assert two `all_contents` are equal, naming the table and a few rows that differ.
pub(crate) fn assert_same_contents(got: &[Vec<Vec<Value>>], want: &[Vec<Vec<Value>>], what: &str) {
    for (name, (g, w)) in TABLES.iter().zip(got.iter().zip(want)) {
        let extra: Vec<_> = g.iter().filter(|r| !w.contains(r)).collect();
        let missing: Vec<_> = w.iter().filter(|r| !g.contains(r)).collect();
        // Where the differences are, by the first two columns (day and source for spend).
        let by_start = |rows: &[&Vec<Value>]| {
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for r in rows {
                *counts
                    .entry(format!("{:?}", &r[..r.len().min(2)]))
                    .or_default() += 1;
            }
            counts
        };
        assert!(
            extra.is_empty() && missing.is_empty() && g.len() == w.len(),
            "{what}: {name} has {} rows, expected {}; unexpected {:?} by {:?}; missing {:?} by {:?}",
            g.len(),
            w.len(),
            &extra[..extra.len().min(2)],
            by_start(&extra),
            &missing[..missing.len().min(2)],
            by_start(&missing),
        );
    }
}

/// `_runs` adds up for every run: read = written + rejected, per dataset. Returns the rows
/// as `(run_id, status, error)`.
pub(crate) fn assert_runs_add_up(warehouse: &Path) -> Vec<(String, String, Option<String>)> {
    let rows = duckdb(&format!(
        "SELECT run_id, status, error,
                leads_read - leads_written - leads_rejected,
                spend_read - spend_written - spend_rejected,
                survey_responses_read - survey_responses_written - survey_responses_rejected
         FROM {} ORDER BY run_id",
        table(warehouse, "_runs")
    ));
    rows.into_iter()
        .map(|r| {
            for (i, dataset) in TABLES.iter().enumerate() {
                assert_eq!(
                    r[3 + i].as_i64(),
                    Some(0),
                    "run {}: {dataset} read != written + rejected",
                    r[0]
                );
            }
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_str().unwrap_or_default().to_string(),
                r[2].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Every file under `dir`.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
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
    out.sort();
    out
}

/// Path and bytes of every file under `dir`, for "touched nothing" checks.
pub(crate) fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

/// No commit record, staging file or lock left behind.
pub(crate) fn assert_clean(warehouse: &Path) {
    for leftover in ["_staging", "_commits", "_locks"] {
        let files = walk(&warehouse.join(leftover));
        assert!(files.is_empty(), "{leftover} left behind: {files:?}");
    }
}

/// The demo job with HubSpot, Google Ads, Typeform and the costs file: the guarantee tests
/// check tables against those sources' totals; the other connectors have their own tests.
fn only_core_sources(text: &str) -> String {
    const OTHERS: [&str; 4] = ["salesforce", "surveymonkey", "meta_ads", "linkedin_ads"];
    let mut out = String::new();
    for (i, block) in text.split("\n[[sources]]\n").enumerate() {
        if i == 0 {
            out.push_str(block);
            continue;
        }
        let kind = block
            .lines()
            .find_map(|l| l.strip_prefix("kind = "))
            .map(|k| k.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        if OTHERS.contains(&kind.as_str()) {
            // Keep what follows the source's own keys (sections like [stages] come after
            // the last source).
            let mut offset = 0;
            for line in block.split_inclusive('\n') {
                if line.starts_with('[') && !line.starts_with("[sources.") {
                    out.push('\n');
                    out.push_str(&block[offset..]);
                    break;
                }
                offset += line.len();
            }
            continue;
        }
        out.push_str("\n[[sources]]\n");
        // The sandbox's whole spend history on the first run.
        out.push_str(&block.replace("initial_days = 90", "initial_days = 120"));
    }
    out
}
