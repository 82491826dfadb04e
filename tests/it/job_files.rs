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
            expect: vec![":2:", "`schedule`", "field 2 (hour) `25`", "0–23"],
        },
        Case {
            name: "wrong_type",
            text: GOOD.replace("token = ", "page_size = \"many\"\ntoken = "),
            expect: vec![
                ":9:",
                "sources[0].page_size",
                "expected a whole number",
                "found the string \"many\"",
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
        Case {
            name: "many_mistakes",
            text: MANY_MISTAKES.to_string(),
            expect: vec![
                ":1:1: `name`: `bad name!` may only contain",
                ":2:1: `timezone`: `Europe/Berln` is not an IANA time zone like Europe/Berlin; did you mean `Europe/Berlin`?",
                ":3:1: `warehouse`: ",
                ":4:1: `reporting_currency`: `euro` is not an ISO 4217 currency code like EUR or USD; did you mean `EUR`?",
                ":5:1: `hash_key`: is empty",
                ":6:1: `colour`: unknown key `colour`",
                ":7:1: `batch_rows`: expected a whole number of 0 or more, found the string \"many\"",
                ":8:1: `schedule`: `0 0 3 * * * 2027` has 7 fields",
                ":14:1: `sources[0].token`: environment variable `HUBSPOT_TOKN` is not set; did you mean `HUBSPOT_TOKEN`",
                ":15:1: `sources[0].pagesize`: unknown key `pagesize`; did you mean `page_size`?",
                ":16:1: `sources[0].page_size`: expected a whole number",
                ":19:1: `sources[1].name`: source name `HubSpot` differs from `hubspot` (sources[0]) only in case",
                ":22:1: `sources[1].token`: is empty",
                ":30:1: `sources[2].token_url`: `file:///etc/passwd` must be an http(s) URL, not `file:`",
                ":39:1: `sources[3].token_url`: `www.linkedin.com/oauth/v2/accessToken` is not a URL: it needs a scheme",
                ":44:1: `sources[4].url`: `gopher://example.com/costs.csv`: costs are read from a path, file://, s3:// or http(s)://",
                ":48:1: `stages.rules[0].stage`: unknown value `sqll`; did you mean `sql`?",
                ":51:1: `stages.rules[1].name`: duplicate rule name `hot` (also stages.rules[0])",
                ":55:33: `fx.rates[0].currency`: `ZZZ` is not an ISO 4217 currency code",
            ],
        },
        Case {
            name: "never_fires",
            text: GOOD.replace(
                "name = \"t\"\n",
                "name = \"t\"\nschedule = \"0 3 31 2 *\"\nreporting_currency = \"ZZZ\"\n",
            ),
            expect: vec![
                ":2:1: `schedule`: `0 3 31 2 *` never fires",
                ":3:1: `reporting_currency`: `ZZZ` is not an ISO 4217 currency code",
            ],
        },
        Case {
            name: "secret_set_but_empty",
            text: GOOD.replace("${HUBSPOT_TOKEN}", "${EMPTY_SECRET_FOR_TEST}"),
            expect: vec![
                ":9:1: `sources[0].token`: is empty: environment variable `EMPTY_SECRET_FOR_TEST` is set to an empty string",
            ],
        },
    ]
}

/// One file with a mistake of every kind `validate` knows; the line numbers are pinned by
/// the `many_mistakes` case above.
const MANY_MISTAKES: &str = r#"name = "bad name!"
timezone = "Europe/Berln"
warehouse = "s4://bucket/funnelhouse"
reporting_currency = "euro"
hash_key = ""
colour = "blue"
batch_rows = "many"
schedule = "0 0 3 * * * 2027"

[[sources]]
name = "hubspot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = "${HUBSPOT_TOKN}"
pagesize = 5
page_size = -1

[[sources]]
name = "HubSpot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = ""

[[sources]]
name = "ads"
kind = "google_ads"
customer_ids = ["1112223334"]
developer_token = "${GOOGLE_ADS_DEVELOPER_TOKEN}"
access_token = "${GOOGLE_ADS_ACCESS_TOKEN}"
token_url = "file:///etc/passwd"

[[sources]]
name = "li"
kind = "linkedin_ads"
account_ids = ["508123456"]
refresh_token = "${LINKEDIN_REFRESH_TOKEN}"
client_id = "${LINKEDIN_CLIENT_ID}"
client_secret = "${LINKEDIN_CLIENT_SECRET}"
token_url = "www.linkedin.com/oauth/v2/accessToken"

[[sources]]
name = "costs"
kind = "costs"
url = "gopher://example.com/costs.csv"

[[stages.rules]]
name = "hot"
stage = "sqll"

[[stages.rules]]
name = "hot"
stage = "mql"

[fx]
rates = [{ date = "2026-11-01", currency = "ZZZ", rate = "1.5" }]
"#;

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
                .env("EMPTY_SECRET_FOR_TEST", "")
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
            funnelhouse::sandbox::job_env("http://127.0.0.1:9")
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

/// `sandbox --print-env` is the environment the repository's jobs need to pull from a sandbox
/// on that port (`scripts/release-build` replays its training pages with it): with it and a
/// hash key, the benchmark jobs validate; without it, they do not.
#[test]
fn the_sandbox_prints_the_environment_its_jobs_need() {
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .args(["sandbox", "--print-env", "--port", "8123"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let env: Vec<(String, String)> = printed
        .lines()
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {line}"));
            assert!(!value.is_empty() && !value.contains(' '), "{line}");
            (name.to_string(), value.to_string())
        })
        .collect();
    assert_eq!(
        env.first(),
        Some(&(
            "FUNNELHOUSE_SANDBOX_URL".to_string(),
            "http://127.0.0.1:8123".to_string()
        ))
    );
    for job in ["bench-spend.toml", "bench.toml", "demo.toml"] {
        let validate = |with_env: bool| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_funnelhouse"));
            cmd.args(["validate", repo_job(job).to_str().unwrap()])
                .env_clear()
                .env("FUNNELHOUSE_HASH_KEY", "k");
            if with_env {
                cmd.envs(env.iter().cloned());
            }
            cmd.output().unwrap()
        };
        let with = validate(true);
        assert_eq!(
            with.status.code(),
            Some(0),
            "{job}: {}",
            String::from_utf8_lossy(&with.stderr)
        );
        let without = validate(false);
        assert_eq!(without.status.code(), Some(2), "{job}");
        assert!(
            String::from_utf8_lossy(&without.stderr).contains("FUNNELHOUSE_SANDBOX_URL"),
            "{job}: {}",
            String::from_utf8_lossy(&without.stderr)
        );
    }
    let both = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .args(["sandbox", "--print-env", "--record", "x"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "--print-env does not record");
}

/// Every line of a `validate` report after the first names the file, line and column.
fn assert_every_line_is_located(stderr: &str, file: &str) {
    for line in stderr.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let rest = line
            .trim_start()
            .strip_prefix(file)
            .unwrap_or_else(|| panic!("line does not start with {file}: {line}\n{stderr}"));
        let mut parts = rest.trim_start_matches(':').splitn(3, ':');
        let (l, c) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(
            l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
            "no line:col in {line}"
        );
    }
}

#[test]
fn one_validate_reports_every_mistake_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.toml");
    std::fs::write(&path, MANY_MISTAKES).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .arg("validate")
        .arg(&path)
        .env("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9")
        .env("HUBSPOT_TOKEN", "x")
        .env("GOOGLE_ADS_DEVELOPER_TOKEN", "x")
        .env("GOOGLE_ADS_ACCESS_TOKEN", "x")
        .env("LINKEDIN_REFRESH_TOKEN", "x")
        .env("LINKEDIN_CLIENT_ID", "x")
        .env("LINKEDIN_CLIENT_SECRET", "x")
        .env_remove("HUBSPOT_TOKN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_every_line_is_located(&stderr, &path.display().to_string());
    let located: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(
        located.len(),
        19,
        "one line per mistake, no duplicates or placeholders:\n{stderr}"
    );
}

#[test]
fn a_huge_job_file_is_refused_fast_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    std::fs::write(&path, vec![b'='; 50 << 20]).unwrap();
    let started = std::time::Instant::now();
    // Under a 1 GiB address-space limit: parsing it whole took 3.8 GB.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" validate \"$1\"")
        .arg(env!("CARGO_BIN_EXE_funnelhouse"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("huge.toml: the file is 52428800 bytes; a job file may be at most 1 MiB"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // Just under the cap, it is parsed: quickly, and reported in a screenful.
    let max = funnelhouse::config::MAX_JOB_FILE_BYTES as usize;
    std::fs::write(&path, vec![b'='; max]).unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().count() < 40,
        "{} lines",
        stderr.lines().count()
    );
    assert!(stderr.contains("more syntax errors"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn validate_no_env_checks_everything_but_the_environment() {
    let run = |args: &[&str], path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
            .args(args)
            .arg(path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap()
    };
    // The demo job references a dozen unset secrets: fine with --no-env, not without.
    let demo = repo_job("demo.toml");
    let out = run(&["validate", "--no-env"], &demo);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["validate"], &demo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`HUBSPOT_TOKEN` is not set"), "{stderr}");
    // Everything else is still checked.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        GOOD.replace("WAREHOUSE", "s4://x").replace(
            "hash_key = \"k\"",
            "hash_key = \"${KEY}\"\nreporting_currency = \"ZZZ\"",
        ),
    )
    .unwrap();
    let out = run(&["validate", "--no-env"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`reporting_currency`: `ZZZ`"), "{stderr}");
    assert!(stderr.contains("`warehouse`"), "{stderr}");
    assert!(!stderr.contains("is not set"), "{stderr}");
}

/// Validates TOML files against a JSON Schema with Python's `jsonschema` (an independent
/// implementation); prints `{path: [error, …]}`.
const SCHEMA_CHECK: &str = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
out = {}
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        out[path] = [e.message for e in validator.iter_errors(tomllib.load(f))]
print(json.dumps(out))
"#;

#[test]
fn the_schema_accepts_every_job_file_and_rejects_unknown_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .arg("schema")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("job.schema.json");
    std::fs::write(&schema, &out.stdout).unwrap();

    let mut good = Vec::new();
    for entry in std::fs::read_dir(repo_job("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            good.push(path);
        }
    }
    assert!(good.len() >= 2);
    let demo = std::fs::read_to_string(repo_job("demo.toml")).unwrap();
    let bad = [
        (
            "top_level.toml",
            demo.replacen("timezone = ", "colour = \"blue\"\ntimezone = ", 1),
        ),
        (
            "in_a_source.toml",
            demo.replacen("page_size = 100", "pagesize = 100", 1),
        ),
        (
            "wrong_type.toml",
            demo.replacen("batch_size = 500", "batch_size = \"many\"", 1),
        ),
        (
            "unknown_kind.toml",
            demo.replacen("kind = \"typeform\"", "kind = \"typeforms\"", 1),
        ),
    ];
    let mut bad_paths = Vec::new();
    for (name, text) in &bad {
        assert_ne!(text, &demo, "{name} changed nothing");
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        bad_paths.push(path);
    }
    let out = Command::new(python())
        .args(["-c", SCHEMA_CHECK])
        .arg(&schema)
        .args(&good)
        .args(&bad_paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: std::collections::HashMap<String, Vec<String>> =
        serde_json::from_slice(&out.stdout).unwrap();
    for path in &good {
        let errors = &results[&path.display().to_string()];
        assert!(
            errors.is_empty(),
            "{} fails the schema: {errors:?}",
            path.display()
        );
    }
    for path in &bad_paths {
        let errors = &results[&path.display().to_string()];
        assert!(!errors.is_empty(), "{} passes the schema", path.display());
    }
    let top = &results[&bad_paths[0].display().to_string()];
    assert!(
        top.iter().any(|e| e.contains("'colour' was unexpected")),
        "{top:?}"
    );
}

#[test]
fn completions_print_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _funnelhouse"),
        ("zsh", "#compdef funnelhouse"),
        ("fish", "complete -c funnelhouse"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        for word in ["validate", "no-env", "schema"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
    }
    // The bash script at least parses.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("funnelhouse.bash");
    let out = Command::new(env!("CARGO_BIN_EXE_funnelhouse"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    std::fs::write(&path, &out.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(check.success());
}
