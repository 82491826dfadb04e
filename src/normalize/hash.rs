//! Keyed hashing of personal identifiers (e-mails, respondent ids): HMAC-SHA256 with a key
//! from the environment, so joins still work and raw values are never written.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The key documented for the demo and the sandbox; never use it for real data.
pub const DEMO_HASH_KEY: &str = "funnelhouse-demo-key-do-not-use-in-production";

/// Is `key` the documented demo key (so a warning is due)?
pub fn hash_key_is_demo(key: &str) -> bool {
    key == DEMO_HASH_KEY
}

/// Hashes identifiers with one job's key.
#[derive(Clone)]
pub struct PersonalDataHasher {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for PersonalDataHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalDataHasher(***)")
    }
}

impl PersonalDataHasher {
    /// A hasher for `key` (any length).
    pub fn new(key: &[u8]) -> Self {
        PersonalDataHasher {
            keyed: Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length"),
        }
    }

    /// Lower-case hex HMAC-SHA256 of the trimmed, lower-cased identifier. A value already
    /// scrubbed by [`scrub_personal_data`] (`hmac:<hex>` or `hmac:<hex>@domain`) passes
    /// through as its hash, so replaying landed pages yields the same hashes as the live run.
    pub fn hash(&self, identifier: &str) -> String {
        if let Some(hex) = already_hashed(identifier) {
            return hex.to_string();
        }
        let mut mac = self.keyed.clone();
        // Most identifiers are lower-case ASCII already: hashed as they are, not copied.
        mac.update(super::parse::lower_case(super::parse::trim(identifier)).as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for byte in digest.iter() {
            out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        out
    }
}

/// The hash inside a scrubbed value, if it is one.
fn already_hashed(value: &str) -> Option<&str> {
    let hex = super::parse::trim(value).strip_prefix("hmac:")?.get(..64)?;
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hex)
}

/// Object keys whose string values identify a person (compared case-insensitively).
pub(super) const PERSONAL_KEYS: &[&str] = &[
    "email",
    "email_address",
    "work_email",
    "firstname",
    "lastname",
    "first_name",
    "last_name",
    // Not "name": vendors use it for campaigns, forms and accounts.
    "phone",
    "mobilephone",
    "ip_address",
    "network_id",
    "employee_id",
    "respondent_id",
    "recipient_id",
];

/// Replace personal identifiers in a vendor body by their keyed hash, before it is stored:
/// values under personal keys, and any string shaped like an e-mail address anywhere. An
/// e-mail keeps its domain (`hmac:<hex>@example.com`) so `email_domain` survives a replay.
pub fn scrub_personal_data(value: &mut serde_json::Value, hasher: &PersonalDataHasher) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let personal = PERSONAL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key));
                match child {
                    Value::String(s) if personal && !s.is_empty() => *s = scrubbed(s, hasher),
                    _ => scrub_personal_data(child, hasher),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| scrub_personal_data(item, hasher)),
        Value::String(s) if looks_like_email(s) => *s = scrubbed(s, hasher),
        _ => {}
    }
}

pub(super) fn scrubbed(value: &str, hasher: &PersonalDataHasher) -> String {
    if already_hashed(value).is_some() {
        return value.to_string();
    }
    let hash = hasher.hash(value);
    match value.trim().rsplit_once('@') {
        Some((_, domain)) if looks_like_email(value) => {
            format!("hmac:{hash}@{}", domain.to_lowercase())
        }
        _ => format!("hmac:{hash}"),
    }
}

fn looks_like_email(value: &str) -> bool {
    let v = value.trim();
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !v.contains(char::is_whitespace)
        && !v.contains(['/', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_vector_and_normalizes_case() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let h = PersonalDataHasher::new(b"Jefe");
        assert_eq!(
            h.hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = PersonalDataHasher::new(b"k");
        assert_eq!(h.hash(" Ann@Example.COM "), h.hash("ann@example.com"));
        assert_ne!(
            h.hash("ann@example.com"),
            PersonalDataHasher::new(b"other").hash("ann@example.com")
        );
    }
}
