//! `funnelhouse sandbox` and `funnelhouse demo`: serve the vendor imitation, and the
//! one-command tour that runs the built-in demo job (`jobs/demo.toml`, compiled in with the
//! files it names) against it into `./warehouse`, from any folder.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{Template, load_job_with, process_env};
use crate::normalize::DEMO_HASH_KEY;
use crate::ops::exit::{EXIT_RUN_FAILED, print_report, report_error, run_exit_code};
use crate::pipeline::{Replay, RunOptions, run_job, run_job_in};
use crate::sandbox::{self, SandboxData, SandboxOptions};
use crate::sink::Warehouse;

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
        ..SandboxOptions::default()
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
    for (name, value) in sandbox::job_env(&format!("http://{addr}")) {
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

/// The demo job and the files it names, built into the binary so `funnelhouse demo` runs
/// from any folder — an installed binary or the container image has no `jobs/` beside it.
pub const DEMO_JOB: &str = include_str!("../jobs/demo.toml");

/// The files [`DEMO_JOB`] names, by the relative path it names them with.
pub const DEMO_FILES: [(&str, &[u8]); 3] = [
    ("demo-costs.csv", include_bytes!("../jobs/demo-costs.csv")),
    ("demo-intent.csv", include_bytes!("../jobs/demo-intent.csv")),
    ("fx-rates.csv", include_bytes!("../jobs/fx-rates.csv")),
];

/// HubSpot contacts the demo archives and Salesforce leads it deletes in its sandbox before
/// the run, so the tour shows deletions: each becomes a `leads` row with `is_deleted = true`.
const DEMO_REMOVALS: usize = 1;

/// The built-in demo job written out (with its files) into a fresh temporary folder, and the
/// warehouse it is to write: `./warehouse` of the folder the demo was started in.
struct BuiltInJob {
    folder: tempfile::TempDir,
    warehouse: std::path::PathBuf,
}

impl BuiltInJob {
    fn write() -> std::io::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("funnelhouse-demo-")
            .tempdir()?;
        std::fs::write(folder.path().join("demo.toml"), DEMO_JOB)?;
        for (name, bytes) in DEMO_FILES {
            std::fs::write(folder.path().join(name), bytes)?;
        }
        let warehouse = std::env::current_dir()?.join("warehouse");
        Ok(BuiltInJob { folder, warehouse })
    }

    fn path(&self) -> std::path::PathBuf {
        self.folder.path().join("demo.toml")
    }
}

/// Start the sandbox in-process, run the demo job (the built-in one unless `job_path` is
/// given) into `./warehouse`, print what was written and how to read it.
pub async fn demo_command(job_path: Option<&Path>, scale: usize) -> ExitCode {
    let built_in = match job_path {
        Some(_) => None,
        None => match BuiltInJob::write() {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!(
                    "error: cannot write the built-in demo job to the temporary folder (TMPDIR) or find the working folder: {e}"
                );
                return ExitCode::from(EXIT_RUN_FAILED);
            }
        },
    };
    let path = match (&built_in, job_path) {
        (Some(b), _) => b.path(),
        (None, Some(p)) => p.to_path_buf(),
        (None, None) => unreachable!("either the built-in job or a given one"),
    };
    let options = SandboxOptions {
        seed: 42,
        scale,
        today: chrono::Utc::now().date_naive(),
        malformed_every: 500,
        ..SandboxOptions::default()
    };
    let running = match sandbox::start(options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the sandbox on 127.0.0.1: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let removed = running.data.mutate(sandbox::Mutation {
        updates: 0,
        removals: DEMO_REMOVALS,
    });
    let mut overrides: HashMap<&str, String> =
        sandbox::job_env(&running.base_url()).into_iter().collect();
    if process_env("FUNNELHOUSE_HASH_KEY").is_none() {
        tracing::warn!("FUNNELHOUSE_HASH_KEY is not set: the demo uses the documented demo key");
        overrides.insert("FUNNELHOUSE_HASH_KEY", DEMO_HASH_KEY.to_string());
    }
    let env = move |name: &str| overrides.get(name).cloned().or_else(|| process_env(name));
    let mut job = match load_job_with(&path, &env) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    match &built_in {
        Some(b) => {
            job.warehouse = Template::new(b.warehouse.display().to_string());
            println!(
                "sandbox on {} — running the built-in demo job (jobs/demo.toml in the source; `--job FILE` runs another)",
                running.base_url()
            );
        }
        None => println!(
            "sandbox on {} — running {}",
            running.base_url(),
            path.display()
        ),
    }
    println!(
        "the sandbox archived {} HubSpot contact(s) and deleted {} Salesforce lead(s) before the run",
        removed.hubspot_archived.len(),
        removed.salesforce_deleted.len()
    );
    match run_job(&job, &env, RunOptions::default()).await {
        Ok(report) => {
            print_report(&report);
            print!("{}", closing_hint(&report, &removed));
            let page = std::path::Path::new(&report.warehouse)
                .join(crate::report::report_path(&report.job, &report.run_id).as_ref());
            if page.exists() {
                println!(
                    "report:    {} (open it in a browser)",
                    relative_warehouse(&page.display().to_string())
                );
            }
            run_exit_code(&report)
        }
        Err(e) => report_error(&e),
    }
}

/// How to look at what the demo wrote, without assuming any tool is installed: DuckDB from
/// Python (or its CLI, or pandas), where the deleted leads are, where rejected records went.
fn closing_hint(report: &crate::pipeline::RunReport, removed: &sandbox::MutationReport) -> String {
    let w = relative_warehouse(&report.warehouse);
    let rejected: u64 = report.datasets.values().map(|d| d.rejected).sum();
    let query =
        |sql: &str| format!("  python3 -c \"import duckdb; duckdb.sql(\\\"{sql}\\\").show()\"\n");
    let mut out = format!(
        "\nThe tables are Parquet files under {w}/, one folder per table (spend is partitioned by \
         date=…). Read them with DuckDB from Python (`python3 -m pip install duckdb`), paste the \
         SQL into the duckdb CLI if you have it, or use pandas: pd.read_parquet('{w}/leads').\n"
    );
    out.push_str("leads per channel:\n");
    out.push_str(&query(&format!(
        "SELECT channel, count(*) AS leads FROM '{w}/leads/*.parquet' GROUP BY ALL ORDER BY 2 DESC"
    )));
    out.push_str("ICP: firmographics and a custom CRM property (leads.custom), by industry:\n");
    out.push_str(&query(&format!(
        "SELECT industry, custom['icp_tier'].string AS icp_tier, count(*) AS leads, median(employee_count) AS employees FROM '{w}/leads/*.parquet' GROUP BY ALL ORDER BY 3 DESC LIMIT 8"
    )));
    out.push_str("cost per SQL by month:\n");
    out.push_str(&query(&format!(
        "SELECT month, spend, leads, sqls, cpsql, complete FROM '{w}/cpsql_monthly/*.parquet' WHERE level = 'total' ORDER BY month"
    )));
    out.push_str(&format!(
        "deletions: {} archived HubSpot contact(s) and {} deleted Salesforce lead(s) are leads rows with is_deleted = true, left out of every metric:\n",
        removed.hubspot_archived.len(),
        removed.salesforce_deleted.len()
    ));
    out.push_str(&query(&format!(
        "SELECT source_system, lead_id, updated_at FROM '{w}/leads/*.parquet' WHERE is_deleted"
    )));
    if rejected == 0 {
        out.push_str(&format!(
            "rejected: none; a record that cannot be normalized becomes a row of {w}/_rejects/ with the reason\n"
        ));
    } else {
        out.push_str(&format!(
            "rejected: {rejected} record(s) could not be normalized; each is a row of {w}/_rejects/ with the record (personal data hashed) and the reason:\n"
        ));
        out.push_str(&query(&format!(
            "SELECT dataset, source, location, reason FROM '{w}/_rejects/*.parquet'"
        )));
    }
    out
}

/// The warehouse as the user would type it: relative to the working folder when inside it.
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
        ..SandboxOptions::default()
    };
    let running = match sandbox::start(options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the sandbox on 127.0.0.1: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let overrides: HashMap<&str, String> = sandbox::job_env(&running.base_url())
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
