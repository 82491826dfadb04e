//! `funnelhouse sandbox` and `funnelhouse demo`: serve the vendor imitation, and the
//! one-command tour that runs `jobs/demo.toml` against it into `./warehouse`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{EXIT_RUN_FAILED, print_report, report_error};
use crate::config::{load_job_with, process_env};
use crate::normalize::DEMO_HASH_KEY;
use crate::pipeline::{Replay, RunOptions, run_job, run_job_in};
use crate::sandbox::{self, SandboxData, SandboxOptions};
use crate::sink::Warehouse;

/// The variables a job file uses to reach the sandbox, with the sandbox's values.
pub fn sandbox_env(base_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("FUNNELHOUSE_SANDBOX_URL", base_url.to_string()),
        ("HUBSPOT_TOKEN", sandbox::HUBSPOT_TOKEN.to_string()),
        (
            "GOOGLE_ADS_ACCESS_TOKEN",
            sandbox::GOOGLE_ADS_ACCESS_TOKEN.to_string(),
        ),
        (
            "GOOGLE_ADS_DEVELOPER_TOKEN",
            sandbox::GOOGLE_ADS_DEVELOPER_TOKEN.to_string(),
        ),
        ("TYPEFORM_TOKEN", sandbox::TYPEFORM_TOKEN.to_string()),
        (
            "SURVEYMONKEY_TOKEN",
            sandbox::SURVEYMONKEY_TOKEN.to_string(),
        ),
        (
            "SALESFORCE_CLIENT_ID",
            sandbox::SALESFORCE_CLIENT_ID.to_string(),
        ),
        (
            "SALESFORCE_CLIENT_SECRET",
            sandbox::SALESFORCE_CLIENT_SECRET.to_string(),
        ),
        (
            "SALESFORCE_REFRESH_TOKEN",
            sandbox::SALESFORCE_REFRESH_TOKEN.to_string(),
        ),
        (
            "GOOGLE_ADS_REFRESH_TOKEN",
            sandbox::GOOGLE_ADS_REFRESH_TOKEN.to_string(),
        ),
        (
            "GOOGLE_ADS_CLIENT_ID",
            sandbox::GOOGLE_ADS_CLIENT_ID.to_string(),
        ),
        (
            "GOOGLE_ADS_CLIENT_SECRET",
            sandbox::GOOGLE_ADS_CLIENT_SECRET.to_string(),
        ),
        ("META_ACCESS_TOKEN", sandbox::META_ACCESS_TOKEN.to_string()),
        (
            "LINKEDIN_ACCESS_TOKEN",
            sandbox::LINKEDIN_ACCESS_TOKEN.to_string(),
        ),
        (
            "LINKEDIN_REFRESH_TOKEN",
            sandbox::LINKEDIN_REFRESH_TOKEN.to_string(),
        ),
        (
            "LINKEDIN_CLIENT_ID",
            sandbox::LINKEDIN_CLIENT_ID.to_string(),
        ),
        (
            "LINKEDIN_CLIENT_SECRET",
            sandbox::LINKEDIN_CLIENT_SECRET.to_string(),
        ),
    ]
}

/// Serve the sandbox on 127.0.0.1 until Ctrl-C.
pub async fn sandbox_command(
    port: u16,
    seed: u64,
    scale: usize,
    malformed_every: usize,
    faults: Option<sandbox::FaultProfile>,
) -> ExitCode {
    let options = SandboxOptions {
        seed,
        scale,
        today: chrono::Utc::now().date_naive(),
        malformed_every,
    };
    let data = std::sync::Arc::new(SandboxData::generate(&options));
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let totals = data.totals();
    println!(
        "funnelhouse sandbox on http://{addr} (seed {seed}, scale {scale}): {} contacts, {} spend rows, {} survey responses",
        totals.contacts, totals.spend_rows, totals.survey_responses
    );
    println!("# point a job at it (these are sandbox-only credentials):");
    for (name, value) in sandbox_env(&format!("http://{addr}")) {
        println!("export {name}={value}");
    }
    println!("export FUNNELHOUSE_HASH_KEY={DEMO_HASH_KEY}");
    let serving = async {
        match faults {
            Some(profile) => {
                println!("# faults injected: {profile:?}");
                sandbox::serve_with_faults(listener, data, sandbox::Faults::new(profile)).await
            }
            None => sandbox::serve(listener, data).await,
        }
    };
    tokio::select! {
        served = serving => {
            if let Err(e) = served {
                eprintln!("error: sandbox stopped: {e}");
                return ExitCode::from(EXIT_RUN_FAILED);
            }
            ExitCode::SUCCESS
        }
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
    }
}

/// Start the sandbox in-process, run the demo job into `./warehouse`, print what was written.
pub async fn demo_command(job_path: &Path, scale: usize) -> ExitCode {
    let options = SandboxOptions {
        seed: 42,
        scale,
        today: chrono::Utc::now().date_naive(),
        malformed_every: 500,
    };
    let running = match sandbox::start(options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the sandbox on 127.0.0.1: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let mut overrides: HashMap<&str, String> =
        sandbox_env(&running.base_url()).into_iter().collect();
    if process_env("FUNNELHOUSE_HASH_KEY").is_none() {
        tracing::warn!("FUNNELHOUSE_HASH_KEY is not set: the demo uses the documented demo key");
        overrides.insert("FUNNELHOUSE_HASH_KEY", DEMO_HASH_KEY.to_string());
    }
    let env = move |name: &str| overrides.get(name).cloned().or_else(|| process_env(name));
    let job = match load_job_with(job_path, &env) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    println!(
        "sandbox on {} — running {}",
        running.base_url(),
        job_path.display()
    );
    match run_job(&job, &env, RunOptions::default()).await {
        Ok(report) => {
            print_report(&report);
            println!(
                "query it:  duckdb -c \"SELECT channel, count(*) AS leads FROM read_parquet('{}/leads/*.parquet') GROUP BY ALL ORDER BY 2 DESC\"",
                relative_warehouse(&report.warehouse)
            );
            println!(
                "metrics:   duckdb -c \"SELECT month, spend, leads, sqls, cpsql, complete FROM read_parquet('{}/cpsql_monthly/*.parquet') WHERE level = 'total' ORDER BY month\"",
                relative_warehouse(&report.warehouse)
            );
            let page = std::path::Path::new(&report.warehouse)
                .join(crate::report::report_path(&report.job, &report.run_id).as_ref());
            if page.exists() {
                println!(
                    "report:    {}",
                    relative_warehouse(&page.display().to_string())
                );
            }
            if report.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_RUN_FAILED)
            }
        }
        Err(e) => report_error(&e),
    }
}

fn relative_warehouse(absolute: &str) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            Path::new(absolute)
                .strip_prefix(cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| absolute.to_string())
}

/// `funnelhouse sandbox --record DIR`: pull what `job_path` asks for from an in-process
/// sandbox and keep every body, exactly as received, in the design §9 layout under `dir`.
/// The job's tables go to a throwaway in-memory warehouse.
pub async fn record_command(
    dir: &Path,
    job_path: &Path,
    seed: u64,
    scale: usize,
    malformed_every: usize,
) -> ExitCode {
    let options = SandboxOptions {
        seed,
        scale,
        today: chrono::Utc::now().date_naive(),
        malformed_every,
    };
    let running = match sandbox::start(options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the sandbox on 127.0.0.1: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let overrides: HashMap<&str, String> = sandbox_env(&running.base_url())
        .into_iter()
        .chain([("FUNNELHOUSE_HASH_KEY", DEMO_HASH_KEY.to_string())])
        .collect();
    let env = move |name: &str| overrides.get(name).cloned().or_else(|| process_env(name));
    let job = match load_job_with(job_path, &env) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::from(EXIT_RUN_FAILED);
    }
    let record = match Replay::directory(dir) {
        Ok(r) => r,
        Err(e) => return report_error(&e),
    };
    let warehouse =
        Warehouse::from_store(std::sync::Arc::new(object_store::memory::InMemory::new()));
    let started = std::time::Instant::now();
    let options = RunOptions {
        record: Some(record),
        ..RunOptions::default()
    };
    match run_job_in(&job, &env, options, &warehouse, started).await {
        Ok(report) => {
            let bytes: u64 = report.sources.iter().map(|s| s.bytes).sum();
            let pages: u64 = report.sources.iter().map(|s| s.requests).sum();
            let secs = report.elapsed.as_secs_f64();
            println!(
                "recorded {pages} pages, {bytes} bytes of JSON into {} in {secs:.2} s ({:.1} MB/s over HTTP incl. normalizing and writing)",
                dir.display(),
                bytes as f64 / 1e6 / secs.max(1e-9)
            );
            if report.succeeded() {
                ExitCode::SUCCESS
            } else {
                print_report(&report);
                ExitCode::from(EXIT_RUN_FAILED)
            }
        }
        Err(e) => report_error(&e),
    }
}
