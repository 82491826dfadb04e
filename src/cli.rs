//! The command line: `run`, `metrics`, `reprocess`, `backfill`, `schedule`, `runs`, `report`,
//! `validate`, `sandbox`, `demo`, `completions` and `schema`. Each command returns an exit
//! code: 0 ok, 1 the run failed, 2 a usage or configuration error, 143 / 130 a run stopped by
//! SIGTERM / SIGINT (see `cancel`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{load_job, process_env};
pub use crate::ops::exit::{EXIT_CONFIG, EXIT_RUN_FAILED};
use crate::ops::exit::{print_report, report_error, run_exit_code};
use crate::pipeline::{Replay, RunOptions, RunReport, open_warehouse, run_job, run_job_in};

/// funnelhouse — CRM leads, ad spend and survey answers into funnel, CPSQL, SAL and eNPS tables.
#[derive(Debug, Parser)]
#[command(name = "funnelhouse", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job once now (what an external scheduler calls); exit 0 only if it committed.
    Run {
        /// The job file.
        job: PathBuf,
        /// Replay recorded pages from this directory (`<source>/<endpoint>/page-NNNNNN.json[.zst]`)
        /// instead of calling the vendors; no network is used and watermarks stay put.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
        /// Run only this source (its name in the job file); repeat for several. The other
        /// sources' tables and watermarks stay as they are; metrics are still computed over
        /// every current table.
        #[arg(long = "source", value_name = "NAME")]
        sources: Vec<String>,
        /// Ignore the stored watermarks and pull (the selected) sources in full; the
        /// watermarks are rewritten when the run commits.
        #[arg(long, conflicts_with = "replay")]
        full_refresh: bool,
    },
    /// The metrics step of a fan-out: compute every metric table once over the input tables
    /// of the pull jobs a `[fan_in]` job names (or of every job in its warehouse), as its
    /// own committed run; exit 0 only if it committed.
    Metrics {
        /// The metrics job file (a `[fan_in]` table, no sources).
        job: PathBuf,
        /// Fail (exit 1, nothing written) unless every pull job it reads has a succeeded run
        /// that started within this many hours — for a metrics step scheduled after the pulls.
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(1..))]
        fresh_within: Option<u64>,
    },
    /// Re-run a landed run from its raw pages in the warehouse (`_raw/<job>/<run_id>/`), to
    /// re-apply fixed normalization or metric rules without calling the vendors.
    Reprocess {
        /// The job file.
        job: PathBuf,
        /// The run id whose pages to replay (see `_runs`).
        #[arg(long = "run", value_name = "RUN_ID")]
        run_id: String,
    },
    /// Cron daemon: run each job on its `schedule` until SIGTERM or SIGINT.
    ///
    /// Fires in each job's time zone (DST neither skips nor doubles a run), never overlaps two
    /// runs of a job, and on SIGTERM/SIGINT lets runs in flight finish within --grace-secs.
    Schedule(crate::scheduler::ScheduleArgs),
    /// List a job's recent runs from `_runs` (newest first) and its current watermarks.
    Runs {
        /// The job file (only its name and warehouse are used).
        job: PathBuf,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print one JSON document (runs, watermarks, lock) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Re-pull a date range for the sources that support it (Google Ads) and rebuild exactly
    /// the day partitions in it; idempotent; watermarks stay where they are.
    Backfill {
        /// The job file.
        job: PathBuf,
        /// First day, `YYYY-MM-DD`.
        #[arg(long, value_name = "DATE")]
        from: chrono::NaiveDate,
        /// Last day (inclusive), `YYYY-MM-DD`.
        #[arg(long, value_name = "DATE")]
        to: chrono::NaiveDate,
    },
    /// Build a run's HTML report again from the warehouse (`_reports/<job>/<run_id>.html`, and
    /// `latest.html` for the newest run) and print where it went; opens nothing.
    Report {
        /// The job file (its name, warehouse, time zone, currency and source names are used).
        job: PathBuf,
        /// The run to report on (see `funnelhouse runs`); the newest by default.
        #[arg(long = "run", value_name = "RUN_ID")]
        run_id: Option<String>,
        /// Write the page to this local file instead of the warehouse.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Compact small files and vacuum unneeded ones in every Delta table of the job's
    /// warehouse (`table_format = "delta"`), under the job's lock; both are Delta commits.
    Maintain {
        /// The job file (its name, warehouse and `[delta]` settings are used).
        job: PathBuf,
    },
    /// Check a job file without touching the network; prints every mistake.
    Validate {
        /// The job file.
        job: PathBuf,
        /// Don't look at the environment: `${VAR}` references need not be set (for CI,
        /// which has no secrets); everything else is still checked.
        #[arg(long)]
        no_env: bool,
    },
    /// Serve the local imitation of the vendor APIs.
    Sandbox {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Seed of the synthetic data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Number of leads (spend and survey volume follow).
        #[arg(long, default_value_t = 1000)]
        scale: usize,
        /// Make every Nth record of each vendor malformed (0 = none).
        #[arg(long, default_value_t = 0)]
        malformed_every: usize,
        /// How much ad spend the ad platforms serve.
        #[command(flatten)]
        spend: SpendArgs,
        /// Instead of serving: pull everything `--job` asks for from an in-process sandbox
        /// and write each response body to DIR/<source>/<endpoint>/page-NNNNNN.json.
        #[arg(long, value_name = "DIR")]
        record: Option<PathBuf>,
        /// The job whose pull `--record` records.
        #[arg(long, default_value = "jobs/demo.toml")]
        job: PathBuf,
        /// Instead of serving: print the environment a job needs to pull from a sandbox on
        /// `--port` (`NAME=value` lines: its URL and the credentials it hands out), for
        /// `export $(funnelhouse sandbox --print-env)`.
        #[arg(long, conflicts_with = "record")]
        print_env: bool,
        /// Inject faults: `chaos`, or `errors=0.1,storm=40x3,resets=0.05,truncate=0.05,
        /// slow=0.03,slow_ms=1500,repeat=0.05,seed=1` (shares per request); hostile bodies
        /// from one vendor: `deep=hubspot` (nested 20,000 levels), `cut=typeform` (a 200 cut
        /// in half).
        #[arg(long, value_name = "PROFILE", value_parser = crate::sandbox::FaultProfile::parse)]
        faults: Option<crate::sandbox::FaultProfile>,
    },
    /// The one-command tour: start the sandbox, run the built-in demo job into ./warehouse,
    /// show it. Needs no file on disk.
    Demo {
        /// Run this job file against the sandbox instead of the built-in one (its warehouse,
        /// like every relative path in it, is relative to the file).
        #[arg(long)]
        job: Option<PathBuf>,
        /// Number of leads in the sandbox.
        #[arg(long, default_value_t = 2000)]
        scale: usize,
    },
    /// Print a shell completion script: `funnelhouse completions bash > /etc/bash_completion.d/funnelhouse`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of a job file, for editors (see the README's "Job files").
    Schema,
}

/// `funnelhouse sandbox`'s spend flags: a named shape, then what overrides it.
#[derive(Debug, Clone, clap::Args)]
pub struct SpendArgs {
    /// The named spend shape; the flags below override parts of it.
    #[arg(long, value_enum, default_value = "small")]
    pub spend_shape: SpendShapeName,
    /// Days of spend ending yesterday (at least 30), instead of the shape's.
    #[arg(long, value_name = "DAYS")]
    pub spend_days: Option<u32>,
    /// Campaigns per Google Ads customer and per Meta account, instead of the shape's.
    #[arg(long, value_name = "N")]
    pub spend_campaigns: Option<usize>,
    /// Accounts served per ad platform (Google Ads, Meta, LinkedIn; at most 2), instead of
    /// the shape's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub spend_accounts: Option<u8>,
}

/// The named spend shapes of [`SpendArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpendShapeName {
    /// Every Google Ads customer, Meta and LinkedIn account with 3–6 campaigns over 90 days.
    Small,
    /// One Google Ads customer and one Meta account over 365 days, campaigns growing with
    /// `--scale` (~880 and ~590 at a million leads); LinkedIn as in `small`.
    Heavy,
}

impl SpendArgs {
    /// The shape at `leads` leads, overrides applied.
    pub fn shape(&self, leads: usize) -> crate::sandbox::SpendShape {
        let mut shape = match self.spend_shape {
            SpendShapeName::Small => crate::sandbox::SpendShape::default(),
            SpendShapeName::Heavy => crate::sandbox::SpendShape::heavy(leads),
        };
        if let Some(days) = self.spend_days {
            shape.days = Some(days);
        }
        if let Some(n) = self.spend_campaigns {
            shape.google_campaigns = Some(n);
            shape.meta_campaigns = Some(n);
        }
        if let Some(n) = self.spend_accounts {
            let n = Some(usize::from(n));
            (
                shape.google_accounts,
                shape.meta_accounts,
                shape.linkedin_accounts,
            ) = (n, n, n);
        }
        shape
    }
}

/// What `funnelhouse sandbox` generates: its flags, ending yesterday.
fn sandbox_options(
    seed: u64,
    scale: usize,
    malformed_every: usize,
    spend: &SpendArgs,
) -> crate::sandbox::SandboxOptions {
    crate::sandbox::SandboxOptions {
        seed,
        scale,
        today: chrono::Utc::now().date_naive(),
        malformed_every,
        spend: spend.shape(scale),
    }
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run {
            job,
            replay,
            sources,
            full_refresh,
        } => run_command(&job, replay.as_deref(), sources, full_refresh).await,
        Command::Metrics { job, fresh_within } => metrics_command(&job, fresh_within).await,
        Command::Reprocess { job, run_id } => reprocess_command(&job, &run_id).await,
        Command::Schedule(args) => crate::scheduler::schedule_command(args).await,
        Command::Runs { job, limit, json } => runs_command(&job, limit, json).await,
        Command::Backfill { job, from, to } => backfill_command(&job, from, to).await,
        Command::Maintain { job } => crate::ops::maintain::maintain_command(&job).await,
        Command::Validate { job, no_env } => validate_command(&job, no_env),
        Command::Report { job, run_id, out } => {
            report_command(&job, run_id.as_deref(), out.as_deref()).await
        }
        Command::Sandbox {
            print_env: true,
            port,
            ..
        } => {
            for (name, value) in crate::sandbox::job_env(&format!("http://127.0.0.1:{port}")) {
                println!("{name}={value}");
            }
            ExitCode::SUCCESS
        }
        Command::Sandbox {
            record: Some(dir),
            seed,
            scale,
            malformed_every,
            spend,
            job,
            ..
        } => {
            let options = sandbox_options(seed, scale, malformed_every, &spend);
            crate::demo::record_command(&dir, &job, options).await
        }
        Command::Sandbox {
            port,
            seed,
            scale,
            malformed_every,
            spend,
            faults,
            ..
        } => {
            let options = sandbox_options(seed, scale, malformed_every, &spend);
            crate::demo::sandbox_command(port, options, faults).await
        }
        Command::Demo { job, scale } => crate::demo::demo_command(job.as_deref(), scale).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "funnelhouse", &mut script);
            write_stdout(&script)
        }
        Command::Schema => {
            let schema = crate::config::job_schema();
            let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            text.push('\n');
            write_stdout(text.as_bytes())
        }
    }
}

/// Print generated text; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::from(EXIT_RUN_FAILED)
        }
    }
}

/// `funnelhouse runs JOB [--limit N] [--json]`.
async fn runs_command(path: &std::path::Path, limit: usize, json: bool) -> ExitCode {
    match crate::ops::runs::list(path, limit).await {
        Ok(listing) if json => {
            println!("{:#}", crate::ops::runs::to_json(&listing));
            ExitCode::SUCCESS
        }
        Ok(listing) => {
            print!("{}", crate::ops::runs::render(&listing));
            ExitCode::SUCCESS
        }
        Err(e) => report_error(&e),
    }
}

/// `funnelhouse report JOB [--run RUN_ID] [--out FILE]`: prints where the page went.
async fn report_command(
    path: &std::path::Path,
    run_id: Option<&str>,
    out: Option<&std::path::Path>,
) -> ExitCode {
    match crate::report::rebuild(path, run_id, out).await {
        Ok(written) => {
            println!("{written}");
            ExitCode::SUCCESS
        }
        Err(e) => report_error(&e),
    }
}

fn validate_command(path: &std::path::Path, no_env: bool) -> ExitCode {
    let loaded = if no_env {
        crate::config::load_job_checked(path, &crate::config::EnvCheck::offline())
    } else {
        load_job(path)
    };
    match loaded {
        Ok(job) if job.fan_in.is_some() => {
            let jobs = job
                .fan_in
                .as_ref()
                .map(|f| f.jobs.join(", "))
                .unwrap_or_default();
            println!(
                "{}: job `{}` is valid: the metrics step over {}; warehouse {}",
                path.display(),
                job.name,
                if jobs.is_empty() {
                    "every job in the warehouse".to_string()
                } else {
                    format!("jobs {jobs}")
                },
                job.warehouse.raw()
            );
            ExitCode::SUCCESS
        }
        Ok(job) => {
            let kinds: Vec<String> = job
                .sources
                .iter()
                .map(|s| format!("{} ({})", s.name(), s.kind()))
                .collect();
            println!(
                "{}: job `{}` is valid: {} source(s): {}; warehouse {}",
                path.display(),
                job.name,
                job.sources.len(),
                kinds.join(", "),
                job.warehouse.raw()
            );
            ExitCode::SUCCESS
        }
        Err(e) => report_error(&e),
    }
}

async fn run_command(
    path: &std::path::Path,
    replay_dir: Option<&std::path::Path>,
    sources: Vec<String>,
    full_refresh: bool,
) -> ExitCode {
    let job = match load_job(path) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    if let Err(message) = crate::pipeline::check_source_names(&job, &sources) {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let replay = match replay_dir.map(Replay::directory).transpose() {
        Ok(replay) => replay,
        Err(e) => return report_error(&e),
    };
    let Some(cancel) = stop_on_signals() else {
        return ExitCode::from(EXIT_RUN_FAILED);
    };
    let options = RunOptions {
        replay,
        sources,
        full_refresh,
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    finish(run_job(&job, &process_env, options).await, &cancel)
}

/// A stop request that SIGTERM and SIGINT make; `None` (after saying why) when the handlers
/// cannot be installed.
fn stop_on_signals() -> Option<crate::cancel::Cancel> {
    let cancel = crate::cancel::Cancel::new();
    match crate::cancel::stop_on_signals(&cancel) {
        Ok(()) => Some(cancel),
        Err(e) => {
            eprintln!("error: cannot install the SIGTERM/SIGINT handlers: {e}");
            None
        }
    }
}

async fn metrics_command(path: &std::path::Path, fresh_within_hours: Option<u64>) -> ExitCode {
    let job = match load_job(path) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    let options = crate::pipeline::fanin::MetricsOptions {
        fresh_within: fresh_within_hours.map(|h| std::time::Duration::from_secs(h * 3600)),
    };
    let run = async {
        let warehouse = open_warehouse(&job, &process_env)?;
        crate::pipeline::fanin::run_metrics_step(
            &job,
            &process_env,
            chrono::Utc::now(),
            &warehouse,
            std::time::Instant::now(),
            &options,
        )
        .await
    };
    // The metrics step publishes one commit at its end and holds no vendor connection: a
    // signal ends it like any kill, and its next start rolls forward or discards the staging.
    finish(run.await, &crate::cancel::Cancel::new())
}

async fn backfill_command(
    path: &std::path::Path,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> ExitCode {
    let job = match load_job(path) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    if from > to {
        eprintln!("error: --from {from} is after --to {to}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let range = crate::pipeline::Backfill { from, to };
    let Some(cancel) = stop_on_signals() else {
        return ExitCode::from(EXIT_RUN_FAILED);
    };
    let options = RunOptions {
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    finish(
        crate::pipeline::backfill_job(&job, &process_env, options, range).await,
        &cancel,
    )
}

async fn reprocess_command(path: &std::path::Path, run_id: &str) -> ExitCode {
    let job = match load_job(path) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    let root = crate::sink::layout::raw_run_root(&job.name, run_id);
    let Some(cancel) = stop_on_signals() else {
        return ExitCode::from(EXIT_RUN_FAILED);
    };
    let run = async {
        let warehouse = open_warehouse(&job, &process_env)?;
        let replay = Replay::in_store(std::sync::Arc::clone(&warehouse.store), root);
        let options = RunOptions {
            replay: Some(replay),
            cancel: cancel.clone(),
            ..RunOptions::default()
        };
        run_job_in(
            &job,
            &process_env,
            options,
            &warehouse,
            std::time::Instant::now(),
        )
        .await
    };
    finish(run.await, &cancel)
}

fn finish(outcome: crate::error::Result<RunReport>, cancel: &crate::cancel::Cancel) -> ExitCode {
    match outcome {
        Ok(report) if report.status == "aborted" => {
            let stop = cancel.stopped().unwrap_or(crate::cancel::Stop::Terminate);
            eprintln!(
                "run {} stopped by {} before its commit: nothing was published, `_runs` records it as aborted, the lock is released",
                report.run_id,
                stop.describe()
            );
            ExitCode::from(stop.exit_code())
        }
        Ok(report) => {
            print_report(&report);
            run_exit_code(&report)
        }
        Err(e) => report_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SpendShape;

    /// The spend flags of `funnelhouse sandbox ARGS…`, as the shape at `leads`.
    fn shape(args: &[&str], leads: usize) -> SpendShape {
        let cli = Cli::try_parse_from(["funnelhouse", "sandbox"].iter().chain(args))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Sandbox { spend, .. } => spend.shape(leads),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_sandbox_serves_the_small_spend_shape_unless_told() {
        assert_eq!(shape(&[], 1_000_000), SpendShape::default());
        assert_eq!(
            shape(&["--spend-shape", "heavy"], 1_000_000),
            SpendShape::heavy(1_000_000)
        );
    }

    #[test]
    fn spend_flags_override_the_named_shape() {
        let got = shape(
            &[
                "--spend-shape",
                "heavy",
                "--spend-days",
                "60",
                "--spend-campaigns",
                "40",
                "--spend-accounts",
                "2",
            ],
            100_000,
        );
        assert_eq!(
            got,
            SpendShape {
                google_campaigns: Some(40),
                meta_campaigns: Some(40),
                linkedin_campaigns: None,
                days: Some(60),
                google_accounts: Some(2),
                meta_accounts: Some(2),
                linkedin_accounts: Some(2),
            }
        );
        // The sandbox has two accounts per platform: a third is a usage error.
        assert!(Cli::try_parse_from(["funnelhouse", "sandbox", "--spend-accounts", "3"]).is_err());
        assert!(Cli::try_parse_from(["funnelhouse", "sandbox", "--spend-shape", "huge"]).is_err());
    }
}
