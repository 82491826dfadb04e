//! Known credential values never reach a file in the warehouse (raw pages included), the
//! logs, or an error — not when the run succeeds, not when the vendors refuse the tokens,
//! and not when credentials sit in the URL.

use std::collections::HashMap;
use std::path::Path;

use crate::harness::*;
use crate::support::*;

fn scan(warehouse: &Path, output: &std::process::Output, secrets: &[&str]) {
    let mut texts = vec![
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ];
    for file in walk(warehouse) {
        let bytes = std::fs::read(&file).unwrap();
        let bytes = if file.extension().is_some_and(|e| e == "zst") {
            zstd::decode_all(&bytes[..]).unwrap()
        } else {
            bytes
        };
        texts.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    for secret in secrets {
        for text in &texts {
            assert!(
                !text.contains(secret),
                "secret `{secret}` leaked into:\n{text:.2000}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_files_logs_or_errors() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> = env_for(&sandbox);
    env.insert("FUNNELHOUSE_LOG".into(), "debug".into());
    let good: Vec<String> = [
        "HUBSPOT_TOKEN",
        "GOOGLE_ADS_ACCESS_TOKEN",
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "TYPEFORM_TOKEN",
        "FUNNELHOUSE_HASH_KEY",
    ]
    .iter()
    .map(|k| env[*k].clone())
    .collect();
    let good: Vec<&str> = good.iter().map(String::as_str).collect();

    // A successful run, with debug logs.
    let warehouse = dir.path().join("ok");
    let job = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let out = run_binary(&env, &["run", &job.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    scan(&warehouse, &out, &good);

    // Every vendor refuses the tokens: the 401s are reported without them.
    let refused = [
        ("HUBSPOT_TOKEN", "hs-secret-5f1e0c"),
        ("GOOGLE_ADS_ACCESS_TOKEN", "ga-secret-8d2b7a"),
        ("GOOGLE_ADS_DEVELOPER_TOKEN", "dev-secret-3c9e41"),
        ("TYPEFORM_TOKEN", "tf-secret-a04f6d"),
    ];
    let mut bad = env.clone();
    for (key, value) in refused {
        bad.insert(key.into(), value.into());
    }
    let warehouse = dir.path().join("refused");
    let job = write_job(dir.path(), &warehouse.display().to_string(), "", &[]);
    let out = run_binary(&bad, &["run", &job.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let values: Vec<&str> = refused.iter().map(|(_, v)| *v).collect();
    scan(&warehouse, &out, &values);

    // Credentials in the URL (user info and query), against a port nobody listens on.
    let mut in_url = bad.clone();
    in_url.insert(
        "FUNNELHOUSE_SANDBOX_URL".into(),
        "http://user:pw-secret-71c2@127.0.0.1:9".into(),
    );
    let warehouse = dir.path().join("in-url");
    let job = write_job(
        dir.path(),
        &warehouse.display().to_string(),
        "",
        &[("/typeform\"", "/typeform?access_token=q-secret-99ab\"")],
    );
    let out = run_binary(&in_url, &["run", &job.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let mut values = values.clone();
    values.extend(["pw-secret-71c2", "q-secret-99ab"]);
    scan(&warehouse, &out, &values);
}
