//! The run report: a run writes `_reports/<job>/<run_id>.html` and `latest.html`; headless
//! Chromium renders it with no console message into a PNG that is not blank and shows the
//! charts; the headline figures in the page the browser parsed equal the tables read with
//! DuckDB; suppressed eNPS groups show as suppressed; `funnelhouse report` builds it again;
//! a report that cannot be written leaves the run succeeded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::run_binary;
use crate::support::*;

/// The headless browser `./scripts/test` installs (Debian's `chromium`).
fn chromium() -> PathBuf {
    let path = std::env::var("FUNNELHOUSE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium is needed: run `./scripts/test` (it installs Debian's chromium), or set FUNNELHOUSE_TEST_CHROMIUM"
    );
    path
}

/// What a Chromium run printed.
struct Browsed {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Run headless Chromium on `page` with `args`, bounded in time. Its output goes to files
/// (a DOM dump outgrows a pipe's buffer while nobody reads it).
fn browse(profile: &Path, page: &Path, args: &[&str]) -> Browsed {
    let url = url::Url::from_file_path(page).expect("absolute path");
    let out_path = profile.with_extension("stdout");
    let err_path = profile.with_extension("stderr");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let browsed = Browsed {
        stdout: std::fs::read(&out_path).expect("stdout read"),
        stderr: std::fs::read(&err_path).expect("stderr read"),
    };
    assert!(
        status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&browsed.stderr)
    );
    browsed
}

/// Messages the page itself logged (a resource it failed to load, a script error…).
fn console_messages(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// `(attribute value)` of every `name="…"` in elements carrying `data-metric="metric"`.
fn metric_attrs(dom: &str, metric: &str) -> Vec<std::collections::HashMap<String, String>> {
    dom.split('<')
        .filter(|tag| tag.contains(&format!("data-metric=\"{metric}\"")))
        .map(|tag| {
            let tag = tag.split('>').next().unwrap_or_default();
            tag.split("\" ")
                .filter_map(|kv| {
                    let (k, v) = kv.split_once("=\"")?;
                    let k = k.split_whitespace().last()?;
                    Some((k.to_string(), v.trim_end_matches('"').to_string()))
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_report_renders_in_a_browser_and_shows_the_tables_numbers() {
    let sandbox = sandbox(1500, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("ware house ü");
    let env = env_for(&sandbox);
    let job = demo_job_into(&warehouse, &env);
    let lookup = |name: &str| env.get(name).cloned();
    let run = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("run completes");
    assert!(run.succeeded(), "{run:#?}");

    let page = warehouse.join(format!("_reports/demo/{}.html", run.run_id));
    let html = std::fs::read_to_string(&page).expect("the run wrote its report");
    let latest = std::fs::read_to_string(warehouse.join("_reports/demo/latest.html"))
        .expect("and latest.html");
    assert_eq!(html, latest, "latest.html is the newest run's report");
    for banned in ["<script", "<link", "@import", "url(", " src=", "href="] {
        assert!(
            !html.contains(banned),
            "`{banned}`: the page must need nothing else"
        );
    }

    // The browser: no console message, a picture that is not blank and has the charts' blue.
    let profile = dir.path().join("chromium-profile");
    let png = dir.path().join("report.png");
    let shot = browse(
        &profile,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,2400",
        ],
    );
    assert_eq!(console_messages(&shot.stderr), Vec::<String>::new());
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let step = info.color_type.samples();
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    for px in pixels[..info.buffer_size()].chunks(step) {
        *counts.entry([px[0], px[1], px[2]]).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let top = counts.values().max().copied().unwrap_or(0);
    assert!(
        (top as f64) < 0.9 * total as f64,
        "blank page: one colour covers {top} of {total} pixels"
    );
    let blue = counts
        .iter()
        .filter(|(c, _)| c[0] < 0x40 && (0x50..0x80).contains(&c[1]) && c[2] > 0xD0)
        .map(|(_, n)| n)
        .sum::<usize>();
    assert!(
        blue > 2_000,
        "the charts' bars are drawn ({blue} blue pixels)"
    );

    // The numbers in the page as the browser parsed it equal the tables'.
    let dom = browse(&profile, &page, &["--dump-dom"]);
    assert_eq!(console_messages(&dom.stderr), Vec::<String>::new());
    let dom = String::from_utf8(dom.stdout).expect("UTF-8 DOM");
    let cpsql = metric_attrs(&dom, "cpsql");
    assert_eq!(cpsql.len(), 1, "one CPSQL headline");
    let want = duckdb(&format!(
        "SELECT strftime(month, '%Y-%m'), cpsql::VARCHAR FROM {}
         WHERE level = 'total' AND complete AND month < DATE '{}'
         ORDER BY month DESC LIMIT 1",
        table(&warehouse, "cpsql_monthly"),
        today().format("%Y-%m-01")
    ));
    assert_eq!(cpsql[0]["data-month"], want[0][0].as_str().expect("month"));
    assert_eq!(
        cpsql[0]["data-value"],
        want[0][1].as_str().expect("the demo's month has a CPSQL"),
        "latest complete month's CPSQL"
    );

    let enps = metric_attrs(&dom, "enps");
    let want = duckdb(&format!(
        "SELECT survey_id, arg_max(period, period_start), arg_max(enps, period_start)
         FROM {} WHERE dimension = 'overall' AND NOT suppressed AND enps IS NOT NULL
         GROUP BY survey_id ORDER BY survey_id",
        table(&warehouse, "enps")
    ));
    assert!(!want.is_empty(), "the demo has eNPS");
    assert_eq!(enps.len(), want.len(), "one eNPS headline per survey");
    for row in &want {
        let survey = row[0].as_str().expect("survey");
        let shown = enps
            .iter()
            .find(|a| a["data-survey"] == survey)
            .unwrap_or_else(|| panic!("no eNPS headline for {survey}"));
        assert_eq!(shown["data-period"], row[1].as_str().expect("period"));
        let value: f64 = shown["data-value"].parse().expect("a number");
        assert_eq!(Some(value), row[2].as_f64(), "eNPS of {survey}");
    }

    // Suppressed groups: shown as suppressed, as many as the table has on the page's rows
    // (every overall period, and each survey's groups of its latest period).
    let suppressed = duckdb_count(&format!(
        "WITH e AS (SELECT * FROM {}),
              latest AS (SELECT survey_id, max(period_start) AS p FROM e
                         WHERE dimension <> 'overall' GROUP BY survey_id)
         SELECT count(*) FROM e LEFT JOIN latest USING (survey_id)
         WHERE suppressed AND (dimension = 'overall' OR period_start = latest.p)",
        table(&warehouse, "enps")
    ));
    assert!(suppressed > 0, "the demo has suppressed groups");
    assert_eq!(
        dom.matches("data-suppressed=\"true\"").count() as i64,
        suppressed
    );

    // The run's rejects are in its health section.
    let rejected = duckdb_count(&format!(
        "SELECT count(*) FROM {}",
        table(&warehouse, "_rejects")
    ));
    assert!(rejected > 0, "malformed records were rejected");
    assert!(dom.contains("Top reject reasons") && dom.contains("✓ committed"));

    // `funnelhouse report` builds it again, from the warehouse alone.
    let job_file = dir.path().join("report-job.toml");
    std::fs::write(
        &job_file,
        format!(
            "name = \"demo\"\nwarehouse = {:?}\ntimezone = \"Europe/Berlin\"\nreporting_currency = \"EUR\"\n",
            warehouse.display().to_string()
        ),
    )
    .expect("job file written");
    let out_file = dir.path().join("again.html");
    let out = run_binary(
        &env,
        &[
            "report",
            &job_file.display().to_string(),
            "--run",
            &run.run_id,
            "--out",
            &out_file.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = std::fs::read_to_string(&out_file).expect("--out written");
    assert_eq!(metric_attrs(&again, "cpsql"), metric_attrs(&html, "cpsql"));
    assert_eq!(metric_attrs(&again, "enps"), metric_attrs(&html, "enps"));
    let out = run_binary(&env, &["report", &job_file.display().to_string()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string(),
        "without --out it rewrites the newest run's report in the warehouse and says where"
    );
    let out = run_binary(
        &env,
        &["report", &job_file.display().to_string(), "--run", "nope"],
    );
    assert_eq!(out.status.code(), Some(1), "an unknown run is an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_leaves_the_run_succeeded() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("wh");
    std::fs::create_dir_all(&warehouse).unwrap();
    // A file where the reports' folder would go: every report write fails.
    std::fs::write(warehouse.join("_reports"), "in the way").unwrap();
    let env = env_for(&sandbox);
    let job = demo_job_into(&warehouse, &env);
    let lookup = |name: &str| env.get(name).cloned();
    let run = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .expect("the run commits whatever happens to its report");
    assert!(run.succeeded(), "{run:#?}");
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE status = 'succeeded'",
            table(&warehouse, "_runs")
        )),
        1
    );
}
