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

    /// Lower-case hex HMAC-SHA256 of the trimmed, lower-cased identifier.
    pub fn hash(&self, identifier: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(identifier.trim().to_lowercase().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for byte in digest.iter() {
            out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        out
    }
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
