//! Firmographics and custom CRM properties end to end (issue 19): both CRM twins serve
//! `industry` / employees / revenue and four custom properties; the connectors land them on
//! `leads` (`custom` as a typed map) exactly as served; a stage rule on a custom property
//! decides SQLs; DuckDB, pyarrow and pandas read the new column; a custom property the CRM
//! does not have fails the source at its first run, naming the job, source, property and
//! close matches; and a `leads` file written before the new columns still merges.

use std::process::Command;

use funnelhouse::sandbox::Mutation;
use serde_json::Value;

use crate::support::*;

const HUBSPOT: &str = r#"
[[sources]]
name = "hubspot"
kind = "hubspot"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/hubspot"
token = "${HUBSPOT_TOKEN}"
page_size = 100
[sources.custom_properties]
icp_tier = "string"
seats = { property = "seats_requested", type = "number" }
is_partner = "boolean"
trial_started_at = "timestamp"
"#;

const SALESFORCE: &str = r#"
[[sources]]
name = "salesforce"
kind = "salesforce"
base_url = "${FUNNELHOUSE_SANDBOX_URL}/salesforce"
client_id = "${SALESFORCE_CLIENT_ID}"
client_secret = "${SALESFORCE_CLIENT_SECRET}"
refresh_token = "${SALESFORCE_REFRESH_TOKEN}"
batch_size = 200
currency = "USD"
[sources.custom_properties]
icp_tier = { property = "ICP_Tier__c", type = "string" }
seats = { field = "Seats_Requested__c", type = "number" }
is_partner = { property = "Is_Partner__c", type = "boolean" }
trial_started_at = { property = "Trial_Started_At__c", type = "timestamp" }
"#;

/// Tier A is an SQL, everything else a lead.
const RULES: &str = r#"
[[stages.rules]]
name = "icp_tier_a"
stage = "sql"
when = { custom = { icp_tier = ["A"] } }

[[stages.rules]]
name = "rest"
stage = "lead"
"#;

/// Run a Python snippet of the test virtualenv with `args`; its stdout.
fn python_out(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmographics_and_custom_properties_land_typed_and_drive_a_stage_rule() {
    let sandbox = sandbox(300, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let (job, warehouse) = job_in(
        dir.path(),
        "icp",
        &format!("{HUBSPOT}{SALESFORCE}{RULES}"),
        &env,
    );
    let report = run_within(&job, &env, at(0)).await;
    assert!(report.succeeded(), "{report:#?}");
    let leads = table(&warehouse, "leads");
    let stages = table(&warehouse, "lead_stages");

    // DuckDB sees the new columns with their types.
    let types = column_types(&warehouse, "leads");
    assert_eq!(types["industry"], "VARCHAR");
    assert_eq!(types["employee_count"], "BIGINT");
    assert_eq!(types["annual_revenue"], "DECIMAL(18,6)");
    assert_eq!(types["annual_revenue_currency"], "VARCHAR");
    assert_eq!(
        types["custom"],
        "MAP(VARCHAR, STRUCT(string VARCHAR, number DOUBLE, \"boolean\" BOOLEAN, \"timestamp\" TIMESTAMP WITH TIME ZONE))"
    );

    // What HubSpot served is what landed: the first 30 contacts, property by property.
    let url = format!(
        "{}/hubspot/crm/v3/objects/contacts?limit=30&properties=industry,numberofemployees,annualrevenue,icp_tier,seats_requested,is_partner,trial_started_at",
        sandbox.base_url()
    );
    let served: Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&env["HUBSPOT_TOKEN"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served = served["results"].as_array().unwrap();
    assert_eq!(served.len(), 30);
    let mut with_revenue = 0;
    for contact in served {
        let id = contact["id"].as_str().unwrap();
        let p = &contact["properties"];
        let row = &duckdb(&format!(
            "SELECT industry, employee_count, CAST(annual_revenue AS VARCHAR), annual_revenue_currency, \
             custom['icp_tier'].string, custom['seats'].number, custom['is_partner'].boolean, \
             strftime(custom['trial_started_at'].timestamp AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%g') \
             FROM {leads} WHERE source_system = 'hubspot' AND lead_id = '{id}'"
        ))[0];
        let text = |v: &Value| v.as_str().map(str::to_string);
        assert_eq!(text(&row[0]), text(&p["industry"]), "{id} industry");
        assert_eq!(
            row[1].as_i64().map(|n| n.to_string()),
            text(&p["numberofemployees"]),
            "{id} employees"
        );
        assert_eq!(
            text(&row[2]),
            text(&p["annualrevenue"]).map(|r| format!("{r}.000000")),
            "{id} revenue, exact"
        );
        // The portal's revenue is in the job's reporting currency (EUR by default).
        let currency = p["annualrevenue"].is_string().then(|| "EUR".to_string());
        assert_eq!(text(&row[3]), currency, "{id} currency");
        with_revenue += usize::from(currency.is_some());
        assert_eq!(text(&row[4]), text(&p["icp_tier"]), "{id} icp_tier");
        assert_eq!(
            row[5].as_f64(),
            text(&p["seats_requested"]).map(|s| s.parse::<f64>().unwrap()),
            "{id} seats"
        );
        assert_eq!(
            row[6].as_bool(),
            text(&p["is_partner"]).map(|s| s == "true"),
            "{id} is_partner"
        );
        assert_eq!(
            text(&row[7]).map(|t| format!("{t}Z")),
            text(&p["trial_started_at"]),
            "{id} trial_started_at"
        );
    }
    assert!(with_revenue > 10, "{with_revenue} of 30 have revenue");

    // Salesforce's revenue is in the source's `currency`; HubSpot's in the reporting one.
    let currencies = duckdb(&format!(
        "SELECT source_system, annual_revenue_currency, count(*) FROM {leads} \
         WHERE annual_revenue IS NOT NULL GROUP BY ALL ORDER BY 1"
    ));
    assert_eq!(currencies.len(), 2, "{currencies:?}");
    assert_eq!(
        currencies[0][..2],
        [Value::from("hubspot"), Value::from("EUR")]
    );
    assert_eq!(
        currencies[1][..2],
        [Value::from("salesforce"), Value::from("USD")]
    );

    // The twins give tier A to companies of 50–1,000 employees only; both CRMs have some.
    assert_eq!(
        duckdb_count(&format!(
            "SELECT count(*) FROM {leads} WHERE custom['icp_tier'].string = 'A' \
             AND NOT coalesce(employee_count BETWEEN 50 AND 1000, false)"
        )),
        0
    );
    let tier_a = duckdb(&format!(
        "SELECT source_system, count(*) FROM {leads} WHERE custom['icp_tier'].string = 'A' \
         AND NOT is_deleted GROUP BY 1 ORDER BY 1"
    ));
    assert_eq!(tier_a.len(), 2, "{tier_a:?}");

    // The stage rule: tier A ⇔ SQL (reason `icp_tier_a`), lead by lead.
    let disagree = duckdb_count(&format!(
        "SELECT count(*) FROM {stages} s JOIN {leads} l USING (source_system, lead_id) \
         WHERE (coalesce(l.custom['icp_tier'].string = 'A', false)) \
            != (s.stage = 'sql' AND s.stage_reason = 'icp_tier_a')"
    ));
    assert_eq!(disagree, 0);
    let sqls = duckdb_count(&format!(
        "SELECT count(*) FROM {stages} WHERE stage = 'sql'"
    ));
    let expected: i64 = tier_a.iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(sqls, expected);

    // pyarrow, pandas and polars read the map as well.
    let file = warehouse.join("leads/icp.hubspot.parquet");
    let first_id = served[0]["id"].as_str().unwrap();
    let tier = served[0]["properties"]["icp_tier"]
        .as_str()
        .unwrap_or("None");
    let got = python_out(
        r#"
import sys, pyarrow.parquet as pq, polars as pl
t = pq.read_table(sys.argv[1])
assert str(t.schema.field("custom").type).startswith("map<string, struct<string: string, number: double"), t.schema.field("custom").type
df = t.to_pandas()
row = df[df.lead_id == sys.argv[2]].iloc[0]
entries = dict(row["custom"])
p = pl.read_parquet(sys.argv[1])
assert str(p.schema["custom"]).startswith(("Map(String, Struct(", "List(Struct(")), p.schema["custom"]
assert p.filter(pl.col("lead_id") == sys.argv[2]).height == 1
print(entries.get("icp_tier", {}).get("string") if entries.get("icp_tier") else None)
"#,
        &[&file.display().to_string(), first_id],
    );
    assert_eq!(got, tier, "pandas reads lead {first_id}'s tier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_property_the_crm_lacks_fails_the_first_run_naming_it() {
    let sandbox = sandbox(50, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let hubspot = HUBSPOT
        .replace("icp_tier = \"string\"", "icp_teir = \"string\"")
        .replace(
            "seats = { property = \"seats_requested\", type = \"number\" }",
            "seats = { property = \"seats_requested\", type = \"boolean\" }",
        );
    let salesforce = SALESFORCE.replace("ICP_Tier__c", "ICP_Teir__c");
    let (job, warehouse) = job_in(dir.path(), "icp", &format!("{hubspot}{salesforce}"), &env);
    let report = run_within(&job, &env, at(0)).await;
    assert_eq!(report.status, "failed", "{report:#?}");
    let error = |name: &str| {
        report
            .sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.error.clone())
            .unwrap_or_default()
    };
    let hubspot = error("hubspot");
    for part in [
        "job `icp`",
        "source `hubspot`",
        "custom_properties.icp_teir: there is no HubSpot contact property `icp_teir`",
        "GET /crm/v3/properties/contacts",
        "close matches: icp_tier",
        "custom_properties.seats: HubSpot contact property `seats_requested` is of type `number`, which cannot be kept as boolean; declare it as number",
    ] {
        assert!(hubspot.contains(part), "{part:?} not in: {hubspot}");
    }
    assert!(!hubspot.contains("is_partner"), "{hubspot}");
    let salesforce = error("salesforce");
    for part in [
        "job `icp`",
        "source `salesforce`",
        "there is no Salesforce Lead field `ICP_Teir__c`",
        "sobjects/Lead/describe",
        "close matches: ICP_Tier__c",
    ] {
        assert!(salesforce.contains(part), "{part:?} not in: {salesforce}");
    }
    // HubSpot asked for the property list only: no contact was pulled or written.
    let source = report.sources.iter().find(|s| s.name == "hubspot").unwrap();
    assert_eq!(source.requests, 1);
    assert!(!warehouse.join("leads").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_file_from_before_the_new_columns_still_merges() {
    let sandbox = sandbox(200, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&sandbox);
    let plain = HUBSPOT
        .split("[sources.custom_properties]")
        .next()
        .unwrap()
        .to_string();
    let (job, warehouse) = job_in(dir.path(), "icp", &plain, &env);
    let first = run_within(&job, &env, at(0)).await;
    assert!(first.succeeded(), "{first:#?}");
    // The file as an earlier funnelhouse wrote it: without the five new columns.
    let file = warehouse.join("leads/icp.hubspot.parquet");
    python_out(
        r#"
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
t = t.drop_columns(["industry", "employee_count", "annual_revenue", "annual_revenue_currency", "custom"])
pq.write_table(t, sys.argv[1], compression="zstd")
"#,
        &[&file.display().to_string()],
    );
    let total = sandbox.data.totals().contacts as i64;
    sandbox.data.mutate(Mutation {
        updates: 5,
        removals: 0,
    });
    let second = run_within(&job, &env, at(60)).await;
    assert!(second.succeeded(), "{second:#?}");
    let leads = table(&warehouse, "leads");
    let rows = duckdb(&format!(
        "SELECT count(*), count(*) FILTER (WHERE custom IS NULL), \
         count(*) FILTER (WHERE custom IS NOT NULL) FROM {leads}"
    ));
    let (all, carried, pulled) = (
        rows[0][0].as_i64().unwrap(),
        rows[0][1].as_i64().unwrap(),
        rows[0][2].as_i64().unwrap(),
    );
    assert_eq!(all, total);
    // Rows carried over from the old file have no map; rows pulled again have one.
    assert!(pulled >= 5 && carried == total - pulled, "{rows:?}");
}
