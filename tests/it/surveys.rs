//! Survey connectors against the sandbox: counts, scored responses and the score
//! distribution equal the sandbox's own; a second 0–10 question never leaks into `score`;
//! partial SurveyMonkey responses are kept unscored; no raw respondent identifier reaches
//! the warehouse or the logs; a second run adds only the new responses.

use std::collections::HashMap;
use std::process::Command;

use crate::support::*;

fn distribution(warehouse: &std::path::Path, source_system: &str) -> [usize; 11] {
    let mut out = [0usize; 11];
    for row in duckdb(&format!(
        "SELECT score, count(*) FROM {} WHERE source_system = '{source_system}' AND score IS NOT NULL GROUP BY 1",
        table(warehouse, "survey_responses")
    )) {
        out[row[0].as_i64().unwrap() as usize] = row[1].as_i64().unwrap() as usize;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_survey_tools_match_the_sandbox_and_never_write_identifiers() {
    let sandbox = sandbox(600, 29).await;
    let totals = sandbox.data.totals();
    let sm = &totals.surveymonkey;
    assert!(sm.partial > 0 && sm.malformed > 0, "{sm:?}");
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let job_path = dir.path().join("surveys.toml");
    let job = std::fs::read_to_string(repo_job("demo.toml"))
        .unwrap()
        .replace(
            "warehouse = \"./warehouse\"",
            &format!("warehouse = {:?}", warehouse.display().to_string()),
        );
    std::fs::write(&job_path, job).unwrap();
    copy_job_assets(dir.path());

    // Through the binary, at debug level, so every log line can be scanned.
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .args(["run", job_path.to_str().unwrap()])
        .envs(env_for(&sandbox))
        .env("FUNNELHOUSE_LOG", "debug")
        .output()
        .unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{logs}");

    let count = |filter: &str| {
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE {filter}",
            table(&warehouse, "survey_responses")
        ))
    };
    // Typeform: completed responses only; the malformed ones are rejects.
    assert_eq!(
        count("source_system = 'typeform'") as usize,
        totals.survey_responses - totals.survey_responses_malformed
    );
    assert_eq!(
        count("source_system = 'typeform' AND score IS NOT NULL") as usize,
        totals.survey_scored
    );
    assert_eq!(
        distribution(&warehouse, "typeform"),
        totals.enps_distribution,
        "workload answers never leak into score"
    );
    assert!(count("source_system = 'typeform' AND extra_scores LIKE '%manager_support%'") > 0);
    assert_eq!(
        count("source_system = 'typeform' AND extra_scores LIKE '%workload%'"),
        0
    );

    // SurveyMonkey: partial responses kept and never scored; unknown choices rejected.
    assert_eq!(
        count("source_system = 'surveymonkey'") as usize,
        sm.responses - sm.malformed
    );
    assert_eq!(
        count("source_system = 'surveymonkey' AND response_status = 'partial'") as usize,
        sm.partial
    );
    assert_eq!(
        count(
            "source_system = 'surveymonkey' AND response_status = 'partial' AND score IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        count("source_system = 'surveymonkey' AND score IS NOT NULL") as usize,
        sm.scored
    );
    assert_eq!(
        distribution(&warehouse, "surveymonkey"),
        sm.enps_distribution
    );
    let rejected = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE source = 'pulse_sm' AND reason LIKE '%not a choice of question%'",
        table(&warehouse, "_rejects")
    ));
    assert_eq!(rejected as usize, sm.malformed);
    assert_eq!(
        count("kept_text IS NOT NULL"),
        0,
        "free text is dropped unless kept"
    );

    // No raw identifier in any file written or any log line.
    let mut identifiers: Vec<&String> = totals.survey_raw_identifiers.iter().collect();
    identifiers.extend(sm.raw_identifiers.iter());
    assert!(identifiers.len() > 20);
    let mut written = Vec::new();
    for path in walk(&warehouse) {
        let bytes = std::fs::read(&path).unwrap();
        // Raw pages are zstd-compressed: scan what they decompress to.
        let bytes = if path.extension().is_some_and(|e| e == "zst") {
            zstd::decode_all(&bytes[..]).unwrap()
        } else {
            bytes
        };
        written.push((path, String::from_utf8_lossy(&bytes).into_owned()));
    }
    for id in identifiers {
        assert!(
            !logs.contains(id.as_str()),
            "raw identifier {id} in the logs"
        );
        for (path, text) in &written {
            assert!(
                !text.contains(id.as_str()),
                "raw identifier {id} in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_adds_only_the_new_responses() {
    let sandbox = sandbox(500, 0).await;
    let cutoff = (today() - chrono::Duration::days(20))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    sandbox.data.hold_survey_responses_after(cutoff);
    let first_typeform = sandbox.data.visible_typeform_responses();
    let first_sm = sandbox.data.visible_surveymonkey().responses;
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let env: HashMap<String, String> = env_for(&sandbox);
    let job = demo_job_into(&warehouse, &env);
    let lookup = |name: &str| env.get(name).cloned();

    let first = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .unwrap();
    assert!(first.succeeded(), "{first:#?}");
    let responses = |system: &str| {
        duckdb_count(&format!(
            "SELECT count(*) FROM {} WHERE source_system = '{system}'",
            table(&warehouse, "survey_responses")
        )) as usize
    };
    assert_eq!(responses("typeform"), first_typeform);
    assert_eq!(responses("surveymonkey"), first_sm);

    sandbox.data.release_survey_responses();
    let all = sandbox.data.totals();
    let second = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .unwrap();
    assert!(second.succeeded(), "{second:#?}");
    assert_eq!(responses("typeform"), all.survey_responses);
    assert_eq!(responses("surveymonkey"), all.surveymonkey.responses);
    let distinct = duckdb_count(&format!(
        "SELECT count(DISTINCT (source_system, response_id)) FROM {}",
        table(&warehouse, "survey_responses")
    ));
    assert_eq!(
        distinct as usize,
        all.survey_responses + all.surveymonkey.responses,
        "no duplicates after the merge"
    );

    // The second run read only what was new, plus the responses of the watermark's own
    // second that `since` re-reads inclusively (de-duplicated by id).
    let read = second.datasets[&funnelhouse::normalize::Dataset::SurveyResponses].read as usize;
    let new = (all.survey_responses - first_typeform) + (all.surveymonkey.responses - first_sm);
    assert!(
        read >= new && read <= new + 4,
        "second run read {read}, new responses {new}"
    );
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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
    out
}
