//! HubSpot CRM v3 contacts → `leads`. The first run syncs fully through the contacts list
//! endpoint (bearer token, `limit`, `properties`, the opaque `after` cursor sent back exactly
//! as received until `paging.next` is absent); later runs search for contacts whose
//! `lastmodifieddate` is at or after the watermark minus a look-back, ascending, and merge
//! them into the table by id. A search cannot page past 10,000 results, so a query that gets
//! there starts again from the last `lastmodifieddate` it read; when more than 10,000
//! contacts share that instant (a bulk import), they are read by ascending numeric
//! `hs_object_id`, each query starting after the largest id read, and the search then goes
//! on after that instant. Every run sweeps the archived list, whose contacts become rows
//! with `is_deleted = true` (archiving does not move `lastmodifieddate`). Every property
//! arrives as a string or null.

mod page;
mod sync;

pub use sync::SEARCH_CEILING;

use serde::Deserialize;
use serde_json::Value;

use super::SourceContext;
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::parse::{
    Scalar, opt_bool, opt_i64, opt_money, opt_str, opt_timestamp, snake_case, timestamp_micros,
};
use crate::normalize::scalar::Fields;
use crate::normalize::{LeadRow, LeadsBuilder, PersonalDataHasher};
use crate::ratelimit::{RateLimitSettings, RateLimiter};
use crate::sink::DatasetOutput;
use page::{Contact, PropertyIndex, column};

/// `[[sources]] kind = "hubspot"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubspotConfig {
    /// Unique source name.
    pub name: String,
    /// API root; the real one by default.
    #[serde(default = "default_base_url")]
    pub base_url: Template,
    /// Private-app or OAuth access token, e.g. `"${HUBSPOT_TOKEN}"`.
    pub token: Template,
    /// Contacts per page (`limit`, at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Contacts per search page (`limit`, at most 200), for incremental runs.
    #[serde(default = "default_search_page_size")]
    pub search_page_size: u32,
    /// Incremental searches start this many minutes before the watermark: the search
    /// index lags behind writes.
    #[serde(default = "default_lookback_minutes")]
    pub lookback_minutes: u32,
    /// Sweep the archived contacts on every run (they become `is_deleted = true` rows).
    #[serde(default = "default_true")]
    pub sweep_archived: bool,
    /// The account's request limits (burst window and daily budget).
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    /// Which HubSpot property feeds each canonical column.
    #[serde(default)]
    pub properties: HubspotProperties,
    /// ISO-4217 currency of `annualrevenue` (the portal's company currency); the job's
    /// `reporting_currency` when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Other contact properties to keep in `leads.custom`, each with its type.
    #[serde(default)]
    pub custom_properties: crate::sources::custom::CustomProperties,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_search_page_size() -> u32 {
    200
}

fn default_lookback_minutes() -> u32 {
    10
}

fn default_true() -> bool {
    true
}

fn default_base_url() -> Template {
    Template::new("https://api.hubapi.com")
}

fn default_page_size() -> u32 {
    100
}

impl HubspotConfig {
    pub(crate) fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.http.check();
        problems.extend(self.rate_limit.check());
        if self.search_page_size == 0 || self.search_page_size > 200 {
            problems.push((
                "search_page_size",
                format!(
                    "{} is out of range: HubSpot search pages hold 1 to 200 contacts",
                    self.search_page_size
                ),
            ));
        }
        if self.properties.updated_at.is_empty() {
            problems.push((
                "properties",
                "updated_at must name a property: incremental search filters on it".to_string(),
            ));
        }
        problems.extend(crate::sources::custom::check(&self.custom_properties));
        if let Some(c) = &self.currency
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            problems.push((
                "currency",
                format!("`{c}` is not an ISO-4217 code like EUR"),
            ));
        }
        if self.page_size == 0 || self.page_size > 100 {
            problems.push((
                "page_size",
                format!(
                    "{} is out of range: HubSpot pages hold 1 to 100 contacts",
                    self.page_size
                ),
            ));
        }
        problems
    }
}

/// HubSpot property names for each canonical `leads` column (custom properties welcome).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HubspotProperties {
    pub email: String,
    pub company: String,
    pub job_title: String,
    pub country: String,
    pub owner_id: String,
    pub channel: String,
    pub campaign_id: String,
    pub lifecycle_stage: String,
    pub lead_status: String,
    pub vendor_score: String,
    pub demo_requested: String,
    pub content_downloads: String,
    pub web_visits: String,
    pub email_engagements: String,
    pub budget_confirmed: String,
    pub authority: String,
    pub need_confirmed: String,
    pub timeline_confirmed: String,
    pub created_at: String,
    pub updated_at: String,
    pub mql_at: String,
    pub sal_at: String,
    pub sal_rejected_at: String,
    pub rejection_reason: String,
    pub sql_at: String,
    pub opportunity_at: String,
    pub customer_at: String,
    pub first_contacted_at: String,
    /// Latest new-intent signal (recycled leads).
    pub last_intent_at: String,
    /// The company's industry.
    pub industry: String,
    /// The company's number of employees (a number property).
    pub employee_count: String,
    /// The company's annual revenue, in the source's `currency`.
    pub annual_revenue: String,
}

impl Default for HubspotProperties {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        HubspotProperties {
            email: s("email"),
            company: s("company"),
            job_title: s("jobtitle"),
            country: s("country"),
            owner_id: s("hubspot_owner_id"),
            channel: s("hs_analytics_source"),
            campaign_id: s("utm_campaign"),
            lifecycle_stage: s("lifecyclestage"),
            lead_status: s("hs_lead_status"),
            vendor_score: s("hubspotscore"),
            demo_requested: s("demo_requested"),
            content_downloads: s("num_conversion_events"),
            web_visits: s("hs_analytics_num_visits"),
            email_engagements: s("hs_email_open"),
            budget_confirmed: s("budget_confirmed"),
            authority: s("decision_authority"),
            need_confirmed: s("need_confirmed"),
            timeline_confirmed: s("timeline_confirmed"),
            created_at: s("createdate"),
            updated_at: s("lastmodifieddate"),
            mql_at: s("hs_lifecyclestage_marketingqualifiedlead_date"),
            sal_at: s("sal_accepted_at"),
            sal_rejected_at: s("sal_rejected_at"),
            rejection_reason: s("sal_rejection_reason"),
            sql_at: s("hs_lifecyclestage_salesqualifiedlead_date"),
            opportunity_at: s("hs_lifecyclestage_opportunity_date"),
            customer_at: s("hs_lifecyclestage_customer_date"),
            first_contacted_at: s("hs_sa_first_engagement_date"),
            last_intent_at: s("recent_conversion_date"),
            industry: s("industry"),
            employee_count: s("numberofemployees"),
            annual_revenue: s("annualrevenue"),
        }
    }
}

impl HubspotProperties {
    /// The property feeding each canonical column, in `page::column` order.
    pub fn columns(&self) -> [&str; page::column::COUNT] {
        [
            &self.email,
            &self.company,
            &self.job_title,
            &self.country,
            &self.owner_id,
            &self.channel,
            &self.campaign_id,
            &self.lifecycle_stage,
            &self.lead_status,
            &self.vendor_score,
            &self.demo_requested,
            &self.content_downloads,
            &self.web_visits,
            &self.email_engagements,
            &self.budget_confirmed,
            &self.authority,
            &self.need_confirmed,
            &self.timeline_confirmed,
            &self.created_at,
            &self.updated_at,
            &self.mql_at,
            &self.sal_at,
            &self.sal_rejected_at,
            &self.rejection_reason,
            &self.sql_at,
            &self.opportunity_at,
            &self.customer_at,
            &self.first_contacted_at,
            &self.last_intent_at,
            &self.industry,
            &self.employee_count,
            &self.annual_revenue,
        ]
    }

    /// Every property to request (the canonical columns' and the kept custom ones), in a
    /// stable order, without duplicates.
    pub fn requested<'a>(
        &'a self,
        custom: &'a crate::sources::custom::CustomProperties,
    ) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::with_capacity(page::column::COUNT + custom.len());
        let kept = custom.iter().map(|(name, p)| p.property(name));
        for p in self.columns().into_iter().chain(kept) {
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// State stream of the contacts watermark (`lastmodifieddate`, RFC 3339 with ms).
const STREAM: &str = "contacts";
/// State stream recording whether the last full sync was cut short by the daily limit.
const FULL_SYNC_STREAM: &str = "contacts_full_sync";

/// Pull contacts into `out`: the full list the first time, then an incremental search from
/// the watermark; then the archived sweep. A daily rate limit ends the pull early without
/// failing it: what was pulled commits and the watermark moves to the last record read
/// (search pages ascend by modification time), so the next run resumes from there.
pub async fn pull(
    cfg: &HubspotConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut DatasetOutput<LeadsBuilder>,
) -> Result<()> {
    let session = sync::Session {
        cfg,
        base_url,
        token,
        ctx,
        limiter: RateLimiter::new(&cfg.rate_limit).reporting_to(ctx.http.stats()),
        index: PropertyIndex::new(&cfg.properties, &cfg.custom_properties)
            .with_currency(cfg.currency.as_deref().unwrap_or(&ctx.reporting_currency)),
    };
    if !cfg.custom_properties.is_empty() && !ctx.pages.is_replay() {
        session.check_custom_properties(out.job()).await?;
    }
    let started_ms = chrono::Utc::now().timestamp_millis();
    let watermark = ctx
        .previous
        .watermark(STREAM)
        .and_then(|w| opt_timestamp(Some(&Value::String(w.to_string())), STREAM).ok()?)
        .map(|micros| micros.div_euclid(1_000));
    let (progress, full) = match watermark {
        Some(wm) => {
            out.merge_with_previous();
            let from = wm - i64::from(cfg.lookback_minutes) * 60_000;
            (session.search(from, out).await?, false)
        }
        None => {
            // A full sync cut short last time left a partial table: merge into it.
            if ctx.previous.watermark(FULL_SYNC_STREAM) == Some("incomplete") {
                out.merge_with_previous();
            }
            (session.list(false, out).await?, true)
        }
    };
    let mut stopped = progress.stopped.clone();
    if stopped.is_none() && cfg.sweep_archived {
        stopped = session.list(true, out).await?.stopped;
    }
    let format_ms = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    };
    if full {
        if progress.stopped.is_some() {
            ctx.advance(FULL_SYNC_STREAM, "incomplete".into());
        } else {
            ctx.advance(FULL_SYNC_STREAM, "complete".into());
            // Contacts changed during the listing may have been listed before the change.
            if let Some(w) = progress
                .newest_ms
                .map(|n| n.min(started_ms))
                .and_then(format_ms)
            {
                ctx.advance(STREAM, w);
            }
        }
    } else if let Some(w) = progress
        .newest_ms
        .filter(|n| watermark.is_some_and(|wm| *n > wm))
        .and_then(format_ms)
    {
        ctx.advance(STREAM, w);
    }
    if let Some(reason) = stopped {
        let next_midnight = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().to_rfc3339())
            .unwrap_or_default();
        tracing::warn!(source = %ctx.source_name, %reason, resets = %next_midnight,
            "HubSpot daily request limit reached: committing what was pulled; the limit resets at midnight in the account's time zone (next UTC midnight shown), and the next run resumes from the watermark");
        ctx.warn(format!(
            "stopped early by the daily request limit ({reason}); what was pulled is committed and the next run resumes from the watermark"
        ));
    }
    Ok(())
}

/// One contact as a `leads` row, or why not; and its `lastmodifieddate` (else
/// `updatedAt`) in epoch ms whether or not it decodes, for the watermark.
pub fn decode_contact(
    contact: &Contact<'_>,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> (std::result::Result<LeadRow, String>, Option<i64>) {
    let Contact::Record {
        id,
        properties,
        created_at: created_at_member,
        updated_at: updated_at_member,
        archived,
    } = contact
    else {
        return (Err("contact is not a JSON object".into()), None);
    };
    let none = Fields::Other(Scalar::Null);
    let fields = properties.as_ref().unwrap_or(&none);
    let values = index.resolve(fields);
    let modified_ms = values[column::UPDATED_AT]
        .and_then(Scalar::as_str)
        .or_else(|| updated_at_member.as_ref().and_then(Scalar::as_str))
        .and_then(|t| timestamp_micros(t).ok())
        .map(|micros| micros.div_euclid(1_000));
    let row = (|| {
        let id = match id {
            Some(Scalar::Str(s)) if !s.is_empty() => s.to_string(),
            Some(Scalar::Number(n)) => n.to_string(),
            _ => return Err("contact has no `id`".to_string()),
        };
        if !matches!(properties, Some(Fields::Object(_))) {
            return Err(format!("contact {id} has no `properties` object"));
        }
        let get = |column: usize| values[column];
        let name = |column: usize| index.name(column);
        let ts = |column: usize| opt_timestamp(get(column), name(column));
        let int = |column: usize| opt_i64(get(column), name(column));
        let flag = |column: usize| opt_bool(get(column), name(column));
        let text = |column: usize| opt_str(get(column));
        let email = text(column::EMAIL);
        let created_at = match ts(column::CREATED_AT)? {
            Some(t) => Some(t),
            None => opt_timestamp(created_at_member.as_ref(), "createdAt")?,
        };
        let updated_at = match ts(column::UPDATED_AT)? {
            Some(t) => Some(t),
            None => opt_timestamp(updated_at_member.as_ref(), "updatedAt")?,
        };
        let annual_revenue = opt_money(get(column::ANNUAL_REVENUE), name(column::ANNUAL_REVENUE))?;
        Ok(LeadRow {
            source_system: "hubspot".into(),
            lead_id: id,
            email_hash: email.as_deref().map(|e| hasher.hash(e)),
            email_domain: email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, domain)| domain.trim().to_lowercase()),
            company: text(column::COMPANY),
            job_title: text(column::JOB_TITLE),
            country: text(column::COUNTRY),
            owner_id: text(column::OWNER_ID),
            channel: text(column::CHANNEL).map(|c| snake_case(&c)),
            campaign_id: text(column::CAMPAIGN_ID),
            lifecycle_stage_raw: text(column::LIFECYCLE_STAGE),
            lead_status_raw: text(column::LEAD_STATUS),
            vendor_score: int(column::VENDOR_SCORE)?,
            demo_requested: flag(column::DEMO_REQUESTED)?,
            content_downloads: int(column::CONTENT_DOWNLOADS)?,
            web_visits: int(column::WEB_VISITS)?,
            email_engagements: int(column::EMAIL_ENGAGEMENTS)?,
            budget_confirmed: flag(column::BUDGET_CONFIRMED)?,
            authority: text(column::AUTHORITY).map(|a| snake_case(&a)),
            need_confirmed: flag(column::NEED_CONFIRMED)?,
            timeline_confirmed: flag(column::TIMELINE_CONFIRMED)?,
            created_at,
            updated_at,
            mql_at: ts(column::MQL_AT)?,
            sal_at: ts(column::SAL_AT)?,
            sal_rejected_at: ts(column::SAL_REJECTED_AT)?,
            rejection_reason: text(column::REJECTION_REASON),
            sql_at: ts(column::SQL_AT)?,
            opportunity_at: ts(column::OPPORTUNITY_AT)?,
            customer_at: ts(column::CUSTOMER_AT)?,
            first_contacted_at: ts(column::FIRST_CONTACTED_AT)?,
            last_intent_at: ts(column::LAST_INTENT_AT)?,
            industry: text(column::INDUSTRY),
            employee_count: int(column::EMPLOYEE_COUNT)?,
            annual_revenue,
            annual_revenue_currency: annual_revenue
                .and_then(|_| index.currency())
                .map(str::to_string),
            custom: crate::sources::custom::decode_all(index.custom(), |p| fields.get(p))?,
            is_deleted: matches!(archived, Some(Scalar::Bool(true))),
        })
    })();
    (row, modified_ms)
}

/// The record as it may be kept in `_rejects`: the e-mail (property `email_property`)
/// replaced by its keyed hash.
pub(super) fn redact(record: &Value, email_property: &str, hasher: &PersonalDataHasher) -> Value {
    let mut copy = record.clone();
    if let Some(Value::String(email)) = copy.pointer_mut(&format!("/properties/{email_property}")) {
        *email = format!("hmac:{}", hasher.hash(email));
    }
    for name in ["firstname", "lastname", "phone", "mobilephone"] {
        if let Some(v) = copy.pointer_mut(&format!("/properties/{name}")) {
            *v = Value::Null;
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_string_properties_and_rejects_bad_dates() {
        let hasher = PersonalDataHasher::new(b"k");
        let props = HubspotProperties::default();
        let record = json!({
            "id": "101", "archived": false,
            "createdAt": "2026-10-01T10:00:00.000Z", "updatedAt": "2026-10-02T10:00:00Z",
            "properties": {
                "email": "Ann@Example.com", "hubspotscore": "42", "demo_requested": "true",
                "hs_analytics_source": "PAID_SEARCH", "utm_campaign": "", "lifecyclestage": "marketingqualifiedlead",
                "createdate": "2026-10-01T10:00:00Z",
                "hs_lifecyclestage_marketingqualifiedlead_date": "2026-10-03T08:30:00.500Z"
            }
        });
        let decode = |record: &Value| {
            let text = record.to_string();
            let contact: Contact<'_> = serde_json::from_str(&text).unwrap();
            let mut index =
                PropertyIndex::new(&props, &crate::sources::custom::CustomProperties::new());
            decode_contact(&contact, &mut index, &hasher)
        };
        let (row, modified_ms) = decode(&record);
        let row = row.unwrap();
        assert_eq!(modified_ms, Some(1_790_935_200_000), "updatedAt, in ms");
        assert_eq!(row.lead_id, "101");
        assert_eq!(
            row.email_hash.as_deref(),
            Some(hasher.hash("ann@example.com").as_str())
        );
        assert_eq!(row.email_domain.as_deref(), Some("example.com"));
        assert_eq!(row.vendor_score, Some(42));
        assert_eq!(row.demo_requested, Some(true));
        assert_eq!(row.channel.as_deref(), Some("paid_search"));
        assert_eq!(row.campaign_id, None, "\"\" means null");
        assert_eq!(row.mql_at, Some(1_791_016_200_500_000));
        assert_eq!(
            row.updated_at,
            Some(1_790_935_200_000_000),
            "falls back to updatedAt"
        );

        let mut bad = record.clone();
        bad["properties"]["createdate"] = json!("not-a-date");
        let reason = decode(&bad).0.unwrap_err();
        assert!(
            reason.contains("createdate") && reason.contains("not-a-date"),
            "{reason}"
        );
        for (broken, why) in [
            (json!({"properties": {}}), "no `id`"),
            (
                json!({"id": 7, "properties": "x"}),
                "contact 7 has no `properties` object",
            ),
            (json!("text"), "not a JSON object"),
        ] {
            let reason = decode(&broken).0.unwrap_err();
            assert!(reason.contains(why), "{reason}");
        }
        let kept = redact(&bad, &props.email, &hasher);
        assert!(!kept.to_string().contains("Ann@Example.com"));
    }

    #[test]
    fn firmographics_and_custom_properties_decode_in_the_portal_currency() {
        use crate::normalize::CustomValue;
        use crate::sources::custom::CustomProperties;
        let hasher = PersonalDataHasher::new(b"k");
        let props = HubspotProperties::default();
        let custom: CustomProperties = toml::from_str(
            "icp_tier = \"string\"\nseats = { property = \"seats_requested\", type = \"number\" }\nis_partner = \"boolean\"",
        )
        .unwrap();
        assert!(props.requested(&custom).ends_with(&[
            "industry",
            "numberofemployees",
            "annualrevenue",
            "icp_tier",
            "is_partner",
            "seats_requested"
        ]));
        let record = json!({"id": "7", "properties": {
            "industry": "COMPUTER_SOFTWARE", "numberofemployees": "250",
            "annualrevenue": "31250000.5", "icp_tier": "A", "seats_requested": "40",
            "is_partner": ""
        }});
        let text = record.to_string();
        let contact: Contact<'_> = serde_json::from_str(&text).unwrap();
        let mut index = PropertyIndex::new(&props, &custom).with_currency("USD");
        let row = decode_contact(&contact, &mut index, &hasher).0.unwrap();
        assert_eq!(row.industry.as_deref(), Some("COMPUTER_SOFTWARE"));
        assert_eq!(row.employee_count, Some(250));
        assert_eq!(row.annual_revenue, Some(31_250_000_500_000));
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("USD"));
        // `is_partner` is cleared (""): no entry.
        assert_eq!(
            row.custom,
            vec![
                ("icp_tier".to_string(), CustomValue::Str("A".into())),
                ("seats".to_string(), CustomValue::Number(40.0)),
            ]
        );
        let bad = json!({"id": "8", "properties": {"annualrevenue": "lots"}}).to_string();
        let contact: Contact<'_> = serde_json::from_str(&bad).unwrap();
        let reason = decode_contact(&contact, &mut index, &hasher).0.unwrap_err();
        assert!(reason.contains("annualrevenue"), "{reason}");
    }
}
