//! Operations, through the real binary against the sandbox on 127.0.0.1: the scheduler
//! daemon running the demo job on a schedule, serving `/healthz` and a `/metrics` that the
//! Prometheus client parses, stopping cleanly on SIGTERM; JSON log lines that parse and
//! hold no token; the end-of-run summary agreeing with `_runs`; `funnelhouse runs` (tables,
//! `--json`, the lock's holder); `run --source` and `--full-refresh`; progress lines that say
//! a source is waiting on its rate limit.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The sandbox's credentials: none may appear in any log line.
const TOKENS: [&str; 4] = [
    funnelhouse::sandbox::HUBSPOT_TOKEN,
    funnelhouse::sandbox::GOOGLE_ADS_ACCESS_TOKEN,
    funnelhouse::sandbox::GOOGLE_ADS_DEVELOPER_TOKEN,
    funnelhouse::sandbox::TYPEFORM_TOKEN,
];

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
}

/// The demo job with its warehouse in `dir/warehouse` and, if given, another schedule.
fn write_demo_job(dir: &Path, schedule: Option<&str>) -> (PathBuf, PathBuf) {
    let warehouse = dir.join("warehouse");
    let mut text = std::fs::read_to_string(repo_job("demo.toml"))
        .expect("jobs/demo.toml is readable")
        .replace(
            "warehouse = \"./warehouse\"",
            &format!("warehouse = {:?}", warehouse.display().to_string()),
        );
    if let Some(schedule) = schedule {
        text = text.replace(
            "schedule = \"0 3 * * *\"",
            &format!("schedule = {schedule:?}"),
        );
    }
    let path = dir.join("demo.toml");
    std::fs::write(&path, text).expect("job file written");
    copy_job_assets(dir);
    (path, warehouse)
}

/// Run the binary to completion off the async workers (the sandbox serves on them).
async fn run_binary(args: Vec<String>, env: HashMap<String, String>) -> Output {
    tokio::task::spawn_blocking(move || {
        binary()
            .args(&args)
            .envs(&env)
            .env("FUNNELHOUSE_LOG", "info")
            .output()
            .expect("funnelhouse runs")
    })
    .await
    .expect("blocking task ran")
}

/// Every stderr line parses as a JSON object with a message; none holds a token.
fn assert_json_logs_without_tokens(stderr: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            value["fields"]["message"].is_string(),
            "log line has no message: {line}"
        );
        for token in TOKENS {
            assert!(
                !line.contains(token),
                "a token leaked into the logs: {line}"
            );
        }
        lines.push(value);
    }
    lines
}

/// Parse Prometheus text with the reference client; `name{labels}` → value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("metrics written to the parser");
    let out = child.wait_with_output().expect("parser finishes");
    assert!(
        out.status.success(),
        "Prometheus parser rejected /metrics:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser prints JSON")
}

/// A `funnelhouse schedule` child process with JSON logs collected as they come; killed if the
/// test fails before it stops.
struct SpawnedDaemon {
    child: Option<std::process::Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SpawnedDaemon {
    fn start(job: &Path, flags: &[&str], env: &HashMap<String, String>) -> Self {
        let mut child = binary()
            .args(["--log-format", "json", "schedule"])
            .arg(job)
            .args(flags)
            .envs(env)
            .env("FUNNELHOUSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("daemon starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().expect("lock").push(line);
                }
            })
        };
        SpawnedDaemon {
            child: Some(child),
            lines,
            reader: Some(reader),
        }
    }

    /// The first log line with this message, waiting for it until `deadline`.
    async fn wait_for_line(&self, message: &str, deadline: Instant) -> Value {
        loop {
            let found = self.lines.lock().expect("lock").iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["fields"]["message"] == message).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no `{message}` log line in time: {:?}",
                self.lines.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then wait (at most 30 s) for the exit; its status and all of stderr.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || {
            let stop_deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().expect("wait works") {
                    return Some(status);
                }
                if Instant::now() > stop_deadline {
                    child.kill().ok();
                    child.wait().ok();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .expect("waiter ran")
        .expect("the daemon exits within 30 s of SIGTERM");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        let stderr = self.lines.lock().expect("lock").join("\n");
        (status, stderr)
    }
}

impl Drop for SpawnedDaemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_the_demo_on_its_schedule_serves_metrics_and_stops_on_sigterm() {
    let sandbox = sandbox(300, 50).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().expect("temp dir");
    // Every 2 seconds (6 fields: seconds first), in Berlin time.
    let (job, warehouse) = write_demo_job(dir.path(), Some("*/2 * * * * *"));

    let daemon = SpawnedDaemon::start(
        &job,
        &["--listen", "127.0.0.1:0", "--grace-secs", "20"],
        &env,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = daemon
        .wait_for_line("serving /healthz and /metrics", deadline)
        .await["fields"]["addr"]
        .as_str()
        .expect("the address is logged")
        .to_string();
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);

    // Wait for two committed runs: the schedule fires repeatedly, never two at once.
    let succeeded_key = "funnelhouse_runs_total{job=\"demo\",status=\"succeeded\"}";
    let metrics = loop {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics answers")
            .text()
            .await
            .expect("metrics body");
        let parsed = parse_metrics(&text);
        if parsed.get(succeeded_key).copied().unwrap_or(0.0) >= 2.0 {
            break parsed;
        }
        assert!(
            Instant::now() < deadline,
            "no two successful runs within 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(metrics["funnelhouse_last_success_timestamp_seconds{job=\"demo\"}"] > 1.7e9);
    assert!(
        metrics["funnelhouse_rows_written_total{dataset=\"leads\",job=\"demo\"}"] >= 2.0 * 200.0
    );
    assert!(metrics["funnelhouse_requests_total{job=\"demo\",source=\"hubspot\"}"] >= 2.0);
    assert!(metrics.contains_key("funnelhouse_retries_total{job=\"demo\",source=\"pulse\"}"));
    assert!(metrics.contains_key("funnelhouse_next_fire_timestamp_seconds{job=\"demo\"}"));

    // SIGTERM: the daemon stops firing, lets a run in flight finish, exits 0.
    let (status, stderr) = daemon.terminate().await;
    assert!(status.success(), "daemon exit status {status}");
    let logs = assert_json_logs_without_tokens(&stderr);
    let messages: Vec<&str> = logs
        .iter()
        .filter_map(|v| v["fields"]["message"].as_str())
        .collect();
    for expected in [
        "scheduled",
        "firing",
        "run started",
        "scheduled run finished",
        "shutdown requested",
        "scheduler stopped",
    ] {
        assert!(
            messages.contains(&expected),
            "no `{expected}` log line:\n{stderr}"
        );
    }
    // The start line lists the next fire times in the job's zone.
    let scheduled = logs
        .iter()
        .find(|v| v["fields"]["message"] == "scheduled")
        .expect("scheduled line");
    assert_eq!(scheduled["fields"]["timezone"], "Europe/Berlin");
    assert!(
        scheduled["fields"]["next"]
            .as_str()
            .is_some_and(|n| n.contains("CET") || n.contains("CEST"))
    );
    // Run and source spans carry the job, the run id and the source on every pull line.
    let pulled = logs
        .iter()
        .find(|v| v["fields"]["message"] == "pulling")
        .expect("a pulling line");
    let spans = pulled["spans"].as_array().expect("span list");
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "run" && s["job"] == "demo" && s["run_id"].is_string())
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "source" && s["source"].is_string())
    );

    // What the daemon committed is in `_runs`, each run once.
    let runs = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE status = 'succeeded'",
        table(&warehouse, "_runs")
    ));
    assert!(runs >= 2, "{runs} successful runs in _runs");
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_summary_matches_runs_row_and_json_logs_hold_no_tokens() {
    let sandbox = sandbox(400, 40).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().expect("temp dir");
    let (job, warehouse) = write_demo_job(dir.path(), None);

    let out = run_binary(
        vec![
            "--log-format".into(),
            "json".into(),
            "run".into(),
            job.display().to_string(),
        ],
        env.clone(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "run failed:\n{stdout}\n{stderr}");
    let logs = assert_json_logs_without_tokens(&stderr);
    assert!(
        logs.iter()
            .any(|v| v["fields"]["message"] == "run finished")
    );
    for token in TOKENS {
        assert!(!stdout.contains(token));
    }

    // The summary's rows against the `_runs` row, read by DuckDB: read, written, rejected,
    // requests and retries come first (the elapsed time after them is in human units).
    let row = |name: &str| -> Vec<u64> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` row in:\n{stdout}"))
            .split_whitespace()
            .skip(1)
            .take(5)
            .map(|n| n.parse().expect("a count"))
            .collect()
    };
    // Sizes in human units, not raw byte counts.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("published ") && l.contains("iB, into ")),
        "{stdout}"
    );
    let runs = duckdb(&format!(
        "SELECT leads_read, leads_written, leads_rejected, spend_read, spend_written, spend_rejected, \
         survey_responses_read, survey_responses_written, survey_responses_rejected, requests, retries, \
         costs_read, costs_written, costs_rejected, \
         intent_signals_read, intent_signals_written, intent_signals_rejected FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(runs.len(), 1);
    let r: Vec<u64> = runs[0].iter().map(|v| v.as_u64().expect("count")).collect();
    assert_eq!(&row("leads")[..3], &r[0..3]);
    assert_eq!(&row("spend")[..3], &r[3..6]);
    assert_eq!(&row("survey_responses")[..3], &r[6..9]);
    assert_eq!(&row("costs")[..3], &r[11..14]);
    assert_eq!(&row("intent_signals")[..3], &r[14..17]);
    let total = row("total");
    assert_eq!(total[0], r[0] + r[3] + r[6] + r[11] + r[14]);
    assert_eq!(total[1], r[1] + r[4] + r[7] + r[12] + r[15]);
    assert_eq!(total[2], r[2] + r[5] + r[8] + r[13] + r[16]);
    assert_eq!(&total[3..5], &r[9..11]);
    assert!(r[2] > 0, "malformed records were rejected");

    // `funnelhouse runs` lists that run and a watermark file in the state layout.
    let state = warehouse.join("_state/demo");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(
        state.join("hubspot.json"),
        r#"{"streams": {"contacts": {"watermark": "2026-11-19T23:59:59.999Z"}}}"#,
    )
    .expect("state file");
    // Only the warehouse matters to `runs`: no vendor token is needed.
    let out = run_binary(
        vec!["runs".into(), job.display().to_string()],
        HashMap::new(),
    )
    .await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "runs failed:\n{listed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = duckdb(&format!(
        "SELECT run_id FROM {}",
        table(&warehouse, "_runs")
    ))[0][0]
        .as_str()
        .expect("run id")
        .to_string();
    assert!(listed.contains(&run_id), "{listed}");
    assert!(
        listed.contains(&format!("leads {}/{}/{}", r[0], r[1], r[2])),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["hubspot", "contacts", "2026-11-19T23:59:59.999Z"]),
        "{listed}"
    );
    drop(sandbox);
}

/// Files of a table (or `_runs`) under the warehouse.
fn parquet_files(warehouse: &Path, table: &str) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&warehouse.join(table), &mut n);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_lets_it_commit_within_the_grace_period_or_aborts_it_uncommitted() {
    // Big enough that a run is still pulling when the signal comes.
    let sandbox = sandbox(4000, 0).await;
    let env = env_for(&sandbox);

    // A generous grace period: the run in flight finishes and commits, then the daemon exits 0.
    let dir = tempfile::tempdir().expect("temp dir");
    let (job, warehouse) = write_demo_job(dir.path(), Some("* * * * * *"));
    let daemon = SpawnedDaemon::start(&job, &["--grace-secs", "60"], &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    daemon.wait_for_line("pulling", deadline).await;
    let (status, stderr) = daemon.terminate().await;
    assert!(status.success(), "exit {status}:\n{stderr}");
    assert_json_logs_without_tokens(&stderr);
    let position = |m: &str| {
        stderr
            .find(&format!("\"message\":\"{m}\""))
            .unwrap_or_else(|| panic!("no `{m}` line:\n{stderr}"))
    };
    // The signal came while the run was going, and the run still finished.
    assert!(position("shutdown requested") < position("scheduled run finished"));
    assert!(!stderr.contains("run aborted"), "{stderr}");
    assert_eq!(parquet_files(&warehouse, "_runs"), 1, "{stderr}");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE source_system = 'hubspot'",
            table(&warehouse, "leads")
        )),
        4000
    );

    // No grace: the run is aborted, nothing of it is published, it is recorded as aborted,
    // and the exit code says so.
    let dir = tempfile::tempdir().expect("temp dir");
    let (job, warehouse) = write_demo_job(dir.path(), Some("* * * * * *"));
    let daemon = SpawnedDaemon::start(&job, &["--grace-secs", "0"], &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    daemon.wait_for_line("pulling", deadline).await;
    let (status, stderr) = daemon.terminate().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("run stopped at shutdown before its commit"),
        "{stderr}"
    );
    let statuses = duckdb(&format!(
        "SELECT status FROM {}",
        table(&warehouse, "_runs")
    ));
    assert_eq!(
        statuses,
        vec![vec![serde_json::json!("aborted")]],
        "{stderr}"
    );
    assert!(
        !warehouse.join("_locks/demo.json").exists(),
        "lock released"
    );
    for t in ["leads", "spend", "survey_responses", "_rejects"] {
        assert_eq!(
            parquet_files(&warehouse, t),
            0,
            "{t} was published by an aborted run"
        );
    }
    assert!(
        !warehouse.join("_commits/demo").exists()
            || std::fs::read_dir(warehouse.join("_commits/demo")).map_or(0, |d| d.count()) == 0,
        "an aborted run left a commit record"
    );
    drop(sandbox);
}

/// The newest `_runs` row of the warehouse, by column name.
fn newest_run(warehouse: &Path) -> serde_json::Map<String, Value> {
    const COLUMNS: [&str; 7] = [
        "run_id",
        "status",
        "leads_read",
        "spend_read",
        "survey_responses_read",
        "costs_read",
        "requests",
    ];
    let row = duckdb(&format!(
        "SELECT {} FROM {} ORDER BY finished_at DESC LIMIT 1",
        COLUMNS.join(", "),
        table(warehouse, "_runs")
    ))
    .into_iter()
    .next()
    .expect("a run row");
    COLUMNS.iter().map(|c| c.to_string()).zip(row).collect()
}

/// Every file under `warehouse` whose path contains one of `needles`, with its bytes.
fn files_containing(warehouse: &Path, needles: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    crate::harness::snapshot(warehouse)
        .into_iter()
        .filter(|(p, _)| {
            let p = p.display().to_string();
            needles.iter().any(|n| p.contains(n))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_source_pulls_only_the_named_sources_and_full_refresh_ignores_the_watermark() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().expect("temp dir");
    let warehouse = dir.path().join("warehouse");
    let job = crate::harness::write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let run = |extra: &[&str]| {
        let args: Vec<String> = ["run", &job.display().to_string()]
            .iter()
            .chain(extra)
            .map(|a| a.to_string())
            .collect();
        run_binary(args, env.clone())
    };
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "run failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = run(&[]).await;
    ok(&out);
    let first = newest_run(&warehouse);
    let first_leads = first["leads_read"].as_i64().expect("count");
    assert!(first_leads > 0 && first["spend_read"].as_i64() > Some(0));

    // A typo is a usage error that names the source meant, and runs nothing.
    let out = run(&["--source", "hubspott"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `hubspot`?"), "{stderr}");
    assert!(
        stderr.contains("`google_ads`"),
        "the sources are listed: {stderr}"
    );
    assert_eq!(parquet_files(&warehouse, "_runs"), 1);

    // Only hubspot runs: every file and watermark of the other sources stays byte-identical.
    let others = [
        ".google_ads.",
        ".costs.",
        ".pulse.",
        "/google_ads.json",
        "/costs.json",
        "/pulse.json",
    ];
    let before = files_containing(&warehouse, &others);
    assert!(
        before
            .iter()
            .any(|(p, _)| p.display().to_string().contains("/google_ads.json")),
        "google_ads keeps a watermark: {:?}",
        before.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let out = run(&["--source", "hubspot"]).await;
    ok(&out);
    let only = newest_run(&warehouse);
    assert_eq!(only["status"], "succeeded");
    for dataset in ["spend_read", "survey_responses_read", "costs_read"] {
        assert_eq!(only[dataset].as_i64(), Some(0), "{dataset}: {only:?}");
    }
    assert_eq!(files_containing(&warehouse, &others), before);
    // The metrics were recomputed by this run, over every current table: spend from the
    // google_ads table this run did not touch, eNPS from the survey table.
    let run_id = only["run_id"].as_str().expect("run id").to_string();
    let cpsql = duckdb(&format!(
        "SELECT _run_id, sum(ad_spend) > 0 FROM {} WHERE level = 'total' GROUP BY 1",
        table(&warehouse, "cpsql_monthly")
    ));
    assert_eq!(
        cpsql,
        vec![vec![Value::from(run_id.clone()), Value::from(true)]]
    );
    assert!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE _run_id = '{run_id}' AND respondents > 0",
            table(&warehouse, "enps")
        )) > 0
    );

    // A watermark in the future: an incremental pull finds nothing…
    let state = warehouse.join("_state/demo/hubspot.json");
    let future = "2099-01-01T00:00:00Z";
    let mut held: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("hubspot state")).expect("JSON");
    for stream in held["streams"]
        .as_object_mut()
        .expect("streams")
        .values_mut()
    {
        stream["watermark"] = Value::from(future);
    }
    std::fs::write(&state, serde_json::to_vec(&held).expect("JSON")).expect("state written");
    let out = run(&["--source", "hubspot"]).await;
    ok(&out);
    let stale = newest_run(&warehouse)["leads_read"]
        .as_i64()
        .expect("count");
    assert!(stale < first_leads, "{stale} of {first_leads}");
    // …and `--full-refresh` ignores it: everything is pulled again, and the watermark is
    // rewritten from what was pulled.
    let out = run(&["--source", "hubspot", "--full-refresh"]).await;
    ok(&out);
    let refreshed = newest_run(&warehouse);
    assert_eq!(
        refreshed["leads_read"].as_i64(),
        Some(first_leads),
        "{refreshed:?}"
    );
    let after: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("hubspot state")).expect("JSON");
    let mark = after["streams"]["contacts"]["watermark"]
        .as_str()
        .expect("a contacts watermark");
    assert!(mark.starts_with("20") && mark < future, "{after}");
    assert_eq!(files_containing(&warehouse, &others), before);
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE source_system = 'hubspot'",
            table(&warehouse, "leads")
        )),
        duckdb_count(&format!(
            "SELECT count(DISTINCT lead_id) FROM {} WHERE source_system = 'hubspot'",
            table(&warehouse, "leads")
        ))
    );

    // `runs --json`: one document, newest run first, with the watermarks.
    let json_runs = || {
        run_binary(
            vec!["runs".into(), job.display().to_string(), "--json".into()],
            HashMap::new(),
        )
    };
    let out = json_runs().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value =
        serde_json::from_slice(&out.stdout).expect("runs --json prints one JSON document");
    assert_eq!(doc["job"], "demo");
    assert_eq!(doc["runs"].as_array().map(Vec::len), Some(4));
    assert_eq!(doc["runs"][0]["run_id"], refreshed["run_id"]);
    assert_eq!(doc["runs"][0]["datasets"]["leads"]["read"], first_leads);
    assert!(
        doc["watermarks"]
            .as_array()
            .expect("watermarks")
            .iter()
            .any(|w| w["source"] == "hubspot"
                && w["stream"] == "contacts"
                && w["watermark"] == mark)
    );
    assert_eq!(doc["lock"], Value::Null);

    // While a run holds the job's lock, `runs` names it: host, pid, since, lease.
    let paused = crate::harness::spawn_paused(&env, &job, "write");
    let pid = paused.id();
    let out = json_runs().await;
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_eq!(doc["lock"]["pid"], pid, "{doc}");
    assert_eq!(doc["lock"]["host"], host.trim(), "{doc}");
    assert_eq!(doc["lock"]["expired"], false);
    assert!(doc["lock"]["expires_at"].as_str() > doc["lock"]["acquired_at"].as_str());
    let out = run_binary(
        vec!["runs".into(), job.display().to_string()],
        HashMap::new(),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("lock: held by run ") && text.contains(&format!("pid {pid}, since ")),
        "{text}"
    );
    assert!(text.contains("lease until"), "{text}");
    crate::harness::kill9(paused);
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_say_when_a_source_waits_on_its_rate_limit() {
    let sandbox = sandbox(300, 0).await;
    let mut env = env_for(&sandbox);
    // Progress every half second, and room for one HubSpot request per 0.7 s.
    env.insert(
        funnelhouse::ops::progress::LINE_INTERVAL_ENV.into(),
        "0.5".into(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let warehouse = dir.path().join("warehouse");
    let job = crate::harness::write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "",
        &[
            ("requests_per_window = 190", "requests_per_window = 1"),
            ("window_ms = 10000", "window_ms = 700"),
        ],
    );
    let out = run_binary(
        vec![
            "--log-format".into(),
            "json".into(),
            "run".into(),
            job.display().to_string(),
            "--source".into(),
            "hubspot".into(),
        ],
        env,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let progress: Vec<Value> = assert_json_logs_without_tokens(&stderr)
        .into_iter()
        .filter(|v| v["fields"]["message"] == "progress")
        .collect();
    assert!(
        progress
            .iter()
            .any(|v| v["fields"]["waiting"] == "rate_limit" && v["span"]["source"] == "hubspot"),
        "no progress line says hubspot waits on its rate limit:\n{stderr}"
    );
    let waited = progress
        .iter()
        .filter_map(|v| v["fields"]["rate_limited_secs"].as_f64())
        .fold(0.0, f64::max);
    assert!(
        waited >= 0.5,
        "time spent waiting is counted: {waited}\n{stderr}"
    );
    drop(sandbox);
}
