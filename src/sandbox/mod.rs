//! The sandbox: a local HTTP server imitating the vendor APIs funnelhouse pulls from —
//! HubSpot CRM contacts (`/hubspot`), Google Ads `googleAds:search` (`/google_ads`) and
//! Typeform responses (`/typeform`) — over deterministic synthetic data, with the vendors'
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

mod contacts;
mod data;
mod encoding;
mod faults;
mod gaql;
mod google_ads;
mod hubspot;
mod rng;
mod server;
mod spend;
mod survey;
mod typeform;

#[cfg(test)]
mod tests;

pub use contacts::HUBSPOT_CONTACT_PROPERTIES;
pub use data::{
    GOOGLE_ADS_ACCESS_TOKEN, GOOGLE_ADS_CUSTOMERS, GOOGLE_ADS_DEVELOPER_TOKEN,
    GOOGLE_ADS_PAGE_SIZE, HUBSPOT_TOKEN, SandboxData, SandboxOptions, TYPEFORM_FORM_ID,
    TYPEFORM_TOKEN, Totals,
};
pub use faults::{FaultCounts, FaultProfile, Faults};
pub use server::{
    RunningSandbox, router, router_with_faults, serve, serve_with_faults, start, start_with_faults,
};
