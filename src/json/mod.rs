//! The one door every vendor body goes through on its way into a JSON parser: a page, an
//! error body a retry classification reads, a token answer, a costs or rates file, a landed
//! page being scrubbed, a recorded page being replayed.
//!
//! Both parsers we use recurse once per level of nesting, and so do the trees they build
//! (when walked, scrubbed or dropped): a hostile or broken body nested thousands of levels
//! deep would overflow the stack and abort the whole run, whatever the other sources did.
//! serde_json stops at 128 levels on its own, sonic-rs's tree does not. So before any parser
//! sees a body, [`check_depth`] scans its bytes once, without recursion, and refuses one
//! nested deeper than [`MAX_DEPTH`]: the page (and its source) fails with a clear error, the
//! run goes on. Vendor pages are a handful of levels deep.
//!
//! A body [`skim`]med on its source's task for its cursor had its nesting checked by that
//! same pass: it goes on to its decoding thread as [`Checked`], which the parser takes
//! without a second scan.
//!
//! A parse error never quotes the body: sonic-rs's message carries a fragment of the input
//! around the error, serde_json's names a mistyped value; both are cut and redacted here
//! ([`crate::normalize::redact_text`]), so an e-mail in a broken body stays out of errors.

mod ondemand;
mod skim;
mod structural;

pub(crate) use ondemand::{OnDemand, Read, Start, Unsupported};
pub use skim::{Skimmed, skim, skim_keeping_tokens};
use structural::RecordedTokens;

use crate::normalize::redact_text;

/// The deepest nesting of arrays and objects a body may have: far beyond any vendor page,
/// and below both parsers' own limits (serde_json 128, sonic-rs's serde path 255), so this
/// check, not a parser, decides.
pub const MAX_DEPTH: usize = 100;

/// Why a body was not parsed. The message never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Nested deeper than [`MAX_DEPTH`].
    #[error(
        "nested deeper than {limit} levels (at byte {offset}): refused before parsing, a vendor page is never this deep"
    )]
    TooDeep {
        /// The limit exceeded.
        limit: usize,
        /// Where the limit was crossed.
        offset: usize,
    },
    /// Not JSON, or not the expected shape (the parser's message, redacted).
    #[error("{0}")]
    Invalid(String),
}

/// Is `byte` JSON whitespace (space, tab, line feed, carriage return; nothing else)?
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// Refuse `body` if its arrays and objects nest deeper than [`MAX_DEPTH`]. One pass over
/// the bytes with a counter (brackets inside strings do not count; the pass steps from
/// bracket to bracket, [`structural`]), so it cannot itself run out of stack, whatever the
/// body holds; a cut-off or malformed body is left for the parser to judge.
pub fn check_depth(body: &[u8]) -> Result<(), JsonError> {
    check_depth_within(body, MAX_DEPTH)
}

fn check_depth_within(body: &[u8], limit: usize) -> Result<(), JsonError> {
    if let Ok(checked) = depth_with(body, limit, structural::Tokens::new(body)) {
        return checked;
    }
    let Ok(checked) = depth_with(body, limit, structural::ByteScan::new(body));
    checked
}

/// [`check_depth_within`] with `scan`; `Err` when the scan gives up on the body.
fn depth_with<S: structural::Scan>(
    body: &[u8],
    limit: usize,
    mut scan: S,
) -> Result<Result<(), JsonError>, S::GaveUp> {
    let mut depth = 0usize;
    while let Some(i) = scan.next_bracket()? {
        match body[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Ok(Err(JsonError::TooDeep { limit, offset: i }));
                }
            }
            _ => depth = depth.saturating_sub(1),
        }
    }
    Ok(Ok(()))
}

/// Where the string whose contents start at `from` ends: its closing quote (the next one
/// not escaped by a backslash), or the body's length if it is cut off. Strings are most of a
/// vendor page's bytes, and most are short (a property name, a date, a number as text): the
/// first [`INLINE_WORDS`] words of one are searched eight bytes at a time in place, which
/// on a HubSpot contacts page is a third faster than a `memchr` call per string; a longer
/// string goes on with `memchr`'s vector search. Inlined into the scanning loops, as the
/// call would cost about what a short string's search does.
#[inline(always)]
fn string_end(body: &[u8], mut from: usize) -> usize {
    let mut words = 0;
    while let Some(chunk) = body.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("a slice of eight bytes"));
        let found = bytes_equal_to(word, b'"') | bytes_equal_to(word, b'\\');
        if found != 0 {
            // The first flagged byte is exact (see `bytes_equal_to`).
            let at = from + (found.trailing_zeros() / 8) as usize;
            if body[at] == b'"' {
                return at;
            }
            // A backslash escapes the byte after it, whatever it is.
            from = at + 2;
            continue;
        }
        from += 8;
        words += 1;
        if words == INLINE_WORDS {
            break;
        }
    }
    string_end_memchr(body, from.min(body.len()))
}

/// Words of a string [`string_end`] searches itself before handing the rest to `memchr`.
const INLINE_WORDS: usize = 4;

/// [`string_end`] with a `memchr` call per quote or backslash.
fn string_end_memchr(body: &[u8], mut from: usize) -> usize {
    while let Some(found) = body
        .get(from..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        let at = from + found;
        if body[at] == b'"' {
            return at;
        }
        from = at + 2;
    }
    body.len()
}

/// The bytes of `word` (little-endian) equal to `byte`, as the high bit of each: exact up to
/// and including the first such byte (the borrow of the subtraction can flag a byte after
/// it, never one before), which is all [`string_end`] reads.
#[inline(always)]
fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_where_equal = word ^ (ONES * u64::from(byte));
    zero_where_equal.wrapping_sub(ONES) & !zero_where_equal & HIGHS
}

/// serde_json's `from_slice` behind the depth check, its error redacted.
pub fn from_slice<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, JsonError> {
    check_depth(body)?;
    serde_json::from_slice(body).map_err(|e| invalid(&e))
}

/// [`from_slice`] of a text.
pub fn from_str<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, JsonError> {
    from_slice(text.as_bytes())
}

/// sonic-rs's `from_slice` (its tree, or borrowed serde types) behind the depth check, its
/// error redacted.
pub fn sonic_from_slice<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, JsonError> {
    check_depth(body)?;
    sonic_rs::from_slice(body).map_err(|e| invalid(&e))
}

/// [`sonic_from_slice`] of a body already known to be shallow enough: not scanned again.
pub fn sonic_from_checked<'a, T: serde::Deserialize<'a>>(
    body: &'a Checked,
) -> Result<T, JsonError> {
    sonic_rs::from_slice(&body.body).map_err(|e| invalid(&e))
}

/// A body whose nesting is known to be within [`MAX_DEPTH`], to be parsed on another thread
/// without a second scan (a HubSpot page is skimmed on its source's task for its cursor, and
/// that one pass checks the nesting too), with the tokens that skim found, when it kept
/// them. Only [`Checked::after_skim`] makes one.
#[derive(Debug, Clone)]
pub struct Checked {
    body: bytes::Bytes,
    tokens: Option<std::sync::Arc<RecordedTokens>>,
}

impl Checked {
    /// `body`, checked: by `skimmed` when that is the [`skim`] of these very bytes (the same
    /// address and length: `body` is alive, so no other body can be there now, and the
    /// caller skimmed the body it holds), else by a scan of its own. The skim's tokens are
    /// kept only in the first case: they are those of these bytes.
    pub fn after_skim(body: &bytes::Bytes, skimmed: SkimProof) -> Result<Self, JsonError> {
        let tokens = if skimmed == SkimProof::of(body) {
            skimmed.tokens
        } else {
            check_depth(body)?;
            None
        };
        Ok(Checked {
            body: body.clone(),
            tokens,
        })
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The tokens its skim found ([`skim_keeping_tokens`]), if it kept them.
    pub(crate) fn tokens(&self) -> Option<&RecordedTokens> {
        self.tokens.as_deref()
    }
}

/// That [`skim`] read some bytes to their end without finding them nested too deep: where
/// they were and how many (two proofs are equal when they vouch for the same bytes), and,
/// from [`skim_keeping_tokens`], the tokens it found. Only a skim makes one; the default is
/// no body's (address 0).
#[derive(Debug, Clone, Default)]
pub struct SkimProof {
    at: usize,
    len: usize,
    tokens: Option<std::sync::Arc<RecordedTokens>>,
}

impl PartialEq for SkimProof {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.len) == (other.at, other.len)
    }
}

impl Eq for SkimProof {}

impl SkimProof {
    fn of(body: &[u8]) -> Self {
        SkimProof {
            at: body.as_ptr() as usize,
            len: body.len(),
            tokens: None,
        }
    }
}

/// A parser's message without the input it may quote: sonic-rs appends the bytes around the
/// error after a blank line; a mistyped value (`invalid type: string "…"`) is redacted.
pub(crate) fn invalid(error: &dyn std::fmt::Display) -> JsonError {
    let text = error.to_string();
    let message = text.split("\n\n").next().unwrap_or_default().trim();
    JsonError::Invalid(redact_text(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closing quote found byte by byte: what [`string_end`] must agree with.
    fn string_end_bytewise(body: &[u8], mut from: usize) -> usize {
        while from < body.len() {
            match body[from] {
                b'"' => return from,
                b'\\' => from += 2,
                _ => from += 1,
            }
        }
        body.len()
    }

    #[test]
    fn string_ends_are_found_across_words_escapes_and_cut_off_bodies() {
        // Quotes, backslashes, bytes just above and below them, bytes with the high bit set
        // and a multi-byte character, in bodies up to 80 bytes (past the inline words), from
        // every start: a pseudo-random sequence, the same on every run.
        let alphabet = [
            b'a', b'"', b'\\', b'!', b'#', b'[', b']', 0x80, 0xff, 0xc3, 0xa9,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        for _ in 0..20_000 {
            let len = (next() >> 57) as usize % 81;
            // Mostly plain bytes, so that long strings occur too.
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    let pick = (next() >> 33) as usize % 40;
                    alphabet.get(pick).copied().unwrap_or(b'x')
                })
                .collect();
            for from in 0..=body.len() + 1 {
                assert_eq!(
                    string_end(&body, from),
                    string_end_bytewise(&body, from),
                    "{:?} from {from}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }

    fn nested(levels: usize) -> Vec<u8> {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', levels - 1));
        body.extend(std::iter::repeat_n(b']', levels - 1));
        body.push(b'}');
        body
    }

    #[test]
    fn refuses_deep_nesting_before_any_parser_recurses() {
        assert!(check_depth(&nested(MAX_DEPTH)).is_ok());
        assert!(matches!(
            check_depth(&nested(MAX_DEPTH + 1)),
            Err(JsonError::TooDeep {
                limit: MAX_DEPTH,
                ..
            })
        ));
        // Far deeper than any stack holds: refused, by every entry point, without a crash.
        let hostile = nested(1_000_000);
        assert!(from_slice::<serde_json::Value>(&hostile).is_err());
        assert!(sonic_from_slice::<sonic_rs::Value>(&hostile).is_err());
        // Opened and never closed, as a cut-off body would be.
        assert!(check_depth(&vec![b'['; 500]).is_err());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            "{{\"a\":\"{}\\\"{}\",\"b\":[1]}}",
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(check_depth(text.as_bytes()).is_ok());
        let value: serde_json::Value = from_str(&text).unwrap();
        assert_eq!(value["b"][0], 1);
    }

    #[test]
    fn a_string_ends_at_its_first_unescaped_quote() {
        // `"\\"` is one backslash: the quote after it closes the string, so the brackets
        // after it count; `"\""` escapes its quote, so the brackets stay inside.
        assert!(matches!(
            check_depth_within(br#"{"a":"x\\","b":[[1]]}"#, 2),
            Err(JsonError::TooDeep { offset: 16, .. })
        ));
        assert!(check_depth_within(br#"{"a":"x\"[[[[","b":1}"#, 1).is_ok());
        // Cut off inside a string or right after a backslash: nothing more counts.
        assert!(check_depth_within(br#"{"a":"[[["#, 1).is_ok());
        assert!(check_depth_within(b"{\"a\":\"x\\", 1).is_ok());
        assert_eq!(string_end(br#"ab\"c"d"#, 0), 5);
        // A backslash outside strings (not JSON): its quote still opens a string, as the
        // byte-by-byte scan has always read it, so the brackets after `"b":` count.
        assert!(matches!(
            check_depth_within(br#"{"a":1,\"b":[[[1]]]}"#, 3),
            Err(JsonError::TooDeep { offset: 14, .. })
        ));
    }

    #[test]
    fn errors_never_quote_the_body() {
        let body = br#"{"results":[{"email":"jane.doe@corp.example","n":tru"#;
        for message in [
            from_slice::<serde_json::Value>(body)
                .unwrap_err()
                .to_string(),
            sonic_from_slice::<sonic_rs::Value>(body)
                .unwrap_err()
                .to_string(),
        ] {
            assert!(!message.contains("jane"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        #[derive(Debug, serde::Deserialize)]
        struct Typed {
            #[allow(dead_code, reason = "only the error is read")]
            n: u64,
        }
        let mistyped = br#"{"n":"jane.doe@corp.example"}"#;
        for message in [
            from_slice::<Typed>(mistyped).unwrap_err().to_string(),
            sonic_from_slice::<Typed>(mistyped).unwrap_err().to_string(),
        ] {
            assert!(message.contains("invalid type"), "{message}");
            assert!(!message.contains("jane"), "{message}");
        }
    }
}
