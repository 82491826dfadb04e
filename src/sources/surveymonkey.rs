//! SurveyMonkey API v3 → `survey_responses`. Per survey and run, the survey's details
//! (pages → questions → choices) are fetched once to turn a chosen choice id into its score
//! (choice position, 0-based on a 0–10 scale; never the NPS weight); responses come from
//! `responses/bulk` in ascending `date_modified`, following `links.next` verbatim,
//! incrementally from the last committed `date_modified`. Partial responses are kept with a
//! null score; the `X-Ratelimit-App-Global-*` headers pace the requests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use sonic_rs::{Array as PageArray, JsonContainerTrait, JsonValueTrait, Value as PageValue};

use super::decoded_once::DecodedOnce;
use super::survey::{GroupQuestions, Scale, check_group_questions, json_column, place_groups};
use super::{DecodedPage, SourceContext, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::{HttpSettings, Verdict, body_excerpt};
use crate::json::SkimProof;
use crate::normalize::parse::{opt_small_str, opt_str, opt_timestamp};
use crate::normalize::{PersonalDataHasher, SurveyResponseRow};
use crate::sources::RowSink;

/// `[[sources]] kind = "surveymonkey"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyMonkeyConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default (EU accounts: `https://api.eu.surveymonkey.com`).
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Access token, e.g. `"${SURVEYMONKEY_TOKEN}"`.
    pub token: Template,
    /// Survey ids to pull.
    pub survey_ids: Vec<String>,
    /// Question id of the eNPS question (from the survey's details).
    pub enps_question_id: String,
    /// Responses per page (at most 100).
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    /// Answer scale of the eNPS question.
    #[serde(default)]
    pub scale: Scale,
    /// Custom variables holding the groups and the respondent identifier.
    #[serde(default)]
    pub custom_variables: SurveyMonkeyVariables,
    /// Grouping dimensions asked as questions: dimension → question id of a single-choice
    /// question (`team = "640001010"`); the chosen choice's text (from the survey's
    /// details) is the group, and wins over the custom variable of the same dimension.
    #[serde(default)]
    pub group_questions: GroupQuestions,
    /// Other rating question ids to keep in `extra_scores` (never read as eNPS).
    #[serde(default)]
    pub extra_score_question_ids: Vec<String>,
    /// Open-ended question ids whose text to keep in `kept_text`; other text is dropped.
    #[serde(default)]
    pub keep_text_question_ids: Vec<String>,
    /// Keep partial responses (unscored, counted); `false` asks for completed ones only.
    #[serde(default = "default_true")]
    pub include_partial: bool,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

/// Names of the custom variables funnelhouse reads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SurveyMonkeyVariables {
    pub department: String,
    pub team: String,
    pub location: String,
    /// Identifies the respondent (hashed); the response's `email_address` otherwise.
    pub respondent: String,
}

impl Default for SurveyMonkeyVariables {
    fn default() -> Self {
        SurveyMonkeyVariables {
            department: "department".into(),
            team: "team".into(),
            location: "location".into(),
            respondent: "employee_id".into(),
        }
    }
}

fn default_base_url() -> Template {
    Template::new("https://api.surveymonkey.com")
}

fn default_per_page() -> u32 {
    100
}

fn default_true() -> bool {
    true
}

impl SurveyMonkeyConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        if self.per_page == 0 || self.per_page > 100 {
            problems.push((
                "per_page",
                format!(
                    "{} is out of range: SurveyMonkey pages hold 1 to 100 responses",
                    self.per_page
                ),
            ));
        }
        if self.survey_ids.is_empty() {
            problems.push(("survey_ids", "list at least one survey id".to_string()));
        }
        if self.enps_question_id.is_empty() {
            problems.push((
                "enps_question_id",
                "name the eNPS question's id".to_string(),
            ));
        }
        problems.extend(check_group_questions(
            &self.group_questions,
            &self.enps_question_id,
        ));
        if self
            .extra_score_question_ids
            .contains(&self.enps_question_id)
        {
            problems.push((
                "extra_score_question_ids",
                format!("`{}` is the eNPS question", self.enps_question_id),
            ));
        }
        problems
    }
}

/// A choice of a closed question, from the survey's details.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    question_id: String,
    /// 1-based position among the question's choices.
    position: i64,
    /// The choice as the survey shows it (a group's name for a group question).
    text: Option<String>,
}

/// Choice id → choice, for one survey.
pub(crate) type Catalogue = HashMap<String, Choice>;

pub(crate) fn catalogue(details: &Value) -> Catalogue {
    let mut choices = HashMap::new();
    let questions = details
        .get("pages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|page| page.get("questions").and_then(Value::as_array))
        .flatten();
    for question in questions {
        let Some(question_id) = opt_str(question.get("id")) else {
            continue;
        };
        let listed = question
            .pointer("/answers/choices")
            .and_then(Value::as_array);
        for (index, choice) in listed.into_iter().flatten().enumerate() {
            let Some(id) = opt_str(choice.get("id")) else {
                continue;
            };
            let position = choice
                .get("position")
                .and_then(Value::as_i64)
                .unwrap_or(index as i64 + 1);
            choices.insert(
                id,
                Choice {
                    question_id: question_id.clone(),
                    position,
                    text: opt_str(choice.get("text")),
                },
            );
        }
    }
    choices
}

/// SurveyMonkey's rate limits: a spent day budget stops the source; a minute limit waits
/// for its reset; 5xx retry.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        if header_u64(headers, "x-ratelimit-app-global-day-remaining") == Some(0) {
            let reset = header_u64(headers, "x-ratelimit-app-global-day-reset").unwrap_or(0);
            return Verdict::Fatal(format!(
                "the daily request budget is spent; it resets in {reset} s"
            ));
        }
        // The minute window's reset when the answer names it; else `Retry-After`; else the
        // source's rate-limit window (a minute by default), never a short backoff: five
        // retries inside the same spent minute would fail the source.
        let wait = header_u64(headers, "x-ratelimit-app-global-minute-reset")
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .or_else(|| crate::http::retry_after(headers));
        return Verdict::RateLimited(wait);
    }
    if status.is_success() {
        return Verdict::Accept;
    }
    if status.is_server_error() {
        return Verdict::Retry(None);
    }
    Verdict::Fatal(format!("HTTP {}: {}", status.as_u16(), body_excerpt(body)))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Pull every survey's responses into `out`.
pub async fn pull(
    cfg: &SurveyMonkeyConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut impl RowSink<SurveyResponseRow>,
) -> Result<()> {
    for survey in &cfg.survey_ids {
        let details_url = join_url(base_url, &format!("v3/surveys/{survey}/details"));
        let request = ctx
            .http
            .inner()
            .get(&details_url)
            .bearer_auth(token.expose());
        let details = ctx
            .pages
            .fetch_classified("surveymonkey/survey_details", request, &classify)
            .await?;
        let choices = catalogue(&ctx.parse_json(&details_url, &details).await?);
        if !choices
            .values()
            .any(|c| c.question_id == cfg.enps_question_id)
        {
            return Err(ctx.protocol(
                &details_url,
                format!(
                    "survey {survey} has no closed question `{}` (enps_question_id)",
                    cfg.enps_question_id
                ),
            ));
        }

        for (dimension, question) in &cfg.group_questions {
            if !choices.values().any(|c| c.question_id == *question) {
                return Err(ctx.protocol(
                    &details_url,
                    format!(
                        "survey {survey} has no closed question `{question}` (group_questions.{dimension})"
                    ),
                ));
            }
        }
        let stream = format!("responses:{survey}");
        let since = ctx.previous.watermark(&stream).map(str::to_string);
        if since.is_some() {
            out.merge_with_previous();
        }
        let mut url = reqwest::Url::parse(&join_url(
            base_url,
            &format!("v3/surveys/{survey}/responses/bulk"),
        ))
        .map_err(|e| ctx.protocol(base_url, e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("per_page", &cfg.per_page.to_string())
            .append_pair("sort_by", "date_modified")
            .append_pair("sort_order", "ASC");
        if !cfg.include_partial {
            url.query_pairs_mut().append_pair("status", "completed");
        }
        if let Some(since) = &since {
            url.query_pairs_mut()
                .append_pair("start_modified_at", since);
        }
        let mut newest: Option<String> = None;
        let mut page = 0u64;
        let mut next = Some(url);
        while let Some(request_url) = next.take() {
            page += 1;
            let shown = crate::http::redact_url(&request_url);
            // The page asked for (`links.next` names it; the first request names none).
            let asked = request_url
                .query_pairs()
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(1);
            let request = ctx
                .http
                .inner()
                .get(request_url)
                .bearer_auth(token.expose());
            let skimmed = DecodedOnce::<Option<SkimProof>>::default();
            let fetched = {
                let ours = |body: &[u8]| page_belongs(body, asked);
                let checked = skimmed.checked(ctx, "surveymonkey/responses", &classify, ours);
                ctx.pages
                    .fetch_page("surveymonkey/responses", request, &checked)
                    .await?
            };
            let skimmed = skimmed.take(&fetched.body).flatten();
            let (survey_id, page_cfg, page_choices, hasher) = (
                survey.clone(),
                cfg.clone(),
                choices.clone(),
                ctx.hasher.clone(),
            );
            let decoded = ctx
                .decode_json(&shown, &fetched.body, skimmed, move |body| {
                    decode_page(&body, &survey_id, &page_cfg, &page_choices, &hasher)
                })
                .await?;
            let location = format!("survey {survey} page {page}");
            let (next_link, page_newest) = decoded.write(out, &location).await?;
            if page_newest.is_some() && newest < page_newest {
                newest = page_newest;
            }
            next = match next_link {
                Some(link) => Some(
                    reqwest::Url::parse(&link)
                        .map_err(|e| ctx.protocol(&shown, format!("bad links.next: {e}")))?,
                ),
                None => None,
            };
            if next.is_some() {
                pace(&fetched.headers).await;
            }
        }
        if let Some(watermark) = newest.filter(|w| since.as_deref() < Some(w.as_str())) {
            ctx.advance(&stream, watermark);
        }
    }
    Ok(())
}

/// A responses page: its rows and rejects, then (`links.next`, the newest `date_modified`
/// of its rows as a watermark).
type ResponsesPage = DecodedPage<SurveyResponseRow, (Option<String>, Option<String>)>;

/// Is this the page asked for? A bulk page says its own number. Skimmed, not parsed: the
/// check runs on every answer before the page is decoded, and a whole parse just to read
/// one top-level number was a tenth of the source's own work. A body that does not skim,
/// or whose `page` is not a whole number, is left to the decoding to judge. `Ok` carries
/// the skim's proof, so the decoding does not scan the page's nesting again.
fn page_belongs(body: &[u8], asked: u64) -> std::result::Result<Option<SkimProof>, String> {
    let Ok(skimmed) = crate::json::skim(body, None) else {
        return Ok(None);
    };
    let page = skimmed
        .member("page")
        .and_then(|text| std::str::from_utf8(text).ok()?.parse::<u64>().ok());
    match page {
        Some(page) if page != asked => {
            Err(format!("it is page {page}, not the page {asked} asked for"))
        }
        _ => Ok(Some(skimmed.proof)),
    }
}

fn decode_page(
    body: &PageValue,
    survey: &str,
    cfg: &SurveyMonkeyConfig,
    choices: &Catalogue,
    hasher: &PersonalDataHasher,
) -> std::result::Result<ResponsesPage, String> {
    let data = body
        .get("data")
        .and_then(PageValue::as_array)
        .ok_or("no `data` array")?;
    let next_link = body.get("links").get("next").as_str().map(str::to_string);
    let mut page = DecodedPage {
        rows: Vec::with_capacity(data.len()),
        rejects: Vec::new(),
        next: (next_link, None),
    };
    for response in data {
        match decode_response(response, survey, cfg, choices, hasher) {
            Ok(row) => {
                if let Some(modified) = modified_watermark(response)
                    && page.next.1.as_deref() < Some(modified.as_str())
                {
                    page.next.1 = Some(modified);
                }
                page.rows.push(row);
            }
            Err(reason) => page.rejects.push((redact(response, hasher), reason)),
        }
    }
    Ok(page)
}

/// Wait out the minute window when the headers say it is used up.
async fn pace(headers: &HeaderMap) {
    if header_u64(headers, "x-ratelimit-app-global-minute-remaining") == Some(0) {
        let reset = header_u64(headers, "x-ratelimit-app-global-minute-reset")
            .unwrap_or(60)
            .min(120);
        tracing::info!(
            wait_secs = reset,
            "SurveyMonkey minute limit reached; waiting for the reset"
        );
        tokio::time::sleep(Duration::from_secs(reset)).await;
    }
}

/// `date_modified` as SurveyMonkey's `start_modified_at` wants it: `YYYY-MM-DDTHH:MM:SS`, UTC.
fn modified_watermark(response: &PageValue) -> Option<String> {
    let micros = opt_timestamp(response.get("date_modified"), "date_modified").ok()??;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// The 1-based position of the choice answered to `question_id`, if answered.
fn chosen_position(
    response: &PageValue,
    question_id: &str,
    choices: &Catalogue,
) -> std::result::Result<Option<i64>, String> {
    Ok(chosen(response, question_id, choices)?.map(|c| c.position))
}

/// The choice answered to `question_id`, if answered with one (an "Other" text answer
/// has no `choice_id`: free text is never a group or a score).
fn chosen<'c>(
    response: &PageValue,
    question_id: &str,
    choices: &'c Catalogue,
) -> std::result::Result<Option<&'c Choice>, String> {
    let Some(answer) = answers_of(response, question_id).and_then(|a| a.first()) else {
        return Ok(None);
    };
    let Some(choice_id) = opt_str(answer.get("choice_id")) else {
        return Ok(None);
    };
    match choices.get(&choice_id) {
        Some(choice) if choice.question_id == question_id => Ok(Some(choice)),
        _ => Err(format!(
            "choice {choice_id} is not a choice of question {question_id} in the survey's details"
        )),
    }
}

fn answers_of<'a>(response: &'a PageValue, question_id: &str) -> Option<&'a PageArray> {
    response
        .get("pages")?
        .as_array()?
        .iter()
        .filter_map(|p| p.get("questions").and_then(PageValue::as_array))
        .flatten()
        .find(|q| opt_str(q.get("id")).as_deref() == Some(question_id))?
        .get("answers")?
        .as_array()
}

/// One response as a `survey_responses` row, or why not.
pub(crate) fn decode_response(
    response: &PageValue,
    survey: &str,
    cfg: &SurveyMonkeyConfig,
    choices: &Catalogue,
    hasher: &PersonalDataHasher,
) -> std::result::Result<SurveyResponseRow, String> {
    let id = opt_small_str(response.get("id")).ok_or("response has no `id`")?;
    let status =
        opt_small_str(response.get("response_status")).unwrap_or_else(|| "completed".into());
    let completed = status == "completed";
    let enps = chosen_position(response, &cfg.enps_question_id, choices)?
        .map(|position| cfg.scale.check(cfg.scale.score_of_position(position)))
        .transpose()?;
    let mut extra = BTreeMap::new();
    for question in &cfg.extra_score_question_ids {
        if let Some(position) = chosen_position(response, question, choices)? {
            extra.insert(question.clone(), cfg.scale.score_of_position(position));
        }
    }
    let mut kept = BTreeMap::new();
    for question in &cfg.keep_text_question_ids {
        let text = answers_of(response, question)
            .into_iter()
            .flatten()
            .find_map(|a| opt_str(a.get("text")));
        if let Some(text) = text {
            kept.insert(question.clone(), text);
        }
    }
    let variables = response.get("custom_variables");
    let variable = |name: &str| opt_small_str(variables.get(name));
    let respondent = variable(&cfg.custom_variables.respondent)
        .or_else(|| opt_small_str(response.get("email_address")));
    let (mut department, mut team, mut location) = (
        variable(&cfg.custom_variables.department),
        variable(&cfg.custom_variables.team),
        variable(&cfg.custom_variables.location),
    );
    let mut answers = Vec::with_capacity(cfg.group_questions.len());
    for (dimension, question) in &cfg.group_questions {
        let text = chosen(response, question, choices)?.and_then(|c| c.text.clone());
        answers.push((dimension.as_str(), text));
    }
    let groups = place_groups(answers, [&mut department, &mut team, &mut location]);
    Ok(SurveyResponseRow {
        source_system: "surveymonkey".into(),
        survey_id: survey.into(),
        response_id: id,
        respondent_hash: respondent.map(|r| hasher.hash(&r)),
        submitted_at: opt_timestamp(response.get("date_modified"), "date_modified")?,
        question_ref: cfg.enps_question_id.as_str().into(),
        // A partial response is counted but never scored.
        score: if completed { enps } else { None },
        response_status: Some(status),
        department,
        team,
        location,
        extra_scores: json_column(extra),
        kept_text: json_column(kept),
        groups,
    })
}

/// The response as it may be kept in `_rejects`: identifiers hashed, names, addresses and
/// free text removed.
fn redact(response: &PageValue, hasher: &PersonalDataHasher) -> Value {
    let mut copy = super::to_serde_json(response);
    if let Some(obj) = copy.as_object_mut() {
        for key in ["email_address", "ip_address"] {
            if let Some(Value::String(v)) = obj.get_mut(key)
                && !v.is_empty()
            {
                *v = format!("hmac:{}", hasher.hash(v));
            }
        }
        for key in [
            "first_name",
            "last_name",
            "edit_url",
            "analyze_url",
            "recipient_id",
        ] {
            obj.remove(key);
        }
        if let Some(Value::Object(vars)) = obj.get_mut("custom_variables") {
            for value in vars.values_mut() {
                if let Value::String(v) = value {
                    *v = format!("hmac:{}", hasher.hash(v));
                }
            }
        }
        if let Some(Value::Array(pages)) = obj.get_mut("pages") {
            for question in pages
                .iter_mut()
                .filter_map(|p| p.get_mut("questions"))
                .filter_map(Value::as_array_mut)
                .flatten()
            {
                if let Some(Value::Array(answers)) = question.get_mut("answers") {
                    for answer in answers.iter_mut().filter_map(Value::as_object_mut) {
                        answer.remove("text");
                    }
                }
            }
        }
    }
    copy
}

impl super::SourceKind for SurveyMonkeyConfig {
    const KIND: &'static str = "surveymonkey";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::SurveyResponses;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        vec![("token", &self.token)]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        SurveyMonkeyConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        pull(
            self,
            &resolved.base_url,
            resolved.secret("token"),
            ctx,
            outputs.surveys(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> SurveyMonkeyConfig {
        toml::from_str(
            r#"name = "sm"
token = "t"
survey_ids = ["1"]
enps_question_id = "q1""#,
        )
        .unwrap()
    }

    fn details() -> Value {
        let scale = |q: &str| -> Vec<Value> {
            (0..=10).map(|s| json!({"id": format!("{q}-{s}"), "text": s.to_string(), "position": s + 1, "weight": if s >= 9 { 100 } else if s >= 7 { 0 } else { -100 }})).collect()
        };
        json!({"pages": [{"questions": [
            {"id": "q2", "answers": {"choices": scale("q2")}},
            {"id": "q1", "answers": {"choices": scale("q1")}},
            {"id": "q3", "family": "open_ended"}
        ]}]})
    }

    fn response(status: &str, enps_choice: &str) -> PageValue {
        sonic_rs::to_value(&json!({
            "id": "77", "response_status": status, "date_modified": "2026-11-02T09:30:00+00:00",
            "email_address": "ann@example.com", "first_name": "Ann",
            "custom_variables": {"department": "Sales", "location": "Berlin", "employee_id": "E0007"},
            "pages": [{"questions": [
                {"id": "q2", "answers": [{"choice_id": "q2-3", "row_id": "r"}]},
                {"id": "q1", "answers": [{"choice_id": enps_choice, "row_id": "r"}]},
                {"id": "q3", "answers": [{"text": "free text"}]}
            ]}]
        }))
        .unwrap()
    }

    #[test]
    fn scores_by_choice_position_not_weight_and_never_scores_partials() {
        let hasher = PersonalDataHasher::new(b"k");
        let choices = catalogue(&details());
        let row = decode_response(
            &response("completed", "q1-9"),
            "1",
            &config(),
            &choices,
            &hasher,
        )
        .unwrap();
        assert_eq!(
            row.score,
            Some(9),
            "position 10 on a 0-10 scale is 9; its weight is 100"
        );
        assert_eq!(row.response_status.as_deref(), Some("completed"));
        assert_eq!(
            row.respondent_hash.as_deref(),
            Some(hasher.hash("E0007").as_str())
        );
        assert_eq!(row.department.as_deref(), Some("Sales"));
        assert_eq!(row.kept_text, None);
        assert_eq!(row.submitted_at, Some(1_793_611_800_000_000));

        let partial = decode_response(
            &response("partial", "q1-9"),
            "1",
            &config(),
            &choices,
            &hasher,
        )
        .unwrap();
        assert_eq!(partial.score, None);
        assert_eq!(partial.response_status.as_deref(), Some("partial"));

        let mut one_to_ten = config();
        one_to_ten.scale = Scale::OneToTen;
        assert_eq!(
            decode_response(
                &response("completed", "q1-9"),
                "1",
                &one_to_ten,
                &choices,
                &hasher
            )
            .unwrap()
            .score,
            Some(10)
        );
        let off_scale = decode_response(
            &response("completed", "q1-10"),
            "1",
            &one_to_ten,
            &choices,
            &hasher,
        );
        assert!(off_scale.unwrap_err().contains("outside the 1-10 scale"));

        let unknown = decode_response(
            &response("completed", "q2-4"),
            "1",
            &config(),
            &choices,
            &hasher,
        )
        .unwrap_err();
        assert!(unknown.contains("not a choice of question q1"), "{unknown}");

        let mut keeping = config();
        keeping.extra_score_question_ids = vec!["q2".into()];
        keeping.keep_text_question_ids = vec!["q3".into()];
        let kept = decode_response(
            &response("completed", "q1-9"),
            "1",
            &keeping,
            &choices,
            &hasher,
        )
        .unwrap();
        assert_eq!(kept.score, Some(9));
        assert_eq!(kept.extra_scores.as_deref(), Some(r#"{"q2":3}"#));
        assert_eq!(kept.kept_text.as_deref(), Some(r#"{"q3":"free text"}"#));

        let shown = redact(&response("completed", "bad"), &hasher).to_string();
        assert!(
            !shown.contains("ann@example.com")
                && !shown.contains("E0007")
                && !shown.contains("free text")
                && !shown.contains("Ann")
        );
    }

    #[test]
    fn day_budget_stops_minute_limit_waits() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-app-global-minute-reset", "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers, b""),
            Verdict::RateLimited(Some(Duration::from_secs(7)))
        );
        // `Minute-Remaining: 0` with no reset: the window, not a backoff.
        let mut spent = HeaderMap::new();
        spent.insert(
            "x-ratelimit-app-global-minute-remaining",
            "0".parse().unwrap(),
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &spent, b""),
            Verdict::RateLimited(None)
        );
        headers.insert("x-ratelimit-app-global-day-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-app-global-day-reset", "3600".parse().unwrap());
        assert!(
            matches!(classify(StatusCode::TOO_MANY_REQUESTS, &headers, b""), Verdict::Fatal(m) if m.contains("3600"))
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &headers, b"{}"),
            Verdict::Fatal(_)
        ));
    }

    #[test]
    fn a_page_other_than_the_one_asked_for_is_not_accepted() {
        assert!(page_belongs(br#"{"data":[],"page":2}"#, 2).is_ok());
        assert!(page_belongs(br#"{"data":[],"page":1}"#, 2).is_err());
        assert!(page_belongs(br#"{"data":[]}"#, 2).is_ok());
        // The number is found past records of any shape, strings with brackets included.
        let page_three = br#"{"data":[{"id":"1","x":"]}\"{","pages":[{"page":9}]}],"per_page":100,"page":3,"total":250}"#;
        assert!(page_belongs(page_three, 3).is_ok());
        let err = page_belongs(page_three, 2).unwrap_err();
        assert!(err.contains("page 3") && err.contains("page 2"), "{err}");
        // What is not a page number, or not JSON, is left to the decoding to judge.
        for body in [
            &br#"{"data":[],"page":"1"}"#[..],
            br#"{"data":[],"page":null}"#,
            br#"{"data":[],"page":1.5}"#,
            br#"[1,2]"#,
            b"not json",
            br#"{"data":[],"page":1"#,
        ] {
            assert!(
                page_belongs(body, 2).is_ok(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
