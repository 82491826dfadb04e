//! A HubSpot contacts page decoded straight into `leads` rows: the body is parsed into
//! borrowed [`Contact`]s (no `serde_json::Value` tree), each contact's properties are
//! matched to the job's property names once per member, and the rows, rejects, newest
//! `lastmodifieddate` and largest numeric id of the page come back together. It runs on a
//! blocking thread while the source fetches the next pages ([`peek_paging`] reads only the
//! cursor).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{HubspotProperties, decode_contact, redact};
use crate::normalize::parse::Scalar;
use crate::normalize::scalar::{Fields, Key, ScalarVisitor};
use crate::normalize::{LeadRow, PersonalDataHasher};
use crate::sources::DecodedPage;
use crate::sources::custom::CustomProperties;

/// One element of `results`.
#[derive(Debug)]
pub enum Contact<'a> {
    /// An object, with the members a contact is read from.
    Record {
        /// `id`.
        id: Option<Scalar<'a>>,
        /// `properties` (every value a string or null).
        properties: Option<Fields<'a>>,
        /// `createdAt`.
        created_at: Option<Scalar<'a>>,
        /// `updatedAt`.
        updated_at: Option<Scalar<'a>>,
        /// `archived`.
        archived: Option<Scalar<'a>>,
    },
    /// Anything else (rejected).
    Malformed(Scalar<'a>),
}

impl Contact<'_> {
    /// The contact as JSON, for `_rejects` (members a contact is not read from are absent).
    pub fn to_value(&self) -> Value {
        match self {
            Contact::Record {
                id,
                properties,
                created_at,
                updated_at,
                archived,
            } => {
                let mut object = serde_json::Map::new();
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(v) = value {
                        object.insert(key.to_string(), v);
                    }
                };
                put("id", id.as_ref().map(Scalar::to_value));
                put("properties", properties.as_ref().map(Fields::to_value));
                put("createdAt", created_at.as_ref().map(Scalar::to_value));
                put("updatedAt", updated_at.as_ref().map(Scalar::to_value));
                put("archived", archived.as_ref().map(Scalar::to_value));
                Value::Object(object)
            }
            Contact::Malformed(other) => other.to_value(),
        }
    }
}

struct ContactVisitor;

impl<'de> Visitor<'de> for ContactVisitor {
    type Value = Contact<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a contact object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut properties, mut created_at, mut updated_at, mut archived) =
            (None, None, None, None, None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "id" => id = Some(map.next_value()?),
                "properties" => properties = Some(map.next_value()?),
                "createdAt" => created_at = Some(map.next_value()?),
                "updatedAt" => updated_at = Some(map.next_value()?),
                "archived" => archived = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Contact::Record {
            id,
            properties,
            created_at,
            updated_at,
            archived,
        })
    }

    // Anything but an object is kept whole (and rejected), as a Scalar would keep it.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        ScalarVisitor.visit_unit().map(Contact::Malformed)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        ScalarVisitor.visit_bool(v).map(Contact::Malformed)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_i64(v).map(Contact::Malformed)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_u64(v).map(Contact::Malformed)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_f64(v).map(Contact::Malformed)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        ScalarVisitor.visit_str(v).map(Contact::Malformed)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(Contact::Malformed)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Contact<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContactVisitor)
    }
}

/// A contacts page (list or search); its paging is read by [`peek_paging`].
#[derive(Debug, Deserialize)]
pub struct ContactsPage<'a> {
    /// The contacts; a page without them is a protocol error.
    #[serde(borrow, default)]
    pub results: Option<Vec<Contact<'a>>>,
}

/// Only the paging members of a page (the contacts are skipped over, not built).
#[derive(Debug, Deserialize)]
pub struct Paging<'a> {
    /// `paging`.
    #[serde(borrow, default)]
    pub paging: Option<Scalar<'a>>,
    /// `total`.
    #[serde(borrow, default)]
    pub total: Option<Scalar<'a>>,
}

impl Paging<'_> {
    /// `paging.next.after`: a string as is, a number as its text.
    pub fn after(&self) -> Option<String> {
        match &self.paging {
            Some(Scalar::Nested(v)) => match v.pointer("/next/after") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// `total` when it is a whole number.
    pub fn total(&self) -> Option<u64> {
        match &self.total {
            Some(Scalar::Number(n)) => n.as_u64(),
            _ => None,
        }
    }
}

/// The cursor and total of a page body, skipping over its contacts (validated, not built:
/// serde_json's skipping is cheaper here than sonic-rs's lazy lookups, which scan the page
/// once per path).
pub fn peek_paging(
    body: &[u8],
) -> std::result::Result<(Option<String>, Option<u64>), crate::json::JsonError> {
    let paging: Paging<'_> = crate::json::from_slice(body)?;
    Ok((paging.after(), paging.total()))
}

/// Which `leads` columns each HubSpot property name feeds, resolved once per source and
/// shared by the decoding threads; plus, per clone, the member order of the last contact
/// seen (contacts of one portal list their properties in the same order, so most members
/// are matched by one string comparison, not a hash).
#[derive(Debug, Clone)]
pub struct PropertyIndex {
    resolved: Arc<Resolved>,
    last_order: Vec<(String, Option<usize>)>,
}

#[derive(Debug)]
struct Resolved {
    /// Property name → its group of columns.
    group_of: HashMap<String, usize>,
    /// The columns each group feeds (one, unless a property is mapped twice).
    groups: Vec<Vec<usize>>,
    /// Property names as `HubspotProperties::columns` orders them.
    names: Vec<String>,
    /// The contact properties kept in `leads.custom`.
    custom: CustomProperties,
    /// Currency of `annualrevenue`.
    currency: Option<String>,
}

/// Fixed positions of the canonical columns in [`HubspotProperties::columns`].
pub mod column {
    pub const EMAIL: usize = 0;
    pub const COMPANY: usize = 1;
    pub const JOB_TITLE: usize = 2;
    pub const COUNTRY: usize = 3;
    pub const OWNER_ID: usize = 4;
    pub const CHANNEL: usize = 5;
    pub const CAMPAIGN_ID: usize = 6;
    pub const LIFECYCLE_STAGE: usize = 7;
    pub const LEAD_STATUS: usize = 8;
    pub const VENDOR_SCORE: usize = 9;
    pub const DEMO_REQUESTED: usize = 10;
    pub const CONTENT_DOWNLOADS: usize = 11;
    pub const WEB_VISITS: usize = 12;
    pub const EMAIL_ENGAGEMENTS: usize = 13;
    pub const BUDGET_CONFIRMED: usize = 14;
    pub const AUTHORITY: usize = 15;
    pub const NEED_CONFIRMED: usize = 16;
    pub const TIMELINE_CONFIRMED: usize = 17;
    pub const CREATED_AT: usize = 18;
    pub const UPDATED_AT: usize = 19;
    pub const MQL_AT: usize = 20;
    pub const SAL_AT: usize = 21;
    pub const SAL_REJECTED_AT: usize = 22;
    pub const REJECTION_REASON: usize = 23;
    pub const SQL_AT: usize = 24;
    pub const OPPORTUNITY_AT: usize = 25;
    pub const CUSTOMER_AT: usize = 26;
    pub const FIRST_CONTACTED_AT: usize = 27;
    pub const LAST_INTENT_AT: usize = 28;
    pub const INDUSTRY: usize = 29;
    pub const EMPLOYEE_COUNT: usize = 30;
    pub const ANNUAL_REVENUE: usize = 31;
    /// How many there are.
    pub const COUNT: usize = 32;
}

/// A contact's property values by canonical column.
pub type ColumnValues<'p, 'a> = [Option<&'p Scalar<'a>>; column::COUNT];

impl PropertyIndex {
    /// The index for a job's property names and kept custom properties.
    pub fn new(props: &HubspotProperties, custom: &CustomProperties) -> Self {
        let names: Vec<String> = props.columns().iter().map(|s| s.to_string()).collect();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (column, name) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let group = *group_of.entry(name.clone()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(column);
        }
        PropertyIndex {
            resolved: Arc::new(Resolved {
                group_of,
                groups,
                names,
                custom: custom.clone(),
                currency: None,
            }),
            last_order: Vec::new(),
        }
    }

    /// The index with `currency` as the currency of `annualrevenue`.
    pub fn with_currency(mut self, currency: &str) -> Self {
        if let Some(resolved) = Arc::get_mut(&mut self.resolved) {
            resolved.currency = Some(currency.to_string());
        }
        self
    }

    /// The currency of `annualrevenue`, when known.
    pub fn currency(&self) -> Option<&str> {
        self.resolved.currency.as_deref()
    }

    /// The kept custom properties.
    pub fn custom(&self) -> &CustomProperties {
        &self.resolved.custom
    }

    /// The property name feeding `column`.
    pub fn name(&self, column: usize) -> &str {
        &self.resolved.names[column]
    }

    /// Spread `fields` over the canonical columns (a repeated member: the last one wins).
    pub fn resolve<'p, 'a>(&mut self, fields: &'p Fields<'a>) -> ColumnValues<'p, 'a> {
        let mut values: ColumnValues<'p, 'a> = [None; column::COUNT];
        for (position, (key, value)) in fields.members().iter().enumerate() {
            let group = match self.last_order.get(position) {
                Some((seen, group)) if seen == key => *group,
                _ => {
                    let group = self.resolved.group_of.get(key.as_ref()).copied();
                    if position < self.last_order.len() {
                        self.last_order[position] = (key.to_string(), group);
                    } else if position == self.last_order.len() {
                        self.last_order.push((key.to_string(), group));
                    }
                    group
                }
            };
            if let Some(group) = group {
                for &column in &self.resolved.groups[group] {
                    values[column] = Some(value);
                }
            }
        }
        values
    }
}

/// How far a page reached, over every contact on it (rejected ones included).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// The newest `lastmodifieddate` (or `updatedAt`), epoch ms.
    pub modified_ms: Option<i64>,
    /// The largest `id` (= `hs_object_id`), compared as a number: ids sort as numbers in
    /// HubSpot's search, and "999" > "1000" as text.
    pub id: Option<u64>,
}

/// A decoded page; `next` is how far it reached.
pub type ContactsDecoded = DecodedPage<LeadRow, Reached>;

/// A contact's `id` as a number (HubSpot sends a string of digits).
fn numeric_id(contact: &Contact<'_>) -> Option<u64> {
    match contact {
        Contact::Record {
            id: Some(Scalar::Str(s)),
            ..
        } => s.parse().ok(),
        Contact::Record {
            id: Some(Scalar::Number(n)),
            ..
        } => n.as_u64(),
        _ => None,
    }
}

/// Decode a page body: `Err` names what is wrong with the page as a whole.
pub fn decode_page(
    body: &[u8],
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> Result<ContactsDecoded, String> {
    // sonic-rs: the same serde types, a third faster than serde_json on these pages.
    let page: ContactsPage<'_> = crate::json::sonic_from_slice(body).map_err(|e| {
        format!(
            "body is not a contacts page ({e}): {}",
            crate::http::body_excerpt(body)
        )
    })?;
    let results = page.results.ok_or("no `results` array")?;
    let mut out = DecodedPage {
        rows: Vec::with_capacity(results.len()),
        rejects: Vec::new(),
        next: Reached::default(),
    };
    for contact in &results {
        let (decoded, modified_ms) = decode_contact(contact, index, hasher);
        out.next.modified_ms = out.next.modified_ms.max(modified_ms);
        out.next.id = out.next.id.max(numeric_id(contact));
        match decoded {
            Ok(row) => out.rows.push(row),
            Err(reason) => out.rejects.push((
                redact(&contact.to_value(), index.name(column::EMAIL), hasher),
                reason,
            )),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_decodes_to_rows_rejects_and_its_newest_modification() {
        let body = br#"{"results":[
            {"id":"1","archived":false,"properties":{"email":"Ann@Example.com","lastmodifieddate":"2026-11-02T10:00:00Z","hubspotscore":"7"}},
            {"id":"2","properties":{"email":"bob@example.com","lastmodifieddate":"2026-11-03T10:00:00Z","createdate":"soon"}},
            42
        ],"paging":{"next":{"after":"200","link":"x"}}}"#;
        let props = HubspotProperties::default();
        let hasher = PersonalDataHasher::new(b"k");
        let mut index = PropertyIndex::new(&props, &CustomProperties::new());
        let page = decode_page(body, &mut index, &hasher).unwrap();
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].vendor_score, Some(7));
        assert_eq!(page.rejects.len(), 2);
        let (record, reason) = &page.rejects[0];
        assert!(reason.contains("createdate"), "{reason}");
        let kept = record.to_string();
        assert!(
            !kept.contains("bob@example.com") && kept.contains("hmac:"),
            "{kept}"
        );
        assert!(page.rejects[1].1.contains("not a JSON object"));
        // The rejected contact's date and id still count.
        assert_eq!(
            page.next,
            Reached {
                modified_ms: Some(1_793_700_000_000), // 2026-11-03T10:00:00Z
                id: Some(2),
            }
        );
        assert_eq!(peek_paging(body).unwrap(), (Some("200".to_string()), None));
        assert_eq!(
            peek_paging(br#"{"total":12000,"results":[],"paging":{"next":{"after":7}}}"#).unwrap(),
            (Some("7".to_string()), Some(12_000))
        );
        // Ids compare as numbers, whether sent as strings or numbers; others are skipped.
        let ids = br#"{"results":[{"id":"1000","properties":{}},{"id":"999","properties":{}},
            {"id":"x7","properties":{}},{"id":998,"properties":{}}]}"#;
        let page = decode_page(ids, &mut index, &hasher).unwrap();
        assert_eq!(page.next.id, Some(1000));
        assert!(decode_page(b"{\"paging\":{}}", &mut index, &hasher).is_err());
        assert!(decode_page(b"{\"results\":[", &mut index, &hasher).is_err());
        for (body, expected) in [
            (&br#"{"results":[],"paging":null}"#[..], (None, None)),
            (
                br#"{"results":[{"properties":{"paging":{"next":{"after":"no"}}}}]}"#,
                (None, None),
            ),
            (
                br#"{"paging":{"next":{"after":"a\"b"}},"results":[]}"#,
                (Some("a\"b".to_string()), None),
            ),
            (
                br#"{"results":[],"total":"many","paging":{"next":{}}}"#,
                (None, None),
            ),
        ] {
            assert_eq!(
                peek_paging(body).unwrap(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(peek_paging(b"<html>").is_err());
    }

    #[test]
    fn properties_in_a_new_order_still_reach_their_columns() {
        let props = HubspotProperties::default();
        let mut index = PropertyIndex::new(&props, &CustomProperties::new());
        let first: Fields<'_> =
            serde_json::from_str(r#"{"company":"A","country":"DE","jobtitle":"CTO"}"#).unwrap();
        let second: Fields<'_> =
            serde_json::from_str(r#"{"country":"FR","zzz":"1","company":"B"}"#).unwrap();
        let values = index.resolve(&first);
        assert_eq!(values[column::COUNTRY].and_then(Scalar::as_str), Some("DE"));
        let values = index.resolve(&second);
        assert_eq!(values[column::COUNTRY].and_then(Scalar::as_str), Some("FR"));
        assert_eq!(values[column::COMPANY].and_then(Scalar::as_str), Some("B"));
        assert_eq!(values[column::JOB_TITLE], None);
    }
}
