//! Fan-out / fan-in: pull jobs split by account write one warehouse in parallel, and one
//! metrics step (`funnelhouse metrics`, a `[fan_in]` job) computes the metric tables over
//! all of them — equal to what one job pulling every source writes. A metrics step that
//! overlaps a pull's commit sees that pull's state before or after it, never a mix.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::support::*;

const METRIC_TABLES: [&str; 8] = [
    "lead_stages",
    "lead_stage_transitions",
    "funnel_daily",
    "funnel_cohort_monthly",
    "cpsql_monthly",
    "sal_acceptance_monthly",
    "enps_responses",
    "enps",
];

/// A job file's text cut into its header, its `[[sources]]` blocks and the sections after
/// them.
struct JobText {
    header: String,
    sources: Vec<(String, String)>,
    trailer: String,
}

impl JobText {
    fn parse(text: &str) -> JobText {
        let mut blocks = text.split("\n[[sources]]\n");
        let header = blocks.next().expect("a header").to_string();
        let mut sources = Vec::new();
        let mut trailer = String::new();
        for block in blocks {
            let mut own = String::new();
            let mut rest = None;
            for (i, line) in block.split_inclusive('\n').enumerate() {
                if i > 0 && line.starts_with('[') && !line.starts_with("[sources.") {
                    let offset: usize = block.split_inclusive('\n').take(i).map(str::len).sum();
                    rest = Some(block[offset..].to_string());
                    break;
                }
                own.push_str(line);
            }
            let kind = own
                .lines()
                .find_map(|l| l.strip_prefix("kind = "))
                .map(|k| k.trim().trim_matches('"').to_string())
                .expect("a kind");
            sources.push((kind, own));
            if let Some(rest) = rest {
                trailer = rest;
            }
        }
        JobText {
            header,
            sources,
            trailer,
        }
    }

    /// A job named `name` with the sources whose kind is in `kinds`, `extra` top-level
    /// lines and `sections` appended.
    fn job(&self, name: &str, kinds: &[&str], extra: &str, sections: &str) -> String {
        let mut text = self
            .header
            .replace("name = \"demo\"", &format!("name = \"{name}\"\n{extra}"));
        for (kind, block) in &self.sources {
            if kinds.contains(&kind.as_str()) {
                text.push_str("\n[[sources]]\n");
                text.push_str(block);
            }
        }
        text.push('\n');
        text.push_str(&self.trailer);
        text.push('\n');
        text.push_str(sections);
        text
    }
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("job file written");
    path.display().to_string()
}

/// Rows of a metric table with the lineage columns left out, sorted. A timestamp equal to
/// the row's `_ingested_at` is the run's clock ("first seen in this run": a stage reached
/// with no date from the CRM), so it reads `now`: runs at different instants then compare.
fn metric_contents(warehouse: &Path, name: &str) -> Vec<Vec<Value>> {
    let from = table(warehouse, name);
    let columns = duckdb(&format!(
        "SELECT column_name FROM (DESCRIBE SELECT * FROM {from})"
    ));
    let select: Vec<String> = columns
        .iter()
        .filter_map(|c| c[0].as_str())
        .filter(|c| !["_run_id", "_ingested_at", "run_id"].contains(c))
        .map(|c| {
            format!(
                "CASE WHEN \"{c}\"::VARCHAR = _ingested_at::VARCHAR THEN 'now' ELSE \"{c}\"::VARCHAR END"
            )
        })
        .collect();
    duckdb(&format!(
        "SELECT {} FROM {from} ORDER BY ALL",
        select.join(", ")
    ))
}

/// Rows of a metric table with the lineage columns left out, sorted, values as stored.
fn stored_contents(warehouse: &Path, name: &str) -> Vec<Vec<Value>> {
    duckdb(&format!(
        "SELECT COLUMNS(c -> c NOT IN ('_run_id', '_ingested_at', 'run_id'))::VARCHAR FROM {} ORDER BY ALL",
        table(warehouse, name)
    ))
}

fn all_metrics(warehouse: &Path) -> Vec<Vec<Vec<Value>>> {
    METRIC_TABLES
        .iter()
        .map(|t| metric_contents(warehouse, t))
        .collect()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn(env: &HashMap<String, String>, args: &[&str], extra: &[(&str, &str)]) -> Child {
    binary(env)
        .args(args)
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Wait for `child` (at most 120 s) and return its output.
fn wait(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait works").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Wait until `child`'s stderr says it paused; returns the lines seen, still reading.
fn until_paused(child: &mut Child, what: &str) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tx.send(line).ok();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("funnelhouse: paused at") => return rx,
            Ok(_) => {}
            Err(_) => {
                child.kill().ok();
                panic!("{what} never paused");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pull_jobs_and_one_metrics_step_equal_one_job_pulling_everything() {
    let sandbox = sandbox(300, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let single_wh = dir.path().join("single");
    let fan_wh = dir.path().join("fan");

    // One job pulling every source: the reference.
    let single_dir = dir.path().join("single-job");
    std::fs::create_dir_all(&single_dir).unwrap();
    let single = write_job(&single_dir, &single_wh.display().to_string(), "", &[]);
    let text = JobText::parse(&std::fs::read_to_string(&single).unwrap());

    // The same sources split in two pull jobs writing one warehouse, and the metrics job.
    let fan_dir = dir.path().join("fan-jobs");
    std::fs::create_dir_all(&fan_dir).unwrap();
    copy_job_assets(&fan_dir);
    let fan = JobText {
        header: text.header.replace(
            &format!("warehouse = {:?}", single_wh.display().to_string()),
            &format!("warehouse = {:?}", fan_wh.display().to_string()),
        ),
        sources: text.sources.clone(),
        trailer: text.trailer.clone(),
    };
    let crm = write(
        &fan_dir,
        "crm.toml",
        &fan.job(
            "crm",
            &["hubspot", "typeform"],
            "compute_metrics = false",
            "",
        ),
    );
    let ads = write(
        &fan_dir,
        "ads.toml",
        &fan.job(
            "ads",
            &["google_ads", "costs"],
            "compute_metrics = false",
            "",
        ),
    );
    let company = write(
        &fan_dir,
        "company.toml",
        &fan.job("company", &[], "", "[fan_in]\njobs = [\"crm\", \"ads\"]\n"),
    );
    let validated = run_binary(&env, &["validate", &company]);
    ok(&validated, "validate company");
    assert!(
        String::from_utf8_lossy(&validated.stdout).contains("the metrics step over jobs crm, ads"),
        "{validated:?}"
    );

    // The two pulls in parallel, as two processes.
    let pulls = [
        spawn(&env, &["run", &crm], &[]),
        spawn(&env, &["run", &ads], &[]),
    ];
    for (pull, what) in pulls.into_iter().zip(["crm", "ads"]) {
        ok(&wait(pull, what), what);
    }
    for table in METRIC_TABLES {
        assert!(
            walk(&fan_wh.join(table)).is_empty(),
            "a pull job with compute_metrics = false wrote {table}"
        );
    }
    ok(
        &run_binary(&env, &["metrics", &company, "--fresh-within", "1"]),
        "metrics step",
    );
    ok(
        &run_binary(&env, &["run", &single.display().to_string()]),
        "single job",
    );

    // One set of metric tables, named after the metrics job.
    for table in METRIC_TABLES {
        let files = walk(&fan_wh.join(table));
        assert_eq!(
            files,
            [fan_wh.join(table).join("company.parquet")],
            "{table}: one file, the metrics job's"
        );
    }
    let got = all_metrics(&fan_wh);
    let want = all_metrics(&single_wh);
    for ((name, g), w) in METRIC_TABLES.iter().zip(&got).zip(&want) {
        assert!(
            !w.is_empty(),
            "{name} is empty in the single job's warehouse"
        );
        assert_eq!(g.len(), w.len(), "{name}: row count");
        let diff: Vec<_> = g.iter().filter(|r| !w.contains(r)).take(2).collect();
        assert!(diff.is_empty(), "{name}: rows differ, e.g. {diff:?}");
    }
    // The input tables are the same union too.
    assert_same_contents(&all_contents(&fan_wh), &all_contents(&single_wh), "fan-out");

    // The metrics step is a run of its own, in _runs, and leaves nothing behind.
    let runs = duckdb(&format!(
        "SELECT job, status FROM {} ORDER BY job",
        table(&fan_wh, "_runs")
    ));
    let jobs: Vec<String> = runs
        .iter()
        .map(|r| format!("{}:{}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        jobs,
        ["ads:succeeded", "company:succeeded", "crm:succeeded"]
    );
    assert_clean(&fan_wh);

    // A freshness window the pulls miss fails the step and writes nothing.
    let before = snapshot(&fan_wh.join("cpsql_monthly"));
    let stale = fan.job(
        "company",
        &[],
        "",
        "[fan_in]\njobs = [\"crm\", \"ads\", \"eu\"]\n",
    );
    let stale = write(&fan_dir, "company-eu.toml", &stale);
    let out = run_binary(&env, &["metrics", &stale, "--fresh-within", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`eu` has no succeeded run"),
        "the stale job is named: {stderr}"
    );
    assert_eq!(snapshot(&fan_wh.join("cpsql_monthly")), before);
}

/// `costs` rows of `demo-costs.csv` in two files, amounts times `factor`.
fn write_costs(dir: &Path, factor: u32) {
    let text = std::fs::read_to_string(dir.join("demo-costs.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (rest, amount) = l.rsplit_once(',').unwrap();
            let amount: f64 = amount.parse().unwrap();
            format!("{rest},{:.2}", amount * f64::from(factor))
        })
        .collect();
    let (a, b) = rows.split_at(rows.len() / 2);
    for (file, part) in [("costs-a.csv", a), ("costs-b.csv", b)] {
        let mut body = header.clone();
        for row in part {
            body.push('\n');
            body.push_str(row);
        }
        body.push('\n');
        std::fs::write(dir.join(file), body).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_step_overlapping_a_pull_commit_sees_its_before_or_after_never_a_mix() {
    let sandbox = sandbox(100, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let base = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let text = JobText::parse(&std::fs::read_to_string(&base).unwrap());
    // The ads job's commit replaces two costs files; a reader that took one before and
    // one after it would see a total no committed state ever had.
    let costs = "name = \"costs_a\"\nkind = \"costs\"\nurl = \"costs-a.csv\"\n\n[[sources]]\nname = \"costs_b\"\nkind = \"costs\"\nurl = \"costs-b.csv\"\n";
    let ads_text = JobText {
        header: text.header.clone(),
        sources: vec![("costs".into(), costs.into())],
        trailer: text.trailer.clone(),
    };
    let ads = write(
        dir.path(),
        "ads.toml",
        &ads_text.job("ads", &["costs"], "compute_metrics = false", ""),
    );
    let company = write(
        dir.path(),
        "company.toml",
        &ads_text.job("company", &[], "", "[fan_in]\njobs = [\"ads\"]\n"),
    );
    let cpsql = || metric_contents(&warehouse, "cpsql_monthly");
    let metrics = || ok(&run_binary(&env, &["metrics", &company]), "metrics step");

    write_costs(dir.path(), 1);
    ok(&run_binary(&env, &["run", &ads]), "ads pull");
    metrics();
    let first = cpsql();

    // 1. The pull is halfway through publishing (one costs file renamed, one not) when the
    //    metrics step starts: it waits for the publish, then reads the after state.
    write_costs(dir.path(), 2);
    let resume = dir.path().join("resume-pull");
    let resume_arg = resume.display().to_string();
    let mut pull = spawn(
        &env,
        &["run", &ads],
        &[
            (funnelhouse::pause::PAUSE_ENV, "publish"),
            (funnelhouse::pause::RESUME_ENV, &resume_arg),
        ],
    );
    let _pull_lines = until_paused(&mut pull, "the ads pull");
    let mut step = spawn(&env, &["metrics", &company], &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let waiting = step.try_wait().unwrap().is_none();
    if !waiting {
        // Leave no paused pull behind for an hour.
        pull.kill().ok();
    }
    assert!(
        waiting,
        "the metrics step must wait for a publish in flight, not read half of it"
    );
    std::fs::write(&resume, b"").unwrap();
    ok(&wait(pull, "ads pull"), "ads pull");
    ok(&wait(step, "metrics step"), "metrics step");
    let during_publish = cpsql();
    metrics();
    let second = cpsql();
    assert_ne!(second, first, "the second pull changed the costs");
    assert_eq!(during_publish, second, "it read the pull's after state");

    // 2. The pull commits while the metrics step is between the two costs files: the step
    //    notices and starts over from the after state.
    write_costs(dir.path(), 3);
    let resume = dir.path().join("resume-step");
    let resume_arg = resume.display().to_string();
    let mut step = spawn(
        &env,
        &["metrics", &company],
        &[
            (funnelhouse::pause::PAUSE_ENV, "read"),
            (funnelhouse::pause::RESUME_ENV, &resume_arg),
        ],
    );
    let lines = until_paused(&mut step, "the metrics step");
    let pulled = run_binary(&env, &["run", &ads]);
    std::fs::write(&resume, b"").unwrap();
    ok(&pulled, "ads pull");
    ok(&wait(step, "metrics step"), "metrics step");
    let during_read = cpsql();
    metrics();
    let third = cpsql();
    assert_ne!(third, second);
    assert_ne!(during_read, second, "not the before state either");
    assert_eq!(
        during_read, third,
        "it read the pull's after state, not a mix"
    );
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(
        logged.iter().any(|l| l.contains("starting over")),
        "the step noticed the commit: {logged:?}"
    );
    assert_clean(&warehouse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_metrics_step_migrates_a_jobs_own_metric_tables() {
    let sandbox = sandbox(100, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    // A job that computed its own metric tables (`<table>/legacy.parquet`) before the
    // warehouse moved to a fan-out.
    let base = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let text = JobText::parse(&std::fs::read_to_string(&base).unwrap());
    let kinds: Vec<&str> = text.sources.iter().map(|(k, _)| k.as_str()).collect();
    let legacy = write(
        dir.path(),
        "legacy.toml",
        &text.job("legacy", &kinds, "", ""),
    );
    ok(&run_binary(&env, &["run", &legacy]), "legacy job");
    let stored = |w: &Path| -> Vec<_> {
        METRIC_TABLES
            .iter()
            .map(|t| stored_contents(w, t))
            .collect()
    };
    let before = stored(&warehouse);

    let company = write(
        dir.path(),
        "company.toml",
        &text.job("company", &[], "", "[fan_in]\njobs = [\"legacy\"]\n"),
    );
    let out = run_binary(&env, &["metrics", &company]);
    ok(&out, "metrics step");
    for table in METRIC_TABLES {
        assert_eq!(
            walk(&warehouse.join(table)),
            [warehouse.join(table).join("company.parquet")],
            "{table}: the per-job file is replaced by the metrics job's"
        );
    }
    // The stage history (became_*_at, earlier transitions) is carried over: the same
    // contents, down to the dates the old job first saw each stage.
    for ((name, got), want) in METRIC_TABLES.iter().zip(stored(&warehouse)).zip(&before) {
        assert_eq!(got.len(), want.len(), "{name}: row count");
        let diff: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(2).collect();
        assert!(
            diff.is_empty(),
            "{name}: rows differ after migrating, e.g. {diff:?}"
        );
    }
    let warnings = duckdb(&format!(
        "SELECT warnings FROM {} WHERE job = 'company'",
        table(&warehouse, "_runs")
    ));
    assert!(
        warnings[0][0]
            .as_str()
            .is_some_and(|w| w.contains("legacy") && w.contains("compute_metrics = false")),
        "{warnings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_step_rolls_forward_a_killed_pulls_half_publish_before_reading() {
    let sandbox = sandbox(100, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let base = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let text = JobText::parse(&std::fs::read_to_string(&base).unwrap());
    let costs = "name = \"costs_a\"\nkind = \"costs\"\nurl = \"costs-a.csv\"\n\n[[sources]]\nname = \"costs_b\"\nkind = \"costs\"\nurl = \"costs-b.csv\"\n";
    let ads_text = JobText {
        header: text.header.clone(),
        sources: vec![("costs".into(), costs.into())],
        trailer: text.trailer.clone(),
    };
    let ads_path = dir.path().join("ads.toml");
    let ads = write(
        dir.path(),
        "ads.toml",
        &ads_text.job(
            "ads",
            &["costs"],
            "compute_metrics = false\nlock_lease_secs = 1",
            "",
        ),
    );
    let company = write(
        dir.path(),
        "company.toml",
        &ads_text.job("company", &[], "", "[fan_in]\njobs = [\"ads\"]\n"),
    );
    let cpsql = || metric_contents(&warehouse, "cpsql_monthly");
    let metrics = || ok(&run_binary(&env, &["metrics", &company]), "metrics step");
    write_costs(dir.path(), 1);
    ok(&run_binary(&env, &["run", &ads]), "ads pull");
    metrics();
    let first = cpsql();

    // Killed halfway through publishing: one costs file new, one old, the record left.
    write_costs(dir.path(), 2);
    kill9(spawn_paused(&env, &ads_path, "publish"));
    assert!(!walk(&warehouse.join("_commits")).is_empty());
    std::thread::sleep(Duration::from_millis(1200));
    metrics();
    assert!(
        walk(&warehouse.join("_commits")).is_empty(),
        "the metrics step finished the dead pull's publish under its lock"
    );
    let rolled = cpsql();
    assert_ne!(rolled, first, "it read the pull's after state");
    // The pull job itself is unharmed: its next run commits and agrees.
    ok(&run_binary(&env, &["run", &ads]), "ads pull after the kill");
    metrics();
    assert_eq!(cpsql(), rolled);
    assert_clean(&warehouse);
}
