//! The HubSpot twin, under `/hubspot`: the contacts list and properties (`list.rs`) and the
//! contacts search (`search.rs`), both answering with records written by `record.rs`, with the admin routes that set its limits and redate a
//! contact. Its simulated edits and limits live with Salesforce's in `crm.rs`.

mod list;
mod record;
mod search;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::admin;
use super::data::SandboxData;
use super::twin::Twin;

pub use list::HUBSPOT_TOKEN;
pub use search::SEARCH_CEILING;

/// The HubSpot twin.
pub(crate) const TWIN: Twin = Twin {
    prefixes: &["/hubspot"],
    routes,
    env: &[("HUBSPOT_TOKEN", HUBSPOT_TOKEN)],
    terse_429: None,
};

fn routes() -> Router<Arc<SandboxData>> {
    Router::new()
        .route(list::CONTACTS_PATH, get(list::list_contacts))
        .route(list::PROPERTIES_PATH, get(list::list_properties))
        .route(search::SEARCH_PATH, post(search::search_contacts))
        .route("/_admin/crm/hubspot_limits", post(admin::hubspot_limits))
        .route("/_admin/crm/hubspot_redate", post(admin::hubspot_redate))
}
