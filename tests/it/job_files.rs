//! Job files: every file in `jobs/` validates; bad files are refused with file, line and key,
//! exit code 2, and no request reaches the vendor.

use std::process::Command;

use crate::support::*;

#[test]
fn every_job_in_the_repository_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let placeholder = |name: &str| {
        Some(if name.ends_with("_URL") {
            "http://127.0.0.1:9".to_string()
        } else {
            "placeholder".to_string()
        })
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(diags) = funnelhouse::config::parse_job(&path, &text, &placeholder) {
            panic!(
                "{} is invalid:\n{}",
                path.display(),
                funnelhouse::config::render_diagnostics(&path, &diags)
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "found {checked} job files");
}

const GOOD: &str = r#"name = "t"
warehouse = "WAREHOUSE"
hash_key = "k"

[[sources]]
name = "hubspot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = "${HUBSPOT_TOKEN}"
"#;

struct Case {
    name: &'static str,
    text: String,
    /// Fragments the message must contain (file name is always checked).
    expect: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unknown_key",
            text: GOOD.replace("token = ", "pagesize = 5\ntoken = "),
            expect: vec![":9:", "sources[0].pagesize", "unknown key `pagesize`"],
        },
        Case {
            name: "missing_env",
            text: GOOD.replace("${HUBSPOT_TOKEN}", "${NOT_SET_ANYWHERE_TOKEN}"),
            expect: vec![
                ":9:",
                "sources[0].token",
                "`NOT_SET_ANYWHERE_TOKEN` is not set",
            ],
        },
        Case {
            name: "bad_cron",
            text: GOOD.replace(
                "name = \"t\"\n",
                "name = \"t\"\nschedule = \"0 25 * * *\"\n",
            ),
            expect: vec![":2:", "`schedule`", "not a valid cron expression"],
        },
        Case {
            name: "wrong_type",
            text: GOOD.replace("token = ", "page_size = \"many\"\ntoken = "),
            expect: vec![
                ":9:",
                "sources[0].page_size",
                "invalid type: string \"many\"",
            ],
        },
        Case {
            name: "spend_and_costs_settings",
            text: GOOD.to_string()
                + "\n[[sources]]\nname = \"meta\"\nkind = \"meta_ads\"\naccount_ids = [\"act_x1\"]\n\
                   access_token = \"${META_ACCESS_TOKEN}\"\napi_version = \"v23\"\nchunk_days = 0\n\
                   \n[[sources]]\nname = \"li\"\nkind = \"linkedin_ads\"\naccount_ids = [\"5\"]\n\
                   refresh_token = \"${LINKEDIN_REFRESH_TOKEN}\"\napi_version = \"2026-10\"\n\
                   \n[[sources]]\nname = \"costs\"\nkind = \"costs\"\nurl = \"costs.xlsx\"\n",
            expect: vec![
                "sources[1].chunk_days",
                "sources[1].account_ids",
                "sources[1].api_version",
                "sources[2].refresh_token",
                "go together",
                "sources[2].api_version",
                "sources[3].format",
            ],
        },
        Case {
            name: "every_mistake_at_once",
            text: GOOD
                .replace(
                    "name = \"t\"\n",
                    "name = \"t\"\nschedule = \"nope\"\ncolour = \"blue\"\n",
                )
                .replace("token = ", "page_size = \"many\"\npagesize = 5\ntoken = ")
                + "\n[[sources]]\nname = \"hubspot\"\nkind = \"hubspot\"\ntoken = \"${NOT_SET_ANYWHERE_TOKEN}\"\nbase_url = \"not a url\"\n",
            expect: vec![
                "`colour`: unknown key",
                "`schedule`",
                "sources[0].page_size",
                "sources[0].pagesize",
                "sources[1].name",
                "duplicate source name",
                "sources[1].token",
                "sources[1].base_url",
            ],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_files_are_refused_before_any_request() {
    let sandbox = sandbox(50, 0).await;
    let env = env_for(&sandbox);
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let path = dir.path().join(format!("{}.toml", case.name));
        let text = case
            .text
            .replace("WAREHOUSE", &dir.path().join("w").display().to_string());
        std::fs::write(&path, text).unwrap();
        for command in ["validate", "run"] {
            let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
                .arg(command)
                .arg(&path)
                .envs(&env)
                .env_remove("NOT_SET_ANYWHERE_TOKEN")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{} {command}: {stderr}",
                case.name
            );
            assert!(
                stderr.contains(&format!("{}.toml:", case.name)),
                "{}: names the file: {stderr}",
                case.name
            );
            for fragment in &case.expect {
                assert!(
                    stderr.contains(fragment),
                    "{} {command}: expected `{fragment}` in:\n{stderr}",
                    case.name
                );
            }
            assert!(
                !stderr.contains(funnelhouse::sandbox::HUBSPOT_TOKEN),
                "a secret leaked: {stderr}"
            );
        }
    }
    assert_eq!(
        sandbox.data.requests_served(),
        0,
        "no request reached the sandbox"
    );
    assert!(!dir.path().join("w").exists(), "nothing was written");
}

#[test]
fn validate_prints_a_summary_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .args(["validate", repo_job("demo.toml").to_str().unwrap()])
        .envs(
            funnelhouse::demo::sandbox_env("http://127.0.0.1:9")
                .into_iter()
                .map(|(k, _)| (k, "x".to_string())),
        )
        .env("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9")
        .env("FUNNELHOUSE_HASH_KEY", "x")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("job `demo` is valid: 9 source(s)"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1);
}
