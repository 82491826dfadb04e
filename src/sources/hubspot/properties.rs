//! Which HubSpot property feeds each canonical `leads` column: the job's mapping
//! ([`HubspotProperties`]) and the columns' fixed positions ([`column`]).

use serde::Deserialize;

use crate::sources::custom::CustomProperties;

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
    pub fn columns(&self) -> [&str; column::COUNT] {
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
    pub fn requested<'a>(&'a self, custom: &'a CustomProperties) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::with_capacity(column::COUNT + custom.len());
        let kept = custom.iter().map(|(name, p)| p.property(name));
        for p in self.columns().into_iter().chain(kept) {
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// Fixed positions of the canonical columns in [`HubspotProperties::columns`].
pub(super) mod column {
    pub(crate) const EMAIL: usize = 0;
    pub(crate) const COMPANY: usize = 1;
    pub(crate) const JOB_TITLE: usize = 2;
    pub(crate) const COUNTRY: usize = 3;
    pub(crate) const OWNER_ID: usize = 4;
    pub(crate) const CHANNEL: usize = 5;
    pub(crate) const CAMPAIGN_ID: usize = 6;
    pub(crate) const LIFECYCLE_STAGE: usize = 7;
    pub(crate) const LEAD_STATUS: usize = 8;
    pub(crate) const VENDOR_SCORE: usize = 9;
    pub(crate) const DEMO_REQUESTED: usize = 10;
    pub(crate) const CONTENT_DOWNLOADS: usize = 11;
    pub(crate) const WEB_VISITS: usize = 12;
    pub(crate) const EMAIL_ENGAGEMENTS: usize = 13;
    pub(crate) const BUDGET_CONFIRMED: usize = 14;
    pub(crate) const AUTHORITY: usize = 15;
    pub(crate) const NEED_CONFIRMED: usize = 16;
    pub(crate) const TIMELINE_CONFIRMED: usize = 17;
    pub(crate) const CREATED_AT: usize = 18;
    pub(crate) const UPDATED_AT: usize = 19;
    pub(crate) const MQL_AT: usize = 20;
    pub(crate) const SAL_AT: usize = 21;
    pub(crate) const SAL_REJECTED_AT: usize = 22;
    pub(crate) const REJECTION_REASON: usize = 23;
    pub(crate) const SQL_AT: usize = 24;
    pub(crate) const OPPORTUNITY_AT: usize = 25;
    pub(crate) const CUSTOMER_AT: usize = 26;
    pub(crate) const FIRST_CONTACTED_AT: usize = 27;
    pub(crate) const LAST_INTENT_AT: usize = 28;
    pub(crate) const INDUSTRY: usize = 29;
    pub(crate) const EMPLOYEE_COUNT: usize = 30;
    pub(crate) const ANNUAL_REVENUE: usize = 31;
    /// How many there are.
    pub(crate) const COUNT: usize = 32;
}
