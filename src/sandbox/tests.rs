//! End-to-end tests of the sandbox over HTTP on 127.0.0.1: paging through every vendor
//! collects exactly `totals()`, cursors must be echoed, auth and not-found errors have the
//! vendors' shapes, and responses are deterministic.

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDate;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::*;

fn options(scale: usize, malformed_every: usize) -> SandboxOptions {
    SandboxOptions {
        scale,
        malformed_every,
        ..SandboxOptions::default()
    }
}

async fn get(client: &Client, url: &str, token: &str) -> (StatusCode, Value) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

async fn google(
    client: &Client,
    url: &str,
    access: &str,
    developer: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .bearer_auth(access)
        .header("developer-token", developer)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

fn contacts_url(base: &str, query: &str) -> String {
    format!("{base}/hubspot/crm/v3/objects/contacts?{query}")
}

#[tokio::test]
async fn hubspot_paging_collects_every_contact_once() {
    let sandbox = start(options(250, 7)).await.expect("start");
    let totals = sandbox.data.totals();
    let client = Client::new();
    let base = sandbox.base_url();
    let first_query = "limit=100&properties=email,createdate";
    let mut url = contacts_url(&base, first_query);
    let (mut ids, mut emails, mut malformed, mut pages) = (HashSet::new(), Vec::new(), 0, 0);
    loop {
        let (status, page) = get(&client, &url, HUBSPOT_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for record in page["results"].as_array().expect("results") {
            assert!(ids.insert(record["id"].as_str().expect("id").to_owned()));
            let props = record["properties"].as_object().expect("properties");
            let keys: BTreeSet<&str> = props.keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["createdate", "email"]));
            emails.push(props["email"].as_str().expect("email").to_owned());
            if props["createdate"] == "not-a-date" {
                malformed += 1;
            }
            assert_eq!(record["archived"], false);
        }
        let Some(next) = page["paging"]["next"].as_object() else {
            break;
        };
        let after = next["after"].as_str().expect("after");
        assert!(after.contains("%3D"), "cursor is pre-encoded: {after}");
        // Alternate between following the link and echoing `after` into our own URL.
        url = if pages % 2 == 0 {
            next["link"].as_str().expect("link").to_owned()
        } else {
            contacts_url(&base, &format!("{first_query}&after={after}"))
        };
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), totals.contacts);
    assert_eq!(emails, totals.contact_emails);
    assert_eq!(malformed, totals.contacts_malformed);
    assert_eq!(malformed, 250 / 7);
}

#[tokio::test]
async fn hubspot_rejects_altered_cursors() {
    let sandbox = start(options(60, 0)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    let (_, page) = get(&client, &contacts_url(&base, "limit=5"), HUBSPOT_TOKEN).await;
    let after = page["paging"]["next"]["after"].as_str().expect("after");
    let (status, _) = get(
        &client,
        &contacts_url(&base, &format!("limit=5&after={after}")),
        HUBSPOT_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let re_encoded = after.replace('%', "%25");
    let mut changed = after.as_bytes().to_vec();
    changed[2] = if changed[2] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).expect("ascii");
    for bad in [re_encoded.as_str(), changed.as_str(), "5", "MTAw%3D", ""] {
        let (status, body) = get(
            &client,
            &contacts_url(&base, &format!("limit=5&after={bad}")),
            HUBSPOT_TOKEN,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "after={bad}");
        assert_eq!(body["category"], "VALIDATION_ERROR");
        assert_eq!(body["status"], "error");
    }
}

#[tokio::test]
async fn hubspot_returns_requested_properties_only() {
    let sandbox = start(options(30, 0)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    let (status, page) = get(
        &client,
        &contacts_url(
            &base,
            "limit=30&properties=email&properties=hs_lifecyclestage_customer_date,no_such_property",
        ),
        HUBSPOT_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = page["results"].as_array().expect("results");
    assert_eq!(results.len(), 30);
    assert!(page.get("paging").is_none(), "last page has no paging");
    for record in results {
        let props = record["properties"].as_object().expect("properties");
        let keys: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "email",
                "hs_lifecyclestage_customer_date",
                "no_such_property"
            ])
        );
        assert!(props["no_such_property"].is_null());
        assert!(
            record["createdAt"]
                .as_str()
                .expect("createdAt")
                .ends_with('Z')
        );
    }

    let (_, page) = get(&client, &contacts_url(&base, ""), HUBSPOT_TOKEN).await;
    let results = page["results"].as_array().expect("results");
    assert_eq!(results.len(), 10, "default limit");
    let keys: BTreeSet<&str> = results[0]["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "createdate",
            "email",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "lastname"
        ])
    );

    let (status, body) = get(&client, &contacts_url(&base, "limit=101"), HUBSPOT_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["category"], "VALIDATION_ERROR");

    let (status, body) = get(
        &client,
        &contacts_url(&base, "archived=true"),
        HUBSPOT_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "results": [] }));
}

#[tokio::test]
async fn hubspot_properties_and_search_answer_401_before_spending_the_limits() {
    let sandbox = start(options(30, 0)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    sandbox.data.set_hubspot_limits(HubspotLimits {
        burst: 1,
        interval_ms: 60_000,
        daily: 1_000,
    });
    let properties = format!("{base}/hubspot/crm/v3/properties/contacts");
    let search = format!("{base}/hubspot/crm/v3/objects/contacts/search");
    let wrong_search = |token: &'static str| {
        client
            .post(&search)
            .bearer_auth(token)
            .json(&json!({ "limit": 1 }))
            .send()
    };
    for _ in 0..2 {
        let (status, body) = get(&client, &properties, "nope").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "Authentication credentials not found.");
        let answer = wrong_search("nope").await.expect("request");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        let body: Value = answer.json().await.expect("json body");
        assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    }
    // Refused requests spent nothing: the one request of the burst is still there.
    let (status, _) = get(&client, &properties, HUBSPOT_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let answer = wrong_search(HUBSPOT_TOKEN).await.expect("request");
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn every_vendor_answers_401_on_a_wrong_token() {
    let sandbox = start(options(30, 0)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();

    let (status, body) = get(&client, &contacts_url(&base, ""), "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    assert!(body["correlationId"].as_str().expect("id").len() == 36);
    let response = client
        .get(contacts_url(&base, ""))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let url = format!("{base}/google_ads/v21/customers/1112223334/googleAds:search");
    let query = json!({ "query": "SELECT campaign.id FROM campaign" });
    let (status, body) = google(&client, &url, "nope", GOOGLE_ADS_DEVELOPER_TOKEN, &query).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    let (status, body) = google(&client, &url, GOOGLE_ADS_ACCESS_TOKEN, "nope", &query).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["details"][0]["errors"][0]["errorCode"]["authenticationError"],
        "DEVELOPER_TOKEN_INVALID"
    );

    let url = format!("{base}/typeform/forms/{TYPEFORM_FORM_ID}/responses");
    let (status, body) = get(&client, &url, "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "AUTHENTICATION_FAILED");

    // Every request is counted, errors included; unknown paths are JSON 404s.
    let (status, body) = get(&client, &format!("{base}/nowhere"), "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert_eq!(sandbox.data.requests_served(), 6);
}

fn spend_query(from: &str, to: &str) -> Value {
    json!({
        "query": format!(
            "SELECT customer.currency_code, campaign.id, campaign.name, \
             campaign.advertising_channel_type, segments.date, metrics.cost_micros, \
             metrics.impressions, metrics.clicks FROM campaign \
             WHERE segments.date BETWEEN '{from}' AND '{to}'"
        )
    })
}

/// All rows of one customer, paging with `pageToken`.
async fn google_rows(client: &Client, url: &str, query: &Value) -> Vec<Value> {
    let mut body = query.clone();
    let mut rows = Vec::new();
    loop {
        let (status, page) = google(
            client,
            url,
            GOOGLE_ADS_ACCESS_TOKEN,
            GOOGLE_ADS_DEVELOPER_TOKEN,
            &body,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["fieldMask"].as_str().is_some());
        rows.extend(page["results"].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(token) => body["pageToken"] = json!(token),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn google_ads_paging_collects_every_row_once() {
    let sandbox = start(options(250, 11)).await.expect("start");
    let totals = sandbox.data.totals();
    let client = Client::new();
    let base = sandbox.base_url();
    let (mut keys, mut malformed, mut all) = (HashSet::new(), 0, 0);
    for &(customer, currency) in GOOGLE_ADS_CUSTOMERS {
        let url = format!(
            "{base}/google_ads/v20/customers/{customer}/googleAds:search?sandbox_page_size=50"
        );
        let rows = google_rows(&client, &url, &spend_query("2026-08-22", "2026-11-19")).await;
        assert!(rows.len() > 50, "several pages");
        let mut last = (String::new(), 0u64);
        for row in &rows {
            assert_eq!(row["customer"]["currencyCode"], currency);
            assert_eq!(
                row["customer"]["resourceName"],
                format!("customers/{customer}")
            );
            let id = row["campaign"]["id"].as_str().expect("id as string");
            let date = row["segments"]["date"].as_str().expect("date").to_owned();
            let order = (date.clone(), id.parse::<u64>().expect("numeric id"));
            assert!(order > last, "ordered by date then campaign id");
            last = order;
            assert!(keys.insert((customer, id.to_owned(), date)));
            match row["metrics"]["costMicros"].as_str() {
                Some("12x5") => malformed += 1,
                Some(cost) => assert!(cost.parse::<i64>().is_ok()),
                None => assert!(row["metrics"]["impressions"].as_str().is_some()),
            }
        }
        all += rows.len();

        // The stream returns the same rows in batches.
        let stream_url = url.replace("googleAds:search", "googleAds:searchStream");
        let (status, batches) = google(
            &client,
            &stream_url,
            GOOGLE_ADS_ACCESS_TOKEN,
            GOOGLE_ADS_DEVELOPER_TOKEN,
            &spend_query("2026-08-22", "2026-11-19"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let streamed: Vec<Value> = batches
            .as_array()
            .expect("array of batches")
            .iter()
            .flat_map(|b| b["results"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(streamed, rows);
    }
    let google: Vec<_> = sandbox
        .data
        .spend_facts()
        .into_iter()
        .filter(|f| f.platform == "google_ads")
        .collect();
    assert_eq!(all, google.len());
    assert_eq!(malformed, google.iter().filter(|f| f.malformed).count());
    assert_eq!(malformed, google.len() / 11);
    assert!(totals.spend_rows > all, "Meta and LinkedIn rows count too");
}

#[tokio::test]
async fn google_ads_honours_the_date_range_and_rejects_bad_requests() {
    let sandbox = start(options(100, 0)).await.expect("start");
    let client = Client::new();
    let base = sandbox.base_url();
    let url = format!("{base}/google_ads/v21/customers/5556667778/googleAds:search");
    let week = google_rows(&client, &url, &spend_query("2026-11-13", "2026-11-19")).await;
    assert!(!week.is_empty());
    assert!(week.iter().all(|r| {
        let d = r["segments"]["date"].as_str().unwrap_or_default();
        ("2026-11-13"..="2026-11-19").contains(&d)
    }));
    let same = google_rows(
        &client,
        &url,
        &json!({ "query": "SELECT customer.currency_code, campaign.id, campaign.name, \
            campaign.advertising_channel_type, segments.date, metrics.cost_micros, \
            metrics.impressions, metrics.clicks FROM campaign \
            WHERE segments.date >= '2026-11-13' AND segments.date <= '2026-11-19'" }),
    )
    .await;
    assert_eq!(same, week);

    let failure = |body: &Value| body["error"]["details"][0]["errors"][0]["errorCode"].clone();
    for (query, kind, code) in [
        ("campaign.id FROM campaign", "queryError", "EXPECTED_SELECT"),
        (
            "SELECT campaign.id FROM ad_group",
            "queryError",
            "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
        ),
        (
            "SELECT campaign.budget FROM campaign",
            "queryError",
            "UNRECOGNIZED_FIELD",
        ),
    ] {
        let (status, body) = google(
            &client,
            &url,
            GOOGLE_ADS_ACCESS_TOKEN,
            GOOGLE_ADS_DEVELOPER_TOKEN,
            &json!({ "query": query }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(failure(&body)[kind], code, "{body}");
    }

    let (status, body) = google(
        &client,
        &url,
        GOOGLE_ADS_ACCESS_TOKEN,
        GOOGLE_ADS_DEVELOPER_TOKEN,
        &json!({ "query": "SELECT campaign.id FROM campaign", "pageToken": "bm90LWEtdG9rZW4=" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(failure(&body)["requestError"], "INVALID_PAGE_TOKEN");

    let other = format!("{base}/google_ads/v21/customers/9998887776/googleAds:search");
    let (status, body) = google(
        &client,
        &other,
        GOOGLE_ADS_ACCESS_TOKEN,
        GOOGLE_ADS_DEVELOPER_TOKEN,
        &json!({ "query": "SELECT campaign.id FROM campaign" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        failure(&body)["authorizationError"],
        "USER_PERMISSION_DENIED"
    );
}

#[tokio::test]
async fn typeform_paging_collects_every_response_once() {
    let sandbox = start(options(300, 8)).await.expect("start");
    let totals = sandbox.data.totals();
    let client = Client::new();
    let base = format!(
        "{}/typeform/forms/{TYPEFORM_FORM_ID}/responses",
        sandbox.base_url()
    );
    let page_size = 20;
    let mut url = format!("{base}?page_size={page_size}");
    let (mut tokens, mut malformed, mut distribution) = (HashSet::new(), 0, [0usize; 11]);
    let mut identifiers = BTreeSet::new();
    let mut last_submitted = String::from("9999");
    let mut previous_total = usize::MAX;
    loop {
        let (status, page) = get(&client, &url, TYPEFORM_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let total = page["total_items"].as_u64().expect("total") as usize;
        assert!(total < previous_total || previous_total == usize::MAX);
        previous_total = total;
        let items = page["items"].as_array().expect("items");
        for item in items {
            let token = item["token"].as_str().expect("token").to_owned();
            assert_eq!(item["response_id"], item["token"]);
            assert!(tokens.insert(token));
            let submitted = item["submitted_at"].as_str().expect("submitted").to_owned();
            assert!(submitted <= last_submitted, "newest first");
            assert!(submitted.ends_with('Z') && !submitted.contains('.'));
            last_submitted = submitted;
            identifiers.insert(
                item["hidden"]["employee_id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
            identifiers.insert(
                item["metadata"]["network_id"]
                    .as_str()
                    .expect("nid")
                    .to_owned(),
            );
            let answers = item["answers"].as_array().expect("answers");
            if let Some(first) = answers.first()
                && first["field"]["ref"] == "enps"
            {
                // Only possible when workload was not answered.
                assert!(!answers.iter().any(|a| a["field"]["ref"] == "workload"));
            }
            for answer in answers {
                match answer["field"]["ref"].as_str() {
                    Some("enps") => match answer["number"].as_u64() {
                        Some(14) => malformed += 1,
                        Some(score) => distribution[score as usize] += 1,
                        None => panic!("enps without number: {answer}"),
                    },
                    Some("work_email") => {
                        identifiers.insert(answer["email"].as_str().expect("email").to_owned());
                    }
                    _ => {}
                }
            }
        }
        if items.len() < page_size {
            break;
        }
        let last = items[items.len() - 1]["token"].as_str().expect("token");
        url = format!("{base}?page_size={page_size}&before={last}");
    }
    assert_eq!(tokens.len(), totals.survey_responses);
    assert_eq!(malformed, totals.survey_responses_malformed);
    assert_eq!(distribution, totals.enps_distribution);
    assert_eq!(distribution.iter().sum::<usize>(), totals.survey_scored);
    assert_eq!(
        identifiers.into_iter().collect::<Vec<_>>(),
        totals.survey_raw_identifiers
    );
}

#[tokio::test]
async fn typeform_filters_and_errors() {
    let sandbox = start(options(300, 0)).await.expect("start");
    let client = Client::new();
    let root = format!("{}/typeform/forms", sandbox.base_url());
    let base = format!("{root}/{TYPEFORM_FORM_ID}/responses");

    let (status, page) = get(
        &client,
        &format!("{base}?page_size=1000&since=2026-11-01T00:00:00Z&until=1794009599"),
        TYPEFORM_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert_eq!(page["total_items"].as_u64(), Some(items.len() as u64));
    assert_eq!(page["page_count"], 1);
    assert!(items.iter().all(|i| {
        let s = i["submitted_at"].as_str().unwrap_or_default();
        ("2026-11-01T00:00:00Z"..="2026-11-06T23:59:59Z").contains(&s)
    }));

    let (status, body) = get(&client, &format!("{root}/nope/responses"), TYPEFORM_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "FORM_NOT_FOUND");

    for query in [
        "page_size=1001",
        "page_size=0",
        "since=yesterday",
        "before=zzz",
    ] {
        let (status, body) = get(&client, &format!("{base}?{query}"), TYPEFORM_TOKEN).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["code"], "VALIDATION_ERROR");
    }

    let (status, page) = get(
        &client,
        &format!("{base}?response_type=partial"),
        TYPEFORM_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total_items"], 0);

    let (status, form) = get(
        &client,
        &format!("{root}/{TYPEFORM_FORM_ID}"),
        TYPEFORM_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let refs: Vec<&str> = form["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["ref"].as_str())
        .collect();
    assert_eq!(
        refs,
        [
            "workload",
            "enps",
            "manager_support",
            "comment",
            "work_email",
            "which_team",
            "tenure"
        ]
    );
    // The team and tenure questions list their choices, as Typeform's definitions do.
    let team = &form["fields"][5];
    assert_eq!(team["type"], "multiple_choice");
    assert_eq!(team["properties"]["choices"][0]["label"], "Platform");
    assert_eq!(form["fields"][6]["type"], "dropdown");
}

#[tokio::test]
async fn responses_are_byte_identical_across_runs() {
    let opts = SandboxOptions {
        today: NaiveDate::from_ymd_opt(2026, 6, 1).expect("date"),
        ..options(120, 5)
    };
    let a = start(opts.clone()).await.expect("start");
    let b = start(opts).await.expect("start");
    assert_eq!(a.data.totals(), b.data.totals());
    let client = Client::new();
    let mut bodies = Vec::new();
    for sandbox in [&a, &b] {
        let base = sandbox.base_url();
        let hubspot = client
            .get(contacts_url(
                &base,
                "limit=50&properties=email,lifecyclestage,createdate",
            ))
            .bearer_auth(HUBSPOT_TOKEN)
            .send()
            .await
            .expect("hubspot")
            .bytes()
            .await
            .expect("body");
        let typeform = client
            .get(format!(
                "{base}/typeform/forms/{TYPEFORM_FORM_ID}/responses?page_size=50"
            ))
            .bearer_auth(TYPEFORM_TOKEN)
            .send()
            .await
            .expect("typeform")
            .bytes()
            .await
            .expect("body");
        let ads = client
            .post(format!(
                "{base}/google_ads/v20/customers/1112223334/googleAds:search?sandbox_page_size=40"
            ))
            .bearer_auth(GOOGLE_ADS_ACCESS_TOKEN)
            .header("developer-token", GOOGLE_ADS_DEVELOPER_TOKEN)
            .json(&spend_query("2026-03-01", "2026-05-31"))
            .send()
            .await
            .expect("ads")
            .bytes()
            .await
            .expect("body");
        // Links embed the port; compare everything else.
        let hubspot = String::from_utf8_lossy(&hubspot).replace(&base, "BASE");
        bodies.push((hubspot, typeform, ads));
    }
    assert_eq!(bodies[0], bodies[1]);
}
