//! The SurveyMonkey API v3 imitation over the same employee pulse as the Typeform twin:
//! `GET /surveymonkey/v3/surveys/{id}/details` (pages → questions → choices, the eNPS as an
//! NPS matrix with −100/0/+100 weights — scores come from choice position, not weight) and
//! `GET /surveymonkey/v3/surveys/{id}/responses/bulk` (`page`/`per_page`, `links.next` absent
//! on the last page, `start_modified_at`, `sort_by=date_modified`, ascending), with
//! partial responses, rate-limit headers on every answer and SurveyMonkey's error envelope.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::{Value as JsonValue, json};

use super::answer::{LastSize, json_page};
use super::data::{SandboxData, TwinState};
use super::encoding::{MS_PER_SEC, format_iso_seconds};
use super::request::{bearer_token, query_pairs};
use super::rng::hash_bytes;
use super::survey::{COMMENTS, PartialCounts, SurveyResponse, is_partial};
use super::twin::{Terse429, Twin};

/// The SurveyMonkey token the sandbox accepts.
pub const SURVEYMONKEY_TOKEN: &str = "sandbox-surveymonkey-token";
/// The one SurveyMonkey survey the sandbox serves.
pub const SURVEYMONKEY_SURVEY_ID: &str = "318842756";

/// The SurveyMonkey twin.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/surveymonkey"],
    routes,
    env: &[("SURVEYMONKEY_TOKEN", SURVEYMONKEY_TOKEN)],
    terse_429: Some(RESPONSES_RATE_LIMIT),
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route("/surveymonkey/v3/surveys/{survey_id}/details", get(details))
        .route(
            "/surveymonkey/v3/surveys/{survey_id}/responses/bulk",
            get(bulk),
        )
}

/// SurveyMonkey's responses out of requests: error 1040 with
/// `X-Ratelimit-App-Global-Minute-Remaining: 0` but no `…-Minute-Reset`.
const RESPONSES_RATE_LIMIT: Terse429 = Terse429 {
    name: "surveymonkey",
    endpoint: is_bulk_responses,
    answer: responses_rate_limited,
};

fn is_bulk_responses(path: &str) -> bool {
    path.starts_with("/surveymonkey/") && path.ends_with("/responses/bulk")
}

fn responses_rate_limited() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("x-ratelimit-app-global-minute-remaining", "0")],
        Json(json!({"error": {
            "id": "1040",
            "name": "Rate limit reached",
            "docs": "https://developer.surveymonkey.com/api/v3/#error-codes",
            "message": "Too many requests were made, try again later.",
            "http_status_code": 429,
        }})),
    )
        .into_response()
}

const DEFAULT_PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 100;
static PAGE_SIZE: LastSize = LastSize::new();
/// The app limits the headers advertise (draft apps: 120 per minute, 500 per day).
const MINUTE_LIMIT: u64 = 120;
const DAY_LIMIT: u64 = 500;

/// Question ids; the eNPS and the workload question are both 0–10 ratings.
pub const ENPS_QUESTION_ID: &str = "640001001";
const WORKLOAD_QUESTION_ID: &str = "640001002";
const MANAGER_QUESTION_ID: &str = "640001003";
const COMMENT_QUESTION_ID: &str = "640001004";
/// "Which team are you in?": a single-choice question over every team, so a job can group
/// by team from the answer (`group_questions`) as well as from the custom variable.
pub(super) const TEAM_QUESTION_ID: &str = "640001005";
const PAGE_ID: &str = "59000001";
/// A choice id no question has: what a malformed response carries.
pub(crate) const UNKNOWN_CHOICE_ID: &str = "64999999999";

/// What only this twin keeps: the requests it answered (its rate-limit headers count them)
/// and the survey's partial responses, counted at its first request.
#[derive(Debug)]
struct SurveyMonkeyState {
    requests: AtomicU64,
    partials: PartialCounts,
}

impl TwinState for SurveyMonkeyState {
    fn new(data: &SandboxData) -> Self {
        SurveyMonkeyState {
            requests: AtomicU64::new(0),
            partials: PartialCounts::of(&data.survey.responses),
        }
    }
}

impl SandboxData {
    /// Requests the SurveyMonkey twin answered (drives its rate-limit headers).
    pub fn surveymonkey_requests(&self) -> u64 {
        self.twin_state::<SurveyMonkeyState>()
            .requests
            .load(Ordering::Relaxed)
    }
}

fn choice_id(question: &str, position: usize) -> String {
    // position is 1-based, as SurveyMonkey numbers choices.
    format!("{question}{position:02}")
}

fn row_id(question: &str) -> String {
    format!("{question}99")
}

/// The responses a bulk query selects: those served by now (`survey_cutoff`), modified at
/// or after `since`, of the asked status (`Some(true)`: partial only). In the model's
/// newest-first order they are the matching ones of `responses[newest..oldest_end]`, so a
/// page is found by binary search and read in place: a page costs its own size, not the
/// survey's (a million-lead survey has hundreds of thousands of responses).
struct Selection<'a> {
    responses: &'a [SurveyResponse],
    state: Arc<SurveyMonkeyState>,
    newest: usize,
    oldest_end: usize,
    status: Option<bool>,
}

impl<'a> Selection<'a> {
    fn new(data: &'a SandboxData, since: Option<i64>, status: Option<bool>) -> Self {
        let responses = &data.survey.responses[..];
        let cutoff = data.survey_cutoff();
        let newest = responses.partition_point(|r| r.submitted_s > cutoff);
        let oldest_end = since.map_or(responses.len(), |s| {
            responses.partition_point(|r| r.submitted_s >= s)
        });
        Selection {
            responses,
            state: data.twin_state(),
            newest,
            oldest_end: oldest_end.max(newest),
            status,
        }
    }

    fn matches(&self, r: &SurveyResponse) -> bool {
        self.status.is_none_or(|partial| is_partial(r) == partial)
    }

    /// Matching responses in `responses[from..to]`.
    fn count(&self, from: usize, to: usize) -> usize {
        let partial = self.state.partials.between(from, to);
        match self.status {
            None => to - from,
            Some(true) => partial,
            Some(false) => to - from - partial,
        }
    }

    fn total(&self) -> usize {
        self.count(self.newest, self.oldest_end)
    }

    /// Up to `per_page` selected responses from the `skip`-th on: oldest first when
    /// `ascending` (SurveyMonkey's `sort_order=ASC`), else newest first.
    fn page(&self, skip: usize, per_page: usize, ascending: bool) -> Vec<&'a SurveyResponse> {
        let (lo, hi) = (self.newest, self.oldest_end);
        if skip >= self.total() {
            return Vec::new();
        }
        let mut page = Vec::with_capacity(per_page);
        if ascending {
            // The `skip`-th from the old end sits at the largest `i` with more than `skip`
            // matches in `i..hi`.
            let at = first_where(lo, hi, |i| self.count(i, hi) <= skip) - 1;
            for r in self.responses[lo..=at].iter().rev() {
                if page.len() == per_page {
                    break;
                }
                if self.matches(r) {
                    page.push(r);
                }
            }
        } else {
            // The `skip`-th from the new end sits at the smallest `i` with more than `skip`
            // matches in `lo..=i`.
            let first = first_where(lo, hi, |i| self.count(lo, i + 1) > skip);
            for r in &self.responses[first..hi] {
                if page.len() == per_page {
                    break;
                }
                if self.matches(r) {
                    page.push(r);
                }
            }
        }
        page
    }
}

/// The smallest `i` in `lo..hi` for which `holds(i)`, or `hi`; `holds` must turn from
/// false to true at most once as `i` grows.
fn first_where(mut lo: usize, mut hi: usize, holds: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The numeric response id SurveyMonkey would give the response.
fn response_id(r: &SurveyResponse) -> String {
    // The whole 64-bit hash: nine digits collided at a million leads (~200k responses).
    format!("{}", hash_bytes(0x5302, &r.token))
}

fn error(status: StatusCode, id: &str, name: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "error": {
                "id": id,
                "name": name,
                "docs": "https://developer.surveymonkey.com/api/v3/#error-codes",
                "message": message,
                "http_status_code": status.as_u16(),
            }
        })),
    )
        .into_response()
}

fn rejection(headers: &HeaderMap, survey_id: &str) -> Option<Response> {
    match bearer_token(headers) {
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "1010",
            "Authorization Error",
            "The authorization token was not provided.",
        )),
        Some(token) if token != SURVEYMONKEY_TOKEN => Some(error(
            StatusCode::UNAUTHORIZED,
            "1011",
            "Authorization Error",
            "The authorization token provided was invalid.",
        )),
        Some(_) if survey_id != SURVEYMONKEY_SURVEY_ID => Some(error(
            StatusCode::NOT_FOUND,
            "1020",
            "Resource Not Found",
            &format!("There was an error retrieving the requested resource: survey {survey_id}"),
        )),
        Some(_) => None,
    }
}

/// Rate-limit headers as SurveyMonkey sends them on every response.
fn with_limits(data: &SandboxData, mut response: Response) -> Response {
    let used = data.surveymonkey_requests();
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: u64| {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, v);
        }
    };
    put("x-ratelimit-app-global-minute-limit", MINUTE_LIMIT);
    put(
        "x-ratelimit-app-global-minute-remaining",
        MINUTE_LIMIT.saturating_sub(used % MINUTE_LIMIT),
    );
    put("x-ratelimit-app-global-minute-reset", 60);
    put("x-ratelimit-app-global-day-limit", DAY_LIMIT);
    put(
        "x-ratelimit-app-global-day-remaining",
        DAY_LIMIT.saturating_sub(used),
    );
    put("x-ratelimit-app-global-day-reset", 86_400);
    response
}

fn scale_question(id: &str, heading: &str, weights: bool) -> JsonValue {
    let choices: Vec<JsonValue> = (0..=10)
        .map(|score: i64| {
            let mut choice = json!({
                "id": choice_id(id, score as usize + 1),
                "text": score.to_string(),
                "position": score + 1,
                "visible": true,
            });
            if weights {
                choice["weight"] = json!(match score {
                    9..=10 => 100,
                    7..=8 => 0,
                    _ => -100,
                });
            }
            choice
        })
        .collect();
    json!({
        "id": id,
        "family": "matrix",
        "subtype": "rating",
        "headings": [{ "heading": heading }],
        "answers": {
            "rows": [{ "id": row_id(id), "text": "", "position": 1, "visible": true }],
            "choices": choices,
        },
    })
}

/// `GET /surveymonkey/v3/surveys/{id}/details`.
pub(crate) async fn details(
    State(data): State<Arc<SandboxData>>,
    Path(survey_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    data.twin_state::<SurveyMonkeyState>()
        .requests
        .fetch_add(1, Ordering::Relaxed);
    if let Some(response) = rejection(&headers, &survey_id) {
        return with_limits(&data, response);
    }
    let team_choices: Vec<JsonValue> = super::survey::teams()
        .enumerate()
        .map(|(i, team)| json!({ "id": choice_id(TEAM_QUESTION_ID, i + 1), "text": team, "position": i + 1 }))
        .collect();
    let manager_choices: Vec<JsonValue> = (1..=5)
        .map(|n: usize| json!({ "id": choice_id(MANAGER_QUESTION_ID, n), "text": n.to_string(), "position": n }))
        .collect();
    let body = json!({
        "id": SURVEYMONKEY_SURVEY_ID,
        "title": "Monthly pulse 2026 (SurveyMonkey)",
        "question_count": 5,
        "page_count": 1,
        "pages": [{
            "id": PAGE_ID,
            "position": 1,
            "questions": [
                {
                    "id": TEAM_QUESTION_ID,
                    "family": "single_choice",
                    "subtype": "menu",
                    "headings": [{ "heading": "Which team are you in?" }],
                    "answers": { "choices": team_choices },
                },
                scale_question(WORKLOAD_QUESTION_ID, "How manageable was your workload this month?", false),
                scale_question(ENPS_QUESTION_ID, "How likely are you to recommend Brightloom as a place to work?", true),
                {
                    "id": MANAGER_QUESTION_ID,
                    "family": "single_choice",
                    "subtype": "vertical",
                    "headings": [{ "heading": "How well did your manager support you?" }],
                    "answers": { "choices": manager_choices },
                },
                {
                    "id": COMMENT_QUESTION_ID,
                    "family": "open_ended",
                    "subtype": "essay",
                    "headings": [{ "heading": "Anything else you want to tell us?" }],
                },
            ],
        }],
    });
    with_limits(&data, (StatusCode::OK, Json(body)).into_response())
}

/// A response as `responses/bulk` sends it. Fields are in alphabetical order, the order of
/// the JSON tree this twin used to build for every response (recordings keep their bytes):
/// building and dropping that tree per response was most of the twin's CPU in a live pull.
#[derive(Serialize)]
struct BulkResponse<'a> {
    analyze_url: String,
    collection_mode: &'static str,
    collector_id: &'static str,
    custom_value: &'static str,
    custom_variables: CustomVariables<'a>,
    date_created: String,
    date_modified: String,
    edit_url: String,
    email_address: String,
    first_name: &'static str,
    href: String,
    id: String,
    ip_address: String,
    last_name: &'static str,
    logic_path: Empty,
    metadata: Metadata,
    page_path: [(); 0],
    pages: [ResponsePage; 1],
    recipient_id: &'static str,
    response_status: &'static str,
    survey_id: &'static str,
    total_time: i64,
}

#[derive(Serialize)]
struct CustomVariables<'a> {
    department: &'static str,
    employee_id: String,
    location: &'static str,
    team: &'a str,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Metadata {
    contact: Empty,
}

#[derive(Serialize)]
struct ResponsePage {
    id: &'static str,
    questions: Vec<Question>,
}

#[derive(Serialize)]
struct Question {
    answers: [QuestionAnswer; 1],
    id: &'static str,
}

/// A choice (with its row, for a matrix question) or a text.
#[derive(Serialize, Default)]
struct QuestionAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    choice_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'static str>,
}

/// `responses/bulk`'s body.
#[derive(Serialize)]
struct BulkPage<'a> {
    data: Vec<BulkResponse<'a>>,
    links: JsonValue,
    page: usize,
    per_page: usize,
    total: usize,
}

fn bulk_response<'a>(data: &'a SandboxData, r: &SurveyResponse, base: &str) -> BulkResponse<'a> {
    let employee = &data.survey.employees[r.employee];
    let partial = is_partial(r);
    let mut questions = Vec::new();
    let mut ask = |id: &'static str, answer: QuestionAnswer| {
        questions.push(Question {
            answers: [answer],
            id,
        });
    };
    let choice = |question: &str, position: usize, matrix: bool| QuestionAnswer {
        choice_id: Some(choice_id(question, position)),
        row_id: matrix.then(|| row_id(question)),
        text: None,
    };
    // The team is the first question: partial responses have it too.
    if let Some(position) = super::survey::teams().position(|t| t == employee.team) {
        ask(
            TEAM_QUESTION_ID,
            choice(TEAM_QUESTION_ID, position + 1, false),
        );
    }
    if let Some(v) = r.workload {
        let answer = choice(WORKLOAD_QUESTION_ID, usize::from(v) + 1, true);
        ask(WORKLOAD_QUESTION_ID, answer);
    }
    if !partial {
        if r.malformed {
            let answer = QuestionAnswer {
                choice_id: Some(UNKNOWN_CHOICE_ID.to_string()),
                row_id: Some(row_id(ENPS_QUESTION_ID)),
                text: None,
            };
            ask(ENPS_QUESTION_ID, answer);
        } else if let Some(v) = r.enps {
            ask(
                ENPS_QUESTION_ID,
                choice(ENPS_QUESTION_ID, usize::from(v) + 1, true),
            );
        }
        if let Some(v) = r.manager_support {
            let answer = choice(MANAGER_QUESTION_ID, usize::from(v), false);
            ask(MANAGER_QUESTION_ID, answer);
        }
        if let Some(c) = r.comment {
            let answer = QuestionAnswer {
                text: Some(COMMENTS[c % COMMENTS.len()]),
                ..QuestionAnswer::default()
            };
            ask(COMMENT_QUESTION_ID, answer);
        }
    }
    let id = response_id(r);
    BulkResponse {
        analyze_url: format!("{base}/analyze/browse/{id}"),
        collection_mode: "default",
        collector_id: "431200777",
        custom_value: "",
        custom_variables: CustomVariables {
            department: employee.department_name(),
            employee_id: employee.employee_id(),
            location: employee.location_name(),
            team: employee.team,
        },
        date_created: format_iso_seconds(r.landed_s * MS_PER_SEC).replace('Z', "+00:00"),
        date_modified: format_iso_seconds(r.submitted_s * MS_PER_SEC).replace('Z', "+00:00"),
        edit_url: format!("{base}/r/edit/{id}"),
        email_address: employee.email(),
        first_name: "",
        href: format!("{base}/v3/surveys/{SURVEYMONKEY_SURVEY_ID}/responses/{id}"),
        ip_address: format!(
            "10.{}.{}.{}",
            employee.number % 250,
            r.token[0] % 250,
            r.token[1] % 250
        ),
        id,
        last_name: "",
        logic_path: Empty {},
        metadata: Metadata { contact: Empty {} },
        page_path: [],
        pages: [ResponsePage {
            id: PAGE_ID,
            questions,
        }],
        recipient_id: "",
        response_status: if partial { "partial" } else { "completed" },
        survey_id: SURVEYMONKEY_SURVEY_ID,
        total_time: r.submitted_s - r.landed_s,
    }
}

fn parse_modified(text: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// `GET /surveymonkey/v3/surveys/{id}/responses/bulk`.
pub(crate) async fn bulk(
    State(data): State<Arc<SandboxData>>,
    Path(survey_id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    data.twin_state::<SurveyMonkeyState>()
        .requests
        .fetch_add(1, Ordering::Relaxed);
    if let Some(response) = rejection(&headers, &survey_id) {
        return with_limits(&data, response);
    }
    let bad = |message: String| error(StatusCode::BAD_REQUEST, "1002", "Bad Request", &message);
    let (mut page, mut per_page, mut since, mut status) = (1usize, DEFAULT_PER_PAGE, None, None);
    let mut ascending = true;
    for (key, value) in query_pairs(raw.as_deref().unwrap_or("")) {
        match key.as_str() {
            "page" => match value.parse::<usize>() {
                Ok(n) if n >= 1 => page = n,
                _ => return with_limits(&data, bad(format!("Invalid page '{value}'"))),
            },
            "per_page" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => per_page = n,
                _ => {
                    return with_limits(
                        &data,
                        bad(format!(
                            "per_page must be 1 to {MAX_PER_PAGE}, got '{value}'"
                        )),
                    );
                }
            },
            "start_modified_at" => match parse_modified(&value) {
                Some(t) => since = Some(t),
                None => {
                    return with_limits(
                        &data,
                        bad(format!(
                            "start_modified_at must be YYYY-MM-DDTHH:MM:SS, got '{value}'"
                        )),
                    );
                }
            },
            "status" => status = Some(value),
            "sort_order" => ascending = !value.eq_ignore_ascii_case("DESC"),
            _ => {}
        }
    }
    let status = match status.as_deref() {
        Some("completed") => Some(false),
        Some("partial") => Some(true),
        _ => None,
    };
    let selection = Selection::new(&data, since, status);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}/surveymonkey");
    let total = selection.total();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let items: Vec<BulkResponse<'_>> = selection
        .page(start, per_page, ascending)
        .into_iter()
        .map(|r| bulk_response(&data, r, &base))
        .collect();
    let end = start + items.len();
    let query: Vec<String> = query_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| format!("{k}={}", url_escape(&v)))
        .collect();
    let link = |p: usize| {
        let mut params = query.clone();
        params.push(format!("page={p}"));
        format!(
            "{base}/v3/surveys/{SURVEYMONKEY_SURVEY_ID}/responses/bulk?{}",
            params.join("&")
        )
    };
    let last_page = total.div_ceil(per_page).max(1);
    let mut links = json!({ "self": link(page), "last": link(last_page) });
    if end < total {
        links["next"] = json!(link(page + 1));
    }
    let body = BulkPage {
        data: items,
        links,
        page,
        per_page,
        total,
    };
    with_limits(&data, json_page(StatusCode::OK, &body, &PAGE_SIZE))
}

fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page a query selects, found by binary search, is the page a plain filter over
    /// all responses gives: both orders, each status, with and without `since` and a
    /// cutoff, at page sizes that do and do not divide the total.
    #[test]
    fn pages_found_by_search_equal_a_full_filter() {
        let data = SandboxData::generate(&crate::sandbox::SandboxOptions {
            scale: 3_000,
            ..Default::default()
        });
        let all = &data.survey.responses;
        assert!(all.len() > 500, "{}", all.len());
        let middle = all[all.len() / 2].submitted_s;
        let late = all[all.len() / 5].submitted_s;
        let mut pages_read = 0;
        for cutoff in [i64::MAX, late] {
            data.hold_survey_responses_after(cutoff);
            for since in [None, Some(middle)] {
                for status in [None, Some(false), Some(true)] {
                    let expected: Vec<&SurveyResponse> = all
                        .iter()
                        .rev()
                        .filter(|r| r.submitted_s <= cutoff)
                        .filter(|r| since.is_none_or(|s| r.submitted_s >= s))
                        .filter(|r| status.is_none_or(|partial| is_partial(r) == partial))
                        .collect();
                    let selection = Selection::new(&data, since, status);
                    assert_eq!(selection.total(), expected.len());
                    for per_page in [1, 7, 100] {
                        for ascending in [true, false] {
                            let mut want = expected.clone();
                            if !ascending {
                                want.reverse();
                            }
                            let mut got = Vec::new();
                            loop {
                                let page = selection.page(got.len(), per_page, ascending);
                                pages_read += 1;
                                if page.is_empty() {
                                    break;
                                }
                                assert!(page.len() <= per_page);
                                got.extend(page);
                            }
                            let same = got.len() == want.len()
                                && got.iter().zip(&want).all(|(a, b)| std::ptr::eq(*a, *b));
                            assert!(
                                same,
                                "cutoff {cutoff} since {since:?} status {status:?} \
                                 per_page {per_page} ascending {ascending}"
                            );
                        }
                    }
                }
            }
        }
        assert!(pages_read > 1_000);
    }

    #[test]
    fn choice_ids_encode_question_and_position() {
        assert_eq!(choice_id(ENPS_QUESTION_ID, 1), "64000100101");
        assert_eq!(choice_id(ENPS_QUESTION_ID, 11), "64000100111");
        assert_eq!(choice_id(WORKLOAD_QUESTION_ID, 11), "64000100211");
        assert_ne!(choice_id(ENPS_QUESTION_ID, 5), UNKNOWN_CHOICE_ID);
        assert_eq!(url_escape("2026-11-01T00:00:00"), "2026-11-01T00%3A00%3A00");
    }
}
