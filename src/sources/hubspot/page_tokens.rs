//! A contacts page read from its tokens ([`crate::json::OnDemand`]), for the common page:
//! string and null properties, string ids and dates, a boolean `archived`. A page with
//! anything else (an escaped string, a number or an object where a contact value is kept, a
//! body that is not JSON) is `None`, and [`super::page::decode_page`] parses it with serde
//! instead, so every page decodes exactly as serde decodes it.
//!
//! Each contact's properties go straight to the slots of the columns that read them
//! ([`PropertyIndex::slots_of`], matched as each key is read): no vector of a contact's
//! thirty-odd members is built only to be matched and read once. The few members the row
//! needs besides (`id`, `createdAt`, `updatedAt`, `archived`) are kept as [`Scalar`]s, and the
//! contact's bytes, so that the rare contact that is rejected is parsed again, alone, by
//! serde, and kept in `_rejects` whole.

use std::borrow::Cow;
use std::ops::Range;

use super::contact::{PropertyIndex, RecordMembers};
use crate::json::{Checked, OnDemand, Read, Start, Unsupported};
use crate::normalize::parse::{JsonLeaf, Leaf, Scalar};

/// A property value the token reader keeps: a string without escapes, `null` or a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plain<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A string.
    Str(&'a str),
}

impl JsonLeaf for Plain<'_> {
    fn leaf(&self) -> Leaf<'_> {
        match *self {
            Plain::Null => Leaf::Null,
            Plain::Bool(flag) => Leaf::Bool(flag),
            Plain::Str(text) => Leaf::Str(text),
        }
    }
}

/// One element of `results` as read from the tokens.
#[derive(Debug)]
pub(super) enum TokenContact<'a, 's> {
    /// An object: its members, its property values by slot, and where it is in the body.
    Record {
        /// `id`, `createdAt`, `updatedAt`, `archived` (the last of each if repeated), and
        /// whether the last `properties` is an object.
        members: RecordMembers<'s, 'a>,
        /// The values of its properties, by [`PropertyIndex::slots`].
        values: &'s [Option<Plain<'a>>],
        /// The object's bytes in the body.
        span: Range<usize>,
    },
    /// Anything else (rejected).
    Malformed(Scalar<'a>),
}

/// Read the page's `results` from its tokens, handing each contact to `each` in order;
/// `None` when the page is left to serde (including a page without `results`, whose error
/// serde words, and a page `each` gave up on). `each` may have seen some of the contacts by
/// then: what it made of them is to be thrown away.
pub(super) fn for_each_contact<'a>(
    body: &'a Checked,
    index: &mut PropertyIndex,
    each: impl FnMut(TokenContact<'a, '_>, &mut PropertyIndex) -> Read<()>,
) -> Option<()> {
    read_page(body, index, each).ok()
}

fn read_page<'a>(
    body: &'a Checked,
    index: &mut PropertyIndex,
    mut each: impl FnMut(TokenContact<'a, '_>, &mut PropertyIndex) -> Read<()>,
) -> Read<()> {
    let mut page = OnDemand::new(body)?;
    if page.value()? != Start::Object {
        return Err(Unsupported);
    }
    let mut results = false;
    let mut first = true;
    // Reused from contact to contact.
    let mut values: Vec<Option<Plain<'a>>> = vec![None; index.slots()];
    while let Some(key) = page.next_key(first)? {
        first = false;
        let start = page.value()?;
        if key != "results" {
            page.skip(start)?;
            continue;
        }
        // A second `results` replaces the first for serde: rare enough to leave to it.
        if results || start != Start::Array {
            return Err(Unsupported);
        }
        results = true;
        let mut first_contact = true;
        while page.next_element(first_contact)? {
            first_contact = false;
            let start = page.value()?;
            if start != Start::Object {
                each(TokenContact::Malformed(scalar(start)?), index)?;
                continue;
            }
            let opened = page.position() - 1;
            let read = contact(&mut page, index, &mut values)?;
            let span = opened..page.position();
            each(
                TokenContact::Record {
                    members: read.as_record(),
                    values: &values,
                    span,
                },
                index,
            )?;
        }
    }
    page.end()?;
    if results { Ok(()) } else { Err(Unsupported) }
}

/// The members of a contact object read besides its properties.
#[derive(Default)]
struct ContactMembers<'a> {
    id: Option<Scalar<'a>>,
    /// A `properties` member was read (a second one clears the first one's values).
    properties_read: bool,
    has_properties: bool,
    created_at: Option<Scalar<'a>>,
    updated_at: Option<Scalar<'a>>,
    archived: Option<Scalar<'a>>,
}

impl<'a> ContactMembers<'a> {
    /// As the row's decoding borrows them.
    fn as_record(&self) -> RecordMembers<'_, 'a> {
        RecordMembers {
            id: self.id.as_ref(),
            has_properties: self.has_properties,
            created_at: self.created_at.as_ref(),
            updated_at: self.updated_at.as_ref(),
            archived: self.archived.as_ref(),
        }
    }
}

/// The rest of a contact object whose `{` was read, as `ContactVisitor` reads it: its
/// members, and its properties' values into `values` (all cleared first).
fn contact<'a>(
    page: &mut OnDemand<'a>,
    index: &mut PropertyIndex,
    values: &mut [Option<Plain<'a>>],
) -> Read<ContactMembers<'a>> {
    values.fill(None);
    let mut read = ContactMembers::default();
    let mut first = true;
    while let Some(key) = page.next_key(first)? {
        first = false;
        let value = page.value()?;
        match key {
            "id" => read.id = Some(scalar(value)?),
            "properties" => {
                // A repeated `properties` replaces the one before, as for serde.
                if std::mem::replace(&mut read.properties_read, true) {
                    values.fill(None);
                }
                read.has_properties = value == Start::Object;
                if read.has_properties {
                    properties(page, index, values)?;
                } else {
                    scalar(value)?;
                }
            }
            "createdAt" => read.created_at = Some(scalar(value)?),
            "updatedAt" => read.updated_at = Some(scalar(value)?),
            "archived" => read.archived = Some(scalar(value)?),
            _ => page.skip(value)?,
        }
    }
    Ok(read)
}

/// The members of `properties`, whose `{` was read, each into the slots that read it (a
/// repeated member: the last one wins).
fn properties<'a>(
    page: &mut OnDemand<'a>,
    index: &mut PropertyIndex,
    values: &mut [Option<Plain<'a>>],
) -> Read<()> {
    let mut position = 0;
    while let Some(key) = page.next_key(position == 0)? {
        let value = plain(page.value()?)?;
        for &slot in index.slots_of(position, key) {
            values[slot] = Some(value);
        }
        position += 1;
    }
    Ok(())
}

/// A property value: a string, `null` or a boolean; numbers and nested values are serde's.
fn plain(start: Start<'_>) -> Read<Plain<'_>> {
    match start {
        Start::Str(text) => Ok(Plain::Str(text)),
        Start::Null => Ok(Plain::Null),
        Start::Bool(flag) => Ok(Plain::Bool(flag)),
        Start::Number(_) | Start::Object | Start::Array => Err(Unsupported),
    }
}

/// A kept member's value: a string, `null` or a boolean; numbers and nested values are
/// serde's.
fn scalar(start: Start<'_>) -> Read<Scalar<'_>> {
    Ok(match plain(start)? {
        Plain::Str(text) => Scalar::Str(Cow::Borrowed(text)),
        Plain::Null => Scalar::Null,
        Plain::Bool(flag) => Scalar::Bool(flag),
    })
}

#[cfg(test)]
mod tests {
    use super::super::page::{ContactsDecoded, Reached, decode_by_serde, decode_by_tokens};
    use super::*;
    use crate::json::SkimProof;
    use crate::normalize::{LeadRow, PersonalDataHasher};
    use crate::sources::custom::CustomProperties;
    use crate::sources::hubspot::HubspotProperties;
    use bytes::Bytes;
    use serde_json::Value;

    /// What a page decodes to, comparable.
    type Decoded = (Vec<LeadRow>, Vec<(Value, String)>, Reached);

    fn parts(page: ContactsDecoded) -> Decoded {
        (page.rows, page.rejects, page.next)
    }

    /// Decodes pages with the default properties, or with `p0`–`p2` mapped (`p1` to two
    /// columns, `p2` to a column and a kept custom property).
    struct Decoder {
        index: PropertyIndex,
        hasher: PersonalDataHasher,
    }

    impl Decoder {
        fn default_properties() -> Self {
            Decoder {
                index: PropertyIndex::new(&HubspotProperties::default(), &CustomProperties::new()),
                hasher: PersonalDataHasher::new(b"k"),
            }
        }

        fn generated_properties() -> Self {
            let props = HubspotProperties {
                email: "p0".into(),
                company: "p1".into(),
                job_title: "p1".into(),
                country: "p2".into(),
                ..HubspotProperties::default()
            };
            let custom: CustomProperties =
                toml::from_str("tier = { property = \"p2\", type = \"string\" }").unwrap();
            Decoder {
                index: PropertyIndex::new(&props, &custom),
                hasher: PersonalDataHasher::new(b"k"),
            }
        }

        /// The page read from its tokens (`None` when left to serde).
        fn by_tokens(&mut self, body: &Checked) -> Option<Decoded> {
            decode_by_tokens(body, &mut self.index, &self.hasher).map(parts)
        }

        /// The page read by serde (`None` when it is no contacts page).
        fn by_serde(&mut self, body: &Checked) -> Option<Decoded> {
            decode_by_serde(body, &mut self.index, &self.hasher)
                .ok()
                .map(parts)
        }
    }

    fn checked(body: &[u8]) -> Option<Checked> {
        Checked::after_skim(&Bytes::copy_from_slice(body), SkimProof::default()).ok()
    }

    #[test]
    fn a_plain_page_reads_as_serde_reads_it() {
        let body = br#"{"results":[
            {"id":"1","properties":{"email":"a@x.io","createdate":null,"email":"b@x.io"},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-02T00:00:00Z","archived":false,"associations":{"companies":[1,2]}},
            "text", null, true,
            {"properties":"none","id":"2","id":"3"},
            {}
        ],"paging":{"next":{"after":"200","link":"x?a=1"}},"total":12000}"#;
        let body = checked(body).unwrap();
        let mut decoder = Decoder::default_properties();
        let ours = decoder.by_tokens(&body).expect("read from its tokens");
        assert_eq!((ours.0.len(), ours.1.len()), (1, 5), "{:?}", ours.1);
        assert_eq!(Some(ours), decoder.by_serde(&body));
    }

    #[test]
    fn pages_it_does_not_take_are_left_to_serde() {
        for body in [
            &br#"{"results":[{"id":7}]}"#[..],
            br#"{"results":[{"id":"1","properties":{"n":"O\"Brien"}}]}"#,
            br#"{"results":[{"id":"1","properties":{"n":{"x":1}}}]}"#,
            br#"{"results":[42]}"#,
            br#"{"results":[],"results":[]}"#,
            br#"{"results":null}"#,
            br#"{"paging":{}}"#,
            br#"{"results":[{"id":"1"}]"#,
            br#"{"results":[{"id":"1"},]}"#,
            br#"[{"id":"1"}]"#,
        ] {
            let checked = checked(body).unwrap();
            assert_eq!(
                Decoder::default_properties().by_tokens(&checked),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn generated_pages_read_as_serde_reads_them() {
        // Page-shaped bodies from pieces (contacts of string, null, boolean, numeric and
        // nested values; escapes; stray commas and brackets): whenever the tokens are read,
        // serde decodes them alike (rows, rejects and all); and the plain pages are read from
        // their tokens.
        let values: [&str; 10] = [
            "\"x\"",
            "null",
            "true",
            "\"2026-10-01T10:00:00Z\"",
            "\"\"",
            "\"Zo\u{eb}\"",
            "12",
            "{\"a\":[1]}",
            "\"a\\\"b\"",
            "\"[{,}]\"",
        ];
        let keys = [
            "id",
            "properties",
            "createdAt",
            "updatedAt",
            "archived",
            "other",
        ];
        let mut next = crate::test_support::pseudo_random(0x2545_f491_4f6c_dd1d_u64);
        let mut decoder = Decoder::generated_properties();
        let (mut read, mut plain, mut skimmed_pages) = (0, 0, 0);
        let (mut rows, mut rejects) = (0, 0);
        for _ in 0..10_000 {
            let mut body = String::from("{\"results\":[");
            let mut is_plain = true;
            for c in 0..next() % 5 {
                if c > 0 {
                    body.push(',');
                }
                body.push('{');
                for m in 0..next() % 5 {
                    if m > 0 {
                        body.push(',');
                    }
                    let key = keys[next() % keys.len()];
                    body.push_str(&format!("\"{key}\":"));
                    if key == "properties" && !next().is_multiple_of(4) {
                        body.push('{');
                        for p in 0..next() % 4 {
                            let value = values[next() % values.len()];
                            is_plain &= is_plain_value(value);
                            body.push_str(&format!(
                                "{}\"p{}\" : {value}",
                                if p > 0 { "," } else { "" },
                                next() % 3
                            ));
                        }
                        body.push('}');
                    } else {
                        let value = values[next() % values.len()];
                        is_plain &=
                            is_plain_value(value) || (key == "other" && !value.contains('\\'));
                        body.push_str(value);
                    }
                }
                body.push('}');
            }
            body.push_str("],\"paging\":{\"next\":{\"after\":\"5\"}}");
            match next() % 20 {
                0 => {
                    body.push(',');
                    is_plain = false;
                }
                1 => is_plain = false,
                _ => body.push('}'),
            }
            let checked = checked(body.as_bytes()).unwrap();
            let ours = decoder.by_tokens(&checked);
            // The page's skim keeps its tokens for the decoder, which reads the same contacts
            // from them.
            let bytes = Bytes::copy_from_slice(body.as_bytes());
            if let Ok(skimmed) =
                crate::json::skim_keeping_tokens(&bytes, Some(("results", "archived")))
            {
                let kept = Checked::after_skim(&bytes, skimmed.proof).unwrap();
                assert!(kept.tokens().is_some(), "{body}");
                assert_eq!(decoder.by_tokens(&kept), ours, "{body}");
                skimmed_pages += 1;
            }
            let taken = ours.is_some();
            if let Some(ours) = ours {
                read += 1;
                rows += ours.0.len();
                rejects += ours.1.len();
                assert_eq!(Some(ours), decoder.by_serde(&checked), "{body}");
            }
            if is_plain {
                plain += 1;
                assert!(taken, "a plain page left to serde: {body}");
            }
        }
        assert!(read > 2_000 && plain > 2_000, "{read} read, {plain} plain");
        assert!(
            rows > 40 && rejects > 2_000,
            "{rows} rows, {rejects} rejects"
        );
        assert!(skimmed_pages > 5_000, "{skimmed_pages} skimmed");
    }

    /// Is `value` one the token reader keeps (a string without escapes, null, a boolean)?
    fn is_plain_value(value: &str) -> bool {
        !(value == "12" || value.starts_with('{') || value.contains('\\'))
    }
}
