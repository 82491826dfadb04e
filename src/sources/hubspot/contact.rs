//! One HubSpot contact: its borrowed form ([`Contact`], no `serde_json::Value` tree), the
//! per-source [`PropertyIndex`] that spreads its properties over the canonical columns, and
//! its decoding into a `leads` row ([`decode_contact`]) or a redacted reject ([`redact`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::properties::HubspotProperties;
use crate::normalize::parse::{JsonLeaf, Leaf, Scalar, opt_timestamp, timestamp_micros};
use crate::normalize::scalar::{Fields, Key, ScalarVisitor};
use crate::normalize::{LeadRow, PersonalDataHasher};
use crate::sources::custom::CustomProperties;
use crate::sources::lead_fields::{LeadField, LeadRecord, LeadValues};

/// One element of `results`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Contact<'a> {
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
    pub(super) fn to_value(&self) -> Value {
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

/// Which `leads` columns each HubSpot property name feeds, resolved once per source and
/// shared by the decoding threads; plus, per clone, the member order of the last contact
/// seen (contacts of one portal list their properties in the same order, so most members
/// are matched by one string comparison, not a hash).
#[derive(Debug, Clone)]
pub(super) struct PropertyIndex {
    resolved: Arc<Resolved>,
    last_order: Vec<(String, Option<usize>)>,
}

#[derive(Debug)]
struct Resolved {
    /// Property name → its group of columns.
    group_of: HashMap<String, usize>,
    /// The columns each group feeds (one, unless a property is mapped twice).
    groups: Vec<Vec<usize>>,
    /// Property names in [`LeadField`] order.
    names: Vec<String>,
    /// The contact properties kept in `leads.custom`.
    custom: CustomProperties,
    /// Currency of `annualrevenue`.
    currency: Option<String>,
}

/// A contact's property values by slot ([`PropertyIndex::slots`]).
pub(super) type SlotValues<'p, 'a> = Vec<Option<&'p Scalar<'a>>>;

impl PropertyIndex {
    /// The index for a job's property names and kept custom properties.
    pub(super) fn new(props: &HubspotProperties, custom: &CustomProperties) -> Self {
        let names: Vec<String> = props.columns().iter().map(|s| s.to_string()).collect();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        // A contact's values go to slots: the canonical columns in [`LeadField`] order, then
        // the kept custom properties in their (sorted) order.
        let custom_properties = custom.iter().map(|(name, p)| p.property(name).to_string());
        for (slot, name) in names.iter().cloned().chain(custom_properties).enumerate() {
            if name.is_empty() {
                continue;
            }
            let group = *group_of.entry(name).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(slot);
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
    pub(super) fn with_currency(mut self, currency: &str) -> Self {
        if let Some(resolved) = Arc::get_mut(&mut self.resolved) {
            resolved.currency = Some(currency.to_string());
        }
        self
    }

    /// The currency of `annualrevenue`, when known.
    pub(super) fn currency(&self) -> Option<&str> {
        self.resolved.currency.as_deref()
    }

    /// The kept custom properties.
    pub(super) fn custom(&self) -> &CustomProperties {
        &self.resolved.custom
    }

    /// The property name feeding `field`.
    pub(super) fn name(&self, field: LeadField) -> &str {
        &self.resolved.names[field.index()]
    }

    /// How many slots a contact's values fill: the canonical columns, then the kept custom
    /// properties.
    pub(super) fn slots(&self) -> usize {
        LeadField::COUNT + self.resolved.custom.len()
    }

    /// The slot holding property `name`'s value, when it is requested.
    fn slot_of(&self, name: &str) -> Option<usize> {
        let group = *self.resolved.group_of.get(name)?;
        self.resolved.groups[group].first().copied()
    }

    /// The slots the member `key`, at `position` among its contact's properties, fills (none
    /// when no column or kept custom property reads it).
    #[inline]
    pub(super) fn slots_of(&mut self, position: usize, key: &str) -> &[usize] {
        let group = match self.last_order.get(position) {
            Some((seen, group)) if seen == key => *group,
            _ => {
                let group = self.resolved.group_of.get(key).copied();
                if position < self.last_order.len() {
                    self.last_order[position] = (key.to_string(), group);
                } else if position == self.last_order.len() {
                    self.last_order.push((key.to_string(), group));
                }
                group
            }
        };
        group.map_or(&[], |group| &self.resolved.groups[group])
    }

    /// Spread `fields` over the slots (a repeated member: the last one wins).
    pub(super) fn resolve<'p, 'a>(&mut self, fields: &'p Fields<'a>) -> SlotValues<'p, 'a> {
        let mut values: SlotValues<'p, 'a> = vec![None; self.slots()];
        for (position, (key, value)) in fields.members().iter().enumerate() {
            for &slot in self.slots_of(position, key) {
                values[slot] = Some(value);
            }
        }
        values
    }
}

/// The members of a contact object a row is read from besides its properties.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordMembers<'m, 'a> {
    /// `id`.
    pub id: Option<&'m Scalar<'a>>,
    /// Whether `properties` is an object.
    pub has_properties: bool,
    /// `createdAt`.
    pub created_at: Option<&'m Scalar<'a>>,
    /// `updatedAt`.
    pub updated_at: Option<&'m Scalar<'a>>,
    /// `archived`.
    pub archived: Option<&'m Scalar<'a>>,
}

/// One contact, as serde reads it, as a `leads` row or why not; and its
/// `lastmodifieddate` (else `updatedAt`) in epoch ms whether or not it decodes, for the
/// watermark.
pub(super) fn decode_contact(
    contact: &Contact<'_>,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> (std::result::Result<LeadRow, String>, Option<i64>) {
    let Contact::Record {
        id,
        properties,
        created_at,
        updated_at,
        archived,
    } = contact
    else {
        return (Err("contact is not a JSON object".into()), None);
    };
    let none = Fields::Other(Scalar::Null);
    let values = index.resolve(properties.as_ref().unwrap_or(&none));
    let members = RecordMembers {
        id: id.as_ref(),
        has_properties: matches!(properties, Some(Fields::Object(_))),
        created_at: created_at.as_ref(),
        updated_at: updated_at.as_ref(),
        archived: archived.as_ref(),
    };
    decode_record(members, |slot| values[slot], index, hasher)
}

/// A contact object as a `leads` row, or why not, from its members and its property values
/// by slot ([`PropertyIndex::slots`]); and its `lastmodifieddate` (else `updatedAt`) in
/// epoch ms whether or not it decodes, for the watermark. Both ways of reading a page (its
/// tokens, serde) end here.
pub(super) fn decode_record<'v, V: JsonLeaf + ?Sized + 'v>(
    members: RecordMembers<'_, '_>,
    value: impl Fn(usize) -> Option<&'v V>,
    index: &PropertyIndex,
    hasher: &PersonalDataHasher,
) -> (std::result::Result<LeadRow, String>, Option<i64>) {
    let row = (|| {
        let id = match members.id {
            Some(Scalar::Str(s)) if !s.is_empty() => CompactString::from(s.as_ref()),
            Some(Scalar::Number(n)) => CompactString::from(n.to_string()),
            _ => return Err("contact has no `id`".to_string()),
        };
        if !members.has_properties {
            return Err(format!("contact {id} has no `properties` object"));
        }
        let mut mapped = LeadValues::read(|field| (value(field.index()), index.name(field)))?;
        // A contact without the mapped property has the object's own `createdAt`/`updatedAt`.
        if mapped.created_at.is_none() {
            mapped.created_at = opt_timestamp(members.created_at, "createdAt")?;
        }
        if mapped.updated_at.is_none() {
            mapped.updated_at = opt_timestamp(members.updated_at, "updatedAt")?;
        }
        let lead = LeadRecord {
            source_system: "hubspot",
            lead_id: id,
            currency: index.currency(),
            custom: crate::sources::custom::decode_all(index.custom(), |p| {
                index.slot_of(p).and_then(&value)
            })?,
            is_deleted: matches!(members.archived, Some(Scalar::Bool(true))),
        };
        Ok(mapped.into_row(lead, hasher))
    })();
    let property = value(LeadField::UpdatedAt.index()).and_then(|v| match v.leaf() {
        Leaf::Str(text) => Some(text),
        _ => None,
    });
    let modified_micros = match (&row, property) {
        // The row's `updated_at` is that text's time, already read: not parsed twice.
        (Ok(row), Some(text)) if !text.is_empty() => row.updated_at,
        _ => property
            .or_else(|| members.updated_at.and_then(Scalar::as_str))
            .and_then(|t| timestamp_micros(t).ok()),
    };
    (row, modified_micros.map(|micros| micros.div_euclid(1_000)))
}

/// The record as it may be kept in `_rejects`: the e-mail (property `email_property`)
/// replaced by its keyed hash.
pub(super) fn redact(record: &Value, email_property: &str, hasher: &PersonalDataHasher) -> Value {
    let mut copy = record.clone();
    if let Some(Value::String(email)) = copy.pointer_mut(&format!("/properties/{email_property}")) {
        *email = format!("hmac:{}", hasher.hash(email));
    }
    for name in ["firstname", "lastname", "phone", "mobilephone"] {
        if let Some(v) = copy.pointer_mut(&format!("/properties/{name}")) {
            *v = Value::Null;
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_string_properties_and_rejects_bad_dates() {
        let hasher = PersonalDataHasher::new(b"k");
        let props = HubspotProperties::default();
        let record = json!({
            "id": "101", "archived": false,
            "createdAt": "2026-10-01T10:00:00.000Z", "updatedAt": "2026-10-02T10:00:00Z",
            "properties": {
                "email": "Ann@Example.com", "hubspotscore": "42", "demo_requested": "true",
                "hs_analytics_source": "PAID_SEARCH", "utm_campaign": "", "lifecyclestage": "marketingqualifiedlead",
                "createdate": "2026-10-01T10:00:00Z",
                "hs_lifecyclestage_marketingqualifiedlead_date": "2026-10-03T08:30:00.500Z"
            }
        });
        let decode = |record: &Value| {
            let text = record.to_string();
            let contact: Contact<'_> = serde_json::from_str(&text).unwrap();
            let mut index =
                PropertyIndex::new(&props, &crate::sources::custom::CustomProperties::new());
            decode_contact(&contact, &mut index, &hasher)
        };
        let (row, modified_ms) = decode(&record);
        let row = row.unwrap();
        assert_eq!(modified_ms, Some(1_790_935_200_000), "updatedAt, in ms");
        assert_eq!(row.lead_id, "101");
        assert_eq!(
            row.email_hash.as_deref(),
            Some(hasher.hash("ann@example.com").as_str())
        );
        assert_eq!(row.email_domain.as_deref(), Some("example.com"));
        assert_eq!(row.vendor_score, Some(42));
        assert_eq!(row.demo_requested, Some(true));
        assert_eq!(row.channel.as_deref(), Some("paid_search"));
        assert_eq!(row.campaign_id, None, "\"\" means null");
        assert_eq!(row.mql_at, Some(1_791_016_200_500_000));
        assert_eq!(
            row.updated_at,
            Some(1_790_935_200_000_000),
            "falls back to updatedAt"
        );

        // `lastmodifieddate`, when set, is the watermark's time and the row's `updated_at`;
        // empty, it counts as absent for the row and gives no watermark time.
        let mut modified = record.clone();
        modified["properties"]["lastmodifieddate"] = json!("2026-10-04T00:00:00.001Z");
        let (row, modified_ms) = decode(&modified);
        assert_eq!(modified_ms, Some(1_791_072_000_001));
        assert_eq!(row.unwrap().updated_at, Some(1_791_072_000_001_000));
        modified["properties"]["lastmodifieddate"] = json!("");
        let (row, modified_ms) = decode(&modified);
        assert_eq!(modified_ms, None);
        assert_eq!(row.unwrap().updated_at, Some(1_790_935_200_000_000));

        let mut bad = record.clone();
        bad["properties"]["createdate"] = json!("not-a-date");
        let reason = decode(&bad).0.unwrap_err();
        assert!(
            reason.contains("createdate") && reason.contains("not-a-date"),
            "{reason}"
        );
        for (broken, why) in [
            (json!({"properties": {}}), "no `id`"),
            (
                json!({"id": 7, "properties": "x"}),
                "contact 7 has no `properties` object",
            ),
            (json!("text"), "not a JSON object"),
        ] {
            let reason = decode(&broken).0.unwrap_err();
            assert!(reason.contains(why), "{reason}");
        }
        let kept = redact(&bad, &props.email, &hasher);
        assert!(!kept.to_string().contains("Ann@Example.com"));
    }

    #[test]
    fn firmographics_and_custom_properties_decode_in_the_portal_currency() {
        use crate::normalize::CustomValue;
        use crate::sources::custom::CustomProperties;
        let hasher = PersonalDataHasher::new(b"k");
        let props = HubspotProperties::default();
        let custom: CustomProperties = toml::from_str(
            "icp_tier = \"string\"\nseats = { property = \"seats_requested\", type = \"number\" }\nis_partner = \"boolean\"",
        )
        .unwrap();
        assert!(props.requested(&custom).ends_with(&[
            "industry",
            "numberofemployees",
            "annualrevenue",
            "icp_tier",
            "is_partner",
            "seats_requested"
        ]));
        let record = json!({"id": "7", "properties": {
            "industry": "COMPUTER_SOFTWARE", "numberofemployees": "250",
            "annualrevenue": "31250000.5", "icp_tier": "A", "seats_requested": "40",
            "is_partner": ""
        }});
        let text = record.to_string();
        let contact: Contact<'_> = serde_json::from_str(&text).unwrap();
        let mut index = PropertyIndex::new(&props, &custom).with_currency("USD");
        let row = decode_contact(&contact, &mut index, &hasher).0.unwrap();
        assert_eq!(row.industry.as_deref(), Some("COMPUTER_SOFTWARE"));
        assert_eq!(row.employee_count, Some(250));
        assert_eq!(row.annual_revenue, Some(31_250_000_500_000));
        assert_eq!(row.annual_revenue_currency.as_deref(), Some("USD"));
        // `is_partner` is cleared (""): no entry.
        assert_eq!(
            row.custom,
            vec![
                ("icp_tier".to_string(), CustomValue::Str("A".into())),
                ("seats".to_string(), CustomValue::Number(40.0)),
            ]
        );
        let bad = json!({"id": "8", "properties": {"annualrevenue": "lots"}}).to_string();
        let contact: Contact<'_> = serde_json::from_str(&bad).unwrap();
        let reason = decode_contact(&contact, &mut index, &hasher).0.unwrap_err();
        assert!(reason.contains("annualrevenue"), "{reason}");
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
        assert_eq!(
            values[LeadField::Country.index()].and_then(Scalar::as_str),
            Some("DE")
        );
        let values = index.resolve(&second);
        assert_eq!(
            values[LeadField::Country.index()].and_then(Scalar::as_str),
            Some("FR")
        );
        assert_eq!(
            values[LeadField::Company.index()].and_then(Scalar::as_str),
            Some("B")
        );
        assert_eq!(values[LeadField::JobTitle.index()], None);
    }
}
