//! The `leads` columns a CRM maps, declared once: each column's key, its reading rule and
//! its docs. From that one list come the per-column lookups the connectors request and
//! decode by ([`LeadField`]) and the one reading of a record into a `leads` row
//! ([`LeadValues`]). Each CRM declares its own job-file mapping table, with its default
//! field per column, in its own module through [`crm_fields!`] (HubSpot's
//! `HubspotProperties`, Salesforce's `SalesforceFields`); a key that is no column here does
//! not compile. Vendor quirks (Salesforce's `IsConverted`, HubSpot's `createdAt` fallback,
//! currencies, custom properties) stay in the connectors, applied between
//! [`LeadValues::read`] and [`LeadValues::into_row`].

use compact_str::CompactString;

use crate::normalize::parse::{
    JsonLeaf, lower_case, opt_bool, opt_i64, opt_money, opt_small_str, opt_text, opt_timestamp,
    snake_case_compact, trim,
};
use crate::normalize::{CustomValue, LeadRow, PersonalDataHasher};

/// How a mapped column's value is read from the CRM's JSON.
pub(crate) trait Rule {
    /// The column's value.
    type Value: std::fmt::Debug;
    /// Read `value` (absent when unmapped or missing); `name` is the CRM field, for errors.
    fn read<V: JsonLeaf + ?Sized>(value: Option<&V>, name: &str) -> Result<Self::Value, String>;
}

macro_rules! rule {
    ($(#[doc = $doc:literal])* $name:ident: $value:ty = |$v:ident, $n:ident| $read:expr) => {
        $(#[doc = $doc])*
        #[derive(Debug)]
        pub(crate) struct $name;
        impl Rule for $name {
            type Value = $value;
            fn read<V: JsonLeaf + ?Sized>($v: Option<&V>, $n: &str) -> Result<$value, String> {
                $read
            }
        }
    };
}

rule!(
    /// Text; `""` and `null` are no value.
    Text: Option<CompactString> = |v, _name| Ok(opt_small_str(v))
);
rule!(
    /// A label, snake_cased (`PAID_SEARCH` → `paid_search`).
    Label: Option<CompactString> = |v, _name| Ok(opt_text(v).map(|t| snake_case_compact(&t)))
);
rule!(
    /// A timestamp in any documented vendor form, in microseconds.
    Timestamp: Option<i64> = |v, name| opt_timestamp(v, name)
);
rule!(
    /// A boolean, JSON or `"true"`/`"false"`.
    Flag: Option<bool> = |v, name| opt_bool(v, name)
);
rule!(
    /// A whole number, JSON or text.
    Integer: Option<i64> = |v, name| opt_i64(v, name)
);
rule!(
    /// An exact amount in millionths.
    Money: Option<i128> = |v, name| opt_money(v, name)
);

/// Generates, from the one list of columns, everything that is per column (see the module
/// doc), and [`lead_field!`], which turns a column's key into its [`LeadField`].
macro_rules! lead_fields {
    (
        $(
            $(#[doc = $doc:literal])*
            $Variant:ident $key:ident: $rule:ident;
        )*
    ) => {
        /// A `leads` column a CRM can map, in the order properties are requested and
        /// fields selected.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum LeadField {
            $( $(#[doc = $doc])* $Variant, )*
        }

        impl LeadField {
            /// Every column, in declaration order (`field as usize` is its position).
            pub(crate) const ALL: &'static [LeadField] = &[$(LeadField::$Variant),*];
            /// How many there are.
            pub(crate) const COUNT: usize = Self::ALL.len();

            /// The column's key in the job file's mapping tables.
            pub(crate) fn key(self) -> &'static str {
                match self {
                    $( LeadField::$Variant => stringify!($key), )*
                }
            }

            /// The column of a job-file key.
            pub(crate) fn from_key(key: &str) -> Option<LeadField> {
                match key {
                    $( stringify!($key) => Some(LeadField::$Variant), )*
                    _ => None,
                }
            }
        }

        /// One record's mapped columns, each read by its rule (`None` when unmapped).
        #[derive(Debug)]
        pub(crate) struct LeadValues {
            $( $(#[doc = $doc])* pub(crate) $key: <$rule as Rule>::Value, )*
        }

        impl LeadValues {
            /// Read every column through `get` (its value and the CRM field it came from),
            /// in declaration order; the first value that does not read is the reason.
            pub(crate) fn read<'v, 'n, V: JsonLeaf + ?Sized + 'v>(
                get: impl Fn(LeadField) -> (Option<&'v V>, &'n str),
            ) -> Result<LeadValues, String> {
                Ok(LeadValues {
                    $( $key: {
                        let (value, name) = get(LeadField::$Variant);
                        <$rule as Rule>::read(value, name)?
                    }, )*
                })
            }
        }

        /// The [`LeadField`] of a column's key, usable as a pattern: what lets
        /// [`crm_fields!`] refuse, at compile time, a key that is no declared column.
        macro_rules! lead_field {
            $( ($key) => { $crate::sources::lead_fields::LeadField::$Variant }; )*
            ($other:ident) => {
                compile_error!(concat!(
                    "`", stringify!($other), "` is not a `leads` column: the columns a CRM can map ",
                    "are declared in sources/lead_fields.rs"
                ))
            };
        }
        pub(crate) use lead_field;
    };
}

/// Declares a CRM's job-file mapping table, in the CRM's own module: one `key = "Field"`
/// per column its job file can map (`""` leaves it unmapped by default), each key a column
/// declared here (else it does not compile) with an optional doc, then optionally
/// `extra { … }` fields that are no column mapping (`pub name: Type = default,`, usually
/// `#[serde(skip)]`). It generates the struct (serde defaults, `deny_unknown_fields`,
/// schema docs), its `Default` (the declared fields), and the per-column lookups `field`
/// and `field_mut`. A column the CRM cannot fill at all is left out: its job file then has
/// no such key, and `field` gives `""`.
macro_rules! crm_fields {
    (
        $(#[doc = $doc:literal])*
        pub struct $Name:ident {
            $( $(#[doc = $key_doc:literal])* $key:ident = $default:literal, )*
        }
        $(
            extra {
                $( $(#[$extra_meta:meta])* pub $extra:ident: $extra_ty:ty = $extra_default:expr, )*
            }
        )?
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        pub struct $Name {
            $( $(#[doc = $key_doc])* pub $key: String, )*
            $($( $(#[$extra_meta])* pub $extra: $extra_ty, )*)?
        }

        impl Default for $Name {
            /// Each column's declared field.
            fn default() -> Self {
                $Name {
                    $( $key: $default.to_string(), )*
                    $($( $extra: $extra_default, )*)?
                }
            }
        }

        impl $Name {
            /// The field feeding `field`; `""` when unmapped or this CRM has none.
            #[allow(
                unreachable_patterns,
                reason = "a CRM that maps every column leaves no column without a field"
            )]
            pub(crate) fn field(&self, field: $crate::sources::lead_fields::LeadField) -> &str {
                match field {
                    $( $crate::sources::lead_fields::lead_field!($key) => self.$key.as_str(), )*
                    _ => "",
                }
            }

            /// The mapping of `field`, to change it; `None` when this CRM has none.
            #[allow(
                unreachable_patterns,
                reason = "a CRM that maps every column leaves no column without a field"
            )]
            #[allow(
                dead_code,
                reason = "only a CRM that remaps columns in code (Salesforce's Contacts) uses it"
            )]
            pub(crate) fn field_mut(
                &mut self,
                field: $crate::sources::lead_fields::LeadField,
            ) -> Option<&mut String> {
                match field {
                    $( $crate::sources::lead_fields::lead_field!($key) => Some(&mut self.$key), )*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use crm_fields;

lead_fields! {
    /// The e-mail address: kept only as `email_hash` and `email_domain`.
    Email email: Text;
    /// The company's name.
    Company company: Text;
    JobTitle job_title: Text;
    Country country: Text;
    OwnerId owner_id: Text;
    /// Acquisition channel.
    Channel channel: Label;
    CampaignId campaign_id: Text;
    /// Into `lifecycle_stage_raw`.
    LifecycleStage lifecycle_stage: Text;
    /// Salesforce only: when true, the Salesforce connector sets the lifecycle stage to
    /// `converted`.
    IsConverted is_converted: Flag;
    /// Into `lead_status_raw`.
    LeadStatus lead_status: Text;
    VendorScore vendor_score: Integer;
    DemoRequested demo_requested: Flag;
    ContentDownloads content_downloads: Integer;
    WebVisits web_visits: Integer;
    EmailEngagements email_engagements: Integer;
    BudgetConfirmed budget_confirmed: Flag;
    /// `decision_maker`, `influencer` or `none`.
    Authority authority: Label;
    NeedConfirmed need_confirmed: Flag;
    TimelineConfirmed timeline_confirmed: Flag;
    CreatedAt created_at: Timestamp;
    /// The modification time incremental pulls filter on.
    UpdatedAt updated_at: Timestamp;
    MqlAt mql_at: Timestamp;
    SalAt sal_at: Timestamp;
    SalRejectedAt sal_rejected_at: Timestamp;
    RejectionReason rejection_reason: Text;
    SqlAt sql_at: Timestamp;
    OpportunityAt opportunity_at: Timestamp;
    CustomerAt customer_at: Timestamp;
    FirstContactedAt first_contacted_at: Timestamp;
    /// Latest sign of new intent (recycles a rejected or disqualified lead).
    LastIntentAt last_intent_at: Timestamp;
    Industry industry: Text;
    EmployeeCount employee_count: Integer;
    /// In `annual_revenue_currency`, else the source's `currency`.
    AnnualRevenue annual_revenue: Money;
    /// Salesforce only (multi-currency orgs): the currency of `annual_revenue` per record.
    AnnualRevenueCurrency annual_revenue_currency: Text;
}

impl LeadField {
    /// The column's position in [`LeadField::ALL`] and in per-column arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a CRM record gives a `leads` row besides its mapped columns.
#[derive(Debug)]
pub(crate) struct LeadRecord<'a> {
    /// `hubspot`, `salesforce`.
    pub(crate) source_system: &'static str,
    /// The CRM's record id.
    pub(crate) lead_id: CompactString,
    /// Currency of `annual_revenue` when no mapped field gives it.
    pub(crate) currency: Option<&'a str>,
    /// The kept custom properties, decoded.
    pub(crate) custom: Vec<(String, CustomValue)>,
    /// Archived or deleted in the CRM.
    pub(crate) is_deleted: bool,
}

impl LeadValues {
    /// The `leads` row: the e-mail hashed and reduced to its domain, the revenue's currency
    /// the record's own (when mapped) or `record.currency`, and none without a revenue.
    pub(crate) fn into_row(self, record: LeadRecord<'_>, hasher: &PersonalDataHasher) -> LeadRow {
        let email = self.email;
        let annual_revenue_currency = self.annual_revenue.and(
            self.annual_revenue_currency
                .or_else(|| record.currency.map(CompactString::from)),
        );
        LeadRow {
            source_system: record.source_system.into(),
            lead_id: record.lead_id,
            email_hash: email.as_deref().map(|e| hasher.hash(e)),
            email_domain: email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, domain)| CompactString::from(lower_case(trim(domain)))),
            company: self.company,
            job_title: self.job_title,
            country: self.country,
            owner_id: self.owner_id,
            channel: self.channel,
            campaign_id: self.campaign_id,
            lifecycle_stage_raw: self.lifecycle_stage,
            lead_status_raw: self.lead_status,
            vendor_score: self.vendor_score,
            demo_requested: self.demo_requested,
            content_downloads: self.content_downloads,
            web_visits: self.web_visits,
            email_engagements: self.email_engagements,
            budget_confirmed: self.budget_confirmed,
            authority: self.authority,
            need_confirmed: self.need_confirmed,
            timeline_confirmed: self.timeline_confirmed,
            created_at: self.created_at,
            updated_at: self.updated_at,
            mql_at: self.mql_at,
            sal_at: self.sal_at,
            sal_rejected_at: self.sal_rejected_at,
            rejection_reason: self.rejection_reason,
            sql_at: self.sql_at,
            opportunity_at: self.opportunity_at,
            customer_at: self.customer_at,
            first_contacted_at: self.first_contacted_at,
            last_intent_at: self.last_intent_at,
            industry: self.industry,
            employee_count: self.employee_count,
            annual_revenue: self.annual_revenue,
            annual_revenue_currency,
            custom: record.custom,
            is_deleted: record.is_deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::custom::CustomProperties;
    use crate::sources::hubspot::HubspotProperties;
    use crate::sources::salesforce::SalesforceFields;

    #[test]
    fn default_mappings_request_and_select_in_the_declared_order() {
        // The lists the hand-written mappings requested before they were derived from the
        // declaration: the order is the request's, so recorded pages keep matching.
        assert_eq!(
            HubspotProperties::default().requested(&CustomProperties::new()),
            [
                "email",
                "company",
                "jobtitle",
                "country",
                "hubspot_owner_id",
                "hs_analytics_source",
                "utm_campaign",
                "lifecyclestage",
                "hs_lead_status",
                "hubspotscore",
                "demo_requested",
                "num_conversion_events",
                "hs_analytics_num_visits",
                "hs_email_open",
                "budget_confirmed",
                "decision_authority",
                "need_confirmed",
                "timeline_confirmed",
                "createdate",
                "lastmodifieddate",
                "hs_lifecyclestage_marketingqualifiedlead_date",
                "sal_accepted_at",
                "sal_rejected_at",
                "sal_rejection_reason",
                "hs_lifecyclestage_salesqualifiedlead_date",
                "hs_lifecyclestage_opportunity_date",
                "hs_lifecyclestage_customer_date",
                "hs_sa_first_engagement_date",
                "recent_conversion_date",
                "industry",
                "numberofemployees",
                "annualrevenue",
            ]
        );
        assert_eq!(
            SalesforceFields::default().select_list(),
            [
                "Id",
                "SystemModstamp",
                "IsDeleted",
                "Email",
                "Company",
                "Title",
                "Country",
                "OwnerId",
                "LeadSource",
                "Rating",
                "IsConverted",
                "Status",
                "CreatedDate",
                "ConvertedDate",
                "Industry",
                "NumberOfEmployees",
                "AnnualRevenue",
            ]
        );
        assert_eq!(
            SalesforceFields::contact_defaults().select_list(),
            [
                "Id",
                "SystemModstamp",
                "IsDeleted",
                "Email",
                "Account.Name",
                "Title",
                "MailingCountry",
                "OwnerId",
                "LeadSource",
                "CreatedDate",
                "Account.Industry",
                "Account.NumberOfEmployees",
                "Account.AnnualRevenue",
            ]
        );
    }

    #[test]
    fn a_column_one_vendor_cannot_fill_is_no_key_of_the_other() {
        for &field in LeadField::ALL {
            assert_eq!(LeadField::from_key(field.key()), Some(field));
        }
        let hubspot = HubspotProperties::default();
        assert_eq!(hubspot.field(LeadField::IsConverted), "");
        assert_eq!(hubspot.field(LeadField::AnnualRevenueCurrency), "");
        assert_eq!(hubspot.field(LeadField::UpdatedAt), "lastmodifieddate");
        let unknown = toml::from_str::<HubspotProperties>("is_converted = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("is_converted"), "{unknown}");
        let mut salesforce: SalesforceFields =
            toml::from_str("annual_revenue_currency = \"CurrencyIsoCode\"").unwrap();
        assert_eq!(
            salesforce.field(LeadField::AnnualRevenueCurrency),
            "CurrencyIsoCode"
        );
        assert_eq!(salesforce.field(LeadField::Email), "Email", "the default");
        *salesforce.slot("is_converted").unwrap() = "Converted__c".into();
        assert_eq!(salesforce.field(LeadField::IsConverted), "Converted__c");
        assert!(salesforce.slot("custom").is_none() && salesforce.slot("currency").is_none());
    }

    #[test]
    fn a_crm_changes_only_the_columns_it_declares() {
        let mut hubspot = HubspotProperties::default();
        assert!(hubspot.field_mut(LeadField::IsConverted).is_none());
        *hubspot.field_mut(LeadField::Country).unwrap() = "country_code".into();
        assert_eq!(hubspot.field(LeadField::Country), "country_code");
        assert_eq!(hubspot.country, "country_code");
        let mut salesforce = SalesforceFields::contact_defaults();
        *salesforce.field_mut(LeadField::VendorScore).unwrap() = "Score__c".into();
        assert_eq!(salesforce.vendor_score, "Score__c");
        assert_eq!(salesforce.field(LeadField::Company), "Account.Name");
    }

    #[test]
    fn each_column_reads_by_its_rule_and_a_bad_value_names_its_field() {
        let record = serde_json::json!({
            "mail": "Ann@Example.COM ", "src": "PAID_SEARCH", "score": "42", "demo": "true",
            "made": "2026-10-02T10:00:00Z", "revenue": "1.5", "code": "GBP"
        });
        let names = |field: LeadField| match field {
            LeadField::Email => "mail",
            LeadField::Channel => "src",
            LeadField::VendorScore => "score",
            LeadField::DemoRequested => "demo",
            LeadField::CreatedAt => "made",
            LeadField::AnnualRevenue => "revenue",
            LeadField::AnnualRevenueCurrency => "code",
            _ => "",
        };
        let read = |record: &serde_json::Value| {
            LeadValues::read(|field| (record.get(names(field)), names(field)))
        };
        let values = read(&record).unwrap();
        assert_eq!(values.channel.as_deref(), Some("paid_search"));
        assert_eq!(values.vendor_score, Some(42));
        assert_eq!(values.demo_requested, Some(true));
        assert_eq!(values.created_at, Some(1_790_935_200_000_000));
        assert_eq!(values.annual_revenue, Some(1_500_000));
        assert_eq!(values.company, None);
        let hasher = PersonalDataHasher::new(b"k");
        let lead = |currency| LeadRecord {
            source_system: "crm",
            lead_id: "1".into(),
            currency,
            custom: Vec::new(),
            is_deleted: false,
        };
        let row = values.into_row(lead(Some("EUR")), &hasher);
        assert_eq!(row.email_domain.as_deref(), Some("example.com"));
        assert_eq!(row.email_hash, Some(hasher.hash("Ann@Example.COM ")));
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("GBP"));
        let mut plain = record.clone();
        plain["code"] = serde_json::Value::Null;
        let row = read(&plain).unwrap().into_row(lead(Some("EUR")), &hasher);
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("EUR"));
        plain["revenue"] = serde_json::Value::Null;
        let row = read(&plain).unwrap().into_row(lead(Some("EUR")), &hasher);
        assert_eq!(
            row.annual_revenue_currency, None,
            "no currency without a revenue"
        );
        let mut bad = record.clone();
        bad["score"] = serde_json::json!("lots");
        let reason = read(&bad).unwrap_err();
        assert!(reason.contains("score"), "{reason}");
    }
}
