//! A HubSpot contacts page decoded straight into `leads` rows: the body is read from its
//! tokens (`page_tokens.rs`, each contact's properties into the columns that read them),
//! else by serde into borrowed [`Contact`]s (`contact.rs`); both end in [`decode_record`].
//! The rows, rejects, newest `lastmodifieddate` and largest numeric id of the page come back
//! together. It runs on a blocking thread while the source fetches the next pages
//! ([`skim_page`] reads only the cursor, and the contacts' `archived` flags, and in the same
//! pass checks the nesting: the decoding thread gets the body as [`Checked`] and does not
//! scan it again).

use serde::Deserialize;
use serde_json::Value;

use super::contact::{Contact, PropertyIndex, decode_contact, decode_record, redact};
use super::page_tokens::TokenContact;
use crate::json::{Checked, SkimProof, Unsupported};
use crate::normalize::parse::Scalar;
use crate::normalize::{LeadRow, PersonalDataHasher};
use crate::sources::DecodedPage;
use crate::sources::lead_fields::LeadField;

/// A contacts page (list or search); its paging is read by [`skim_page`].
#[derive(Debug, Deserialize)]
pub(super) struct ContactsPage<'a> {
    /// The contacts; a page without them is a protocol error.
    #[serde(borrow, default)]
    pub results: Option<Vec<Contact<'a>>>,
}

/// What the source's own task reads of a page before a decoding thread parses it whole:
/// its cursor and `total`, and, for a list page, the first contact whose `archived` flag
/// is not the one the request asked for (see `sync::list_page_belongs`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Skim {
    /// `paging.next.after` (a string as is, a number as its text) and `total` when it is a
    /// whole number.
    pub cursor: Cursor,
    /// The first `archived` flag that differs from the one asked for.
    pub other_archived: Option<bool>,
    /// That the skim checked the body's nesting: its decoding thread does not scan it again.
    pub proof: SkimProof,
}

/// Skim a page on the source's task ([`crate::json::skim`]: one pass over the bytes that
/// also checks their nesting, the contacts skipped, not built): its cursor and total, and,
/// when `archived` is given, the first contact `archived` flag that is not that. A body
/// that is not a JSON object is an error; the contacts are parsed, and judged, on a
/// decoding thread.
pub(super) fn skim_page(
    body: &[u8],
    archived: Option<bool>,
) -> std::result::Result<Skim, crate::json::JsonError> {
    // The tokens found are kept for the decoding thread, which reads the same bytes.
    let found = crate::json::skim_keeping_tokens(body, archived.map(|_| ("results", "archived")))?;
    let flag = |text: &[u8]| match text {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    };
    Ok(Skim {
        cursor: (
            found.member("paging").and_then(next_after),
            found
                .member("total")
                .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok()),
        ),
        other_archived: archived.and_then(|archived| {
            found
                .item_values
                .iter()
                .filter_map(|text| flag(text))
                .find(|flag| *flag != archived)
        }),
        proof: found.proof,
    })
}

/// `next.after` of a `paging` member's text: a string as is, a number as its text.
fn next_after(paging: &[u8]) -> Option<String> {
    let paging: Value = crate::json::from_slice(paging).ok()?;
    match paging.pointer("/next/after") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A page's cursor (`paging.next.after`) and `total`, as [`skim_page`] reads them.
pub(super) type Cursor = (Option<String>, Option<u64>);

/// How far a page reached, over every contact on it (rejected ones included).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reached {
    /// The newest `lastmodifieddate` (or `updatedAt`), epoch ms.
    pub modified_ms: Option<i64>,
    /// The largest `id` (= `hs_object_id`), compared as a number: ids sort as numbers in
    /// HubSpot's search, and "999" > "1000" as text.
    pub id: Option<u64>,
}

/// A decoded page; `next` is how far it reached.
pub(super) type ContactsDecoded = DecodedPage<LeadRow, Reached>;

/// A contact's `id` as a number (HubSpot sends a string of digits).
fn numeric_id(id: Option<&Scalar<'_>>) -> Option<u64> {
    match id {
        Some(Scalar::Str(s)) => s.parse().ok(),
        Some(Scalar::Number(n)) => n.as_u64(),
        _ => None,
    }
}

/// Why `body` is not a contacts page, with an excerpt of it.
pub(super) fn not_a_page(e: &crate::json::JsonError, body: &[u8]) -> String {
    format!(
        "body is not a contacts page ({e}): {}",
        crate::http::body_excerpt(body)
    )
}

/// Decode a page body, its nesting checked (by the skim that read its cursor): `Err` names
/// what is wrong with the page as a whole. Each contact becomes its row (or reject) as soon
/// as it is read from the page's tokens; a page they cannot be read from is parsed by serde,
/// and what the tokens gave before is thrown away.
pub(super) fn decode_page(
    body: &Checked,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> Result<ContactsDecoded, String> {
    match decode_by_tokens(body, index, hasher) {
        Some(out) => Ok(out),
        None => decode_by_serde(body, index, hasher),
    }
}

/// [`decode_page`] from the page's tokens; `None` when they cannot be read.
pub(super) fn decode_by_tokens(
    body: &Checked,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> Option<ContactsDecoded> {
    let mut out = empty_page();
    super::page_tokens::for_each_contact(body, index, |contact, index| {
        let (members, values, span) = match contact {
            TokenContact::Record {
                members,
                values,
                span,
            } => (members, values, span),
            TokenContact::Malformed(other) => {
                add(&mut out, &Contact::Malformed(other), index, hasher);
                return Ok(());
            }
        };
        let (decoded, modified_ms) =
            decode_record(members, |slot| values[slot].as_ref(), index, hasher);
        reached(&mut out, members.id, modified_ms);
        match decoded {
            Ok(row) => out.rows.push(row),
            Err(reason) => {
                // Kept whole in `_rejects`: the contact alone, parsed by serde (its kept
                // members are strings, nulls and booleans, which serde_json reads as
                // sonic-rs does).
                let contact: Contact<'_> =
                    serde_json::from_slice(&body.bytes()[span]).map_err(|_| Unsupported)?;
                out.rejects.push((
                    redact(&contact.to_value(), index.name(LeadField::Email), hasher),
                    reason,
                ));
            }
        }
        Ok(())
    })?;
    Some(out)
}

/// [`decode_page`] by serde.
pub(super) fn decode_by_serde(
    body: &Checked,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) -> Result<ContactsDecoded, String> {
    // sonic-rs: the same serde types, a third faster than serde_json on these pages.
    let page: ContactsPage<'_> =
        crate::json::sonic_from_checked(body).map_err(|e| not_a_page(&e, body.bytes()))?;
    let mut out = empty_page();
    for contact in &page.results.ok_or("no `results` array")? {
        add(&mut out, contact, index, hasher);
    }
    Ok(out)
}

fn empty_page() -> ContactsDecoded {
    DecodedPage {
        rows: Vec::with_capacity(100),
        rejects: Vec::new(),
        next: Reached::default(),
    }
}

/// How far the page reached, with a contact's `id` and modification time.
fn reached(out: &mut ContactsDecoded, id: Option<&Scalar<'_>>, modified_ms: Option<i64>) {
    out.next.modified_ms = out.next.modified_ms.max(modified_ms);
    out.next.id = out.next.id.max(numeric_id(id));
}

/// One contact of a page read by serde into `out`: its row or its reject, and how far it
/// reached.
fn add(
    out: &mut ContactsDecoded,
    contact: &Contact<'_>,
    index: &mut PropertyIndex,
    hasher: &PersonalDataHasher,
) {
    let (decoded, modified_ms) = decode_contact(contact, index, hasher);
    let id = match contact {
        Contact::Record { id, .. } => id.as_ref(),
        Contact::Malformed(_) => None,
    };
    reached(out, id, modified_ms);
    match decoded {
        Ok(row) => out.rows.push(row),
        Err(reason) => out.rejects.push((
            redact(&contact.to_value(), index.name(LeadField::Email), hasher),
            reason,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::custom::CustomProperties;
    use crate::sources::hubspot::HubspotProperties;
    use bytes::Bytes;

    /// The cursor and total of a page body: [`skim_page`] without the `archived` flags.
    fn peek_paging(body: &[u8]) -> std::result::Result<Cursor, crate::json::JsonError> {
        Ok(skim_page(body, None)?.cursor)
    }

    /// `body` as the decoding thread gets it: its nesting checked by a scan of its own (no
    /// skim of these bytes vouches for it).
    fn checked(body: &[u8]) -> Checked {
        Checked::after_skim(&Bytes::copy_from_slice(body), SkimProof::default()).unwrap()
    }

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
        let page = decode_page(&checked(body), &mut index, &hasher).unwrap();
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
        let page = decode_page(&checked(ids), &mut index, &hasher).unwrap();
        assert_eq!(page.next.id, Some(1000));
        assert!(decode_page(&checked(b"{\"paging\":{}}"), &mut index, &hasher).is_err());
        assert!(decode_page(&checked(b"{\"results\":["), &mut index, &hasher).is_err());
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

    /// A page reaches its decoding thread only as a [`Checked`] body: nested too deep, it is
    /// refused before the decoder parses it — by the skim that reads its cursor, and by
    /// `Checked::after_skim`'s own scan when no skim of those very bytes vouches for it (a
    /// skim of an equal copy elsewhere does not). sonic-rs's own limit (255 levels) is too
    /// deep to be a safety net: 300 levels overflowed a 2 MiB thread's stack in a debug build.
    #[test]
    fn a_page_nested_too_deep_is_refused_before_the_decoder_parses_it() {
        for depth in [101, 300, 100_000] {
            let body = format!(
                r#"{{"results":[{{"id":"1","properties":{{"email":{}1{}}}}}]}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let skimmed = skim_page(body.as_bytes(), Some(false)).unwrap_err();
            assert!(
                skimmed.to_string().contains("nested deeper than 100"),
                "{skimmed}"
            );
            let copy_proof = skim_page(br#"{"results":[]}"#, None).unwrap().proof;
            for proof in [SkimProof::default(), copy_proof] {
                let err = Checked::after_skim(&Bytes::from(body.clone()), proof).unwrap_err();
                assert!(
                    err.to_string().contains("nested deeper than 100"),
                    "depth {depth}: {err}"
                );
            }
        }
        // The skim's proof spares the scan only for the bytes it read.
        let body = Bytes::from_static(br#"{"results":[],"paging":{"next":{"after":"7"}}}"#);
        let proof = skim_page(&body, None).unwrap().proof;
        assert_eq!(proof, skim_page(&body, Some(true)).unwrap().proof);
        let copy = body.to_vec();
        assert_ne!(proof, skim_page(&copy, None).unwrap().proof);
        assert_ne!(
            proof,
            skim_page(&body[..body.len() - 1], None)
                .unwrap_or_default()
                .proof
        );
    }
}
