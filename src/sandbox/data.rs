//! The sandbox's synthetic data set: options, the immutable [`SandboxData`] shared by all
//! handlers, and the [`Totals`] tests compare a pipeline's output against.
//!
//! Everything is a pure function of `(seed, scale, today, malformed_every)`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{Datelike, NaiveDate};

use super::accounts::{GOOGLE_ADS_CUSTOMERS, LINKEDIN_ACCOUNTS, META_ACCOUNTS};
use super::contacts::ContactModel;
use super::crm::CrmState;
use super::limits::RateLimitShapes;
use super::spend::{self, Customer, Volume};
use super::spend_control::{SpendControl, SpendFact};
use super::survey::{Survey, is_partial};

/// Mixed into the seed so the Salesforce org's leads are not HubSpot's contacts.
pub(crate) const SALESFORCE_SEED_XOR: u64 = 0x5346_4443_4c45_4144;

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i64 = 719_163;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of CRM contacts (leads); spend grows mildly with it, survey responses are
    /// about `scale / 5` (at least 30).
    pub scale: usize,
    /// The day the job runs; all data ends the day before (UTC).
    pub today: NaiveDate,
    /// `0` = no malformed records; `N` = every Nth record of each vendor is malformed.
    pub malformed_every: usize,
    /// How much ad spend: campaigns, days and accounts per platform.
    pub spend: SpendShape,
}

/// The ad platforms' volume. The default is the small shape: every account of
/// [`GOOGLE_ADS_CUSTOMERS`], [`META_ACCOUNTS`] and [`LINKEDIN_ACCOUNTS`] with 3–6 campaigns
/// over the 90 days before `today`. [`SpendShape::heavy`] is the spend-heavy shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpendShape {
    /// Campaigns per Google Ads customer; `None` draws 3–6.
    pub google_campaigns: Option<usize>,
    /// Campaigns per Meta ad account; `None` draws 3–6.
    pub meta_campaigns: Option<usize>,
    /// Campaigns per LinkedIn account; `None` draws 3–6.
    pub linkedin_campaigns: Option<usize>,
    /// Days of spend, ending the day before `today`; `None` = 90. Fewer than 30 are taken
    /// as 30.
    pub days: Option<u32>,
    /// Google Ads customers served: the first N of [`GOOGLE_ADS_CUSTOMERS`]; `None` = all.
    pub google_accounts: Option<usize>,
    /// Meta ad accounts served: the first N of [`META_ACCOUNTS`]; `None` = all.
    pub meta_accounts: Option<usize>,
    /// LinkedIn accounts served: the first N of [`LINKEDIN_ACCOUNTS`]; `None` = all.
    pub linkedin_accounts: Option<usize>,
}

impl SpendShape {
    /// The spend-heavy shape at `leads` leads: one Google Ads customer and one Meta account
    /// over 365 days, with campaigns growing with the leads — about 880 Google and 590 Meta
    /// campaigns at a million (at least 10 each). LinkedIn keeps the small shape.
    pub fn heavy(leads: usize) -> SpendShape {
        let per_million = |n: usize| (n.saturating_mul(leads) / 1_000_000).max(10);
        SpendShape {
            google_campaigns: Some(per_million(880)),
            meta_campaigns: Some(per_million(590)),
            linkedin_campaigns: None,
            days: Some(365),
            google_accounts: Some(1),
            meta_accounts: Some(1),
            linkedin_accounts: None,
        }
    }

    fn volume(&self, campaigns: Option<usize>) -> Volume {
        Volume {
            campaigns,
            days: self.days.map_or(Volume::default().days, i64::from),
        }
    }
}

/// The first `n` of `accounts` (all when `None`).
fn first(
    accounts: &'static [(&'static str, &'static str)],
    n: Option<usize>,
) -> &'static [(&'static str, &'static str)] {
    &accounts[..n.map_or(accounts.len(), |n| n.min(accounts.len()))]
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            scale: 1_000,
            today: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
            malformed_every: 0,
            spend: SpendShape::default(),
        }
    }
}

/// What the SurveyMonkey twin serves (the same pulse, SurveyMonkey-shaped, with partials).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SurveyMonkeyTotals {
    /// All responses served, partial ones included.
    pub responses: usize,
    /// Responses with `response_status = partial` (never scored).
    pub partial: usize,
    /// Completed responses whose eNPS choice id is not in the survey (rejects).
    pub malformed: usize,
    /// Completed, well-formed responses with an eNPS answer.
    pub scored: usize,
    /// eNPS answers per score 0..=10.
    pub enps_distribution: [usize; 11],
    /// Every raw e-mail and employee id the SurveyMonkey data contains.
    pub raw_identifiers: Vec<String>,
}

/// Counts of what the sandbox serves, for tests to check a pipeline against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// All contacts served (valid + malformed).
    pub contacts: usize,
    /// Contacts whose `createdate` is `"not-a-date"`.
    pub contacts_malformed: usize,
    /// All ad spend rows, all platforms and accounts (valid + malformed).
    pub spend_rows: usize,
    /// Rows whose `costMicros` is `"12x5"`.
    pub spend_rows_malformed: usize,
    /// All completed Typeform responses served.
    pub survey_responses: usize,
    /// Responses whose eNPS answer is out of range (14).
    pub survey_responses_malformed: usize,
    /// Responses with a valid eNPS answer (0–10), malformed ones excluded.
    pub survey_scored: usize,
    /// Valid eNPS answers per score 0..=10.
    pub enps_distribution: [usize; 11],
    /// Every raw e-mail, network id and employee id in the Typeform data.
    pub survey_raw_identifiers: Vec<String>,
    /// Every raw contact e-mail served.
    pub contact_emails: Vec<String>,
    /// The SurveyMonkey twin.
    pub surveymonkey: SurveyMonkeyTotals,
    /// Salesforce leads served (`scale / 2`, at least 20), before any simulated deletes.
    pub salesforce_leads: usize,
    /// Salesforce leads whose `CreatedDate` is `"not-a-date"`.
    pub salesforce_leads_malformed: usize,
}

/// State one twin keeps for itself beside the shared world: made from the data on first
/// use ([`SandboxData::twin_state`]), then shared by every request; interior mutability
/// (atomics, a mutex) for whatever changes.
pub(crate) trait TwinState: Send + Sync + 'static {
    /// The state before the twin's first request, from the data (its options, the world).
    fn new(data: &SandboxData) -> Self;
}

/// The generated data, immutable once built and shared by every request handler.
pub struct SandboxData {
    pub(crate) options: SandboxOptions,
    /// `today` in days since the epoch.
    pub(crate) today_days: i64,
    pub(crate) contacts: ContactModel,
    pub(crate) customers: Vec<Customer>,
    pub(crate) meta_accounts: Vec<Customer>,
    pub(crate) linkedin_accounts: Vec<Customer>,
    pub(crate) control: SpendControl,
    pub(crate) survey: Survey,
    /// The CRM twins' simulated edits, limits and sessions.
    pub(crate) crm: CrmState,
    /// 429s in the vendors' terse shapes, armed on demand.
    pub(crate) rate_limits: RateLimitShapes,
    totals: Totals,
    requests: AtomicU64,
    /// Survey responses submitted after this (epoch seconds) are not served yet.
    survey_cutoff: AtomicI64,
    /// What each twin keeps for itself, by type (see [`SandboxData::twin_state`]).
    twin_states: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for SandboxData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxData")
            .field("options", &self.options)
            .field("contacts", &self.totals.contacts)
            .field("spend_rows", &self.totals.spend_rows)
            .field("survey_responses", &self.totals.survey_responses)
            .field("requests_served", &self.requests_served())
            .finish_non_exhaustive()
    }
}

impl SandboxData {
    /// Builds the data set (a million contacts take about a second: contacts are
    /// regenerated per page, only their e-mails are kept for [`Totals`]).
    pub fn generate(opts: &SandboxOptions) -> SandboxData {
        let today_days = i64::from(opts.today.num_days_from_ce()) - UNIX_EPOCH_FROM_CE;
        let end_ms = today_days * 86_400_000;
        let customers = spend::generate(
            opts.seed,
            opts.scale,
            today_days,
            opts.malformed_every,
            first(GOOGLE_ADS_CUSTOMERS, opts.spend.google_accounts),
            opts.spend.volume(opts.spend.google_campaigns),
        );
        let meta_accounts = spend::generate(
            opts.seed ^ 0x4d45_5441,
            opts.scale,
            today_days,
            opts.malformed_every,
            first(META_ACCOUNTS, opts.spend.meta_accounts),
            opts.spend.volume(opts.spend.meta_campaigns),
        );
        let linkedin_accounts = spend::generate(
            opts.seed ^ 0x4c49_4e4b,
            opts.scale,
            today_days,
            opts.malformed_every,
            first(LINKEDIN_ACCOUNTS, opts.spend.linkedin_accounts),
            opts.spend.volume(opts.spend.linkedin_campaigns),
        );
        let search_campaigns = customers
            .iter()
            .flat_map(|c| c.campaigns.iter())
            .filter(|c| c.channel == "SEARCH")
            .map(|c| c.id)
            .collect();
        let contacts = ContactModel::new(
            opts.seed,
            opts.scale,
            end_ms,
            opts.malformed_every,
            search_campaigns,
        );
        let survey = Survey::generate(opts.seed, opts.scale, end_ms / 1_000, opts.malformed_every);
        let all_accounts: Vec<&Customer> = customers
            .iter()
            .chain(&meta_accounts)
            .chain(&linkedin_accounts)
            .collect();
        let mut totals = Self::count(&contacts, &all_accounts, &survey);
        let leads = ContactModel::new(
            opts.seed ^ SALESFORCE_SEED_XOR,
            (opts.scale / 2).max(20),
            end_ms,
            opts.malformed_every,
            Vec::new(),
        );
        totals.salesforce_leads = leads.count();
        totals.salesforce_leads_malformed = (0..leads.count())
            .filter(|&i| leads.is_malformed(i))
            .count();
        let crm = CrmState::new(opts.seed, leads, end_ms);
        SandboxData {
            options: opts.clone(),
            today_days,
            contacts,
            customers,
            meta_accounts,
            linkedin_accounts,
            control: SpendControl::default(),
            survey,
            crm,
            rate_limits: Default::default(),
            totals,
            requests: AtomicU64::new(0),
            survey_cutoff: AtomicI64::new(i64::MAX),
            twin_states: Mutex::default(),
        }
    }

    fn count(contacts: &ContactModel, customers: &[&Customer], survey: &Survey) -> Totals {
        let rows = customers.iter().flat_map(|c| c.rows.iter());
        let mut enps_distribution = [0usize; 11];
        for response in survey.responses.iter().filter(|r| !r.malformed) {
            if let Some(score) = response.enps.filter(|&s| s <= 10) {
                enps_distribution[usize::from(score)] += 1;
            }
        }
        Totals {
            contacts: contacts.count(),
            contacts_malformed: (0..contacts.count())
                .filter(|&i| contacts.is_malformed(i))
                .count(),
            spend_rows: rows.clone().count(),
            spend_rows_malformed: rows.filter(|r| r.malformed).count(),
            survey_responses: survey.responses.len(),
            survey_responses_malformed: survey.responses.iter().filter(|r| r.malformed).count(),
            survey_scored: enps_distribution.iter().sum(),
            enps_distribution,
            survey_raw_identifiers: survey.raw_identifiers(),
            contact_emails: (0..contacts.count()).map(|i| contacts.email(i)).collect(),
            surveymonkey: Self::count_surveymonkey(survey, i64::MAX),
            salesforce_leads: 0,
            salesforce_leads_malformed: 0,
        }
    }

    fn count_surveymonkey(survey: &Survey, cutoff: i64) -> SurveyMonkeyTotals {
        let mut totals = SurveyMonkeyTotals::default();
        let mut identifiers = std::collections::BTreeSet::new();
        for r in survey.responses.iter().filter(|r| r.submitted_s <= cutoff) {
            totals.responses += 1;
            let employee = &survey.employees[r.employee];
            identifiers.insert(employee.email());
            identifiers.insert(employee.employee_id());
            if is_partial(r) {
                totals.partial += 1;
            } else if r.malformed {
                totals.malformed += 1;
            } else if let Some(score) = r.enps.filter(|&s| s <= 10) {
                totals.scored += 1;
                totals.enps_distribution[usize::from(score)] += 1;
            }
        }
        totals.raw_identifiers = identifiers.into_iter().collect();
        totals
    }

    /// Hide survey responses submitted after `cutoff_s` (epoch seconds) from both survey
    /// twins until [`SandboxData::release_survey_responses`]: "responses added between runs".
    pub fn hold_survey_responses_after(&self, cutoff_s: i64) {
        self.survey_cutoff.store(cutoff_s, Ordering::Relaxed);
    }

    /// Serve every survey response again.
    pub fn release_survey_responses(&self) {
        self.survey_cutoff.store(i64::MAX, Ordering::Relaxed);
    }

    /// Survey responses submitted after this are held back (epoch seconds).
    pub fn survey_cutoff(&self) -> i64 {
        self.survey_cutoff.load(Ordering::Relaxed)
    }

    /// Typeform responses served under the current cutoff.
    pub fn visible_typeform_responses(&self) -> usize {
        let cutoff = self.survey_cutoff();
        self.survey
            .responses
            .iter()
            .filter(|r| r.submitted_s <= cutoff)
            .count()
    }

    /// What the SurveyMonkey twin serves under the current cutoff.
    pub fn visible_surveymonkey(&self) -> SurveyMonkeyTotals {
        Self::count_surveymonkey(&self.survey, self.survey_cutoff())
    }

    /// The state of type `T` a twin keeps for itself (its request counter, its own records),
    /// made by [`TwinState::new`] on first use and shared from then on. The type is the key:
    /// each twin declares its own, so the shared world never names a vendor's counters.
    pub(crate) fn twin_state<T: TwinState>(&self) -> Arc<T> {
        let key = TypeId::of::<T>();
        let found = self.twin_states().get(&key).map(Arc::clone);
        let state = match found {
            Some(state) => state,
            None => {
                // Made outside the lock, so a state may read another twin's; if two requests
                // race, both make the same value (it is a function of the data) and the
                // first one stored is kept.
                let made: Arc<dyn Any + Send + Sync> = Arc::new(T::new(self));
                Arc::clone(self.twin_states().entry(key).or_insert(made))
            }
        };
        match state.downcast::<T>() {
            Ok(state) => state,
            Err(_) => unreachable!("twin states are keyed by their own TypeId"),
        }
    }

    fn twin_states(&self) -> MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        self.twin_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Restatement and faults of the ad platforms, switched at run time.
    pub fn control(&self) -> &SpendControl {
        &self.control
    }

    /// Every ad spend row as served now (restatements applied), for tests to total.
    pub fn spend_facts(&self) -> Vec<SpendFact> {
        let mut out = Vec::new();
        for (platform, accounts) in self.platforms() {
            for account in accounts {
                for row in &account.rows {
                    let (cost_micros, impressions, clicks) = self.control.restated(
                        self.today_days,
                        row.day,
                        (row.cost_micros, row.impressions, row.clicks),
                    );
                    out.push(SpendFact {
                        platform,
                        account_id: account.id.to_string(),
                        currency: account.currency.to_string(),
                        campaign_id: account.campaigns[row.campaign].id.to_string(),
                        date: super::encoding::format_date(row.day),
                        cost_micros,
                        impressions,
                        clicks,
                        malformed: row.malformed,
                    });
                }
            }
        }
        out
    }

    /// `(platform, accounts)` of every ad platform the sandbox serves.
    fn platforms(&self) -> [(&'static str, &[Customer]); 3] {
        [
            ("google_ads", &self.customers),
            ("meta_ads", &self.meta_accounts),
            ("linkedin_ads", &self.linkedin_accounts),
        ]
    }

    /// What the sandbox serves, counted.
    pub fn totals(&self) -> Totals {
        self.totals.clone()
    }

    /// Requests answered so far (every route, including 401s and 404s).
    pub fn requests_served(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// 429s sent to `vendor` since it was last armed.
    pub fn rate_limit_refusals(&self, vendor: &str) -> u64 {
        self.rate_limits.refusals(vendor)
    }

    pub(crate) fn options(&self) -> &SandboxOptions {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_documented_ones() {
        let o = SandboxOptions::default();
        assert_eq!((o.seed, o.scale, o.malformed_every), (42, 1_000, 0));
        assert_eq!(o.today.to_string(), "2026-11-20");
    }

    #[test]
    fn generation_is_deterministic() {
        let opts = SandboxOptions {
            malformed_every: 13,
            scale: 400,
            ..SandboxOptions::default()
        };
        let a = SandboxData::generate(&opts);
        let b = SandboxData::generate(&opts);
        assert_eq!(a.totals(), b.totals());
        assert_eq!(a.today_days, 20_777);
        for i in [0, 17, 399] {
            assert_eq!(
                format!("{:?}", a.contacts.contact(i)),
                format!("{:?}", b.contacts.contact(i))
            );
        }
        let other = SandboxData::generate(&SandboxOptions { seed: 7, ..opts });
        assert_ne!(a.totals(), other.totals());
    }

    #[test]
    fn a_spend_shape_chooses_accounts_campaigns_and_days() {
        let opts = SandboxOptions {
            scale: 200,
            malformed_every: 200,
            spend: SpendShape {
                google_campaigns: Some(12),
                meta_campaigns: Some(7),
                days: Some(40),
                google_accounts: Some(1),
                meta_accounts: Some(1),
                linkedin_accounts: Some(0),
                ..SpendShape::default()
            },
            ..SandboxOptions::default()
        };
        let data = SandboxData::generate(&opts);
        assert_eq!(data.customers.len(), 1);
        assert_eq!(data.customers[0].id, GOOGLE_ADS_CUSTOMERS[0].0);
        assert_eq!(data.customers[0].campaigns.len(), 12);
        assert_eq!(data.meta_accounts.len(), 1);
        assert_eq!(data.meta_accounts[0].campaigns.len(), 7);
        assert!(data.linkedin_accounts.is_empty());
        let first_day = data.today_days - 40;
        let facts = data.spend_facts();
        assert!(
            facts
                .iter()
                .any(|f| f.date == super::super::encoding::format_date(first_day))
        );
        let totals = data.totals();
        assert_eq!(totals.spend_rows, facts.len());
        assert_eq!(
            totals.spend_rows_malformed,
            facts.iter().filter(|f| f.malformed).count()
        );
        // Every 200th row of each platform: Google's and Meta's counts round down apart.
        let every = totals.spend_rows / 200;
        assert!((every - 1..=every).contains(&totals.spend_rows_malformed));
    }

    #[test]
    fn the_heavy_shape_grows_campaigns_with_leads() {
        let million = SpendShape::heavy(1_000_000);
        assert_eq!(million.google_campaigns, Some(880));
        assert_eq!(million.meta_campaigns, Some(590));
        assert_eq!(
            (million.days, million.google_accounts),
            (Some(365), Some(1))
        );
        assert_eq!(SpendShape::heavy(100_000).google_campaigns, Some(88));
        assert_eq!(SpendShape::heavy(1_000).meta_campaigns, Some(10));
    }

    /// `cargo test -- --ignored generates_a_million` (about 2 s in a debug build).
    #[test]
    #[ignore = "takes seconds and ~100 MB; run on demand"]
    fn generates_a_million_contacts_quickly() {
        let started = std::time::Instant::now();
        let data = SandboxData::generate(&SandboxOptions {
            scale: 1_000_000,
            malformed_every: 1_000,
            ..SandboxOptions::default()
        });
        let totals = data.totals();
        let elapsed = started.elapsed();
        assert_eq!(totals.contacts, 1_000_000);
        assert!(
            totals.survey_responses > 150_000,
            "{}",
            totals.survey_responses
        );
        assert!(elapsed.as_secs() < 10, "{elapsed:?}");
        let page_started = std::time::Instant::now();
        let contacts: Vec<_> = (999_900..1_000_000)
            .map(|i| data.contacts.contact(i))
            .collect();
        assert_eq!(contacts.len(), 100);
        eprintln!(
            "generated in {elapsed:?}; last page of 100 contacts in {:?}",
            page_started.elapsed()
        );
    }

    #[test]
    fn each_twin_state_type_is_made_once_and_shared() {
        struct Counter(AtomicU64);
        impl TwinState for Counter {
            fn new(data: &SandboxData) -> Self {
                Counter(AtomicU64::new(data.options().scale as u64))
            }
        }
        struct Other(AtomicU64);
        impl TwinState for Other {
            fn new(data: &SandboxData) -> Self {
                // A state may read another twin's while it is made.
                Other(AtomicU64::new(
                    data.twin_state::<Counter>().0.load(Ordering::Relaxed),
                ))
            }
        }
        let data = SandboxData::generate(&SandboxOptions {
            scale: 30,
            ..SandboxOptions::default()
        });
        data.twin_state::<Counter>()
            .0
            .fetch_add(2, Ordering::Relaxed);
        data.twin_state::<Counter>()
            .0
            .fetch_add(1, Ordering::Relaxed);
        assert_eq!(data.twin_state::<Counter>().0.load(Ordering::Relaxed), 33);
        assert_eq!(data.twin_state::<Other>().0.load(Ordering::Relaxed), 33);
        data.twin_state::<Other>().0.fetch_add(1, Ordering::Relaxed);
        assert_eq!(data.twin_state::<Counter>().0.load(Ordering::Relaxed), 33);
        assert_eq!(data.twin_state::<Other>().0.load(Ordering::Relaxed), 34);
    }

    #[test]
    fn totals_add_up() {
        let opts = SandboxOptions {
            malformed_every: 10,
            scale: 300,
            ..SandboxOptions::default()
        };
        let t = SandboxData::generate(&opts).totals();
        assert_eq!(t.contacts, 300);
        assert_eq!(t.contacts_malformed, 30);
        assert_eq!(t.contact_emails.len(), 300);
        // Every 10th row of each platform, counted per platform.
        let data = SandboxData::generate(&opts);
        let per_platform: usize = ["google_ads", "meta_ads", "linkedin_ads"]
            .iter()
            .map(|p| {
                data.spend_facts()
                    .iter()
                    .filter(|f| f.platform == *p)
                    .count()
                    / 10
            })
            .sum();
        assert_eq!(t.spend_rows_malformed, per_platform);
        assert_eq!(t.survey_responses_malformed, t.survey_responses / 10);
        assert!(t.survey_scored <= t.survey_responses - t.survey_responses_malformed);
        assert!(t.survey_scored * 10 > (t.survey_responses - t.survey_responses_malformed) * 8);
        assert!(t.survey_raw_identifiers.iter().any(|s| s.starts_with('E')));
        assert!(t.survey_raw_identifiers.iter().any(|s| s.contains('@')));
    }
}
