//! Typeform responses → `survey_responses`: `page_size` pages, newest first, the next page
//! asked for with `before=<last token>`, stopping on a short page (Typeform sends no end
//! signal). The eNPS answer is chosen by its field ref, never by position; respondent
//! identifiers are hashed; free text is dropped.

use serde::Deserialize;
use serde_json::Value;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value as PageValue};

use std::collections::BTreeMap;

use super::decoded_once::DecodedOnce;
use super::survey::{GroupQuestions, Scale, check_group_questions, json_column, place_groups};
use super::{DecodedPage, SourceContext, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::HttpSettings;
use crate::json::SkimProof;
use crate::normalize::parse::{opt_small_str, opt_str, opt_timestamp};
use crate::normalize::{PersonalDataHasher, SurveyResponseRow};
use crate::sources::RowSink;

/// `[[sources]] kind = "typeform"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeformConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Personal access token, e.g. `"${TYPEFORM_TOKEN}"`.
    pub token: Template,
    /// Form ids to pull.
    pub form_ids: Vec<String>,
    /// Responses per page (at most 1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Field ref of the eNPS question.
    #[serde(default = "default_enps_ref")]
    pub enps_ref: String,
    /// Answer scale of the eNPS question.
    #[serde(default)]
    pub scale: Scale,
    /// Hidden fields holding the grouping attributes and the respondent identifier.
    #[serde(default)]
    pub hidden_fields: TypeformHiddenFields,
    /// Grouping dimensions asked as questions: dimension → field ref of a multiple-choice
    /// or dropdown question (`team = "which_team"`, `tenure = "tenure"`); the chosen label
    /// is the group, and wins over the hidden field of the same dimension.
    #[serde(default)]
    pub group_questions: GroupQuestions,
    /// Refs of other number questions to keep in `extra_scores` (never read as eNPS).
    #[serde(default)]
    pub extra_score_refs: Vec<String>,
    /// Refs of free-text questions to keep in `kept_text`; all other text is dropped.
    #[serde(default)]
    pub keep_text_refs: Vec<String>,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

/// Names of the hidden fields funnelhouse reads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TypeformHiddenFields {
    pub department: String,
    pub team: String,
    pub location: String,
    /// Identifies the respondent (hashed before writing); `metadata.network_id` otherwise.
    pub respondent: String,
}

impl Default for TypeformHiddenFields {
    fn default() -> Self {
        TypeformHiddenFields {
            department: "department".into(),
            team: "team".into(),
            location: "location".into(),
            respondent: "employee_id".into(),
        }
    }
}

fn default_base_url() -> Template {
    Template::new("https://api.typeform.com")
}

fn default_page_size() -> u32 {
    1000
}

fn default_enps_ref() -> String {
    "enps".to_string()
}

impl TypeformConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        if self.page_size == 0 || self.page_size > 1000 {
            problems.push((
                "page_size",
                format!(
                    "{} is out of range: Typeform pages hold 1 to 1000 responses",
                    self.page_size
                ),
            ));
        }
        if self.form_ids.is_empty() {
            problems.push(("form_ids", "list at least one form id".to_string()));
        }
        if self.enps_ref.is_empty() {
            problems.push(("enps_ref", "name the eNPS question's field ref".to_string()));
        }
        problems.extend(check_group_questions(&self.group_questions, &self.enps_ref));
        if self.extra_score_refs.contains(&self.enps_ref) {
            problems.push((
                "extra_score_refs",
                format!("`{}` is the eNPS question", self.enps_ref),
            ));
        }
        problems
    }
}

/// The state stream of one form.
fn stream_of(form: &str) -> String {
    format!("responses:{form}")
}

/// Pull the completed responses of every form into `out`: all of them the first time, then
/// those submitted at or after the form's watermark (`since` is inclusive, so ties are
/// re-read and merged by response id rather than lost).
pub async fn pull(
    cfg: &TypeformConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut impl RowSink<SurveyResponseRow>,
) -> Result<()> {
    for form in &cfg.form_ids {
        let url = join_url(base_url, &format!("forms/{form}/responses"));
        let stream = stream_of(form);
        let since = ctx.previous.watermark(&stream).map(str::to_string);
        if since.is_some() {
            out.merge_with_previous();
        }
        let mut newest: Option<i64> = None;
        let mut before: Option<String> = None;
        let mut page = 0u64;
        loop {
            page += 1;
            let mut request_url =
                reqwest::Url::parse(&url).map_err(|e| ctx.protocol(&url, e.to_string()))?;
            request_url
                .query_pairs_mut()
                .append_pair("page_size", &cfg.page_size.to_string())
                .append_pair("response_type", "completed");
            if let Some(since) = &since {
                request_url.query_pairs_mut().append_pair("since", since);
            }
            if let Some(cursor) = &before {
                request_url.query_pairs_mut().append_pair("before", cursor);
            }
            let request = ctx
                .http
                .inner()
                .get(request_url)
                .bearer_auth(token.expose());
            let skimmed = DecodedOnce::<Option<SkimProof>>::default();
            let page_body = {
                let ours = |body: &[u8]| page_belongs(body, before.as_deref());
                let classify = skimmed.checked(
                    ctx,
                    "typeform/responses",
                    &crate::http::default_verdict,
                    ours,
                );
                ctx.pages
                    .fetch_classified("typeform/responses", request, &classify)
                    .await?
            };
            let skimmed = skimmed.take(&page_body).flatten();
            let (form_id, page_cfg, hasher) = (form.clone(), cfg.clone(), ctx.hasher.clone());
            let decoded = ctx
                .decode_json(&url, &page_body, skimmed, move |body| {
                    decode_page(&body, &form_id, &page_cfg, &hasher)
                })
                .await?;
            let location = format!("form {form} page {page}");
            let (items, last_token, page_newest) = decoded.write(out, &location).await?;
            newest = newest.max(page_newest);
            // No end signal: a short page is the last one.
            if items < cfg.page_size as usize {
                break;
            }
            before = last_token;
            if before.is_none() {
                return Err(ctx.protocol(&url, "a full page whose last item has no `token`"));
            }
        }
        if let Some(micros) = newest {
            let seconds = chrono::DateTime::from_timestamp_micros(micros)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            if let Some(watermark) = seconds.filter(|w| since.as_deref() < Some(w.as_str())) {
                ctx.advance(&stream, watermark);
            }
        }
    }
    Ok(())
}

/// Is this the page asked for? The answer to `before=T` holds responses older than T, never
/// T itself (the page before served again ends with it). `Ok` carries the skim's proof when
/// the page was skimmed (the page asked with `before`), for its parser.
fn page_belongs(
    body: &[u8],
    before: Option<&str>,
) -> std::result::Result<Option<SkimProof>, String> {
    // Skimmed, not parsed: the page is parsed whole on a decoding thread.
    let (Some(before), Ok(page)) = (before, crate::json::skim(body, Some(("items", "token"))))
    else {
        return Ok(None);
    };
    if page.item_values.iter().any(|token| {
        crate::json::from_slice::<std::borrow::Cow<'_, str>>(token).is_ok_and(|t| t == before)
    }) {
        return Err("it holds the response this page was asked to start before".to_string());
    }
    Ok(Some(page.proof))
}

/// A responses page: its rows and rejects, then (items on the page, the last item's
/// `token`, the newest `submitted_at` of its rows).
type TypeformPage = DecodedPage<SurveyResponseRow, (usize, Option<String>, Option<i64>)>;

fn decode_page(
    body: &PageValue,
    form: &str,
    cfg: &TypeformConfig,
    hasher: &PersonalDataHasher,
) -> std::result::Result<TypeformPage, String> {
    let items = body
        .get("items")
        .and_then(PageValue::as_array)
        .ok_or("no `items` array")?;
    let mut page = DecodedPage {
        rows: Vec::with_capacity(items.len()),
        rejects: Vec::new(),
        next: (
            items.len(),
            items.iter().last().and_then(|i| opt_str(i.get("token"))),
            None,
        ),
    };
    for item in items {
        match decode_response(item, form, cfg, hasher) {
            Ok(row) => {
                page.next.2 = page.next.2.max(row.submitted_at);
                page.rows.push(row);
            }
            Err(reason) => page.rejects.push((redact(item, cfg, hasher), reason)),
        }
    }
    Ok(page)
}

/// One response as a `survey_responses` row, or why not.
pub fn decode_response(
    item: &PageValue,
    form: &str,
    cfg: &TypeformConfig,
    hasher: &PersonalDataHasher,
) -> std::result::Result<SurveyResponseRow, String> {
    let response_id = opt_small_str(item.get("response_id"))
        .or_else(|| opt_small_str(item.get("token")))
        .ok_or("response has no `token`")?;
    let hidden = item.get("hidden");
    let hidden_field = |name: &str| opt_small_str(hidden.get(name));
    let respondent = hidden_field(&cfg.hidden_fields.respondent)
        .or_else(|| opt_small_str(item.get("metadata").get("network_id")));
    let score = number_answer(item, &cfg.enps_ref)?
        .map(|s| cfg.scale.check(s))
        .transpose()?;
    let mut extra = BTreeMap::new();
    for field_ref in &cfg.extra_score_refs {
        if let Some(value) = number_answer(item, field_ref)? {
            extra.insert(field_ref.clone(), value);
        }
    }
    let mut kept = BTreeMap::new();
    for field_ref in &cfg.keep_text_refs {
        if let Some(text) = answer_of(item, field_ref).and_then(|a| opt_str(a.get("text"))) {
            kept.insert(field_ref.clone(), text);
        }
    }
    let (mut department, mut team, mut location) = (
        hidden_field(&cfg.hidden_fields.department),
        hidden_field(&cfg.hidden_fields.team),
        hidden_field(&cfg.hidden_fields.location),
    );
    let answers = cfg
        .group_questions
        .iter()
        .map(|(dimension, field_ref)| (dimension.as_str(), choice_answer(item, field_ref)))
        .collect();
    let groups = place_groups(answers, [&mut department, &mut team, &mut location]);
    Ok(SurveyResponseRow {
        source_system: "typeform".into(),
        survey_id: form.into(),
        response_id,
        respondent_hash: respondent.map(|r| hasher.hash(&r)),
        submitted_at: opt_timestamp(item.get("submitted_at"), "submitted_at")?,
        question_ref: cfg.enps_ref.as_str().into(),
        score,
        response_status: Some("completed".into()),
        department,
        team,
        location,
        extra_scores: json_column(extra),
        kept_text: json_column(kept),
        groups,
    })
}

/// The answer to the field with `field_ref` (selected by ref, never by position).
fn answer_of<'a>(item: &'a PageValue, field_ref: &str) -> Option<&'a PageValue> {
    item.get("answers")?
        .as_array()?
        .iter()
        .find(|a| a.get("field").get("ref").as_str() == Some(field_ref))
}

/// The label chosen for the multiple-choice or dropdown field with `field_ref`
/// (`{"type": "choice", "choice": {"label": …}}`); a multiple-selection answer counts when
/// it holds one label. `None` when unanswered, or when only "Other" was typed (free text is
/// never a group).
fn choice_answer(item: &PageValue, field_ref: &str) -> Option<String> {
    let answer = answer_of(item, field_ref)?;
    if let Some(label) = opt_str(answer.get("choice").get("label")) {
        return Some(label);
    }
    let labels = answer.get("choices")?.get("labels")?.as_array()?;
    match labels.len() {
        1 => opt_str(labels.iter().next()),
        _ => None,
    }
}

/// The number answered to the field with `field_ref`; `None` when not answered.
fn number_answer(item: &PageValue, field_ref: &str) -> std::result::Result<Option<i64>, String> {
    let Some(answer) = answer_of(item, field_ref) else {
        return Ok(None);
    };
    match answer.get("number") {
        Some(n) if n.is_number() => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("answer to `{field_ref}` (`{n}`) is not a whole number")),
        Some(n) if n.is_null() => Ok(None),
        None => Ok(None),
        Some(other) => Err(format!(
            "answer to `{field_ref}` (`{other}`) is not a number"
        )),
    }
}

/// The response as it may be kept in `_rejects`: identifiers hashed, free text dropped.
fn redact(item: &PageValue, cfg: &TypeformConfig, hasher: &PersonalDataHasher) -> Value {
    let mut copy = super::to_serde_json(item);
    let hash_in_place = |v: &mut Value| {
        if let Value::String(s) = v {
            *s = format!("hmac:{}", hasher.hash(s));
        }
    };
    if let Some(v) = copy.pointer_mut(&format!("/hidden/{}", cfg.hidden_fields.respondent)) {
        hash_in_place(v);
    }
    if let Some(v) = copy.pointer_mut("/metadata/network_id") {
        hash_in_place(v);
    }
    if let Some(Value::Array(answers)) = copy.get_mut("answers") {
        for answer in answers.iter_mut() {
            if let Some(v) = answer.get_mut("email") {
                hash_in_place(v);
            }
            // Free text is dropped in rejects too, whatever the job keeps.
            if answer.get("text").is_some() {
                answer["text"] = Value::Null;
            }
        }
    }
    copy
}

impl super::SourceKind for TypeformConfig {
    const KIND: &'static str = "typeform";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::SurveyResponses;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        vec![("token", &self.token)]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        TypeformConfig::check(self)
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
    use sonic_rs::JsonValueMutTrait;

    fn config() -> TypeformConfig {
        toml::from_str(
            r#"name = "pulse"
token = "t"
form_ids = ["f"]"#,
        )
        .unwrap()
    }

    /// A page asked for with `before` is skimmed for its tokens, and that skim's proof spares
    /// its parser a second scan of the same bytes; a page nested too deep gets no proof (its
    /// skim fails), and neither it nor a proof of other bytes lets it past the depth check.
    #[tokio::test]
    async fn a_skimmed_page_is_parsed_without_a_second_scan_never_past_the_depth_check() {
        let ctx = SourceContext::for_test(
            "pulse",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            crate::state::SourceState::default(),
        );
        let items = |body: sonic_rs::Value| Ok(body.get("items").as_array().map_or(0, |a| a.len()));
        let body = bytes::Bytes::from_static(br#"{"items":[{"token":"b"},{"token":"c"}]}"#);
        assert_eq!(
            page_belongs(&body, None),
            Ok(None),
            "a first page is not skimmed"
        );
        let proof = page_belongs(&body, Some("a")).unwrap().expect("skimmed");
        assert_eq!(
            ctx.decode_json("u", &body, Some(proof), items)
                .await
                .unwrap(),
            2
        );
        assert!(
            page_belongs(&body, Some("c")).is_err(),
            "holds the token it starts before"
        );

        let deep = format!(
            r#"{{"items":[{{"token":{}1{}}}]}}"#,
            "[".repeat(101),
            "]".repeat(101)
        );
        let deep = bytes::Bytes::from(deep);
        assert_eq!(
            page_belongs(&deep, Some("a")),
            Ok(None),
            "its skim fails: no proof"
        );
        let other = page_belongs(&body, Some("a")).unwrap();
        for proof in [None, other] {
            let err = ctx.decode_json("u", &deep, proof, items).await.unwrap_err();
            assert!(err.to_string().contains("nested deeper than 100"), "{err}");
        }
    }

    #[test]
    fn picks_enps_by_ref_not_position_and_hashes_identifiers() {
        let hasher = PersonalDataHasher::new(b"k");
        let item: PageValue = sonic_rs::to_value(&json!({
            "token": "tok1", "response_id": "tok1", "submitted_at": "2026-11-01T09:00:00Z",
            "metadata": {"network_id": "abc123"},
            "hidden": {"department": "Sales", "team": "EMEA", "location": "Berlin", "employee_id": "E0042"},
            "answers": [
                {"field": {"id": "w", "type": "opinion_scale", "ref": "workload"}, "type": "number", "number": 2},
                {"field": {"id": "e", "type": "opinion_scale", "ref": "enps"}, "type": "number", "number": 9},
                {"field": {"id": "c", "type": "long_text", "ref": "comment"}, "type": "text", "text": "hi"}
            ]
        }))
        .unwrap();
        let row = decode_response(&item, "f", &config(), &hasher).unwrap();
        assert_eq!(row.score, Some(9));
        assert_eq!(row.extra_scores, None, "extras only when configured");
        assert_eq!(row.kept_text, None, "free text dropped unless kept");
        let mut keeping = config();
        keeping.extra_score_refs = vec!["workload".into()];
        keeping.keep_text_refs = vec!["comment".into()];
        let kept = decode_response(&item, "f", &keeping, &hasher).unwrap();
        assert_eq!(
            kept.score,
            Some(9),
            "the workload answer never becomes the eNPS score"
        );
        assert_eq!(kept.extra_scores.as_deref(), Some(r#"{"workload":2}"#));
        assert_eq!(kept.kept_text.as_deref(), Some(r#"{"comment":"hi"}"#));
        assert_eq!(row.department.as_deref(), Some("Sales"));
        assert_eq!(
            row.respondent_hash.as_deref(),
            Some(hasher.hash("E0042").as_str())
        );

        let mut unanswered = item.clone();
        unanswered["answers"].as_array_mut().unwrap().remove(1);
        assert_eq!(
            decode_response(&unanswered, "f", &config(), &hasher)
                .unwrap()
                .score,
            None
        );

        let mut out_of_range = item.clone();
        out_of_range["answers"][1]["number"] = sonic_rs::json!(14);
        assert!(decode_response(&out_of_range, "f", &config(), &hasher).is_err());
        let kept = redact(&out_of_range, &config(), &hasher).to_string();
        assert!(!kept.contains("E0042") && !kept.contains("abc123") && !kept.contains("\"hi\""));
    }

    #[test]
    fn a_page_holding_its_own_cursor_is_the_page_before_again() {
        let page = br#"{"items":[{"token":"a"},{"token":"b"}]}"#;
        assert!(page_belongs(page, None).is_ok());
        assert!(page_belongs(page, Some("c")).is_ok());
        assert!(page_belongs(page, Some("b")).is_err());
    }
}
