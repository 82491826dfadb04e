//! The end-to-end benchmark: records a full pull of the sandbox's vendor pages once per
//! scale (`funnelhouse sandbox --record`, design §9 layout), then measures, per phase —
//! reading the files, parsing the JSON alone (one core, a floor), and the whole pipeline
//! replayed from the pages by the release binary (parse, normalize, write ZSTD Parquet and
//! everything else a run does) — wall time, records/s, MB/s of JSON, and the peak resident
//! memory of the run's process. It checks the row counts against the sandbox's own totals,
//! so a fast wrong pipeline cannot pass.
//!
//! `cargo bench --bench pipeline -- --scale 100000 --scale 1000000`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use funnelhouse::sandbox::{SandboxData, SandboxOptions};

struct Args {
    scales: Vec<usize>,
    seed: u64,
}

fn args() -> Args {
    let mut scales = Vec::new();
    let mut seed = 42;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--scale" => scales.extend(
                it.next()
                    .and_then(|v| v.replace('_', "").parse::<usize>().ok()),
            ),
            "--seed" => seed = it.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            _ => {} // cargo passes `--bench`
        }
    }
    if scales.is_empty() {
        scales.push(100_000);
    }
    Args { scales, seed }
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

/// The environment a replay of `jobs/bench.toml` needs: no network is used, but the job
/// file names its credentials.
fn job_env(cmd: &mut Command) -> &mut Command {
    cmd.env("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9")
        .env("FUNNELHOUSE_HASH_KEY", "bench-key")
        .env("HUBSPOT_TOKEN", "unused")
        .env("GOOGLE_ADS_ACCESS_TOKEN", "unused")
        .env("GOOGLE_ADS_DEVELOPER_TOKEN", "unused")
        .env("TYPEFORM_TOKEN", "unused")
        .env("SURVEYMONKEY_TOKEN", "unused")
        .env("FUNNELHOUSE_LOG", "warn")
}

fn record(bin: &str, dir: &Path, scale: usize, seed: u64) -> String {
    let marker = dir.join("RECORDED");
    if let Ok(line) = std::fs::read_to_string(&marker) {
        return line;
    }
    std::fs::remove_dir_all(dir).ok();
    let out = job_env(&mut Command::new(bin))
        .args(["sandbox", "--record"])
        .arg(dir)
        .args([
            "--scale",
            &scale.to_string(),
            "--seed",
            &seed.to_string(),
            "--job",
            "jobs/bench.toml",
        ])
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

fn row(phase: &str, secs: f64, records: u64, bytes: u64, note: &str) {
    println!(
        "{phase:<34} {secs:>8.2} s {:>12.0} rec/s {:>9.1} MB/s  {note}",
        records as f64 / secs.max(1e-9),
        bytes as f64 / 1e6 / secs.max(1e-9)
    );
}

fn main() {
    let args = args();
    let bin = env!("CARGO_BIN_EXE_funnelhouse");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("cd to the package root");
    for &scale in &args.scales {
        let dir = root.join(format!("target/bench-pages/seed{}-scale{scale}", args.seed));
        println!(
            "\n== {scale} leads (seed {}) — pages in {}",
            args.seed,
            dir.display()
        );
        let recorded = record(bin, &dir, scale, args.seed);
        println!("HTTP pull from the sandbox: {recorded}");

        let files = files_under(&dir);
        let started = Instant::now();
        let bodies: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).expect("page readable"))
            .collect();
        let read_secs = started.elapsed().as_secs_f64();
        let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();

        let started = Instant::now();
        let mut records = 0u64;
        for body in &bodies {
            let value: serde_json::Value = serde_json::from_slice(body).expect("page is JSON");
            for key in ["results", "items", "data"] {
                records += value
                    .get(key)
                    .and_then(|v| v.as_array())
                    .map_or(0, |a| a.len() as u64);
            }
        }
        let parse_secs = started.elapsed().as_secs_f64();
        drop(bodies);

        let warehouse = root.join("target/bench-warehouse");
        std::fs::remove_dir_all(&warehouse).ok();
        let started = Instant::now();
        let out = job_env(&mut Command::new(bin))
            .args(["run", "jobs/bench.toml", "--replay"])
            .arg(&dir)
            .output()
            .expect("funnelhouse runs");
        let run_secs = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "replay failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = |table: &str| -> u64 {
            stdout
                .lines()
                .skip_while(|l| l.split_whitespace().next() != Some("table"))
                .find(|l| l.split_whitespace().next() == Some(table))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let peak = stdout
            .lines()
            .find_map(|l| l.split("peak memory ").nth(1))
            .unwrap_or("?")
            .to_string();

        let data = SandboxData::generate(&SandboxOptions {
            seed: args.seed,
            scale,
            ..SandboxOptions::default()
        });
        let totals = data.totals();
        // Of the ad platforms the sandbox serves, the bench job pulls Google Ads.
        let google_rows = data
            .spend_facts()
            .iter()
            .filter(|f| f.platform == "google_ads")
            .count();
        assert_eq!(rows("leads") as usize, totals.contacts, "leads rows");
        assert_eq!(rows("spend") as usize, google_rows, "spend rows");
        assert_eq!(
            rows("survey_responses") as usize,
            totals.survey_responses + totals.surveymonkey.responses,
            "survey rows"
        );

        println!(
            "{} pages, {:.1} MB of JSON, {records} records",
            files.len(),
            bytes as f64 / 1e6
        );
        row("read files", read_secs, records, bytes, "");
        row(
            "parse JSON only (1 core, floor)",
            parse_secs,
            records,
            bytes,
            "serde_json::Value",
        );
        row(
            "whole run, replayed (release)",
            run_secs,
            records,
            bytes,
            &format!("peak memory {peak}"),
        );
        println!("row counts match the sandbox's totals");
    }
}
