//! The canonical datasets of design §4, each declared once.

use super::columns::canonical_table;

/// The canonical datasets sources normalize into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// CRM contacts and leads.
    Leads,
    /// Ad platform spend per day and campaign.
    Spend,
    /// Employee survey responses.
    SurveyResponses,
    /// Non-ad marketing and sales costs per month.
    Costs,
    /// Third-party intent signals per company domain or e-mail hash.
    IntentSignals,
}

impl Dataset {
    /// The table (folder) name.
    pub fn table(self) -> &'static str {
        match self {
            Dataset::Leads => "leads",
            Dataset::Spend => "spend",
            Dataset::SurveyResponses => "survey_responses",
            Dataset::Costs => "costs",
            Dataset::IntentSignals => "intent_signals",
        }
    }
}

canonical_table! {
    /// One CRM lead or contact as the CRM currently has it.
    LeadRow, LeadsBuilder, leads_schema {
        /// The CRM: `hubspot`, `salesforce`.
        source_system: SmallStr,
        /// The CRM's record id.
        lead_id: SmallStr,
        /// HMAC-SHA256 of the lower-cased e-mail address.
        email_hash: OptStr,
        /// Domain part of the e-mail address (not personal on its own).
        email_domain: OptSmallStr,
        company: OptSmallStr,
        job_title: OptSmallStr,
        /// ISO-3166 alpha-2 where the CRM gives one.
        country: OptSmallStr,
        owner_id: OptSmallStr,
        /// Acquisition channel, snake_case (`paid_search`, `organic_search`, …).
        channel: OptSmallStr,
        /// Ad campaign id the lead is attributed to.
        campaign_id: OptSmallStr,
        lifecycle_stage_raw: OptSmallStr,
        lead_status_raw: OptSmallStr,
        vendor_score: OptI64,
        demo_requested: OptBool,
        content_downloads: OptI64,
        web_visits: OptI64,
        email_engagements: OptI64,
        budget_confirmed: OptBool,
        /// `decision_maker`, `influencer` or `none`.
        authority: OptSmallStr,
        need_confirmed: OptBool,
        timeline_confirmed: OptBool,
        created_at: OptTs,
        updated_at: OptTs,
        mql_at: OptTs,
        sal_at: OptTs,
        sal_rejected_at: OptTs,
        rejection_reason: OptSmallStr,
        sql_at: OptTs,
        opportunity_at: OptTs,
        customer_at: OptTs,
        first_contacted_at: OptTs,
        /// Latest sign of new intent (a form conversion, a demo request) the CRM recorded;
        /// a rejected or disqualified lead with intent after its rejection is recycled.
        last_intent_at: OptTs,
        /// The company's industry, as the CRM names it (HubSpot `industry`, Salesforce
        /// `Industry`).
        industry: OptSmallStr,
        /// The company's number of employees.
        employee_count: OptI64,
        /// The company's annual revenue, exact, in `annual_revenue_currency`.
        annual_revenue: OptMoney,
        /// ISO-4217 currency of `annual_revenue` (the source's `currency`, by default the
        /// job's reporting currency; Salesforce's `CurrencyIsoCode` when mapped).
        annual_revenue_currency: OptSmallStr,
        /// The CRM properties the source keeps besides the canonical columns, by their
        /// name in the job: `MAP<VARCHAR, STRUCT<string, number, boolean, timestamp>>`,
        /// the field of the declared type set. Unset properties have no entry.
        custom: Custom,
        /// Archived or deleted in the CRM.
        is_deleted: Bool,
    }
}

canonical_table! {
    /// Spend of one campaign on one day.
    SpendRow, SpendBuilder, spend_schema {
        /// Days since 1970-01-01 in the ad account's time zone.
        date: Date,
        /// `google_ads`, `meta_ads`, `linkedin_ads`.
        platform: SmallStr,
        account_id: SmallStr,
        campaign_id: SmallStr,
        campaign_name: OptSmallStr,
        /// Channel, snake_case (`paid_search`, `display`, …).
        channel: OptSmallStr,
        /// ISO-4217 currency of `spend`.
        currency: SmallStr,
        /// Exact amount in `currency`, 6 decimals.
        spend: Money,
        impressions: I64,
        clicks: I64,
    }
}

canonical_table! {
    /// One survey response, scored on the eNPS question.
    SurveyResponseRow, SurveyResponsesBuilder, survey_responses_schema {
        /// `typeform`, `surveymonkey`.
        source_system: SmallStr,
        /// Form or survey id.
        survey_id: SmallStr,
        response_id: SmallStr,
        /// HMAC-SHA256 of the respondent identifier (e-mail, employee id or network id).
        respondent_hash: OptStr,
        submitted_at: OptTs,
        /// The eNPS question's field ref, as configured.
        question_ref: SmallStr,
        /// The eNPS answer; null when not answered or the response is partial.
        score: OptI64,
        /// `completed` or `partial` (partial responses are counted, never scored).
        response_status: OptSmallStr,
        department: OptSmallStr,
        team: OptSmallStr,
        location: OptSmallStr,
        /// Other rating answers the job keeps, as a JSON object `{"ref": score}`.
        extra_scores: OptStr,
        /// Free-text answers the job explicitly keeps, as a JSON object `{"ref": "text"}`.
        kept_text: OptStr,
        /// Grouping dimensions besides department, team and location, from the sources'
        /// `group_questions`, as a JSON object `{"tenure": "2-5 years"}`; null when none.
        groups: OptStr,
    }
}

canonical_table! {
    /// A non-ad marketing or sales cost (salaries, tools, events, agencies) of one month.
    CostRow, CostsBuilder, costs_schema {
        /// First day of the month, as days since 1970-01-01.
        month: Date,
        /// Free-form cost category, as the file names it.
        category: Str,
        /// Channel the cost is attributable to, snake_case; null for overheads.
        channel: OptStr,
        /// ISO-4217 currency of `amount`.
        currency: Str,
        /// Exact amount in `currency`, 6 decimals.
        amount: Money,
    }
}

canonical_table! {
    /// One third-party intent signal (a Bombora-style "Company Surge" row): a company domain
    /// or a person's e-mail hash researching a topic, with a score, on a date.
    IntentSignalRow, IntentSignalsBuilder, intent_signals_schema {
        /// The `intent` source that read it (its name in the job file).
        provider: Str,
        /// Company domain, lower-case, without scheme, `www.` or path; joins `leads.email_domain`.
        domain: OptStr,
        /// Keyed hash of an e-mail address (as `leads.email_hash`); joins `leads.email_hash`.
        email_hash: OptStr,
        /// The day of the signal (the export's date or week start), days since 1970-01-01.
        date: Date,
        /// The researched topic, as the provider names it.
        topic: OptStr,
        /// The provider's score, 0 to 100.
        score: F64,
    }
}
