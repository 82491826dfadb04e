//! The Typeform Responses API imitation: `GET /typeform/forms/{form_id}/responses` (bearer
//! auth, `page_size`, `before` token paging newest first, `since`/`until`,
//! `response_type`) and the form definition `GET /typeform/forms/{form_id}`, with
//! Typeform's `{code, description}` error bodies.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Value as JsonValue, json};

use super::answer::{LastSize, json_page};
use super::data::SandboxData;
use super::encoding::{MS_PER_SEC, format_iso_seconds};
use super::request::{bearer_token, query_pairs};
use super::survey::{COMMENTS, SurveyResponse};
use super::twin::Twin;

/// Bearer token the Typeform imitation accepts.
pub const TYPEFORM_TOKEN: &str = "sandbox-typeform-token";
/// The one Typeform form served.
pub const TYPEFORM_FORM_ID: &str = "pulse2026";

/// The Typeform twin.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/typeform"],
    routes,
    env: &[("TYPEFORM_TOKEN", TYPEFORM_TOKEN)],
    terse_429: None,
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route("/typeform/forms/{form_id}/responses", get(list_responses))
        .route("/typeform/forms/{form_id}", get(form_definition))
}

const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 1_000;
static PAGE_SIZE: LastSize = LastSize::new();

/// `(ref, field id, field type, title)` in the order answers are listed (workload first:
/// a second 0–10 question that must not be taken for eNPS). The team (multiple choice) and
/// the tenure (dropdown) are asked as questions too: a job can group by them with
/// `group_questions`.
const FIELDS: [(&str, &str, &str, &str); 7] = [
    (
        "workload",
        "Wk7LQp2xNf0a",
        "opinion_scale",
        "How manageable was your workload this month?",
    ),
    (
        "enps",
        "eN9sPq4TzR1b",
        "opinion_scale",
        "How likely are you to recommend Brightloom as a place to work?",
    ),
    (
        "manager_support",
        "Mg3vHs8KdY2c",
        "rating",
        "How well did your manager support you?",
    ),
    (
        "comment",
        "Cm5tRx1WqJ3d",
        "long_text",
        "Anything else you want to tell us?",
    ),
    (
        "work_email",
        "Em2kZu6BvP4e",
        "email",
        "Your work e-mail (optional, if you want a follow-up)",
    ),
    (
        "which_team",
        "Tm8fWc3NaL5f",
        "multiple_choice",
        "Which team are you in?",
    ),
    (
        "tenure",
        "Tn4gXd9PbM6g",
        "dropdown",
        "How long have you been with Brightloom?",
    ),
];

/// The labels of a choice field (`which_team`, `tenure`), in choice order; none for another
/// field. Nothing is allocated: every choice answer of every response looks its label up.
fn field_labels(reference: &str) -> impl Iterator<Item = &'static str> {
    let teams = (reference == "which_team").then(super::survey::teams);
    let tenures = (reference == "tenure").then(|| super::survey::TENURES.iter().copied());
    teams
        .into_iter()
        .flatten()
        .chain(tenures.into_iter().flatten())
}

/// The id of the choice at `position` (0-based) of field `reference`: `<ref>-<n>`.
fn choice_id(reference: &str, position: usize) -> String {
    format!("{reference}-{}", position + 1)
}

/// The choices of a choice field (`which_team`, `tenure`), as `(choice id, label)`.
fn field_choices(reference: &str) -> Vec<(String, &'static str)> {
    field_labels(reference)
        .enumerate()
        .map(|(i, label)| (choice_id(reference, i), label))
        .collect()
}

fn error(status: StatusCode, code: &str, description: String) -> Response {
    (
        status,
        Json(json!({ "code": code, "description": description })),
    )
        .into_response()
}

fn validation(field: &str, description: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "code": "VALIDATION_ERROR",
            "description": description,
            "details": [{ "code": "invalid_value", "description": description, "field": field, "in": "query" }],
        })),
    )
        .into_response()
}

/// The error response for a wrong token or an unknown form, if any.
fn rejection(headers: &HeaderMap, form_id: &str) -> Option<Response> {
    if bearer_token(headers) != Some(TYPEFORM_TOKEN) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_FAILED",
            "Authentication credentials not found on the Request Headers".to_owned(),
        ));
    }
    if form_id != TYPEFORM_FORM_ID {
        return Some(error(
            StatusCode::NOT_FOUND,
            "FORM_NOT_FOUND",
            format!("Non existing form with uid {form_id}"),
        ));
    }
    None
}

/// `2026-11-01T00:00:00Z` (also `+00:00`, or no zone = UTC) or epoch seconds → epoch seconds.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|dt| dt.and_utc().timestamp())
}

/// `GET /typeform/forms/{form_id}/responses`.
pub(crate) async fn list_responses(
    State(data): State<Arc<SandboxData>>,
    Path(form_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(response) = rejection(&headers, &form_id) {
        return response;
    }
    let mut page_size = DEFAULT_PAGE_SIZE;
    let (mut since, mut until, mut before, mut sorted) = (None, None, None, false);
    let mut completed_wanted = true;
    for (key, value) in query_pairs(raw.as_deref().unwrap_or("")) {
        match key.as_str() {
            "page_size" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => page_size = n,
                _ => {
                    return validation(
                        "page_size",
                        format!("page_size must be between 1 and {MAX_PAGE_SIZE}, got '{value}'"),
                    );
                }
            },
            "since" | "until" => {
                let Some(t) = parse_time(&value) else {
                    return validation(
                        &key,
                        format!(
                            "{key} must be an ISO 8601 UTC date-time or epoch seconds, got '{value}'"
                        ),
                    );
                };
                if key == "since" {
                    since = Some(t);
                } else {
                    until = Some(t);
                }
            }
            "before" => before = Some(value),
            "sort" => {
                if value != "submitted_at,desc" {
                    return validation(
                        "sort",
                        format!("the sandbox supports sort=submitted_at,desc only, got '{value}'"),
                    );
                }
                sorted = true;
            }
            "response_type" => {
                let kinds: Vec<&str> = value.split(',').map(str::trim).collect();
                if let Some(bad) = kinds
                    .iter()
                    .find(|k| !matches!(**k, "started" | "partial" | "completed"))
                {
                    return validation(
                        "response_type",
                        format!(
                            "response_type must list started, partial or completed, got '{bad}'"
                        ),
                    );
                }
                // Every sandbox response is completed.
                completed_wanted = kinds.contains(&"completed");
            }
            "completed" => completed_wanted = value != "false",
            "after"
            | "query"
            | "fields"
            | "answered_fields"
            | "included_response_ids"
            | "excluded_response_ids" => {
                return validation(
                    &key,
                    format!("the sandbox does not implement '{key}'; page with 'before'"),
                );
            }
            _ => {}
        }
    }
    if sorted && before.is_some() {
        return validation(
            "sort",
            "before/after cannot be combined with sort".to_owned(),
        );
    }

    let responses = &data.survey.responses;
    // Newest first: `until` (and responses not yet submitted) cut the front, `since` the back.
    let until = Some(until.unwrap_or(i64::MAX).min(data.survey_cutoff()));
    let mut start = until.map_or(0, |u| responses.partition_point(|r| r.submitted_s > u));
    let end = since.map_or(responses.len(), |s| {
        responses.partition_point(|r| r.submitted_s >= s)
    });
    if let Some(token) = before {
        match data.survey.position(&token) {
            Some(pos) => start = start.max(pos + 1),
            None => {
                return validation(
                    "before",
                    format!("'{token}' is not the token of a response of this form"),
                );
            }
        }
    }
    let selected = if completed_wanted && start < end {
        &responses[start..end]
    } else {
        &responses[0..0]
    };
    let items: Vec<Item<'_>> = selected
        .iter()
        .take(page_size)
        .map(|r| item(&data, r))
        .collect();
    let total = selected.len();
    json_page(
        StatusCode::OK,
        &ResponsesPage {
            items,
            page_count: total.div_ceil(page_size),
            total_items: total,
        },
        &PAGE_SIZE,
    )
}

/// One answer of a response item: `{"field": {id, ref, type}, "<kind>": value, "type": kind}`.
struct Answer {
    /// Index into `FIELDS`.
    field: usize,
    value: AnswerValue,
}

/// An answer's value, by its kind.
enum AnswerValue {
    Number(u8),
    Text(&'static str),
    Email(String),
    Choice {
        id: Option<String>,
        label: &'static str,
    },
}

impl AnswerValue {
    fn kind(&self) -> &'static str {
        match self {
            AnswerValue::Number(_) => "number",
            AnswerValue::Text(_) => "text",
            AnswerValue::Email(_) => "email",
            AnswerValue::Choice { .. } => "choice",
        }
    }
}

impl Serialize for AnswerValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AnswerValue::Number(n) => n.serialize(serializer),
            AnswerValue::Text(text) => text.serialize(serializer),
            AnswerValue::Email(email) => email.serialize(serializer),
            AnswerValue::Choice { id, label } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("label", label)?;
                map.end()
            }
        }
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (reference, id, field_type, _) = FIELDS[self.field];
        let kind = self.value.kind();
        let mut map = serializer.serialize_map(Some(3))?;
        // Keys in alphabetical order, as every body of this twin writes them.
        if kind < "field" {
            map.serialize_entry(kind, &self.value)?;
        }
        map.serialize_entry(
            "field",
            &AnswerField {
                id,
                reference,
                field_type,
            },
        )?;
        if kind > "field" {
            map.serialize_entry(kind, &self.value)?;
        }
        map.serialize_entry("type", kind)?;
        map.end()
    }
}

#[derive(Serialize)]
struct AnswerField {
    id: &'static str,
    #[serde(rename = "ref")]
    reference: &'static str,
    #[serde(rename = "type")]
    field_type: &'static str,
}

/// A choice answer to field `index`: `{"type": "choice", "choice": {"id", "label"}}`.
fn choice_answer(index: usize, label: &'static str) -> Answer {
    let reference = FIELDS[index].0;
    let id = field_labels(reference)
        .position(|l| l == label)
        .map(|i| choice_id(reference, i));
    Answer {
        field: index,
        value: AnswerValue::Choice { id, label },
    }
}

/// A response item as Typeform sends it. Fields are in alphabetical order, the order of
/// the JSON tree this twin used to build for every item (recordings keep their bytes):
/// building and dropping that tree per item was most of the twin's CPU in a live pull.
#[derive(Serialize)]
struct Item<'a> {
    answers: Vec<Answer>,
    calculated: Calculated,
    hidden: Hidden<'a>,
    landed_at: String,
    landing_id: &'a str,
    metadata: Metadata,
    response_id: &'a str,
    submitted_at: String,
    token: &'a str,
    variables: [(); 0],
}

#[derive(Serialize)]
struct Calculated {
    score: u8,
}

#[derive(Serialize)]
struct Hidden<'a> {
    department: &'static str,
    employee_id: String,
    location: &'static str,
    team: &'a str,
}

#[derive(Serialize)]
struct Metadata {
    browser: &'static str,
    network_id: String,
    platform: &'static str,
    referer: String,
    user_agent: &'static str,
}

/// A page of responses.
#[derive(Serialize)]
struct ResponsesPage<'a> {
    items: Vec<Item<'a>>,
    page_count: usize,
    total_items: usize,
}

fn item<'a>(data: &'a SandboxData, r: &'a SurveyResponse) -> Item<'a> {
    let employee = &data.survey.employees[r.employee];
    let mut answers = Vec::new();
    let mut push = |field: usize, value: AnswerValue| answers.push(Answer { field, value });
    if let Some(v) = r.workload {
        push(0, AnswerValue::Number(v));
    }
    if let Some(v) = r.enps {
        push(1, AnswerValue::Number(v));
    }
    if let Some(v) = r.manager_support {
        push(2, AnswerValue::Number(v));
    }
    if let Some(c) = r.comment {
        push(3, AnswerValue::Text(COMMENTS[c % COMMENTS.len()]));
    }
    if r.work_email {
        push(4, AnswerValue::Email(employee.email()));
    }
    answers.push(choice_answer(5, employee.team));
    answers.push(choice_answer(6, employee.tenure()));
    let token = r.token_str();
    Item {
        answers,
        calculated: Calculated { score: 0 },
        hidden: Hidden {
            department: employee.department_name(),
            employee_id: employee.employee_id(),
            location: employee.location_name(),
            team: employee.team,
        },
        landed_at: format_iso_seconds(r.landed_s * MS_PER_SEC),
        landing_id: token,
        metadata: Metadata {
            browser: "default",
            network_id: employee.network_id_hex(),
            platform: "other",
            referer: format!("https://brightloom.typeform.com/to/{TYPEFORM_FORM_ID}"),
            user_agent: r.user_agent(),
        },
        response_id: token,
        submitted_at: format_iso_seconds(r.submitted_s * MS_PER_SEC),
        token,
        variables: [],
    }
}

/// `GET /typeform/forms/{form_id}`: the form definition (fields with id, ref, type).
pub(crate) async fn form_definition(Path(form_id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&headers, &form_id) {
        return response;
    }
    let fields: Vec<JsonValue> = FIELDS
        .iter()
        .map(|&(reference, id, field_type, title)| {
            let properties = match field_type {
                "opinion_scale" => json!({
                    "steps": 11,
                    "start_at_one": false,
                    "labels": { "left": "Not at all", "right": "Extremely" },
                }),
                "rating" => json!({ "steps": 5, "shape": "star" }),
                "multiple_choice" | "dropdown" => json!({
                    "choices": field_choices(reference)
                        .into_iter()
                        .map(|(id, label)| json!({ "id": id, "label": label }))
                        .collect::<Vec<_>>(),
                }),
                _ => json!({}),
            };
            json!({
                "id": id,
                "title": title,
                "ref": reference,
                "type": field_type,
                "properties": properties,
                "validations": { "required": false },
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "id": TYPEFORM_FORM_ID,
            "title": "Monthly pulse 2026",
            "type": "form",
            "fields": fields,
            "hidden": ["department", "team", "location", "employee_id"],
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typeform_time_forms() {
        assert_eq!(parse_time("2026-11-01T00:00:00Z"), Some(1_793_491_200));
        assert_eq!(parse_time("2026-11-01T00:00:00"), Some(1_793_491_200));
        assert_eq!(parse_time("2026-11-01T01:00:00+01:00"), Some(1_793_491_200));
        assert_eq!(parse_time("1793491200"), Some(1_793_491_200));
        assert_eq!(parse_time("yesterday"), None);
    }
}
