//! The credentials and ids the sandbox's vendor twins accept and serve: bearer tokens,
//! OAuth client ids, secrets and refresh tokens, account and form ids — and [`job_env`], the
//! environment a job file needs to run against the sandbox. A leaf: the shared world
//! (`data.rs`) and every vendor handler read them from here.

/// Bearer token the HubSpot imitation accepts.
pub const HUBSPOT_TOKEN: &str = "sandbox-hubspot-token";

/// OAuth client id the Salesforce imitation accepts.
pub const SALESFORCE_CLIENT_ID: &str = "sandbox-salesforce-client-id";
/// OAuth client secret it accepts.
pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-salesforce-client-secret";
/// Refresh token it accepts.
pub const SALESFORCE_REFRESH_TOKEN: &str = "sandbox-salesforce-refresh-token";

/// OAuth access token (`Authorization: Bearer`) the Google Ads imitation accepts.
pub const GOOGLE_ADS_ACCESS_TOKEN: &str = "sandbox-google-ads-token";
/// `developer-token` header value the Google Ads imitation accepts.
pub const GOOGLE_ADS_DEVELOPER_TOKEN: &str = "sandbox-developer-token";
/// Google Ads accounts served: `(customer id, currency)`.
pub const GOOGLE_ADS_CUSTOMERS: &[(&str, &str)] = &[("1112223334", "EUR"), ("5556667778", "USD")];
/// The manager account of the Google Ads customers; a `login-customer-id` naming any other
/// account is denied.
pub const GOOGLE_ADS_MANAGER_ID: &str = "9990001112";
/// OAuth client id the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_ID: &str = "sandbox-client-id.apps.googleusercontent.com";
/// OAuth client secret the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_CLIENT_SECRET: &str = "sandbox-client-secret";
/// Refresh token the Google token endpoint imitation accepts.
pub const GOOGLE_ADS_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// Bearer token (or `access_token` parameter) the Meta imitation accepts.
pub const META_ACCESS_TOKEN: &str = "sandbox-meta-token";
/// Meta ad accounts served: `(id without act_, currency)`.
pub const META_ACCOUNTS: &[(&str, &str)] =
    &[("101000000000001", "GBP"), ("101000000000002", "USD")];

/// Bearer token the LinkedIn imitation accepts.
pub const LINKEDIN_ACCESS_TOKEN: &str = "sandbox-linkedin-token";
/// LinkedIn sponsored accounts served: `(id, currency)`.
pub const LINKEDIN_ACCOUNTS: &[(&str, &str)] = &[("508123456", "USD"), ("508654321", "EUR")];
/// OAuth client id the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_ID: &str = "sandbox-linkedin-client";
/// OAuth client secret the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_CLIENT_SECRET: &str = "sandbox-linkedin-secret";
/// Refresh token the LinkedIn token endpoint imitation accepts.
pub const LINKEDIN_REFRESH_TOKEN: &str = "sandbox-linkedin-refresh-token";

/// Bearer token the Typeform imitation accepts.
pub const TYPEFORM_TOKEN: &str = "sandbox-typeform-token";
/// The one Typeform form served.
pub const TYPEFORM_FORM_ID: &str = "pulse2026";

/// The SurveyMonkey token the sandbox accepts.
pub const SURVEYMONKEY_TOKEN: &str = "sandbox-surveymonkey-token";
/// The one SurveyMonkey survey the sandbox serves.
pub const SURVEYMONKEY_SURVEY_ID: &str = "318842756";

/// The variables a job file uses to reach a sandbox serving at `base_url`
/// (`http://127.0.0.1:PORT`), with the sandbox's values: its URL
/// (`FUNNELHOUSE_SANDBOX_URL`; vendors live under `/hubspot`, `/google_ads`, …) and every
/// token, client id, client secret and refresh token its twins accept. The hash key is not
/// the sandbox's to give: callers set `FUNNELHOUSE_HASH_KEY` themselves.
pub fn job_env(base_url: &str) -> Vec<(&'static str, String)> {
    let secrets = [
        ("HUBSPOT_TOKEN", HUBSPOT_TOKEN),
        ("GOOGLE_ADS_ACCESS_TOKEN", GOOGLE_ADS_ACCESS_TOKEN),
        ("GOOGLE_ADS_DEVELOPER_TOKEN", GOOGLE_ADS_DEVELOPER_TOKEN),
        ("TYPEFORM_TOKEN", TYPEFORM_TOKEN),
        ("SURVEYMONKEY_TOKEN", SURVEYMONKEY_TOKEN),
        ("SALESFORCE_CLIENT_ID", SALESFORCE_CLIENT_ID),
        ("SALESFORCE_CLIENT_SECRET", SALESFORCE_CLIENT_SECRET),
        ("SALESFORCE_REFRESH_TOKEN", SALESFORCE_REFRESH_TOKEN),
        ("GOOGLE_ADS_REFRESH_TOKEN", GOOGLE_ADS_REFRESH_TOKEN),
        ("GOOGLE_ADS_CLIENT_ID", GOOGLE_ADS_CLIENT_ID),
        ("GOOGLE_ADS_CLIENT_SECRET", GOOGLE_ADS_CLIENT_SECRET),
        ("META_ACCESS_TOKEN", META_ACCESS_TOKEN),
        ("LINKEDIN_ACCESS_TOKEN", LINKEDIN_ACCESS_TOKEN),
        ("LINKEDIN_REFRESH_TOKEN", LINKEDIN_REFRESH_TOKEN),
        ("LINKEDIN_CLIENT_ID", LINKEDIN_CLIENT_ID),
        ("LINKEDIN_CLIENT_SECRET", LINKEDIN_CLIENT_SECRET),
    ];
    std::iter::once(("FUNNELHOUSE_SANDBOX_URL", base_url.to_string()))
        .chain(
            secrets
                .into_iter()
                .map(|(name, value)| (name, value.to_string())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_env_names_every_variable_once_with_the_sandbox_url_first() {
        let env = job_env("http://127.0.0.1:9");
        assert_eq!(
            env[0],
            ("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9".into())
        );
        let names: std::collections::BTreeSet<_> = env.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), env.len(), "a variable is named twice");
        assert!(env.contains(&("SALESFORCE_CLIENT_SECRET", SALESFORCE_CLIENT_SECRET.into())));
        assert!(env.iter().all(|(_, v)| !v.is_empty()));
    }
}
