//! Borrowed JSON values for typed page decoding. A page deserialized into structs whose
//! fields are [`Scalar`]s borrows its strings from the body instead of building a
//! `serde_json::Value` tree (a map allocation per record, a `String` per key and value):
//! the parse is several times cheaper, and the same parsers ([`super::parse`]) apply.
//! [`Fields`] keeps an object's members in order for lookups by a name the job configures.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A JSON value whose strings borrow from the page body when they have no escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An object or array (rare in the fields decoded this way), kept whole.
    Nested(Value),
}

impl Scalar<'_> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As an owned JSON value (for `_rejects`).
    pub fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::Str(s) => Value::String(s.to_string()),
            Scalar::Nested(v) => v.clone(),
        }
    }

    /// A cursor or id: a string as is, a number as its JSON text.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s.to_string()),
            Scalar::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Builds a [`Scalar`]; other visitors delegate their non-object cases to it.
pub(crate) struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Scalar::Nested)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Nested)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A JSON object's members in order, or the value that stood where an object was expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields<'a> {
    /// An object.
    Object(Vec<(Cow<'a, str>, Scalar<'a>)>),
    /// Not an object.
    Other(Scalar<'a>),
}

impl<'a> Fields<'a> {
    /// The members (none when this is not an object).
    pub fn members(&self) -> &[(Cow<'a, str>, Scalar<'a>)] {
        match self {
            Fields::Object(members) => members,
            Fields::Other(_) => &[],
        }
    }

    /// The value of member `name` (the last one if repeated, as `serde_json` keeps).
    pub fn get(&self, name: &str) -> Option<&Scalar<'a>> {
        self.members()
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// As an owned JSON value (for `_rejects`).
    pub fn to_value(&self) -> Value {
        match self {
            Fields::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
            Fields::Other(other) => other.to_value(),
        }
    }
}

/// An object key, borrowed from the body when it has no escapes. (`Cow<str>` itself always
/// deserializes owned: a key would cost an allocation, three times the parse of the page.)
#[derive(Debug)]
pub struct Key<'a>(pub Cow<'a, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(32));
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            members.push((key, map.next_value::<Scalar<'de>>()?));
        }
        Ok(Fields::Object(members))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Fields::Other(Scalar::Null))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Fields::Other(Scalar::Null))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        ScalarVisitor.visit_bool(v).map(Fields::Other)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_i64(v).map(Fields::Other)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_u64(v).map(Fields::Other)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_f64(v).map(Fields::Other)
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        ScalarVisitor.visit_borrowed_str(v).map(Fields::Other)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        ScalarVisitor.visit_str(v).map(Fields::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(Fields::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_keeps_every_shape() {
        let body = r#"{"a":"plain","b":"esc\"aped","c":null,"d":3,"e":2.5,"f":true,"g":{"x":[1]},"a":"again"}"#;
        let fields: Fields<'_> = serde_json::from_str(body).unwrap();
        assert!(matches!(fields.get("b"), Some(Scalar::Str(Cow::Owned(s))) if s == "esc\"aped"));
        assert!(matches!(
            &fields.members()[0],
            (Cow::Borrowed("a"), Scalar::Str(Cow::Borrowed("plain")))
        ));
        assert_eq!(fields.get("a").and_then(Scalar::as_str), Some("again"));
        assert_eq!(fields.get("c"), Some(&Scalar::Null));
        assert_eq!(
            fields.get("d").and_then(Scalar::to_text).as_deref(),
            Some("3")
        );
        assert_eq!(fields.get("missing"), None);
        let value: Value = serde_json::from_str(body).unwrap();
        assert_eq!(fields.to_value(), value, "the same JSON as a Value tree");
        let not_object: Fields<'_> = serde_json::from_str("[1,2]").unwrap();
        assert!(not_object.members().is_empty());
    }
}
