//! Personal data out of text that no parser could read: a cut-off or hostile body landed
//! under `_raw/`, or the excerpt of a body quoted in an error. [`super::scrub_personal_data`]
//! finds identifiers by key in a parsed tree; here the same rules are applied to the text in
//! one pass, without parsing (so neither depth nor a missing bracket can stop it):
//!
//! - the value after a personal key (`"email": "…"`, `"respondent_id": 123`), also when the
//!   string is cut off before its closing quote;
//! - anything shaped like an e-mail address, anywhere, also one cut off after its `@`
//!   (`jane.doe@corp.exa`).
//!
//! [`scrub_text`] replaces them by their keyed hash, in the form landed pages use;
//! [`redact_text`] by `<redacted>`, for messages.

use super::PersonalDataHasher;
use super::hash::{PERSONAL_KEYS, scrubbed};

/// What replaces a personal identifier in a message.
pub(super) const REDACTED: &str = "<redacted>";

/// `text` with e-mail-like tokens and the values of personal keys replaced by `<redacted>`.
pub fn redact_text(text: &str) -> String {
    rewrite(text, &|_| REDACTED.to_string())
}

/// `text` with e-mail-like tokens and the values of personal keys replaced by their keyed
/// hash (`hmac:<hex>@domain`, `hmac:<hex>`), as [`super::scrub_personal_data`] writes them.
pub fn scrub_text(text: &str, hasher: &PersonalDataHasher) -> String {
    rewrite(text, &|value| scrubbed(value, hasher))
}

fn rewrite(text: &str, replace: &dyn Fn(&str) -> String) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // Text outside strings not yet copied to `out` starts here.
    let mut copied = 0;
    // The last key read was a personal one: its value comes next.
    let mut personal_value = false;
    let mut i = 0;
    // Every index the loop stops at is at an ASCII byte (or the end), so a char boundary.
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                out.push_str(&redact_emails(&text[copied..i], replace));
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(bytes.len());
                let content = &text[start..end];
                let closed = end < bytes.len();
                let is_key =
                    closed && text[end + 1..].trim_start().starts_with(':') && !personal_value;
                out.push('"');
                if is_key {
                    out.push_str(&redact_emails(content, replace));
                    personal_value = PERSONAL_KEYS
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(content));
                } else if personal_value && !content.is_empty() {
                    out.push_str(&replace(content));
                    personal_value = false;
                } else {
                    out.push_str(&redact_emails(content, replace));
                    personal_value = false;
                }
                if closed {
                    out.push('"');
                }
                i = end + 1;
                copied = i.min(bytes.len());
            }
            b':' | b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'{' | b'[' | b',' | b'}' | b']' => {
                personal_value = false;
                i += 1;
            }
            _ if personal_value => {
                // A bare value after a personal key: a number (a respondent id) or a
                // literal; cut at the next delimiter.
                let end = text[i..]
                    .find([',', '}', ']', ' ', '\t', '\r', '\n'])
                    .map_or(text.len(), |p| i + p);
                let token = &text[i..end];
                out.push_str(&redact_emails(&text[copied..i], replace));
                if matches!(token, "null" | "true" | "false") {
                    out.push_str(token);
                } else {
                    out.push_str(&replace(token));
                }
                personal_value = false;
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&redact_emails(&text[copied..], replace));
    out
}

/// Characters of an e-mail's local part. `:` too, so `mailto:` and an already scrubbed
/// `hmac:<hex>@domain` are taken whole (the hash passes through unchanged).
fn is_local(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '\'' | ':')
}

fn is_domain(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

/// `text` with every `local@domain` token replaced; a domain cut short still counts.
fn redact_emails(text: &str, replace: &dyn Fn(&str) -> String) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(at) = text[search..].find('@').map(|p| search + p) {
        let start = text[copied..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_local(c))
            .last()
            .map_or(at, |(p, _)| copied + p);
        let mut end = text[at + 1..]
            .char_indices()
            .find(|&(_, c)| !is_domain(c))
            .map_or(text.len(), |(p, _)| at + 1 + p);
        while end > at + 1 && text.as_bytes()[end - 1] == b'.' {
            end -= 1;
        }
        if start < at && end > at + 1 {
            out.push_str(&text[copied..start]);
            out.push_str(&replace(&text[start..end]));
            copied = end;
            search = end;
        } else {
            search = at + 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_emails_anywhere_and_personal_values_by_key() {
        let text = r#"{"results":[{"id":"7","properties":{"email":"Jane.Doe@Corp.example","note":"write to bob+x@ex.org, or mailto:ann@b.co."}},{"respondent_id": 123456,"employee_id":"E0042","email":null,"name":"Spring"}]}"#;
        let got = redact_text(text);
        assert_eq!(
            got,
            r#"{"results":[{"id":"7","properties":{"email":"<redacted>","note":"write to <redacted>, or <redacted>."}},{"respondent_id": <redacted>,"employee_id":"<redacted>","email":null,"name":"Spring"}]}"#
        );
    }

    #[test]
    fn redacts_what_a_cut_leaves() {
        for (text, leak) in [
            (r#"{"email":"jane.do"#, "jane"),
            (r#"[{"note":"from jane.doe@corp.exa"#, "jane"),
            (r#"{"respondent_id":"R-99"#, "R-99"),
            (r#"{"respondent_id":98765"#, "98765"),
            ("jane.doe@corp.example is not JSON", "jane"),
        ] {
            let got = redact_text(text);
            assert!(!got.contains(leak), "{text} -> {got}");
            assert!(got.contains(REDACTED), "{text} -> {got}");
        }
    }

    #[test]
    fn scrubbing_hashes_like_the_tree_scrub_and_is_idempotent() {
        let hasher = PersonalDataHasher::new(b"k");
        let text = r#"{"results":[{"email":"jane@corp.example","x":"y"},{"employee_id":"E1"}"#;
        let once = scrub_text(text, &hasher);
        let mut tree: serde_json::Value =
            serde_json::from_str(r#"{"email":"jane@corp.example","employee_id":"E1"}"#).unwrap();
        super::super::scrub_personal_data(&mut tree, &hasher);
        assert!(once.contains(tree["email"].as_str().unwrap()), "{once}");
        assert!(
            once.contains(tree["employee_id"].as_str().unwrap()),
            "{once}"
        );
        assert!(!once.contains("jane") && !once.contains("E1\""), "{once}");
        assert_eq!(scrub_text(&once, &hasher), once);
    }

    #[test]
    fn leaves_text_without_personal_data_alone() {
        for text in [
            "HTTP 502: <html>Bad gateway</html>",
            r#"{"paging":{"next":{"after":"100"}},"a":[1,2,{"b":"@home"}]}"#,
            "",
            "\"unterminated",
            "ünïcödé \\\"",
        ] {
            assert_eq!(redact_text(text), text);
        }
    }
}
