//! Salesforce Lead → `leads`, through the REST API. OAuth 2.0 refresh-token grant against the
//! configured login server (the shared [`super::oauth`] token source) gives an access token
//! and the org's `instance_url` (a 401 `INVALID_SESSION_ID` refreshes once and retries). SOQL runs through
//! `/services/data/vNN.N/query`, following the relative `nextRecordsUrl` until `done`; later
//! runs ask for `SystemModstamp >= <watermark>` (an unquoted datetime literal; the overlap is
//! merged by `Id`), and deleted leads come from `queryAll … IsDeleted = true` as rows with
//! `is_deleted = true`. An `INVALID_QUERY_LOCATOR` re-runs the query from the watermark; a
//! spent allocation (`403 REQUEST_LIMIT_EXCEEDED`) fails the source with that message. The
//! `Sforce-Limit-Info` header is logged as the org's API usage. Field mapping is job
//! configuration; the `attributes` object of each record is metadata and ignored.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::oauth::{OAuthToken, RefreshGrant};
use super::{SourceContext, answer, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::{HttpSettings, Verdict, body_excerpt, default_verdict};
use crate::normalize::parse::{opt_bool, opt_str, opt_timestamp};
use crate::normalize::{LeadRow, PersonalDataHasher};
use crate::sources::RowSink;
use crate::sources::custom::CustomProperties;
use crate::sources::lead_fields::{LeadField, LeadRecord, LeadValues, crm_fields};

/// `[[sources]] kind = "salesforce"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// Unique source name.
    pub name: String,
    /// The OAuth login server: `https://login.salesforce.com` (production, the default),
    /// `https://test.salesforce.com` (sandbox orgs), or the funnelhouse sandbox. The token
    /// endpoint is `<base_url>/services/oauth2/token`; data calls go to the `instance_url`
    /// it returns.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Connected app consumer key, e.g. `"${SALESFORCE_CLIENT_ID}"`.
    pub client_id: Template,
    /// Connected app consumer secret, e.g. `"${SALESFORCE_CLIENT_SECRET}"`.
    pub client_secret: Template,
    /// Refresh token of the integration user, e.g. `"${SALESFORCE_REFRESH_TOKEN}"`.
    pub refresh_token: Template,
    /// REST API version path segment.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Records per batch asked for with `Sforce-Query-Options: batchSize=N` (200–2000; a hint).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Pull deleted records (`queryAll … IsDeleted = true`) as `is_deleted = true` rows.
    #[serde(default = "default_true")]
    pub include_deleted: bool,
    /// Objects to pull into `leads`: `Lead`, and optionally `Contact`.
    #[serde(default = "default_objects")]
    pub objects: Vec<SalesforceObject>,
    /// Which Lead field feeds each canonical column.
    #[serde(default)]
    pub fields: SalesforceFields,
    /// Changes to the Contact field mapping (same keys as `fields`; see
    /// [`SalesforceFields::contact_defaults`]).
    #[serde(default)]
    pub contact_fields: BTreeMap<String, String>,
    /// ISO-4217 currency of `AnnualRevenue` (the org's currency) when no
    /// `annual_revenue_currency` field is mapped; the job's `reporting_currency` when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Other Lead fields to keep in `leads.custom`, each with its type.
    #[serde(default)]
    pub custom_properties: crate::sources::custom::CustomProperties,
    /// Other Contact fields to keep in `leads.custom` (Contacts have their own custom
    /// fields; none by default).
    #[serde(default)]
    pub contact_custom_properties: crate::sources::custom::CustomProperties,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_base_url() -> Template {
    Template::new("https://login.salesforce.com")
}
fn default_api_version() -> String {
    "v62.0".to_string()
}
fn default_batch_size() -> u32 {
    2_000
}
fn default_true() -> bool {
    true
}
fn default_objects() -> Vec<SalesforceObject> {
    vec![SalesforceObject::Lead]
}

/// A Salesforce object pulled into `leads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum SalesforceObject {
    /// Leads (the default).
    Lead,
    /// Contacts (people who are not, or no longer, leads — e.g. converted ones).
    Contact,
}

impl SalesforceObject {
    /// The API name, also the state stream of its watermark.
    pub fn api_name(self) -> &'static str {
        match self {
            SalesforceObject::Lead => "Lead",
            SalesforceObject::Contact => "Contact",
        }
    }
}

impl SalesforceConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        if !(200..=2_000).contains(&self.batch_size) {
            problems.push((
                "batch_size",
                format!(
                    "{} is out of range: Salesforce batches hold 200 to 2000 records",
                    self.batch_size
                ),
            ));
        }
        let version_ok = self
            .api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !version_ok {
            problems.push((
                "api_version",
                format!("`{}` is not like v62.0", self.api_version),
            ));
        }
        if self.objects.is_empty() {
            problems.push((
                "objects",
                "list at least one object: Lead or Contact".into(),
            ));
        }
        for (i, o) in self.objects.iter().enumerate() {
            if self.objects[..i].contains(o) {
                problems.push(("objects", format!("{} is listed twice", o.api_name())));
            }
        }
        let mut contact = SalesforceFields::contact_defaults();
        for (column, field) in &self.contact_fields {
            match contact.slot(column) {
                Some(slot) => *slot = field.clone(),
                None => problems.push((
                    "contact_fields",
                    format!("`{column}` is not a leads column"),
                )),
            }
        }
        problems.extend(crate::sources::custom::check(&self.custom_properties));
        problems.extend(
            crate::sources::custom::check(&self.contact_custom_properties)
                .into_iter()
                .map(|(_, p)| ("contact_custom_properties", p)),
        );
        if let Some(c) = &self.currency
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            problems.push((
                "currency",
                format!("`{c}` is not an ISO-4217 code like EUR"),
            ));
        }
        let custom = self
            .custom_properties
            .iter()
            .chain(&self.contact_custom_properties)
            .map(|(name, p)| ("custom_properties", p.property(name)));
        for (column, field) in self
            .fields
            .mapped()
            .into_iter()
            .chain(contact.mapped())
            .chain(custom)
        {
            if !field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                problems.push((
                    "fields",
                    format!("{column} = `{field}` is not a Salesforce field name"),
                ));
            }
        }
        problems
    }

    /// The field mapping of `object`, with the kept custom fields and the currency of
    /// `AnnualRevenue` (`reporting_currency` unless the source names one).
    pub fn fields_of(
        &self,
        object: SalesforceObject,
        reporting_currency: &str,
    ) -> SalesforceFields {
        let mut fields = self.mapping_of(object);
        fields.custom = match object {
            SalesforceObject::Lead => self.custom_properties.clone(),
            SalesforceObject::Contact => self.contact_custom_properties.clone(),
        };
        fields.currency = Some(
            self.currency
                .clone()
                .unwrap_or_else(|| reporting_currency.to_string()),
        );
        fields
    }

    /// The configured column mapping of `object`.
    fn mapping_of(&self, object: SalesforceObject) -> SalesforceFields {
        match object {
            SalesforceObject::Lead => self.fields.clone(),
            SalesforceObject::Contact => {
                let mut fields = SalesforceFields::contact_defaults();
                for (column, field) in &self.contact_fields {
                    if let Some(slot) = fields.slot(column) {
                        *slot = field.clone();
                    }
                }
                fields
            }
        }
    }
}

crm_fields! {
    /// Lead field names (API names; `Relationship.Field` for parents) for each canonical
    /// `leads` column; `""` leaves the column null. Custom fields (`…__c`) welcome.
    pub struct SalesforceFields {
        email = "Email",
        company = "Company",
        job_title = "Title",
        country = "Country",
        owner_id = "OwnerId",
        channel = "LeadSource",
        campaign_id = "",
        /// Salesforce Leads have no lifecycle stage; `Rating` (Hot / Warm / Cold) by default.
        lifecycle_stage = "Rating",
        /// A boolean field: when true, `lifecycle_stage_raw` is `converted`.
        is_converted = "IsConverted",
        lead_status = "Status",
        vendor_score = "",
        demo_requested = "",
        content_downloads = "",
        web_visits = "",
        email_engagements = "",
        budget_confirmed = "",
        authority = "",
        need_confirmed = "",
        timeline_confirmed = "",
        created_at = "CreatedDate",
        updated_at = "SystemModstamp",
        mql_at = "",
        sal_at = "",
        sal_rejected_at = "",
        rejection_reason = "",
        sql_at = "ConvertedDate",
        opportunity_at = "",
        customer_at = "",
        first_contacted_at = "",
        /// Latest new-intent signal (recycled leads); unmapped by default.
        last_intent_at = "",
        /// The company's industry.
        industry = "Industry",
        /// The company's number of employees.
        employee_count = "NumberOfEmployees",
        /// The company's annual revenue (a currency field).
        annual_revenue = "AnnualRevenue",
        /// The ISO code of `annual_revenue` per record (`CurrencyIsoCode`, multi-currency orgs
        /// only); unmapped by default, when the source's `currency` applies.
        annual_revenue_currency = "",
    }
    extra {
        /// Fields kept in `leads.custom` (from `custom_properties` or
        /// `contact_custom_properties`, not a column mapping).
        #[serde(skip)]
        pub custom: CustomProperties = CustomProperties::new(),
        /// Currency of `annual_revenue` when no field gives it (set by the pull).
        #[serde(skip)]
        pub currency: Option<String> = None,
    }
}

impl SalesforceFields {
    /// The standard Contact fields. Contacts carry no status, rating, conversion or
    /// firmographics of their own: the company and its firmographics are the parent
    /// Account's, the country the mailing one.
    pub fn contact_defaults() -> Self {
        SalesforceFields {
            company: "Account.Name".into(),
            country: "MailingCountry".into(),
            lifecycle_stage: String::new(),
            is_converted: String::new(),
            lead_status: String::new(),
            sql_at: String::new(),
            industry: "Account.Industry".into(),
            employee_count: "Account.NumberOfEmployees".into(),
            annual_revenue: "Account.AnnualRevenue".into(),
            ..SalesforceFields::default()
        }
    }

    /// The mapping of `column` (a job-file key), to change it.
    pub fn slot(&mut self, column: &str) -> Option<&mut String> {
        self.field_mut(LeadField::from_key(column)?)
    }

    /// `(column, field)` for every mapped column.
    pub fn mapped(&self) -> Vec<(&'static str, &str)> {
        LeadField::ALL
            .iter()
            .map(|&column| (column.key(), self.field(column)))
            .filter(|(_, f)| !f.is_empty())
            .collect()
    }

    /// The SELECT list: `Id`, `SystemModstamp`, `IsDeleted`, then every mapped and kept
    /// field once.
    pub fn select_list(&self) -> Vec<&str> {
        let mut out = vec!["Id", "SystemModstamp", "IsDeleted"];
        let custom = self.custom.iter().map(|(name, p)| p.property(name));
        for field in self.mapped().into_iter().map(|(_, f)| f).chain(custom) {
            if !out.contains(&field) {
                out.push(field);
            }
        }
        out
    }
}

/// Times one pull re-runs a query whose cursor became invalid.
const MAX_QUERY_RESTARTS: u32 = 3;

/// The token source of a pull: the refresh-token grant against the login server, judged
/// by [`oauth_verdict`].
pub fn token_source(
    login_url: &str,
    client_id: &Secret,
    client_secret: &Secret,
    refresh_token: &Secret,
) -> OAuthToken {
    let copy = |s: &Secret| Secret::new(s.expose().to_string());
    let grant = RefreshGrant {
        token_url: join_url(login_url, "services/oauth2/token"),
        client_id: copy(client_id),
        client_secret: copy(client_secret),
        refresh_token: copy(refresh_token),
    };
    OAuthToken::new(None, Some(grant)).with_token_verdict(oauth_verdict)
}

/// What a classified response told us besides its verdict.
#[derive(Debug, Default)]
struct Signals {
    session_expired: bool,
    locator_invalid: bool,
    api_usage: Option<String>,
}

/// Pull every configured object (and its deleted records) into `out`; each object keeps
/// its own watermark (state stream `Lead` / `Contact`: `SystemModstamp`, whole seconds).
pub async fn pull(
    cfg: &SalesforceConfig,
    token: &OAuthToken,
    ctx: &SourceContext,
    out: &mut impl RowSink<LeadRow>,
) -> Result<()> {
    let instance_url = if ctx.pages.is_replay() {
        // Replays never reach the network: no org to find.
        "http://replay.invalid".to_string()
    } else {
        instance_of(token, ctx).await?
    };
    // Incremental as soon as any object has a watermark: rows merge into the table.
    if cfg
        .objects
        .iter()
        .any(|o| ctx.previous.watermark(o.api_name()).is_some())
    {
        out.merge_with_previous();
    }
    let mut usage = None;
    for &object in &cfg.objects {
        let name = object.api_name();
        let fields = cfg.fields_of(object, &ctx.reporting_currency);
        if !fields.custom.is_empty() && !ctx.pages.is_replay() {
            check_custom_fields(cfg, ctx, (token, &instance_url), object, &fields, out.job())
                .await?;
        }
        let select = fields.select_list().join(", ");
        let watermark = ctx.previous.watermark(name).map(str::to_string);
        let since = watermark
            .as_deref()
            .map(|w| format!("SystemModstamp >= {w}"));
        let live = format!(
            "SELECT {select} FROM {name}{} ORDER BY SystemModstamp, Id",
            since
                .as_deref()
                .map(|s| format!(" WHERE {s}"))
                .unwrap_or_default()
        );
        let mut newest = run_query(
            cfg,
            ctx,
            (token, &instance_url),
            ("salesforce/query", "query"),
            (name, &live, &fields),
            &mut usage,
            out,
        )
        .await?;
        if cfg.include_deleted {
            let deleted = format!(
                "SELECT {select} FROM {name} WHERE IsDeleted = true{} ORDER BY SystemModstamp, Id",
                since
                    .as_deref()
                    .map(|s| format!(" AND {s}"))
                    .unwrap_or_default()
            );
            let newest_deleted = run_query(
                cfg,
                ctx,
                (token, &instance_url),
                ("salesforce/query_all", "queryAll"),
                (name, &deleted, &fields),
                &mut usage,
                out,
            )
            .await?;
            newest = newest.max(newest_deleted);
        }
        let previous = watermark
            .as_deref()
            .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
            .map(|t| t.timestamp_micros());
        if let Some(micros) = newest.filter(|n| previous.is_none_or(|p| *n > p))
            && let Some(t) = chrono::DateTime::from_timestamp_micros(micros)
        {
            ctx.advance(name, t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }
    if let Some(usage) = usage {
        tracing::info!(source = %ctx.source_name, api_usage = %usage, "Salesforce API usage (Sforce-Limit-Info, rolling 24 hours)");
    }
    Ok(())
}

/// Check that every kept custom field exists on `object` (`GET …/sobjects/<object>/describe`,
/// one request per object, not landed with the pages), so a misspelt field is an error that
/// names it and its close matches rather than SOQL's bare `INVALID_FIELD`.
async fn check_custom_fields(
    cfg: &SalesforceConfig,
    ctx: &SourceContext,
    (token, instance_url): (&OAuthToken, &str),
    object: SalesforceObject,
    fields: &SalesforceFields,
    job: &str,
) -> Result<()> {
    let path = format!(
        "services/data/{}/sobjects/{}/describe",
        cfg.api_version,
        object.api_name()
    );
    let url = join_url(instance_url, &path);
    let signals = Mutex::new(Signals::default());
    let classify = |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
        verdict(status, headers, body, &signals)
    };
    let request = ctx
        .http
        .inner()
        .get(&url)
        .bearer_auth(token.granted(ctx).await?.token.expose());
    let response = ctx.http.send_classified(request, &classify).await?;
    let body: Value = crate::json::from_slice(&response.body)
        .map_err(|e| ctx.protocol(&url, super::not_json(&e, &response.body)))?;
    let existing: Vec<(String, String)> = body
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| ctx.protocol(&url, "the describe answer has no `fields` array"))?
        .iter()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?;
            let kind = f.get("type").and_then(Value::as_str).unwrap_or("string");
            Some((name.to_string(), kind.to_string()))
        })
        .collect();
    crate::sources::custom::verify(
        job,
        &ctx.source_name,
        &format!("Salesforce {} field", object.api_name()),
        &format!("GET /{path}"),
        &fields.custom,
        &existing,
    )
}

/// The org's instance, from the token endpoint's answer (the first grant is obtained here).
async fn instance_of(token: &OAuthToken, ctx: &SourceContext) -> Result<String> {
    let granted = token.granted(ctx).await?;
    let instance_url = granted
        .instance_url
        .as_deref()
        .filter(|u| u.starts_with("http"))
        .ok_or_else(|| {
            ctx.protocol(
                token.token_url().unwrap_or_default(),
                "the token answer has no `instance_url`",
            )
        })?;
    Ok(instance_url.trim_end_matches('/').to_string())
}

/// One SOQL query through `endpoint` (`query` / `queryAll`), every batch into `out`;
/// returns the newest `SystemModstamp` read (µs).
#[allow(
    clippy::too_many_arguments,
    reason = "the pull's parts, borrowed for one query"
)]
async fn run_query(
    cfg: &SalesforceConfig,
    ctx: &SourceContext,
    (token, instance_url): (&OAuthToken, &str),
    (page_endpoint, resource): (&str, &str),
    (object, soql, fields): (&str, &str, &SalesforceFields),
    usage: &mut Option<String>,
    out: &mut impl RowSink<LeadRow>,
) -> Result<Option<i64>> {
    let mut newest: Option<i64> = None;
    let mut restarts = 0;
    'query: loop {
        let mut next = {
            let mut url = reqwest::Url::parse(&join_url(
                instance_url,
                &format!("services/data/{}/{resource}", cfg.api_version),
            ))
            .map_err(|e| ctx.protocol(instance_url, e.to_string()))?;
            url.query_pairs_mut().append_pair("q", soql);
            url
        };
        let mut batch = 0u64;
        loop {
            batch += 1;
            let shown = crate::http::redact_url(&next);
            let signals = Mutex::new(Signals::default());
            let classify = |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
                verdict(status, headers, body, &signals)
            };
            // `query` and `queryAll` serve every object on one path: the last batch of
            // the Lead query served again would stand for the first of the Contacts.
            let ours = |body: &[u8]| records_belong(body, object);
            let classify = answer::checked(ctx, page_endpoint, &classify, ours);
            // An expired session (401 INVALID_SESSION_ID) is refreshed once by the token
            // source, which then sends the batch again.
            let result = token
                .fetch(ctx, page_endpoint, &classify, |access| {
                    ctx.http
                        .inner()
                        .get(next.clone())
                        .bearer_auth(access)
                        .header(
                            "Sforce-Query-Options",
                            format!("batchSize={}", cfg.batch_size),
                        )
                })
                .await;
            drop(classify);
            let signals = signals.into_inner().unwrap_or_else(|p| p.into_inner());
            if let Some(u) = signals.api_usage {
                tracing::debug!(source = %ctx.source_name, api_usage = %u, "Sforce-Limit-Info");
                *usage = Some(u);
            }
            if signals.session_expired {
                tracing::info!(source = %ctx.source_name, "the Salesforce session had expired (INVALID_SESSION_ID)");
            }
            let body = match result {
                Ok(body) => body,
                Err(e) if signals.locator_invalid => {
                    if restarts >= MAX_QUERY_RESTARTS {
                        return Err(e);
                    }
                    restarts += 1;
                    tracing::warn!(source = %ctx.source_name, restarts, "query locator no longer valid (INVALID_QUERY_LOCATOR); re-running the query from the watermark");
                    continue 'query;
                }
                Err(e) => return Err(e),
            };
            let body = ctx.parse_json(&shown, &body).await?;
            let records = body
                .get("records")
                .and_then(Value::as_array)
                .ok_or_else(|| ctx.protocol(&shown, "no `records` array"))?;
            let location = format!("{resource} batch {batch}");
            for record in records {
                let modstamp = record
                    .get("SystemModstamp")
                    .and_then(|v| opt_timestamp(Some(v), "SystemModstamp").ok().flatten());
                newest = newest.max(modstamp);
                match decode_lead(record, fields, &ctx.hasher) {
                    Ok(row) => out.push(row).await?,
                    Err(reason) => {
                        out.reject(&location, &redact(record, fields, &ctx.hasher), reason)
                    }
                }
            }
            let done = body.get("done").and_then(Value::as_bool).unwrap_or(true);
            let next_url = body.get("nextRecordsUrl").and_then(Value::as_str);
            match (done, next_url) {
                (true, _) => break 'query,
                (false, Some(path)) => {
                    // Relative to the instance, followed verbatim.
                    next = reqwest::Url::parse(&format!("{instance_url}{path}"))
                        .map_err(|e| ctx.protocol(&shown, format!("bad nextRecordsUrl: {e}")))?;
                }
                (false, None) => {
                    return Err(
                        ctx.protocol(&shown, "`done` is false but there is no `nextRecordsUrl`")
                    );
                }
            }
        }
    }
    Ok(newest)
}

/// What ties a query batch to its query: the object type of each record.
#[derive(Deserialize)]
struct Batch {
    #[serde(default)]
    records: Vec<BatchRecord>,
}

#[derive(Deserialize)]
struct BatchRecord {
    #[serde(default)]
    attributes: Option<RecordAttributes>,
}

#[derive(Deserialize)]
struct RecordAttributes {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// Is this batch of the object queried? (A record says its type in `attributes.type`.)
fn records_belong(body: &[u8], object: &str) -> std::result::Result<(), String> {
    let Ok(batch) = crate::json::from_slice::<Batch>(body) else {
        return Ok(());
    };
    match batch
        .records
        .iter()
        .filter_map(|r| r.attributes.as_ref()?.kind.as_deref())
        .find(|kind| *kind != object)
    {
        Some(kind) => Err(format!("it holds {kind} records for a query of {object}")),
        None => Ok(()),
    }
}

/// Salesforce's classification of data calls. The body of an error is a JSON array of
/// `{message, errorCode}`.
fn verdict(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    signals: &Mutex<Signals>,
) -> Verdict {
    let mut signals = signals.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(u) = headers
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
    {
        signals.api_usage = Some(u.to_string());
    }
    if status.is_success() {
        return Verdict::Accept;
    }
    let parsed: Value = crate::json::from_slice(body).unwrap_or(Value::Null);
    let first = parsed.get(0).unwrap_or(&parsed);
    let code = first.get("errorCode").and_then(Value::as_str).unwrap_or("");
    let message = first
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| body_excerpt(body), str::to_owned);
    match (status.as_u16(), code) {
        (401, "INVALID_SESSION_ID") => {
            signals.session_expired = true;
            Verdict::Fatal(format!("HTTP 401 INVALID_SESSION_ID: {message}"))
        }
        (400, "INVALID_QUERY_LOCATOR") => {
            signals.locator_invalid = true;
            Verdict::Fatal(format!("HTTP 400 INVALID_QUERY_LOCATOR: {message}"))
        }
        // The concurrent long-request cap shares the code; it clears in seconds.
        (403, "REQUEST_LIMIT_EXCEEDED") if message.to_ascii_lowercase().contains("concurrent") => {
            Verdict::Retry(None)
        }
        (403, "REQUEST_LIMIT_EXCEEDED") => Verdict::Fatal(format!(
            "HTTP 403 REQUEST_LIMIT_EXCEEDED: the org's API request allocation is spent{}: {}. \
             It is a rolling 24-hour limit: run again once usage drops, or raise the allocation",
            signals
                .api_usage
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default(),
            message.trim_end_matches('.')
        )),
        (s, code) if (400..500).contains(&s) && s != 408 && s != 429 => {
            Verdict::Fatal(format!("HTTP {s} {code}: {message}"))
        }
        _ => default_verdict(status, headers, body),
    }
}

/// The token endpoint's classification: `{error, error_description}` bodies. A 429 is the
/// login server's rate limit, not a refused grant: it is waited out.
fn oauth_verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Verdict::RateLimited(crate::http::retry_after(headers));
    }
    if status.is_client_error() {
        let parsed: Value = crate::json::from_slice(body).unwrap_or(Value::Null);
        let error = parsed.get("error").and_then(Value::as_str).unwrap_or("");
        let description = parsed
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Verdict::Fatal(format!(
            "OAuth token refresh refused (HTTP {} {error}: {description}); check client_id, client_secret and refresh_token{}",
            status.as_u16(),
            if error == "invalid_grant" {
                ", and re-authorize the connected app if the refresh token was revoked"
            } else {
                ""
            }
        ));
    }
    default_verdict(status, headers, body)
}

/// The value at a field path (`Owner.Name` walks the nested parent record).
fn at<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return None;
    }
    path.split('.').try_fold(record, |v, part| v.get(part))
}

/// One Lead record as a `leads` row, or why not.
pub fn decode_lead(
    record: &Value,
    f: &SalesforceFields,
    hasher: &PersonalDataHasher,
) -> std::result::Result<LeadRow, String> {
    let id = opt_str(record.get("Id")).ok_or("lead has no `Id`")?;
    let mut mapped = LeadValues::read(|column| {
        let field = f.field(column);
        (at(record, field), field)
    })?;
    if mapped.is_converted == Some(true) {
        mapped.lifecycle_stage = Some("converted".into());
    }
    let lead = LeadRecord {
        source_system: "salesforce",
        lead_id: id.into(),
        currency: f.currency.as_deref(),
        custom: crate::sources::custom::decode_all(&f.custom, |path| at(record, path))?,
        is_deleted: opt_bool(record.get("IsDeleted"), "IsDeleted")?.unwrap_or(false),
    };
    Ok(mapped.into_row(lead, hasher))
}

/// The record as it may be kept in `_rejects`: e-mail hashed, names and phones dropped.
fn redact(record: &Value, f: &SalesforceFields, hasher: &PersonalDataHasher) -> Value {
    let mut copy = record.clone();
    if let Some(Value::String(email)) = copy.get_mut(&f.email) {
        *email = format!("hmac:{}", hasher.hash(email));
    }
    for name in [
        "FirstName",
        "LastName",
        "Name",
        "Phone",
        "MobilePhone",
        "Street",
    ] {
        if let Some(v) = copy.get_mut(name) {
            *v = Value::Null;
        }
    }
    copy
}

impl super::SourceKind for SalesforceConfig {
    const KIND: &'static str = "salesforce";
    const DATASET: crate::normalize::Dataset = crate::normalize::Dataset::Leads;

    super::kind::name_and_http!();

    fn base_url(&self) -> &Template {
        &self.base_url
    }

    fn secrets(&self) -> Vec<(&'static str, &Template)> {
        vec![
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        SalesforceConfig::check(self)
    }

    async fn pull<O: super::Outputs + Send>(
        &self,
        resolved: &super::ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> Result<()> {
        let token = token_source(
            &resolved.base_url,
            resolved.secret("client_id"),
            resolved.secret("client_secret"),
            resolved.secret("refresh_token"),
        );
        pull(self, &token, ctx, outputs.leads()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/salesforce/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn decodes_a_lead_page_ignoring_attributes() {
        let hasher = PersonalDataHasher::new(b"k");
        let page = fixture("replay/salesforce/salesforce/query/page-000001.json");
        assert_eq!(page["done"], false);
        assert!(
            page["nextRecordsUrl"]
                .as_str()
                .unwrap()
                .starts_with("/services/data/")
        );
        let fields = SalesforceFields {
            vendor_score: "Lead_Score__c".into(),
            demo_requested: "Demo_Requested__c".into(),
            ..SalesforceFields::default()
        };
        let rows: Vec<LeadRow> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| decode_lead(r, &fields, &hasher).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!(a.lead_id, "00Q5g00000AbCdEFGH");
        assert_eq!(a.source_system, "salesforce");
        assert_eq!(a.email_domain.as_deref(), Some("example.com"));
        assert_eq!(a.lead_status_raw.as_deref(), Some("Working - Contacted"));
        assert_eq!(a.lifecycle_stage_raw.as_deref(), Some("Warm"));
        assert_eq!(a.channel.as_deref(), Some("partner_referral"));
        assert_eq!(a.vendor_score, Some(42), "a JSON double");
        assert_eq!(a.demo_requested, Some(true));
        // 2026-11-19T10:00:00.000+0000: no colon in the offset.
        assert_eq!(a.updated_at, Some(1_795_082_400_000_000));
        assert!(!a.is_deleted);
        let b = &rows[1];
        assert_eq!(b.lifecycle_stage_raw.as_deref(), Some("converted"));
        assert_eq!(
            b.sql_at,
            Some(1_794_960_000_000_000),
            "date-only ConvertedDate"
        );
        assert_eq!(b.company, None, "null is null");

        let deleted = fixture("replay/salesforce/salesforce/query_all/page-000001.json");
        let row = decode_lead(&deleted["records"][0], &fields, &hasher).unwrap();
        assert!(row.is_deleted);
    }

    #[test]
    fn classifies_salesforce_errors() {
        let signals = Mutex::new(Signals::default());
        let body = |name: &str| serde_json::to_vec(&fixture(name)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "sforce-limit-info",
            "api-usage=15000/15000".parse().unwrap(),
        );
        let v = verdict(
            StatusCode::FORBIDDEN,
            &headers,
            &body("error_request_limit.json"),
            &signals,
        );
        assert!(
            matches!(&v, Verdict::Fatal(m) if m.contains("REQUEST_LIMIT_EXCEEDED") && m.contains("api-usage=15000/15000")),
            "{v:?}"
        );
        let v = verdict(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            &body("error_invalid_session.json"),
            &signals,
        );
        assert!(matches!(v, Verdict::Fatal(_)));
        let v = verdict(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body("error_invalid_locator.json"),
            &signals,
        );
        assert!(matches!(v, Verdict::Fatal(_)));
        let s = signals.lock().unwrap();
        assert!(s.session_expired && s.locator_invalid);
        assert_eq!(s.api_usage.as_deref(), Some("api-usage=15000/15000"));
        drop(s);
        let concurrent = br#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert_eq!(
            verdict(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                concurrent,
                &signals
            ),
            Verdict::Retry(None)
        );
        assert_eq!(
            oauth_verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"{}"),
            Verdict::RateLimited(None)
        );
        let token = serde_json::to_vec(&fixture("token_invalid_grant.json")).unwrap();
        assert!(matches!(
            oauth_verdict(StatusCode::BAD_REQUEST, &HeaderMap::new(), &token),
            Verdict::Fatal(m) if m.contains("invalid_grant") && m.contains("re-authorize")
        ));
    }

    #[test]
    fn contact_mapping_starts_from_contact_defaults() {
        let cfg: SalesforceConfig = toml::from_str(
            r#"name = "sf"
client_id = "a"
client_secret = "b"
refresh_token = "c"
objects = ["Lead", "Contact"]
[contact_fields]
vendor_score = "Contact_Score__c"
"#,
        )
        .unwrap();
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
        let contact = cfg.fields_of(SalesforceObject::Contact, "EUR");
        assert_eq!(contact.company, "Account.Name");
        assert_eq!(contact.vendor_score, "Contact_Score__c");
        assert_eq!(contact.lead_status, "");
        assert_eq!(
            cfg.fields_of(SalesforceObject::Lead, "EUR").company,
            "Company"
        );
        let nested =
            serde_json::json!({"Id": "003x", "Account": {"attributes": {}, "Name": "Acme"}});
        let row = decode_lead(&nested, &contact, &PersonalDataHasher::new(b"k")).unwrap();
        assert_eq!(row.company.as_deref(), Some("Acme"));

        let bad: SalesforceConfig = toml::from_str(
            r#"name = "sf"
client_id = "a"
client_secret = "b"
refresh_token = "c"
objects = ["Lead", "Lead"]
batch_size = 50
[contact_fields]
nope = "X"
"#,
        )
        .unwrap();
        let keys: Vec<&str> = bad.check().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["batch_size", "objects", "contact_fields"]);
    }

    #[test]
    fn firmographics_and_custom_fields_decode_typed_with_their_currency() {
        use crate::normalize::CustomValue;
        let cfg: SalesforceConfig = toml::from_str(
            r#"name = "sf"
client_id = "a"
client_secret = "b"
refresh_token = "c"
currency = "USD"
[custom_properties]
icp_tier = { property = "ICP_Tier__c", type = "string" }
seats = { field = "Seats_Requested__c", type = "number" }
trial = { property = "Trial_Started_At__c", type = "timestamp" }
"#,
        )
        .unwrap();
        assert!(cfg.check().is_empty(), "{:?}", cfg.check());
        let fields = cfg.fields_of(SalesforceObject::Lead, "EUR");
        let select = fields.select_list();
        for f in [
            "Industry",
            "NumberOfEmployees",
            "AnnualRevenue",
            "ICP_Tier__c",
            "Seats_Requested__c",
        ] {
            assert!(select.contains(&f), "{f} in {select:?}");
        }
        let hasher = PersonalDataHasher::new(b"k");
        let record = serde_json::json!({
            "Id": "00Q1", "Industry": "Technology", "NumberOfEmployees": 120,
            "AnnualRevenue": 1.25E7, "ICP_Tier__c": "A", "Seats_Requested__c": 12.0,
            "Trial_Started_At__c": "2026-11-02T10:00:00.000+0000"
        });
        let row = decode_lead(&record, &fields, &hasher).unwrap();
        assert_eq!(row.industry.as_deref(), Some("Technology"));
        assert_eq!(row.employee_count, Some(120));
        // 12,500,000.000000 exactly, from a JSON double.
        assert_eq!(row.annual_revenue, Some(12_500_000_000_000));
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("USD"));
        assert_eq!(
            row.custom,
            vec![
                ("icp_tier".to_string(), CustomValue::Str("A".into())),
                ("seats".to_string(), CustomValue::Number(12.0)),
                // 2026-11-02T10:00:00Z
                (
                    "trial".to_string(),
                    CustomValue::Timestamp(1_793_613_600_000_000)
                ),
            ]
        );
        // The reporting currency when the source names none; the record's own code when
        // mapped; no currency without a revenue.
        let mut plain = cfg.clone();
        plain.currency = None;
        let eur = plain.fields_of(SalesforceObject::Lead, "EUR");
        let row = decode_lead(&record, &eur, &hasher).unwrap();
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("EUR"));
        let mut multi = eur.clone();
        multi.annual_revenue_currency = "CurrencyIsoCode".into();
        let mut with_code = record.clone();
        with_code["CurrencyIsoCode"] = serde_json::json!("GBP");
        let row = decode_lead(&with_code, &multi, &hasher).unwrap();
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("GBP"));
        let mut none = record.clone();
        none["AnnualRevenue"] = Value::Null;
        let row = decode_lead(&none, &eur, &hasher).unwrap();
        assert_eq!(
            (row.annual_revenue, row.annual_revenue_currency),
            (None, None)
        );
        // A value not of its declared type rejects the record, naming the field.
        let mut bad = record.clone();
        bad["Seats_Requested__c"] = serde_json::json!("many");
        let reason = decode_lead(&bad, &fields, &hasher).unwrap_err();
        assert!(
            reason.contains("Seats_Requested__c: `many` is not a number"),
            "{reason}"
        );
        // Contacts read firmographics from their Account, and keep only their own custom
        // fields (none configured here).
        let contact = cfg.fields_of(SalesforceObject::Contact, "EUR");
        assert_eq!(contact.industry, "Account.Industry");
        assert!(contact.custom.is_empty());
        let bad_currency: SalesforceConfig =
            toml::from_str("name = \"sf\"\nclient_id = \"a\"\nclient_secret = \"b\"\nrefresh_token = \"c\"\ncurrency = \"usd\"").unwrap();
        assert_eq!(bad_currency.check()[0].0, "currency");
    }

    #[test]
    fn selects_each_mapped_field_once() {
        let fields = SalesforceFields::default();
        let list = fields.select_list();
        assert_eq!(&list[..3], &["Id", "SystemModstamp", "IsDeleted"]);
        assert_eq!(list.iter().filter(|f| **f == "SystemModstamp").count(), 1);
        assert!(list.contains(&"Status") && list.contains(&"ConvertedDate"));
    }

    #[test]
    fn a_batch_of_another_object_is_not_accepted() {
        let batch =
            br#"{"done":true,"records":[{"attributes":{"type":"Lead","url":"/x"},"Id":"1"}]}"#;
        assert!(records_belong(batch, "Lead").is_ok());
        assert!(records_belong(batch, "Contact").is_err());
        assert!(records_belong(br#"{"done":true,"records":[]}"#, "Contact").is_ok());
    }
}
