//! Control of the CRM twins between and during runs, over HTTP (`/_admin/crm/…`, for the
//! `funnelhouse sandbox` command) and as methods on [`SandboxData`] (for in-process tests):
//! simulate updates and removals so an incremental run has something to find, set HubSpot's
//! limits, and inject Salesforce faults.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::crm::{HubspotLimits, HubspotRedate, Mutation, MutationReport, SalesforceFaults};
use super::data::SandboxData;

impl SandboxData {
    /// Update `updates` and remove `removals` records in each CRM (HubSpot contacts are
    /// archived, Salesforce leads deleted), all at one new modification time.
    pub fn mutate(&self, mutation: Mutation) -> MutationReport {
        self.crm.mutate(&self.contacts, mutation)
    }

    /// Date one HubSpot contact's last modification `redate.modified_at` (the future
    /// included); its id, or why not.
    pub fn redate_hubspot(&self, redate: &HubspotRedate) -> Result<String, String> {
        let at = chrono::DateTime::parse_from_rfc3339(&redate.modified_at)
            .map_err(|e| format!("modified_at: {e}"))?;
        self.crm
            .redate_hubspot(&self.contacts, redate.index, at.timestamp_millis())
            .ok_or_else(|| format!("no contact at index {}", redate.index))
    }

    /// Enforce these HubSpot limits from now on (the counters restart).
    pub fn set_hubspot_limits(&self, limits: HubspotLimits) {
        self.crm.set_hubspot_limits(limits);
    }

    /// Show these Salesforce behaviours from now on (the call counter restarts).
    pub fn set_salesforce_faults(&self, faults: SalesforceFaults) {
        self.crm.set_salesforce_faults(faults);
    }

    /// HubSpot requests refused with 429, and distinct requests refused more than once.
    pub fn hubspot_refusals(&self) -> (u64, u64) {
        self.crm.refusals()
    }

    /// Salesforce sessions issued (one per token refresh).
    pub fn salesforce_sessions_issued(&self) -> u64 {
        self.crm.sessions_issued()
    }

    /// HubSpot contacts not archived.
    pub fn hubspot_live_contacts(&self) -> usize {
        self.crm.hubspot_live_count(&self.contacts)
    }
}

/// `POST /_admin/crm/mutate` `{"updates": N, "removals": M}`.
pub(crate) async fn mutate(
    State(data): State<Arc<SandboxData>>,
    Json(mutation): Json<Mutation>,
) -> Response {
    Json(data.mutate(mutation)).into_response()
}

/// `POST /_admin/crm/hubspot_redate` `{"index": 3, "modified_at": "2099-01-01T00:00:00Z"}`.
pub(crate) async fn hubspot_redate(
    State(data): State<Arc<SandboxData>>,
    Json(redate): Json<HubspotRedate>,
) -> Response {
    match data.redate_hubspot(&redate) {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(message) => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": message })),
        )
            .into_response(),
    }
}

/// `POST /_admin/crm/hubspot_limits` `{"burst": 10, "interval_ms": 1000, "daily": 500000}`.
pub(crate) async fn hubspot_limits(
    State(data): State<Arc<SandboxData>>,
    Json(limits): Json<HubspotLimits>,
) -> Response {
    data.set_hubspot_limits(limits);
    Json(limits).into_response()
}

/// `POST /_admin/crm/salesforce`
/// `{"api_allocation": 15000, "expire_session_after": 3, "invalidate_locator_at": 1}`.
pub(crate) async fn salesforce_faults(
    State(data): State<Arc<SandboxData>>,
    Json(faults): Json<SalesforceFaults>,
) -> Response {
    data.set_salesforce_faults(faults);
    Json(faults).into_response()
}

/// `GET /_admin/crm/stats`.
pub(crate) async fn stats(State(data): State<Arc<SandboxData>>) -> Response {
    let (refused, refused_repeatedly) = data.hubspot_refusals();
    Json(json!({
        "hubspot_live_contacts": data.hubspot_live_contacts(),
        "hubspot_refused": refused,
        "hubspot_refused_repeatedly": refused_repeatedly,
        "salesforce_sessions_issued": data.salesforce_sessions_issued(),
    }))
    .into_response()
}
