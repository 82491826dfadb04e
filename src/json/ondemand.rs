//! A body read value by value from its tokens ([`structural::Tokens`]: the positions of its
//! quotes and brackets), every string borrowed from the body: for a page read whole and
//! often, a parse that visits the positions of its tokens instead of every byte through a
//! general parser.
//!
//! It takes only what it can vouch for — UTF-8 text, strings without escapes or control
//! characters, the literals `null`, `true` and `false`, numbers only to pass over them — and
//! answers [`Unsupported`] to anything else, including any body that is not JSON. The caller
//! then parses that body with its full parser (serde), so a body is never read differently
//! from how serde reads it: this is a faster path for the common page, not a second
//! definition of JSON. It reads only [`Checked`] bodies, whose nesting is bounded, so its
//! recursion ([`OnDemand::skip`]) is too.

use super::Checked;
use super::structural::{Scan, Tokens};

/// Something the reader does not take: parse the body with a full parser instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsupported;

/// What a read gives, or [`Unsupported`].
pub(crate) type Read<T> = Result<T, Unsupported>;

/// A value, as far as its first token tells: a whole scalar, or an opened object or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start<'a> {
    /// A string (it has no escapes).
    Str(&'a str),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its text (only ever passed over).
    Number(&'a str),
    /// `{`, consumed: its members follow ([`OnDemand::next_key`]).
    Object,
    /// `[`, consumed: its elements follow ([`OnDemand::next_element`]).
    Array,
}

/// The reader of one body.
pub(crate) struct OnDemand<'a> {
    text: &'a str,
    tokens: Tokens<'a>,
    /// The first byte not yet read.
    at: usize,
    /// A token taken from `tokens` and not yet read (the one ending a literal).
    pending: Option<usize>,
    /// A key was just read: the next value is preceded by its colon.
    after_key: bool,
    /// The body has a backslash or a byte below 0x20 somewhere: each string is checked for
    /// them (most pages have neither, and their strings need no look).
    check_strings: bool,
}

impl<'a> OnDemand<'a> {
    /// The reader of `body`, at its start.
    pub(crate) fn new(body: &'a Checked) -> Read<Self> {
        // Every byte of every contacts page passes here: a SIMD check, several times std's.
        let text = simdutf8::basic::from_utf8(body.bytes()).map_err(|_| Unsupported)?;
        Ok(OnDemand {
            text,
            // The tokens the page's skim found, when it kept them: not found again.
            tokens: match body.tokens() {
                Some(recorded) => Tokens::replaying(text.as_bytes(), recorded),
                None => Tokens::new(text.as_bytes()),
            },
            at: 0,
            pending: None,
            after_key: false,
            // No early exit: the loop vectorizes, a fraction of the page's parse.
            check_strings: text
                .bytes()
                .fold(false, |seen, b| seen | (b == b'\\') | (b < 0x20)),
        })
    }

    #[inline]
    fn byte(&self, at: usize) -> u8 {
        self.text.as_bytes()[at]
    }

    /// The next token; a body that ends before it is unsupported (serde judges it).
    #[inline]
    fn token(&mut self) -> Read<usize> {
        match self.pending.take() {
            Some(at) => Ok(at),
            None => self
                .tokens
                .next_token()
                .map_err(|_| Unsupported)?
                .ok_or(Unsupported),
        }
    }

    /// The text between the last byte read and the token at `to`, without the whitespace
    /// around it (and without the colon before a member's value, which must be there).
    #[inline]
    fn gap(&mut self, to: usize) -> Read<&'a [u8]> {
        let gap = trim(&self.text.as_bytes()[self.at..to]);
        if !std::mem::take(&mut self.after_key) {
            return Ok(gap);
        }
        match gap.split_first() {
            Some((b':', rest)) => Ok(trim(rest)),
            _ => Err(Unsupported),
        }
    }

    /// The next value (at the top, after a key, or as an array element).
    #[inline]
    pub(crate) fn value(&mut self) -> Read<Start<'a>> {
        let token = self.token()?;
        let gap = self.gap(token)?;
        if !gap.is_empty() {
            // A literal, ended by this token, which is read next.
            self.at = token;
            self.pending = Some(token);
            return literal(gap);
        }
        self.at = token + 1;
        match self.byte(token) {
            b'"' => self.string_from(token).map(Start::Str),
            b'{' => Ok(Start::Object),
            b'[' => Ok(Start::Array),
            _ => Err(Unsupported),
        }
    }

    /// The string whose opening quote is at `open`: up to the next token, its closing quote.
    #[inline]
    fn string_from(&mut self, open: usize) -> Read<&'a str> {
        // Tokens inside a string are masked: the next one is its closing quote, if any.
        let close = self
            .tokens
            .next()
            .map_err(|_| Unsupported)?
            .ok_or(Unsupported)?;
        let text = self.text.get(open + 1..close).ok_or(Unsupported)?;
        // serde unescapes (into an owned string) and refuses raw control characters.
        if self.check_strings && text.bytes().any(|b| b == b'\\' || b < 0x20) {
            return Err(Unsupported);
        }
        self.at = close + 1;
        Ok(text)
    }

    /// The key of the next member of the object being read, its colon to be read with the
    /// value; `None` at the object's end. `first`: no member of it read yet.
    #[inline]
    pub(crate) fn next_key(&mut self, first: bool) -> Read<Option<&'a str>> {
        let Some(at) = self.separator(first, b'}')? else {
            return Ok(None);
        };
        if self.byte(at) != b'"' || !trim(&self.text.as_bytes()[self.at..at]).is_empty() {
            return Err(Unsupported);
        }
        self.at = at + 1;
        let key = self.string_from(at)?;
        self.after_key = true;
        Ok(Some(key))
    }

    /// Is there a next element of the array being read? Read it with [`Self::value`].
    /// `first`: no element of it read yet.
    #[inline]
    pub(crate) fn next_element(&mut self, first: bool) -> Read<bool> {
        let token = self.separator(first, b']')?;
        if let Some(at) = token {
            // The element starts at this token, or is the literal before it.
            self.pending = Some(at);
        }
        Ok(token.is_some())
    }

    /// Between two items of an object or array: its `close` (then `None`), or the comma
    /// before the next item unless it is the `first` (then where that item starts: its
    /// first token, the text before which is left for [`Self::value`]).
    #[inline]
    fn separator(&mut self, first: bool, close: u8) -> Read<Option<usize>> {
        let token = self.token()?;
        let before = trim(&self.text.as_bytes()[self.at..token]);
        if before.is_empty() && self.byte(token) == close {
            self.at = token + 1;
            return Ok(None);
        }
        if first {
            return Ok(Some(token));
        }
        if !before.is_empty() || self.byte(token) != b',' {
            return Err(Unsupported);
        }
        self.at = token + 1;
        self.token().map(Some)
    }

    /// The first byte not yet read: just after the `{` or `[` of a value [`Self::value`]
    /// opened, or after the `}` or `]` that ended what was being read.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Pass over the rest of a value whose start was read, checking it as a parser would.
    pub(crate) fn skip(&mut self, start: Start<'a>) -> Read<()> {
        match start {
            Start::Object => {
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    let value = self.value()?;
                    self.skip(value)?;
                }
            }
            Start::Array => {
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    let value = self.value()?;
                    self.skip(value)?;
                }
            }
            Start::Str(_) | Start::Null | Start::Bool(_) | Start::Number(_) => {}
        }
        Ok(())
    }

    /// After the top-level value: nothing but whitespace may follow.
    pub(crate) fn end(mut self) -> Read<()> {
        if self.pending.is_some() || self.tokens.next_token().map_err(|_| Unsupported)?.is_some() {
            return Err(Unsupported);
        }
        if trim(&self.text.as_bytes()[self.at..]).is_empty() {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }
}

/// `text` without JSON whitespace at either end.
#[inline]
fn trim(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&b| !super::is_space(b))
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&b| !super::is_space(b))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

/// A literal value: `null`, `true`, `false` or a number in JSON's grammar.
#[inline]
fn literal(text: &[u8]) -> Read<Start<'_>> {
    match text {
        b"null" => Ok(Start::Null),
        b"true" => Ok(Start::Bool(true)),
        b"false" => Ok(Start::Bool(false)),
        _ if is_number(text) => std::str::from_utf8(text)
            .map(Start::Number)
            .map_err(|_| Unsupported),
        _ => Err(Unsupported),
    }
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn is_number(text: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = text.strip_prefix(b"-").unwrap_or(text);
    match rest.first() {
        Some(b'0') => rest = &rest[1..],
        Some(b'1'..=b'9') => rest = &rest[digits(rest)..],
        _ => return false,
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::Value;

    fn checked(body: &[u8]) -> Option<Checked> {
        Checked::after_skim(
            &Bytes::copy_from_slice(body),
            super::super::SkimProof::default(),
        )
        .ok()
    }

    /// The whole body as a `serde_json::Value`, read by the on-demand reader (numbers
    /// through serde_json, since the reader only passes over them).
    fn read_value(r: &mut OnDemand<'_>, start: Start<'_>) -> Read<Value> {
        Ok(match start {
            Start::Str(s) => Value::String(s.to_string()),
            Start::Null => Value::Null,
            Start::Bool(b) => Value::Bool(b),
            Start::Number(n) => serde_json::from_str(n).map_err(|_| Unsupported)?,
            Start::Object => {
                let mut map = serde_json::Map::new();
                let mut first = true;
                while let Some(key) = r.next_key(first)? {
                    first = false;
                    let start = r.value()?;
                    map.insert(key.to_string(), read_value(r, start)?);
                }
                Value::Object(map)
            }
            Start::Array => {
                let mut items = Vec::new();
                let mut first = true;
                while r.next_element(first)? {
                    first = false;
                    let start = r.value()?;
                    items.push(read_value(r, start)?);
                }
                Value::Array(items)
            }
        })
    }

    fn on_demand(body: &[u8]) -> Option<Value> {
        let checked = checked(body)?;
        let mut r = OnDemand::new(&checked).ok()?;
        let start = r.value().ok()?;
        let value = read_value(&mut r, start).ok()?;
        r.end().ok()?;
        Some(value)
    }

    #[test]
    fn reads_plain_json_as_serde_does() {
        let body = br#" { "a" : "x" , "b":[1, -2.5e3 ,true,null,{"c":[]},"d"], "e":{}, "f":0 } "#;
        let value: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(on_demand(body), Some(value));
        assert_eq!(on_demand(b"[]"), Some(serde_json::json!([])));
        assert_eq!(on_demand(b"\"\xc3\xa9\""), Some(serde_json::json!("é")));
    }

    #[test]
    fn leaves_escapes_and_everything_that_is_not_json_to_serde() {
        for body in [
            &br#"{"a":"x\"y"}"#[..],
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":1,}",
            b"[1,]",
            b"[,1]",
            b"{,\"a\":1}",
            b"{\"a\" 1}",
            b"{\"a\"::1}",
            b"{\"a\":1 \"b\":2}",
            b"[1 2]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[-]",
            b"[nul]",
            b"[True]",
            b"{\"a\":1}}",
            b"{\"a\":1} x",
            b"{\"a\":\"cut",
            b"{\"a\":[1,2",
            b"\xff",
            // Not UTF-8 inside a string: a cut sequence, an overlong slash, a surrogate.
            b"{\"a\":\"\xc3(\"}",
            b"{\"a\":\"\xc0\xaf\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"",
            b"{\"a\":1}\\",
        ] {
            assert_eq!(on_demand(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for yes in [
            "0", "-0", "7", "-12", "3.25", "1e9", "1E+2", "2.5e-3", "-0.0",
        ] {
            assert!(is_number(yes.as_bytes()), "{yes}");
        }
        for no in [
            "", "-", "01", "1.", ".1", "1e", "1e+", "+1", "0x1", "1_000", "NaN",
        ] {
            assert!(!is_number(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn reads_what_serde_reads_and_nothing_it_refuses() {
        // Random bodies built from JSON pieces, many of them broken: whenever the on-demand
        // reader reads one, serde reads the same value; and it reads every valid one without
        // escapes whose top-level value starts with a token.
        let pieces: [&[u8]; 20] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\"k\"",
            b"\"v w\"",
            b"true",
            b"null",
            b"12",
            b"-3.5e2",
            b"\"a\\\"b\"",
            b"\"\xc3\xa9\"",
            b"\n",
            b"{\"a\":[1,{}]}",
            b"0",
            b"\"\"",
            b"false",
        ];
        let mut next = crate::test_support::pseudo_random(0x9e37_79b9_7f4a_7c15_u64);
        let (mut read, mut plain) = (0, 0);
        for _ in 0..30_000 {
            let mut body = Vec::new();
            for _ in 0..1 + next() % 12 {
                body.extend_from_slice(pieces[next() % pieces.len()]);
            }
            let serde: Option<Value> = serde_json::from_slice(&body).ok();
            let ours = on_demand(&body);
            if ours.is_some() {
                read += 1;
                assert_eq!(ours, serde, "{}", String::from_utf8_lossy(&body));
            }
            // Valid JSON without escapes, whose top-level value has a token after its
            // start (not a lone literal): all of it is read.
            let starts_with_token = matches!(trim(&body).first(), Some(b'{' | b'[' | b'"'));
            if serde.is_some() && starts_with_token && !body.contains(&b'\\') {
                plain += 1;
                assert!(ours.is_some(), "{}", String::from_utf8_lossy(&body));
            }
        }
        assert!(read > 500 && plain > 500, "{read} read, {plain} plain");
    }
}
