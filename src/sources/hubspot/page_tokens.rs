//! A contacts page read from its tokens ([`crate::json::OnDemand`]) into the same borrowed
//! [`Contact`]s serde builds (`contact.rs`), for the common page: string and null
//! properties, string ids and dates, a boolean `archived`. A page with anything else (an
//! escaped string, a number or an object where a contact value is kept, a body that is not
//! JSON) is `None`, and [`super::page::decode_page`] parses it with serde instead, so every
//! page decodes exactly as serde decodes it.
//!
//! Each contact is handed on as soon as it is read, and the vector of its properties is
//! then reused for the next one: a page is not first built whole (a hundred contacts of
//! some thirty-six members, a vector each) only to be read once and freed.

use std::borrow::Cow;

use super::contact::Contact;
use crate::json::{Checked, OnDemand, Read, Start, Unsupported};
use crate::normalize::parse::Scalar;
use crate::normalize::scalar::Fields;

/// The members of one contact's `properties`, reused from contact to contact.
type Members<'a> = Vec<(Cow<'a, str>, Scalar<'a>)>;

/// Read the page's `results` from its tokens, handing each contact to `each` in order;
/// `None` when the page is left to serde (including a page without `results`, whose error
/// serde words). `each` may have seen some of the contacts by then: what it made of them
/// is to be thrown away.
pub(super) fn for_each_contact<'a>(
    body: &'a Checked,
    each: impl FnMut(&Contact<'a>),
) -> Option<()> {
    read_page(body, each).ok()
}

fn read_page<'a>(body: &'a Checked, mut each: impl FnMut(&Contact<'a>)) -> Read<()> {
    let mut page = OnDemand::new(body)?;
    if page.value()? != Start::Object {
        return Err(Unsupported);
    }
    let mut results = false;
    let mut first = true;
    let mut members: Members<'a> = Vec::with_capacity(48);
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
            let contact = contact(&mut page, start, std::mem::take(&mut members))?;
            each(&contact);
            if let Contact::Record {
                properties: Some(Fields::Object(used)),
                ..
            } = contact
            {
                // Cleared by `fields` when the next contact's properties are read.
                members = used;
            }
        }
    }
    page.end()?;
    if results { Ok(()) } else { Err(Unsupported) }
}

/// One element of `results`, as `ContactVisitor` builds it; its properties go into
/// `members` (the vector of the contact before, its capacity kept).
fn contact<'a>(
    page: &mut OnDemand<'a>,
    start: Start<'a>,
    mut members: Members<'a>,
) -> Read<Contact<'a>> {
    if start != Start::Object {
        return scalar(start).map(Contact::Malformed);
    }
    let (mut id, mut properties, mut created_at, mut updated_at, mut archived) =
        (None, None, None, None, None);
    let mut first = true;
    while let Some(key) = page.next_key(first)? {
        first = false;
        let value = page.value()?;
        match key {
            "id" => id = Some(scalar(value)?),
            "properties" => {
                properties = Some(fields(page, value, std::mem::take(&mut members))?);
            }
            "createdAt" => created_at = Some(scalar(value)?),
            "updatedAt" => updated_at = Some(scalar(value)?),
            "archived" => archived = Some(scalar(value)?),
            _ => page.skip(value)?,
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

/// `properties`: its members in order (into `members`, cleared first), or the value standing
/// where an object was expected.
fn fields<'a>(
    page: &mut OnDemand<'a>,
    start: Start<'a>,
    mut members: Members<'a>,
) -> Read<Fields<'a>> {
    if start != Start::Object {
        return scalar(start).map(Fields::Other);
    }
    members.clear();
    let mut first = true;
    while let Some(key) = page.next_key(first)? {
        first = false;
        let value = page.value()?;
        members.push((Cow::Borrowed(key), scalar(value)?));
    }
    Ok(Fields::Object(members))
}

/// A kept value: a string, `null` or a boolean; numbers and nested values are serde's.
fn scalar(start: Start<'_>) -> Read<Scalar<'_>> {
    match start {
        Start::Str(text) => Ok(Scalar::Str(Cow::Borrowed(text))),
        Start::Null => Ok(Scalar::Null),
        Start::Bool(flag) => Ok(Scalar::Bool(flag)),
        Start::Number(_) | Start::Object | Start::Array => Err(Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::SkimProof;
    use bytes::Bytes;

    /// The contacts read from `body`'s tokens, collected (`None` when left to serde).
    fn read_contacts(body: &Checked) -> Option<Vec<Contact<'_>>> {
        let mut contacts = Vec::new();
        for_each_contact(body, |contact| contacts.push(contact.clone()))?;
        Some(contacts)
    }

    fn checked(body: &[u8]) -> Option<Checked> {
        Checked::after_skim(&Bytes::copy_from_slice(body), SkimProof::default()).ok()
    }

    /// The contacts serde reads from `body` (`None` when it does not take it whole).
    fn by_serde(body: &Checked) -> Option<Vec<Contact<'_>>> {
        let page: super::super::page::ContactsPage<'_> =
            crate::json::sonic_from_checked(body).ok()?;
        page.results
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
        let ours = read_contacts(&body).expect("read from its tokens");
        assert_eq!(Some(ours), by_serde(&body));
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
                read_contacts(&checked),
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
        // serde reads the same contacts; and the plain pages are read from their tokens.
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
        let (mut read, mut plain, mut skimmed_pages) = (0, 0, 0);
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
            let ours = read_contacts(&checked);
            // The page's skim keeps its tokens for the decoder, which reads the same contacts
            // from them.
            let bytes = Bytes::copy_from_slice(body.as_bytes());
            if let Ok(skimmed) =
                crate::json::skim_keeping_tokens(&bytes, Some(("results", "archived")))
            {
                let kept = Checked::after_skim(&bytes, skimmed.proof).unwrap();
                assert!(kept.tokens().is_some(), "{body}");
                assert_eq!(read_contacts(&kept), ours, "{body}");
                skimmed_pages += 1;
            }
            if ours.is_some() {
                read += 1;
                assert_eq!(ours, by_serde(&checked), "{body}");
            }
            if is_plain {
                plain += 1;
                assert!(ours.is_some(), "a plain page left to serde: {body}");
            }
        }
        assert!(read > 2_000 && plain > 2_000, "{read} read, {plain} plain");
        assert!(skimmed_pages > 5_000, "{skimmed_pages} skimmed");
    }

    /// Is `value` one the token reader keeps (a string without escapes, null, a boolean)?
    fn is_plain_value(value: &str) -> bool {
        !(value == "12" || value.starts_with('{') || value.contains('\\'))
    }
}
