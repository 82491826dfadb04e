//! Which HubSpot properties a source requests: the job's mapping of the canonical `leads`
//! columns ([`HubspotProperties`], with HubSpot's default property per column) and the kept
//! custom properties.

use crate::sources::custom::CustomProperties;
use crate::sources::lead_fields::{LeadField, crm_fields};

crm_fields! {
    /// HubSpot property names for each canonical `leads` column (custom properties welcome).
    pub struct HubspotProperties {
        email = "email",
        company = "company",
        job_title = "jobtitle",
        country = "country",
        owner_id = "hubspot_owner_id",
        channel = "hs_analytics_source",
        campaign_id = "utm_campaign",
        lifecycle_stage = "lifecyclestage",
        lead_status = "hs_lead_status",
        vendor_score = "hubspotscore",
        demo_requested = "demo_requested",
        content_downloads = "num_conversion_events",
        web_visits = "hs_analytics_num_visits",
        email_engagements = "hs_email_open",
        budget_confirmed = "budget_confirmed",
        authority = "decision_authority",
        need_confirmed = "need_confirmed",
        timeline_confirmed = "timeline_confirmed",
        created_at = "createdate",
        updated_at = "lastmodifieddate",
        mql_at = "hs_lifecyclestage_marketingqualifiedlead_date",
        sal_at = "sal_accepted_at",
        sal_rejected_at = "sal_rejected_at",
        rejection_reason = "sal_rejection_reason",
        sql_at = "hs_lifecyclestage_salesqualifiedlead_date",
        opportunity_at = "hs_lifecyclestage_opportunity_date",
        customer_at = "hs_lifecyclestage_customer_date",
        first_contacted_at = "hs_sa_first_engagement_date",
        /// Latest new-intent signal (recycled leads).
        last_intent_at = "recent_conversion_date",
        /// The company's industry.
        industry = "industry",
        /// The company's number of employees (a number property).
        employee_count = "numberofemployees",
        /// The company's annual revenue, in the source's `currency`.
        annual_revenue = "annualrevenue",
    }
}

impl HubspotProperties {
    /// The property feeding each canonical column, in [`LeadField`] order (`""` where
    /// unmapped, or for a column HubSpot has no property for).
    pub fn columns(&self) -> [&str; LeadField::COUNT] {
        std::array::from_fn(|i| self.field(LeadField::ALL[i]))
    }

    /// Every property to request (the canonical columns' and the kept custom ones), in a
    /// stable order, without duplicates.
    pub fn requested<'a>(&'a self, custom: &'a CustomProperties) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::with_capacity(LeadField::COUNT + custom.len());
        let kept = custom.iter().map(|(name, p)| p.property(name));
        for p in self.columns().into_iter().chain(kept) {
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}
