//! The HubSpot CRM v3 contacts list: `GET /hubspot/crm/v3/objects/contacts` with bearer auth,
//! `limit`/`properties`/`archived`, opaque `after` cursors that must be echoed byte for
//! byte, HubSpot-shaped error bodies, and the properties `GET /hubspot/crm/v3/properties/contacts`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::record::{Requested, write_record};
use crate::sandbox::answer::{LastSize, json_answer, page_buffer};
use crate::sandbox::contacts::{Contact, HUBSPOT_CONTACT_PROPERTIES, hubspot_property_type};
use crate::sandbox::crm::{HubspotUsage, Refusal};
use crate::sandbox::data::SandboxData;
use crate::sandbox::encoding::{base64url_decode, base64url_encode, uuid_like};
use crate::sandbox::property_value::write_json_string;
use crate::sandbox::request::{bearer_token, query_pairs};
use crate::sandbox::rng::hash_bytes;

/// Path of the list endpoint, under the sandbox root.
/// Bearer token the HubSpot imitation accepts.
pub const HUBSPOT_TOKEN: &str = "sandbox-hubspot-token";

pub(crate) const CONTACTS_PATH: &str = "/hubspot/crm/v3/objects/contacts";
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
const CURSOR_KEY: u64 = 0x4855_4253_504f_5421;
static PAGE_SIZE: LastSize = LastSize::new();

#[derive(Serialize)]
struct ErrorBody {
    status: &'static str,
    message: String,
    #[serde(rename = "correlationId")]
    correlation_id: String,
    category: &'static str,
}

pub(crate) fn error(
    status: StatusCode,
    category: &'static str,
    message: String,
    correlation: String,
) -> Response {
    let body = ErrorBody {
        status: "error",
        message,
        correlation_id: correlation,
        category,
    };
    (status, Json(body)).into_response()
}

/// The cursor for "continue at position `pos`": base64url of a fixed-width payload with a
/// checksum, its `=` padding percent-encoded (`…%3D%3D`), as HubSpot's cursors can be.
pub(crate) fn encode_cursor(seed: u64, pos: usize) -> String {
    let check = hash_bytes(seed ^ CURSOR_KEY, &(pos as u64).to_le_bytes());
    let payload = format!("{pos:012}{check:016x}");
    base64url_encode(payload.as_bytes()).replace('=', "%3D")
}

/// Inverse of [`encode_cursor`] applied to the *decoded* query value (`…==`). `None` for
/// anything altered, including a cursor whose `%3D` was encoded again (`%253D`).
pub(crate) fn decode_cursor(seed: u64, text: &str) -> Option<usize> {
    let bytes = base64url_decode(text)?;
    let payload = std::str::from_utf8(&bytes).ok()?;
    if payload.len() != 28 || !payload.is_ascii() {
        return None;
    }
    let (pos_text, check_text) = payload.split_at(12);
    let pos: usize = pos_text.parse().ok()?;
    let check = u64::from_str_radix(check_text, 16).ok()?;
    (check == hash_bytes(seed ^ CURSOR_KEY, &(pos as u64).to_le_bytes())).then_some(pos)
}

/// `GET /hubspot/crm/v3/objects/contacts`.
pub(crate) async fn list_contacts(
    State(data): State<Arc<SandboxData>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let seed = data.options().seed;
    let request_hash = hash_bytes(seed, raw.as_bytes());
    let correlation = uuid_like(
        request_hash,
        hash_bytes(request_hash, CONTACTS_PATH.as_bytes()),
    );

    if bearer_token(&headers) != Some(HUBSPOT_TOKEN) {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication \
             and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
                .to_owned(),
            correlation,
        );
    }

    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut archived = false;
    let mut properties: Vec<String> = Vec::new();
    for (key, value) in query_pairs(&raw) {
        match key.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        format!(
                            "limit must be an integer between 1 and {MAX_LIMIT} (got '{value}')"
                        ),
                        correlation,
                    );
                }
            },
            "after" => after = Some(value),
            "archived" => match value.as_str() {
                "true" => archived = true,
                "false" => archived = false,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        format!("archived must be true or false (got '{value}')"),
                        correlation,
                    );
                }
            },
            "properties" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !properties.iter().any(|p| p == name) {
                        properties.push(name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let properties = Requested::new(properties);

    let usage = match data.crm.hubspot_admit(request_hash) {
        Ok(usage) => usage,
        Err((refusal, usage)) => return rate_limited(refusal, usage, correlation),
    };
    let archived_records = archived.then(|| data.crm.hubspot_archived(&data.contacts));
    let total = match &archived_records {
        Some(list) => list.len(),
        None => data.crm.hubspot_live_count(&data.contacts),
    };
    let start = match after {
        None => 0,
        Some(text) => match decode_cursor(seed, &text) {
            Some(pos) if pos < total => pos,
            _ => {
                return with_usage(
                    error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        format!(
                            "Invalid 'after' value '{text}': send the paging.next.after of the \
                             previous page unchanged (it is already URL-encoded)"
                        ),
                        correlation,
                    ),
                    usage,
                );
            }
        },
    };
    let end = (start + limit).min(total);
    let mut page = page_buffer(&PAGE_SIZE);
    page.extend_from_slice(b"{\"results\":[");
    let mut records = 0usize;
    let mut put = |contact: &Contact, archived_at: Option<i64>| {
        if records > 0 {
            page.push(b',');
        }
        records += 1;
        write_record(&mut page, contact, &properties, archived_at);
    };
    match &archived_records {
        Some(list) => {
            for (contact, at) in &list[start..end] {
                put(contact, Some(*at));
            }
        }
        None => {
            for contact in (start..end)
                .filter_map(|pos| data.crm.hubspot_live_index(&data.contacts, pos))
                .filter_map(|i| data.crm.hubspot_contact(&data.contacts, i))
            {
                put(&contact, None);
            }
        }
    }
    page.push(b']');
    if end < total {
        let cursor = encode_cursor(seed, end);
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let kept: Vec<&str> = raw
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("after"))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("after=");
        query.push_str(&cursor);
        page.extend_from_slice(b",\"paging\":{\"next\":{\"after\":");
        write_json_string(&mut page, &cursor);
        page.extend_from_slice(b",\"link\":");
        write_json_string(&mut page, &format!("http://{host}{CONTACTS_PATH}?{query}"));
        page.extend_from_slice(b"}}");
    }
    page.push(b'}');
    with_usage(json_answer(StatusCode::OK, page, &PAGE_SIZE), usage)
}

/// Path of the contact properties endpoint, under the sandbox root.
pub(crate) const PROPERTIES_PATH: &str = "/hubspot/crm/v3/properties/contacts";

/// What a HubSpot request without query errors to report goes through first: the bearer
/// token (a 401), then the burst and daily limits (a 429); the usage to report if both pass.
pub(crate) fn admit(
    data: &SandboxData,
    headers: &HeaderMap,
    request_hash: u64,
    correlation: &str,
) -> Result<HubspotUsage, Box<Response>> {
    if bearer_token(headers) != Some(HUBSPOT_TOKEN) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.".to_owned(),
            correlation.to_owned(),
        )));
    }
    data.crm
        .hubspot_admit(request_hash)
        .map_err(|(refusal, usage)| Box::new(rate_limited(refusal, usage, correlation.to_owned())))
}

/// `GET /hubspot/crm/v3/properties/contacts`: every contact property the imitation serves,
/// as HubSpot lists them (`name`, `label`, `type`, `fieldType`, `groupName`), one page.
pub(crate) async fn list_properties(
    State(data): State<Arc<SandboxData>>,
    headers: HeaderMap,
) -> Response {
    let seed = data.options().seed;
    let request_hash = hash_bytes(seed, PROPERTIES_PATH.as_bytes());
    let correlation = uuid_like(request_hash, hash_bytes(request_hash, b"properties"));
    let usage = match admit(&data, &headers, request_hash, &correlation) {
        Ok(usage) => usage,
        Err(refused) => return *refused,
    };
    let results: Vec<serde_json::Value> = HUBSPOT_CONTACT_PROPERTIES
        .iter()
        .map(|&name| {
            let kind = hubspot_property_type(name);
            let field_type = match kind {
                "number" => "number",
                "bool" => "booleancheckbox",
                "datetime" | "date" => "date",
                "enumeration" => "select",
                _ => "text",
            };
            serde_json::json!({
                "name": name,
                "label": name.replace('_', " "),
                "type": kind,
                "fieldType": field_type,
                "groupName": "contactinformation",
                "description": "",
                "hidden": false,
                "formField": true,
            })
        })
        .collect();
    with_usage(
        (
            StatusCode::OK,
            Json(serde_json::json!({ "results": results })),
        )
            .into_response(),
        usage,
    )
}

/// HubSpot's 429: the burst policy (retry after the interval) or the daily one (stop).
pub(crate) fn rate_limited(refusal: Refusal, usage: HubspotUsage, correlation: String) -> Response {
    let (message, policy) = match refusal {
        Refusal::Burst => (
            format!(
                "You have reached your ten_secondly_rolling limit ({} requests per {} ms).",
                usage.limits.burst, usage.limits.interval_ms
            ),
            "TEN_SECONDLY_ROLLING",
        ),
        Refusal::Daily => (
            format!(
                "You have reached your daily limit of {} requests.",
                usage.limits.daily
            ),
            "DAILY",
        ),
    };
    let body = serde_json::json!({
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": correlation,
        "policyName": policy,
    });
    with_usage(
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response(),
        usage,
    )
}

/// Adds the `X-HubSpot-RateLimit-*` headers.
pub(crate) fn with_usage(mut response: Response, usage: HubspotUsage) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: u64| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, v);
        }
    };
    set("x-hubspot-ratelimit-max", u64::from(usage.limits.burst));
    set("x-hubspot-ratelimit-remaining", usage.remaining);
    set(
        "x-hubspot-ratelimit-interval-milliseconds",
        usage.limits.interval_ms,
    );
    set("x-hubspot-ratelimit-daily", usage.limits.daily);
    set("x-hubspot-ratelimit-daily-remaining", usage.daily_remaining);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_carry_a_percent_escape() {
        for pos in [0usize, 1, 10, 100, 99_999, 1_000_000] {
            let cursor = encode_cursor(42, pos);
            assert!(cursor.ends_with("%3D%3D"), "{cursor}");
            assert!(cursor.parse::<u64>().is_err());
            let sent = cursor.replace("%3D", "=");
            assert_eq!(decode_cursor(42, &sent), Some(pos));
            assert_eq!(decode_cursor(43, &sent), None, "other data set");
            assert_eq!(decode_cursor(42, &cursor), None, "double-encoded");
        }
        let mut altered = encode_cursor(42, 100).replace("%3D", "=").into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert_eq!(decode_cursor(42, &altered), None);
    }
}
