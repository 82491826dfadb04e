//! The conditions of a job's stage and scoring rules, compiled to the tests they make
//! ([`Test`]), and those tests' evaluation against a lead.
//!
//! A `Condition` has some thirty members, and a rule sets two or three of them. Read member
//! by member, every unset one was still looked at, for every rule, for every lead: the
//! default rules and scoring hold about thirty conditions, so a lead paid for about nine
//! hundred checks of members nobody set. A [`Test`] keeps only the members its condition
//! sets, in the condition's order, so a lead pays for what the job asks. Every member means
//! what `config::Condition` documents; an unset member holds for every lead.

use super::config::{Condition, CustomLiteral, CustomTest, DateColumn, Stage};
use super::lead::Lead;
use super::stages::PreviousStage;
use crate::normalize::CustomValue;

/// What a condition may look at besides the lead itself.
pub(super) struct Context<'a> {
    /// The lead's score (stage rules; 0 while scoring).
    pub(super) score: i64,
    /// The lead's state in the previous run.
    pub(super) previous: Option<&'a PreviousStage>,
}

/// A condition compiled: the tests of the members it sets, all of which must hold.
#[derive(Debug)]
pub(super) struct Test<'a> {
    checks: Vec<Check<'a>>,
}

/// A text column of a lead.
type Text = fn(&Lead) -> Option<&str>;
/// A number column of a lead.
type Number = fn(&Lead) -> Option<i64>;
/// A yes/no column of a lead.
type Flag = fn(&Lead) -> Option<bool>;

/// One set member of a condition.
#[derive(Debug)]
enum Check<'a> {
    /// The column is one of these (case and surrounding spaces ignored; the words are
    /// trimmed once, here).
    OneOf(Text, Vec<&'a str>),
    /// `job_title` contains one of these words.
    TitleContains(TitleWords),
    /// These dates are all set.
    Set(&'a [DateColumn]),
    /// These dates are all unset.
    Unset(&'a [DateColumn]),
    /// The flag is this (unknown counts as false).
    Flag(Flag, bool),
    /// The lead score is at least this.
    MinScore(i64),
    /// The column is at least this.
    AtLeast(Number, i64),
    /// The column is at most this.
    AtMost(Number, i64),
    /// The third-party intent score is at least this.
    MinIntent(f64),
    /// New intent after a rejection, or not.
    NewIntentAfterRejection(bool),
    /// `annual_revenue` is at least this.
    MinRevenue(i128),
    /// `annual_revenue` is at most this.
    MaxRevenue(i128),
    /// The custom property of this name passes the test.
    Custom(&'a str, &'a CustomTest),
    /// One of these holds.
    Any(Vec<Test<'a>>),
}

impl<'a> Test<'a> {
    /// The tests of the members `c` sets, in the order `Condition` declares them.
    pub(super) fn compile(c: &'a Condition) -> Self {
        let mut checks = Vec::new();
        let mut one_of = |column: Text, list: &'a [String]| {
            if !list.is_empty() {
                checks.push(Check::OneOf(column, trimmed(list)));
            }
        };
        one_of(|l| Some(l.source_system.as_str()), &c.source_system);
        one_of(|l| l.lifecycle_stage_raw.as_deref(), &c.lifecycle_stage_raw);
        one_of(|l| l.lead_status_raw.as_deref(), &c.lead_status_raw);
        one_of(|l| l.channel.as_deref(), &c.channel);
        one_of(|l| l.country.as_deref(), &c.country);
        one_of(|l| l.authority.as_deref(), &c.authority);
        if !c.job_title_contains.is_empty() {
            checks.push(Check::TitleContains(TitleWords::new(&c.job_title_contains)));
        }
        if !c.set.is_empty() {
            checks.push(Check::Set(&c.set));
        }
        if !c.unset.is_empty() {
            checks.push(Check::Unset(&c.unset));
        }
        let flags: [(Flag, Option<bool>); 4] = [
            (|l| l.demo_requested, c.demo_requested),
            (|l| l.budget_confirmed, c.budget_confirmed),
            (|l| l.need_confirmed, c.need_confirmed),
            (|l| l.timeline_confirmed, c.timeline_confirmed),
        ];
        for (column, want) in flags {
            checks.extend(want.map(|w| Check::Flag(column, w)));
        }
        checks.extend(c.min_score.map(Check::MinScore));
        let minimums: [(Number, Option<i64>); 4] = [
            (|l| l.vendor_score, c.min_vendor_score),
            (|l| l.content_downloads, c.min_content_downloads),
            (|l| l.web_visits, c.min_web_visits),
            (|l| l.email_engagements, c.min_email_engagements),
        ];
        for (column, min) in minimums {
            checks.extend(min.map(|m| Check::AtLeast(column, m)));
        }
        checks.extend(c.min_intent_score.map(Check::MinIntent));
        checks.extend(
            c.new_intent_after_rejection
                .map(Check::NewIntentAfterRejection),
        );
        // The firmographic and custom-property members (issue 19).
        if !c.industry.is_empty() {
            checks.push(Check::OneOf(
                |l| l.industry.as_deref(),
                trimmed(&c.industry),
            ));
        }
        checks.extend(
            c.min_employee_count
                .map(|m| Check::AtLeast(|l| l.employee_count, m)),
        );
        checks.extend(
            c.max_employee_count
                .map(|m| Check::AtMost(|l| l.employee_count, m)),
        );
        checks.extend(c.min_annual_revenue.map(Check::MinRevenue));
        checks.extend(c.max_annual_revenue.map(Check::MaxRevenue));
        if !c.annual_revenue_currency.is_empty() {
            checks.push(Check::OneOf(
                |l| l.annual_revenue_currency.as_deref(),
                trimmed(&c.annual_revenue_currency),
            ));
        }
        checks.extend(
            c.custom
                .iter()
                .map(|(name, test)| Check::Custom(name, test)),
        );
        if !c.any.is_empty() {
            checks.push(Check::Any(c.any.iter().map(Test::compile).collect()));
        }
        Test { checks }
    }

    /// Does `lead` meet every test?
    pub(super) fn holds(&self, lead: &Lead, ctx: &Context<'_>) -> bool {
        self.checks.iter().all(|check| check.holds(lead, ctx))
    }
}

impl Check<'_> {
    fn holds(&self, lead: &Lead, ctx: &Context<'_>) -> bool {
        match self {
            Check::OneOf(column, list) => one_of(list, column(lead)),
            Check::TitleContains(words) => {
                lead.job_title.as_deref().is_some_and(|t| words.found_in(t))
            }
            Check::Set(dates) => dates.iter().all(|d| lead.date(*d).is_some()),
            Check::Unset(dates) => dates.iter().all(|d| lead.date(*d).is_none()),
            Check::Flag(column, want) => flag(*want, column(lead)),
            Check::MinScore(min) => ctx.score >= *min,
            Check::AtLeast(column, min) => at_least(*min, column(lead)),
            Check::AtMost(column, max) => at_most(*max, column(lead)),
            Check::MinIntent(min) => lead.intent_score.is_some_and(|v| v >= *min),
            Check::NewIntentAfterRejection(want) => {
                *want == new_intent_after_rejection(lead, ctx.previous)
            }
            Check::MinRevenue(min) => lead.annual_revenue.is_some_and(|v| v >= *min),
            Check::MaxRevenue(max) => lead.annual_revenue.is_some_and(|v| v <= *max),
            Check::Custom(name, test) => custom_matches(test, lead.custom_value(name)),
            Check::Any(tests) => tests.iter().any(|t| t.holds(lead, ctx)),
        }
    }
}

/// `list`'s words without their surrounding spaces.
fn trimmed(list: &[String]) -> Vec<&str> {
    list.iter().map(|w| w.trim()).collect()
}

fn one_of(list: &[&str], value: Option<&str>) -> bool {
    list.is_empty()
        || value.is_some_and(|v| {
            let v = crate::normalize::parse::trim(v);
            list.iter().any(|w| w.eq_ignore_ascii_case(v))
        })
}

/// The words of `job_title_contains`, with, when they are all ASCII, one automaton that
/// finds any of them, ignoring ASCII case, in a single pass over a title (the default
/// `senior_title` rule has nine words, which were each compared at every position of it).
#[derive(Debug)]
struct TitleWords {
    /// The words lowercased (once, here), for a title that is not ASCII.
    lowercase: Vec<String>,
    ascii: Option<aho_corasick::AhoCorasick>,
}

impl TitleWords {
    fn new(words: &[String]) -> Self {
        let ascii = if words.iter().all(|w| w.is_ascii()) {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(words.iter().filter(|w| !w.is_empty()))
                .ok()
        } else {
            None
        };
        let lowercase = words
            .iter()
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .collect();
        TitleWords { lowercase, ascii }
    }

    /// Does `title` contain one of the words, ignoring case? An ASCII title is searched by
    /// the automaton; anything else is lowercased first (an empty word matches nothing).
    fn found_in(&self, title: &str) -> bool {
        if let Some(automaton) = &self.ascii
            && title.is_ascii()
        {
            return automaton.is_match(title);
        }
        let title = title.to_lowercase();
        self.lowercase.iter().any(|w| title.contains(w.as_str()))
    }
}

/// An unknown flag counts as false.
fn flag(want: bool, value: Option<bool>) -> bool {
    want == value.unwrap_or(false)
}

/// An unknown number never meets a bound.
fn at_least(min: i64, value: Option<i64>) -> bool {
    value.is_some_and(|v| v >= min)
}

fn at_most(max: i64, value: Option<i64>) -> bool {
    value.is_some_and(|v| v <= max)
}

/// New intent after a rejection by sales, or after a run observed the lead disqualified —
/// unless the lead has moved on since (an SQL date, or accepted again after the rejection):
/// then the later rules place it.
fn new_intent_after_rejection(lead: &Lead, previous: Option<&PreviousStage>) -> bool {
    let Some(intent) = lead.last_intent_at else {
        return false;
    };
    let accepted_again = match (lead.sal_at, lead.sal_rejected_at) {
        (Some(accepted), Some(rejected)) => accepted > rejected,
        _ => false,
    };
    if lead.sql_at.is_some() || accepted_again {
        return false;
    }
    if lead.sal_rejected_at.is_some_and(|r| intent > r) {
        return true;
    }
    match previous {
        Some(p) if p.stage == Stage::Disqualified => p.entered_at.is_some_and(|e| intent > e),
        Some(p) if p.stage == Stage::Recycled => p.entered_at.is_some_and(|e| intent >= e),
        _ => false,
    }
}

/// Does a custom property's value equal a literal of the job? Text compares ignoring case
/// and surrounding spaces; a timestamp equals a text that is the same instant.
fn literal_eq(literal: &CustomLiteral, value: &CustomValue) -> bool {
    match (literal, value) {
        (CustomLiteral::Bool(a), CustomValue::Bool(b)) => a == b,
        (CustomLiteral::Number(a), CustomValue::Number(b)) => a == b,
        (CustomLiteral::Text(a), CustomValue::Str(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (CustomLiteral::Text(a), CustomValue::Number(b)) => {
            a.trim().parse::<f64>().is_ok_and(|a| a == *b)
        }
        (CustomLiteral::Text(a), CustomValue::Timestamp(b)) => {
            crate::normalize::parse::timestamp_micros(a).is_ok_and(|a| a == *b)
        }
        _ => false,
    }
}

/// Does a custom property (`None`: no value) pass a test?
fn custom_matches(test: &CustomTest, value: Option<&CustomValue>) -> bool {
    let any = |list: &[CustomLiteral]| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|l| literal_eq(l, v)))
    };
    let number = match value {
        Some(CustomValue::Number(n)) => Some(*n),
        _ => None,
    };
    match test {
        CustomTest::One(literal) => value.is_some_and(|v| literal_eq(literal, v)),
        CustomTest::OneOf(list) => any(list),
        CustomTest::Test(t) => {
            t.set.is_none_or(|want| want == value.is_some())
                && t.min.is_none_or(|m| number.is_some_and(|n| n >= m))
                && t.max.is_none_or(|m| number.is_some_and(|n| n <= m))
                && any(&t.one_of)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::config::{StagesConfig, default_stage_rules};

    /// A compiled condition holds only the members its condition sets, nested ones inside
    /// `any`; an empty condition holds for every lead.
    #[test]
    fn a_condition_compiles_to_the_members_it_sets() {
        let lead = Lead {
            channel: Some(" Paid_Search ".into()),
            web_visits: Some(3),
            ..Lead::default()
        };
        let ctx = Context {
            score: 15,
            previous: None,
        };
        let empty = Condition::default();
        assert!(Test::compile(&empty).checks.is_empty());
        assert!(Test::compile(&empty).holds(&lead, &ctx));
        assert!(Test::compile(&empty).holds(&Lead::default(), &ctx));

        let c = Condition {
            channel: vec!["paid_search".into()],
            min_score: Some(15),
            min_web_visits: Some(3),
            any: vec![
                Condition {
                    set: vec![DateColumn::SqlAt],
                    ..Condition::default()
                },
                Condition {
                    demo_requested: Some(false),
                    ..Condition::default()
                },
            ],
            ..Condition::default()
        };
        let test = Test::compile(&c);
        assert_eq!(test.checks.len(), 4, "{test:?}");
        let Some(Check::Any(nested)) = test.checks.last() else {
            panic!("`any` is the last check: {test:?}");
        };
        assert_eq!(
            nested.iter().map(|t| t.checks.len()).collect::<Vec<_>>(),
            [1, 1]
        );
        // Channel (case and spaces ignored), score 15 ≥ 15, 3 visits ≥ 3, and an unknown
        // demo flag counts as false.
        assert!(test.holds(&lead, &ctx));
        let low = Context {
            score: 14,
            previous: None,
        };
        assert!(!test.holds(&lead, &low));
        let fewer = Lead {
            web_visits: Some(2),
            ..lead.clone()
        };
        assert!(!test.holds(&fewer, &ctx));
        let demo = Lead {
            demo_requested: Some(true),
            ..lead.clone()
        };
        assert!(!test.holds(&demo, &ctx), "neither `any` member holds");
        let sql = Lead {
            sql_at: Some(1),
            ..demo
        };
        assert!(test.holds(&sql, &ctx));

        // Every default stage rule sets members but the last, `any_contact`.
        let empties: Vec<bool> = default_stage_rules()
            .iter()
            .map(|r| Test::compile(&r.when).checks.is_empty())
            .collect();
        assert_eq!(empties.iter().filter(|e| **e).count(), 1);
        assert_eq!(empties.last(), Some(&true));
        let scoring = StagesConfig::default().scoring;
        let unconditional = scoring
            .rules
            .iter()
            .filter(|r| Test::compile(&r.when).checks.is_empty())
            .count();
        // downloads, web_visits, email_engagements score every lead.
        assert_eq!(unconditional, 3);
    }

    /// A title contains a word when its lowercase contains the word's lowercase: whether
    /// the automaton (ASCII words and title) or the lowercasing answers.
    #[test]
    fn title_words_are_found_in_any_case_at_any_position() {
        let ascii: Vec<String> = ["VP", "vice president", "", "Head", "cto"]
            .map(String::from)
            .to_vec();
        let other: Vec<String> = ["führer", "Head of", ""].map(String::from).to_vec();
        let empty = vec![String::new()];
        let (ascii, other, empty) = (
            TitleWords::new(&ascii),
            TitleWords::new(&other),
            TitleWords::new(&empty),
        );
        assert!(ascii.ascii.is_some() && other.ascii.is_none());
        for (title, in_ascii, in_other) in [
            ("Regional vp of Sales", true, false),
            ("VICE PRESIDENT, Marketing", true, false),
            ("Vice  President", false, false),
            ("Head of IT", true, true),
            ("HEAD OF it", true, true),
            ("Geschäftsführer", false, true),
            ("GESCHÄFTSFÜHRER", false, true),
            ("Director (Köln), CTO", true, false),
            ("Engineer", false, false),
            ("", false, false),
        ] {
            assert_eq!(ascii.found_in(title), in_ascii, "{title:?}");
            assert_eq!(other.found_in(title), in_other, "{title:?}");
            assert!(!empty.found_in(title), "an empty word matches nothing");
        }
        // Generated titles against the plain definition.
        let words: Vec<String> = ["chief", "ceo", "vp", "vice president", "head", "director"]
            .map(String::from)
            .to_vec();
        let compiled = TitleWords::new(&words);
        let pieces = [
            "Chi",
            "EF",
            "c",
            "eo",
            "V",
            "p",
            " ",
            "vice",
            "PRESIDENT",
            "he",
            "AD",
            "é",
        ];
        let mut next = crate::test_support::pseudo_random(0x853c_49e6_748f_ea9b_u64);
        for _ in 0..5_000 {
            // Up to fifteen pieces; the sequence moves on for every title, empty ones too.
            let mut title = String::new();
            for _ in 0..next() % 16 {
                title.push_str(pieces[next() % pieces.len()]);
            }
            let lower = title.to_lowercase();
            let expected = words.iter().any(|w| lower.contains(w.as_str()));
            assert_eq!(compiled.found_in(&title), expected, "{title:?}");
        }
    }
}
