//! The job-file sections that drive the metrics: `[stages]` (stage rules, lead scoring),
//! `[metrics.sal]`, `[metrics.enps]`, `[metrics.cpsql]` and `[fx]`. Every section has
//! defaults, so a job without them still gets every metric table (design §5 defaults).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::money::parse_rate;

/// A lead stage. `lead → warm → mql → sal → sql → customer` is the path; `disqualified` and
/// `recycled` sit beside it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Any contact.
    Lead,
    /// Showed interest, not evaluated.
    Warm,
    /// Marketing qualified.
    Mql,
    /// Accepted by sales.
    Sal,
    /// Sales qualified.
    Sql,
    /// Won.
    Customer,
    /// Rejected by sales or disqualified.
    Disqualified,
    /// Disqualified or rejected, then showed new intent.
    Recycled,
}

impl Stage {
    /// The stage's name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Lead => "lead",
            Stage::Warm => "warm",
            Stage::Mql => "mql",
            Stage::Sal => "sal",
            Stage::Sql => "sql",
            Stage::Customer => "customer",
            Stage::Disqualified => "disqualified",
            Stage::Recycled => "recycled",
        }
    }

    /// Parse a stage name written by an earlier run.
    pub fn parse(name: &str) -> Option<Stage> {
        Some(match name {
            "lead" => Stage::Lead,
            "warm" => Stage::Warm,
            "mql" => Stage::Mql,
            "sal" => Stage::Sal,
            "sql" => Stage::Sql,
            "customer" => Stage::Customer,
            "disqualified" => Stage::Disqualified,
            "recycled" => Stage::Recycled,
            _ => return None,
        })
    }

    /// Position on the path (`lead` 0 … `customer` 5); `None` off the path.
    pub fn path_index(self) -> Option<usize> {
        PATH.iter().position(|s| *s == self)
    }
}

/// The funnel path in order.
pub const PATH: [Stage; 6] = [
    Stage::Lead,
    Stage::Warm,
    Stage::Mql,
    Stage::Sal,
    Stage::Sql,
    Stage::Customer,
];

/// A timestamp column of `leads` a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateColumn {
    CreatedAt,
    MqlAt,
    SalAt,
    SalRejectedAt,
    SqlAt,
    OpportunityAt,
    CustomerAt,
    FirstContactedAt,
    LastIntentAt,
}

/// A condition over one lead's canonical columns. Every key given must hold (AND); `any`
/// holds when at least one of its conditions does. An empty condition always holds.
/// String lists match case-insensitively, any value of the list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Condition {
    /// `source_system` is one of these (`hubspot`, `salesforce`).
    pub source_system: Vec<String>,
    /// `lifecycle_stage_raw` is one of these.
    pub lifecycle_stage_raw: Vec<String>,
    /// `lead_status_raw` is one of these.
    pub lead_status_raw: Vec<String>,
    /// `channel` is one of these.
    pub channel: Vec<String>,
    /// `country` is one of these.
    pub country: Vec<String>,
    /// `authority` is one of these (`decision_maker`, `influencer`, `none`).
    pub authority: Vec<String>,
    /// `job_title` contains one of these words.
    pub job_title_contains: Vec<String>,
    // Firmographics and custom CRM properties (issue 19): matched by `stages::icp_matches`.
    /// `industry` is one of these.
    pub industry: Vec<String>,
    /// At least this many employees (`employee_count`; unknown never matches).
    pub min_employee_count: Option<i64>,
    /// At most this many employees (`employee_count`; unknown never matches).
    pub max_employee_count: Option<i64>,
    /// `annual_revenue` is at least this amount (exact decimal, a TOML number or string), in
    /// the lead's own `annual_revenue_currency`; unknown never matches.
    #[serde(deserialize_with = "opt_money")]
    pub min_annual_revenue: Option<i128>,
    /// `annual_revenue` is at most this amount, as `min_annual_revenue`.
    #[serde(deserialize_with = "opt_money")]
    pub max_annual_revenue: Option<i128>,
    /// `annual_revenue_currency` is one of these (to pair with the revenue bounds when a
    /// job's CRMs report revenue in different currencies).
    pub annual_revenue_currency: Vec<String>,
    /// Tests of kept custom properties (`leads.custom`), by their name in the job; all must
    /// hold.
    pub custom: BTreeMap<String, CustomTest>,
    /// These date columns are all set.
    pub set: Vec<DateColumn>,
    /// These date columns are all unset.
    pub unset: Vec<DateColumn>,
    /// `demo_requested` is this (unknown counts as false).
    pub demo_requested: Option<bool>,
    /// `budget_confirmed` is this (unknown counts as false).
    pub budget_confirmed: Option<bool>,
    /// `need_confirmed` is this (unknown counts as false).
    pub need_confirmed: Option<bool>,
    /// `timeline_confirmed` is this (unknown counts as false).
    pub timeline_confirmed: Option<bool>,
    /// The lead score (from `[stages.scoring]`) is at least this.
    pub min_score: Option<i64>,
    /// The CRM's own score is at least this.
    pub min_vendor_score: Option<i64>,
    /// At least this many content downloads.
    pub min_content_downloads: Option<i64>,
    /// At least this many web visits.
    pub min_web_visits: Option<i64>,
    /// At least this many e-mail engagements.
    pub min_email_engagements: Option<i64>,
    /// The lead's third-party intent score (`lead_stages.third_party_intent_score`: its
    /// `intent` sources' recent signals, decayed by age, see `[stages.intent]`) is at least
    /// this; a lead without recent signals never is.
    pub min_intent_score: Option<f64>,
    /// The lead shows new intent (`last_intent_at`) after it was rejected by sales
    /// (`sal_rejected_at`) or after a run observed it disqualified, and has not moved on
    /// since (no `sql_at`, no `sal_at` after the rejection).
    pub new_intent_after_rejection: Option<bool>,
    /// At least one of these holds.
    pub any: Vec<Condition>,
}

/// A literal a custom property is compared with.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum CustomLiteral {
    /// Equals a boolean property.
    Bool(bool),
    /// Equals a number property.
    Number(f64),
    /// Equals a string property (ignoring case and surrounding spaces), or a timestamp
    /// property at exactly that instant.
    Text(String),
}

/// A test of one custom property: a value (`icp_tier = "A"`, `is_partner = true`), a list
/// of values (`icp_tier = ["A", "B"]`), or a table (`seats = { min = 50, max = 500 }`,
/// `trial_started_at = { set = true }`). A property without a value (unset, or not kept)
/// matches only `set = false`.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomTest {
    /// Equals this.
    One(CustomLiteral),
    /// Equals one of these.
    OneOf(Vec<CustomLiteral>),
    /// Every given part holds.
    Test(CustomRange),
}

/// The editor schema of [`CustomTest`]: the three shapes its parser accepts.
impl schemars::JsonSchema for CustomTest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CustomTest".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        #[derive(schemars::JsonSchema)]
        #[serde(untagged)]
        #[allow(dead_code, reason = "only its schema is used")]
        enum Shapes {
            One(CustomLiteral),
            OneOf(Vec<CustomLiteral>),
            Test(CustomRange),
        }
        Shapes::json_schema(generator)
    }
}

/// Parsed through an untagged copy, so a mistake says which shapes are expected (an
/// untagged enum alone would only say that nothing matched).
impl<'de> Deserialize<'de> for CustomTest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(CustomLiteral),
            OneOf(Vec<CustomLiteral>),
            Test(CustomRange),
        }
        Ok(
            match Raw::deserialize(d).map_err(|_| {
                serde::de::Error::custom(
                    "expected a value (\"A\", 50, true), a list of values, or a table of \
                 `set`, `min`, `max`, `one_of`",
                )
            })? {
                Raw::One(l) => CustomTest::One(l),
                Raw::OneOf(l) => CustomTest::OneOf(l),
                Raw::Test(t) => CustomTest::Test(t),
            },
        )
    }
}

/// The table form of [`CustomTest`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomRange {
    /// The property has a value (`true`) or has none (`false`).
    pub set: Option<bool>,
    /// A number property at least this.
    pub min: Option<f64>,
    /// A number property at most this.
    pub max: Option<f64>,
    /// Equals one of these.
    pub one_of: Vec<CustomLiteral>,
}

/// An optional exact amount written as a TOML number or a decimal string, in millionths.
fn opt_money<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i128>, D::Error> {
    let Some(value) = Option::<RateValue>::deserialize(d)? else {
        return Ok(None);
    };
    crate::normalize::parse::decimal_micros(&value.text())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// One stage rule: the first rule whose `when` holds decides the lead's stage.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRule {
    /// Names the rule in `lead_stages.stage_reason`; `<stage>#<position>` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The stage this rule assigns.
    pub stage: Stage,
    /// When it applies.
    #[serde(default)]
    pub when: Condition,
}

/// Whether a scoring rule counts towards fit or intent (each has its own cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Who the lead is: title, country, company.
    Fit,
    /// What the lead did: demo requests, downloads, visits, e-mail engagement.
    Intent,
}

/// A count column a scoring rule can multiply its points by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountColumn {
    ContentDownloads,
    WebVisits,
    EmailEngagements,
}

/// Points for a lead when `when` holds (times `per` when given, at most `cap`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRule {
    /// For readers of the job file.
    #[serde(default)]
    pub name: Option<String>,
    /// Fit or intent.
    pub kind: ScoreKind,
    /// Points (per unit of `per`, if given).
    pub points: i64,
    /// Multiply `points` by this count column.
    #[serde(default)]
    pub per: Option<CountColumn>,
    /// At most this many points from this rule.
    #[serde(default)]
    pub cap: Option<i64>,
    /// When the rule applies (always when absent).
    #[serde(default)]
    pub when: Condition,
}

/// `[stages.scoring]`: `score = min(fit, fit_cap) + min(intent, intent_cap)`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Most points fit rules can give together.
    pub fit_cap: i64,
    /// Most points intent rules can give together.
    pub intent_cap: i64,
    /// The rules.
    pub rules: Vec<ScoreRule>,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let fit = |name: &str, points, when| ScoreRule {
            name: Some(name.into()),
            kind: ScoreKind::Fit,
            points,
            per: None,
            cap: None,
            when,
        };
        let per = |name: &str, points, per, cap| ScoreRule {
            name: Some(name.into()),
            kind: ScoreKind::Intent,
            points,
            per: Some(per),
            cap: Some(cap),
            when: Condition::default(),
        };
        ScoringConfig {
            fit_cap: 40,
            intent_cap: 60,
            rules: vec![
                fit(
                    "senior_title",
                    20,
                    Condition {
                        job_title_contains: words(&[
                            "chief",
                            "ceo",
                            "cfo",
                            "cto",
                            "vp",
                            "vice president",
                            "head",
                            "director",
                            "founder",
                        ]),
                        ..Condition::default()
                    },
                ),
                fit(
                    "decision_authority",
                    10,
                    Condition {
                        authority: words(&["decision_maker", "influencer"]),
                        ..Condition::default()
                    },
                ),
                fit(
                    "company_size",
                    10,
                    Condition {
                        min_employee_count: Some(50),
                        max_employee_count: Some(5_000),
                        ..Condition::default()
                    },
                ),
                fit(
                    "known_country",
                    10,
                    Condition {
                        country: words(&[
                            "DE", "US", "GB", "FR", "NL", "SE", "EE", "FI", "DK", "AT", "CH",
                        ]),
                        ..Condition::default()
                    },
                ),
                ScoreRule {
                    name: Some("demo_requested".into()),
                    kind: ScoreKind::Intent,
                    points: 25,
                    per: None,
                    cap: None,
                    when: Condition {
                        demo_requested: Some(true),
                        ..Condition::default()
                    },
                },
                per("downloads", 5, CountColumn::ContentDownloads, 20),
                per("web_visits", 1, CountColumn::WebVisits, 10),
                per("email_engagements", 1, CountColumn::EmailEngagements, 10),
                ScoreRule {
                    name: Some("third_party_intent".into()),
                    kind: ScoreKind::Intent,
                    points: 15,
                    per: None,
                    cap: None,
                    when: Condition {
                        min_intent_score: Some(60.0),
                        ..Condition::default()
                    },
                },
            ],
        }
    }
}

/// `[stages]`: the stage rules (first match wins) and lead scoring.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StagesConfig {
    /// Ordered rules; the HubSpot and Salesforce defaults when absent.
    pub rules: Vec<StageRule>,
    /// Lead scoring.
    pub scoring: ScoringConfig,
    /// How third-party intent signals (`kind = "intent"` sources) become a lead's
    /// `third_party_intent_score` and `last_intent_at`.
    pub intent: IntentDecayConfig,
}

impl Default for StagesConfig {
    fn default() -> Self {
        StagesConfig {
            rules: default_stage_rules(),
            scoring: ScoringConfig::default(),
            intent: IntentDecayConfig::default(),
        }
    }
}

/// How a lead's signals combine into one score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentCombine {
    /// The strongest decayed signal: stays on the provider's 0–100 scale whatever the
    /// export's cadence (a weekly export repeating a topic does not add up).
    Max,
    /// The sum of the decayed signals: breadth counts (many topics, many weeks).
    Sum,
}

/// `[stages.intent]`: each signal of the look-back window counts
/// `score × 0.5^(age_days / half_life_days)`, `age_days` being whole days from the
/// signal's date to the run's (UTC) day.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IntentDecayConfig {
    /// Days after which a signal counts half.
    pub half_life_days: f64,
    /// Signals older than this many days are ignored (score and `last_intent_at`).
    pub lookback_days: i64,
    /// `max` (default) or `sum` of a lead's decayed signals.
    pub combine: IntentCombine,
    /// Only signals on these topics (case-insensitive); every topic when empty.
    pub topics: Vec<String>,
}

impl Default for IntentDecayConfig {
    fn default() -> Self {
        IntentDecayConfig {
            half_life_days: 14.0,
            lookback_days: 90,
            combine: IntentCombine::Max,
            topics: Vec::new(),
        }
    }
}

/// The default rules: HubSpot lifecycle stages and lead statuses, Salesforce lead statuses,
/// and the CRM-neutral stage dates. Order matters: first match wins.
pub fn default_stage_rules() -> Vec<StageRule> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rule = |name: &str, stage, when| StageRule {
        name: Some(name.into()),
        stage,
        when,
    };
    let c = Condition::default;
    vec![
        rule(
            "customer",
            Stage::Customer,
            Condition {
                any: vec![
                    Condition {
                        set: vec![DateColumn::CustomerAt],
                        ..c()
                    },
                    Condition {
                        lifecycle_stage_raw: words(&["customer", "evangelist"]),
                        ..c()
                    },
                    Condition {
                        lead_status_raw: words(&["Closed - Won"]),
                        ..c()
                    },
                ],
                ..c()
            },
        ),
        rule(
            "recycled_new_intent",
            Stage::Recycled,
            Condition {
                new_intent_after_rejection: Some(true),
                ..c()
            },
        ),
        rule(
            "rejected_by_sales",
            Stage::Disqualified,
            Condition {
                set: vec![DateColumn::SalRejectedAt],
                unset: vec![DateColumn::SqlAt],
                ..c()
            },
        ),
        rule(
            "disqualified_status",
            Stage::Disqualified,
            Condition {
                lead_status_raw: words(&[
                    "UNQUALIFIED",
                    "BAD_TIMING",
                    "Closed - Not Converted",
                    "Unqualified",
                ]),
                unset: vec![DateColumn::SqlAt],
                ..c()
            },
        ),
        rule(
            "sql_stage",
            Stage::Sql,
            Condition {
                any: vec![
                    Condition {
                        set: vec![DateColumn::SqlAt],
                        ..c()
                    },
                    Condition {
                        set: vec![DateColumn::OpportunityAt],
                        ..c()
                    },
                    Condition {
                        lifecycle_stage_raw: words(&["salesqualifiedlead", "opportunity"]),
                        ..c()
                    },
                    Condition {
                        lead_status_raw: words(&["Closed - Converted", "Qualified"]),
                        ..c()
                    },
                ],
                ..c()
            },
        ),
        rule(
            "sales_accepted",
            Stage::Sal,
            Condition {
                any: vec![
                    Condition {
                        set: vec![DateColumn::SalAt],
                        ..c()
                    },
                    Condition {
                        lead_status_raw: words(&["Working - Contacted", "Accepted"]),
                        ..c()
                    },
                ],
                ..c()
            },
        ),
        rule(
            "mql_stage",
            Stage::Mql,
            Condition {
                any: vec![
                    Condition {
                        set: vec![DateColumn::MqlAt],
                        ..c()
                    },
                    Condition {
                        lifecycle_stage_raw: words(&["marketingqualifiedlead"]),
                        ..c()
                    },
                    Condition {
                        lead_status_raw: words(&["Marketing Qualified", "MQL"]),
                        ..c()
                    },
                ],
                ..c()
            },
        ),
        rule(
            "engaged",
            Stage::Warm,
            Condition {
                any: vec![
                    Condition {
                        demo_requested: Some(true),
                        ..c()
                    },
                    Condition {
                        min_content_downloads: Some(1),
                        ..c()
                    },
                    Condition {
                        min_web_visits: Some(3),
                        ..c()
                    },
                    Condition {
                        min_email_engagements: Some(3),
                        ..c()
                    },
                ],
                ..c()
            },
        ),
        rule("any_contact", Stage::Lead, c()),
    ]
}

/// `[metrics]`: settings of the metric tables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `[metrics.sal]`.
    pub sal: SalConfig,
    /// `[metrics.enps]`.
    pub enps: EnpsConfig,
    /// `[metrics.cpsql]`.
    pub cpsql: CpsqlConfig,
}

/// `[metrics.sal]`: acceptance target and contact SLA.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SalConfig {
    /// Acceptance rate a month should reach (0–1).
    pub target: f64,
    /// `[first, second]` SLA bounds in hours from acceptance to first contact.
    pub sla_hours: [i64; 2],
}

impl Default for SalConfig {
    fn default() -> Self {
        SalConfig {
            target: 0.90,
            sla_hours: [24, 48],
        }
    }
}

/// The answer scale of the eNPS question (the one type the survey sources read too).
pub use crate::normalize::EnpsScale;

/// The reporting period of eNPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnpsPeriod {
    /// ISO weeks, `2026-W47`.
    Week,
    /// Calendar months, `2026-11`.
    Month,
    /// Calendar quarters, `2026-Q4`.
    Quarter,
}

/// A grouping dimension of `survey_responses`: `department`, `team` and `location` are its
/// columns; any other name (`tenure`, `role_level`, …) is a key of its `groups` column,
/// filled by the survey sources' `group_questions`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct EnpsDimension(String);

/// The dimensions `survey_responses` has a column for.
pub const COLUMN_DIMENSIONS: [&str; 3] = ["department", "team", "location"];

/// The editor schema: a snake_case dimension name.
impl schemars::JsonSchema for EnpsDimension {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnpsDimension".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z][a-z0-9_]*$",
            "description": "department, team, location, or any snake_case dimension a survey source's group_questions fills"
        })
    }
}

impl EnpsDimension {
    /// The `department` column.
    pub fn department() -> Self {
        EnpsDimension("department".into())
    }

    /// The `team` column.
    pub fn team() -> Self {
        EnpsDimension("team".into())
    }

    /// The `location` column.
    pub fn location() -> Self {
        EnpsDimension("location".into())
    }

    /// Its name (`enps.dimension`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnpsDimension {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        check_dimension_name(&name)?;
        Ok(EnpsDimension(name))
    }
}

/// Is `name` usable as a grouping dimension: a snake_case name other than `overall` (the
/// `enps` table's own) and `respondent`?
pub fn check_dimension_name(name: &str) -> Result<(), String> {
    let snake = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(format!(
            "`{name}` is not a dimension name: use snake_case letters, digits and `_` (e.g. `tenure`)"
        ));
    }
    if name == "overall" || name == "respondent" {
        return Err(format!("`{name}` is reserved"));
    }
    Ok(())
}

/// `[metrics.enps]`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EnpsConfig {
    /// Answer scale; answers outside it are not scored.
    pub scale: EnpsScale,
    /// Only responses whose `question_ref` is this; every response when absent.
    pub question_ref: Option<String>,
    /// Groups with fewer scored respondents are suppressed.
    pub anonymity_threshold: i64,
    /// Reporting period.
    pub period: EnpsPeriod,
    /// Dimensions reported besides the overall row.
    pub group_by: Vec<EnpsDimension>,
}

impl Default for EnpsConfig {
    fn default() -> Self {
        EnpsConfig {
            scale: EnpsScale::ZeroToTen,
            question_ref: None,
            anonymity_threshold: 5,
            period: EnpsPeriod::Month,
            group_by: vec![
                EnpsDimension::department(),
                EnpsDimension::team(),
                EnpsDimension::location(),
            ],
        }
    }
}

/// `[metrics.cpsql]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CpsqlConfig {
    /// Spend `channel` → lead `channel`, for platforms that name channels differently
    /// (`search = "paid_search"`); unmapped channels are used as they are.
    pub channel_map: BTreeMap<String, String>,
}

impl CpsqlConfig {
    /// The lead channel a spend channel counts towards.
    pub fn lead_channel<'a>(&'a self, spend_channel: &'a str) -> &'a str {
        self.channel_map
            .get(spend_channel)
            .map_or(spend_channel, String::as_str)
    }
}

/// A rate as written in the job: a string (exact) or a TOML number.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RateValue {
    /// `"0.9213"`.
    Text(String),
    /// `0.9213`.
    Number(f64),
}

impl RateValue {
    /// The decimal text of the rate (a float through its shortest round-trip form).
    pub fn text(&self) -> String {
        match self {
            RateValue::Text(s) => s.trim().to_string(),
            RateValue::Number(n) => n.to_string(),
        }
    }
}

/// One inline `[[fx.rates]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineRate {
    /// First day the rate applies (`YYYY-MM-DD`); it carries forward until the next one.
    pub date: String,
    /// ISO-4217 code of the foreign currency.
    pub currency: String,
    /// Units of the reporting currency one unit of `currency` buys.
    pub rate: RateValue,
}

/// `[fx]`: exchange rates into the reporting currency.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FxConfig {
    /// A CSV (`date,currency,rate` header) or JSON (array of `{date, currency, rate}`) file:
    /// a path (relative to the job file) or an `http(s)://` URL. May use `${VAR}`.
    pub rates_file: Option<crate::config::Template>,
    /// Inline rates, merged with the file's (inline wins on the same date and currency).
    pub rates: Vec<InlineRate>,
}

/// Offline checks of the metric sections for `validate`: `(key path, problem)` pairs.
pub fn check(
    stages: &StagesConfig,
    metrics: &MetricsConfig,
    fx: &FxConfig,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if stages.rules.is_empty() {
        problems.push((
            "stages.rules".to_string(),
            "needs at least one rule (leave `rules` out for the defaults)".to_string(),
        ));
    }
    // A rule's name is what `lead_stages.stage_reason` shows: two rules of one name would
    // make the reason ambiguous.
    let mut names: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, rule) in stages.rules.iter().enumerate() {
        if let Some(name) = rule.name.as_deref()
            && let Some(first) = names.insert(name, i)
        {
            names.insert(name, first);
            problems.push((
                format!("stages.rules[{i}].name"),
                format!("duplicate rule name `{name}` (also stages.rules[{first}]); names must be unique"),
            ));
        }
    }
    for (key, cap) in [
        ("stages.scoring.fit_cap", stages.scoring.fit_cap),
        ("stages.scoring.intent_cap", stages.scoring.intent_cap),
    ] {
        if cap < 0 {
            problems.push((key.to_string(), "must not be negative".to_string()));
        }
    }
    let intent = &stages.intent;
    if !(intent.half_life_days > 0.0 && intent.half_life_days.is_finite()) {
        problems.push((
            "stages.intent.half_life_days".to_string(),
            format!("{} is not a positive number of days", intent.half_life_days),
        ));
    }
    if intent.lookback_days < 0 {
        problems.push((
            "stages.intent.lookback_days".to_string(),
            "must not be negative".to_string(),
        ));
    }
    let sal = &metrics.sal;
    if !(sal.target > 0.0 && sal.target <= 1.0) {
        problems.push((
            "metrics.sal.target".to_string(),
            format!("{} is not a rate in (0, 1], e.g. 0.90", sal.target),
        ));
    }
    let [first, second] = sal.sla_hours;
    if first <= 0 || second < first {
        problems.push((
            "metrics.sal.sla_hours".to_string(),
            format!(
                "[{first}, {second}] must be two positive hours, the second not below the first"
            ),
        ));
    }
    if metrics.enps.anonymity_threshold < 1 {
        problems.push((
            "metrics.enps.anonymity_threshold".to_string(),
            "must be at least 1".to_string(),
        ));
    }
    for (spend, lead) in &metrics.cpsql.channel_map {
        if spend.is_empty() || lead.is_empty() {
            problems.push((
                "metrics.cpsql.channel_map".to_string(),
                "channel names must not be empty".to_string(),
            ));
        }
    }
    problems.extend(check_fx(fx));
    problems
}

/// Offline checks of `[fx]` for `validate`: `(key, problem)` pairs.
fn check_fx(cfg: &FxConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, r) in cfg.rates.iter().enumerate() {
        if let Err(e) = parse_rate(&r.date, &r.currency, &r.rate.text()) {
            problems.push((format!("fx.rates[{i}]"), e));
        } else if let Err(e) = crate::config::check_currency(r.currency.trim()) {
            problems.push((format!("fx.rates[{i}].currency"), e));
        }
        if let RateValue::Number(n) = r.rate
            && !n.is_finite()
        {
            problems.push((format!("fx.rates[{i}].rate"), "must be finite".into()));
        }
    }
    problems
}
