//! One CRM property value as the twins send it — text, a whole number or an instant, each a
//! JSON string the way HubSpot writes them, or `null` — written straight into the page
//! without a `String` of its own. A HubSpot page of 100 contacts carries about 4,000 values;
//! giving each its own allocation was a sixth of the twin's work in a live pull.

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

impl PropertyValue<'_> {
    /// Append the value as JSON: `null`, or a string (numbers and instants too).
    pub(crate) fn write_json(self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Text(text) => write_json_string(out, text),
            Self::Unsigned(n) => quoted(out, itoa::Buffer::new().format(n).as_bytes()),
            Self::Signed(n) => quoted(out, itoa::Buffer::new().format(n).as_bytes()),
            Self::Time { ms, millis } => {
                quoted(out, TimeText::new(ms, millis).as_str().as_bytes());
            }
        }
    }
}

/// Bytes that need no escaping, between quotes.
fn quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// Append `text` as a JSON string, escaped the way serde_json (and axum's `Json`) escape:
/// a quote and a backslash with a backslash, the short forms `\b \f \n \r \t`, other control
/// characters as `\u00XX`, everything else (non-ASCII included) as it is.
pub(crate) fn write_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        return quoted(out, bytes);
    }
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
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
            let mut out = Vec::new();
            value.write_json(&mut out);
            assert_eq!(String::from_utf8_lossy(&out), json, "{value:?}");
            assert_eq!(value.to_text().as_deref(), text, "{value:?}");
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        for text in [
            "plain",
            "",
            "quote \" backslash \\ slash / tab \t newline \n",
            "del \u{7f} é ü 漢字 😀 \u{2028} end",
            every_control.as_str(),
        ] {
            let mut out = Vec::new();
            write_json_string(&mut out, text);
            let expected = serde_json::to_string(text).unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }
}
