//! One lead's canonical columns as the stage rules and the intent join see them: the row
//! type shared by `stages` (which fills and classifies it) and `intent` (which sets its intent
//! score), kept apart so neither imports the other for it.

use super::config::{CountColumn, DateColumn, Stage};
use crate::normalize::CustomValue;

/// One lead's canonical columns, as the rules see them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lead {
    pub source_system: String,
    pub lead_id: String,
    pub owner_id: Option<String>,
    pub channel: Option<String>,
    pub campaign_id: Option<String>,
    pub country: Option<String>,
    pub job_title: Option<String>,
    pub authority: Option<String>,
    pub lifecycle_stage_raw: Option<String>,
    pub lead_status_raw: Option<String>,
    pub vendor_score: Option<i64>,
    pub demo_requested: Option<bool>,
    pub content_downloads: Option<i64>,
    pub web_visits: Option<i64>,
    pub email_engagements: Option<i64>,
    pub budget_confirmed: Option<bool>,
    pub need_confirmed: Option<bool>,
    pub timeline_confirmed: Option<bool>,
    pub created_at: Option<i64>,
    pub mql_at: Option<i64>,
    pub sal_at: Option<i64>,
    pub sal_rejected_at: Option<i64>,
    pub sql_at: Option<i64>,
    pub opportunity_at: Option<i64>,
    pub customer_at: Option<i64>,
    pub first_contacted_at: Option<i64>,
    pub last_intent_at: Option<i64>,
    pub industry: Option<String>,
    pub employee_count: Option<i64>,
    /// Exact, in millionths of `annual_revenue_currency`.
    pub annual_revenue: Option<i128>,
    pub annual_revenue_currency: Option<String>,
    /// The kept custom properties (`leads.custom`), by their name in the job.
    pub custom: Vec<(String, CustomValue)>,
    /// Joins third-party intent signals by company domain.
    pub email_domain: Option<String>,
    /// Joins third-party intent signals by person.
    pub email_hash: Option<String>,
    /// Third-party intent: the lead's recent signals, decayed by age (see
    /// `super::intent`); `None` without any in the look-back window.
    pub intent_score: Option<f64>,
}

impl Lead {
    /// The value of custom property `name`, when set.
    pub fn custom_value(&self, name: &str) -> Option<&CustomValue> {
        self.custom.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub(super) fn date(&self, column: DateColumn) -> Option<i64> {
        match column {
            DateColumn::CreatedAt => self.created_at,
            DateColumn::MqlAt => self.mql_at,
            DateColumn::SalAt => self.sal_at,
            DateColumn::SalRejectedAt => self.sal_rejected_at,
            DateColumn::SqlAt => self.sql_at,
            DateColumn::OpportunityAt => self.opportunity_at,
            DateColumn::CustomerAt => self.customer_at,
            DateColumn::FirstContactedAt => self.first_contacted_at,
            DateColumn::LastIntentAt => self.last_intent_at,
        }
    }

    pub(super) fn count(&self, column: CountColumn) -> i64 {
        match column {
            CountColumn::ContentDownloads => self.content_downloads,
            CountColumn::WebVisits => self.web_visits,
            CountColumn::EmailEngagements => self.email_engagements,
        }
        .unwrap_or(0)
    }

    /// The CRM's own date for reaching a path stage.
    pub(super) fn vendor_became(&self, stage: Stage) -> Option<i64> {
        match stage {
            Stage::Mql => self.mql_at,
            Stage::Sal => self.sal_at,
            Stage::Sql => self.sql_at.or(self.opportunity_at),
            Stage::Customer => self.customer_at,
            _ => None,
        }
    }
}
