//! The ad accounts the shared world generates spend for, `(id, currency)` per platform. A
//! leaf: `data.rs` builds the spend from them and the ad twins serve them. Each twin's own
//! tokens and ids live in its module.

/// Google Ads accounts served: `(customer id, currency)`.
pub const GOOGLE_ADS_CUSTOMERS: &[(&str, &str)] = &[("1112223334", "EUR"), ("5556667778", "USD")];

/// Meta ad accounts served: `(id without act_, currency)`.
pub const META_ACCOUNTS: &[(&str, &str)] =
    &[("101000000000001", "GBP"), ("101000000000002", "USD")];

/// LinkedIn sponsored accounts served: `(id, currency)`.
pub const LINKEDIN_ACCOUNTS: &[(&str, &str)] = &[("508123456", "USD"), ("508654321", "EUR")];
