//! The sandbox: a local HTTP server imitating the vendor APIs funnelhouse pulls from —
//! HubSpot CRM contacts, list and search (`/hubspot`), Salesforce OAuth and SOQL over Lead
//! (`/salesforce`), Google Ads `googleAds:search` and `:searchStream` (`/google_ads`, OAuth
//! token endpoint at `/google_oauth/token`), Meta Ads insights (`/meta`), LinkedIn ad
//! analytics (`/linkedin`), Typeform responses (`/typeform`) and SurveyMonkey
//! (`/surveymonkey`) — over deterministic synthetic data, with the vendors'
//! auth, paging, error bodies and traps (opaque cursors, int64 strings, omitted rows,
//! malformed records on demand).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use funnelhouse::sandbox::{self, SandboxOptions};
//! let running = sandbox::start(SandboxOptions::default()).await?;
//! let hubspot_base = format!("{}/hubspot", running.base_url());
//! let expected = running.data.totals();
//! # let _ = (hubspot_base, expected);
//! # Ok(())
//! # }
//! ```
//!
//! The data is a pure function of [`SandboxOptions`]; [`SandboxData::totals`] says what a
//! pipeline should find.
//!
//! Each vendor twin declares itself in its own module (a `TWIN`: prefixes, routes, the job
//! environment it hands out; see `twin.rs`) and is registered by one line in the `TWINS`
//! list of `server.rs`, from which the router, [`job_env`] and the not-found answer are built.

mod accounts;
mod admin;
mod ads;
mod answer;
mod contacts;
mod crm;
mod data;
mod encoding;
mod faults;
mod gaql;
mod google_ads;
mod hubspot;
mod limits;
mod linkedin;
mod meta;
mod property_value;
mod request;
mod rng;
mod salesforce;
mod server;
mod spend;
mod spend_control;
mod survey;
mod surveymonkey;
mod throttle;
mod twin;
mod typeform;

#[cfg(test)]
mod crm_tests;
#[cfg(test)]
mod tests;

pub use accounts::{GOOGLE_ADS_CUSTOMERS, LINKEDIN_ACCOUNTS, META_ACCOUNTS};
pub use contacts::HUBSPOT_CONTACT_PROPERTIES;
pub use crm::{HubspotLimits, HubspotRedate, Mutation, MutationReport, SalesforceFaults};
pub use data::{SandboxData, SandboxOptions, SpendShape, SurveyMonkeyTotals, Totals};
pub use faults::{FaultCounts, FaultProfile, Faults};
pub use google_ads::{
    GOOGLE_ADS_ACCESS_TOKEN, GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET,
    GOOGLE_ADS_DEVELOPER_TOKEN, GOOGLE_ADS_MANAGER_ID, GOOGLE_ADS_PAGE_SIZE,
    GOOGLE_ADS_REFRESH_TOKEN,
};
pub use hubspot::{HUBSPOT_TOKEN, SEARCH_CEILING};
pub use linkedin::{
    LINKEDIN_ACCESS_TOKEN, LINKEDIN_CLIENT_ID, LINKEDIN_CLIENT_SECRET, LINKEDIN_REFRESH_TOKEN,
};
pub use meta::META_ACCESS_TOKEN;
pub use salesforce::{
    SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_LEAD_FIELDS,
    SALESFORCE_REFRESH_TOKEN,
};
pub use server::{
    RunningSandbox, job_env, router, router_with_faults, serve, serve_with_faults, start,
    start_with_faults,
};
pub use spend_control::{SpendControl, SpendFact};
pub use surveymonkey::{
    ENPS_QUESTION_ID as SURVEYMONKEY_ENPS_QUESTION_ID, SURVEYMONKEY_SURVEY_ID, SURVEYMONKEY_TOKEN,
};
pub use typeform::{TYPEFORM_FORM_ID, TYPEFORM_TOKEN};
