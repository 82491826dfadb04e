//! Hostile and broken vendor bodies, through the real binary and sandbox: a page nested
//! 20,000 levels deep (`deep=VENDOR`) and a 200 answer cut in half (`cut=VENDOR`) fail their
//! sources with a clear error, not the process. The run exits 1 with a `partial` `_runs`
//! row naming them, every other source commits, the lock is released, and no e-mail
//! address or respondent id is written anywhere: not in `_raw/`, not in `_runs.error`, not
//! on stderr. Replaying such a run fails the same way.

use std::path::{Path, PathBuf};
use std::process::Output;

use funnelhouse::sandbox::{FaultProfile, RunningSandbox, SandboxOptions, start_with_faults};

use crate::harness::*;
use crate::support::*;

/// The sources of `jobs/demo.toml` that read HubSpot, Typeform and SurveyMonkey.
const HOSTILE: [&str; 3] = ["hubspot", "pulse", "pulse_sm"];

/// The whole demo job (every connector) writing into `warehouse`.
fn demo_job_file(dir: &Path, warehouse: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo_job("demo.toml")).expect("demo job readable");
    let text = text.replace(
        "warehouse = \"./warehouse\"",
        &format!("warehouse = {:?}", warehouse.display().to_string()),
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("job written");
    copy_job_assets(dir);
    path
}

/// Run the demo job with the binary against a sandbox injecting `profile`.
async fn run_under(profile: &str, warehouse: &Path, dir: &Path) -> (RunningSandbox, Output) {
    let sandbox = start_with_faults(
        SandboxOptions {
            seed: 7,
            scale: 200,
            today: today(),
            malformed_every: 0,
            ..SandboxOptions::default()
        },
        Some(FaultProfile::parse(profile).expect("profile parses")),
    )
    .await
    .expect("sandbox starts");
    let job = demo_job_file(dir, warehouse);
    let out = run_binary(&env_for(&sandbox), &["run", &job.display().to_string()]);
    (sandbox, out)
}

/// What a hostile run must leave: exit 1 (not a crash), one `partial` run naming each
/// hostile source with `expected`, the other sources' data committed, no lock left.
fn assert_failed_alone(out: &Output, warehouse: &Path, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    let runs = assert_runs_add_up(warehouse);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (_, status, error) = &runs[0];
    assert_eq!(status, "partial", "{runs:?}");
    let error = error.as_deref().unwrap_or_default();
    for source in HOSTILE {
        assert!(
            error.contains(&format!("{source}: ")),
            "_runs.error names {source}: {error}"
        );
    }
    assert!(error.contains(expected), "_runs.error says why: {error}");
    assert_clean(warehouse);
    // The other sources committed.
    let leads = duckdb(&format!(
        "SELECT DISTINCT source_system FROM {}",
        table(warehouse, "leads")
    ));
    assert_eq!(leads, vec![vec![serde_json::json!("salesforce")]]);
    let platforms = duckdb_count(&format!(
        "SELECT count(DISTINCT platform) FROM {}",
        table(warehouse, "spend")
    ));
    assert_eq!(platforms, 3, "Google, Meta and LinkedIn spend committed");
}

/// `local@domain` tokens in `text` that are not a keyed hash (`hmac:<hex>@domain`).
fn raw_emails(text: &str) -> Vec<String> {
    let local = |c: char| c.is_alphanumeric() || "._%+-'".contains(c);
    let mut found = Vec::new();
    for (at, _) in text.match_indices('@') {
        let before: String = text[..at]
            .chars()
            .rev()
            .take_while(|&c| local(c) || c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after: String = text[at + 1..]
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '.' || c == '-')
            .collect();
        let hashed = before
            .strip_prefix("hmac:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !hashed && before.chars().any(local) && after.contains('.') {
            found.push(format!("{before}@{after}"));
        }
    }
    found
}

/// No e-mail address and no raw identifier the sandbox served, in any file under the
/// warehouse (raw pages decompressed), in `_runs.error`, or in the binary's output.
fn assert_no_personal_data(sandbox: &RunningSandbox, warehouse: &Path, out: &Output) {
    let totals = sandbox.data.totals();
    let mut identifiers: Vec<String> = totals.contact_emails.clone();
    identifiers.extend(totals.survey_raw_identifiers.iter().cloned());
    identifiers.extend(totals.surveymonkey.raw_identifiers.iter().cloned());
    identifiers.push("jane.doe".into());
    let mut texts = vec![
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
    ];
    let errors = duckdb(&format!(
        "SELECT coalesce(error, '') FROM {}",
        table(warehouse, "_runs")
    ));
    texts.push(("_runs.error".into(), format!("{errors:?}")));
    let files = walk(warehouse);
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().contains("/_raw/")
                && p.to_string_lossy().contains("/hubspot/")),
        "the hostile HubSpot page is landed (redacted): {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).expect("file readable");
        let bytes = if path.extension().is_some_and(|e| e == "zst") {
            zstd::decode_all(&bytes[..]).expect("zstd")
        } else {
            bytes
        };
        texts.push((
            path.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (what, text) in &texts {
        let emails = raw_emails(text);
        assert!(
            emails.is_empty(),
            "e-mail addresses in {what}: {:?}",
            &emails[..emails.len().min(5)]
        );
        for id in &identifiers {
            assert!(!text.contains(id.as_str()), "raw identifier {id} in {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_page_fails_its_source_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let (sandbox, out) = run_under(
        "deep=hubspot,deep=typeform,deep=surveymonkey",
        &warehouse,
        dir.path(),
    )
    .await;
    assert!(sandbox.faults.as_ref().unwrap().counts().hostile >= 3);
    assert_failed_alone(&out, &warehouse, "nested deeper than");
    assert_no_personal_data(&sandbox, &warehouse, &out);

    // Replaying the landed pages meets the same (scrubbed, still too deep) bodies: the same
    // clear failure, no crash.
    let run_id = assert_runs_add_up(&warehouse)[0].0.clone();
    let job = dir.path().join("job.toml").display().to_string();
    let replayed = run_binary(&env_for(&sandbox), &["reprocess", &job, "--run", &run_id]);
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nested deeper than"), "{stderr}");
    assert_clean(&warehouse);
    assert_no_personal_data(&sandbox, &warehouse, &replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_200_answer_leaks_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let (sandbox, out) = run_under(
        "cut=hubspot,cut=typeform,cut=surveymonkey",
        &warehouse,
        dir.path(),
    )
    .await;
    assert!(sandbox.faults.as_ref().unwrap().counts().hostile >= 3);
    assert_failed_alone(&out, &warehouse, "not JSON");
    assert_no_personal_data(&sandbox, &warehouse, &out);
}

#[test]
fn the_email_check_finds_raw_addresses_and_passes_hashes() {
    let hash = "a".repeat(64);
    assert_eq!(
        raw_emails(&format!("x jane.doe@corp.example hmac:{hash}@corp.example")),
        vec!["jane.doe@corp.example".to_string()]
    );
    assert!(raw_emails("no address @ here, user@localhost").is_empty());
}
