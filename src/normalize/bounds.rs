//! Plausibility bounds on canonical rows: what a decoded record may hold before it reaches a
//! table. A value can parse and still be nonsense — negative spend, a click count below
//! zero, a date in year 9999, a 10 MB company name — and such values do harm downstream
//! (CPSQL understated, a metric table with a row per month up to year 9999, a BI tool
//! choking on a cell). Every row of every source passes [`Plausible::check`] on its way
//! into the staged output, so the rules hold whatever the vendor.
//!
//! Per column, one of two outcomes (the README's "Implausible values" table lists them):
//! - **rejected** (into `_rejects` with the reason) when the value is the record's point or
//!   its identity and no part of the record can be trusted for it: negative spend,
//!   impressions or clicks, a spend day after the run's day or before 2000, a costs month
//!   more than a year after the run's, an id longer than 256 bytes;
//! - **kept** with the value mended (set to null, or free text cut to 1,000 characters) and
//!   the record counted in `_runs.warnings` with its id, when the rest of the record stands
//!   on its own: a timestamp more than a day after the run's clock or before 1900, a
//!   negative engagement count, an over-long text.

use serde_json::Value;

/// Longest id (bytes) a record may carry; longer is not an id.
pub const MAX_ID_BYTES: usize = 256;
/// Longest free-text value (characters); longer is cut to this.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Longest JSON-object column (`extra_scores`, `kept_text`) in bytes; longer is nulled
/// (cutting JSON would break it).
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// How far past the run's clock a timestamp may be (clock skew, a long run, time zones).
const FUTURE_SLACK_MICROS: i64 = 86_400 * 1_000_000;
/// 1900-01-01T00:00:00Z in µs: nothing in a CRM or survey happened before.
const EARLIEST_MICROS: i64 = -2_208_988_800 * 1_000_000;
/// 2000-01-01 in days since 1970: no ad platform or cost record is older.
const EARLIEST_DAY: i32 = 10_957;

/// The run's clock, against which dates are judged.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    now_micros: i64,
}

impl Bounds {
    /// Bounds for a run whose clock reads `now_micros` (µs since the epoch, UTC).
    pub fn new(now_micros: i64) -> Self {
        Bounds { now_micros }
    }

    /// The run's day, in days since 1970-01-01.
    fn today(&self) -> i32 {
        i32::try_from(self.now_micros.div_euclid(86_400 * 1_000_000)).unwrap_or(i32::MAX)
    }
}

/// Why a kept record was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A timestamp more than a day after the run's clock: set to null.
    Future,
    /// A timestamp before 1900: set to null.
    TooOld,
    /// A count below zero: set to null.
    Negative,
    /// Free text longer than [`MAX_TEXT_CHARS`]: cut.
    TooLong,
    /// An id longer than [`MAX_ID_BYTES`] in an optional column: set to null.
    NotAnId,
}

impl Rule {
    /// What the warning says about the records it flags.
    pub fn describe(self) -> String {
        match self {
            Rule::Future => {
                "dated more than a day after the run's clock: value set to null, record kept".into()
            }
            Rule::TooOld => "dated before 1900: value set to null, record kept".into(),
            Rule::Negative => "negative: value set to null, record kept".into(),
            Rule::TooLong => {
                format!("longer than {MAX_TEXT_CHARS} characters: cut to that, record kept")
            }
            Rule::NotAnId => {
                format!("longer than {MAX_ID_BYTES} bytes, not an id: set to null, record kept")
            }
        }
    }
}

/// A kept record's flagged column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The column.
    pub column: &'static str,
    /// What was wrong with it.
    pub rule: Rule,
}

/// A canonical row as JSON, for `_rejects.record` (long strings cut: a rejected 10 MB value
/// must not be written whole either).
pub trait RowJson {
    /// The row as a JSON object keyed by column.
    fn to_json(&self) -> Value;
}

/// The plausibility rules of one dataset's rows.
pub trait Plausible: RowJson {
    /// The record's id, named in warnings (never personal: ids, not e-mails).
    fn record_id(&self) -> String {
        String::new()
    }

    /// Check the row and mend what may be mended (pushing a [`Finding`] for each); `Err`
    /// rejects the record with the reason.
    fn check(&mut self, _bounds: &Bounds, _found: &mut Vec<Finding>) -> Result<(), String> {
        Ok(())
    }
}

/// A required id: too long rejects the record.
fn id(value: &str, column: &str) -> Result<(), String> {
    if value.len() > MAX_ID_BYTES {
        return Err(format!(
            "{column} is {} bytes long (more than {MAX_ID_BYTES}): not an id",
            value.len()
        ));
    }
    Ok(())
}

/// Text a row holds, owned: a `String`, or a short string held inline.
trait OwnedText: std::ops::Deref<Target = str> {
    /// Cut to its first `len` bytes (at a character boundary) and give back the room.
    fn cut(&mut self, len: usize);
}

impl OwnedText for String {
    fn cut(&mut self, len: usize) {
        self.truncate(len);
        self.shrink_to_fit();
    }
}

impl OwnedText for compact_str::CompactString {
    fn cut(&mut self, len: usize) {
        self.truncate(len);
        self.shrink_to_fit();
    }
}

/// An optional id: too long is nulled.
fn opt_id<T: OwnedText>(value: &mut Option<T>, column: &'static str, found: &mut Vec<Finding>) {
    if value.as_ref().is_some_and(|v| v.len() > MAX_ID_BYTES) {
        *value = None;
        found.push(Finding {
            column,
            rule: Rule::NotAnId,
        });
    }
}

/// Free text: cut to [`MAX_TEXT_CHARS`].
fn text<T: OwnedText>(value: &mut T, column: &'static str, found: &mut Vec<Finding>) {
    // Bytes first: a short string needs no character walk.
    if value.len() <= MAX_TEXT_CHARS {
        return;
    }
    if let Some((cut, _)) = value.char_indices().nth(MAX_TEXT_CHARS) {
        value.cut(cut);
        found.push(Finding {
            column,
            rule: Rule::TooLong,
        });
    }
}

fn opt_text<T: OwnedText>(value: &mut Option<T>, column: &'static str, found: &mut Vec<Finding>) {
    if let Some(v) = value.as_mut() {
        text(v, column, found);
    }
}

/// A JSON-object column: too long is nulled.
fn opt_json(value: &mut Option<String>, column: &'static str, found: &mut Vec<Finding>) {
    if value.as_ref().is_some_and(|v| v.len() > MAX_JSON_BYTES) {
        *value = None;
        found.push(Finding {
            column,
            rule: Rule::TooLong,
        });
    }
}

/// A count of events: below zero is nulled.
fn count(value: &mut Option<i64>, column: &'static str, found: &mut Vec<Finding>) {
    if value.is_some_and(|v| v < 0) {
        *value = None;
        found.push(Finding {
            column,
            rule: Rule::Negative,
        });
    }
}

/// A timestamp: after the clock (plus a day) or before 1900 is nulled.
fn timestamp(
    value: &mut Option<i64>,
    column: &'static str,
    bounds: &Bounds,
    found: &mut Vec<Finding>,
) {
    let Some(micros) = *value else { return };
    let rule = if micros > bounds.now_micros.saturating_add(FUTURE_SLACK_MICROS) {
        Rule::Future
    } else if micros < EARLIEST_MICROS {
        Rule::TooOld
    } else {
        return;
    };
    *value = None;
    found.push(Finding { column, rule });
}

fn date_text(days: i32) -> String {
    crate::days::checked_from_epoch_days(days).map_or_else(|| days.to_string(), |d| d.to_string())
}

/// Money in micros as a decimal string.
pub(crate) fn money_text(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

impl Plausible for super::LeadRow {
    fn record_id(&self) -> String {
        self.lead_id.to_string()
    }

    fn check(&mut self, bounds: &Bounds, found: &mut Vec<Finding>) -> Result<(), String> {
        id(&self.lead_id, "lead_id")?;
        opt_id(&mut self.owner_id, "owner_id", found);
        opt_id(&mut self.campaign_id, "campaign_id", found);
        for (value, column) in [
            (&mut self.email_domain, "email_domain"),
            (&mut self.company, "company"),
            (&mut self.job_title, "job_title"),
            (&mut self.country, "country"),
            (&mut self.channel, "channel"),
            (&mut self.lifecycle_stage_raw, "lifecycle_stage_raw"),
            (&mut self.lead_status_raw, "lead_status_raw"),
            (&mut self.authority, "authority"),
            (&mut self.rejection_reason, "rejection_reason"),
            (&mut self.industry, "industry"),
        ] {
            opt_text(value, column, found);
        }
        for (value, column) in [
            (&mut self.content_downloads, "content_downloads"),
            (&mut self.web_visits, "web_visits"),
            (&mut self.email_engagements, "email_engagements"),
            (&mut self.employee_count, "employee_count"),
        ] {
            count(value, column, found);
        }
        for (value, column) in [
            (&mut self.created_at, "created_at"),
            (&mut self.updated_at, "updated_at"),
            (&mut self.mql_at, "mql_at"),
            (&mut self.sal_at, "sal_at"),
            (&mut self.sal_rejected_at, "sal_rejected_at"),
            (&mut self.sql_at, "sql_at"),
            (&mut self.opportunity_at, "opportunity_at"),
            (&mut self.customer_at, "customer_at"),
            (&mut self.first_contacted_at, "first_contacted_at"),
            (&mut self.last_intent_at, "last_intent_at"),
        ] {
            timestamp(value, column, bounds, found);
        }
        if self.annual_revenue.is_some_and(|r| r < 0) {
            self.annual_revenue = None;
            found.push(Finding {
                column: "annual_revenue",
                rule: Rule::Negative,
            });
        }
        opt_text(
            &mut self.annual_revenue_currency,
            "annual_revenue_currency",
            found,
        );
        // An implausible custom date is not kept: its entry goes, as if unset.
        self.custom.retain_mut(|(_, value)| match value {
            super::CustomValue::Str(v) => {
                text(v, "custom", found);
                true
            }
            super::CustomValue::Timestamp(t) => {
                let mut kept = Some(*t);
                timestamp(&mut kept, "custom", bounds, found);
                kept.is_some()
            }
            _ => true,
        });
        Ok(())
    }
}

impl Plausible for super::SpendRow {
    fn record_id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.account_id,
            self.campaign_id,
            date_text(self.date)
        )
    }

    fn check(&mut self, bounds: &Bounds, found: &mut Vec<Finding>) -> Result<(), String> {
        id(&self.account_id, "account_id")?;
        id(&self.campaign_id, "campaign_id")?;
        if self.spend < 0 {
            return Err(format!(
                "spend is negative ({}): ad platforms report no negative daily spend",
                money_text(self.spend)
            ));
        }
        for (value, column) in [(self.impressions, "impressions"), (self.clicks, "clicks")] {
            if value < 0 {
                return Err(format!("{column} is negative ({value})"));
            }
        }
        // An account's day can be a day ahead of UTC (time zones up to +14 h).
        if self.date > bounds.today().saturating_add(1) {
            return Err(format!(
                "date {} is after the run's day: spend cannot be reported for it yet",
                date_text(self.date)
            ));
        }
        if self.date < EARLIEST_DAY {
            return Err(format!(
                "date {} is before 2000: no ad platform reports it",
                date_text(self.date)
            ));
        }
        opt_text(&mut self.campaign_name, "campaign_name", found);
        opt_text(&mut self.channel, "channel", found);
        Ok(())
    }
}

impl Plausible for super::SurveyResponseRow {
    fn record_id(&self) -> String {
        self.response_id.to_string()
    }

    fn check(&mut self, bounds: &Bounds, found: &mut Vec<Finding>) -> Result<(), String> {
        id(&self.survey_id, "survey_id")?;
        id(&self.response_id, "response_id")?;
        timestamp(&mut self.submitted_at, "submitted_at", bounds, found);
        for (value, column) in [
            (&mut self.response_status, "response_status"),
            (&mut self.department, "department"),
            (&mut self.team, "team"),
            (&mut self.location, "location"),
        ] {
            opt_text(value, column, found);
        }
        opt_json(&mut self.extra_scores, "extra_scores", found);
        opt_json(&mut self.kept_text, "kept_text", found);
        opt_json(&mut self.groups, "groups", found);
        Ok(())
    }
}

impl Plausible for super::CostRow {
    fn record_id(&self) -> String {
        format!("{}/{}", date_text(self.month), self.category)
    }

    fn check(&mut self, bounds: &Bounds, found: &mut Vec<Finding>) -> Result<(), String> {
        // Costs may be planned ahead, but not by more than a year.
        if self.month > bounds.today().saturating_add(366) {
            return Err(format!(
                "month {} is more than a year after the run",
                date_text(self.month)
            ));
        }
        if self.month < EARLIEST_DAY {
            return Err(format!("month {} is before 2000", date_text(self.month)));
        }
        text(&mut self.category, "category", found);
        opt_text(&mut self.channel, "channel", found);
        Ok(())
    }
}

impl Plausible for super::IntentSignalRow {
    fn record_id(&self) -> String {
        format!(
            "{}/{}",
            date_text(self.date),
            self.topic.as_deref().unwrap_or("")
        )
    }

    fn check(&mut self, bounds: &Bounds, found: &mut Vec<Finding>) -> Result<(), String> {
        // A signal is something that happened: a date after the run is a wrong file.
        if self.date > bounds.today().saturating_add(1) {
            return Err(format!("date {} is after the run", date_text(self.date)));
        }
        if self.date < EARLIEST_DAY {
            return Err(format!("date {} is before 2000", date_text(self.date)));
        }
        opt_text(&mut self.topic, "topic", found);
        Ok(())
    }
}

impl Plausible for super::RejectRow {}
impl Plausible for super::RunRow {}

/// Flagged records of one output, counted per column and rule for `_runs.warnings`.
#[derive(Debug, Default)]
pub struct Flags {
    by_rule: std::collections::BTreeMap<(&'static str, Rule), (u64, Vec<String>)>,
    /// (column, record id) already counted: a record read twice is flagged once.
    seen: std::collections::HashSet<(&'static str, String)>,
}

/// Ids named per column and rule in a warning; the count covers the rest.
const IDS_SHOWN: usize = 5;

impl Flags {
    /// Count `found` for the record `id`.
    pub fn record(&mut self, id: &str, found: &[Finding]) {
        for finding in found {
            if !self.seen.insert((finding.column, id.to_string())) {
                continue;
            }
            let (n, ids) = self
                .by_rule
                .entry((finding.column, finding.rule))
                .or_default();
            *n += 1;
            if ids.len() < IDS_SHOWN {
                ids.push(id.to_string());
            }
        }
    }

    /// One warning per column and rule: `table.column: N records <rule> (ids: …)`.
    pub fn warnings(&self, table: &str) -> Vec<String> {
        self.by_rule
            .iter()
            .map(|((column, rule), (n, ids))| {
                let more = if *n as usize > ids.len() { ", …" } else { "" };
                format!(
                    "{table}.{column}: {n} record{} {} (ids: {}{more})",
                    if *n == 1 { "" } else { "s" },
                    rule.describe(),
                    ids.join(", ")
                )
            })
            .collect()
    }
}

/// Cut a string for `_rejects.record`: a rejected record keeps its shape, not its bulk.
pub(crate) fn json_text(value: &str) -> Value {
    const SHOWN: usize = 200;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => Value::String(format!("{}… ({} bytes)", &value[..cut], value.len())),
        None => Value::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LeadRow, SpendRow};
    use super::*;

    const NOW: i64 = 1_796_169_600_000_000; // 2026-12-02T00:00:00Z

    fn lead() -> LeadRow {
        LeadRow {
            source_system: "hubspot".into(),
            lead_id: "1".into(),
            email_hash: None,
            email_domain: None,
            company: Some("Acme".into()),
            job_title: None,
            country: None,
            owner_id: None,
            channel: None,
            campaign_id: None,
            lifecycle_stage_raw: None,
            lead_status_raw: None,
            vendor_score: Some(-5),
            demo_requested: None,
            content_downloads: Some(3),
            web_visits: Some(-1),
            email_engagements: None,
            budget_confirmed: None,
            authority: None,
            need_confirmed: None,
            timeline_confirmed: None,
            created_at: Some(NOW - 1),
            updated_at: Some(NOW + 3_600_000_000),
            mql_at: Some(253_402_300_799_000_000), // 9999-12-31T23:59:59Z
            sal_at: Some(EARLIEST_MICROS - 1),
            sal_rejected_at: None,
            rejection_reason: None,
            sql_at: None,
            opportunity_at: None,
            customer_at: None,
            first_contacted_at: None,
            last_intent_at: None,
            industry: None,
            employee_count: None,
            annual_revenue: None,
            annual_revenue_currency: None,
            custom: Vec::new(),
            is_deleted: false,
        }
    }

    #[test]
    fn a_lead_keeps_its_record_and_loses_only_the_implausible_values() {
        let bounds = Bounds::new(NOW);
        let mut row = lead();
        row.company = Some("é".repeat(MAX_TEXT_CHARS + 5).into());
        let mut found = Vec::new();
        row.check(&bounds, &mut found).unwrap();
        assert_eq!(
            row.company.as_ref().unwrap().chars().count(),
            MAX_TEXT_CHARS
        );
        assert_eq!(row.web_visits, None, "negative count nulled");
        assert_eq!(row.content_downloads, Some(3));
        assert_eq!(row.vendor_score, Some(-5), "scores may be negative");
        assert_eq!(
            row.updated_at,
            Some(NOW + 3_600_000_000),
            "within a day: kept"
        );
        assert_eq!((row.mql_at, row.sal_at), (None, None));
        let rules: Vec<(&str, Rule)> = found.iter().map(|f| (f.column, f.rule)).collect();
        assert_eq!(
            rules,
            [
                ("company", Rule::TooLong),
                ("web_visits", Rule::Negative),
                ("mql_at", Rule::Future),
                ("sal_at", Rule::TooOld),
            ]
        );
        let mut row = lead();
        row.lead_id = "9".repeat(MAX_ID_BYTES + 1).into();
        assert!(
            row.check(&bounds, &mut Vec::new())
                .unwrap_err()
                .contains("lead_id")
        );
    }

    #[test]
    fn spend_rows_with_impossible_values_are_rejected() {
        let bounds = Bounds::new(NOW);
        let row = SpendRow {
            date: 20_424, // a year before NOW
            platform: "meta_ads".into(),
            account_id: "1".into(),
            campaign_id: "2".into(),
            campaign_name: None,
            channel: None,
            currency: "EUR".into(),
            spend: 1_500_000,
            impressions: 10,
            clicks: 1,
        };
        assert_eq!(row.clone().check(&bounds, &mut Vec::new()), Ok(()));
        let reason = |change: fn(&mut SpendRow)| {
            let mut r = row.clone();
            change(&mut r);
            r.check(&bounds, &mut Vec::new()).unwrap_err()
        };
        assert!(reason(|r| r.spend = -12_500_000).contains("negative (-12.500000)"));
        assert!(reason(|r| r.clicks = -1).contains("clicks is negative"));
        assert!(reason(|r| r.impressions = -3).contains("impressions is negative"));
        assert!(reason(|r| r.date = 2_932_896).contains("9999-12-31"));
        assert!(reason(|r| r.date = 0).contains("before 2000"));
        // Tomorrow in UTC is today somewhere east.
        let mut tomorrow = row.clone();
        tomorrow.date = bounds.today() + 1;
        assert_eq!(tomorrow.check(&bounds, &mut Vec::new()), Ok(()));
    }

    #[test]
    fn warnings_count_each_record_once_and_name_a_few_ids() {
        let mut flags = Flags::default();
        let f = [Finding {
            column: "updated_at",
            rule: Rule::Future,
        }];
        for id in ["a", "b", "a", "c", "d", "e", "f"] {
            flags.record(id, &f);
        }
        assert_eq!(
            flags.warnings("leads"),
            [format!(
                "leads.updated_at: 6 records {} (ids: a, b, c, d, e, …)",
                Rule::Future.describe()
            )]
        );
        assert_eq!(
            json_text(&"x".repeat(300)).as_str().unwrap().len(),
            200 + "… (300 bytes)".len()
        );
    }
}
