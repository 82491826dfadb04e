//! The registry of source kinds: the one list of kinds ([`registry!`] below) of the configs
//! that implement [`SourceKind`] (declared in `kind.rs`, implemented beside each connector). The list generates the closed [`SourceConfig`] enum, the kind
//! names a job file may use, the loader's dispatch on `kind`, the job-file schema and the
//! pull dispatch; adding a vendor is one line here.

use super::kind::{ReadKind, SourceKind};
use super::{
    Outputs, ResolvedSecrets, SourceContext, costs::CostsConfig, google_ads::GoogleAdsConfig,
    hubspot::HubspotConfig, intent::IntentConfig, linkedin_ads::LinkedinAdsConfig,
    meta_ads::MetaAdsConfig, salesforce::SalesforceConfig, surveymonkey::SurveyMonkeyConfig,
    typeform::TypeformConfig,
};
use crate::config::Template;
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::Dataset;

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident($config:ty), )+) => {
        /// One `[[sources]]` entry, by kind.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant, reason = "a handful per job, built once")]
        pub enum SourceConfig {
            $( $(#[$doc])* $variant($config), )+
        }

        /// Every source kind a job file may name in `kind = "…"`.
        pub const SOURCE_KINDS: &[&str] = &[$( <$config as SourceKind>::KIND, )+];

        impl SourceConfig {
            /// The source's unique name within the job.
            pub fn name(&self) -> &str {
                match self { $( SourceConfig::$variant(c) => c.name(), )+ }
            }

            /// The `kind` it was declared with.
            pub fn kind(&self) -> &'static str {
                match self { $( SourceConfig::$variant(_) => <$config as SourceKind>::KIND, )+ }
            }

            /// The dataset its rows fill.
            pub fn dataset(&self) -> Dataset {
                match self { $( SourceConfig::$variant(_) => <$config as SourceKind>::DATASET, )+ }
            }

            /// Whether its base URL may be a path relative to the job file.
            pub fn url_is_path(&self) -> bool {
                match self {
                    $( SourceConfig::$variant(_) => <$config as SourceKind>::URL_IS_PATH, )+
                }
            }

            /// Whether it can re-pull a date range (see [`SourceKind::SUPPORTS_BACKFILL`]).
            pub fn supports_backfill(&self) -> bool {
                match self {
                    $( SourceConfig::$variant(_) => <$config as SourceKind>::SUPPORTS_BACKFILL, )+
                }
            }

            /// The vendor base URL template.
            pub fn base_url(&self) -> &Template {
                match self { $( SourceConfig::$variant(c) => c.base_url(), )+ }
            }

            /// The keys that must hold an `http(s)://` URL (see [`SourceKind::http_urls`]).
            pub fn http_urls(&self) -> Vec<(&'static str, &Template)> {
                match self { $( SourceConfig::$variant(c) => SourceKind::http_urls(c), )+ }
            }

            /// HTTP settings.
            pub fn http(&self) -> &HttpSettings {
                match self { $( SourceConfig::$variant(c) => SourceKind::http(c), )+ }
            }

            /// Credentials, by key, as templates (resolved per run, never printed).
            pub fn secrets(&self) -> Vec<(&'static str, &Template)> {
                match self { $( SourceConfig::$variant(c) => SourceKind::secrets(c), )+ }
            }

            /// Kind-specific checks: `(key, problem)` pairs.
            pub fn check(&self) -> Vec<(&'static str, String)> {
                match self { $( SourceConfig::$variant(c) => SourceKind::check(c), )+ }
            }

            /// Read a table of kind `kind` through `reader`; `None` for an unknown kind.
            pub fn read(kind: &str, reader: &mut impl ReadKind) -> Option<Option<Self>> {
                $( if kind == <$config as SourceKind>::KIND {
                    return Some(reader.read::<$config>().map(SourceConfig::$variant));
                } )+
                None
            }

            /// Each kind's name and the JSON Schema of its table (without `kind`).
            pub fn schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema)> {
                vec![$( (<$config as SourceKind>::KIND, generator.root_schema_for::<$config>()), )+]
            }

            /// Pull the source into the sink of its dataset among `outputs`; the sink decides
            /// how the rows are stored.
            pub async fn pull<O: Outputs + Send>(
                &self,
                resolved: &ResolvedSecrets,
                ctx: &SourceContext,
                outputs: &mut O,
            ) -> Result<()> {
                match self { $( SourceConfig::$variant(c) => c.pull(resolved, ctx, outputs).await, )+ }
            }
        }
    };
}

// The one list of source kinds, in the order `funnelhouse schema` and messages list them.
registry! {
    /// HubSpot CRM contacts → `leads`.
    Hubspot(HubspotConfig),
    /// Salesforce Leads → `leads`.
    Salesforce(SalesforceConfig),
    /// Google Ads campaign spend → `spend`.
    GoogleAds(GoogleAdsConfig),
    /// Typeform survey responses → `survey_responses`.
    Typeform(TypeformConfig),
    /// SurveyMonkey survey responses → `survey_responses`.
    SurveyMonkey(SurveyMonkeyConfig),
    /// Meta Ads insights → `spend`.
    MetaAds(MetaAdsConfig),
    /// LinkedIn ad analytics → `spend`.
    LinkedinAds(LinkedinAdsConfig),
    /// Non-ad costs from a CSV or JSON file → `costs`.
    Costs(CostsConfig),
    /// Third-party intent signals from a CSV or JSON file → `intent_signals`.
    Intent(IntentConfig),
}
