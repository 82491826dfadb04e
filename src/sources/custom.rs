//! Custom CRM properties a CRM source keeps in `leads.custom`: the per-source
//! `custom_properties` table (name in the job → CRM property and type), decoding a value into
//! its declared type, and the check against the CRM's own list of properties (HubSpot's
//! properties API, Salesforce's describe) that makes a misspelt or missing property a clear
//! error at the first run instead of a column that is silently always null (HubSpot answers
//! an unknown property with `null`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Error;
use crate::normalize::CustomValue;
use crate::normalize::parse::{JsonLeaf, Leaf, opt_bool, opt_str, opt_timestamp};

/// The type a custom property is kept as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomType {
    /// Text (picklists, multi-selects as the CRM's `a;b` text).
    String,
    /// A number (kept as a double, as both CRMs keep number properties).
    Number,
    /// `true` / `false`.
    Boolean,
    /// A date or date-time (a date is midnight UTC).
    Timestamp,
}

impl CustomType {
    /// The type named `name` in a job file.
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => CustomType::String,
            "number" => CustomType::Number,
            "boolean" => CustomType::Boolean,
            "timestamp" => CustomType::Timestamp,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            CustomType::String => "string",
            CustomType::Number => "number",
            CustomType::Boolean => "boolean",
            CustomType::Timestamp => "timestamp",
        }
    }

    /// Can a CRM property of type `crm` (HubSpot's `type`, Salesforce's field `type`) be
    /// kept as this type? Anything can be kept as text.
    fn accepts(self, crm: &str) -> bool {
        let crm = crm.to_ascii_lowercase();
        match self {
            CustomType::String => true,
            CustomType::Number => matches!(
                crm.as_str(),
                "number" | "double" | "int" | "long" | "currency" | "percent"
            ),
            CustomType::Boolean => matches!(crm.as_str(), "bool" | "boolean"),
            CustomType::Timestamp => matches!(crm.as_str(), "date" | "datetime"),
        }
    }
}

/// One kept property: `name = "string"` (the CRM property is `name` itself) or
/// `name = { property = "ICP_Tier__c", type = "string" }`.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomProperty {
    /// Just the type; the CRM property has the same name.
    Type(CustomType),
    /// The CRM property and the type.
    Mapped(MappedProperty),
}

/// `{ property = "…", type = "…" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedProperty {
    /// The CRM's name of the property (HubSpot internal name, Salesforce field API name).
    pub property: String,
    /// How it is kept.
    pub kind: CustomType,
}

/// The editor schema of [`CustomProperty`]: a type name, or a table naming the property too.
impl schemars::JsonSchema for CustomProperty {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CustomProperty".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        #[derive(schemars::JsonSchema)]
        #[serde(rename_all = "lowercase")]
        #[allow(dead_code, reason = "only its schema is used")]
        enum TypeName {
            String,
            Number,
            Boolean,
            Timestamp,
        }
        #[derive(schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code, reason = "only its schema is used")]
        struct Mapped {
            property: String,
            #[serde(rename = "type")]
            kind: TypeName,
        }
        #[derive(schemars::JsonSchema)]
        #[serde(untagged)]
        #[allow(dead_code, reason = "only its schema is used")]
        enum Shapes {
            Type(TypeName),
            Mapped(Mapped),
        }
        Shapes::json_schema(generator)
    }
}

/// Parsed by hand so a mistake says what is expected (an untagged enum would only say that
/// nothing matched).
impl<'de> Deserialize<'de> for CustomProperty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Type(String),
            Mapped(RawMapped),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawMapped {
            #[serde(alias = "field")]
            property: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let kind = |name: &str| {
            CustomType::parse(name).ok_or_else(|| {
                D::Error::custom(format!(
                    "`{name}` is not a type: use string, number, boolean or timestamp"
                ))
            })
        };
        match Raw::deserialize(d).map_err(|_| {
            D::Error::custom(
                "expected a type (\"string\", \"number\", \"boolean\", \"timestamp\") or \
                 { property = \"<CRM name>\", type = \"…\" }",
            )
        })? {
            Raw::Type(name) => Ok(CustomProperty::Type(kind(&name)?)),
            Raw::Mapped(m) => Ok(CustomProperty::Mapped(MappedProperty {
                property: m.property,
                kind: kind(&m.kind)?,
            })),
        }
    }
}

/// A source's `custom_properties`: name in `leads.custom` → the property.
pub type CustomProperties = BTreeMap<String, CustomProperty>;

impl CustomProperty {
    /// The CRM's name of the property kept as `name`.
    pub fn property<'a>(&'a self, name: &'a str) -> &'a str {
        match self {
            CustomProperty::Type(_) => name,
            CustomProperty::Mapped(m) => &m.property,
        }
    }

    /// Its declared type.
    pub fn kind(&self) -> CustomType {
        match self {
            CustomProperty::Type(t) => *t,
            CustomProperty::Mapped(m) => m.kind,
        }
    }
}

/// Offline checks of a `custom_properties` table: `(key, problem)` pairs.
pub fn check(props: &CustomProperties) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    for (name, p) in props {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            problems.push((
                "custom_properties",
                format!("`{name}` is not a property name (letters, digits, `_`, `.`)"),
            ));
        }
        if p.property(name).trim().is_empty() {
            problems.push((
                "custom_properties",
                format!("{name}: `property` must name the CRM property"),
            ));
        }
    }
    problems
}

/// A property's value in its declared type; `null` and `""` are unset. `Err` says which
/// property held what.
pub fn decode<V: JsonLeaf + ?Sized>(
    kind: CustomType,
    value: Option<&V>,
    property: &str,
) -> Result<Option<CustomValue>, String> {
    Ok(match kind {
        CustomType::String => opt_str(value).map(CustomValue::Str),
        CustomType::Boolean => opt_bool(value, property)?.map(CustomValue::Bool),
        CustomType::Timestamp => opt_timestamp(value, property)?.map(CustomValue::Timestamp),
        CustomType::Number => {
            let Some(value) = value else { return Ok(None) };
            let number = match value.leaf() {
                Leaf::Null | Leaf::Str("") => return Ok(None),
                Leaf::Number(n) => n.as_f64(),
                Leaf::Str(s) => s.trim().parse::<f64>().ok(),
                Leaf::Bool(_) | Leaf::Nested(_) => None,
            };
            match number.filter(|n| n.is_finite()) {
                Some(n) => Some(CustomValue::Number(n)),
                None => {
                    return Err(format!(
                        "{property}: `{}` is not a number",
                        opt_str(Some(value)).unwrap_or_default()
                    ));
                }
            }
        }
    })
}

/// The `(name in the job, value)` entries of one record, in name order; `get` looks up a
/// CRM property's raw value.
pub fn decode_all<'v, V: JsonLeaf + ?Sized + 'v>(
    props: &CustomProperties,
    get: impl Fn(&str) -> Option<&'v V>,
) -> Result<Vec<(String, CustomValue)>, String> {
    let mut out = Vec::with_capacity(props.len());
    for (name, p) in props {
        let property = p.property(name);
        if let Some(v) = decode(p.kind(), get(property), property)? {
            out.push((name.clone(), v));
        }
    }
    Ok(out)
}

/// Levenshtein distance, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Up to five names of `existing` close to `name`: the same ignoring case, `_` and `__c`;
/// containing it or contained in it; or a few edits away — closest first.
pub fn close_matches<'a>(name: &str, existing: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let squash = |s: &str| {
        s.to_lowercase()
            .trim_end_matches("__c")
            .replace(['_', '-', ' '], "")
    };
    let wanted = squash(name);
    let mut scored: Vec<(usize, &str)> = existing
        .into_iter()
        .filter_map(|candidate| {
            let c = squash(candidate);
            let d = distance(&wanted, &c);
            let related = c == wanted
                || (wanted.len() >= 3
                    && (c.contains(&wanted) || wanted.contains(&c))
                    && c.len() >= 3)
                || d <= (wanted.len() / 4).max(2);
            related.then_some((d, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

/// Compare the declared custom properties with the CRM's `(name, type)` list: every one
/// that does not exist (with close matches) or whose type cannot be kept as declared, as
/// one error naming the job, the source and each property. `what` names the list
/// (`HubSpot contact property`), `endpoint` where it came from.
pub fn verify(
    job: &str,
    source: &str,
    what: &str,
    endpoint: &str,
    props: &CustomProperties,
    existing: &[(String, String)],
) -> Result<(), Error> {
    let mut problems = Vec::new();
    for (name, p) in props {
        let property = p.property(name);
        // Salesforce parent fields (`Account.Foo__c`) are not in the object's describe.
        if property.contains('.') {
            continue;
        }
        match existing.iter().find(|(n, _)| n == property) {
            Some((_, crm_type)) if !p.kind().accepts(crm_type) => problems.push(format!(
                "custom_properties.{name}: {what} `{property}` is of type `{crm_type}`, which \
                 cannot be kept as {}; declare it as {}",
                p.kind().as_str(),
                suggest(crm_type)
            )),
            Some(_) => {}
            None => {
                let close = close_matches(property, existing.iter().map(|(n, _)| n.as_str()));
                problems.push(format!(
                    "custom_properties.{name}: there is no {what} `{property}` ({endpoint} does not list it){}",
                    if close.is_empty() {
                        String::new()
                    } else {
                        format!("; close matches: {}", close.join(", "))
                    }
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Run {
        job: job.to_string(),
        message: format!("source `{source}`: {}", problems.join("; ")),
    })
}

/// The type to declare for a CRM property type.
fn suggest(crm_type: &str) -> &'static str {
    [
        CustomType::Number,
        CustomType::Boolean,
        CustomType::Timestamp,
    ]
    .into_iter()
    .find(|t| t.accepts(crm_type))
    .unwrap_or(CustomType::String)
    .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn values_decode_into_their_declared_type() {
        let v = |j: Value| j;
        let n = |j: Value| decode(CustomType::Number, Some(&v(j)), "seats");
        assert_eq!(n(json!("120")), Ok(Some(CustomValue::Number(120.0))));
        assert_eq!(n(json!(2.5)), Ok(Some(CustomValue::Number(2.5))));
        assert_eq!(n(json!("")), Ok(None));
        assert_eq!(n(json!(null)), Ok(None));
        assert!(
            n(json!("lots"))
                .unwrap_err()
                .contains("seats: `lots` is not a number")
        );
        assert!(n(json!("NaN")).is_err());
        let b = decode(CustomType::Boolean, Some(&json!("true")), "p");
        assert_eq!(b, Ok(Some(CustomValue::Bool(true))));
        let t = decode(CustomType::Timestamp, Some(&json!("2026-11-02")), "p");
        // 2026-11-02T00:00:00Z
        assert_eq!(t, Ok(Some(CustomValue::Timestamp(1_793_577_600_000_000))));
        let s = decode(CustomType::String, Some(&json!(7)), "p");
        assert_eq!(s, Ok(Some(CustomValue::Str("7".into()))));
        assert_eq!(decode::<Value>(CustomType::String, None, "p"), Ok(None));
    }

    #[test]
    fn both_config_shapes_parse() {
        let props: CustomProperties = toml::from_str(
            r#"icp_tier = "string"
seats = { property = "Seats__c", type = "number" }
partner = { field = "Is_Partner__c", type = "boolean" }
"#,
        )
        .unwrap();
        assert_eq!(props["icp_tier"].property("icp_tier"), "icp_tier");
        assert_eq!(props["seats"].property("seats"), "Seats__c");
        assert_eq!(props["seats"].kind(), CustomType::Number);
        assert_eq!(props["partner"].property("partner"), "Is_Partner__c");
        assert!(check(&props).is_empty());
        let e = toml::from_str::<CustomProperties>(r#"x = "text""#).unwrap_err();
        assert!(e.to_string().contains("`text` is not a type"), "{e}");
        let e = toml::from_str::<CustomProperties>("x = 3").unwrap_err();
        assert!(e.to_string().contains("expected a type"), "{e}");
        assert!(
            toml::from_str::<CustomProperties>(r#"x = { property = "a", type = "string", y = 1 }"#)
                .is_err()
        );
    }

    #[test]
    fn a_missing_property_names_job_source_property_and_close_matches() {
        let props: CustomProperties =
            toml::from_str("icp_teir = \"string\"\nseats = \"number\"\nflag = \"boolean\"")
                .unwrap();
        let existing: Vec<(String, String)> = [
            ("icp_tier", "enumeration"),
            ("seats", "string"),
            ("flag", "bool"),
            ("industry", "string"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let e = verify(
            "nightly",
            "hubspot",
            "HubSpot contact property",
            "GET /crm/v3/properties/contacts",
            &props,
            &existing,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("job `nightly`: source `hubspot`: "), "{e}");
        assert!(
            e.contains("there is no HubSpot contact property `icp_teir`")
                && e.contains("close matches: icp_tier"),
            "{e}"
        );
        assert!(e.contains("`seats` is of type `string`"), "{e}");
        assert!(!e.contains("flag"), "{e}");
        assert_eq!(
            close_matches("ICP_Tier", ["icp_tier__c", "Industry", "Tier__c"]),
            ["icp_tier__c", "Tier__c"]
        );
        assert!(close_matches("budget", ["industry", "country"]).is_empty());
    }
}
