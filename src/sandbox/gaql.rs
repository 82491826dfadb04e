//! A small Google Ads Query Language parser for the sandbox: `SELECT fields FROM campaign
//! [WHERE cond AND …] [ORDER BY field [ASC|DESC], …] [LIMIT n] [PARAMETERS …]` over the
//! fields the sandbox serves, with Google's `QueryError` codes for what it rejects.
//!
//! Conditions: `= != > >= < <=`, `BETWEEN a AND b`, `IN (…)`, `NOT IN (…)`, and
//! `DURING` with `TODAY`, `YESTERDAY`, `LAST_7_DAYS`, `LAST_14_DAYS`, `LAST_30_DAYS`,
//! `THIS_MONTH`, `LAST_MONTH`. Dates are compared as days since the epoch.

use std::cmp::Ordering;

use super::encoding::{civil_from_days, days_from_civil};

/// A selectable, filterable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    CustomerResourceName,
    CustomerId,
    CustomerCurrencyCode,
    CustomerDescriptiveName,
    CustomerTimeZone,
    CampaignResourceName,
    CampaignId,
    CampaignName,
    CampaignChannelType,
    CampaignStatus,
    SegmentsDate,
    MetricsCostMicros,
    MetricsImpressions,
    MetricsClicks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Date,
}

/// `(GAQL name, JSON path in a result row, kind)`.
const FIELDS: &[(Field, &str, &str, Kind)] = &[
    (
        Field::CustomerResourceName,
        "customer.resource_name",
        "customer.resourceName",
        Kind::Text,
    ),
    (Field::CustomerId, "customer.id", "customer.id", Kind::Int),
    (
        Field::CustomerCurrencyCode,
        "customer.currency_code",
        "customer.currencyCode",
        Kind::Text,
    ),
    (
        Field::CustomerDescriptiveName,
        "customer.descriptive_name",
        "customer.descriptiveName",
        Kind::Text,
    ),
    (
        Field::CustomerTimeZone,
        "customer.time_zone",
        "customer.timeZone",
        Kind::Text,
    ),
    (
        Field::CampaignResourceName,
        "campaign.resource_name",
        "campaign.resourceName",
        Kind::Text,
    ),
    (Field::CampaignId, "campaign.id", "campaign.id", Kind::Int),
    (
        Field::CampaignName,
        "campaign.name",
        "campaign.name",
        Kind::Text,
    ),
    (
        Field::CampaignChannelType,
        "campaign.advertising_channel_type",
        "campaign.advertisingChannelType",
        Kind::Text,
    ),
    (
        Field::CampaignStatus,
        "campaign.status",
        "campaign.status",
        Kind::Text,
    ),
    (
        Field::SegmentsDate,
        "segments.date",
        "segments.date",
        Kind::Date,
    ),
    (
        Field::MetricsCostMicros,
        "metrics.cost_micros",
        "metrics.costMicros",
        Kind::Int,
    ),
    (
        Field::MetricsImpressions,
        "metrics.impressions",
        "metrics.impressions",
        Kind::Int,
    ),
    (
        Field::MetricsClicks,
        "metrics.clicks",
        "metrics.clicks",
        Kind::Int,
    ),
];

impl Field {
    fn parse(name: &str) -> Option<Self> {
        FIELDS.iter().find(|f| f.1 == name).map(|f| f.0)
    }

    fn entry(self) -> &'static (Field, &'static str, &'static str, Kind) {
        // FIELDS lists every variant; the fallback is never taken.
        FIELDS.iter().find(|f| f.0 == self).unwrap_or(&FIELDS[0])
    }

    /// `customer.currencyCode`: the path in results and in `fieldMask`.
    pub(crate) fn json_path(self) -> &'static str {
        self.entry().2
    }

    fn kind(self) -> Kind {
        self.entry().3
    }

    pub(crate) fn is_metric(self) -> bool {
        matches!(
            self,
            Self::MetricsCostMicros | Self::MetricsImpressions | Self::MetricsClicks
        )
    }
}

/// A literal after type checking; dates are days since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Some(a.cmp(b)),
            (Self::Text(a), Self::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    Compare(Field, Op, Value),
    Between(Field, Value, Value),
    In(Field, Vec<Value>),
    NotIn(Field, Vec<Value>),
}

impl Condition {
    pub(crate) fn field(&self) -> Field {
        match self {
            Self::Compare(f, ..) | Self::Between(f, ..) | Self::In(f, _) | Self::NotIn(f, _) => *f,
        }
    }

    /// Whether a row whose value of [`Self::field`] is `v` passes.
    pub(crate) fn matches(&self, v: &Value) -> bool {
        match self {
            Self::Compare(_, op, x) => match (op, v.partial_cmp(x)) {
                (Op::Eq, Some(o)) => o == Ordering::Equal,
                (Op::Ne, Some(o)) => o != Ordering::Equal,
                (Op::Gt, Some(o)) => o == Ordering::Greater,
                (Op::Ge, Some(o)) => o != Ordering::Less,
                (Op::Lt, Some(o)) => o == Ordering::Less,
                (Op::Le, Some(o)) => o != Ordering::Greater,
                (_, None) => false,
            },
            Self::Between(_, lo, hi) => v >= lo && v <= hi,
            Self::In(_, list) => list.contains(v),
            Self::NotIn(_, list) => !list.contains(v),
        }
    }
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) select: Vec<Field>,
    pub(crate) conditions: Vec<Condition>,
    /// `(field, descending)`.
    pub(crate) order_by: Vec<(Field, bool)>,
    pub(crate) limit: Option<usize>,
}

/// A rejected query: Google's `QueryError` enum name and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn fail<T>(code: &'static str, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        code,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(i64),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                out.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                });
                i += 1;
            }
            '\'' | '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return fail(
                                "STRING_NOT_TERMINATED",
                                "String literal is not terminated.",
                            );
                        }
                        Some('\\') => {
                            if let Some(&next) = chars.get(i + 1) {
                                value.push(next);
                            }
                            i += 2;
                        }
                        Some('\n') => {
                            return fail(
                                "PROHIBITED_NEWLINE_IN_STRING",
                                "Newline characters are not allowed in string literals.",
                            );
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(value));
            }
            '=' | '!' | '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                let op = match (c, two) {
                    ('=', _) => Op::Eq,
                    ('!', true) => Op::Ne,
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    ('>', true) => Op::Ge,
                    ('>', false) => Op::Gt,
                    _ => return fail("BAD_SYMBOL", format!("Unexpected symbol '{c}'.")),
                };
                i += if two || c == '!' { 2 } else { 1 };
                out.push(Tok::Op(op));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.parse::<i64>() {
                    Ok(n) => out.push(Tok::Num(n)),
                    Err(_) => out.push(Tok::Word(word)),
                }
            }
            other => return fail("BAD_SYMBOL", format!("Unexpected symbol '{other}'.")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    today: i64,
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if is_keyword(w, keyword))
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn field(&mut self) -> Result<Field, QueryError> {
        match self.next() {
            Some(Tok::Word(name)) => match Field::parse(&name) {
                Some(f) => Ok(f),
                None => fail(
                    "UNRECOGNIZED_FIELD",
                    format!("Unrecognized field in the query: '{name}'."),
                ),
            },
            Some(other) => fail(
                "UNEXPECTED_INPUT",
                format!("Expected a field name, got {other:?}."),
            ),
            None => fail("UNEXPECTED_END_OF_QUERY", "Unexpected end of query."),
        }
    }

    fn literal(&mut self, field: Field) -> Result<Value, QueryError> {
        let tok = self.next();
        match (field.kind(), tok) {
            (_, None) => fail("UNEXPECTED_END_OF_QUERY", "Unexpected end of query."),
            (Kind::Date, Some(Tok::Str(text))) => parse_date(&text).map(Value::Int),
            (Kind::Date, Some(other)) => fail(
                "INVALID_DATE_FORMAT",
                format!("Dates must be quoted 'YYYY-MM-DD' literals, got {other:?}."),
            ),
            (Kind::Int, Some(Tok::Num(n))) => Ok(Value::Int(n)),
            (Kind::Int, Some(Tok::Str(text))) => match text.parse() {
                Ok(n) => Ok(Value::Int(n)),
                Err(_) => fail("BAD_NUMBER", format!("'{text}' is not a number.")),
            },
            (Kind::Text, Some(Tok::Str(text) | Tok::Word(text))) => Ok(Value::Text(text)),
            (Kind::Text, Some(Tok::Num(n))) => Ok(Value::Text(n.to_string())),
            (_, Some(other)) => fail("BAD_VALUE", format!("Unexpected value {other:?}.")),
        }
    }

    fn list(&mut self, field: Field) -> Result<Vec<Value>, QueryError> {
        if self.next() != Some(Tok::LParen) {
            return fail("EXPECTED_LIST", "Expected a parenthesized list of values.");
        }
        let mut values = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            return fail(
                "PROHIBITED_EMPTY_LIST_IN_CONDITION",
                "Empty list in condition.",
            );
        }
        loop {
            values.push(self.literal(field)?);
            match self.next() {
                Some(Tok::Comma) => {}
                Some(Tok::RParen) => return Ok(values),
                _ => return fail("UNEXPECTED_INPUT", "Expected ',' or ')' in the list."),
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, QueryError> {
        let field = self.field()?;
        match self.next() {
            Some(Tok::Op(op)) => Ok(Condition::Compare(field, op, self.literal(field)?)),
            Some(Tok::Word(w)) if is_keyword(&w, "BETWEEN") => {
                let lo = self.literal(field)?;
                if !self.peek_keyword("AND") {
                    return fail("EXPECTED_AND", "Expected AND in the BETWEEN condition.");
                }
                self.pos += 1;
                let hi = self.literal(field)?;
                Ok(Condition::Between(field, lo, hi))
            }
            Some(Tok::Word(w)) if is_keyword(&w, "IN") => {
                Ok(Condition::In(field, self.list(field)?))
            }
            Some(Tok::Word(w)) if is_keyword(&w, "NOT") => {
                if !self.peek_keyword("IN") {
                    return fail("BAD_OPERATOR", "Only NOT IN is supported after NOT.");
                }
                self.pos += 1;
                Ok(Condition::NotIn(field, self.list(field)?))
            }
            Some(Tok::Word(w)) if is_keyword(&w, "DURING") => {
                if field.kind() != Kind::Date {
                    return fail(
                        "OPERATOR_FIELD_MISMATCH",
                        "DURING applies to date fields only.",
                    );
                }
                let constant = match self.next() {
                    Some(Tok::Word(c)) => c,
                    _ => {
                        return fail(
                            "INVALID_VALUE_WITH_DURING_OPERATOR",
                            "Expected a date range.",
                        );
                    }
                };
                let (lo, hi) = during(&constant, self.today)?;
                Ok(Condition::Between(field, Value::Int(lo), Value::Int(hi)))
            }
            Some(other) => fail("BAD_OPERATOR", format!("Unsupported operator {other:?}.")),
            None => fail("UNEXPECTED_END_OF_QUERY", "Unexpected end of query."),
        }
    }
}

/// `'YYYY-MM-DD'` → days since the epoch.
fn parse_date(text: &str) -> Result<i64, QueryError> {
    let bad = || {
        fail(
            "INVALID_DATE_FORMAT",
            format!("Invalid date '{text}': expected YYYY-MM-DD."),
        )
    };
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return bad();
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        parts[0].parse::<i64>(),
        parts[1].parse::<u32>(),
        parts[2].parse::<u32>(),
    ) else {
        return bad();
    };
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return bad();
    }
    Ok(days)
}

/// Inclusive day range of a `DURING` constant relative to `today`.
fn during(constant: &str, today: i64) -> Result<(i64, i64), QueryError> {
    let (y, m, _) = civil_from_days(today);
    let month_start = days_from_civil(y, m, 1);
    Ok(match constant.to_ascii_uppercase().as_str() {
        "TODAY" => (today, today),
        "YESTERDAY" => (today - 1, today - 1),
        "LAST_7_DAYS" => (today - 7, today - 1),
        "LAST_14_DAYS" => (today - 14, today - 1),
        "LAST_30_DAYS" => (today - 30, today - 1),
        "THIS_MONTH" => (month_start, today),
        "LAST_MONTH" => {
            let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
            (days_from_civil(py, pm, 1), month_start - 1)
        }
        _ => {
            return fail(
                "INVALID_VALUE_WITH_DURING_OPERATOR",
                format!("'{constant}' is not a date range the sandbox supports."),
            );
        }
    })
}

/// Parses `text`; `today` (days since the epoch) resolves `DURING` ranges.
pub(crate) fn parse(text: &str, today: i64) -> Result<Query, QueryError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        today,
    };
    if !p.peek_keyword("SELECT") {
        return fail(
            "EXPECTED_SELECT",
            "Expected SELECT at the start of the query.",
        );
    }
    p.pos += 1;
    let mut select = Vec::new();
    loop {
        if p.peek_keyword("FROM") {
            return fail("UNEXPECTED_INPUT", "The SELECT clause is empty.");
        }
        let field = p.field()?;
        if !select.contains(&field) {
            select.push(field);
        }
        match p.peek() {
            Some(Tok::Comma) => p.pos += 1,
            Some(Tok::Word(w)) if is_keyword(w, "FROM") => break,
            None => return fail("EXPECTED_FROM", "Expected FROM after the SELECT clause."),
            Some(other) => {
                return fail(
                    "UNEXPECTED_INPUT",
                    format!("Unexpected {other:?} in SELECT."),
                );
            }
        }
    }
    p.pos += 1;
    match p.next() {
        Some(Tok::Word(resource)) if resource == "campaign" => {}
        Some(Tok::Word(resource)) => {
            return fail(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                format!("The sandbox serves FROM campaign only, not '{resource}'."),
            );
        }
        _ => {
            return fail(
                "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                "Expected a resource after FROM.",
            );
        }
    }
    let mut conditions = Vec::new();
    if p.peek_keyword("WHERE") {
        p.pos += 1;
        loop {
            conditions.push(p.condition()?);
            if p.peek_keyword("AND") {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let mut order_by = Vec::new();
    if p.peek_keyword("ORDER") {
        p.pos += 1;
        if !p.peek_keyword("BY") {
            return fail("EXPECTED_BY", "Expected BY after ORDER.");
        }
        p.pos += 1;
        loop {
            let field = p.field()?;
            let descending = if p.peek_keyword("DESC") {
                p.pos += 1;
                true
            } else {
                if p.peek_keyword("ASC") {
                    p.pos += 1;
                }
                false
            };
            order_by.push((field, descending));
            if p.peek() == Some(&Tok::Comma) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    if p.peek_keyword("LIMIT") {
        p.pos += 1;
        match p.next() {
            Some(Tok::Num(n)) if n > 0 => limit = usize::try_from(n).ok(),
            Some(Tok::Num(_)) => return fail("LIMIT_VALUE_TOO_LOW", "LIMIT must be positive."),
            _ => return fail("BAD_LIMIT_VALUE", "LIMIT must be a positive integer."),
        }
    }
    if p.peek_keyword("PARAMETERS") {
        // Meta parameters (include_drafts, omit_unselected_resource_names) change nothing here.
        p.pos = toks.len();
    }
    if let Some(extra) = p.peek() {
        return fail("UNEXPECTED_INPUT", format!("Unexpected input {extra:?}."));
    }
    Ok(Query {
        select,
        conditions,
        order_by,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 20_777; // 2026-11-20

    fn code(text: &str) -> &'static str {
        parse(text, TODAY).err().map_or("OK", |e| e.code)
    }

    #[test]
    fn parses_the_documented_query() {
        let q = parse(
            "SELECT customer.currency_code, campaign.id, campaign.name, segments.date, \
             metrics.cost_micros, metrics.impressions, metrics.clicks FROM campaign \
             WHERE segments.date BETWEEN '2026-11-01' AND '2026-11-19'",
            TODAY,
        )
        .expect("valid");
        assert_eq!(q.select.len(), 7);
        assert_eq!(
            q.conditions,
            [Condition::Between(
                Field::SegmentsDate,
                Value::Int(20_758),
                Value::Int(20_776)
            )]
        );
    }

    #[test]
    fn parses_comparisons_lists_order_and_limit() {
        let q = parse(
            "select campaign.id from campaign where segments.date >= \"2026-11-01\" and \
             segments.date <= '2026-11-03' AND campaign.advertising_channel_type IN (SEARCH, 'VIDEO') \
             AND campaign.id != 5 AND metrics.clicks > 0 ORDER BY metrics.clicks DESC, campaign.id \
             LIMIT 10 PARAMETERS include_drafts=true",
            TODAY,
        )
        .expect("valid");
        assert_eq!(q.conditions.len(), 5);
        assert_eq!(
            q.conditions[2],
            Condition::In(
                Field::CampaignChannelType,
                vec![Value::Text("SEARCH".into()), Value::Text("VIDEO".into())]
            )
        );
        assert_eq!(
            q.order_by,
            [(Field::MetricsClicks, true), (Field::CampaignId, false)]
        );
        assert_eq!(q.limit, Some(10));
        assert!(q.conditions[4].matches(&Value::Int(1)));
        assert!(!q.conditions[4].matches(&Value::Int(0)));
    }

    #[test]
    fn during_resolves_against_today() {
        let q = parse(
            "SELECT segments.date FROM campaign WHERE segments.date DURING LAST_7_DAYS",
            TODAY,
        )
        .expect("valid");
        assert_eq!(
            q.conditions[0],
            Condition::Between(
                Field::SegmentsDate,
                Value::Int(TODAY - 7),
                Value::Int(TODAY - 1)
            )
        );
        let q = parse(
            "SELECT segments.date FROM campaign WHERE segments.date DURING LAST_MONTH",
            TODAY,
        )
        .expect("valid");
        assert_eq!(
            q.conditions[0],
            Condition::Between(
                Field::SegmentsDate,
                Value::Int(days_from_civil(2026, 10, 1)),
                Value::Int(days_from_civil(2026, 10, 31))
            )
        );
    }

    #[test]
    fn rejects_with_google_codes() {
        assert_eq!(code("campaign.id FROM campaign"), "EXPECTED_SELECT");
        assert_eq!(code("SELECT campaign.id"), "EXPECTED_FROM");
        assert_eq!(
            code("SELECT campaign.id FROM ad_group"),
            "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"
        );
        assert_eq!(
            code("SELECT campaign.budget FROM campaign"),
            "UNRECOGNIZED_FIELD"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date = '2026-13-01'"),
            "INVALID_DATE_FORMAT"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date = 2026-11-01"),
            "INVALID_DATE_FORMAT"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-11-01'"),
            "EXPECTED_AND"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date = '2026-11-01"),
            "STRING_NOT_TERMINATED"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign LIMIT 0"),
            "LIMIT_VALUE_TOO_LOW"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign garbage"),
            "UNEXPECTED_INPUT"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date DURING LAST_2_YEARS"),
            "INVALID_VALUE_WITH_DURING_OPERATOR"
        );
        assert_eq!(code(""), "EXPECTED_SELECT");
    }
}
