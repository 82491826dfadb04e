//! The HubSpot CRM search imitation: `POST /hubspot/crm/v3/objects/contacts/search` with a
//! `lastmodifieddate` `GTE`/`GT` filter, an ascending sort, `limit` ≤ 200 and the offset
//! `after`, over the live (not archived) contacts with their simulated edits. Its traps are
//! HubSpot's: some pages come back short while still carrying `paging.next` (and the last
//! one may be followed by an empty page), and no query pages past 10,000 results — asking
//! for `after` ≥ 10,000 is a 400.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::contacts::DEFAULT_PROPERTIES;
use super::data::{HUBSPOT_TOKEN, SandboxData};
use super::encoding::uuid_like;
use super::hubspot::{error, rate_limited, record, with_usage};
use super::rng::hash_bytes;
use super::server::bearer_token;

/// Path of the search endpoint, under the sandbox root.
pub(crate) const SEARCH_PATH: &str = "/hubspot/crm/v3/objects/contacts/search";
/// Results one query can page through.
pub const SEARCH_CEILING: usize = 10_000;
const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 10;

/// The filter the sandbox understands: `lastmodifieddate` from a lower bound.
fn lower_bound(body: &Value) -> Result<i64, String> {
    let groups = match body.get("filterGroups") {
        None => return Ok(i64::MIN),
        Some(Value::Array(groups)) => groups,
        Some(_) => return Err("filterGroups must be an array".into()),
    };
    if groups.len() > 1 {
        return Err("the sandbox searches with at most one filter group".into());
    }
    let mut from = i64::MIN;
    for filter in groups
        .iter()
        .filter_map(|g| g.get("filters").and_then(Value::as_array))
        .flatten()
    {
        let property = filter.get("propertyName").and_then(Value::as_str);
        let operator = filter.get("operator").and_then(Value::as_str);
        if property != Some("lastmodifieddate") {
            return Err(format!(
                "the sandbox filters on lastmodifieddate only (got {property:?})"
            ));
        }
        let value = filter
            .get("value")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .ok_or("a lastmodifieddate filter needs a `value`")?;
        let ms = crate::normalize::parse::timestamp_micros(&value)
            .map(|micros| micros.div_euclid(1_000))
            .map_err(|e| format!("Invalid value for lastmodifieddate: {e}"))?;
        from = from.max(match operator {
            Some("GTE") => ms,
            Some("GT") => ms + 1,
            other => return Err(format!("unsupported operator {other:?} (use GTE or GT)")),
        });
    }
    if let Some(Value::Array(sorts)) = body.get("sorts") {
        for sort in sorts {
            let property = sort.get("propertyName").and_then(Value::as_str);
            let direction = sort.get("direction").and_then(Value::as_str);
            if property != Some("lastmodifieddate") || direction != Some("ASCENDING") {
                return Err("the sandbox sorts by lastmodifieddate ASCENDING only".into());
            }
        }
    }
    Ok(from)
}

/// `POST /hubspot/crm/v3/objects/contacts/search`.
pub(crate) async fn search_contacts(
    State(data): State<Arc<SandboxData>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seed = data.options().seed;
    let request_hash = hash_bytes(seed, &body);
    let correlation = uuid_like(
        request_hash,
        hash_bytes(request_hash, SEARCH_PATH.as_bytes()),
    );
    if bearer_token(&headers) != Some(HUBSPOT_TOKEN) {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found.".to_owned(),
            correlation,
        );
    }
    let usage = match data.crm.hubspot_admit(request_hash) {
        Ok(usage) => usage,
        Err((refusal, usage)) => return rate_limited(refusal, usage, correlation),
    };
    let invalid = |message: String| {
        with_usage(
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                message,
                correlation.clone(),
            ),
            usage,
        )
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("Invalid input JSON: the body is not JSON".into());
    };
    let from = match lower_bound(&request) {
        Ok(from) => from,
        Err(message) => return invalid(message),
    };
    let limit = match request.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
            _ => return invalid(format!("limit must be between 1 and {MAX_LIMIT}")),
        },
    };
    let offset = match request.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => match v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
            .parse::<usize>()
        {
            Ok(n) => n,
            Err(_) => return invalid(format!("Invalid 'after' value {v}")),
        },
    };
    if offset >= SEARCH_CEILING {
        return invalid(format!(
            "Search results are limited to {SEARCH_CEILING} per query: narrow the filter \
             (e.g. restart from the last lastmodifieddate seen) instead of paging further"
        ));
    }
    let mut properties: Vec<String> = request
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if properties.is_empty() {
        properties = DEFAULT_PROPERTIES.iter().map(|&p| p.to_owned()).collect();
    }

    let hits = data.crm.hubspot_search(&data.contacts, from);
    let total = hits.len();
    let reachable = total.min(SEARCH_CEILING);
    // Every fourth page (by offset) is short, yet the cursor goes on.
    let short = hash_bytes(seed, &(offset as u64).to_le_bytes()).is_multiple_of(4);
    let served = if short { (limit / 2).max(1) } else { limit };
    let start = offset.min(reachable);
    let end = (start + served).min(reachable);
    let results: Vec<_> = hits[start..end]
        .iter()
        .filter_map(|&(_, i)| data.crm.hubspot_contact(&data.contacts, i))
        .map(|c| record(&c, &properties))
        .collect();
    // A short last page may still point at one more (empty) page.
    let next = if end < reachable
        || (end == SEARCH_CEILING && total > SEARCH_CEILING)
        || (end == total && short && start < end)
    {
        Some(end)
    } else {
        None
    };
    let mut page = json!({ "total": total, "results": results });
    if let Some(after) = next {
        page["paging"] = json!({ "next": { "after": after.to_string(), "link": Value::Null } });
    }
    with_usage((StatusCode::OK, Json(page)).into_response(), usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn understands_gte_and_gt_on_lastmodifieddate_only() {
        let body = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1700000000000"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]});
        assert_eq!(lower_bound(&body), Ok(1_700_000_000_000));
        let gt = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GT", "value": "2023-11-14T22:13:20Z"}]}]});
        assert_eq!(lower_bound(&gt), Ok(1_700_000_000_001));
        let other = json!({"filterGroups": [{"filters": [
            {"propertyName": "email", "operator": "EQ", "value": "x"}]}]});
        assert!(lower_bound(&other).is_err());
        assert_eq!(lower_bound(&json!({})), Ok(i64::MIN));
    }
}
