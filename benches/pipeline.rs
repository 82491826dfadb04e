//! The end-to-end benchmark. Per scale (number of leads in the sandbox):
//!
//! 1. **Recording**: a full pull of the sandbox's vendor pages, once per scale and seed
//!    (`funnelhouse sandbox --record`, design §9 layout), cached under `target/bench-pages`.
//! 2. **Floors**: reading the files, and parsing the JSON alone (one core, `serde_json::Value`).
//! 3. **Whole run, replayed**: `funnelhouse run jobs/bench.toml --replay DIR` by the release
//!    binary — parse, normalize, write ZSTD Parquet and everything else a run does — with wall
//!    time, records/s, MB/s of JSON and the peak resident memory of the run's process; then its
//!    phases, timed by the run's JSON log lines (`FUNNELHOUSE_LOG=info --log-format json`):
//!    pull (`run started` → last `source pulled`: read, parse, normalize and write every
//!    source), metrics (→ last `metric table staged`), commit (→ `run finished`: rejects,
//!    publish, watermarks, `_runs`), and the process's start-up and exit (the remainder).
//! 4. **HTTP pull**: `funnelhouse sandbox` started as a child process on a free port, and the
//!    same job run live against it into `target/bench-warehouse`: wall, MB/s of JSON received
//!    over HTTP (the run summary's per-source bytes), requests, peak memory, and the phases.
//!    The sandbox serves from the same 2 cores, so this is pessimistic.
//! 5. **Incremental run, nothing changed**: the live job once more against the same sandbox;
//!    its requests per source, and per stream where the job file says how many streams a
//!    source pulls.
//!
//! Once per invocation, at 20,000 leads whatever `--scale` says:
//!
//! 6. **Rate-limited pull**: a sandbox whose HubSpot allows 100 requests per rolling second
//!    (`POST /_admin/crm/hubspot_limits`), and `jobs/bench-ratelimit.toml` (HubSpot alone,
//!    client limited to the same): the pull's wall against pages ÷ rate, and the sandbox's
//!    count of refused requests (`GET /_admin/crm/stats`); none may be refused twice.
//!
//! Every run's row counts are checked against the sandbox's own totals, so a fast wrong
//! pipeline cannot pass. Each scale ends with a table of measure, result and target.
//!
//! `--workload spend-heavy` replaces all of the above by the spend-heavy workload (issue 22):
//! pages recorded from `funnelhouse sandbox --spend-shape heavy --malformed-every 200` (one
//! Google Ads customer and one Meta account, hundreds of campaigns each over 365 days), and
//! `jobs/bench-spend.toml` replayed over them — Google `search` pages of 10,000 rows, Meta
//! insights pages of 500, HubSpot pages of 100, Typeform pages of 1,000. Per scale: the floors,
//! the whole run and its phases as above, and per dataset its pages, MB of JSON, records read
//! and rejected and its source's pull time (the sources pull concurrently); every count is
//! checked against the sandbox's totals, rejects included. Last, peak memory per scale against
//! the 1 M figure (flat: ≤ 1.25×).
//!
//! The release binary timed is the one `cargo bench` builds (LTO), or with `--binary PATH`
//! another: `scripts/release-build`'s, which adds profile-guided optimisation.
//!
//! `cargo bench --bench pipeline -- --scale 100000 --scale 1000000` (`-- --help` lists the
//! options; an unknown argument is an error).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use funnelhouse::sandbox::{SandboxData, SandboxOptions, SpendShape};
use serde_json::Value;

/// The job every scale of the default workload runs, replayed and live.
const JOB: &str = "jobs/bench.toml";
/// The spend-heavy workload's job.
const SPEND_JOB: &str = "jobs/bench-spend.toml";
/// Every Nth record of each vendor is malformed in the spend-heavy workload: 0.5 %.
const SPEND_MALFORMED_EVERY: usize = 200;
/// The rate-limited pull's job: HubSpot alone, limited to [`RATE_LIMIT_PER_SECOND`].
const RATE_LIMIT_JOB: &str = "jobs/bench-ratelimit.toml";
/// HubSpot requests per 10 s `jobs/bench.toml` allows its client, and the live runs' twin.
const BENCH_HUBSPOT_BURST: u64 = 100_000;
/// Leads in the rate-limited pull's sandbox, whatever `--scale` says.
const RATE_LIMIT_SCALE: usize = 20_000;
/// HubSpot requests per rolling second, in that sandbox and in [`RATE_LIMIT_JOB`].
const RATE_LIMIT_PER_SECOND: u64 = 100;

/// `cargo bench --bench pipeline -- [OPTIONS]`: the end-to-end benchmark (see the module
/// documentation for what each scale measures).
#[derive(Debug, clap::Parser)]
#[command(
    name = "pipeline",
    about = "End-to-end benchmark: record, replay and live-pull the sandbox at each scale"
)]
struct Args {
    /// Leads in the sandbox; repeat for several scales (`_` separators allowed). Default: 100000.
    #[arg(long = "scale", value_name = "LEADS", value_parser = parse_leads)]
    scales: Vec<usize>,
    /// Seed of the sandbox's data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// What to measure: `default` (small spend; replayed, live, incremental and rate-limited
    /// runs) or `spend-heavy` (the heavy spend shape, replayed; see the module documentation).
    #[arg(long, value_enum, default_value = "default")]
    workload: Workload,
    /// Time this funnelhouse binary instead of the one `cargo bench` built: the release build
    /// with profile-guided optimisation, `target/pgo/release/funnelhouse` from
    /// `scripts/release-build`, is what the README's figures measure.
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// What `cargo bench` passes to every benchmark binary; nothing else.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The named workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// `jobs/bench.toml` over the sandbox's default data.
    Default,
    /// `jobs/bench-spend.toml` over the heavy spend shape with 0.5 % malformed records.
    SpendHeavy,
}

impl Workload {
    fn job(self) -> &'static str {
        match self {
            Workload::Default => JOB,
            Workload::SpendHeavy => SPEND_JOB,
        }
    }

    /// Where a scale's recorded pages are cached.
    fn pages_dir(self, root: &Path, seed: u64, scale: usize) -> PathBuf {
        let name = match self {
            Workload::Default => format!("seed{seed}-scale{scale}"),
            Workload::SpendHeavy => format!("spend-heavy-seed{seed}-scale{scale}"),
        };
        root.join("target/bench-pages").join(name)
    }

    /// `funnelhouse sandbox --record`'s flags besides the directory, scale and seed.
    fn record_args(self) -> Vec<String> {
        let mut args = vec!["--job".to_string(), self.job().to_string()];
        if self == Workload::SpendHeavy {
            args.extend(
                [
                    "--spend-shape",
                    "heavy",
                    "--malformed-every",
                    &SPEND_MALFORMED_EVERY.to_string(),
                ]
                .map(String::from),
            );
        }
        args
    }
}

/// A number of leads, `1000000` or `1_000_000`, at least 1.
fn parse_leads(text: &str) -> Result<usize, String> {
    match text.replace('_', "").parse::<usize>() {
        Ok(0) => Err("a scale is at least 1 lead".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{text}` is not a number of leads: {e}")),
    }
}

/// The parsed command line; `--help` prints the options and exits, an unknown argument is an
/// error (exit code 2) rather than a silent full run.
fn args() -> Args {
    let mut args = <Args as clap::Parser>::parse();
    if args.scales.is_empty() {
        args.scales.push(100_000);
    }
    args
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("page-"))
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The environment the bench's jobs need: logs at `info` (the phases are timed by them), and
/// the credentials the job files name, as the sandbox hands them out
/// ([`funnelhouse::sandbox::job_env`]) for a URL nothing listens on: a replay uses no network,
/// a live run points the variables at a sandbox (see [`Sandbox::point`]).
fn job_env(cmd: &mut Command) -> &mut Command {
    cmd.envs(funnelhouse::sandbox::job_env("http://127.0.0.1:9"))
        .env("FUNNELHOUSE_HASH_KEY", "bench-key")
        .env("FUNNELHOUSE_LOG", "info")
}

fn record(bin: &str, dir: &Path, scale: usize, seed: u64, workload: Workload) -> String {
    let marker = dir.join("RECORDED");
    if let Ok(line) = std::fs::read_to_string(&marker) {
        return line;
    }
    std::fs::remove_dir_all(dir).ok();
    let out = job_env(&mut Command::new(bin))
        .args(["sandbox", "--record"])
        .arg(dir)
        .args(["--scale", &scale.to_string(), "--seed", &seed.to_string()])
        .args(workload.record_args())
        .output()
        .expect("funnelhouse runs");
    assert!(
        out.status.success(),
        "recording failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    std::fs::write(&marker, &line).expect("marker written");
    line
}

/// `n ÷ unit` per second over `secs` with `decimals`, or a dash when there is nothing to count.
fn per_second(n: Option<u64>, unit: f64, secs: f64, decimals: usize) -> String {
    n.map_or("—".into(), |n| {
        format!("{:.decimals$}", n as f64 / unit / secs.max(1e-9))
    })
}

fn row(phase: &str, secs: f64, records: Option<u64>, bytes: Option<u64>, note: &str) {
    println!(
        "{phase:<38} {secs:>8.2} s {:>12} rec/s {:>9} MB/s  {note}",
        per_second(records, 1.0, secs, 0),
        per_second(bytes, 1e6, secs, 1)
    );
}

/// What the recorded pages hold, and how long reading and parsing them alone takes.
struct Pages {
    files: usize,
    bytes: u64,
    records: u64,
    read_secs: f64,
    parse_secs: f64,
}

fn read_and_parse(dir: &Path) -> Pages {
    let files = files_under(dir);
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("page readable"))
        .collect();
    let read_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut records = 0u64;
    for body in &bodies {
        let value: Value = serde_json::from_slice(body).expect("page is JSON");
        for key in ["results", "items", "data"] {
            records += value
                .get(key)
                .and_then(|v| v.as_array())
                .map_or(0, |a| a.len() as u64);
        }
    }
    Pages {
        files: files.len(),
        bytes: bodies.iter().map(|b| b.len() as u64).sum(),
        records,
        read_secs,
        parse_secs: started.elapsed().as_secs_f64(),
    }
}

/// One `funnelhouse run` process: its wall, its CPU time, its summary (stdout) and its JSON
/// log (stderr).
struct Run {
    secs: f64,
    /// User and system CPU-seconds the process used, where the OS tells ([`children_cpu`]).
    /// On these shared 2-core machines wall time spreads by 10–40 % between identical runs
    /// and CPU time by about 10 %, so a change is judged by both.
    cpu: Option<(f64, f64)>,
    stdout: String,
    stderr: String,
    succeeded: bool,
}

/// Run `job` with the bench's environment; `setup` adds the replay or the sandbox. The
/// run must succeed.
fn run_job(bin: &str, job: &str, setup: impl FnOnce(&mut Command)) -> Run {
    let run = run_job_outcome(bin, job, setup);
    assert!(
        run.succeeded,
        "{job} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run
}

/// Like [`run_job`], for a run whose failure is itself a result to print.
fn run_job_outcome(bin: &str, job: &str, setup: impl FnOnce(&mut Command)) -> Run {
    let mut cmd = Command::new(bin);
    job_env(&mut cmd).args(["--log-format", "json", "run", job]);
    setup(&mut cmd);
    let cpu_before = children_cpu();
    let started = Instant::now();
    let out = cmd.output().expect("funnelhouse runs");
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(children_cpu())
        .map(|((user, system), (user_after, system_after))| {
            (user_after - user, system_after - system)
        });
    Run {
        secs,
        cpu,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        succeeded: out.status.success(),
    }
}

/// User and system CPU-seconds of this process's waited-for children so far (Linux
/// `/proc/self/stat`, `cutime` and `cstime`, in clock ticks of 1/100 s), or `None`
/// elsewhere. The difference around one child's `output()` is that child's CPU time.
fn children_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 16 and 17 of the line: indexes 13 and 14 of what follows the name (the state is 0).
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((ticks(13)?, ticks(14)?))
}

/// A source's row of the run summary's sources table (`hubspot  hubspot  ok  1000  0
/// 97.3 MiB  3.2 s`), with when the run's log says the source finished.
struct SourceLine {
    name: String,
    requests: u64,
    retries: u64,
    /// Bytes received, to the summary's precision (0.1 KiB/MiB/GiB).
    bytes: u64,
    /// From `run started` to the source's `source pulled` log line (which come together
    /// once every source is done).
    secs: f64,
    /// The source's own pull, as the table prints it (0.1 s below 10 s, else whole seconds).
    elapsed: f64,
}

/// `340 ms`, `2.5 s`, `12 s`, `4m 05s`, `1h 02m` as the summary prints durations, in seconds.
fn parse_duration(tokens: &[&str]) -> Option<f64> {
    match tokens {
        [n, "ms"] => Some(n.parse::<f64>().ok()? / 1e3),
        [n, "s"] => n.parse().ok(),
        [m, s] if m.ends_with('m') && s.ends_with('s') => Some(
            m.trim_end_matches('m').parse::<f64>().ok()? * 60.0
                + s.trim_end_matches('s').parse::<f64>().ok()?,
        ),
        [h, m] if h.ends_with('h') && m.ends_with('m') => Some(
            h.trim_end_matches('h').parse::<f64>().ok()? * 3600.0
                + m.trim_end_matches('m').parse::<f64>().ok()? * 60.0,
        ),
        _ => None,
    }
}

/// `512 B`, `1.5 KiB`, `97.3 MiB` as the summary prints sizes.
fn parse_size(number: &str, unit: &str) -> Option<u64> {
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number.parse::<f64>().ok()? * scale).round() as u64)
}

/// What a source's `source pulled` log line says, and when it came.
struct Pulled {
    /// Seconds from `run started`.
    secs: f64,
    read: u64,
    rejected: u64,
}

/// The first line of the summary's sources table.
const SOURCES_HEADER: [&str; 7] = [
    "source", "kind", "outcome", "requests", "retries", "received", "elapsed",
];

/// A run's phases, timed by its JSON log lines.
struct Phases {
    pull: f64,
    metrics: f64,
    commit: f64,
    /// Records the sources read (`source pulled` `read`).
    records: u64,
    /// Rows of the metric tables (`metric table staged` `rows`).
    metric_rows: u64,
}

impl Run {
    /// `; CPU 18.9 s (user 16.1 s, system 2.8 s)`, or nothing where the OS does not tell.
    fn cpu_note(&self) -> String {
        self.cpu.map_or(String::new(), |(user, system)| {
            format!(
                "; CPU {:.1} s (user {user:.1} s, system {system:.1} s)",
                user + system
            )
        })
    }

    /// Rows the summary says `table` received.
    fn rows(&self, table: &str) -> u64 {
        self.stdout
            .lines()
            .skip_while(|l| l.split_whitespace().next() != Some("table"))
            .find(|l| l.split_whitespace().next() == Some(table))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The run's peak resident memory as the summary prints it (`249 MiB`).
    fn peak(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.split("peak memory ").nth(1))
            .unwrap_or("?")
            .to_string()
    }

    /// The rows of the summary's sources table (header `source kind outcome requests
    /// retries received elapsed`), up to the blank line that ends it.
    fn sources(&self) -> Vec<SourceLine> {
        let pulled = self.pulled();
        self.stdout
            .lines()
            .skip_while(|l| !l.split_whitespace().eq(SOURCES_HEADER))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let [
                    name,
                    _kind,
                    _outcome,
                    requests,
                    retries,
                    size,
                    unit,
                    elapsed @ ..,
                ] = fields.as_slice()
                else {
                    return None;
                };
                Some(SourceLine {
                    name: name.to_string(),
                    requests: requests.parse().ok()?,
                    retries: retries.parse().ok()?,
                    bytes: parse_size(size, unit)?,
                    secs: pulled.get(*name).map_or(f64::NAN, |p| p.secs),
                    elapsed: parse_duration(elapsed)?,
                })
            })
            .collect()
    }

    /// Pages per endpoint of each source (its `pages per endpoint` log line), with the
    /// streams each serves.
    fn endpoint_streams(&self, streams: &BTreeMap<String, u64>) -> Vec<EndpointPages> {
        let mut out = Vec::new();
        for (message, fields, _) in self.events() {
            if message != "pages per endpoint" {
                continue;
            }
            let source = fields["source"].as_str().unwrap_or("?").to_string();
            for pair in fields["pages"].as_str().unwrap_or("").split_whitespace() {
                let Some((endpoint, pages)) = pair.split_once('=') else {
                    continue;
                };
                out.push(EndpointPages {
                    source: source.clone(),
                    endpoint: endpoint.to_string(),
                    pages: pages.parse().unwrap_or(0),
                    streams: streams.get(endpoint).copied(),
                    unfiltered: UNFILTERED
                        .iter()
                        .find(|(e, _)| *e == endpoint)
                        .map(|(_, why)| *why),
                });
            }
        }
        out
    }

    /// The JSON log's events with their time, as `(message, fields, time)`.
    fn events(&self) -> impl Iterator<Item = (String, Value, DateTime<FixedOffset>)> + '_ {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|mut event| {
                let time = event["timestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?;
                let fields = event["fields"].take();
                let message = fields["message"].as_str()?.to_string();
                Some((message, fields, time))
            })
    }

    /// Each source's `source pulled` line, by source name.
    fn pulled(&self) -> BTreeMap<String, Pulled> {
        let mut started = None;
        let mut out = BTreeMap::new();
        for (message, fields, time) in self.events() {
            match message.as_str() {
                "run started" => started = Some(time),
                "source pulled" => {
                    let (Some(started), Some(source)) = (started, fields["source"].as_str()) else {
                        continue;
                    };
                    out.insert(
                        source.to_string(),
                        Pulled {
                            secs: (time - started).num_microseconds().unwrap_or(0) as f64 / 1e6,
                            read: fields["read"].as_u64().unwrap_or(0),
                            rejected: fields["rejected"].as_u64().unwrap_or(0),
                        },
                    );
                }
                _ => {}
            }
        }
        out
    }

    fn source(&self, name: &str) -> SourceLine {
        self.sources()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `source {name}` line in the summary:\n{}", self.stdout))
    }

    fn phases(&self) -> Phases {
        let mut at: BTreeMap<&str, DateTime<FixedOffset>> = BTreeMap::new();
        let (mut records, mut metric_rows) = (0, 0);
        for (message, fields, time) in self.events() {
            let key = match message.as_str() {
                "run started" => "started",
                "source pulled" => {
                    records += fields["read"].as_u64().unwrap_or(0);
                    "pulled"
                }
                "metric table staged" => {
                    metric_rows += fields["rows"].as_u64().unwrap_or(0);
                    "staged"
                }
                "run finished" => "finished",
                _ => continue,
            };
            at.insert(key, time); // the last of each
        }
        let time = |key: &str| {
            *at.get(key)
                .unwrap_or_else(|| panic!("no `{key}` log line:\n{}", self.stderr))
        };
        let secs = |from: DateTime<FixedOffset>, to: DateTime<FixedOffset>| {
            (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6
        };
        let pulled = time("pulled");
        // A job without metric tables goes straight from its sources to the commit.
        let staged = at.get("staged").copied().unwrap_or(pulled);
        Phases {
            pull: secs(time("started"), pulled),
            metrics: secs(pulled, staged),
            commit: secs(staged, time("finished")),
            records,
            metric_rows,
        }
    }

    /// Print one row per phase; `json_bytes` is the JSON the pull read.
    fn print_phases(&self, phases: &Phases, json_bytes: u64) {
        row(
            "  pull (read, parse, normalize, write)",
            phases.pull,
            Some(phases.records),
            Some(json_bytes),
            "records read; MB of JSON",
        );
        row(
            "  metrics",
            phases.metrics,
            Some(phases.metric_rows),
            None,
            "metric rows",
        );
        row(
            "  commit (rejects, publish, _runs)",
            phases.commit,
            None,
            None,
            "",
        );
        row(
            "  process start-up and exit",
            self.secs - phases.pull - phases.metrics - phases.commit,
            None,
            None,
            "the rest of the wall",
        );
    }
}

/// The rows a correct run of a workload's job writes, from the sandbox generator's own
/// totals.
struct Expected {
    leads: u64,
    spend: u64,
    surveys: u64,
    /// Rows of `_rejects`, and records each source reads, where the workload checks them.
    rejects: Option<u64>,
    reads: BTreeMap<&'static str, u64>,
}

impl Expected {
    fn for_workload(workload: Workload, seed: u64, scale: usize) -> Expected {
        match workload {
            Workload::Default => Expected::new(seed, scale),
            Workload::SpendHeavy => Expected::spend_heavy(seed, scale),
        }
    }

    /// [`SPEND_JOB`] over the heavy shape: every Google Ads and Meta row of the one account
    /// each serves, Typeform alone for the surveys; malformed records are rejects.
    fn spend_heavy(seed: u64, scale: usize) -> Expected {
        let data = SandboxData::generate(&SandboxOptions {
            seed,
            scale,
            malformed_every: SPEND_MALFORMED_EVERY,
            spend: SpendShape::heavy(scale),
            ..SandboxOptions::default()
        });
        let totals = data.totals();
        let facts = data.spend_facts();
        let count = |platform: &str, malformed: bool| {
            facts
                .iter()
                .filter(|f| f.platform == platform && (!malformed || f.malformed))
                .count() as u64
        };
        let spend_malformed = count("google_ads", true) + count("meta_ads", true);
        let spend = count("google_ads", false) + count("meta_ads", false);
        let (contacts, surveys) = (totals.contacts as u64, totals.survey_responses as u64);
        let (contacts_malformed, surveys_malformed) = (
            totals.contacts_malformed as u64,
            totals.survey_responses_malformed as u64,
        );
        Expected {
            leads: contacts - contacts_malformed,
            spend: spend - spend_malformed,
            surveys: surveys - surveys_malformed,
            rejects: Some(contacts_malformed + spend_malformed + surveys_malformed),
            reads: BTreeMap::from([
                ("hubspot", contacts),
                ("google_ads", count("google_ads", false)),
                ("meta_ads", count("meta_ads", false)),
                ("pulse", surveys),
            ]),
        }
    }

    fn new(seed: u64, scale: usize) -> Expected {
        let data = SandboxData::generate(&SandboxOptions {
            seed,
            scale,
            ..SandboxOptions::default()
        });
        let totals = data.totals();
        // Of the ad platforms the sandbox serves, the bench job pulls Google Ads.
        let spend = data
            .spend_facts()
            .iter()
            .filter(|f| f.platform == "google_ads")
            .count();
        Expected {
            leads: totals.contacts as u64,
            spend: spend as u64,
            surveys: (totals.survey_responses + totals.surveymonkey.responses) as u64,
            rejects: None,
            reads: BTreeMap::new(),
        }
    }

    fn check(&self, run: &Run, what: &str) {
        assert_eq!(run.rows("leads"), self.leads, "{what}: leads rows");
        assert_eq!(run.rows("spend"), self.spend, "{what}: spend rows");
        assert_eq!(
            run.rows("survey_responses"),
            self.surveys,
            "{what}: survey rows"
        );
        if let Some(rejects) = self.rejects {
            assert_eq!(run.rows("_rejects"), rejects, "{what}: _rejects rows");
        }
        let pulled = run.pulled();
        for (source, read) in &self.reads {
            let got = pulled.get(*source).map(|p| p.read);
            assert_eq!(got, Some(*read), "{what}: records {source} read");
        }
    }
}

/// A `funnelhouse sandbox` child process on a free port; killed when dropped, panics included.
struct Sandbox {
    child: Child,
    addr: String,
}

impl Sandbox {
    fn start(bin: &str, scale: usize, seed: u64) -> Sandbox {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .args(["sandbox", "--port", &port.to_string()])
            .args(["--scale", &scale.to_string(), "--seed", &seed.to_string()])
            .env("FUNNELHOUSE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the sandbox starts");
        let mut sandbox = Sandbox {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        sandbox.wait_until_listening();
        sandbox
    }

    /// The sandbox generates its data before it listens: minutes at a million leads.
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while TcpStream::connect(&self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the sandbox exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox is not listening on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Point a run's job file at this sandbox, with the sandbox's credentials.
    fn point(&self, cmd: &mut Command) {
        for (name, value) in funnelhouse::sandbox::job_env(&format!("http://{}", self.addr)) {
            cmd.env(name, value);
        }
    }

    /// One request to the sandbox's `/_admin` API; its JSON answer.
    fn admin(&self, method: &str, path: &str, body: &str) -> Value {
        let mut stream = TcpStream::connect(&self.addr).expect("sandbox reachable");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("request sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("answer read");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The live job's first run (full pull over HTTP) and its second (nothing changed).
struct Live {
    secs: f64,
    pull_secs: f64,
    bytes: u64,
    requests: u64,
    peak: String,
    incremental: Vec<EndpointPages>,
}

fn live_runs(bin: &str, root: &Path, scale: usize, seed: u64, expected: &Expected) -> Live {
    std::fs::remove_dir_all(root.join("target/bench-warehouse")).ok();
    let sandbox = Sandbox::start(bin, scale, seed);
    // The twin's HubSpot allows what the job's client is limited to: this run measures
    // throughput, not a portal's limit (the rate-limited pull does). With the twin's default
    // of 10,000 per 10 s, a million leads' 10,000 pages meet one 429 and its 10 s wait.
    sandbox.admin(
        "POST",
        "/_admin/crm/hubspot_limits",
        &format!(r#"{{"burst": {BENCH_HUBSPOT_BURST}, "interval_ms": 10000, "daily": 10000000}}"#),
    );
    let first = run_job(bin, JOB, |cmd| sandbox.point(cmd));
    let second = run_job_outcome(bin, JOB, |cmd| sandbox.point(cmd));
    drop(sandbox);
    expected.check(&first, "live run");

    let sources = first.sources();
    let bytes = sources.iter().map(|s| s.bytes).sum();
    let requests = sources.iter().map(|s| s.requests).sum();
    let retries: u64 = sources.iter().map(|s| s.retries).sum();
    let phases = first.phases();
    row(
        "whole run, live over HTTP",
        first.secs,
        Some(phases.records),
        Some(bytes),
        &format!(
            "{requests} requests, {retries} retries, peak memory {}",
            first.peak()
        ),
    );
    first.print_phases(&phases, bytes);

    let incremental = second.endpoint_streams(&streams(JOB));
    println!(
        "incremental run, nothing changed: {:.2} s (target ≤ 2 requests per stream, except \
         where the vendor's API gives no way to ask only for what changed)",
        second.secs
    );
    if !second.succeeded {
        // Printed, not asserted: what stopped it is a finding.
        for line in second
            .stdout
            .lines()
            .filter(|l| l.starts_with("source ") && !l.ends_with(" ok"))
        {
            println!("  FAILED: {line}");
        }
    }
    for source in second.sources() {
        println!("  {:<36} {:>6} requests", source.name, source.requests);
        for e in incremental.iter().filter(|e| e.source == source.name) {
            let per_stream = e.streams.map_or("streams unknown".into(), |n| {
                format!(
                    "{n} stream(s), {:.1} per stream",
                    e.per_stream().unwrap_or(0.0)
                )
            });
            let why = e
                .unfiltered
                .map_or(String::new(), |why| format!(" — no filter: {why}"));
            println!(
                "    {:<34} {:>6} pages     {per_stream}{why}",
                e.endpoint, e.pages
            );
        }
    }
    Live {
        secs: first.secs,
        pull_secs: phases.pull,
        bytes,
        requests,
        peak: first.peak(),
        incremental,
    }
}

/// Endpoints whose pages an incremental run cannot narrow to what changed, and why: the
/// performance issue's exception, "where a vendor API gives no way to filter".
const UNFILTERED: [(&str, &str); 2] = [
    (
        "hubspot/contacts_archived",
        "HubSpot's archived list takes no date filter, and its search never returns archived contacts",
    ),
    (
        "google_ads/search",
        "Google Ads restates past days (late conversions, invalid-click credits) without saying which; \
         the job's look-back is read again",
    ),
];

/// One endpoint's pages in a run, with the streams it serves (where the job file says) and
/// why it cannot be narrowed to what changed (where it cannot).
struct EndpointPages {
    source: String,
    endpoint: String,
    pages: u64,
    streams: Option<u64>,
    unfiltered: Option<&'static str>,
}

impl EndpointPages {
    fn per_stream(&self) -> Option<f64> {
        Some(self.pages as f64 / self.streams? as f64)
    }
}

/// Streams each endpoint of `job`'s sources serves on an incremental run, where the job file
/// says: HubSpot searches for changed contacts (one stream) and sweeps the archived ones
/// (another); Google Ads, Typeform and SurveyMonkey read one stream per customer, form or
/// survey.
fn streams(job: &str) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(job).expect("job file readable");
    let table: toml::Table = toml::from_str(&text).expect("job file is TOML");
    let sources = table["sources"].as_array().expect("[[sources]]");
    let mut streams = BTreeMap::new();
    for source in sources {
        let ids = |key: &str| source.get(key)?.as_array().map(|a| a.len() as u64);
        let endpoints = match source["kind"].as_str() {
            Some("hubspot") => vec![
                ("hubspot/contacts", Some(1)),
                ("hubspot/contacts_search", Some(1)),
                ("hubspot/contacts_archived", Some(1)),
            ],
            Some("google_ads") => vec![("google_ads/search", ids("customer_ids"))],
            Some("typeform") => vec![("typeform/responses", ids("form_ids"))],
            Some("surveymonkey") => vec![
                ("surveymonkey/survey_details", ids("survey_ids")),
                ("surveymonkey/responses", ids("survey_ids")),
            ],
            _ => vec![],
        };
        for (endpoint, n) in endpoints {
            if let Some(n) = n {
                streams.insert(endpoint.to_string(), n);
            }
        }
    }
    streams
}

/// The rate-limited pull's figures.
struct RateLimited {
    requests: u64,
    retries: u64,
    pull_secs: f64,
    refused: u64,
    refused_repeatedly: u64,
}

impl RateLimited {
    /// Pages ÷ allowed rate: the pull's wall if it kept exactly to the limit.
    fn ideal_secs(&self) -> f64 {
        self.requests as f64 / RATE_LIMIT_PER_SECOND as f64
    }
}

fn rate_limited_pull(bin: &str, root: &Path, seed: u64) -> RateLimited {
    println!(
        "\n== rate-limited pull: HubSpot alone, {RATE_LIMIT_SCALE} leads, \
         {RATE_LIMIT_PER_SECOND} requests per rolling second"
    );
    std::fs::remove_dir_all(root.join("target/bench-ratelimit-warehouse")).ok();
    let sandbox = Sandbox::start(bin, RATE_LIMIT_SCALE, seed);
    sandbox.admin(
        "POST",
        "/_admin/crm/hubspot_limits",
        &format!(r#"{{"burst": {RATE_LIMIT_PER_SECOND}, "interval_ms": 1000, "daily": 10000000}}"#),
    );
    let run = run_job(bin, RATE_LIMIT_JOB, |cmd| sandbox.point(cmd));
    let stats = sandbox.admin("GET", "/_admin/crm/stats", "");
    drop(sandbox);
    assert_eq!(
        run.rows("leads"),
        Expected::new(seed, RATE_LIMIT_SCALE).leads,
        "rate-limited run: leads rows"
    );
    let hubspot = run.source("hubspot");
    let result = RateLimited {
        requests: hubspot.requests,
        retries: hubspot.retries,
        pull_secs: hubspot.secs,
        refused: stats["hubspot_refused"].as_u64().expect("hubspot_refused"),
        refused_repeatedly: stats["hubspot_refused_repeatedly"]
            .as_u64()
            .expect("hubspot_refused_repeatedly"),
    };
    println!(
        "{} requests ({} retries): pages ÷ rate {:.2} s, pull {:.2} s = {:.3}× (target ≤ 1.05×); \
         sandbox refused {}, {} of them more than once (target 0)",
        result.requests,
        result.retries,
        result.ideal_secs(),
        result.pull_secs,
        result.pull_secs / result.ideal_secs(),
        result.refused,
        result.refused_repeatedly
    );
    assert_eq!(
        result.refused_repeatedly, 0,
        "a HubSpot request was refused twice"
    );
    result
}

/// The recorded pages, the floors of reading and parsing them, and the replayed run with
/// its phases: the rows both workloads print.
fn print_replay(pages: &Pages, replay: &Run) {
    println!(
        "{} pages, {:.1} MB of JSON, {} records",
        pages.files,
        pages.bytes as f64 / 1e6,
        pages.records
    );
    let (records, bytes) = (Some(pages.records), Some(pages.bytes));
    row("read files", pages.read_secs, records, bytes, "");
    row(
        "parse JSON only (1 core, floor)",
        pages.parse_secs,
        records,
        bytes,
        "serde_json::Value",
    );
    row(
        "whole run, replayed (release)",
        replay.secs,
        records,
        bytes,
        &format!("peak memory {}{}", replay.peak(), replay.cpu_note()),
    );
    replay.print_phases(&replay.phases(), pages.bytes);
}

/// The scale's figures against the performance issue's targets.
fn print_targets(scale: usize, pages: &Pages, replay: &Run, live: &Live, rate: &RateLimited) {
    // The target holds for the streams a vendor lets a run narrow to what changed.
    let filtered: Vec<(f64, &str)> = live
        .incremental
        .iter()
        .filter(|e| e.unfiltered.is_none())
        .filter_map(|e| Some((e.per_stream()?, e.endpoint.as_str())))
        .collect();
    let worst = filtered.iter().max_by(|a, b| a.0.total_cmp(&b.0));
    let unfiltered: Vec<String> = live
        .incremental
        .iter()
        .filter(|e| e.unfiltered.is_some())
        .map(|e| format!("{} {}", e.endpoint, e.pages))
        .collect();
    let incremental = format!(
        "{} pages; worst {}; without a filter: {}",
        live.incremental.iter().map(|e| e.pages).sum::<u64>(),
        worst.map_or("?".into(), |(n, name)| format!(
            "{n:.1} per stream ({name})"
        )),
        if unfiltered.is_empty() {
            "none".to_string()
        } else {
            unfiltered.join(", ")
        }
    );
    let rows = [
        [
            "whole run, replayed".to_string(),
            format!(
                "{:.0} MB/s of JSON, {:.2} s at {scale} leads",
                pages.bytes as f64 / 1e6 / replay.secs,
                replay.secs
            ),
            "≥ 240 MB/s (≤ 4 s at 1M leads)".to_string(),
        ],
        [
            "peak memory, replayed run".to_string(),
            replay.peak(),
            "≤ 256 MiB".to_string(),
        ],
        [
            "peak memory, live run".to_string(),
            live.peak.clone(),
            "≤ 256 MiB".to_string(),
        ],
        [
            "HTTP pull (live run's pull phase)".to_string(),
            format!(
                "{:.0} MB/s, {:.1} MB in {:.2} s ({} requests; whole run {:.2} s)",
                live.bytes as f64 / 1e6 / live.pull_secs,
                live.bytes as f64 / 1e6,
                live.pull_secs,
                live.requests,
                live.secs
            ),
            "≥ 150 MB/s".to_string(),
        ],
        [
            format!("rate-limited pull ({RATE_LIMIT_SCALE} leads)"),
            format!(
                "{:.3}× pages ÷ rate; refused {}, twice {}",
                rate.pull_secs / rate.ideal_secs(),
                rate.refused,
                rate.refused_repeatedly
            ),
            "≤ 1.05×, no request refused twice".to_string(),
        ],
        [
            "incremental, nothing changed".to_string(),
            incremental,
            "≤ 2 requests per stream (where the API can filter)".to_string(),
        ],
    ];
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    println!("\n{:<w0$} | {:<w1$} | target", "measure", "result");
    println!(
        "{}-|-{}-|-{}",
        "-".repeat(w0),
        "-".repeat(w1),
        "-".repeat(6)
    );
    for [measure, result, target] in &rows {
        println!("{measure:<w0$} | {result:<w1$} | {target}");
    }
}

fn bench_scale(bin: &str, root: &Path, seed: u64, scale: usize, rate: &RateLimited) {
    let dir = Workload::Default.pages_dir(root, seed, scale);
    println!(
        "\n== {scale} leads (seed {seed}) — pages in {}",
        dir.display()
    );
    let recorded = record(bin, &dir, scale, seed, Workload::Default);
    println!("recording (in-process sandbox): {recorded}");
    let pages = read_and_parse(&dir);
    let expected = Expected::new(seed, scale);

    let warehouse = root.join("target/bench-warehouse");
    std::fs::remove_dir_all(&warehouse).ok();
    let replay = run_job(bin, JOB, |cmd| {
        cmd.arg("--replay").arg(&dir);
    });
    expected.check(&replay, "replay");

    print_replay(&pages, &replay);

    let live = live_runs(bin, root, scale, seed, &expected);
    println!("row counts of the replayed and the live run match the sandbox's totals");
    print_targets(scale, &pages, &replay, &live, rate);
}

/// The figures of one scale of the spend-heavy workload, for the closing comparison.
struct SpendHeavyScale {
    scale: usize,
    secs: f64,
    /// The replayed run's user + system CPU-seconds, where the OS tells.
    cpu: Option<f64>,
    json_bytes: u64,
    peak: String,
}

/// One scale of the spend-heavy workload: record (cached), floors, the replayed run checked
/// against the sandbox's totals, its phases and its datasets.
fn spend_heavy_scale(bin: &str, root: &Path, seed: u64, scale: usize) -> SpendHeavyScale {
    let workload = Workload::SpendHeavy;
    let dir = workload.pages_dir(root, seed, scale);
    let shape = SpendShape::heavy(scale);
    println!(
        "\n== spend-heavy, {scale} leads (seed {seed}; {} Google and {} Meta campaigns over {} \
         days, 1 in {SPEND_MALFORMED_EVERY} records malformed) — pages in {}",
        shape.google_campaigns.unwrap_or(0),
        shape.meta_campaigns.unwrap_or(0),
        shape.days.unwrap_or(0),
        dir.display()
    );
    let recorded = record(bin, &dir, scale, seed, workload);
    println!("recording (in-process sandbox): {recorded}");
    let pages = read_and_parse(&dir);
    let expected = Expected::for_workload(workload, seed, scale);

    std::fs::remove_dir_all(root.join("target/bench-warehouse")).ok();
    let replay = run_job(bin, workload.job(), |cmd| {
        cmd.arg("--replay").arg(&dir);
    });
    expected.check(&replay, "spend-heavy replay");

    print_replay(&pages, &replay);

    println!(
        "per dataset (each source's own pull as the summary prints it; they run concurrently):"
    );
    let elapsed: BTreeMap<String, f64> = replay
        .sources()
        .into_iter()
        .map(|s| (s.name, s.elapsed))
        .collect();
    for (source, pulled) in replay.pulled() {
        let source_dir = dir.join(&source);
        let files = files_under(&source_dir);
        let json: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        row(
            &format!("  {source}"),
            elapsed.get(&source).copied().unwrap_or(f64::NAN),
            Some(pulled.read),
            Some(json),
            &format!(
                "{} pages, {:.1} MB, {} read, {} rejected",
                files.len(),
                json as f64 / 1e6,
                pulled.read,
                pulled.rejected
            ),
        );
    }
    println!("row counts (rejects included) match the sandbox's totals");
    println!(
        "targets at 1 M leads: ≤ 4 s replayed (≥ 240 MB/s of JSON), peak memory ≤ 256 MiB; \
         here {:.0} MB/s, {:.2} s, {}",
        pages.bytes as f64 / 1e6 / replay.secs,
        replay.secs,
        replay.peak()
    );
    SpendHeavyScale {
        scale,
        secs: replay.secs,
        cpu: replay.cpu.map(|(user, system)| user + system),
        json_bytes: pages.bytes,
        peak: replay.peak(),
    }
}

/// `12.3 MiB` as the summary prints it, in bytes.
fn peak_bytes(peak: &str) -> Option<u64> {
    let (number, unit) = peak.trim().split_once(' ')?;
    parse_size(number, unit)
}

/// Every scale's replay side by side, peak memory against the 1 M figure when it was run.
fn print_spend_heavy(results: &[SpendHeavyScale]) {
    let million = results
        .iter()
        .find(|r| r.scale == 1_000_000)
        .and_then(|r| peak_bytes(&r.peak));
    println!("\n== spend-heavy, replayed");
    println!(
        "{:>10} | {:>9} | {:>8} | {:>8} | {:>8} | {:>11} | {:>9}",
        "leads", "JSON MB", "wall s", "CPU s", "MB/s", "peak", "÷ 1 M"
    );
    for r in results {
        let ratio = match (million, peak_bytes(&r.peak)) {
            (Some(m), Some(p)) => format!("{:.2}×", p as f64 / m as f64),
            _ => "—".into(),
        };
        println!(
            "{:>10} | {:>9.1} | {:>8.2} | {:>8} | {:>8.0} | {:>11} | {:>9}",
            r.scale,
            r.json_bytes as f64 / 1e6,
            r.secs,
            r.cpu.map_or("—".into(), |cpu| format!("{cpu:.2}")),
            r.json_bytes as f64 / 1e6 / r.secs,
            r.peak,
            ratio
        );
    }
    println!("targets: ≤ 4 s and ≤ 256 MiB at 1 M leads; peak at 10 M ≤ 1.25× the 1 M figure");
}

fn main() {
    let args = args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Made absolute before the working directory becomes the package root.
    let binary = args.binary.as_ref().map(|path| {
        std::path::absolute(path).unwrap_or_else(|e| panic!("--binary {}: {e}", path.display()))
    });
    let bin = match &binary {
        Some(path) => {
            assert!(path.is_file(), "--binary {}: no such file", path.display());
            path.to_str().expect("a UTF-8 path")
        }
        None => env!("CARGO_BIN_EXE_funnelhouse"),
    };
    println!("binary: {bin}");
    std::env::set_current_dir(root).expect("cd to the package root");
    match args.workload {
        Workload::Default => {
            let rate = rate_limited_pull(bin, root, args.seed);
            for &scale in &args.scales {
                bench_scale(bin, root, args.seed, scale, &rate);
            }
        }
        Workload::SpendHeavy => {
            let results: Vec<SpendHeavyScale> = args
                .scales
                .iter()
                .map(|&scale| spend_heavy_scale(bin, root, args.seed, scale))
                .collect();
            print_spend_heavy(&results);
        }
    }
}
