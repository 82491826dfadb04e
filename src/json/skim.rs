//! A page's few members a source's own task needs before a decoding thread parses the page
//! whole: its cursor, its total, and one member of each listed record (HubSpot's
//! `results[].archived`, Typeform's `items[].token`), found in the same single pass over the
//! bytes as the nesting check ([`super::check_depth`]), without building anything.
//!
//! Only strings' quotes and the brackets and commas outside strings are visited, found 64
//! bytes at a time ([`super::structural`]); nothing else is looked at. This is not a
//! validator: keys are compared as written (escapes are not decoded) and a body that is not
//! JSON may skim without an error. The page is parsed, and judged, whole on the decoding thread.

use super::structural::{ByteScan, Scan, Tokens};
use super::{JsonError, MAX_DEPTH, SkimProof};

/// What [`skim`] found: raw JSON texts, borrowed from the body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Skimmed<'a> {
    /// The top-level members in order: key (as written, without its quotes) and value
    /// text (whitespace around it trimmed).
    pub members: Vec<(&'a [u8], &'a [u8])>,
    /// For [`skim`]'s `item_member = (list, member)`: the value text of `member` in each
    /// object element of the top-level array `list` that has one, in order.
    pub item_values: Vec<&'a [u8]>,
    /// That the body was read to its end within [`MAX_DEPTH`]: a parser of the same bytes
    /// elsewhere need not scan them again ([`super::Checked::after_skim`]).
    pub proof: SkimProof,
}

impl<'a> Skimmed<'a> {
    /// The value text of top-level member `key` (the last one when repeated).
    pub fn member(&self, key: &str) -> Option<&'a [u8]> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| *v)
    }
}

/// Skim `body`, a JSON object: its top-level members and, when `item_member` is
/// `Some((list, member))`, `member` of each object in the array `list`. Refuses, like
/// [`super::check_depth`], a body nested deeper than [`MAX_DEPTH`]; refuses a body that
/// is not an object or is cut off. The pass steps from token to token
/// ([`super::structural`]); a body with a backslash outside strings is read byte by byte.
pub fn skim<'a>(
    body: &'a [u8],
    item_member: Option<(&str, &str)>,
) -> Result<Skimmed<'a>, JsonError> {
    skim_from(body, item_member, Tokens::new(body))
}

/// [`skim`], its proof carrying the tokens it found, so that the parser of the same bytes
/// on another thread takes them instead of finding them again ([`super::Checked::tokens`]).
pub fn skim_keeping_tokens<'a>(
    body: &'a [u8],
    item_member: Option<(&str, &str)>,
) -> Result<Skimmed<'a>, JsonError> {
    skim_from(body, item_member, Tokens::recording(body))
}

/// [`skim`] stepping with `tokens` (what a recording one kept goes into the proof), or byte
/// by byte when they give up on the body.
fn skim_from<'a>(
    body: &'a [u8],
    item_member: Option<(&str, &str)>,
    mut tokens: Tokens<'a>,
) -> Result<Skimmed<'a>, JsonError> {
    match skim_with(body, item_member, &mut tokens) {
        Ok(Ok(mut found)) => {
            found.proof.tokens = tokens.recorded().map(std::sync::Arc::new);
            Ok(found)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let Ok(found) = skim_with(body, item_member, &mut ByteScan::new(body));
            found
        }
    }
}

/// [`skim`] with `scan`; `Err` when the scan gives up on the body.
fn skim_with<'a, S: Scan>(
    body: &'a [u8],
    item_member: Option<(&str, &str)>,
    scan: &mut S,
) -> Result<Result<Skimmed<'a>, JsonError>, S::GaveUp> {
    let (list, member) =
        item_member.map_or((&b""[..], &b""[..]), |(l, m)| (l.as_bytes(), m.as_bytes()));
    let mut found = Skimmed::default();
    let start = skip_space(body, 0);
    if body.get(start) != Some(&b'{') {
        return Ok(Err(JsonError::Invalid("not a JSON object".into())));
    }
    // Whether each open level is an object (`true`) or an array.
    let mut objects = [false; MAX_DEPTH + 1];
    let mut depth = 0usize;
    // The top-level member being read: its key and where its value starts.
    let mut top: Option<(&[u8], usize)> = None;
    let mut in_list = false;
    // Where the wanted member's value starts, in the list element being read.
    let mut item_at: Option<usize> = None;
    loop {
        // Only the top level's members and the listed objects' own members are read; inside
        // any other value only the nesting counts.
        let reading = depth == 1 || (depth == 3 && in_list && !objects[2]);
        let next = if reading {
            scan.next_token()?
        } else {
            scan.next_bracket()?
        };
        let Some(i) = next else { break };
        match body[i] {
            b'"' => {
                let end = scan.string_end()?;
                if end >= body.len() {
                    return Ok(Err(cut_off()));
                }
                let after = skip_space(body, end + 1);
                if objects[depth] && body.get(after) == Some(&b':') {
                    let key = &body[i + 1..end];
                    let value_at = skip_space(body, after + 1);
                    if depth == 1 {
                        top = Some((key, value_at));
                        in_list = !list.is_empty() && key == list;
                    } else if depth == 3 && in_list && !objects[2] && key == member {
                        item_at = Some(value_at);
                    }
                }
            }
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Ok(Err(JsonError::TooDeep {
                        limit: MAX_DEPTH,
                        offset: i,
                    }));
                }
                objects[depth] = open == b'{';
            }
            close => {
                if depth == 0 {
                    return Ok(Err(JsonError::Invalid("unbalanced brackets".into())));
                }
                if depth == 1
                    && let Some((key, at)) = top.take()
                {
                    found.members.push((key, body[at..i].trim_ascii()));
                    in_list = false;
                }
                if depth == 3
                    && let Some(at) = item_at.take()
                {
                    found.item_values.push(body[at..i].trim_ascii());
                }
                if close != b',' {
                    depth -= 1;
                    if depth == 0 {
                        if skip_space(body, i + 1) < body.len() {
                            return Ok(Err(JsonError::Invalid(
                                "trailing characters after the object".into(),
                            )));
                        }
                        found.proof = SkimProof::of(body);
                        return Ok(Ok(found));
                    }
                }
            }
        }
    }
    Ok(Err(cut_off()))
}

fn cut_off() -> JsonError {
    JsonError::Invalid("the body ends inside its object (cut off)".into())
}

/// The first byte at or after `from` that is not JSON whitespace.
fn skip_space(body: &[u8], mut from: usize) -> usize {
    while body.get(from).is_some_and(|&b| super::is_space(b)) {
        from += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_members_and_one_member_of_each_listed_object() {
        let body = br#" { "results" : [ {"id":"1","archived": false ,"properties":{"archived":"x","paging":1}},
            42, ["archived", true], {"archived":true}, {"x":{"archived":null}} ],
            "paging": {"next": {"after": "a\"b,}"}}, "total":12000 } "#;
        let found = skim(body, Some(("results", "archived"))).unwrap();
        let keys: Vec<&[u8]> = found.members.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [&b"results"[..], b"paging", b"total"]);
        assert_eq!(
            found.member("paging"),
            Some(&br#"{"next": {"after": "a\"b,}"}}"#[..])
        );
        assert_eq!(found.member("total"), Some(&b"12000"[..]));
        assert!(found.member("results").unwrap().starts_with(b"[ {\"id\""));
        assert_eq!(found.item_values, [&b"false"[..], b"true"]);
        // Without a list asked for, nothing inside the members is read.
        assert!(skim(body, None).unwrap().item_values.is_empty());
        let empty = skim(b"{}", None).unwrap();
        assert!(empty.members.is_empty() && empty.item_values.is_empty());
    }

    #[test]
    fn stepping_from_token_to_token_skims_as_reading_every_byte_does() {
        // Bodies shaped like pages (objects, lists, strings with escapes, a member asked for
        // in each listed object), cut short, with stray bytes, backslashes outside strings
        // and trailing text: a pseudo-random sequence, the same on every run. Both scans
        // must give the same members, values, errors and proof.
        let pieces: [&[u8]; 22] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\"results\"",
            b"\"archived\"",
            b"true",
            b"\"a\\\"b\"",
            b"\"x\\\\\"",
            b"\"[{,}]\"",
            b"12",
            b"\\",
            b"\"",
            b"\"paging\"",
            b"\"\xc3\xa9\"",
            b"null",
            b"\n",
            b"{\"archived\":false}",
            b"\"long string of text\"",
        ];
        let mut next = crate::test_support::pseudo_random(0x2545_f491_4f6c_dd1d_u64);
        let mut skimmed = 0;
        for _ in 0..20_000 {
            let mut body = b"{\"results\":[".to_vec();
            for _ in 0..next() % 60 {
                body.extend_from_slice(pieces[next() % pieces.len()]);
            }
            if next().is_multiple_of(2) {
                body.extend_from_slice(b"]}");
            }
            let fast = skim(&body, Some(("results", "archived")));
            let Ok(bytewise) = skim_with(
                &body,
                Some(("results", "archived")),
                &mut ByteScan::new(&body),
            );
            assert_eq!(fast, bytewise, "{:?}", String::from_utf8_lossy(&body));
            skimmed += usize::from(fast.is_ok());
        }
        assert!(skimmed > 100, "{skimmed} bodies skimmed whole");
    }

    #[test]
    fn refuses_what_is_not_a_whole_object_or_too_deep() {
        for body in [
            &b"<html>"[..],
            b"",
            b"[1]",
            b"{\"a\":[1,2",
            b"{\"a\":\"cut",
            b"{\"a\":1}}",
            b"{\"a\":1} x",
        ] {
            assert!(
                skim(body, None).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 1_000_000));
        assert!(matches!(
            skim(&deep, None),
            Err(JsonError::TooDeep {
                limit: MAX_DEPTH,
                ..
            })
        ));
        let mut fits = b"{\"a\":".to_vec();
        fits.extend(std::iter::repeat_n(b'[', MAX_DEPTH - 1));
        fits.extend(std::iter::repeat_n(b']', MAX_DEPTH - 1));
        fits.push(b'}');
        assert!(skim(&fits, None).is_ok());
    }
}
