//! End-to-end tests of the CRM twins over HTTP on 127.0.0.1: HubSpot search paging (short
//! pages that still carry a cursor, the 10,000 ceiling), the archived list after a mutation,
//! and Salesforce's token grant, SOQL traps and `nextRecordsUrl` cursors.

use std::collections::HashSet;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::*;

fn options(scale: usize) -> SandboxOptions {
    SandboxOptions {
        scale,
        ..SandboxOptions::default()
    }
}

async fn search(client: &Client, base: &str, body: &Value) -> (StatusCode, Value) {
    let response = client
        .post(format!("{base}/hubspot/crm/v3/objects/contacts/search"))
        .bearer_auth(HUBSPOT_TOKEN)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    assert!(
        response
            .headers()
            .contains_key("x-hubspot-ratelimit-remaining")
    );
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn hubspot_search_pages_short_and_stops_at_the_ceiling() {
    let sandbox = start(options(SEARCH_CEILING + 50)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    let query = |after: Option<String>| {
        let mut body = json!({
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["lastmodifieddate"],
            "limit": 200,
        });
        if let Some(after) = after {
            body["after"] = json!(after);
        }
        body
    };
    let mut ids = HashSet::new();
    let mut last = String::new();
    let mut short_with_cursor = 0;
    let mut after: Option<String> = None;
    loop {
        let (status, page) = search(&client, &base, &query(after.clone())).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], SEARCH_CEILING + 50);
        let results = page["results"].as_array().unwrap();
        for r in results {
            let modified = r["properties"]["lastmodifieddate"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(modified >= last, "ascending");
            last = modified;
            assert!(
                ids.insert(r["id"].as_str().unwrap().to_string()),
                "no repeats"
            );
        }
        after = page
            .pointer("/paging/next/after")
            .and_then(Value::as_str)
            .map(str::to_string);
        if results.len() < 200 && after.is_some() {
            short_with_cursor += 1;
        }
        match &after {
            Some(a) if a.parse::<usize>().unwrap() >= SEARCH_CEILING => break,
            Some(_) => {}
            None => panic!("the ceiling comes before the end"),
        }
    }
    assert_eq!(ids.len(), SEARCH_CEILING);
    assert!(short_with_cursor > 0, "some pages are short yet go on");
    let (status, error) = search(&client, &base, &query(after)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn hubspot_search_pages_one_instant_by_numeric_id() {
    // Ids run from 101 to about 1,300: the tie crosses from three digits to four.
    let sandbox = start(options(400)).await.expect("start");
    let tied = sandbox.data.mutate(Mutation {
        updates: 300,
        removals: 0,
    });
    let at_ms = chrono::DateTime::parse_from_rfc3339(&tied.modified_at)
        .expect("modified_at")
        .timestamp_millis();
    let mut expected: Vec<u64> = tied
        .hubspot_updated
        .iter()
        .map(|id| id.parse().expect("numeric id"))
        .collect();
    expected.sort_unstable();
    assert!(expected[0] < 1_000 && expected[expected.len() - 1] >= 1_000);
    let client = Client::new();
    let base = sandbox.base_url();
    let query = |above: Option<u64>, after: Option<String>| {
        let mut filters = vec![
            json!({"propertyName": "lastmodifieddate", "operator": "EQ", "value": at_ms.to_string()}),
        ];
        if let Some(id) = above {
            filters.push(
                json!({"propertyName": "hs_object_id", "operator": "GT", "value": id.to_string()}),
            );
        }
        let mut body = json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["lastmodifieddate"],
            "limit": 200,
        });
        if let Some(after) = after {
            body["after"] = json!(after);
        }
        body
    };
    // Every contact of the instant, once, in numeric id order, whatever the filter's floor.
    for above in [None, Some(999)] {
        let mut ids: Vec<u64> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (status, page) = search(&client, &base, &query(above, after)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for r in page["results"].as_array().unwrap() {
                assert_eq!(r["properties"]["lastmodifieddate"], tied.modified_at);
                ids.push(r["id"].as_str().unwrap().parse().unwrap());
            }
            after = page
                .pointer("/paging/next/after")
                .and_then(Value::as_str)
                .map(str::to_string);
            if after.is_none() {
                break;
            }
        }
        let wanted: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|&id| above.is_none_or(|above| id > above))
            .collect();
        assert_eq!(ids, wanted, "above {above:?}");
    }
}

#[tokio::test]
async fn archived_contacts_leave_the_list_for_the_archived_list() {
    let sandbox = start(options(120)).await.expect("start");
    let changed = sandbox.data.mutate(Mutation {
        updates: 2,
        removals: 3,
    });
    let client = Client::new();
    let list = |archived: bool| {
        let url = format!(
            "{}/hubspot/crm/v3/objects/contacts?limit=100&archived={archived}",
            sandbox.base_url()
        );
        let client = client.clone();
        async move {
            let mut ids = Vec::new();
            let mut url = url;
            loop {
                let page: Value = client
                    .get(&url)
                    .bearer_auth(HUBSPOT_TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for r in page["results"].as_array().unwrap() {
                    assert_eq!(r["archived"], archived);
                    assert_eq!(r.get("archivedAt").is_some(), archived);
                    ids.push(r["id"].as_str().unwrap().to_string());
                }
                match page.pointer("/paging/next/link").and_then(Value::as_str) {
                    Some(link) => url = link.to_string(),
                    None => return ids,
                }
            }
        }
    };
    let live = list(false).await;
    assert_eq!(live.len(), 117);
    let mut archived = list(true).await;
    archived.sort();
    let mut expected = changed.hubspot_archived.clone();
    expected.sort();
    assert_eq!(archived, expected);
    assert!(changed.hubspot_archived.iter().all(|id| !live.contains(id)));
}

#[tokio::test]
async fn salesforce_token_soql_and_cursors() {
    let sandbox = start(options(1000)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    let form = format!(
        "grant_type=refresh_token&client_id={SALESFORCE_CLIENT_ID}&client_secret={SALESFORCE_CLIENT_SECRET}&refresh_token={SALESFORCE_REFRESH_TOKEN}"
    );
    let token: Value = client
        .post(format!("{base}/salesforce/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();
    let instance = token["instance_url"].as_str().unwrap().to_string();
    assert_eq!(instance, format!("{base}/salesforce"));
    let query = |q: &str, token: &str| {
        let mut url =
            reqwest::Url::parse(&format!("{instance}/services/data/v62.0/query")).unwrap();
        url.query_pairs_mut().append_pair("q", q);
        client
            .get(url)
            .bearer_auth(token)
            .header("Sforce-Query-Options", "batchSize=200")
            .send()
    };
    let quoted = query(
        "SELECT Id FROM Lead WHERE SystemModstamp >= '2026-01-01T00:00:00Z'",
        &access,
    )
    .await
    .unwrap();
    assert_eq!(quoted.status(), StatusCode::BAD_REQUEST);
    let body: Value = quoted.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    let expired = query("SELECT Id FROM Lead", "stale").await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");

    let first = query(
        "SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id",
        &access,
    )
    .await
    .unwrap();
    assert!(
        first.headers()["sforce-limit-info"]
            .to_str()
            .unwrap()
            .starts_with("api-usage=")
    );
    let mut page: Value = first.json().await.unwrap();
    let mut ids = HashSet::new();
    loop {
        for r in page["records"].as_array().unwrap() {
            assert_eq!(r["attributes"]["type"], "Lead");
            assert!(r["SystemModstamp"].as_str().unwrap().ends_with(".000+0000"));
            assert!(ids.insert(r["Id"].as_str().unwrap().to_string()));
        }
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap();
        page = client
            .get(format!("{instance}{next}"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(ids.len(), sandbox.data.totals().salesforce_leads);
}
