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

pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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

/// A job grouping eNPS by `team` from the sandbox's hidden field / custom variable, and one
/// taking it only from the "Which team are you in?" question of each tool (the hidden
/// field and custom variable pointed elsewhere), write the same `enps` team rows — groups
/// at, above and below the anonymity threshold, suppression included. The question job
/// also groups by `tenure` (a Typeform dropdown with no column of its own); SurveyMonkey
/// asks no tenure, which `_runs.warnings` says instead of reporting one null group quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_asked_as_a_question_gives_the_same_enps_as_the_hidden_field() {
    use funnelhouse::config::parse_job;
    let sandbox = sandbox(600, 0).await;
    let env = env_for(&sandbox);
    let lookup = |name: &str| env.get(name).cloned();
    let dir = tempfile::tempdir().unwrap();
    let job = |name: &str, question: bool| {
        let warehouse = dir.path().join(name);
        let (tf_groups, sm_groups, group_by) = if question {
            (
                "group_questions = { team = \"which_team\", tenure = \"tenure\" }\n\
                 [sources.hidden_fields]\nteam = \"not_sent\"\n",
                "group_questions = { team = \"640001005\" }\n\
                 [sources.custom_variables]\nteam = \"not_sent\"\n",
                "[\"team\", \"tenure\"]",
            )
        } else {
            ("", "", "[\"team\"]")
        };
        let text = format!(
            "name = {name:?}\nwarehouse = {:?}\nhash_key = \"${{FUNNELHOUSE_HASH_KEY}}\"\n\
             \n[[sources]]\nname = \"pulse\"\nkind = \"typeform\"\n\
             base_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/typeform\"\ntoken = \"${{TYPEFORM_TOKEN}}\"\n\
             form_ids = [\"pulse2026\"]\n{tf_groups}\
             \n[[sources]]\nname = \"pulse_sm\"\nkind = \"surveymonkey\"\n\
             base_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/surveymonkey\"\n\
             token = \"${{SURVEYMONKEY_TOKEN}}\"\nsurvey_ids = [\"318842756\"]\n\
             enps_question_id = \"640001001\"\n{sm_groups}\
             \n[metrics.enps]\nperiod = \"quarter\"\ngroup_by = {group_by}\n",
            warehouse.display().to_string()
        );
        let parsed = parse_job(&dir.path().join(format!("{name}.toml")), &text, &lookup)
            .unwrap_or_else(|d| panic!("test job is valid: {d:?}\n{text}"));
        (parsed, warehouse)
    };
    let mut warehouses = Vec::new();
    for (name, question) in [("viahidden", false), ("viaquestion", true)] {
        let (parsed, warehouse) = job(name, question);
        let report = funnelhouse::pipeline::run_job(&parsed, &lookup, run_options())
            .await
            .expect("run completes");
        assert!(report.succeeded(), "{report:#?}");
        warehouses.push(warehouse);
    }
    let teams = |warehouse: &std::path::Path| {
        duckdb(&format!(
            "SELECT survey_id, period, group_value, respondents, enps, suppressed FROM {}
             WHERE dimension = 'team' ORDER BY ALL",
            table(warehouse, "enps")
        ))
    };
    let (hidden, question) = (teams(&warehouses[0]), teams(&warehouses[1]));
    assert_eq!(hidden, question);
    assert!(
        question.iter().all(|r| !r[2].is_null()),
        "every response has a team: {question:?}"
    );
    for survey in ["pulse2026", "318842756"] {
        let of = |suppressed: bool| {
            question
                .iter()
                .filter(|r| r[0] == survey && r[5] == serde_json::json!(suppressed))
                .count()
        };
        assert!(of(true) > 0 && of(false) > 0, "{survey}: {question:?}");
    }
    // Suppressed groups show no counts; shown ones have at least the threshold.
    for row in &question {
        if row[5] == serde_json::json!(true) {
            assert!(row[3].is_null() && row[4].is_null(), "{row:?}");
        } else {
            assert!(row[3].as_i64().unwrap() >= 5, "{row:?}");
        }
    }
    let tenure = duckdb_count(&format!(
        "SELECT count(*) FROM {} WHERE dimension = 'tenure' AND survey_id = 'pulse2026'
         AND group_value IN ('Less than 1 year', '1-2 years', '2-5 years', '5+ years')",
        table(&warehouses[1], "enps")
    ));
    assert!(tenure > 0);
    let warnings = |warehouse: &std::path::Path| {
        duckdb(&format!(
            "SELECT coalesce(warnings, '') FROM {}",
            table(warehouse, "_runs")
        ))[0][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(!warnings(&warehouses[0]).contains("enps:"));
    let said = warnings(&warehouses[1]);
    assert!(
        said.contains("enps: survey 318842756: dimension `tenure` is null in all"),
        "{said}"
    );
    assert!(!said.contains("survey pulse2026: dimension"), "{said}");
}

/// `survey_responses` files written before the `groups` column existed: the next incremental
/// run merges their rows into its file (the new column null for them) instead of failing on
/// the schema difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_written_before_the_groups_column_still_merge() {
    use funnelhouse::config::parse_job;
    let sandbox = sandbox(300, 0).await;
    let cutoff = (today() - chrono::Duration::days(20))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    sandbox.data.hold_survey_responses_after(cutoff);
    let first = sandbox.data.visible_typeform_responses();
    let env = env_for(&sandbox);
    let lookup = |name: &str| env.get(name).cloned();
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("w");
    let text = format!(
        "name = \"old\"\nwarehouse = {:?}\nhash_key = \"${{FUNNELHOUSE_HASH_KEY}}\"\n\
         \n[[sources]]\nname = \"pulse\"\nkind = \"typeform\"\n\
         base_url = \"${{FUNNELHOUSE_SANDBOX_URL}}/typeform\"\ntoken = \"${{TYPEFORM_TOKEN}}\"\n\
         form_ids = [\"pulse2026\"]\ngroup_questions = {{ tenure = \"tenure\" }}\n",
        warehouse.display().to_string()
    );
    let job = parse_job(&dir.path().join("old.toml"), &text, &lookup).unwrap();
    let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    // As an earlier version wrote it: no `groups` column.
    let file = warehouse.join("survey_responses/old.pulse.parquet");
    let old = dir.path().join("old.parquet");
    duckdb(&format!(
        "COPY (SELECT * EXCLUDE (groups) FROM read_parquet('{}')) TO '{}' (FORMAT parquet, COMPRESSION zstd)",
        file.display(),
        old.display()
    ));
    std::fs::rename(&old, &file).unwrap();

    sandbox.data.release_survey_responses();
    let report = funnelhouse::pipeline::run_job(&job, &lookup, run_options())
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let all = sandbox.data.totals().survey_responses;
    let counts = duckdb(&format!(
        "SELECT count(*), count(groups) FROM {}",
        table(&warehouse, "survey_responses")
    ));
    let (rows, with_groups) = (
        counts[0][0].as_i64().unwrap(),
        counts[0][1].as_i64().unwrap(),
    );
    assert_eq!(rows as usize, all);
    // The new responses have their tenure; the carried ones none (the re-read second of
    // the inclusive `since` may bring one or two back with theirs).
    let with_groups = with_groups as usize;
    assert!(
        with_groups >= all - first && with_groups < all - first + 5 && first > 5,
        "{with_groups} of {all} rows have groups; {first} came with the first run"
    );
}
