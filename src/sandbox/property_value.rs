//! One CRM property value as the twins send it — text, a whole number or an instant, each a
//! JSON string the way HubSpot writes them, or `null` — serialized straight into the page
//! without a `String` of its own. A HubSpot page of 100 contacts carries about 4,000 values;
//! giving each its own allocation was a sixth of the twin's work in a live pull.

use serde::{Serialize, Serializer};

use super::encoding::TimeText;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropertyValue<'a> {
    /// Unset, or a property the twin does not know: JSON `null`.
    Null,
    Text(&'a str),
    Unsigned(u64),
    Signed(i64),
    /// Epoch milliseconds, as ISO 8601 with or without the milliseconds.
    Time {
        ms: i64,
        millis: bool,
    },
}

impl<'a> PropertyValue<'a> {
    pub(crate) fn flag(value: Option<bool>) -> Self {
        match value {
            Some(true) => Self::Text("true"),
            Some(false) => Self::Text("false"),
            None => Self::Null,
        }
    }

    pub(crate) fn text(value: Option<&'a str>) -> Self {
        value.map_or(Self::Null, Self::Text)
    }

    pub(crate) fn unsigned(value: Option<impl Into<u64>>) -> Self {
        value.map_or(Self::Null, |n| Self::Unsigned(n.into()))
    }

    /// An instant with its milliseconds (`…T12:34:56.789Z`).
    pub(crate) fn time(value: Option<i64>) -> Self {
        value.map_or(Self::Null, |ms| Self::Time { ms, millis: true })
    }

    /// The value as text; `None` for `null`.
    #[cfg(test)]
    pub(crate) fn to_text(self) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match self {
            Self::Null => None,
            Self::Text(text) => Some(Cow::Borrowed(text)),
            Self::Unsigned(n) => Some(Cow::Owned(n.to_string())),
            Self::Signed(n) => Some(Cow::Owned(n.to_string())),
            Self::Time { ms, millis } => {
                Some(Cow::Owned(TimeText::new(ms, millis).as_str().to_owned()))
            }
        }
    }
}

impl Serialize for PropertyValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Null => serializer.serialize_none(),
            Self::Text(text) => serializer.serialize_str(text),
            Self::Unsigned(n) => serializer.serialize_str(itoa::Buffer::new().format(n)),
            Self::Signed(n) => serializer.serialize_str(itoa::Buffer::new().format(n)),
            Self::Time { ms, millis } => {
                serializer.serialize_str(TimeText::new(ms, millis).as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_strings_or_null_and_read_back_as_the_same_text() {
        let cases = [
            (PropertyValue::Null, "null", None),
            (
                PropertyValue::Text("a \"b\""),
                r#""a \"b\"""#,
                Some("a \"b\""),
            ),
            (
                PropertyValue::flag(Some(false)),
                r#""false""#,
                Some("false"),
            ),
            (PropertyValue::flag(None), "null", None),
            (
                PropertyValue::Unsigned(u64::MAX),
                r#""18446744073709551615""#,
                Some("18446744073709551615"),
            ),
            (PropertyValue::Signed(-42), r#""-42""#, Some("-42")),
            (PropertyValue::unsigned(Some(7u32)), r#""7""#, Some("7")),
            (
                PropertyValue::time(Some(1_790_000_000_123)),
                r#""2026-09-21T14:13:20.123Z""#,
                Some("2026-09-21T14:13:20.123Z"),
            ),
            (
                PropertyValue::Time {
                    ms: 1_790_000_000_123,
                    millis: false,
                },
                r#""2026-09-21T14:13:20Z""#,
                Some("2026-09-21T14:13:20Z"),
            ),
            (PropertyValue::time(None), "null", None),
        ];
        for (value, json, text) in cases {
            assert_eq!(sonic_rs::to_string(&value).unwrap(), json, "{value:?}");
            assert_eq!(serde_json::to_string(&value).unwrap(), json, "{value:?}");
            assert_eq!(value.to_text().as_deref(), text, "{value:?}");
        }
    }
}
