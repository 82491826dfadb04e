//! The Salesforce REST imitation, under `/salesforce`: the OAuth 2.0 refresh-token grant
//! (`POST /services/oauth2/token` → `access_token`, `instance_url`), and SOQL over Lead
//! through `GET /services/data/vNN.N/query` and `/queryAll` (`?q=`), cursors followed with
//! the relative `nextRecordsUrl` until `done`. Its traps are Salesforce's: datetime literals
//! must be unquoted, `SystemModstamp` has whole seconds (ties), datetimes read
//! `…T10:00:00.000+0000`, numbers are JSON doubles, every record starts with an
//! `attributes` object, errors are a JSON array of `{message, errorCode}`, every answer
//! carries `Sforce-Limit-Info`, a spent allocation is `403 REQUEST_LIMIT_EXCEEDED` and an
//! expired session `401 INVALID_SESSION_ID`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::contacts::{Contact, Stage};
use super::crm::{Locator, SfRefusal};
use super::data::SandboxData;
use super::encoding::{MS_PER_DAY, civil_from_days, lead_id};
use super::request::{bearer_token, query_pairs};
use super::twin::{Terse429, Twin};

/// OAuth client id the Salesforce imitation accepts.
pub const SALESFORCE_CLIENT_ID: &str = "sandbox-salesforce-client-id";
/// OAuth client secret it accepts.
pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-salesforce-client-secret";
/// Refresh token it accepts.
pub const SALESFORCE_REFRESH_TOKEN: &str = "sandbox-salesforce-refresh-token";

/// The Salesforce twin, with its admin route that injects faults.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/salesforce"],
    routes,
    env: &[
        ("SALESFORCE_CLIENT_ID", SALESFORCE_CLIENT_ID),
        ("SALESFORCE_CLIENT_SECRET", SALESFORCE_CLIENT_SECRET),
        ("SALESFORCE_REFRESH_TOKEN", SALESFORCE_REFRESH_TOKEN),
    ],
    terse_429: Some(TOKEN_RATE_LIMIT),
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route("/salesforce/services/oauth2/token", post(token))
        .route("/salesforce/services/data/{version}/{endpoint}", get(query))
        .route(
            "/salesforce/services/data/{version}/{endpoint}/{cursor}",
            get(query_more),
        )
        .route(
            "/salesforce/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/_admin/crm/salesforce",
            post(super::admin::salesforce_faults),
        )
}

/// Salesforce's token endpoint out of requests: its OAuth error and no `Retry-After`
/// (Salesforce sends none).
const TOKEN_RATE_LIMIT: Terse429 = Terse429 {
    name: "salesforce_token",
    endpoint: is_token_endpoint,
    answer: token_rate_limited,
};

fn is_token_endpoint(path: &str) -> bool {
    path == "/salesforce/services/oauth2/token"
}

fn token_rate_limited() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": "rate_limit_exceeded",
            "error_description": "too many token requests from this client; try again later",
        })),
    )
        .into_response()
}

const DEFAULT_BATCH: usize = 2_000;

/// Every Lead field the imitation serves.
pub const SALESFORCE_LEAD_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Company",
    "Title",
    "Country",
    "OwnerId",
    "Status",
    "LeadSource",
    "Rating",
    "IsConverted",
    "ConvertedDate",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "Lead_Score__c",
    "Demo_Requested__c",
    "Industry",
    "NumberOfEmployees",
    "AnnualRevenue",
    "ICP_Tier__c",
    "Seats_Requested__c",
    "Is_Partner__c",
    "Trial_Started_At__c",
];

/// Every Contact field the imitation serves; contacts are the converted leads.
pub(super) const SALESFORCE_CONTACT_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Title",
    "MailingCountry",
    "OwnerId",
    "LeadSource",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "Account.Name",
    "Account.Industry",
    "Account.NumberOfEmployees",
    "Account.AnnualRevenue",
];

/// The describe `type` of a served field.
fn field_type(name: &str) -> &'static str {
    match name {
        "Id" => "id",
        "Email" => "email",
        "OwnerId" | "AccountId" => "reference",
        "Status" | "LeadSource" | "Rating" | "Industry" | "ICP_Tier__c" => "picklist",
        "IsConverted" | "IsDeleted" | "Demo_Requested__c" | "Is_Partner__c" => "boolean",
        "ConvertedDate" => "date",
        "CreatedDate" | "LastModifiedDate" | "SystemModstamp" | "Trial_Started_At__c" => "datetime",
        "Lead_Score__c" | "Seats_Requested__c" => "double",
        "NumberOfEmployees" => "int",
        "AnnualRevenue" => "currency",
        _ => "string",
    }
}

/// `GET /salesforce/services/data/{version}/sobjects/{object}/describe`: the object's
/// fields (`name`, `label`, `type`, `custom`, `nillable`), as Salesforce describes them.
pub(crate) async fn describe(
    State(data): State<Arc<SandboxData>>,
    Path((_version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let usage = match admit(&data, &headers) {
        Ok(usage) => usage,
        Err(response) => return response,
    };
    let names: Vec<&str> = match object.as_str() {
        "Lead" => SALESFORCE_LEAD_FIELDS.to_vec(),
        // A parent's fields are the parent's: the Contact has the relationship id.
        "Contact" => SALESFORCE_CONTACT_FIELDS
            .iter()
            .copied()
            .filter(|f| !f.contains('.'))
            .chain(["AccountId"])
            .collect(),
        _ => {
            return errors(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("The requested resource does not exist: sObject type '{object}'"),
                Some(usage),
            );
        }
    };
    let fields: Vec<Value> = names
        .iter()
        .map(|&name| {
            json!({
                "name": name,
                "label": name.trim_end_matches("__c").replace('_', " "),
                "type": field_type(name),
                "custom": name.ends_with("__c"),
                "nillable": name != "Id",
            })
        })
        .collect();
    let mut response = (
        StatusCode::OK,
        Json(json!({"name": object, "label": object, "custom": false, "fields": fields})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&usage) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// The 18-character id of the contact a converted lead became (`003` key prefix).
pub(crate) fn contact_id(n: u64) -> String {
    let id = lead_id(n);
    format!("003{}", &id[3..])
}

fn user_id(n: u64) -> String {
    let id = lead_id(n);
    format!("005{}", &id[3..])
}

/// `2026-10-01T12:34:56.000+0000` (whole seconds, as `SystemModstamp` is kept).
fn sf_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000+0000",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60
    )
}

fn sf_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The value of `field` on lead `lead`.
fn field(lead: &Contact, deleted: bool, name: &str) -> Value {
    let converted = matches!(
        lead.stage,
        Stage::Sql | Stage::Opportunity | Stage::Customer
    );
    let modstamp = lead.modified_ms.div_euclid(1_000) * 1_000;
    match name {
        "Id" => json!(lead_id(lead.id)),
        "FirstName" => json!(lead.first_name()),
        "LastName" => json!(lead.last_name()),
        "Email" => json!(lead.email),
        "Company" => json!(lead.company_name().unwrap_or("[not provided]")),
        "Title" => json!(lead.title()),
        "Country" | "MailingCountry" => json!(lead.country_code()),
        "OwnerId" => json!(lead.owner().map(user_id)),
        "Status" => json!(match lead.stage {
            Stage::Subscriber | Stage::Lead => "Open - Not Contacted",
            Stage::Mql => "Working - Contacted",
            Stage::Other => "Closed - Not Converted",
            _ => "Closed - Converted",
        }),
        "LeadSource" => json!(match lead.source {
            "ORGANIC_SEARCH" | "DIRECT_TRAFFIC" => "Web",
            "PAID_SEARCH" | "PAID_SOCIAL" => "Advertisement",
            "EMAIL_MARKETING" => "Email",
            "REFERRALS" => "Partner Referral",
            "SOCIAL_MEDIA" => "Social Media",
            _ => "Trade Show",
        }),
        "Rating" => json!(match lead.score() {
            s if s >= 60 => "Hot",
            s if s >= 30 => "Warm",
            _ => "Cold",
        }),
        "IsConverted" => json!(converted),
        "ConvertedDate" => json!(if converted {
            lead.sql_ms.map(sf_date)
        } else {
            None
        }),
        "CreatedDate" if lead.malformed => json!("not-a-date"),
        "CreatedDate" => json!(sf_datetime(lead.created_ms)),
        "LastModifiedDate" | "SystemModstamp" => json!(sf_datetime(modstamp)),
        "IsDeleted" => json!(deleted),
        // Numbers are JSON doubles.
        "Lead_Score__c" => json!(lead.score() as f64),
        "Demo_Requested__c" => json!(lead.demo()),
        "Industry" => json!(lead.firmographics.salesforce_industry()),
        "NumberOfEmployees" => json!(lead.firmographics.employees),
        // A currency field: a JSON double.
        "AnnualRevenue" => json!(lead.firmographics.revenue.map(|r| r as f64)),
        "ICP_Tier__c" => json!(lead.custom.icp_tier),
        "Seats_Requested__c" => json!(lead.custom.seats_requested.map(f64::from)),
        "Is_Partner__c" => json!(lead.custom.is_partner.unwrap_or(false)),
        "Trial_Started_At__c" => json!(lead.custom.trial_started_ms.map(sf_datetime)),
        _ => Value::Null,
    }
}

/// Does this lead exist as a Contact (it was converted)?
fn is_contact(lead: &Contact) -> bool {
    matches!(
        lead.stage,
        Stage::Sql | Stage::Opportunity | Stage::Customer
    )
}

fn record(lead: &Contact, deleted: bool, object: &str, fields: &[String], version: &str) -> Value {
    let id = if object == "Contact" {
        contact_id(lead.id)
    } else {
        lead_id(lead.id)
    };
    let mut map = Map::new();
    map.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")}),
    );
    for name in fields {
        match name.as_str() {
            "Id" => {
                map.insert(name.clone(), json!(id));
            }
            // A parent's fields arrive nested, with the parent's own attributes; a contact
            // without a company has no Account (`null`).
            parent if parent.starts_with("Account.") => {
                let Some(company) = lead.company_name() else {
                    map.insert("Account".into(), Value::Null);
                    continue;
                };
                let account = map.entry("Account").or_insert_with(|| {
                    json!({"attributes": {"type": "Account", "url": format!("/services/data/{version}/sobjects/Account/001{}", &id[3..])}})
                });
                let f = &lead.firmographics;
                let value = match &parent["Account.".len()..] {
                    "Name" => json!(company),
                    "Industry" => json!(f.salesforce_industry()),
                    "NumberOfEmployees" => json!(f.employees),
                    "AnnualRevenue" => json!(f.revenue.map(|r| r as f64)),
                    _ => Value::Null,
                };
                if let Some(account) = account.as_object_mut() {
                    account.insert(parent["Account.".len()..].to_string(), value);
                }
            }
            _ => {
                map.insert(name.clone(), field(lead, deleted, name));
            }
        }
    }
    Value::Object(map)
}

fn errors(status: StatusCode, code: &str, message: &str, usage: Option<String>) -> Response {
    let mut response = (
        status,
        Json(json!([{ "message": message, "errorCode": code }])),
    )
        .into_response();
    if let Some(usage) = usage.and_then(|u| HeaderValue::from_str(&u).ok()) {
        response.headers_mut().insert("sforce-limit-info", usage);
    }
    response
}

/// `POST /salesforce/services/oauth2/token` (form body).
pub(crate) async fn token(
    State(data): State<Arc<SandboxData>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = query_pairs(&body);
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if get("grant_type") != Some("refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})),
        )
            .into_response();
    }
    if get("client_id") != Some(SALESFORCE_CLIENT_ID)
        || get("client_secret") != Some(SALESFORCE_CLIENT_SECRET)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"})),
        )
            .into_response();
    }
    if get("refresh_token") != Some(SALESFORCE_REFRESH_TOKEN) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})),
        )
            .into_response();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let access_token = data.crm.issue_session();
    Json(json!({
        "access_token": access_token,
        "instance_url": format!("http://{host}/salesforce"),
        "id": format!("http://{host}/salesforce/id/00Dsandbox/{}", user_id(1)),
        "token_type": "Bearer",
        "issued_at": "1795132800000",
        "signature": "c2FuZGJveC1zaWduYXR1cmU=",
        "scope": "api refresh_token"
    }))
    .into_response()
}

/// A parsed `SELECT … FROM Lead [WHERE …] [ORDER BY …]`.
#[derive(Debug, PartialEq)]
struct Soql {
    fields: Vec<String>,
    object: String,
    /// `SystemModstamp >= ms` (or `>`, as ms + 1000).
    from_ms: Option<i64>,
    is_deleted: Option<bool>,
}

fn parse_soql(q: &str) -> Result<Soql, (&'static str, String)> {
    let malformed = |m: String| ("MALFORMED_QUERY", m);
    let words: Vec<&str> = q.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let position = |kw: &str| upper.iter().position(|w| w == kw);
    if upper.first().map(String::as_str) != Some("SELECT") {
        return Err(malformed(
            "unexpected token: query must start with SELECT".into(),
        ));
    }
    let from = position("FROM").ok_or_else(|| malformed("unexpected end: no FROM".into()))?;
    let fields: Vec<String> = words[1..from]
        .join(" ")
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    if fields.is_empty() {
        return Err(malformed("no fields selected".into()));
    }
    let object = words
        .get(from + 1)
        .ok_or_else(|| malformed("unexpected end after FROM".into()))?
        .to_string();
    let known = match object.as_str() {
        "Lead" => SALESFORCE_LEAD_FIELDS,
        "Contact" => SALESFORCE_CONTACT_FIELDS,
        _ => {
            return Err((
                "INVALID_TYPE",
                format!(
                    "sObject type '{object}' is not supported by the sandbox (Lead and Contact only)."
                ),
            ));
        }
    };
    for f in &fields {
        if !known.contains(&f.as_str()) {
            return Err((
                "INVALID_FIELD",
                format!("No such column '{f}' on entity '{object}'."),
            ));
        }
    }
    let mut soql = Soql {
        fields,
        object,
        from_ms: None,
        is_deleted: None,
    };
    let Some(where_at) = position("WHERE") else {
        return Ok(soql);
    };
    let end = position("ORDER")
        .or_else(|| position("LIMIT"))
        .unwrap_or(words.len());
    let clause = words[where_at + 1..end].join(" ");
    for condition in clause.split(" AND ").flat_map(|c| c.split(" and ")) {
        let parts: Vec<&str> = condition.split_whitespace().collect();
        let [field, op, value] = parts[..] else {
            return Err(malformed(format!(
                "cannot read the condition `{condition}`"
            )));
        };
        match (field, op) {
            ("SystemModstamp", ">=" | ">") => {
                if value.starts_with('\'') {
                    return Err(malformed(format!(
                        "value of filter criterion for field 'SystemModstamp' must be of type dateTime and should not be enclosed in quotes: {value}"
                    )));
                }
                let micros = chrono::DateTime::parse_from_rfc3339(value)
                    .map_err(|_| malformed(format!("line 1: invalid dateTime literal {value}")))?
                    .timestamp_micros();
                let ms = micros.div_euclid(1_000) + if op == ">" { 1_000 } else { 0 };
                soql.from_ms = Some(ms);
            }
            ("IsDeleted", "=") => {
                soql.is_deleted = Some(match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(malformed(format!(
                            "IsDeleted = {value}: expected true or false"
                        )));
                    }
                });
            }
            _ => {
                return Err(malformed(format!(
                    "the sandbox filters on `SystemModstamp >=` and `IsDeleted =` only, not `{condition}`"
                )));
            }
        }
    }
    Ok(soql)
}

/// Check the session and count the call: the `Sforce-Limit-Info` value, or the error answer.
#[allow(
    clippy::result_large_err,
    reason = "the error is the answer itself, built once per refused call"
)]
fn admit(data: &SandboxData, headers: &HeaderMap) -> Result<String, Response> {
    data.crm
        .salesforce_call(bearer_token(headers))
        .map_err(|refusal| match refusal {
            SfRefusal::Session => errors(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
                None,
            ),
            SfRefusal::Allocation(usage) => errors(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                Some(usage),
            ),
        })
}

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.trim().strip_prefix("batchSize="))
        })
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(DEFAULT_BATCH, |n| n.clamp(200, DEFAULT_BATCH))
}

/// `GET /salesforce/services/data/{version}/query` and `/queryAll`.
pub(crate) async fn query(
    State(data): State<Arc<SandboxData>>,
    Path((version, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let usage = match admit(&data, &headers) {
        Ok(usage) => usage,
        Err(response) => return response,
    };
    let all = match endpoint.as_str() {
        "query" => false,
        "queryAll" => true,
        _ => {
            return errors(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
                Some(usage),
            );
        }
    };
    let q = query_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v);
    let Some(q) = q else {
        return errors(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "missing the q parameter",
            Some(usage),
        );
    };
    let soql = match parse_soql(&q) {
        Ok(soql) => soql,
        Err((code, message)) => {
            return errors(StatusCode::BAD_REQUEST, code, &message, Some(usage));
        }
    };
    let mut rows: Vec<(i64, String, usize)> = data
        .crm
        .salesforce_leads()
        .into_iter()
        .filter(|(_, lead, _)| soql.object == "Lead" || is_contact(lead))
        .map(|(i, lead, deleted)| (i, lead, deleted && soql.object == "Lead"))
        .filter(|(_, _, deleted)| all || !deleted)
        .filter(|(_, _, deleted)| soql.is_deleted.is_none_or(|want| want == *deleted))
        .map(|(i, lead, _)| {
            (
                lead.modified_ms.div_euclid(1_000) * 1_000,
                lead_id(lead.id),
                i,
            )
        })
        .filter(|(ms, _, _)| soql.from_ms.is_none_or(|from| *ms >= from))
        .collect();
    rows.sort();
    let locator = Locator {
        object: soql.object,
        fields: soql.fields,
        rows: rows.into_iter().map(|(_, _, i)| i).collect(),
        batch: batch_size(&headers),
    };
    page(&data, &version, locator, None, 0, usage)
}

/// `GET /salesforce/services/data/{version}/query/{locator}-{offset}`.
pub(crate) async fn query_more(
    State(data): State<Arc<SandboxData>>,
    Path((version, endpoint, cursor)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let usage = match admit(&data, &headers) {
        Ok(usage) => usage,
        Err(response) => return response,
    };
    let invalid = |usage: String| {
        errors(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
            Some(usage),
        )
    };
    if endpoint != "query" && endpoint != "queryAll" {
        return invalid(usage);
    }
    let Some((id, offset)) = cursor.rsplit_once('-') else {
        return invalid(usage);
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid(usage);
    };
    match data.crm.locator(id) {
        Some(locator) if offset < locator.rows.len() => page(
            &data,
            &version,
            locator,
            Some(id.to_string()),
            offset,
            usage,
        ),
        _ => invalid(usage),
    }
}

fn page(
    data: &SandboxData,
    version: &str,
    locator: Locator,
    id: Option<String>,
    offset: usize,
    usage: String,
) -> Response {
    let total = locator.rows.len();
    let end = (offset + locator.batch).min(total);
    let records: Vec<Value> = locator.rows[offset..end]
        .iter()
        .map(|&i| {
            let (lead, deleted) = data.crm.salesforce_lead(i);
            let deleted = deleted && locator.object == "Lead";
            record(&lead, deleted, &locator.object, &locator.fields, version)
        })
        .collect();
    let mut body = json!({ "totalSize": total, "done": end >= total, "records": records });
    if end < total {
        let id = id.unwrap_or_else(|| data.crm.store_locator(locator));
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{id}-{end}"));
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&usage) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_18_characters_with_the_case_safe_suffix() {
        let id = lead_id(12_345);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00Q"));
        assert_ne!(lead_id(1), lead_id(2));
        assert_eq!(&user_id(7)[..3], "005");
    }

    #[test]
    fn soql_datetimes_must_be_unquoted() {
        let ok = parse_soql(
            "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= 2026-11-19T00:00:00Z AND IsDeleted = true ORDER BY SystemModstamp, Id",
        )
        .unwrap();
        assert_eq!(ok.from_ms, Some(1_795_046_400_000));
        assert_eq!(ok.is_deleted, Some(true));
        let quoted =
            parse_soql("SELECT Id FROM Lead WHERE SystemModstamp >= '2026-11-19T00:00:00Z'");
        assert_eq!(quoted.unwrap_err().0, "MALFORMED_QUERY");
        assert_eq!(
            parse_soql("SELECT Nope FROM Lead").unwrap_err().0,
            "INVALID_FIELD"
        );
        assert_eq!(
            sf_datetime(1_795_046_400_999),
            "2026-11-19T00:00:00.000+0000"
        );
    }
}
