//! HubSpot CRM v3 contacts → `leads`. Full sync through the contacts list endpoint:
//! bearer token, `limit`, `properties`, and the opaque `after` cursor sent back exactly as
//! received until `paging.next` is absent. Every property arrives as a string or null.

use serde::Deserialize;
use serde_json::Value;

use super::{SourceContext, join_url};
use crate::config::{Secret, Template};
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::parse::{opt_bool, opt_i64, opt_str, opt_timestamp, snake_case};
use crate::normalize::{LeadRow, LeadsBuilder, PersonalDataHasher};
use crate::sink::DatasetOutput;

/// `[[sources]] kind = "hubspot"`.
#[derive(Debug, Clone, Deserialize)]
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
    /// Which HubSpot property feeds each canonical column.
    #[serde(default)]
    pub properties: HubspotProperties,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpSettings,
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
#[derive(Debug, Clone, Deserialize)]
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
        }
    }
}

impl HubspotProperties {
    /// Every property to request, in a stable order, without duplicates.
    pub fn requested(&self) -> Vec<&str> {
        let all = [
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
        ];
        let mut out: Vec<&str> = Vec::with_capacity(all.len());
        for p in all {
            if !p.is_empty() && !out.contains(&p.as_str()) {
                out.push(p);
            }
        }
        out
    }
}

/// Pull every contact into `out`.
pub async fn pull(
    cfg: &HubspotConfig,
    base_url: &str,
    token: &Secret,
    ctx: &SourceContext,
    out: &mut DatasetOutput<LeadsBuilder>,
) -> Result<()> {
    let url = join_url(base_url, "crm/v3/objects/contacts");
    let properties = cfg.properties.requested().join(",");
    let mut after: Option<String> = None;
    let mut page = 0u64;
    loop {
        page += 1;
        let mut request_url =
            reqwest::Url::parse(&url).map_err(|e| ctx.protocol(&url, e.to_string()))?;
        request_url
            .query_pairs_mut()
            .append_pair("limit", &cfg.page_size.to_string())
            .append_pair("properties", &properties)
            .append_pair("archived", "false");
        if let Some(cursor) = &after {
            // The cursor is opaque and may already be percent-encoded: append it verbatim.
            let query = format!("{}&after={cursor}", request_url.query().unwrap_or(""));
            request_url.set_query(Some(&query));
        }
        // Through the page channel: landed raw when live, read back when replaying.
        let request = ctx
            .http
            .inner()
            .get(request_url)
            .bearer_auth(token.expose());
        let page_body = ctx.pages.fetch("hubspot/contacts", request).await?;
        let body = ctx.parse_json(&url, &page_body)?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| ctx.protocol(&url, "no `results` array"))?;
        let location = format!("contacts page {page}");
        for record in results {
            match decode_contact(record, &cfg.properties, &ctx.hasher) {
                Ok(row) => out.push(row).await?,
                Err(reason) => out.reject(
                    &location,
                    &redact(record, &cfg.properties, &ctx.hasher),
                    reason,
                ),
            }
        }
        after = match body.pointer("/paging/next/after") {
            Some(Value::String(cursor)) => Some(cursor.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if after.is_none() {
            return Ok(());
        }
    }
}

/// One contact as a `leads` row, or why not.
pub fn decode_contact(
    record: &Value,
    props: &HubspotProperties,
    hasher: &PersonalDataHasher,
) -> std::result::Result<LeadRow, String> {
    let id = match record.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("contact has no `id`".into()),
    };
    let p = record
        .get("properties")
        .filter(|p| p.is_object())
        .ok_or_else(|| format!("contact {id} has no `properties` object"))?;
    let get = |name: &str| if name.is_empty() { None } else { p.get(name) };
    let ts = |name: &str| opt_timestamp(get(name), name);
    let email = opt_str(get(&props.email));
    let created_at = match ts(&props.created_at)? {
        Some(t) => Some(t),
        None => opt_timestamp(record.get("createdAt"), "createdAt")?,
    };
    let updated_at = match ts(&props.updated_at)? {
        Some(t) => Some(t),
        None => opt_timestamp(record.get("updatedAt"), "updatedAt")?,
    };
    Ok(LeadRow {
        source_system: "hubspot".into(),
        lead_id: id,
        email_hash: email.as_deref().map(|e| hasher.hash(e)),
        email_domain: email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, domain)| domain.trim().to_lowercase()),
        company: opt_str(get(&props.company)),
        job_title: opt_str(get(&props.job_title)),
        country: opt_str(get(&props.country)),
        owner_id: opt_str(get(&props.owner_id)),
        channel: opt_str(get(&props.channel)).map(|c| snake_case(&c)),
        campaign_id: opt_str(get(&props.campaign_id)),
        lifecycle_stage_raw: opt_str(get(&props.lifecycle_stage)),
        lead_status_raw: opt_str(get(&props.lead_status)),
        vendor_score: opt_i64(get(&props.vendor_score), &props.vendor_score)?,
        demo_requested: opt_bool(get(&props.demo_requested), &props.demo_requested)?,
        content_downloads: opt_i64(get(&props.content_downloads), &props.content_downloads)?,
        web_visits: opt_i64(get(&props.web_visits), &props.web_visits)?,
        email_engagements: opt_i64(get(&props.email_engagements), &props.email_engagements)?,
        budget_confirmed: opt_bool(get(&props.budget_confirmed), &props.budget_confirmed)?,
        authority: opt_str(get(&props.authority)).map(|a| snake_case(&a)),
        need_confirmed: opt_bool(get(&props.need_confirmed), &props.need_confirmed)?,
        timeline_confirmed: opt_bool(get(&props.timeline_confirmed), &props.timeline_confirmed)?,
        created_at,
        updated_at,
        mql_at: ts(&props.mql_at)?,
        sal_at: ts(&props.sal_at)?,
        sal_rejected_at: ts(&props.sal_rejected_at)?,
        rejection_reason: opt_str(get(&props.rejection_reason)),
        sql_at: ts(&props.sql_at)?,
        opportunity_at: ts(&props.opportunity_at)?,
        customer_at: ts(&props.customer_at)?,
        first_contacted_at: ts(&props.first_contacted_at)?,
        is_deleted: record
            .get("archived")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The record as it may be kept in `_rejects`: the e-mail replaced by its keyed hash.
fn redact(record: &Value, props: &HubspotProperties, hasher: &PersonalDataHasher) -> Value {
    let mut copy = record.clone();
    if let Some(Value::String(email)) = copy.pointer_mut(&format!("/properties/{}", props.email)) {
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
        let row = decode_contact(&record, &props, &hasher).unwrap();
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
        let reason = decode_contact(&bad, &props, &hasher).unwrap_err();
        assert!(
            reason.contains("createdate") && reason.contains("not-a-date"),
            "{reason}"
        );
        let kept = redact(&bad, &props, &hasher);
        assert!(!kept.to_string().contains("Ann@Example.com"));
    }
}
