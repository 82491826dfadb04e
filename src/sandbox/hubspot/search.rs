//! The HubSpot CRM search imitation: `POST /hubspot/crm/v3/objects/contacts/search` with
//! `lastmodifieddate` `GTE`/`GT`/`EQ` and `hs_object_id` `GTE`/`GT` filters (one group, ANDed;
//! ids compare as numbers), one ascending sort on either, `limit` ≤ 200 and the offset
//! `after`, over the live (not archived) contacts with their simulated edits. Its traps are
//! HubSpot's: some pages come back short while still carrying `paging.next` (and the last
//! one may be followed by an empty page), and no query pages past 10,000 results — asking
//! for `after` ≥ 10,000 is a 400.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::list::{admit, error, with_usage};
use super::record::{Requested, write_record};
use crate::sandbox::answer::{LastSize, json_page};
use crate::sandbox::data::SandboxData;
use crate::sandbox::encoding::{parse_timestamp_ms, uuid_like};
use crate::sandbox::rng::hash_bytes;

/// Path of the search endpoint, under the sandbox root.
pub(crate) const SEARCH_PATH: &str = "/hubspot/crm/v3/objects/contacts/search";
/// Results one query can page through.
pub const SEARCH_CEILING: usize = 10_000;
const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 10;

/// The contact property every search may sort and filter on as the contact's id.
const OBJECT_ID: &str = "hs_object_id";
static PAGE_SIZE: LastSize = LastSize::new();

/// A search as the sandbox understands it: the filters of one group (ANDed) narrowed to a
/// `lastmodifieddate` range and an `hs_object_id` floor, and its one ascending sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Query {
    /// `lastmodifieddate` at or after, epoch ms.
    from_ms: i64,
    /// `lastmodifieddate` at or before, epoch ms (only `EQ` sets it).
    to_ms: i64,
    /// `hs_object_id` at or above.
    min_id: u64,
    /// Sorted by `hs_object_id` (as a number) rather than by `lastmodifieddate`.
    by_id: bool,
}

/// A filter's `value`, a string or a number, as text.
fn filter_value(filter: &Value, property: &str) -> Result<String, String> {
    filter
        .get("value")
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .ok_or_else(|| format!("a {property} filter needs a `value`"))
}

/// The filters and sort the sandbox understands: `lastmodifieddate` `GTE`/`GT`/`EQ`,
/// `hs_object_id` `GTE`/`GT` (numeric), and one sort, `lastmodifieddate` or `hs_object_id`,
/// `ASCENDING`.
fn parse_query(body: &Value) -> Result<Query, String> {
    let mut query = Query {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        min_id: 0,
        by_id: false,
    };
    let groups: &[Value] = match body.get("filterGroups") {
        None => &[],
        Some(Value::Array(groups)) => groups,
        Some(_) => return Err("filterGroups must be an array".into()),
    };
    if groups.len() > 1 {
        return Err("the sandbox searches with at most one filter group".into());
    }
    for filter in groups
        .iter()
        .filter_map(|g| g.get("filters").and_then(Value::as_array))
        .flatten()
    {
        let property = filter.get("propertyName").and_then(Value::as_str);
        let operator = filter.get("operator").and_then(Value::as_str);
        match property {
            Some("lastmodifieddate") => {
                let value = filter_value(filter, "lastmodifieddate")?;
                let ms = parse_timestamp_ms(&value)
                    .map_err(|e| format!("Invalid value for lastmodifieddate: {e}"))?;
                let (from, to) = match operator {
                    Some("GTE") => (ms, i64::MAX),
                    Some("GT") => (ms.saturating_add(1), i64::MAX),
                    Some("EQ") => (ms, ms),
                    other => {
                        return Err(format!(
                            "unsupported operator {other:?} on lastmodifieddate (use GTE, GT or EQ)"
                        ));
                    }
                };
                query.from_ms = query.from_ms.max(from);
                query.to_ms = query.to_ms.min(to);
            }
            Some(OBJECT_ID) => {
                let value = filter_value(filter, OBJECT_ID)?;
                let id: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("Invalid value for {OBJECT_ID}: {value:?}"))?;
                query.min_id = query.min_id.max(match operator {
                    Some("GTE") => id,
                    Some("GT") => id.saturating_add(1),
                    other => {
                        return Err(format!(
                            "unsupported operator {other:?} on {OBJECT_ID} (use GTE or GT)"
                        ));
                    }
                });
            }
            other => {
                return Err(format!(
                    "the sandbox filters on lastmodifieddate and {OBJECT_ID} only (got {other:?})"
                ));
            }
        }
    }
    if let Some(sorts) = body.get("sorts") {
        let sorts = sorts.as_array().ok_or("sorts must be an array")?;
        if sorts.len() > 1 {
            return Err("a search takes one sort rule".into());
        }
        for sort in sorts {
            let property = sort.get("propertyName").and_then(Value::as_str);
            let direction = sort.get("direction").and_then(Value::as_str);
            query.by_id = match (property, direction) {
                (Some("lastmodifieddate"), Some("ASCENDING")) => false,
                (Some(OBJECT_ID), Some("ASCENDING")) => true,
                _ => {
                    return Err(format!(
                        "the sandbox sorts by lastmodifieddate or {OBJECT_ID} ASCENDING only"
                    ));
                }
            };
        }
    }
    Ok(query)
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
    let usage = match admit(&data, &headers, request_hash, &correlation) {
        Ok(usage) => usage,
        Err(refused) => return *refused,
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
    let query = match parse_query(&request) {
        Ok(query) => query,
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
    let properties: Vec<String> = request
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let properties = Requested::new(properties);

    let mut hits = data.crm.hubspot_search(&data.contacts, query.from_ms);
    hits.retain(|&(ms, i)| ms <= query.to_ms && data.contacts.id(i) >= query.min_id);
    if query.by_id {
        hits.sort_by_cached_key(|&(_, i)| data.contacts.id(i));
    }
    let total = hits.len();
    let reachable = total.min(SEARCH_CEILING);
    // Every fourth page (by offset) is short, yet the cursor goes on.
    let short = hash_bytes(seed, &(offset as u64).to_le_bytes()).is_multiple_of(4);
    let served = if short { (limit / 2).max(1) } else { limit };
    let start = offset.min(reachable);
    let end = (start + served).min(reachable);
    // Through a `Value`, whose keys are sorted: the search page lists them by name.
    let results: Vec<Value> = hits[start..end]
        .iter()
        .filter_map(|&(_, i)| data.crm.hubspot_contact(&data.contacts, i))
        .filter_map(|contact| {
            let mut record = Vec::new();
            write_record(&mut record, &contact, &properties, None);
            serde_json::from_slice(&record).ok()
        })
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
    with_usage(json_page(StatusCode::OK, &page, &PAGE_SIZE), usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn understands_lastmodifieddate_ranges_id_floors_and_one_ascending_sort() {
        let parse = |body: Value| parse_query(&body);
        let by_date = |from_ms, to_ms, min_id| Query {
            from_ms,
            to_ms,
            min_id,
            by_id: false,
        };
        let body = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1700000000000"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]});
        assert_eq!(parse(body), Ok(by_date(1_700_000_000_000, i64::MAX, 0)));
        let gt = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GT", "value": "2023-11-14T22:13:20Z"}]}]});
        assert_eq!(parse(gt), Ok(by_date(1_700_000_000_001, i64::MAX, 0)));
        assert_eq!(parse(json!({})), Ok(by_date(i64::MIN, i64::MAX, 0)));
        // One instant, paged by id: the id compares as a number, string or not.
        let tie = json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "1700000000000"},
            {"propertyName": "hs_object_id", "operator": "GT", "value": "999"}]}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]});
        assert_eq!(
            parse(tie),
            Ok(Query {
                from_ms: 1_700_000_000_000,
                to_ms: 1_700_000_000_000,
                min_id: 1_000,
                by_id: true,
            })
        );
        let gte = json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_object_id", "operator": "GTE", "value": 1000}]}]});
        assert_eq!(parse(gte), Ok(by_date(i64::MIN, i64::MAX, 1_000)));

        let date = |operator: &str| json!({"propertyName": "lastmodifieddate", "operator": operator, "value": "1700000000000"});
        let id = |operator: &str, value: Value| json!({"propertyName": "hs_object_id", "operator": operator, "value": value});
        let sort = |property: &str, direction: &str| json!({"propertyName": property, "direction": direction});
        for (filters, sorts, why) in [
            (
                json!([{"propertyName": "email", "operator": "EQ", "value": "x"}]),
                json!([]),
                "only lastmodifieddate and hs_object_id",
            ),
            (json!([date("LT")]), json!([]), "LT"),
            (json!([id("EQ", json!("5"))]), json!([]), "id EQ"),
            (json!([id("LT", json!("5"))]), json!([]), "id LT"),
            (json!([id("GT", json!("5a"))]), json!([]), "not a number"),
            (json!([id("GT", json!(-5))]), json!([]), "negative"),
            (
                json!([date("GTE")]),
                json!([sort("hs_object_id", "DESCENDING")]),
                "descending",
            ),
            (
                json!([date("GTE")]),
                json!([sort("email", "ASCENDING")]),
                "other sort",
            ),
            (
                json!([date("GTE")]),
                json!([
                    sort("lastmodifieddate", "ASCENDING"),
                    sort("hs_object_id", "ASCENDING")
                ]),
                "two sorts",
            ),
        ] {
            let body = json!({"filterGroups": [{"filters": filters}], "sorts": sorts});
            assert!(parse(body).is_err(), "{why}");
        }
        let two_groups = json!({"filterGroups": [{"filters": [date("GTE")]}, {"filters": []}]});
        assert!(parse(two_groups).is_err());
    }
}
