//! The HubSpot contact model: who the synthetic leads are and how far each got through the
//! funnel (lifecycle stage, SAL hand-off, stage dates, BANT flags, intent signals).
//!
//! Contact `i` is a pure function of `(seed, i, scale, today)`: nothing per contact is
//! stored, so a page is regenerated on request and a million contacts cost no memory beyond
//! the company and owner tables.

use std::fmt::Write as _;

use super::encoding::{MS_PER_DAY, MS_PER_HOUR};
use super::property_value::PropertyValue;
use super::rng::Rng;

const STREAM_IDENTITY: u64 = 0x1001;
const STREAM_FUNNEL: u64 = 0x1002;
const STREAM_COMPANY: u64 = 0x1003;
const STREAM_OWNER: u64 = 0x1004;
// Streams added later draw apart from the ones above, so existing values stay as they were.
const STREAM_FIRMOGRAPHICS: u64 = 0x1005;
const STREAM_CUSTOM: u64 = 0x1006;

/// How far back contacts are created, before `today`.
pub(crate) const CONTACT_WINDOW_DAYS: i64 = 180;

/// Every contact property the HubSpot imitation serves (request them all with
/// `properties=` + this list joined by commas).
pub const HUBSPOT_CONTACT_PROPERTIES: &[&str] = &[
    "hs_object_id",
    "email",
    "firstname",
    "lastname",
    "company",
    "jobtitle",
    "country",
    "hubspot_owner_id",
    "lifecyclestage",
    "hs_lead_status",
    "hubspotscore",
    "hs_analytics_source",
    "utm_campaign",
    "hs_analytics_num_visits",
    "num_conversion_events",
    "hs_email_open",
    "first_conversion_date",
    "recent_conversion_date",
    "demo_requested",
    "budget_confirmed",
    "need_confirmed",
    "timeline_confirmed",
    "decision_authority",
    "createdate",
    "lastmodifieddate",
    "hs_lifecyclestage_lead_date",
    "hs_lifecyclestage_marketingqualifiedlead_date",
    "hs_lifecyclestage_salesqualifiedlead_date",
    "hs_lifecyclestage_opportunity_date",
    "hs_lifecyclestage_customer_date",
    "sal_accepted_at",
    "sal_rejected_at",
    "sal_rejection_reason",
    "hs_sa_first_engagement_date",
    "industry",
    "numberofemployees",
    "annualrevenue",
    "icp_tier",
    "seats_requested",
    "is_partner",
    "trial_started_at",
];

/// HubSpot's `type` of a served contact property (what `GET /crm/v3/properties/contacts`
/// lists): `string`, `number`, `bool`, `datetime`, `date` or `enumeration`.
pub(crate) fn hubspot_property_type(name: &str) -> &'static str {
    match name {
        "hs_object_id"
        | "hubspotscore"
        | "hs_analytics_num_visits"
        | "num_conversion_events"
        | "hs_email_open"
        | "numberofemployees"
        | "annualrevenue"
        | "seats_requested" => "number",
        "demo_requested" | "budget_confirmed" | "need_confirmed" | "timeline_confirmed"
        | "is_partner" => "bool",
        "lifecyclestage"
        | "hs_lead_status"
        | "hs_analytics_source"
        | "industry"
        | "icp_tier"
        | "decision_authority" => "enumeration",
        n if n.ends_with("date") || n.ends_with("_at") => "datetime",
        _ => "string",
    }
}

/// A contact property of [`HUBSPOT_CONTACT_PROPERTIES`], resolved from its name once per
/// request rather than matched by name for every contact of the page (~40 string
/// comparisons per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HubspotProperty {
    HsObjectId,
    Email,
    FirstName,
    LastName,
    Company,
    JobTitle,
    Country,
    OwnerId,
    LifecycleStage,
    LeadStatus,
    Score,
    AnalyticsSource,
    UtmCampaign,
    NumVisits,
    NumConversionEvents,
    EmailOpens,
    FirstConversionDate,
    RecentConversionDate,
    DemoRequested,
    BudgetConfirmed,
    NeedConfirmed,
    TimelineConfirmed,
    DecisionAuthority,
    CreateDate,
    LastModifiedDate,
    LeadDate,
    MqlDate,
    SqlDate,
    OpportunityDate,
    CustomerDate,
    SalAcceptedAt,
    SalRejectedAt,
    SalRejectionReason,
    FirstEngagementDate,
    Industry,
    NumberOfEmployees,
    AnnualRevenue,
    IcpTier,
    SeatsRequested,
    IsPartner,
    TrialStartedAt,
    /// Not a property the twin serves: `null`, as HubSpot answers for an unknown name.
    Unknown,
}

impl HubspotProperty {
    pub(crate) fn named(name: &str) -> Self {
        match name {
            "hs_object_id" => Self::HsObjectId,
            "email" => Self::Email,
            "firstname" => Self::FirstName,
            "lastname" => Self::LastName,
            "company" => Self::Company,
            "jobtitle" => Self::JobTitle,
            "country" => Self::Country,
            "hubspot_owner_id" => Self::OwnerId,
            "lifecyclestage" => Self::LifecycleStage,
            "hs_lead_status" => Self::LeadStatus,
            "hubspotscore" => Self::Score,
            "hs_analytics_source" => Self::AnalyticsSource,
            "utm_campaign" => Self::UtmCampaign,
            "hs_analytics_num_visits" => Self::NumVisits,
            "num_conversion_events" => Self::NumConversionEvents,
            "hs_email_open" => Self::EmailOpens,
            "first_conversion_date" => Self::FirstConversionDate,
            "recent_conversion_date" => Self::RecentConversionDate,
            "demo_requested" => Self::DemoRequested,
            "budget_confirmed" => Self::BudgetConfirmed,
            "need_confirmed" => Self::NeedConfirmed,
            "timeline_confirmed" => Self::TimelineConfirmed,
            "decision_authority" => Self::DecisionAuthority,
            "createdate" => Self::CreateDate,
            "lastmodifieddate" => Self::LastModifiedDate,
            "hs_lifecyclestage_lead_date" => Self::LeadDate,
            "hs_lifecyclestage_marketingqualifiedlead_date" => Self::MqlDate,
            "hs_lifecyclestage_salesqualifiedlead_date" => Self::SqlDate,
            "hs_lifecyclestage_opportunity_date" => Self::OpportunityDate,
            "hs_lifecyclestage_customer_date" => Self::CustomerDate,
            "sal_accepted_at" => Self::SalAcceptedAt,
            "sal_rejected_at" => Self::SalRejectedAt,
            "sal_rejection_reason" => Self::SalRejectionReason,
            "hs_sa_first_engagement_date" => Self::FirstEngagementDate,
            "industry" => Self::Industry,
            "numberofemployees" => Self::NumberOfEmployees,
            "annualrevenue" => Self::AnnualRevenue,
            "icp_tier" => Self::IcpTier,
            "seats_requested" => Self::SeatsRequested,
            "is_partner" => Self::IsPartner,
            "trial_started_at" => Self::TrialStartedAt,
            _ => Self::Unknown,
        }
    }
}

/// Per company suffix: (HubSpot `industry` value, Salesforce `Industry` picklist value).
const INDUSTRIES: &[(&str, &str)] = &[
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Technology"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Transportation"),
    ("COMPUTER_SOFTWARE", "Technology"),
    ("HOSPITAL_HEALTH_CARE", "Healthcare"),
    ("RESEARCH", "Education"),
    ("FINANCIAL_SERVICES", "Finance"),
    ("INDUSTRIAL_AUTOMATION", "Manufacturing"),
    ("FOOD_BEVERAGES", "Food & Beverage"),
    ("OIL_ENERGY", "Energy"),
    ("COMPUTER_SOFTWARE", "Technology"),
    ("RETAIL", "Retail"),
    ("MEDIA_PRODUCTION", "Media"),
    ("MANAGEMENT_CONSULTING", "Consulting"),
    ("BIOTECHNOLOGY", "Biotechnology"),
    ("TRANSPORTATION_TRUCKING_RAILROAD", "Transportation"),
    ("INSURANCE", "Insurance"),
];

/// Company sizes: (fewest, most employees, weight).
const COMPANY_SIZES: &[((u32, u32), u32)] = &[
    ((1, 9), 15),
    ((10, 49), 25),
    ((50, 199), 25),
    ((200, 499), 15),
    ((500, 1_999), 12),
    ((2_000, 20_000), 8),
];

/// Properties returned when a request names none (HubSpot's default set).
pub(crate) const DEFAULT_PROPERTIES: &[&str] = &[
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
];

/// The `createdate` text of a malformed contact.
pub(crate) const MALFORMED_CREATEDATE: &str = "not-a-date";

/// `(display, e-mail slug)`.
type Name = (&'static str, &'static str);

const FIRST_NAMES: &[Name] = &[
    ("Anna", "anna"),
    ("Ben", "ben"),
    ("Chloé", "chloe"),
    ("David", "david"),
    ("Elif", "elif"),
    ("Felix", "felix"),
    ("Grace", "grace"),
    ("Hannah", "hannah"),
    ("Ivan", "ivan"),
    ("Jürgen", "juergen"),
    ("Karin", "karin"),
    ("Liam", "liam"),
    ("Maria", "maria"),
    ("Noah", "noah"),
    ("Olga", "olga"),
    ("Pedro", "pedro"),
    ("Quinn", "quinn"),
    ("Rosa", "rosa"),
    ("Sven", "sven"),
    ("Tomás", "tomas"),
    ("Ursula", "ursula"),
    ("Viktor", "viktor"),
    ("Wei", "wei"),
    ("Xavier", "xavier"),
    ("Yasmin", "yasmin"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Siobhán", "siobhan"),
    ("Emma", "emma"),
    ("Lucas", "lucas"),
    ("Sofia", "sofia"),
    ("James", "james"),
];

const LAST_NAMES: &[Name] = &[
    ("Schmidt", "schmidt"),
    ("Müller", "mueller"),
    ("Smith", "smith"),
    ("García", "garcia"),
    ("Silva", "silva"),
    ("Dubois", "dubois"),
    ("Rossi", "rossi"),
    ("Nguyen", "nguyen"),
    ("O'Brien", "obrien"),
    ("van der Berg", "vanderberg"),
    ("Kowalski", "kowalski"),
    ("Johansson", "johansson"),
    ("Novak", "novak"),
    ("Fischer", "fischer"),
    ("Martin", "martin"),
    ("Brown", "brown"),
    ("Costa", "costa"),
    ("Weber", "weber"),
    ("Yilmaz", "yilmaz"),
    ("Kim", "kim"),
    ("Patel", "patel"),
    ("Andersen", "andersen"),
    ("Lefèvre", "lefevre"),
    ("Santos", "santos"),
    ("Becker", "becker"),
    ("Taylor", "taylor"),
    ("Moreau", "moreau"),
    ("Hoffmann", "hoffmann"),
];

const COMPANY_PREFIXES: &[Name] = &[
    ("Nordwind", "nordwind"),
    ("Blue Harbor", "blueharbor"),
    ("Kestrel", "kestrel"),
    ("Alder & Finch", "alderfinch"),
    ("Polaris", "polaris"),
    ("Quantum Leaf", "quantumleaf"),
    ("Brightwell", "brightwell"),
    ("Müllerhaus", "muellerhaus"),
    ("Lumen", "lumen"),
    ("Cobalt", "cobalt"),
    ("Meridian", "meridian"),
    ("Sable", "sable"),
    ("Tessellate", "tessellate"),
    ("Granite Peak", "granitepeak"),
    ("Ironbark", "ironbark"),
    ("Juniper", "juniper"),
    ("Larkspur", "larkspur"),
    ("Mistral", "mistral"),
    ("Oakridge", "oakridge"),
    ("Riverbend", "riverbend"),
    ("Saffron", "saffron"),
    ("Tidewater", "tidewater"),
    ("Vantage", "vantage"),
    ("Zephyr", "zephyr"),
    ("Fjord", "fjord"),
    ("Heron", "heron"),
];

const COMPANY_SUFFIXES: &[Name] = &[
    ("Analytics", "analytics"),
    ("Logistics", "logistics"),
    ("Systems", "systems"),
    ("Health", "health"),
    ("Labs", "labs"),
    ("Capital", "capital"),
    ("Robotics", "robotics"),
    ("Foods", "foods"),
    ("Energy", "energy"),
    ("Software", "software"),
    ("Retail", "retail"),
    ("Media", "media"),
    ("Consulting", "consulting"),
    ("Biotech", "biotech"),
    ("Freight", "freight"),
    ("Insurance", "insurance"),
];

const TLDS: &[&str] = &[
    "com", "com", "com", "de", "co.uk", "io", "fr", "nl", "es", "pt",
];

const JOB_TITLES: &[&str] = &[
    "Head of Marketing",
    "Marketing Manager",
    "VP Sales",
    "CFO",
    "CTO",
    "CEO",
    "Founder",
    "Data Analyst",
    "Operations Manager",
    "Procurement Lead",
    "Software Engineer",
    "Product Manager",
    "Revenue Operations Manager",
    "Growth Lead",
    "IT Director",
    "Finance Manager",
    "Consultant",
    "Student",
];

const COUNTRIES: &[(&str, u32)] = &[
    ("DE", 20),
    ("US", 18),
    ("GB", 15),
    ("FR", 8),
    ("NL", 6),
    ("ES", 5),
    ("IT", 5),
    ("PT", 4),
    ("CA", 4),
    ("SE", 3),
    ("PL", 3),
    ("AU", 3),
    ("CH", 3),
    ("AT", 3),
];

/// `hs_analytics_source` values with their share of new contacts.
const SOURCES: &[(&str, u32)] = &[
    ("ORGANIC_SEARCH", 22),
    ("PAID_SEARCH", 20),
    ("DIRECT_TRAFFIC", 14),
    ("PAID_SOCIAL", 12),
    ("EMAIL_MARKETING", 10),
    ("REFERRALS", 10),
    ("SOCIAL_MEDIA", 7),
    ("OFFLINE", 5),
];

const REJECTION_REASONS: &[(&str, u32)] = &[
    ("no_budget", 35),
    ("not_a_fit", 30),
    ("bad_timing", 20),
    ("duplicate", 15),
];

const COMMON_OWNERS: usize = 8;

/// Furthest lifecycle stage reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Subscriber,
    Lead,
    Mql,
    Sql,
    Opportunity,
    Customer,
    Other,
}

impl Stage {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Subscriber => "subscriber",
            Self::Lead => "lead",
            Self::Mql => "marketingqualifiedlead",
            Self::Sql => "salesqualifiedlead",
            Self::Opportunity => "opportunity",
            Self::Customer => "customer",
            Self::Other => "other",
        }
    }
}

/// Outcome of the MQL → sales hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handoff {
    Accepted,
    Rejected,
    Pending,
}

#[derive(Debug, Clone, Copy)]
struct Company {
    prefix: u16,
    suffix: u16,
    tld: u8,
    firmographics: Firmographics,
}

/// What the CRM knows of a contact's company (the same for every contact of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Firmographics {
    /// Index into `INDUSTRIES` (the company suffix's), `None` when unknown.
    industry: Option<u8>,
    pub(crate) employees: Option<u32>,
    /// Whole units of the portal's currency.
    pub(crate) revenue: Option<u64>,
}

impl Firmographics {
    fn draw(seed: u64, index: u64, suffix: u16) -> Self {
        let mut r = Rng::for_record(seed, STREAM_FIRMOGRAPHICS, index);
        let industry = (!r.chance(0.08)).then_some(suffix as u8);
        let (lo, hi) = r.weighted(COMPANY_SIZES);
        let employees = r.range(i64::from(lo), i64::from(hi)) as u32;
        // Revenue per head 60k–250k, rounded to the thousand.
        let per_head = r.range(60, 250) as u64 * 1_000;
        let revenue = (u64::from(employees) * per_head).div_ceil(1_000) * 1_000;
        Firmographics {
            industry,
            employees: (!r.chance(0.1)).then_some(employees),
            revenue: (!r.chance(0.15)).then_some(revenue),
        }
    }

    /// HubSpot's `industry` value.
    pub(crate) fn hubspot_industry(&self) -> Option<&'static str> {
        self.industry.map(|i| INDUSTRIES[usize::from(i)].0)
    }

    /// Salesforce's `Industry` value.
    pub(crate) fn salesforce_industry(&self) -> Option<&'static str> {
        self.industry.map(|i| INDUSTRIES[usize::from(i)].1)
    }
}

/// The custom properties a contact has (HubSpot `icp_tier`, `seats_requested`,
/// `is_partner`, `trial_started_at`; Salesforce `ICP_Tier__c` and so on).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomFields {
    /// `A` (50–1,000 employees), `B` (10–49 or 1,001–5,000), `C`; `None` for some.
    pub(crate) icp_tier: Option<&'static str>,
    pub(crate) seats_requested: Option<u32>,
    pub(crate) is_partner: Option<bool>,
    pub(crate) trial_started_ms: Option<i64>,
}

/// Everything needed to regenerate any contact.
#[derive(Debug)]
pub(crate) struct ContactModel {
    seed: u64,
    count: usize,
    start_ms: i64,
    end_ms: i64,
    malformed_every: usize,
    companies: Vec<Company>,
    owners: Vec<u64>,
    search_campaigns: Vec<u64>,
}

/// One generated contact; timestamps are epoch milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub(crate) id: u64,
    pub(crate) email: String,
    first: &'static str,
    last: &'static str,
    company: Option<String>,
    job_title: Option<&'static str>,
    country: Option<&'static str>,
    owner: Option<u64>,
    pub(crate) stage: Stage,
    lead_status: Option<&'static str>,
    score: i64,
    pub(crate) source: &'static str,
    pub(crate) utm_campaign: Option<u64>,
    visits: i64,
    conversions: i64,
    email_opens: i64,
    first_conversion_ms: Option<i64>,
    recent_conversion_ms: Option<i64>,
    demo_requested: bool,
    budget: Option<bool>,
    need: Option<bool>,
    timeline: Option<bool>,
    authority: Option<&'static str>,
    pub(crate) created_ms: i64,
    created_with_millis: bool,
    pub(crate) malformed: bool,
    pub(crate) modified_ms: i64,
    pub(crate) lead_ms: Option<i64>,
    pub(crate) mql_ms: Option<i64>,
    pub(crate) sql_ms: Option<i64>,
    pub(crate) opportunity_ms: Option<i64>,
    pub(crate) customer_ms: Option<i64>,
    pub(crate) accepted_ms: Option<i64>,
    pub(crate) rejected_ms: Option<i64>,
    pub(crate) rejection_reason: Option<&'static str>,
    pub(crate) first_engagement_ms: Option<i64>,
    pub(crate) firmographics: Firmographics,
    pub(crate) custom: CustomFields,
}

/// The id of contact `index`, the first draw of its identity stream: strictly increasing
/// with gaps, like a portal where some contacts were deleted.
fn draw_id(r: &mut Rng, index: usize) -> u64 {
    101 + 3 * index as u64 + r.below(3)
}

fn tri(r: &mut Rng, p_true: f64, p_false: f64) -> Option<bool> {
    let u = r.f64();
    if u < p_true {
        Some(true)
    } else if u < p_true + p_false {
        Some(false)
    } else {
        None
    }
}

impl ContactModel {
    /// `end_ms` is midnight UTC of `today` (exclusive end of the data).
    pub(crate) fn new(
        seed: u64,
        count: usize,
        end_ms: i64,
        malformed_every: usize,
        search_campaigns: Vec<u64>,
    ) -> Self {
        let company_count = (count / 8).clamp(24, 4_000);
        let companies = (0..company_count as u64)
            .map(|i| {
                let mut r = Rng::for_record(seed, STREAM_COMPANY, i);
                let prefix = r.below(COMPANY_PREFIXES.len() as u64) as u16;
                let suffix = r.below(COMPANY_SUFFIXES.len() as u64) as u16;
                let tld = r.below(TLDS.len() as u64) as u8;
                Company {
                    prefix,
                    suffix,
                    tld,
                    firmographics: Firmographics::draw(seed, i, suffix),
                }
            })
            .collect();
        let mut owners: Vec<u64> = Vec::with_capacity(COMMON_OWNERS);
        let mut r = Rng::for_record(seed, STREAM_OWNER, 0);
        while owners.len() < COMMON_OWNERS {
            let id = 70_000_000 + r.below(29_999_999);
            if !owners.contains(&id) {
                owners.push(id);
            }
        }
        Self {
            seed,
            count,
            start_ms: end_ms - CONTACT_WINDOW_DAYS * MS_PER_DAY,
            end_ms,
            malformed_every,
            companies,
            owners,
            search_campaigns,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn is_malformed(&self, index: usize) -> bool {
        self.malformed_every > 0 && (index + 1).is_multiple_of(self.malformed_every)
    }

    fn company_name(&self, company: Company) -> String {
        format!(
            "{} {}",
            COMPANY_PREFIXES[usize::from(company.prefix)].0,
            COMPANY_SUFFIXES[usize::from(company.suffix)].0
        )
    }

    /// `first.last.id@prefix-suffix.tld`, pushed piece by piece into one string: every
    /// contact of every page served is given its e-mail, and `format!` twice was a tenth of
    /// the sandbox's work in a live pull.
    fn email_address(first: &str, last: &str, id: u64, company: Company) -> String {
        let (prefix, suffix, tld) = (
            COMPANY_PREFIXES[usize::from(company.prefix)].1,
            COMPANY_SUFFIXES[usize::from(company.suffix)].1,
            TLDS[usize::from(company.tld)],
        );
        let mut email = String::with_capacity(
            first.len() + last.len() + 20 + prefix.len() + suffix.len() + tld.len() + 5,
        );
        for piece in [first, ".", last, "."] {
            email.push_str(piece);
        }
        // Writing into a String cannot fail.
        let _ = write!(email, "{id}");
        for piece in ["@", prefix, "-", suffix, ".", tld] {
            email.push_str(piece);
        }
        email
    }

    /// The id (`hs_object_id`) of contact `index`, alone.
    pub(crate) fn id(&self, index: usize) -> u64 {
        let mut r = Rng::for_record(self.seed, STREAM_IDENTITY, index as u64);
        draw_id(&mut r, index)
    }

    /// Id, names, company and e-mail of contact `index` (cheap: used for totals).
    fn identity(&self, index: usize) -> (u64, Name, Name, Company, String) {
        let mut r = Rng::for_record(self.seed, STREAM_IDENTITY, index as u64);
        let id = draw_id(&mut r, index);
        let first = *r.pick(FIRST_NAMES);
        let last = *r.pick(LAST_NAMES);
        let company = *r.pick(&self.companies);
        let email = Self::email_address(first.1, last.1, id, company);
        (id, first, last, company, email)
    }

    /// The e-mail of contact `index`.
    pub(crate) fn email(&self, index: usize) -> String {
        self.identity(index).4
    }

    /// Contact `index` (`index < count`), regenerated from its own random stream.
    pub(crate) fn contact(&self, index: usize) -> Contact {
        let (id, first, last, company, email) = self.identity(index);
        let mut r = Rng::for_record(self.seed, STREAM_FUNNEL, index as u64);
        let end = self.end_ms - 1;
        let span = (self.end_ms - self.start_ms) as f64;
        let n = self.count.max(1) as f64;
        // Creation times rise with the index (HubSpot ids follow creation order).
        let mut created = self.start_ms + ((index as f64 + r.f64()) / n * span) as i64;
        created = created.clamp(self.start_ms, end - MS_PER_HOUR);
        let created_with_millis = !r.chance(0.15);
        if !created_with_millis {
            created -= created % 1_000;
        }

        let source = r.weighted(SOURCES);
        let utm_campaign = (source == "PAID_SEARCH" && !self.search_campaigns.is_empty())
            .then(|| *r.pick(&self.search_campaigns));
        let target = self.target_stage(&mut r, source);

        let mut stage = Stage::Subscriber;
        let (mut lead_ms, mut mql_ms, mut sql_ms, mut opportunity_ms, mut customer_ms) =
            (None, None, None, None, None);
        let (mut accepted_ms, mut rejected_ms, mut rejection_reason, mut first_engagement_ms) =
            (None, None, None, None);
        let mut handoff = None;
        let mut recycled_ms = None;

        if target != Stage::Subscriber {
            let lead = if r.chance(0.2) {
                created + r.range(MS_PER_HOUR, 5 * MS_PER_DAY)
            } else {
                created
            };
            if lead < end {
                stage = Stage::Lead;
                lead_ms = Some(lead);
            }
        }
        if let Some(lead) = lead_ms {
            if target == Stage::Other {
                stage = Stage::Other;
            } else if target >= Stage::Mql {
                let mql = lead + MS_PER_HOUR + (r.exp(5.0) * MS_PER_DAY as f64) as i64;
                if mql < end {
                    stage = Stage::Mql;
                    mql_ms = Some(mql);
                    let outcome = if target >= Stage::Sql {
                        Handoff::Accepted
                    } else {
                        r.weighted(&[
                            (Handoff::Accepted, 48),
                            (Handoff::Rejected, 34),
                            (Handoff::Pending, 18),
                        ])
                    };
                    let decided = mql + handoff_delay(&mut r);
                    match outcome {
                        Handoff::Accepted if decided < end => {
                            accepted_ms = Some(decided);
                            handoff = Some(Handoff::Accepted);
                            first_engagement_ms = engagement_delay(&mut r)
                                .map(|d| decided + d)
                                .filter(|&t| t < end);
                        }
                        Handoff::Rejected if decided < end => {
                            rejected_ms = Some(decided);
                            rejection_reason = Some(r.weighted(REJECTION_REASONS));
                            handoff = Some(Handoff::Rejected);
                            if r.chance(0.25) {
                                let again = decided + r.range(3 * MS_PER_DAY, 40 * MS_PER_DAY);
                                recycled_ms = Some(again).filter(|&t| t < end);
                            }
                            if r.chance(0.4) {
                                stage = Stage::Other;
                            }
                        }
                        _ => handoff = Some(Handoff::Pending),
                    }
                }
            }
        }
        if let (Some(acc), true) = (accepted_ms, target >= Stage::Sql) {
            let after = first_engagement_ms.unwrap_or(acc).max(acc);
            let sql = after + 2 * MS_PER_HOUR + (r.exp(6.0) * MS_PER_DAY as f64) as i64;
            if sql < end {
                stage = Stage::Sql;
                sql_ms = Some(sql);
                let opp = sql + r.range(MS_PER_DAY, 21 * MS_PER_DAY);
                if target >= Stage::Opportunity && opp < end {
                    stage = Stage::Opportunity;
                    opportunity_ms = Some(opp);
                    let won = opp + r.range(7 * MS_PER_DAY, 45 * MS_PER_DAY);
                    if target >= Stage::Customer && won < end {
                        stage = Stage::Customer;
                        customer_ms = Some(won);
                    }
                }
            }
        }

        let late_stage = matches!(stage, Stage::Sql | Stage::Opportunity | Stage::Customer);
        let lead_status = match (stage, handoff) {
            _ if recycled_ms.is_some() => Some("OPEN"),
            (Stage::Subscriber, _) => r.chance(0.3).then_some("NEW"),
            (Stage::Lead, _) => r.weighted(&[
                (Some("NEW"), 35),
                (Some("OPEN"), 25),
                (Some("ATTEMPTED_TO_CONTACT"), 15),
                (Some("IN_PROGRESS"), 5),
                (Some("UNQUALIFIED"), 10),
                (None, 10),
            ]),
            (Stage::Other, Some(Handoff::Rejected)) | (Stage::Mql, Some(Handoff::Rejected)) => {
                if rejection_reason == Some("bad_timing") {
                    Some("BAD_TIMING")
                } else {
                    Some("UNQUALIFIED")
                }
            }
            (Stage::Other, _) => Some(r.weighted(&[("UNQUALIFIED", 7), ("BAD_TIMING", 3)])),
            (Stage::Mql, Some(Handoff::Accepted)) => Some(if first_engagement_ms.is_some() {
                r.weighted(&[
                    ("IN_PROGRESS", 4),
                    ("CONNECTED", 4),
                    ("ATTEMPTED_TO_CONTACT", 2),
                ])
            } else {
                r.weighted(&[("IN_PROGRESS", 1), ("ATTEMPTED_TO_CONTACT", 1)])
            }),
            (Stage::Mql, _) => Some(r.weighted(&[("NEW", 6), ("OPEN", 4)])),
            (Stage::Sql, _) => Some(r.weighted(&[("CONNECTED", 6), ("IN_PROGRESS", 4)])),
            (Stage::Opportunity, _) => Some("OPEN_DEAL"),
            (Stage::Customer, _) => Some("CONNECTED"),
        };

        let (score_lo, score_hi) = match stage {
            Stage::Subscriber => (0, 25),
            Stage::Lead => (5, 45),
            Stage::Other => (0, 30),
            Stage::Mql => (35, 75),
            Stage::Sql => (55, 92),
            Stage::Opportunity => (60, 97),
            Stage::Customer => (65, 100),
        };
        let demo_requested = r.chance(match stage {
            Stage::Subscriber => 0.01,
            Stage::Lead | Stage::Other => 0.05,
            Stage::Mql => 0.25,
            _ => 0.6,
        });
        let score = (r.range(score_lo, score_hi) + if demo_requested { 5 } else { 0 }).min(100);

        let (visits, mut conversions, email_opens) = match stage {
            Stage::Subscriber => (r.range(0, 6), 1, r.range(0, 25)),
            Stage::Lead | Stage::Other => (r.range(1, 12), r.range(1, 3), r.range(0, 15)),
            Stage::Mql => (r.range(4, 30), r.range(1, 6), r.range(2, 30)),
            _ => (r.range(8, 60), r.range(2, 9), r.range(3, 40)),
        };
        if source == "OFFLINE" && r.chance(0.5) {
            conversions = 0;
        }
        if recycled_ms.is_some() {
            conversions += 1;
        }

        let (budget, need, timeline, authority) = if late_stage {
            (
                tri(&mut r, 0.8, 0.15),
                tri(&mut r, 0.9, 0.05),
                tri(&mut r, 0.7, 0.2),
                Some(r.weighted(&[("decision_maker", 55), ("influencer", 40), ("none", 5)])),
            )
        } else if handoff == Some(Handoff::Accepted) {
            (
                tri(&mut r, 0.35, 0.25),
                tri(&mut r, 0.5, 0.2),
                tri(&mut r, 0.3, 0.25),
                r.weighted(&[
                    (Some("decision_maker"), 25),
                    (Some("influencer"), 35),
                    (Some("none"), 15),
                    (None, 25),
                ]),
            )
        } else if stage == Stage::Mql || handoff == Some(Handoff::Rejected) {
            let budget = if rejection_reason == Some("no_budget") {
                Some(false)
            } else {
                tri(&mut r, 0.1, 0.3)
            };
            (
                budget,
                tri(&mut r, 0.2, 0.3),
                tri(&mut r, 0.1, 0.3),
                r.weighted(&[
                    (Some("decision_maker"), 10),
                    (Some("influencer"), 20),
                    (Some("none"), 20),
                    (None, 50),
                ]),
            )
        } else {
            (
                tri(&mut r, 0.03, 0.05),
                tri(&mut r, 0.03, 0.05),
                tri(&mut r, 0.02, 0.05),
                r.weighted(&[
                    (Some("decision_maker"), 4),
                    (Some("influencer"), 6),
                    (Some("none"), 5),
                    (None, 85),
                ]),
            )
        };

        let first_conversion_ms = (conversions > 0).then_some(created);
        let recent_conversion_ms = match (recycled_ms, first_conversion_ms) {
            (Some(again), _) => Some(again),
            (None, Some(first)) if conversions > 1 => {
                let latest = mql_ms.or(lead_ms).unwrap_or(first);
                Some(first + r.range(0, (latest - first).max(0)))
            }
            (None, first) => first,
        };

        let owner = match stage {
            Stage::Subscriber => r.chance(0.2),
            Stage::Lead | Stage::Other => r.chance(0.7),
            _ => true,
        }
        .then(|| *r.pick(&self.owners));
        let company_text = if r.chance(0.02) {
            Some(String::new())
        } else {
            Some(self.company_name(company))
        };
        let job_title = match r.below(100) {
            0..=2 => Some(""),
            3..=7 => None,
            _ => Some(*r.pick(JOB_TITLES)),
        };
        let country = (!r.chance(0.03)).then(|| r.weighted(COUNTRIES));

        let latest = [
            Some(created),
            lead_ms,
            mql_ms,
            sql_ms,
            opportunity_ms,
            customer_ms,
            accepted_ms,
            rejected_ms,
            first_engagement_ms,
            recent_conversion_ms,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created);
        let modified_ms = (latest + r.range(0, 48 * MS_PER_HOUR)).min(end).max(latest);
        let firmographics = company.firmographics;
        let custom = self.custom_fields(index, &firmographics, created, end);

        Contact {
            id,
            email,
            first: first.0,
            last: last.0,
            company: company_text,
            job_title,
            country,
            owner,
            stage,
            lead_status,
            score,
            source,
            utm_campaign,
            visits,
            conversions,
            email_opens,
            first_conversion_ms,
            recent_conversion_ms,
            demo_requested,
            budget,
            need,
            timeline,
            authority,
            created_ms: created,
            created_with_millis,
            malformed: self.is_malformed(index),
            modified_ms,
            lead_ms,
            mql_ms,
            sql_ms,
            opportunity_ms,
            customer_ms,
            accepted_ms,
            rejected_ms,
            rejection_reason,
            first_engagement_ms,
            firmographics,
            custom,
        }
    }

    /// The custom properties of contact `index`, from a stream of their own.
    fn custom_fields(
        &self,
        index: usize,
        firmographics: &Firmographics,
        created: i64,
        end: i64,
    ) -> CustomFields {
        let mut r = Rng::for_record(self.seed, STREAM_CUSTOM, index as u64);
        let tier = match firmographics.employees {
            Some(50..=1_000) => "A",
            Some(10..=49 | 1_001..=5_000) => "B",
            _ => "C",
        };
        let icp_tier = (!r.chance(0.15)).then_some(tier);
        let seats_requested = r.chance(0.4).then(|| r.range(1, 200) as u32);
        let is_partner = r.weighted(&[(Some(true), 10), (Some(false), 70), (None, 20)]);
        let trial_started_ms = r
            .chance(0.25)
            .then(|| created + r.range(MS_PER_HOUR, 30 * MS_PER_DAY))
            .filter(|&t| t < end);
        CustomFields {
            icp_tier,
            seats_requested,
            is_partner,
            trial_started_ms,
        }
    }

    /// The furthest stage this contact would reach given time; sources shift the odds.
    fn target_stage(&self, r: &mut Rng, source: &str) -> Stage {
        let mut table = [
            (Stage::Subscriber, 14),
            (Stage::Lead, 34),
            (Stage::Mql, 22),
            (Stage::Sql, 13),
            (Stage::Opportunity, 7),
            (Stage::Customer, 5),
            (Stage::Other, 5),
        ];
        for (stage, weight) in &mut table {
            match (source, *stage) {
                (
                    "REFERRALS" | "PAID_SEARCH",
                    Stage::Sql | Stage::Opportunity | Stage::Customer,
                ) => {
                    *weight = *weight * 3 / 2;
                }
                ("PAID_SOCIAL" | "SOCIAL_MEDIA", s) if s >= Stage::Mql && s != Stage::Other => {
                    *weight /= 2;
                }
                ("EMAIL_MARKETING", Stage::Subscriber) => *weight *= 2,
                _ => {}
            }
        }
        r.weighted(&table)
    }
}

/// Time from MQL to sales' accept/reject decision.
fn handoff_delay(r: &mut Rng) -> i64 {
    match r.below(10) {
        0..=6 => r.range(15 * 60_000, 24 * MS_PER_HOUR),
        7 | 8 => r.range(24 * MS_PER_HOUR, 72 * MS_PER_HOUR),
        _ => r.range(3 * MS_PER_DAY, 10 * MS_PER_DAY),
    }
}

/// Time from acceptance to the first sales contact; `None` = never recorded.
fn engagement_delay(r: &mut Rng) -> Option<i64> {
    if r.chance(0.07) {
        return None;
    }
    Some(match r.below(20) {
        0..=11 => r.range(5 * 60_000, 24 * MS_PER_HOUR),
        12..=16 => r.range(24 * MS_PER_HOUR, 48 * MS_PER_HOUR),
        17 | 18 => r.range(48 * MS_PER_HOUR, 72 * MS_PER_HOUR),
        _ => r.range(72 * MS_PER_HOUR, 168 * MS_PER_HOUR),
    })
}

impl Contact {
    /// The value of one property: `None` is JSON `null` (unset or unknown), `Some("")`
    /// a cleared value.
    #[cfg(test)]
    pub(crate) fn property(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.hubspot_value(HubspotProperty::named(name)).to_text()
    }

    /// The value of one HubSpot property, as the page writes it.
    pub(crate) fn hubspot_value(&self, property: HubspotProperty) -> PropertyValue<'_> {
        use HubspotProperty as P;
        use PropertyValue as V;
        match property {
            P::HsObjectId => V::Unsigned(self.id),
            P::Email => V::Text(&self.email),
            P::FirstName => V::Text(self.first),
            P::LastName => V::Text(self.last),
            P::Company => V::text(self.company.as_deref()),
            P::JobTitle => V::text(self.job_title),
            P::Country => V::text(self.country),
            P::OwnerId => V::unsigned(self.owner),
            P::LifecycleStage => V::Text(self.stage.as_str()),
            P::LeadStatus => V::text(self.lead_status),
            P::Score => V::Signed(self.score),
            P::AnalyticsSource => V::Text(self.source),
            P::UtmCampaign => V::unsigned(self.utm_campaign),
            P::NumVisits => V::Signed(self.visits),
            P::NumConversionEvents => V::Signed(self.conversions),
            P::EmailOpens => V::Signed(self.email_opens),
            P::FirstConversionDate => V::time(self.first_conversion_ms),
            P::RecentConversionDate => V::time(self.recent_conversion_ms),
            P::DemoRequested => V::flag(Some(self.demo_requested)),
            P::BudgetConfirmed => V::flag(self.budget),
            P::NeedConfirmed => V::flag(self.need),
            P::TimelineConfirmed => V::flag(self.timeline),
            P::DecisionAuthority => V::text(self.authority),
            P::CreateDate if self.malformed => V::Text(MALFORMED_CREATEDATE),
            P::CreateDate => V::Time {
                ms: self.created_ms,
                millis: self.created_with_millis,
            },
            P::LastModifiedDate => V::time(Some(self.modified_ms)),
            P::LeadDate => V::time(self.lead_ms),
            P::MqlDate => V::time(self.mql_ms),
            P::SqlDate => V::time(self.sql_ms),
            P::OpportunityDate => V::time(self.opportunity_ms),
            P::CustomerDate => V::time(self.customer_ms),
            P::SalAcceptedAt => V::time(self.accepted_ms),
            P::SalRejectedAt => V::time(self.rejected_ms),
            P::SalRejectionReason => V::text(self.rejection_reason),
            P::FirstEngagementDate => V::time(self.first_engagement_ms),
            P::Industry => V::text(self.firmographics.hubspot_industry()),
            P::NumberOfEmployees => V::unsigned(self.firmographics.employees),
            P::AnnualRevenue => V::unsigned(self.firmographics.revenue),
            P::IcpTier => V::text(self.custom.icp_tier),
            P::SeatsRequested => V::unsigned(self.custom.seats_requested),
            P::IsPartner => V::flag(self.custom.is_partner),
            P::TrialStartedAt => V::time(self.custom.trial_started_ms),
            P::Unknown => V::Null,
        }
    }
}

/// Read access for the Salesforce twin, and the edits the CRM admin endpoint makes.
impl Contact {
    pub(crate) fn first_name(&self) -> &'static str {
        self.first
    }
    pub(crate) fn last_name(&self) -> &'static str {
        self.last
    }
    pub(crate) fn company_name(&self) -> Option<&str> {
        self.company.as_deref()
    }
    pub(crate) fn title(&self) -> Option<&'static str> {
        self.job_title
    }
    pub(crate) fn country_code(&self) -> Option<&'static str> {
        self.country
    }
    pub(crate) fn owner(&self) -> Option<u64> {
        self.owner
    }
    pub(crate) fn score(&self) -> i64 {
        self.score
    }
    pub(crate) fn demo(&self) -> bool {
        self.demo_requested
    }

    /// The contact as changed by `times` simulated updates, the last at `modified_ms`:
    /// the score rises and the lead status moves to `IN_PROGRESS`.
    pub(crate) fn touched(mut self, modified_ms: i64, times: u32) -> Contact {
        self.modified_ms = modified_ms.max(self.modified_ms);
        self.score = (self.score + 5 * i64::from(times)).min(100);
        self.lead_status = Some("IN_PROGRESS");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z

    fn model(count: usize) -> ContactModel {
        ContactModel::new(42, count, END, 0, vec![12_345_678_901, 9_876_543_210])
    }

    #[test]
    fn ids_ascend_and_emails_are_unique() {
        let m = model(2_000);
        let mut last = 0;
        let mut emails = std::collections::HashSet::new();
        for i in 0..m.count() {
            let c = m.contact(i);
            assert!(c.id > last);
            assert_eq!(c.id, m.id(i));
            last = c.id;
            assert_eq!(c.email, m.email(i));
            assert!(emails.insert(c.email.clone()), "duplicate {}", c.email);
            assert!(c.email.is_ascii());
        }
    }

    #[test]
    fn stage_dates_are_ordered_and_consistent() {
        let m = model(3_000);
        let start = END - CONTACT_WINDOW_DAYS * MS_PER_DAY;
        let mut stages = std::collections::BTreeMap::new();
        for i in 0..m.count() {
            let c = m.contact(i);
            *stages.entry(c.stage).or_insert(0) += 1;
            assert!(c.created_ms >= start && c.created_ms < END);
            assert!(c.modified_ms >= c.created_ms && c.modified_ms < END);
            let chain = [
                Some(c.created_ms),
                c.lead_ms,
                c.mql_ms,
                c.accepted_ms,
                c.sql_ms,
                c.opportunity_ms,
                c.customer_ms,
            ];
            let present: Vec<i64> = chain.iter().flatten().copied().collect();
            assert!(present.windows(2).all(|w| w[0] <= w[1]), "{c:?}");
            for (later, earlier) in [
                (c.mql_ms, c.lead_ms),
                (c.sql_ms, c.accepted_ms),
                (c.opportunity_ms, c.sql_ms),
                (c.customer_ms, c.opportunity_ms),
                (c.accepted_ms, c.mql_ms),
                (c.rejected_ms, c.mql_ms),
                (c.first_engagement_ms, c.accepted_ms),
            ] {
                assert!(later.is_none() || earlier.is_some(), "{c:?}");
            }
            assert!(!(c.accepted_ms.is_some() && c.rejected_ms.is_some()));
            assert_eq!(c.rejected_ms.is_some(), c.rejection_reason.is_some());
            if let (Some(e), Some(a)) = (c.first_engagement_ms, c.accepted_ms) {
                assert!(e >= a);
            }
            let expected_date = match c.stage {
                Stage::Sql => c.sql_ms,
                Stage::Opportunity => c.opportunity_ms,
                Stage::Customer => c.customer_ms,
                Stage::Mql => c.mql_ms,
                Stage::Lead => c.lead_ms,
                Stage::Subscriber | Stage::Other => Some(0),
            };
            assert!(expected_date.is_some(), "{c:?}");
            assert_eq!(c.utm_campaign.is_some(), c.source == "PAID_SEARCH");
        }
        // A funnel: most contacts are early stage, every stage is present.
        assert_eq!(stages.len(), 7, "{stages:?}");
        let early = stages[&Stage::Subscriber] + stages[&Stage::Lead];
        assert!(early > stages[&Stage::Sql] * 2, "{stages:?}");
        assert!(stages[&Stage::Customer] < stages[&Stage::Sql], "{stages:?}");
    }

    #[test]
    fn every_documented_property_is_served() {
        let m = model(400);
        let contacts: Vec<Contact> = (0..400).map(|i| m.contact(i)).collect();
        for name in HUBSPOT_CONTACT_PROPERTIES {
            assert!(
                contacts
                    .iter()
                    .any(|c| c.property(name).is_some_and(|v| !v.is_empty())),
                "{name} never set"
            );
        }
        assert!(contacts[0].property("no_such_property").is_none());
    }

    #[test]
    fn malformed_contacts_only_break_createdate() {
        let m = ContactModel::new(7, 50, END, 10, vec![1]);
        let broken: Vec<usize> = (0..50).filter(|&i| m.contact(i).malformed).collect();
        assert_eq!(broken, [9, 19, 29, 39, 49]);
        let c = m.contact(9);
        assert_eq!(
            c.property("createdate").as_deref(),
            Some(MALFORMED_CREATEDATE)
        );
        assert!(c.property("lastmodifieddate").is_some());
    }

    #[test]
    fn some_createdates_lack_milliseconds() {
        let m = model(500);
        let without = (0..500)
            .filter(|&i| {
                let contact = m.contact(i);
                let text = contact.property("createdate").unwrap_or_default();
                text.len() == "2026-10-01T12:34:56Z".len()
            })
            .count();
        assert!((20..150).contains(&without), "{without}");
    }
}
